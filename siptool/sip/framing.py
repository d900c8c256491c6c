"""SIP start-line recognition and stream framing by Content-Length (RFC 3261 §18.3).

Pure: no sockets, no clock. Used by the capture layer (SIP over TCP inside pcaps, SIP text) and by
the live TCP/TLS transport.

Recognising a start line
    ``start_line_kind(buf, start, eol)`` says whether ``buf[start:eol]`` (one line, terminator
    excluded) is a request line ``METHOD SP Request-URI SP SIP/2.0`` or a status line
    ``SIP/2.0 SP 3DIGIT ...``.  ``starts_like_sip(buf, start, end)`` is the lenient test used on
    datagrams: a status-line prefix, a well-formed request line, or a known method followed by a
    space (a malformed message that is clearly meant to be SIP still reaches the parser).

Framing a byte stream
    ``SipStreamFramer`` is incremental::

        framer = SipStreamFramer()
        for item in framer.feed(chunk):          # any chunking: bytes as they arrive
            if isinstance(item, FramingError):
                log(item)                        # one-line problem; the framer has recovered
            else:
                handle(item)                     # bytes of exactly one message
        framer.close()                           # end of stream: reports an unfinished message

    ``feed_with_offsets`` returns ``(stream_offset, message)`` pairs instead, where
    ``stream_offset`` counts every byte ever fed (the capture layer maps it back to a packet).
    ``lose(n)`` tells the framer that ``n`` bytes of the stream were never seen (a hole in a
    capture): the unfinished message is dropped and the framer resynchronises.

    Rules: CR/LF between messages are keep-alives (RFC 5626 §3.5.1) and are skipped; the headers
    end at the first empty line (CRLF CRLF, or bare LF LF from logs); the body is exactly
    Content-Length bytes (long form ``Content-Length`` or compact ``l``, names case-insensitive).
    Content-Length is mandatory on streams (RFC 3261 §18.3, §20.14): without it the framer emits
    the headers as one message with an empty body, reports the problem and skips, silently, to the
    next start line at the beginning of a line.  Bytes that do not begin with a start line are
    reported once per run and skipped to the next start line at the beginning of a line.  A
    header section longer than ``max_header_bytes`` is reported once until a message is framed
    again, and its start line skipped; the search for an empty line never looks at the same
    bytes twice, so a stream that never has one costs time linear in its length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "SIP_METHODS",
    "FramingError",
    "SipStreamFramer",
    "StreamBuffer",
    "content_length",
    "find_header_end",
    "find_start_line",
    "is_start_line",
    "start_line_kind",
    "starts_like_sip",
]

SIP_METHODS = frozenset(
    {
        b"INVITE",
        b"ACK",
        b"BYE",
        b"CANCEL",
        b"REGISTER",
        b"OPTIONS",
        b"PRACK",
        b"SUBSCRIBE",
        b"NOTIFY",
        b"PUBLISH",
        b"INFO",
        b"REFER",
        b"MESSAGE",
        b"UPDATE",
    }
)

# RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
_TOKEN_CHARS = bytes(
    sorted(set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"))
)
_DIGITS = b"0123456789"

REQUEST = 1
RESPONSE = 2

_MAX_LINE = 8192
_MAX_METHOD = 32
_KEEPALIVES = re.compile(rb"[\r\n]*+")


def start_line_kind(buf: bytes | bytearray, start: int, eol: int) -> int:
    """0, ``REQUEST`` or ``RESPONSE`` for the line ``buf[start:eol]`` (CR, LF excluded or not).

    The SIP-Version is compared case-insensitively (RFC 3261 §7.1).
    """
    if eol > start and buf[eol - 1] == 10:
        eol -= 1
    if eol > start and buf[eol - 1] == 13:
        eol -= 1
    if eol - start < 11:
        return 0
    first = buf[start]
    if (
        (first == 83 or first == 115)
        and (  # "S" / "s"
            buf.startswith(b"SIP/2.0 ", start) or buf[start : start + 8].upper() == b"SIP/2.0 "
        )
    ):
        code = buf[start + 8 : start + 11]
        if not code.translate(None, _DIGITS) and (eol == start + 11 or buf[start + 11] == 32):
            return RESPONSE
        return 0
    sp = buf.find(b" ", start, min(eol, start + _MAX_METHOD + 1))
    if sp <= start or buf[start:sp].translate(None, _TOKEN_CHARS):
        return 0
    version = eol - 8
    if version <= sp + 1:
        return 0
    if not buf.startswith(b" SIP/2.0", version) and buf[version:eol].upper() != b" SIP/2.0":
        return 0
    return REQUEST


def is_start_line(buf: bytes | bytearray, start: int = 0, end: int | None = None) -> bool:
    """True when the first line of ``buf[start:end]`` is a complete SIP request or status line."""
    if end is None:
        end = len(buf)
    eol = buf.find(b"\n", start, end)
    if eol < 0:
        eol = end
    return start_line_kind(buf, start, eol) != 0


def starts_like_sip(buf: bytes, start: int = 0, end: int | None = None) -> bool:
    """True when ``buf[start:end]`` is meant to be a SIP message, even a malformed one.

    A status-line prefix ``SIP/2.0 SP``, a well-formed request line, or a known method followed
    by a space.  Cheap enough for every datagram of a capture: no regex, no copy of the payload.
    """
    if end is None:
        end = len(buf)
    if end - start < 8:
        return False
    first = buf[start]
    if first == 83:  # "S"
        if buf.startswith(b"SIP/2.0 ", start):
            return True
    elif not (65 <= first <= 90 or 97 <= first <= 122):
        return False
    sp = buf.find(b" ", start, min(end, start + _MAX_METHOD + 1))
    if sp > start and buf[start:sp] in SIP_METHODS:
        return True
    eol = buf.find(b"\n", start, end)
    if eol < 0:
        eol = end
    return start_line_kind(buf, start, eol) != 0


def find_start_line(buf: bytes | bytearray, start: int = 0, end: int | None = None) -> int:
    """Offset of the first complete start line that begins a line in ``buf[start:end]``, or -1.

    A line begins at ``start`` or right after a LF.  Only lines whose LF is present count.
    """
    if end is None:
        end = len(buf)
    pos = start
    while pos < end:
        eol = buf.find(b"\n", pos, end)
        if eol < 0:
            return -1
        if start_line_kind(buf, pos, eol):
            return pos
        pos = eol + 1
    return -1


def find_header_end(buf: bytes | bytearray, start: int, end: int | None = None) -> int:
    """Offset just past the empty line that ends the headers, searching from ``start``, or -1.

    ``start`` should be at or before the LF that ends the start line.  Accepts CRLF CRLF, LF LF
    and the mixed forms (logs often lose the CRs).
    """
    if end is None:
        end = len(buf)
    crlf = buf.find(b"\n\r\n", start, end)
    lf = buf.find(b"\n\n", start, end if crlf < 0 else crlf + 1)
    if lf >= 0 and (crlf < 0 or lf < crlf):
        return lf + 2
    if crlf >= 0:
        return crlf + 3
    return -1


def content_length(buf: bytes | bytearray, start: int, end: int) -> tuple[int | None, str | None]:
    """Content-Length of the header block ``buf[start:end]`` (start line included).

    Returns ``(value, None)``, ``(None, None)`` when absent, or ``(None, reason)`` when the value
    is not a number.  Long form and compact ``l`` (RFC 3261 §7.3.3), names case-insensitive;
    the first occurrence wins.
    """
    block = bytes(buf[start:end]).lower()
    found = -1
    for name in (b"\ncontent-length", b"\nl"):
        pos = block.find(name)
        while pos >= 0 and (found < 0 or pos < found):
            colon = pos + len(name)
            while colon < len(block) and block[colon] in b" \t":
                colon += 1
            if colon < len(block) and block[colon] == 58:  # ":"
                found = colon
                break
            pos = block.find(name, pos + 1)
    if found < 0:
        return None, None
    eol = block.find(b"\n", found)
    if eol < 0:
        eol = len(block)
    value = block[found + 1 : eol].strip()
    if value and len(value) <= 10 and not value.translate(None, _DIGITS):
        return int(value), None
    shown = bytes(buf[start + found + 1 : start + eol]).strip()[:40]
    return None, f"invalid Content-Length {shown.decode('ascii', 'replace')!r}"


def describe_line(buf: bytes | bytearray, start: int, limit: int = 40) -> str:
    """The beginning of the line at ``start`` as a short printable quote, for problem messages."""
    end = min(len(buf), start + limit)
    eol = buf.find(b"\n", start, end)
    if eol >= 0:
        end = eol
    text = bytes(buf[start:end]).rstrip(b"\r").decode("latin-1")
    shown = "".join(ch if " " <= ch <= "~" else "." for ch in text)
    if end - start >= limit:
        shown += "..."
    return repr(shown)


@dataclass(frozen=True, slots=True)
class FramingError:
    """Something wrong in a stream; ``offset`` is the stream offset (bytes fed before it)."""

    offset: int
    message: str


class StreamBuffer:
    """What a stream framer holds (this one and capture's ``StunStreamFramer``): the bytes not
    framed yet, and the stream offset of the first of them."""

    __slots__ = ("_base", "_buf")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._base = 0  # stream offset of _buf[0]

    @property
    def stream_offset(self) -> int:
        """Bytes fed so far (and accounted for by ``lose``)."""
        return self._base + len(self._buf)

    @property
    def buffered(self) -> int:
        """Bytes held back: an unfinished message (or a line not yet known to be one)."""
        return len(self._buf)


class SipStreamFramer(StreamBuffer):
    """Incremental SIP message framer for a byte stream; see the module docstring."""

    __slots__ = (
        "_line_start",
        "_max_body",
        "_max_header",
        "_need",
        "_overlong",
        "_quiet",
        "_resync",
        "_scan",
    )

    def __init__(self, *, max_header_bytes: int = 65536, max_body_bytes: int = 16 << 20) -> None:
        super().__init__()
        self._need = -1  # total size of the message at _buf[0] once its headers are known
        # Stream offset where the search for the end of the headers resumes: no empty line
        # begins between the first start line searched from and there.  An offset in the
        # stream, not in _buf, so that it survives the bytes dropped while resynchronising
        # (each start line after an overlong header section is then not searched again from
        # its own first line: the search stays linear in the stream).
        self._scan = 0
        self._overlong = False  # "no end of headers" reported since the last message framed
        self._resync = False  # skipping to the next start line
        self._quiet = False  # ... without reporting the skipped bytes
        self._line_start = True  # _buf[0] begins a line
        self._max_header = max_header_bytes
        self._max_body = max_body_bytes

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes | FramingError]:
        """Add stream bytes; return the messages they complete and any problems, in order."""
        return [
            item if isinstance(item, FramingError) else item[1]
            for item in self.feed_with_offsets(data)
        ]

    def feed_with_offsets(
        self, data: bytes | bytearray | memoryview
    ) -> list[tuple[int, bytes] | FramingError]:
        """Like ``feed``, with each message paired with its stream offset."""
        self._buf += data
        out: list[tuple[int, bytes] | FramingError] = []
        self._frame(out)
        return out

    def lose(self, nbytes: int) -> list[FramingError]:
        """``nbytes`` of the stream are missing (never captured): drop the unfinished message."""
        out: list[FramingError] = []
        pending = len(self._buf) if (self._need >= 0 or self._buf.strip(b"\r\n")) else 0
        if pending and not self._resync:
            out.append(
                FramingError(
                    self._base,
                    f"{nbytes} bytes missing from the stream; dropped {pending} bytes"
                    " of an unfinished message",
                )
            )
        elif nbytes:
            out.append(
                FramingError(self._base + len(self._buf), f"{nbytes} bytes missing from the stream")
            )
        # Segments often end where messages end: a start line right after the hole counts.
        self._skip(len(self._buf), resync=True)
        self._base += nbytes
        self._overlong = False
        return out

    def close(self) -> list[FramingError]:
        """End of stream: report an unfinished message, then reset."""
        out: list[FramingError] = []
        if self._need >= 0:
            out.append(
                FramingError(
                    self._base, f"incomplete message: {len(self._buf)} of {self._need} bytes"
                )
            )
        elif self._buf.strip(b"\r\n") and not self._resync and not self._overlong:
            # (After "no end of headers" and no message since, the rest is the same problem.)
            out.append(
                FramingError(
                    self._base,
                    f"incomplete message: headers not finished after {len(self._buf)} bytes",
                )
            )
        self._skip(len(self._buf), resync=False)
        self._overlong = False
        return out

    def _drop(self, n: int) -> None:
        del self._buf[:n]
        self._base += n

    def _skip(self, n: int, *, resync: bool) -> None:
        """Drop the ``n`` bytes that ended (or broke off) the message being read; the next one
        may begin right after them.  With ``resync`` skip, without reporting, to the next start
        line that begins a line."""
        self._drop(n)
        self._need = -1
        self._scan = 0
        self._resync = self._quiet = resync
        self._line_start = True

    def _garbage(self, out: list[tuple[int, bytes] | FramingError]) -> None:
        if not self._quiet:
            out.append(
                FramingError(self._base, f"not a SIP start line: {describe_line(self._buf, 0)}")
            )
        self._resync = True
        self._quiet = True

    def _frame(self, out: list[tuple[int, bytes] | FramingError]) -> None:
        buf = self._buf
        while True:
            if self._need >= 0:
                need = self._need
                if len(buf) < need:
                    return
                out.append((self._base, bytes(buf[:need])))
                self._skip(need, resync=False)  # not resynchronising while a message is read
                self._overlong = False
                continue
            # RFC 5626 §3.5.1: CRLF keep-alives between messages.
            size = len(buf)
            keepalives = _KEEPALIVES.match(buf)
            skip = keepalives.end() if keepalives else 0
            if skip:
                self._drop(skip)
                self._line_start = True
                size -= skip
            if not size:
                return
            if self._resync:
                if not self._resync_step():
                    return
                size = len(buf)  # the bytes skipped are gone
            eol = buf.find(b"\n")
            if eol < 0:
                first = buf[0]
                if size > _MAX_LINE or not (65 <= first <= 90 or 97 <= first <= 122):
                    self._garbage(out)
                    continue
                return
            if not start_line_kind(buf, 0, eol):
                self._garbage(out)
                continue
            end = find_header_end(buf, max(eol, self._scan - self._base))
            if end < 0 and size <= self._max_header:
                self._scan = self._base + max(eol, size - 3)
                return
            if end < 0 or end > self._max_header:
                # Checked on the end found too, so that how the stream was cut into chunks
                # does not decide whether a long header section is a message.  Reported once
                # until a message is framed again: a stream of start lines without empty lines
                # is one problem, not one per line.
                if not self._quiet and not self._overlong:
                    out.append(
                        FramingError(
                            self._base, f"no end of headers within {self._max_header} bytes"
                        )
                    )
                    self._overlong = True
                if end >= 0:
                    self._scan = self._base + end - 3  # the empty line found is still ahead
                elif size > 3:
                    self._scan = self._base + size - 3
                self._resync = True
                self._quiet = True
                self._drop(eol + 1)
                continue
            length, problem = content_length(buf, 0, end)
            if length is None:
                out.append(FramingError(self._base, problem or "Content-Length missing"))
                out.append((self._base, bytes(buf[:end])))
                self._overlong = False
                self._skip(end, resync=True)
                continue
            if length > self._max_body:
                out.append(
                    FramingError(
                        self._base,
                        f"Content-Length {length} is larger than {self._max_body}; skipping",
                    )
                )
                self._skip(end, resync=True)
                continue
            self._need = end + length

    def _resync_step(self) -> bool:
        """Skip to the next start line that begins a line; True once the buffer begins with one."""
        buf = self._buf
        pos = 0
        if not self._line_start:
            nl = buf.find(b"\n")
            if nl < 0:
                self._drop(len(buf))
                return False
            pos = nl + 1
        while True:
            eol = buf.find(b"\n", pos)
            if eol < 0:
                # An unfinished line: keep it, it may become a start line.
                if len(buf) - pos > _MAX_LINE:
                    self._drop(len(buf))
                    self._line_start = False
                else:
                    self._drop(pos)
                    self._line_start = True
                return False
            if start_line_kind(buf, pos, eol):
                self._drop(pos)
                self._line_start = True
                self._resync = False
                self._quiet = False
                return True
            pos = eol + 1
