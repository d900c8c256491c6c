"""Which kind of input is this: pcap, pcapng, raw STUN, a hex dump or SIP text."""

from __future__ import annotations

from siptool.capture.hexdump import parse_hex_dump
from siptool.capture.pcap import PCAP_MAGICS, PCAPNG_MAGIC
from siptool.errors import ParseError
from siptool.sip.framing import find_start_line, start_line_kind
from siptool.stun.framing import (
    HEADER_LENGTH,
    announced_size,
    has_magic_cookie,
    is_stun_byte,
    is_stun_header,
    looks_like_stun,
)

__all__ = ["detect_format"]

_SNIFF_TEXT = 65536
_SPACE = b" \t\r\n"


def _stun_sequence(data: bytes) -> bool:
    """One STUN message or several back to back that use up the input exactly."""
    if looks_like_stun(data):
        return True
    if not is_stun_header(data):
        return False
    if has_magic_cookie(data):
        return True  # a cut message is still STUN; the splitter reports the cut
    pos = 0
    size = len(data.rstrip(b"\r\n"))
    while pos < size:
        if not is_stun_header(data, pos):
            return False
        pos += announced_size(data, pos)
    return pos == size


def _describe(data: bytes) -> str:
    head = data[:16]
    if all(32 <= c < 127 or c in b"\t\r\n" for c in head):
        line = data.lstrip(_SPACE).split(b"\n", 1)[0][:40].decode("ascii", "replace").rstrip()
        return f"text starting {line!r}"
    return f"{len(data)} bytes starting 0x{head[:8].hex()}"


def detect_format(data: bytes) -> str:
    """``"pcap"``, ``"pcapng"``, ``"stun"``, ``"hex"`` or ``"sip"``; else ``ParseError``.

    pcap: any of the magics (µs or ns resolution, either byte order, and the modified pcap);
    pcapng: a Section Header Block; stun: one or more STUN messages (magic cookie, or an RFC 3489
    type with lengths that use up the input); sip: text whose first non-blank line is a start
    line; hex: a hex dump in one of the styles ``hexdump`` reads.  Text that holds SIP start
    lines further down (a log with other lines first) is ``sip`` as well.
    """
    if not data:
        raise ParseError("unrecognised input: it is empty")
    if data[:4] in PCAP_MAGICS:
        return "pcap"
    if data.startswith(PCAPNG_MAGIC):
        return "pcapng"
    if len(data) >= HEADER_LENGTH and is_stun_byte(data[0]) and _stun_sequence(data):
        return "stun"
    text = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    start = len(text) - len(text.lstrip(_SPACE))
    if start == len(text):
        raise ParseError("unrecognised input: only whitespace")
    eol = text.find(b"\n", start)
    if start_line_kind(text, start, len(text) if eol < 0 else eol):
        return "sip"
    head = text[: _SNIFF_TEXT * 4]
    dump = parse_hex_dump(head)
    if dump.blocks and dump.data_lines >= dump.other_lines:
        return "hex"
    if find_start_line(text, start, min(len(text), _SNIFF_TEXT)) >= 0:
        return "sip"
    raise ParseError(
        f"unrecognised input: {_describe(data)}"
        " (not SIP text, raw STUN, a hex dump, pcap or pcapng)"
    )
