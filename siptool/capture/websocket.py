"""SIP over WebSocket read back from a byte stream (RFC 7118): the HTTP/1.1 upgrade and the
RFC 6455 frames of one direction of a connection.

WebRTC phones (SIP.js, JsSIP) reach their server over WebSocket: an HTTP/1.1 GET with
``Upgrade: websocket`` and ``Sec-WebSocket-Protocol: sip`` (RFC 6455 §4.1, RFC 7118 §4.1), the
server's ``101 Switching Protocols`` (§4.2.2), then frames both ways, each WebSocket message
carrying exactly one SIP message (RFC 7118 §5).  This module reads one direction's bytes in
order, from wherever they come (``capture.tcp`` feeds it a reassembled TCP direction; decrypted
TLS plaintext can be fed the same way):

- ``is_http_start(buf)`` and ``upgrade_head(buf)``: whether a direction begins with HTTP, and
  what its head says (client or server, an upgrade to WebSocket, the subprotocols, the size of
  the head); None while the head is still arriving.
- ``WebSocketFramer(masked=...)``: the frames after the head, in the shape of
  ``sip.framing.SipStreamFramer`` (``feed_with_offsets``, ``lose``, ``close``): each SIP
  message as ``(stream offset of its first frame, bytes)``, each fault as a ``FramingError``,
  each close frame as a ``WebSocketClose``.
- ``sip_frame_at(buf, p)``: whether a data frame that carries SIP begins at ``p`` (a capture
  that begins after the upgrade, and resynchronisation after a hole).

Frames (RFC 6455 §5.2): 7-, 16- and 64-bit payload lengths; masked (client to server, §5.3)
and unmasked; a message fragmented over a first frame and continuation frames (§5.4) is
reassembled, control frames between its fragments included; ping and pong (§5.5.2, §5.5.3)
are skipped; a close (§5.5.1) is handed on with its status code and reason.  A message
compressed by permessage-deflate (RFC 7692 §7.2.2, RSV1 on its first frame) is inflated.

Decisions:

- Faults are reported, never raised, and the stream is decoded on: a client frame without a
  mask (RFC 6455 §5.1 says the server must fail the connection) or a server frame with one is
  named once per direction and decoded anyway, as sngrep and tshark do; a text or binary
  message that is not SIP is named with its first bytes; CR/LF-only messages are keep-alives
  (SIP.js sends CRLF CRLF) and skipped silently.
- A frame or message announcing more than ``max_message`` bytes (16 MiB, the cap of
  ``SipStreamFramer``'s bodies) is taken as a length that lies: named, and the framer
  resynchronises at the next data frame whose payload begins with a SIP start line.  A
  frame cut by the end of the stream is named with how much of it was there, and the bytes
  after its header are still searched for frames (a length that lies by less than the cap).
- Inflating does not depend on the handshake: RSV1 on a data frame is read as
  permessage-deflate whatever was negotiated, with one inflater per direction kept across
  messages (context takeover, RFC 7692 §7.2.3; a sender that resets its window per message
  reads the same).  A hole in the stream resets it.
- Which side must mask is known from the head (``masked`` True for the client, False for the
  server); None (a capture that began after the upgrade) checks nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from siptool.sip.framing import (
    FramingError,
    StreamBuffer,
    describe_line,
    find_header_end,
    starts_like_sip,
)

__all__ = [
    "MAX_HEAD",
    "MAX_MESSAGE",
    "Upgrade",
    "WebSocketClose",
    "WebSocketFramer",
    "is_http_start",
    "sip_frame_at",
    "unmask",
    "upgrade_head",
]

MAX_MESSAGE = 16 << 20
MAX_HEAD = 16384  # an opening handshake longer than this is not one decode waits for

_OP_CONTINUATION = 0
_OP_TEXT = 1
_OP_BINARY = 2
_OP_CLOSE = 8
_OP_PING = 9
_OP_PONG = 10
_FIN = 0x80
_RSV1 = 0x40
_RSV23 = 0x30
_MASK = 0x80
_MAX_CONTROL = 125  # RFC 6455 §5.5
_MAX_FRAME_HEAD = 14  # 2 + 8 (64-bit length) + 4 (mask key)
_SIP_PROBE = 16  # payload bytes unmasked to tell a SIP start line
_DEFLATE_TAIL = b"\x00\x00\xff\xff"  # RFC 7692 §7.2.2: removed by the sender, put back here
# A data frame's first byte with no reserved bit: text or binary, final or not.
_DATA_START = re.compile(rb"[\x01\x02\x81\x82]")
_KEEPALIVE = b"\r\n"


def is_http_start(buf: bytes | bytearray) -> bool:
    """Whether a direction begins like the client's or the server's half of an opening
    handshake (RFC 6455 §4.1: the handshake is a GET; §4.2.2: the answer an HTTP/1.1 status)."""
    return buf.startswith((b"GET ", b"HTTP/1."))


@dataclass(frozen=True, slots=True)
class Upgrade:
    """What an HTTP head at the start of a direction says.

    ``client``: a request (the GET) rather than a response; ``status``: a response's code;
    ``websocket``: an upgrade to WebSocket (a GET with ``Upgrade: websocket``, or a 101 with
    it); ``subprotocols``: ``Sec-WebSocket-Protocol`` (those offered by a client, the one
    chosen by a server); ``deflate``: permessage-deflate offered or accepted; ``size``: bytes
    of the head with its empty line, -1 when no end was found within ``MAX_HEAD``.
    """

    client: bool
    status: int | None
    websocket: bool
    subprotocols: tuple[str, ...]
    deflate: bool
    size: int

    @property
    def sip(self) -> bool:
        """Whether the ``sip`` subprotocol (RFC 7118 §4.1) is named."""
        return any(p.lower() == "sip" for p in self.subprotocols)


def upgrade_head(buf: bytes | bytearray) -> Upgrade | None:
    """The head at the start of ``buf`` (``is_http_start`` first); None while it is not whole."""
    end = find_header_end(buf, 0, min(len(buf), MAX_HEAD))
    if end < 0:
        if len(buf) < MAX_HEAD:
            return None
        return Upgrade(buf.startswith(b"GET "), None, False, (), False, -1)
    lines = bytes(buf[:end]).decode("latin-1").splitlines()
    client = lines[0].startswith("GET ")
    status = None
    if not client:
        parts = lines[0].split(" ", 2)
        if len(parts) > 1 and parts[1].isdigit() and len(parts[1]) == 3:
            status = int(parts[1])
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers.setdefault(name.strip().lower(), []).append(value)
    upgrade = "websocket" in _tokens(headers, "upgrade")
    protocols = tuple(_tokens(headers, "sec-websocket-protocol", lower=False))
    deflate = any(
        t.startswith("permessage-deflate") for t in _tokens(headers, "sec-websocket-extensions")
    )
    return Upgrade(client, status, upgrade and (client or status == 101), protocols, deflate, end)


def _tokens(headers: dict[str, list[str]], name: str, *, lower: bool = True) -> list[str]:
    """The comma-separated values of every ``name`` header line, stripped."""
    out = []
    for value in headers.get(name, ()):
        for token in value.split(","):
            token = token.strip()
            if token:
                out.append(token.lower() if lower else token)
    return out


@dataclass(frozen=True, slots=True)
class WebSocketClose:
    """A close frame (RFC 6455 §5.5.1) at stream ``offset``: its status code (None when the
    frame has no body) and reason."""

    offset: int
    code: int | None
    reason: str


def unmask(payload: bytes, key: bytes) -> bytes:
    """RFC 6455 §5.3: payload XOR the 4-byte masking key repeated (one big-integer XOR: a
    16 MiB payload is one C loop, not a Python one)."""
    size = len(payload)
    if not size:
        return payload
    pad = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(pad, "big")).to_bytes(size, "big")


def _header(buf: bytes | bytearray, p: int) -> tuple[int, int, int] | None:
    """(header size, payload length, mask key offset or -1) of the frame at ``p``; None when
    the header is not all in ``buf``."""
    end = len(buf)
    if end - p < 2:
        return None
    second = buf[p + 1]
    length = second & 0x7F
    size = 2
    if length == 126:
        if end - p < 4:
            return None
        length = (buf[p + 2] << 8) | buf[p + 3]
        size = 4
    elif length == 127:
        if end - p < 10:
            return None
        length = int.from_bytes(buf[p + 2 : p + 10], "big")
        size = 10
    key = -1
    if second & _MASK:
        key = p + size
        size += 4
        if end - p < size:
            return None
    return size, length, key


def sip_frame_at(buf: bytes | bytearray, p: int = 0, cap: int = MAX_MESSAGE) -> bool | None:
    """Whether a text or binary frame whose payload begins with a SIP start line begins at
    ``p``; None when too few bytes are there to tell."""
    if len(buf) - p < 1:
        return None
    if buf[p] & 0x7F not in (_OP_TEXT, _OP_BINARY):
        return False
    head = _header(buf, p)
    if head is None:
        return None
    size, length, key = head
    if length < 8 or length > cap:
        return False
    start = p + size
    probe = bytes(buf[start : start + min(length, _SIP_PROBE)])
    if len(probe) < min(length, _SIP_PROBE):
        return None
    if key >= 0:
        probe = unmask(probe, bytes(buf[key : key + 4]))
    return starts_like_sip(probe)


class WebSocketFramer(StreamBuffer):
    """SIP messages from the frames of one direction; see the module docstring.

    ``feed_with_offsets`` returns ``(offset, message)`` pairs, ``FramingError``s and
    ``WebSocketClose``s, offsets counting every byte fed (``lose`` included) from 0.
    """

    __slots__ = (
        "_after_close_noted",
        "_closed_at",
        "_compressed",
        "_discarding",
        "_inflater",
        "_mask_noted",
        "_masked",
        "_max",
        "_message_at",
        "_parts",
        "_parts_size",
        "_resync",
        "_text",
        "frames",
    )

    def __init__(self, *, masked: bool | None = None, max_message: int = MAX_MESSAGE) -> None:
        super().__init__()
        self._masked = masked
        self._max = max_message
        self._mask_noted = False
        self._resync = False  # looking for the next data frame that carries SIP
        self._parts: list[bytes] | None = None  # the fragments of a message in progress
        self._parts_size = 0
        self._message_at = 0  # stream offset of the first frame of the message in progress
        self._compressed = False
        self._text = True
        self._discarding = False  # continuations of an oversized message, until its FIN
        self._inflater: Any = None  # zlib.decompressobj, made on the first compressed message
        self._closed_at = -1
        self._after_close_noted = False
        self.frames = 0

    @property
    def buffered(self) -> int:
        """Bytes whose position must stay known: from the first frame of an unfinished
        message (whose offset its message will carry), or the unfinished frame."""
        start = self._message_at if self._parts is not None else self._base
        return self.stream_offset - min(start, self._base)

    def feed_with_offsets(
        self, data: bytes | bytearray | memoryview
    ) -> list[tuple[int, bytes] | FramingError | WebSocketClose]:
        out: list[tuple[int, bytes] | FramingError | WebSocketClose] = []
        buf = self._buf
        buf += data
        while buf:
            if self._resync and not self._resynchronise():
                break
            head = _header(buf, 0)
            if head is None:
                break
            size, length, key = head
            if length > self._max:
                self._lying(length, out)
                continue
            total = size + length
            if len(buf) < total:
                break
            payload = bytes(buf[size:total])
            if key >= 0:
                payload = unmask(payload, bytes(buf[key : key + 4]))
            self._frame(buf[0], payload, key >= 0, out)
            del buf[:total]
            self._base += total
        return out

    def _lying(self, length: int, out: list[Any]) -> None:
        shown = "MiB" if self._max % (1 << 20) == 0 else "bytes"
        cap = self._max >> 20 if shown == "MiB" else self._max
        out.append(
            FramingError(
                self._base,
                f"frame announces {length} bytes, more than the {cap} {shown} cap:"
                " skipped to the next frame that carries SIP",
            )
        )
        self._skip(1)
        self._drop_message()
        self._resync = True

    def _skip(self, count: int) -> None:
        del self._buf[:count]
        self._base += count

    def _resynchronise(self) -> bool:
        """Drop bytes up to the next data frame that carries SIP; False when none is in the
        buffer yet (its last bytes, which may begin one, are kept)."""
        buf = self._buf
        pos = 0
        while True:
            # search, not finditer: an iterator would hold the buffer, which _skip resizes.
            match = _DATA_START.search(buf, pos)
            if match is None:
                break
            pos = match.start()
            found = sip_frame_at(buf, pos, self._max)
            if found is None or found:
                self._skip(pos)
                self._resync = found is None
                return bool(found)
            pos += 1
        keep = min(len(buf), _MAX_FRAME_HEAD + _SIP_PROBE)
        self._skip(len(buf) - keep)
        if keep and len(buf) == keep and not _DATA_START.search(buf):
            self._skip(keep)
        return False

    def _frame(self, first: int, payload: bytes, masked: bool, out: list[Any]) -> None:
        self.frames += 1
        offset = self._base
        if self._masked is not None and masked != self._masked and not self._mask_noted:
            self._mask_noted = True
            out.append(FramingError(offset, _MASK_FAULT[self._masked]))
        opcode = first & 0x0F
        if opcode >= _OP_CLOSE:
            self._control(first, payload, out)
            return
        if first & _RSV23:
            out.append(FramingError(offset, f"frame with reserved bits 0x{first & 0x70:02x} set"))
        if opcode == _OP_CONTINUATION:
            self._continuation(first, payload, out)
        elif opcode in (_OP_TEXT, _OP_BINARY):
            if self._parts is not None:
                out.append(
                    FramingError(
                        self._message_at,
                        f"fragmented message of {self._parts_size} bytes never finished"
                        f" (a new message began at stream byte {offset}): dropped",
                    )
                )
            self._discarding = False
            self._parts = [payload]
            self._parts_size = len(payload)
            self._message_at = offset
            self._compressed = bool(first & _RSV1)
            self._text = opcode == _OP_TEXT
            self._grown(out)
            if first & _FIN:
                self._finish(out)
        else:
            out.append(FramingError(offset, f"frame with reserved opcode {opcode}: skipped"))

    def _continuation(self, first: int, payload: bytes, out: list[Any]) -> None:
        if self._parts is None:
            if self._discarding:
                self._discarding = not first & _FIN
            else:
                out.append(
                    FramingError(self._base, "continuation frame without a message: skipped")
                )
            return
        self._parts.append(payload)
        self._parts_size += len(payload)
        self._grown(out)
        if first & _FIN and self._parts is not None:
            self._finish(out)

    def _grown(self, out: list[Any]) -> None:
        if self._parts_size <= self._max:
            return
        out.append(
            FramingError(
                self._message_at,
                f"fragmented message grows past {self._max} bytes: dropped",
            )
        )
        self._drop_message()
        self._discarding = True

    def _drop_message(self) -> None:
        self._parts = None
        self._parts_size = 0

    def _finish(self, out: list[Any]) -> None:
        assert self._parts is not None
        parts = self._parts
        payload = parts[0] if len(parts) == 1 else b"".join(parts)
        offset = self._message_at
        self._drop_message()
        if self._compressed:
            inflated = self._inflate(payload, offset, out)
            if inflated is None:
                return
            payload = inflated
        start = 0
        while start < len(payload) and payload[start] in _KEEPALIVE:
            start += 1
        if start == len(payload):
            return  # a keep-alive
        if self._closed_at >= 0 and not self._after_close_noted:
            self._after_close_noted = True
            out.append(
                FramingError(
                    offset,
                    f"data frame after the close frame at stream byte {self._closed_at}"
                    " (RFC 6455 §5.5.1)",
                )
            )
        if starts_like_sip(payload, start):
            out.append((offset, payload[start:] if start else payload))
            return
        kind = "text" if self._text else "binary"
        out.append(
            FramingError(
                offset,
                f"{kind} message of {len(payload)} bytes is not SIP: "
                f"{describe_line(payload, start)}",
            )
        )

    def _inflate(self, payload: bytes, offset: int, out: list[Any]) -> bytes | None:
        """RFC 7692 §7.2.2: the message with its removed tail put back, through the
        direction's inflater; None (and the fault named) when it does not inflate."""
        import zlib

        if self._inflater is None:
            self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            data: bytes = self._inflater.decompress(payload + _DEFLATE_TAIL, self._max + 1)
        except zlib.error as exc:
            self._inflater = None
            out.append(FramingError(offset, f"compressed message does not inflate: {exc}"))
            return None
        if len(data) > self._max or self._inflater.unconsumed_tail:
            self._inflater = None
            out.append(FramingError(offset, f"compressed message inflates past {self._max} bytes"))
            return None
        return data

    def _control(self, first: int, payload: bytes, out: list[Any]) -> None:
        offset = self._base
        opcode = first & 0x0F
        if len(payload) > _MAX_CONTROL or not first & _FIN:
            out.append(
                FramingError(
                    offset,
                    f"control frame (opcode {opcode}) of {len(payload)} bytes"
                    f"{'' if first & _FIN else ', fragmented'} (RFC 6455 §5.5)",
                )
            )
        if opcode in (_OP_PING, _OP_PONG):
            return
        if opcode != _OP_CLOSE:
            out.append(FramingError(offset, f"frame with reserved opcode {opcode}: skipped"))
            return
        if len(payload) == 1:
            out.append(FramingError(offset, "close frame with a 1-byte body (RFC 6455 §5.5.1)"))
        code = (payload[0] << 8) | payload[1] if len(payload) >= 2 else None
        reason = payload[2:].decode("utf-8", "replace")
        if self._closed_at < 0:
            self._closed_at = offset
        out.append(WebSocketClose(offset, code, reason))

    def lose(self, nbytes: int) -> list[FramingError]:
        """``nbytes`` of the stream were never seen: the frame and message in progress are
        lost, and the framer looks for the next frame that carries SIP."""
        out = []
        if not self._resync:
            lost = " with the message in progress" if self._buf or self._parts else ""
            out.append(FramingError(self.stream_offset, f"{nbytes} bytes missing{lost}"))
        self._base += len(self._buf) + nbytes
        self._buf.clear()
        self._drop_message()
        self._discarding = False
        self._inflater = None
        self._resync = True
        return out

    def close(self) -> list[tuple[int, bytes] | FramingError | WebSocketClose]:
        """End of the stream: a frame cut short is named, and the bytes after its first one
        still searched for frames (its length may lie); an unfinished message is named."""
        out: list[tuple[int, bytes] | FramingError | WebSocketClose] = []
        for _ in range(64):  # each round drops at least one byte or ends
            if not self._buf or self._resync:
                break
            head = _header(self._buf, 0)
            if head is None:
                what = f"frame header cut short: {len(self._buf)} bytes"
            else:
                what = f"frame cut short: {len(self._buf)} of {head[0] + head[1]} bytes"
            out.append(FramingError(self._base, f"{what} at the end of the stream"))
            self._skip(1)
            self._resync = True
            out.extend(self.feed_with_offsets(b""))
        if self._parts is not None:
            out.append(
                FramingError(
                    self._message_at,
                    f"fragmented message unfinished at the end of the stream:"
                    f" {self._parts_size} bytes in {len(self._parts)} frames",
                )
            )
            self._drop_message()
        self._base += len(self._buf)
        self._buf.clear()
        return out


_MASK_FAULT = {
    True: "client frame not masked (RFC 6455 §5.1: the server must fail the connection);"
    " decoded anyway",
    False: "server frame masked (RFC 6455 §5.1: the client must fail the connection);"
    " decoded anyway",
}
