"""Raw STUN input split into its messages by their length fields (RFC 8489 §5).

What is STUN and how long a message is are the questions of ``siptool.stun.framing``; this
module walks the input with them and reports where it stops making sense.
"""

from __future__ import annotations

from collections.abc import Iterator

from siptool.capture.model import Problem, RawMessage
from siptool.stun.framing import HEADER_LENGTH, announced_size, is_stun_header

__all__ = ["split_stun"]

_TRAILER = b" \t\r\n\0"


def split_stun(data: bytes) -> Iterator[RawMessage | Problem]:
    """Raw STUN input: one message or several back to back, framed by their length fields."""
    pos = 0
    size = len(data)
    while pos < size:
        if data[pos] in _TRAILER and not data[pos:].strip(_TRAILER):
            return  # trailing newline or padding
        if size - pos < HEADER_LENGTH:
            yield Problem(
                f"byte {pos}", f"truncated STUN header: {size - pos} of 20 bytes", fatal=True
            )
            return
        if not is_stun_header(data, pos):
            yield Problem(
                f"byte {pos}",
                f"not a STUN message header ({data[pos : pos + 8].hex()});"
                " rest of the input skipped",
                fatal=True,
            )
            return
        total = announced_size(data, pos)
        if pos + total > size:
            yield Problem(
                f"byte {pos}",
                f"truncated STUN message: {size - pos} of {total} bytes",
                fatal=True,
            )
            return
        yield RawMessage("stun", data[pos : pos + total], None, None, None, None, None, pos)
        pos += total
