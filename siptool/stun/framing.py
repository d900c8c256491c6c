"""What the first bytes of a buffer say about STUN: is it STUN, how long is it, is it all there.

Pure, and cheap enough for the capture layer's per-packet path: a few byte comparisons, no
objects.  Every reader of STUN bytes asks these questions the same way here: the codec
(``siptool.stun.message``), the raw-input splitter and the capture sniffer
(``siptool.capture``), the TCP reassembly of captures and the live TCP/TLS transport.

The header (RFC 8489 §5): two zero bits and the 14-bit message type, the 16-bit length of what
follows the 20-byte header, the magic cookie, the 96-bit transaction id.  An RFC 3489 message
has no cookie: its transaction id is the 128 bits after the length.

Decisions:

* The first two bits zero (a first byte of 0 to 3) are the first test for STUN (RFC 8489 §6,
  RFC 7983 §7 demultiplexing by the first byte); the magic cookie is the second.
* A message without the cookie counts as RFC 3489 "classic" STUN only when its type is one of
  the six RFC 3489 §11.1 Binding and Shared Secret types: nothing else marks it as STUN.  In a
  datagram its length must then use up the datagram exactly (``looks_like_stun``).
* The length of a message is a multiple of 4 (RFC 8489 §5: attributes are padded to 4 bytes).
* On a stream (TCP, TLS: RFC 8489 §6.2.2, RFC 5389 §7.2.2) messages follow each other, each
  framed by its header's length field; ``stun_frame_length`` says ``None`` while the header is
  incomplete and raises ``ParseError`` when the header cannot be STUN, as the rest of the
  stream then cannot be framed.
* TURN ChannelData (RFC 8656 §12.4) shares such streams: a 4-byte header (channel number,
  length), the data, and on a stream padding to a multiple of 4 that the length does not count
  (RFC 8656 §12.5).  Channel numbers are 0x4000-0x4FFF; a first byte up to 0x7F is framed as
  ChannelData too, so that a reserved channel number does not end the framing.
"""

from __future__ import annotations

from siptool.errors import ParseError

__all__ = [
    "CLASSIC_TYPES",
    "COOKIE",
    "HEADER_LENGTH",
    "MAGIC_COOKIE",
    "announced_size",
    "channel_data_size",
    "complete_frame_length",
    "has_magic_cookie",
    "is_channel_data_byte",
    "is_stun_byte",
    "is_stun_header",
    "looks_like_stun",
    "padded",
    "stun_frame_length",
    "transaction_id",
]

MAGIC_COOKIE = 0x2112A442
COOKIE = MAGIC_COOKIE.to_bytes(4, "big")
HEADER_LENGTH = 20
_CHANNEL_DATA_HEADER = 4

# RFC 3489 §11.1 message types: Binding and Shared Secret request/response/error.
CLASSIC_TYPES = frozenset({0x0001, 0x0101, 0x0111, 0x0002, 0x0102, 0x0112})


def padded(length: int) -> int:
    """``length`` rounded up to a multiple of 4: STUN attributes (RFC 8489 §14) and ChannelData
    on a stream (RFC 8656 §12.5) are padded to 32-bit boundaries."""
    return (length + 3) & ~3


def is_stun_byte(first: int) -> bool:
    """The first byte of a STUN message: its two top bits are zero (RFC 8489 §6)."""
    return first < 0x40


def is_channel_data_byte(first: int) -> bool:
    """The first byte of a TURN ChannelData message (top bits 01; see the module docs)."""
    return 0x40 <= first < 0x80


def has_magic_cookie(buf: bytes | bytearray, start: int = 0) -> bool:
    """The magic cookie stands at bytes 4-8 of the header that begins at ``start``."""
    return buf.startswith(COOKIE, start + 4)


def announced_size(buf: bytes | bytearray, start: int = 0) -> int:
    """Size of the STUN message whose header begins at ``start``: 20 bytes and what its length
    field announces.  -1 when fewer than the 4 bytes holding the length are there, or when
    the first two bits are not zero."""
    if len(buf) - start < 4 or buf[start] >= 0x40:
        return -1
    return HEADER_LENGTH + ((buf[start + 2] << 8) | buf[start + 3])


def is_stun_header(buf: bytes | bytearray, start: int = 0) -> bool:
    """A STUN header at ``start``: 20 bytes, first two bits zero, a length that is a multiple of
    4, and the magic cookie or a classic RFC 3489 type (the message may be longer or cut)."""
    if len(buf) - start < HEADER_LENGTH or buf[start] >= 0x40 or buf[start + 3] & 3:
        return False
    if buf.startswith(COOKIE, start + 4):
        return True
    return ((buf[start] << 8) | buf[start + 1]) in CLASSIC_TYPES


def looks_like_stun(data: bytes | bytearray) -> bool:
    """One STUN message at the start of a datagram (RFC 8489 §6, RFC 7983 §7).

    A STUN header whose length fits in ``data``; without the magic cookie, a classic RFC 3489
    type and exactly that length.
    """
    if not is_stun_header(data):
        return False
    total = announced_size(data)
    if data.startswith(COOKIE, 4):
        return len(data) >= total
    return len(data) == total


def stun_frame_length(data: bytes | bytearray) -> int | None:
    """Size of the STUN message starting ``data`` on a stream (RFC 8489 §6.2.2).

    None while fewer than the 20 header bytes are there; ``ParseError`` when the header cannot
    be STUN (first two bits set, length not a multiple of 4), as the stream is then unframeable.
    """
    if len(data) < HEADER_LENGTH:
        return None
    if data[0] >= 0x40:
        raise ParseError("not STUN: the first two bits of the message are not zero", offset=0)
    length = (data[2] << 8) | data[3]
    if length % 4:
        raise ParseError(f"STUN message length {length} is not a multiple of 4", offset=2)
    return HEADER_LENGTH + length


def complete_frame_length(data: bytes | bytearray) -> int | None:
    """Size of the STUN message starting ``data`` on a stream once all of it is there; None
    while it is incomplete; ``ParseError`` as ``stun_frame_length``."""
    size = stun_frame_length(data)
    return size if size is not None and len(data) >= size else None


def channel_data_size(buf: bytes | bytearray, start: int = 0) -> int:
    """Size on a stream of the ChannelData message at ``start``: its 4-byte header and its data
    padded to a multiple of 4 (RFC 8656 §12.5).  The caller has checked that 4 bytes are
    there."""
    length = (buf[start + 2] << 8) | buf[start + 3]
    return _CHANNEL_DATA_HEADER + padded(length)


def transaction_id(data: bytes | bytearray) -> bytes | None:
    """The transaction id in a STUN header: the 96 bits after the cookie (RFC 8489 §5), or the
    128 bits after the length of an RFC 3489 message.  None when ``data`` holds no header."""
    if len(data) < HEADER_LENGTH or data[0] >= 0x40:
        return None
    if data.startswith(COOKIE, 4):
        return bytes(data[8:HEADER_LENGTH])
    return bytes(data[4:HEADER_LENGTH])
