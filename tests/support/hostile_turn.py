"""A hostile TURN server for the tests: answers Allocate wrongly, as a broken or malicious
server would, so siptool's turn-probe can be tried against each fault.

It is a UDP server in a thread of the test process on 127.0.0.1 at a free port, with a relay
socket of its own (also on 127.0.0.1): in the modes that allocate, it really relays (Send
indications and ChannelData to the peer, Data indications and ChannelData back), without
authentication, so that what happens after a faulty answer can be seen too.  Every message is
built and read here with ``struct`` (RFC 8489 §5, §14; RFC 8656 §12.4), never with siptool's
own codec, so a bug there cannot hide itself.

Modes (``MODES``), each one fault:

- ``ok``: a correct relay (the control: siptool passes against it).
- ``no_relayed``: the Allocate success response has no XOR-RELAYED-ADDRESS.
- ``wrong_tid``: every answer carries another transaction id.
- ``bad_integrity``: a 401 with REALM and NONCE, then a success whose MESSAGE-INTEGRITY is
  20 random bytes.
- ``no_nonce``: a 401 without NONCE or REALM.
- ``stale_loop``: a 401, then 438 Stale Nonce with a new NONCE to every try.
- ``truncated``: a success whose SOFTWARE attribute claims 200 bytes of a 24-byte message.
- ``lifetime0``: a relay whose Allocate success says LIFETIME 0.
- ``garbage``: bytes that are not STUN (and a STUN-looking header with a wrong cookie) to
  every request.
- ``lying_channel``: a relay that sends, before each real ChannelData, one whose length
  field announces 500 bytes in a 14-byte datagram.

Decisions:
- Nothing leaves loopback: the relay sends only to 127.0.0.x peers (others are dropped).
- Bounded: the thread polls its sockets every 0.1 s and ends when the block ends.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from tests.support.responders import serving

MODES = (
    "ok", "no_relayed", "wrong_tid", "bad_integrity", "no_nonce", "stale_loop", "truncated",
    "lifetime0", "garbage", "lying_channel",
)  # fmt: skip

COOKIE = 0x2112A442
ALLOCATE, REFRESH, SEND, DATA, CREATE_PERMISSION, CHANNEL_BIND = 3, 4, 6, 7, 8, 9
SUCCESS, ERROR, INDICATION = 0x0100, 0x0110, 0x0010  # RFC 8489 §5 class bits
XOR_MAPPED, XOR_RELAYED, XOR_PEER = 0x0020, 0x0016, 0x0012
LIFETIME, SOFTWARE, DATA_ATTR, CHANNEL_NUMBER = 0x000D, 0x8022, 0x0013, 0x000C
MESSAGE_INTEGRITY, ERROR_CODE, REALM, NONCE = 0x0008, 0x0009, 0x0014, 0x0015

Address = tuple[str, int]


def _attribute(kind: int, value: bytes) -> bytes:
    pad = -len(value) % 4
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * pad


def message(msg_type: int, tid: bytes, attributes: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(_attribute(k, v) for k, v in attributes)
    return struct.pack("!HHI", msg_type, len(body), COOKIE) + tid + body


def xor_address(address: Address) -> bytes:
    ip, port = address
    packed = struct.unpack("!I", socket.inet_aton(ip))[0] ^ COOKIE
    return struct.pack("!BBHI", 0, 1, port ^ (COOKIE >> 16), packed)


def read_xor_address(value: bytes) -> Address:
    _, _, port, packed = struct.unpack("!BBHI", value[:8])
    return socket.inet_ntoa(struct.pack("!I", packed ^ COOKIE)), port ^ (COOKIE >> 16)


def error_code(code: int, reason: str) -> bytes:
    return struct.pack("!HBB", 0, code // 100, code % 100) + reason.encode()


@dataclass
class Request:
    msg_type: int
    tid: bytes
    attributes: dict[int, bytes]

    @property
    def method(self) -> int:
        return self.msg_type & 0x000F

    @property
    def is_request(self) -> bool:
        return self.msg_type & 0x0110 == 0


def parse(data: bytes) -> Request | None:
    if len(data) < 20 or data[0] >= 0x40:
        return None
    msg_type, length, cookie = struct.unpack_from("!HHI", data)
    if cookie != COOKIE or 20 + length > len(data):
        return None
    attributes: dict[int, bytes] = {}
    offset = 20
    while offset + 4 <= 20 + length:
        kind, size = struct.unpack_from("!HH", data, offset)
        attributes.setdefault(kind, data[offset + 4 : offset + 4 + size])
        offset += 4 + size + (-size % 4)
    return Request(msg_type, data[8:20], attributes)


@dataclass
class HostileTurn:
    """The server's state (see the module docs)."""

    mode: str
    control: socket.socket
    relay: socket.socket
    client: Address | None = None
    channels: dict[int, Address] = field(default_factory=dict)
    nonces: int = 0
    seen: list[int] = field(default_factory=list)  # the request methods received

    @property
    def address(self) -> str:
        host, port = self.control.getsockname()[:2]
        return f"{host}:{port}"

    # -- the control socket -----------------------------------------------------------

    def on_control(self, data: bytes, source: Address) -> None:
        self.client = source
        if 0x40 <= data[0] <= 0x4F and len(data) >= 4:
            channel, length = struct.unpack_from("!HH", data)
            peer = self.channels.get(channel)
            if peer is not None:
                self._to_peer(data[4 : 4 + length], peer)
            return
        request = parse(data)
        if request is None:
            return
        if not request.is_request:
            if request.msg_type == (INDICATION | SEND) and XOR_PEER in request.attributes:
                peer = read_xor_address(request.attributes[XOR_PEER])
                self._to_peer(request.attributes.get(DATA_ATTR, b""), peer)
            return
        self.seen.append(request.method)
        for answer in self.answers(request, source):
            self.control.sendto(answer, source)

    def answers(self, request: Request, source: Address) -> list[bytes]:
        if self.mode == "garbage":
            fake = struct.pack("!HHI", 0x0103, 0, 0xDEADBEEF) + request.tid
            return [b"\xffgarbage, not STUN at all\x00\x01", fake]
        tid = os.urandom(12) if self.mode == "wrong_tid" else request.tid
        if request.method == ALLOCATE:
            return [self.allocate(request, tid, source)]
        if request.method == CHANNEL_BIND and CHANNEL_NUMBER in request.attributes:
            channel = struct.unpack("!H", request.attributes[CHANNEL_NUMBER][:2])[0]
            self.channels[channel] = read_xor_address(request.attributes[XOR_PEER])
        lifetime = request.attributes.get(LIFETIME, struct.pack("!I", 600))
        extra = [(LIFETIME, lifetime)] if request.method == REFRESH else []
        return [message(SUCCESS | request.method, tid, extra)]

    def allocate(self, request: Request, tid: bytes, source: Address) -> bytes:
        mode, signed = self.mode, MESSAGE_INTEGRITY in request.attributes
        if mode == "no_nonce":
            return message(ERROR | ALLOCATE, tid, [(ERROR_CODE, error_code(401, "Unauthorized"))])
        if mode in ("bad_integrity", "stale_loop") and not signed:
            return self._challenge(tid, 401, "Unauthorized")
        if mode == "stale_loop":
            return self._challenge(tid, 438, "Stale Nonce")
        lifetime = 0 if mode == "lifetime0" else 600
        attributes = [
            (XOR_RELAYED, xor_address(self.relay.getsockname()[:2])),
            (XOR_MAPPED, xor_address(source)),
            (LIFETIME, struct.pack("!I", lifetime)),
            (SOFTWARE, b"hostile-turn"),
        ]
        if mode == "no_relayed":
            attributes = attributes[1:]
        if mode == "bad_integrity":
            attributes.append((MESSAGE_INTEGRITY, os.urandom(20)))
        wire = message(SUCCESS | ALLOCATE, tid, attributes)
        if mode == "truncated":
            head = message(SUCCESS | ALLOCATE, tid, [])[:20]
            wire = head[:2] + struct.pack("!H", 4) + head[4:] + struct.pack("!HH", SOFTWARE, 200)
        return wire

    def _challenge(self, tid: bytes, code: int, reason: str) -> bytes:
        self.nonces += 1
        return message(
            ERROR | ALLOCATE,
            tid,
            [
                (ERROR_CODE, error_code(code, reason)),
                (REALM, b"hostile.test"),
                (NONCE, f"nonce-{self.nonces}".encode()),
            ],
        )

    # -- the relay ---------------------------------------------------------------------

    def _to_peer(self, data: bytes, peer: Address) -> None:
        if peer[0].startswith("127."):  # loopback only (see the module docs)
            self.relay.sendto(data, peer)

    def on_relay(self, data: bytes, source: Address) -> None:
        if self.client is None:
            return
        channel = next((c for c, p in self.channels.items() if p == source), None)
        if channel is None:
            attributes = [(XOR_PEER, xor_address(source)), (DATA_ATTR, data)]
            self.control.sendto(message(INDICATION | DATA, os.urandom(12), attributes), self.client)
            return
        if self.mode == "lying_channel":
            self.control.sendto(struct.pack("!HH", channel, 500) + b"0123456789", self.client)
        pad = b"\0" * (-len(data) % 4)
        self.control.sendto(struct.pack("!HH", channel, len(data)) + data + pad, self.client)


@contextlib.contextmanager
def hostile_turn(mode: str) -> Iterator[HostileTurn]:
    """A hostile TURN server in ``mode`` for the block (see the module docs)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    control = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    relay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    control.bind(("127.0.0.1", 0))
    relay.bind(("127.0.0.1", 0))
    server = HostileTurn(mode, control, relay)
    stop = threading.Event()

    def serve() -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(control, selectors.EVENT_READ, server.on_control)
            selector.register(relay, selectors.EVENT_READ, server.on_relay)
            while not stop.is_set():
                for key, _ in selector.select(0.1):
                    with contextlib.suppress(OSError, struct.error, ValueError):
                        data, source = key.fileobj.recvfrom(65535)  # type: ignore[union-attr]
                        key.data(data, source)

    with control, relay, serving(serve, stop):
        yield server
