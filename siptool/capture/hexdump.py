"""Hex dumps back to bytes: plain hex, ``xxd``, ``xxd -p``, ``xxd -i``, ``hexdump -C``,
``hexdump``/``od -x`` (16-bit little-endian words), ``od -An -tx1``, ``tcpdump -X``, tshark ``-x``
and Wireshark's "Copy as Hex Dump".

Blocks are separated by blank lines, by heading lines (tshark's ``Frame (74 bytes):``) and by an
offset column that starts again at 0; each block is one message or packet.  An ASCII column is
recognised, never read as hex: ``hexdump -C`` puts it between bars; elsewhere a line's trailing
text is the ASCII column when it renders the bytes before it (printable bytes as themselves),
and with an offset column the next line's offset says how many bytes a line holds.  ``*`` lines
(repeated lines elided by hexdump and od) are expanded from the offsets around them.

Decisions (pasted dumps are untrusted, so the work stays linear in the text):

* One ``*`` stands for at most 64 KiB (``_MAX_REPEAT``): a block is one packet or message, and
  neither an IP datagram (RFC 791 §3.1 and RFC 8200 §3: 16-bit lengths) nor a STUN message
  (RFC 8489 §5) is longer.  All the ``*`` lines of one dump together stand for at most four bytes
  per byte of text, or 1 MiB if that is more (``_repeat_budget``).  A ``*`` past either bound is
  read as a gap: the bytes it stood for are missing, the lines after it keep their place.
* An offset that jumps ahead is a gap too; the lines after it are placed relative to it, so that
  one missing line is one problem, not one per line after it.
* Each kind of damage (a ``*`` read as a gap, an offset jump, a ``*`` without offsets, an odd
  number of digits) is one problem per dump: where it first happens, and how often it recurs.
* The text is scanned once: lines come from one pass of a regular expression (a blank line
  costs no object), a line's run of hex tokens is matched at once, and the search for an ASCII
  column walks back from the end of the line only while the rest of the line is short enough to
  be the ASCII column of the bytes before it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from siptool.capture.model import Problem

__all__ = ["HexBlock", "HexDump", "parse_hex_dump"]

_TOKEN = re.compile(r"\S+")
_HEX = frozenset("0123456789abcdefABCDEF")
# The lines of str.splitlines() on latin-1 text, with the body and the line end apart.
_LINE = re.compile(r"([^\n\r\x0b\x0c\x1c\x1d\x1e\x85]*)(\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85])?")
# Lines of a lone '*', one after the other: read as one (the second of two '*' in a row stands
# for nothing more), so that a flood of them costs no object per line.
_STAR_LINES = re.compile(
    r"(?:[ \t\x1f\xa0]*\*[ \t\x1f\xa0]*(?:\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85]|\Z))++"
)
_BLANK_LINES = re.compile(r"(?:[ \t\x1f\xa0]*(?:\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85]))*+")
_FIRST_TWO = re.compile(r"\s*(\S+)(?:\s+(\S+))?")
# A token that _normalise accepts, as a whole whitespace-delimited token, and a run of them.  The
# lookahead keeps "[hex:]* hex [hex:]*" from trying every split of a long token.
_HEX_TOKEN = r"(?:0[xX])?(?=[0-9A-Fa-f:]*[0-9A-Fa-f])[0-9A-Fa-f:]+[,;]*(?!\S)"
_HEX_RUN = re.compile(rf"(?:\s*{_HEX_TOKEN})*+")
_NOT_DIGIT = re.compile(r"(?<!\S)0[xX]|[\s:,;]")
_SEPARATORS = bytes(ch for ch in range(256) if chr(ch).isspace() or chr(ch) in ":,;")
# 0x20 stays, every other byte becomes 0x01: the last non-space byte is then one rfind away.
_SPACE_MARKS = bytes(0x20 if b == 0x20 else 1 for b in range(256))
_MAX_REPEAT = 64 << 10
_MIN_REPEAT_BUDGET = 1 << 20
_REPEAT_PER_TEXT_BYTE = 4
_DERIVED_PREFIXES = ("Reassembled", "De-chunked", "Decrypted", "Uncompressed", "Decompressed")


def _repeat_budget(text_size: int) -> int:
    return max(_MIN_REPEAT_BUDGET, _REPEAT_PER_TEXT_BYTE * text_size)


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
    first: str  # the first token
    second: str | None  # the second token, if any
    first_end: int  # where the first token ends in ``text``
    start: int = 0  # where the data tokens begin (after the offset column, once known)
    offset: int | None = None  # value of the offset column, if any
    offset_token: str = ""
    star: bool = False
    repeats: int = 1  # lines of a lone '*' this one stands for


@dataclass(slots=True)
class _Tally:
    """One problem per kind of damage in a dump: the first place, then a count of the others."""

    problems: list[Problem]
    first: dict[str, Problem] = field(default_factory=dict)
    more: dict[str, int] = field(default_factory=dict)
    repeat_budget: int = 0  # bytes all the dump's '*' lines may stand for
    repeat_left: int = 0  # ... of which are left

    def report(self, kind: str, where: str, message: str, times: int = 1) -> None:
        if kind in self.first:
            self.more[kind] = self.more.get(kind, 0) + times
            return
        problem = Problem(where, message)
        self.first[kind] = problem
        self.problems.append(problem)
        if times > 1:
            self.more[kind] = times - 1

    def close(self) -> None:
        for kind, count in self.more.items():
            self.first[kind].message += f" (and {count} more in the dump)"


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
        data = data.strip(b" ")
        if len(text) != len(data):
            return False
    for ch, byte in zip(text, data, strict=True):
        if 32 < byte < 127 and ch != chr(byte):
            return False
        if byte == 32 and ch not in " .":
            return False
    return True


def _hex_run(line: _Line) -> tuple[int, str]:
    """Where the run of hex tokens that begins the line's data ends, and its hex digits."""
    run = _HEX_RUN.match(line.text, line.start)
    end = run.end() if run else line.start
    if end == line.start:
        return end, ""
    area = line.text[line.start : end]
    if "x" in area or "X" in area:
        return end, _NOT_DIGIT.sub("", area)
    # Without 0x prefixes the digits are what remains without separators: one C-speed pass.
    return end, area.encode("latin-1").translate(None, _SEPARATORS).decode("ascii")


def _line_bytes(
    line: _Line, limit: int | None, run: tuple[int, str] | None = None
) -> tuple[bytes, bool]:
    """Bytes of a line's hex area and whether the line is data at all.

    ``limit`` is the byte count the offset column gives the line (None when unknown); ``run``
    is ``_hex_run(line)`` when already known.
    """
    run_end, digits = run or _hex_run(line)
    if not digits:
        return b"", False
    if limit is not None and limit > 0 and len(digits) >= 2 * limit:
        return bytes.fromhex(digits[: 2 * limit]), True
    text = line.text
    total = len(digits)
    data = bytes.fromhex(digits[: total - total % 2])
    # The longest prefix of the hex tokens whose remainder is the ASCII column; else every hex
    # token if nothing else is on the line.  Walking back from the last token, the remainder
    # (stripped) grows and the prefix shrinks: once the remainder is longer than the prefix's
    # bytes no shorter prefix can match, and at most two prefixes have the remainder's length
    # (plain, or with the prefix's spaces trimmed as _renders allows).
    last = len(text.rstrip())
    tail = text[run_end:]
    following = run_end + len(tail) - len(tail.lstrip()) if tail.strip() else -1
    marks = data.translate(_SPACE_MARKS)
    first_solid = marks.find(1)
    last_solid = len(data)  # the last non-space byte before some m >= the current m
    after = 0  # digits in the tokens after the current one
    area = text[line.start : run_end]
    for match in _TOKEN.finditer(area[::-1]):
        token_end = run_end - match.start()
        upto = total - after
        if following >= 0:
            width = last - following
            if 2 * width > upto:
                break
            if upto % 2 == 0:
                count = upto // 2
                if last_solid >= count:
                    last_solid = marks.rfind(1, 0, count)
                trimmed = last_solid + 1 - first_solid if 0 <= first_solid <= last_solid else 0
                if width in (count, trimmed):
                    candidate = data[:count]
                    if _renders(text[token_end:], candidate):
                        return candidate, True
        following = run_end - match.end()
        token = match.group()
        after += len(token)
        if not token.isalnum():
            after -= token.count(":") + token.count(",") + token.count(";")
        if "x" in token or "X" in token:
            after -= 2  # the 0x prefix: no hex token holds an x elsewhere
    if tail.strip() or total % 2:
        return b"", False
    return data, True


def _lines(data: bytes) -> Iterator[_Line | None]:
    """The lines of the input, lazily (a dump can be large); None for blank lines, one for a
    run of them."""
    text = data.decode("latin-1")
    size = len(text)
    pos = 0
    while pos < size:
        blank = _BLANK_LINES.match(text, pos)
        if blank and blank.end() > pos:
            yield None
            pos = blank.end()
            continue
        stars = _STAR_LINES.match(text, pos)
        if stars:
            run = stars.group()
            yield _Line(pos, "*", "*", None, 0, star=True, repeats=run.count("*"))
            pos = stars.end()
            continue
        match = _LINE.match(text, pos)
        assert match is not None  # every character is a line's or a line end's
        body = match.group(1)
        bar = body.find("|")
        if bar >= 0:
            body = body[:bar]  # hexdump -C: the ASCII column is between bars
        tokens = _FIRST_TWO.match(body)
        if tokens is None:
            yield None
        else:
            first, second = tokens.group(1, 2)
            star = first == "*" and second is None
            yield _Line(pos, body, first, second, tokens.end(1), star=star)
        pos = match.end()


def _offset_column(first: _Line | None) -> bool:
    """Whether the first token of a block's lines is an offset column, judged from the block's
    first line that is not a ``*``."""
    if first is None:
        return False
    token = first.first
    digits = _offset_value(token)
    if digits is None:
        return False
    if token.endswith(":"):
        return True
    second = first.second
    if second is None:
        return False
    if len(digits) % 2 == 1 and len(digits) >= 5:
        return True
    return len(digits) >= 4 and len(second) != len(digits) and not digits.strip("0")


def _parse_block(lines: list[_Line], head: _Line | None, tally: _Tally) -> tuple[bytes, int, int]:
    """Bytes of one block of lines (no blank lines inside); also (data lines, other lines).

    ``head`` is the block's first line that is not a ``*``.
    """
    if not _offset_column(head):
        out = bytearray()
        data_lines = other = 0
        pending: list[str] = []
        pending_size = 0
        for line in lines:
            run_end, digits = run = _hex_run(line)
            chunk, ok = _line_bytes(line, None, run)
            if ok:
                out += chunk
                data_lines += 1
                continue
            # A line with an odd number of digits: a wrapped plain-hex stream.
            if digits and not line.text[run_end:].strip():
                pending.append(digits)
                pending_size += len(digits)
                if pending_size % 2 == 0:
                    out += bytes.fromhex("".join(pending))
                    pending.clear()
                    pending_size = 0
                data_lines += 1
            else:
                if line.star:
                    tally.report(
                        "star-without-offsets",
                        f"byte {line.pos}",
                        "'*' (repeated lines) in a dump without offsets; use od -v",
                        line.repeats,
                    )
                other += line.repeats
        if pending:
            tally.report(
                "odd-digits", f"byte {lines[0].pos}", "odd number of hex digits; last digit ignored"
            )
            out += bytes.fromhex("".join(pending)[:-1])
        return bytes(out), data_lines, other

    # Offset column: find each line's offset, then its byte count from the next offset.
    rows: list[_Line] = []
    for line in lines:
        if line.star:
            rows.append(line)
            continue
        offset = _offset_value(line.first)
        if offset is None:
            continue
        line.offset_token = offset
        line.start = line.first_end
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
    missing = 0  # bytes of the gaps so far: a row's bytes go at its offset minus this
    data_lines = 0
    previous = b""
    for index, row in enumerate(rows):
        following = next_offsets[index]
        if row.star:
            if following is not None and previous:
                gap = following - missing - len(out)
                if gap > _MAX_REPEAT or gap > tally.repeat_left:
                    bound = (
                        f"more than the {_MAX_REPEAT} a repeat may stand for"
                        if gap > _MAX_REPEAT
                        else f"more than the {tally.repeat_left} left of the"
                        f" {tally.repeat_budget} all repeats of the dump may stand for"
                    )
                    tally.report(
                        "repeat-gap",
                        f"byte {row.pos}",
                        f"'*' stands for {gap} bytes, {bound}; read as a gap",
                    )
                    missing += gap
                elif gap > 0:
                    tally.repeat_left -= gap
                    whole, part = divmod(gap, len(previous))
                    out += previous * whole
                    out += previous[:part]
            continue
        assert row.offset is not None
        if row.second is None:
            # A final line holding only the total length.
            del out[max(0, row.offset - missing) :]
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
        at = row.offset - missing
        if at < len(out) and at >= 0:
            del out[at:]
        elif at != len(out):
            tally.report(
                "offset-jump",
                f"byte {row.pos}",
                f"hex dump offset jumps from {len(out) + missing} to {row.offset}",
            )
            missing = row.offset - len(out)
        out += chunk
        previous = chunk
        data_lines += 1
    return bytes(out), data_lines, len(lines) - len(rows)


def _offset_base(rows: list[_Line]) -> int:
    """16, or 8 for od's default octal offsets (told apart by the step between lines)."""
    values = [r for r in rows if not r.star]
    if len(values) < 2 or values[0].second is None:
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
    data_rows = [r for r in rows if not r.star and r.second is not None]
    if not data_rows or len(data_rows[0].offset_token) != 7:
        return False
    return all(
        len(token) == 4 and _normalise(token) is not None
        for r in data_rows
        for token in (m.group() for m in _TOKEN.finditer(r.text, r.start))
    )


def parse_hex_dump(data: bytes) -> HexDump:
    """Blocks of bytes in a hex dump; see the module docstring."""
    result = HexDump()
    budget = _repeat_budget(len(data))
    tally = _Tally(result.problems, repeat_budget=budget, repeat_left=budget)
    # (block or None, tshark's derived copy?) in input order; derived copies are dropped at the
    # end if the dump has frames.
    found: list[tuple[HexBlock | None, bool]] = []
    has_frames = False
    label = ""
    current: list[_Line] = []
    head: _Line | None = None  # the group's first line that is not a '*'

    def close() -> None:
        nonlocal current, head, has_frames
        if current:
            chunk, data_lines, other = _parse_block(current, head, tally)
            result.data_lines += data_lines
            result.other_lines += other
            has_frames = has_frames or label.startswith("Frame")
            block = HexBlock(current[0].pos, chunk, label) if chunk else None
            found.append((block, label.startswith(_DERIVED_PREFIXES)))
        current = []
        head = None

    for line in _lines(data):
        if line is None:
            close()
            label = ""
            continue
        first = line.first
        digits = _offset_value(first)
        if not line.star and digits is None and _normalise(first) is None:
            # A heading such as "Frame (74 bytes):" or "Reassembled TCP (1200 bytes):".
            close()
            label = line.text.strip()
            result.other_lines += 1
            continue
        restart = digits is not None and not digits.strip("0") and line.second is not None
        if current and restart and _offset_column(head):
            close()  # the offset column starts again: a new packet
        current.append(line)
        if head is None and not line.star:
            head = line
    close()
    tally.close()

    for block, derived in found:
        if block is None or (has_frames and derived):
            continue  # tshark's reassembled copy of data the frames already hold
        result.blocks.append(block)
    return result
