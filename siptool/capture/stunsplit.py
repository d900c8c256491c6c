"""Finding STUN messages: the shared ``looks_like_stun`` test, and raw STUN input split by length.

The STUN codec (``siptool.stun.message``) owns ``looks_like_stun``; it is looked up when first
needed so that the capture layer works (with the RFC 8489 §6 header test below) before and
without it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import cast

from siptool.capture.model import Problem, RawMessage

__all__ = [
    "fallback_looks_like_stun",
    "looks_like_stun_function",
    "split_stun",
    "stun_frame_length",
]

MAGIC_COOKIE = b"\x21\x12\xa4\x42"
HEADER = 20

# RFC 3489 message types (classic STUN has no magic cookie, so only the type says "STUN").
CLASSIC_TYPES = frozenset({0x0001, 0x0101, 0x0111, 0x0002, 0x0102, 0x0112})

_TRAILER = b" \t\r\n\0"

_resolved: Callable[[bytes], bool] | None = None


def fallback_looks_like_stun(data: bytes) -> bool:
    """RFC 8489 §6: two zero bits, the magic cookie, a length that is a multiple of 4 and fits."""
    return (
        len(data) >= HEADER
        and data[0] < 0x40
        and data[4:8] == MAGIC_COOKIE
        and not data[3] & 3
        and ((data[2] << 8) | data[3]) + HEADER == len(data)
    )


def looks_like_stun_function() -> Callable[[bytes], bool]:
    """``siptool.stun.message.looks_like_stun`` when that module exists, else the fallback."""
    global _resolved
    if _resolved is None:
        try:
            module = importlib.import_module("siptool.stun.message")
            _resolved = cast(Callable[[bytes], bool], module.looks_like_stun)
        except (ImportError, AttributeError):
            _resolved = fallback_looks_like_stun
    return _resolved


def stun_frame_length(buf: bytes | bytearray, start: int = 0) -> int:
    """Size of the STUN message whose header starts at ``start`` (RFC 8489 §6), or -1.

    -1 when fewer than 4 bytes are there or the first two bits are not zero.
    """
    if len(buf) - start < 4 or buf[start] >= 0x40:
        return -1
    return HEADER + ((buf[start + 2] << 8) | buf[start + 3])


def is_stun_header(buf: bytes, start: int = 0) -> bool:
    """A STUN header (magic cookie, or a classic RFC 3489 type) with a 4-aligned length."""
    if len(buf) - start < HEADER or buf[start] >= 0x40 or buf[start + 3] & 3:
        return False
    if buf.startswith(MAGIC_COOKIE, start + 4):
        return True
    return ((buf[start] << 8) | buf[start + 1]) in CLASSIC_TYPES


def split_stun(data: bytes) -> Iterator[RawMessage | Problem]:
    """Raw STUN input: one message or several back to back, framed by their length fields."""
    pos = 0
    size = len(data)
    while pos < size:
        if data[pos] in _TRAILER and not data[pos:].strip(_TRAILER):
            return  # trailing newline or padding
        if size - pos < HEADER:
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
        total = stun_frame_length(data, pos)
        if pos + total > size:
            yield Problem(
                f"byte {pos}",
                f"truncated STUN message: {size - pos} of {total} bytes",
                fatal=True,
            )
            return
        yield RawMessage("stun", data[pos : pos + total], None, None, None, None, None, pos)
        pos += total
