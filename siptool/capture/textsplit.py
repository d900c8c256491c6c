"""Splitting SIP text (one or many messages, from a file, a log or a paste) into messages.

Messages may be separated by blank lines and use CRLF or bare LF line ends (logs lose the CRs).
A message's body is framed by Content-Length when that is plausible: Content-Length is 0, or the
framed message ends at the end of the input, where another start line begins (after optional
whitespace), or at the end of a line followed by an empty line.  Otherwise
(no Content-Length, or one that a lost CR made wrong) the body runs to the next start line that
follows an empty line, without the blank lines that separate the messages.  Text that is not
SIP between messages is reported, with its byte offset, and skipped.  The bytes of each message
are handed on unchanged (no line-end conversion).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from siptool.capture.model import Problem, RawMessage
from siptool.sip.framing import (
    content_length,
    describe_line,
    find_header_end,
    find_start_line,
    start_line_kind,
)

__all__ = ["split_sip_text"]

_SPACE = b" \t\r\n"
_SPACE_RUN = re.compile(rb"[ \t\r\n]*+")
_BOM = b"\xef\xbb\xbf"


def _skip_space(data: bytes, pos: int) -> int:
    # A regular expression, not a loop over bytes: megabytes of blank text are one C call.
    match = _SPACE_RUN.match(data, pos)
    return match.end() if match else pos


def _line_end(data: bytes, pos: int) -> int:
    """Offset of the LF ending the line at ``pos``, or len(data)."""
    eol = data.find(b"\n", pos)
    return len(data) if eol < 0 else eol


def _is_start(data: bytes, pos: int) -> bool:
    return bool(start_line_kind(data, pos, _line_end(data, pos)))


def _next_message(data: bytes, pos: int) -> int:
    """The next start line at or after ``pos`` that begins a line, or -1 (last line too)."""
    found = find_start_line(data, pos)
    if found >= 0:
        return found
    last = data.rfind(b"\n", pos) + 1
    if last < pos:
        last = pos
    if last < len(data) and _is_start(data, last):
        return last
    return -1


def _body_end_by_blank_line(data: bytes, body: int) -> int:
    """End of a body that runs to the next start line after an empty line (or to the end)."""
    size = len(data)
    pos = body
    blank_before = True  # the empty line that ended the headers
    boundary = size
    while pos < size:
        eol = _line_end(data, pos)
        if blank_before and start_line_kind(data, pos, eol):
            boundary = pos
            break
        blank_before = not data[pos:eol].strip(_SPACE)
        pos = eol + 1
    return _trim_separator(data, body, boundary)


def _trim_separator(data: bytes, body: int, boundary: int) -> int:
    """Drop the blank lines between messages, keep the body's own last line end."""
    end = body + len(data[body:boundary].rstrip(_SPACE))
    if end > body:
        if data.startswith(b"\r\n", end):
            end += 2
        elif data.startswith(b"\n", end):
            end += 1
    return end


def split_sip_text(data: bytes) -> Iterator[RawMessage | Problem]:
    """SIP messages in text; see the module docstring."""
    size = len(data)
    pos = 3 if data.startswith(_BOM) else 0
    # Messages that follow one another without an empty line all look for the same one:
    # remember where it is (``blank_end``, -1 for none) and from where it was searched, so
    # that the text is searched once, not once per message.
    searched_from = size + 1
    blank_end = -1

    def header_end(eol: int) -> int:
        nonlocal searched_from, blank_end
        # Still the first empty line from ``eol`` unless its match (2 or 3 bytes before its
        # end) begins before ``eol``.
        if eol < searched_from or (blank_end >= 0 and blank_end - 3 < eol):
            searched_from, blank_end = eol, find_header_end(data, eol)
        return blank_end

    while True:
        pos = _skip_space(data, pos)
        if pos >= size:
            return
        eol = _line_end(data, pos)
        if not start_line_kind(data, pos, eol):
            following = _next_message(data, min(eol + 1, size))
            skipped = (size if following < 0 else following) - pos
            yield Problem(
                f"byte {pos}",
                f"not a SIP start line: {describe_line(data, pos)} ({skipped} bytes skipped)",
            )
            if following < 0:
                return
            pos = following
            continue
        headers_end = header_end(eol)
        inner = find_start_line(data, eol + 1, size if headers_end < 0 else headers_end)
        if inner >= 0:
            # No empty line before the next message: headers only.
            yield RawMessage("sip", data[pos:inner], None, None, None, None, None, pos)
            pos = inner
            continue
        if headers_end < 0:
            end = pos + len(data[pos:].rstrip(_SPACE))
            yield RawMessage("sip", data[pos:end], None, None, None, None, None, pos)
            return
        length, _ = content_length(data, pos, headers_end)
        end = -1
        if length is not None and headers_end + length <= size:
            framed = headers_end + length
            after = _skip_space(data, framed)
            at_line_start = after > framed or data[framed - 1] == 10
            if (
                after >= size
                or length == 0
                or (at_line_start and _is_start(data, after))
                or (data[framed - 1] == 10 and data.startswith((b"\n", b"\r\n"), framed))
            ):
                end = framed
        if end < 0 and length is not None:
            # A Content-Length that does not frame the text (wrong, or counting CRs a log lost):
            # the next start line at the start of a line ends this message, blank line before
            # it or not (a stream dump has none), so that the next message is not swallowed.
            following = find_start_line(data, headers_end)
            if following >= 0:
                end = _trim_separator(data, headers_end, following)
        if end < 0:
            end = _body_end_by_blank_line(data, headers_end)
        yield RawMessage("sip", data[pos:end], None, None, None, None, None, pos)
        pos = end
