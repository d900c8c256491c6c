"""Hex dumps back to bytes: plain hex, ``xxd``, ``xxd -p``, ``xxd -i``, ``hexdump -C``,
``hexdump``/``od -x`` (16-bit little-endian words), ``od -An -tx1``, ``tcpdump -X``, tshark ``-x``
and Wireshark's "Copy as Hex Dump".

Blocks are separated by blank lines, by heading lines (tshark's ``Frame (74 bytes):``) and by an
offset column that starts again at 0; each block is one message or packet.  An ASCII column is
recognised, never read as hex: ``hexdump -C`` puts it between bars; elsewhere a line's trailing
text is the ASCII column when it renders the bytes before it (printable bytes as themselves),
and with an offset column the next line's offset says how many bytes a line holds.  ``*`` lines
(repeated lines elided by hexdump and od) are expanded from the offsets around them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from siptool.capture.model import Problem

__all__ = ["HexBlock", "HexDump", "parse_hex_dump"]

_TOKEN = re.compile(r"\S+")
_HEX = frozenset("0123456789abcdefABCDEF")
_MAX_REPEAT = 16 << 20
_DERIVED_PREFIXES = ("Reassembled", "De-chunked", "Decrypted", "Uncompressed", "Decompressed")


@dataclass(slots=True)
class HexBlock:
    """The bytes of one block; ``offset`` is where its first line starts in the input text."""

    offset: int
    data: bytes
    label: str = ""


@dataclass(slots=True)
class HexDump:
    """Result of ``parse_hex_dump``; ``data_lines``/``other_lines`` let a sniffer judge it."""

    blocks: list[HexBlock] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    data_lines: int = 0
    other_lines: int = 0


@dataclass(slots=True)
class _Line:
    pos: int  # offset of the line in the input
    text: str
    offset: int | None = None  # value of the offset column, if any
    offset_token: str = ""
    tokens: list[tuple[int, int, str]] = field(default_factory=list)  # after the offset column
    star: bool = False


def _normalise(token: str) -> str | None:
    """Hex digits of a data token (``0x49,`` -> ``49``, ``49:4e`` -> ``494e``), or None."""
    if token.startswith(("0x", "0X")):
        token = token[2:]
    token = token.rstrip(",;").replace(":", "")
    if token and all(ch in _HEX for ch in token):
        return token
    return None


def _offset_value(token: str) -> str | None:
    """The digits of an offset-column token (``00000010:``, ``0x0010:``, ``0000``) or None."""
    if token.startswith(("0x", "0X")):
        token = token[2:]
    token = token.rstrip(":")
    if token and all(ch in _HEX for ch in token):
        return token
    return None


def _renders(rest: str, data: bytes) -> bool:
    """``rest`` is the ASCII column of ``data``: printable bytes as themselves (a space may be
    shown as ``.``, as tcpdump does), other bytes as any character."""
    text = rest.strip()
    if len(text) != len(data):
        lo, hi = 0, len(data)
        while lo < hi and data[lo] == 32:
            lo += 1
        while hi > lo and data[hi - 1] == 32:
            hi -= 1
        data = data[lo:hi]
        if len(text) != len(data):
            return False
    for ch, byte in zip(text, data, strict=True):
        if 32 < byte < 127 and ch != chr(byte):
            return False
        if byte == 32 and ch not in " .":
            return False
    return True


def _line_bytes(line: _Line, limit: int | None) -> tuple[bytes, bool]:
    """Bytes of a line's hex area and whether the line is data at all.

    ``limit`` is the byte count the offset column gives the line (None when unknown).
    """
    text = line.text
    digits: list[str] = []
    ends: list[tuple[int, int]] = []  # (text position after token, number of hex digits so far)
    count = 0
    for _, end, token in line.tokens:
        hexed = _normalise(token)
        if hexed is None:
            break
        digits.append(hexed)
        count += len(hexed)
        ends.append((end, count))
    if not ends:
        return b"", False
    joined = "".join(digits)
    if limit is not None and limit > 0 and len(joined) >= 2 * limit:
        return bytes.fromhex(joined[: 2 * limit]), True
    # The longest prefix whose remainder is the ASCII column; else every hex token if nothing
    # else is on the line.
    for end, upto in reversed(ends):
        rest = text[end:]
        if upto % 2 == 0 and rest.strip():
            candidate = bytes.fromhex(joined[:upto])
            if _renders(rest, candidate):
                return candidate, True
    if text[ends[-1][0] :].strip():
        return b"", False
    if len(joined) % 2:
        return b"", False
    return bytes.fromhex(joined), True


def _split_lines(data: bytes) -> list[_Line]:
    lines: list[_Line] = []
    pos = 0
    text = data.decode("latin-1")
    for raw in text.splitlines(keepends=True):
        body = raw.rstrip("\r\n")
        bar = body.find("|")
        if bar >= 0:
            body = body[:bar]  # hexdump -C: the ASCII column is between bars
        line = _Line(pos, body)
        line.tokens = [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(body)]
        if len(line.tokens) == 1 and line.tokens[0][2] == "*":
            line.star = True
        lines.append(line)
        pos += len(raw.encode("latin-1"))
    return lines


def _has_offsets(lines: list[_Line]) -> bool:
    """Whether the first token of the block's lines is an offset column."""
    first = next((ln for ln in lines if ln.tokens and not ln.star), None)
    if first is None:
        return False
    token = first.tokens[0][2]
    digits = _offset_value(token)
    if digits is None:
        return False
    if token.endswith(":"):
        return True
    if len(first.tokens) < 2:
        return False
    second = first.tokens[1][2]
    if len(digits) % 2 == 1 and len(digits) >= 5:
        return True
    return len(digits) >= 4 and len(second) != len(digits) and int(digits, 16) == 0


def _parse_block(lines: list[_Line], problems: list[Problem]) -> tuple[bytes, int, int]:
    """Bytes of one block of lines (no blank lines inside); also (data lines, other lines)."""
    if not _has_offsets(lines):
        out = bytearray()
        data_lines = other = 0
        pending_digits = ""
        for line in lines:
            chunk, ok = _line_bytes(line, None)
            if ok:
                out += chunk
                data_lines += 1
                continue
            # A line with an odd number of digits: a wrapped plain-hex stream.
            hexed = [_normalise(t[2]) for t in line.tokens]
            if hexed and all(h is not None for h in hexed):
                pending_digits += "".join(h for h in hexed if h is not None)
                if len(pending_digits) % 2 == 0:
                    out += bytes.fromhex(pending_digits)
                    pending_digits = ""
                data_lines += 1
            else:
                if line.star:
                    problems.append(
                        Problem(
                            f"byte {line.pos}",
                            "'*' (repeated lines) in a dump without offsets; use od -v",
                        )
                    )
                other += 1
        if pending_digits:
            problems.append(
                Problem(f"byte {lines[0].pos}", "odd number of hex digits; last digit ignored")
            )
            out += bytes.fromhex(pending_digits[:-1])
        return bytes(out), data_lines, other

    # Offset column: find each line's offset, then its byte count from the next offset.
    rows: list[_Line] = []
    for line in lines:
        if line.star:
            rows.append(line)
            continue
        if not line.tokens:
            continue
        token = line.tokens[0][2]
        digits = _offset_value(token)
        if digits is None:
            continue
        line.offset_token = digits
        line.tokens = line.tokens[1:]
        rows.append(line)
    base = _offset_base(rows)
    words = _little_endian_words(rows)
    for row in rows:
        if not row.star:
            row.offset = int(row.offset_token, base)
    # The offset of the next line that has one, for each row (one pass, not one per row).
    next_offsets: list[int | None] = [None] * len(rows)
    upcoming: int | None = None
    for index in range(len(rows) - 1, -1, -1):
        next_offsets[index] = upcoming
        if not rows[index].star:
            upcoming = rows[index].offset
    out = bytearray()
    data_lines = 0
    previous = b""
    for index, row in enumerate(rows):
        following = next_offsets[index]
        if row.star:
            if following is not None and previous:
                gap = following - len(out)
                if gap > _MAX_REPEAT:
                    problems.append(
                        Problem(f"byte {row.pos}", f"'*' stands for {gap} bytes; not expanded")
                    )
                    gap = 0
                while gap > 0:
                    piece = previous[:gap]
                    out += piece
                    gap -= len(piece)
            continue
        assert row.offset is not None
        if not row.tokens:
            # A final line holding only the total length.
            del out[row.offset :]
            continue
        limit = None if following is None else following - row.offset
        if words:
            chunk, ok = _line_bytes(row, None)
            swapped = bytearray(chunk)
            swapped[0::2], swapped[1::2] = chunk[1::2], chunk[0::2]
            chunk = bytes(swapped[:limit])
        else:
            chunk, ok = _line_bytes(row, limit)
        if not ok and limit is None:
            continue
        if row.offset != len(out):
            if row.offset < len(out):
                del out[row.offset :]
            else:
                problems.append(
                    Problem(
                        f"byte {row.pos}", f"hex dump offset jumps from {len(out)} to {row.offset}"
                    )
                )
        out += chunk
        previous = chunk
        data_lines += 1
    return bytes(out), data_lines, len(lines) - len(rows)


def _offset_base(rows: list[_Line]) -> int:
    """16, or 8 for od's default octal offsets (told apart by the step between lines)."""
    values = [r for r in rows if not r.star]
    if len(values) < 2 or not values[0].tokens:
        return 16
    first, second = values[0], values[1]
    hex_step = int(second.offset_token, 16) - int(first.offset_token, 16)
    if all(ch in "01234567" for r in values for ch in r.offset_token):
        try:
            oct_step = int(second.offset_token, 8) - int(first.offset_token, 8)
        except ValueError:
            return 16
        count = len(_line_bytes(first, None)[0])
        if oct_step == count and hex_step != count:
            return 8
    return 16


def _little_endian_words(rows: list[_Line]) -> bool:
    """``hexdump`` and ``od -x``: 7-digit offsets, 4-digit words, no ASCII column."""
    data_rows = [r for r in rows if not r.star and r.tokens]
    if not data_rows or len(data_rows[0].offset_token) != 7:
        return False
    return all(len(t[2]) == 4 and _normalise(t[2]) is not None for r in data_rows for t in r.tokens)


def parse_hex_dump(data: bytes) -> HexDump:
    """Blocks of bytes in a hex dump; see the module docstring."""
    result = HexDump()
    lines = _split_lines(data)
    groups: list[tuple[str, list[_Line]]] = []
    label = ""
    current: list[_Line] = []

    def close() -> None:
        nonlocal current
        if current:
            groups.append((label, current))
        current = []

    for line in lines:
        if not line.tokens:
            close()
            label = ""
            continue
        first = line.tokens[0][2]
        if not line.star and _offset_value(first) is None and _normalise(first) is None:
            # A heading such as "Frame (74 bytes):" or "Reassembled TCP (1200 bytes):".
            close()
            label = line.text.strip()
            result.other_lines += 1
            continue
        digits = _offset_value(first)
        restart = digits is not None and int(digits, 16) == 0 and len(line.tokens) > 1
        if current and restart and _has_offsets(current):
            close()  # the offset column starts again: a new packet
        current.append(line)
    close()

    has_frames = any(lbl.startswith("Frame") for lbl, _ in groups)
    for lbl, group in groups:
        chunk, data_lines, other = _parse_block(group, result.problems)
        result.data_lines += data_lines
        result.other_lines += other
        if has_frames and lbl.startswith(_DERIVED_PREFIXES):
            continue  # tshark's reassembled copy of data the frames already hold
        if chunk:
            result.blocks.append(HexBlock(group[0].pos, chunk, lbl))
    return result
