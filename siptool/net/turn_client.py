"""asyncio I/O for a TURN client (RFC 8656): the connection to the server and a peer socket.

The STUN endpoints of ``siptool.net.stun_transport`` carry the requests (their RFC 8489
retransmissions, ICMP errors, -v and --pcap-out included); the TURN endpoints here add what
else a TURN server sends the client: Data indications and ChannelData (RFC 8656 §11-12),
handed to ``on_relayed`` as ``RelayedFrame``s instead of being taken for wrong answers.
``TurnClient`` runs one request through the credential rounds of ``siptool.stun.turn_auth``
(401, 438) and sends Send indications and ChannelData.  ``PeerSocket`` is the UDP socket
siptool plays the peer with.

Decisions:

* Data indications and ChannelData are taken only from the server's address (on UDP
  anything else goes the STUN endpoint's way: a stray); a frame that does not parse (a lying
  ChannelData length, an indication without DATA) is dropped and counted in ``dropped`` by
  reason, never an error of the run.
* On TCP and TLS one stream carries STUN messages and ChannelData (RFC 8656 §12.5):
  ``TurnStreamEndpoint`` names ``_TurnStreamProtocol`` as its ``protocol_class``, which
  frames both (ChannelData by its header and padding to 4, STUN by its length).
* An RFC 6062 data connection (``TurnDataEndpoint``) is framed as STUN until the
  ConnectionBind success response, and raw from the byte after it (§4.3): what came in the
  same read after that response is the peer's already, handed to ``on_raw`` as it is.
* Indications other than Data (ConnectionAttempt, RFC 6062 §4.4) go to ``on_indication``
  when it is set, else they are dropped and counted.
* ``TcpPeer`` is siptool's own TCP peer: it listens (for the relay's Connect) and connects
  (to the relayed address, for ConnectionAttempt), and hands every connection's bytes to
  ``on_data``.  Its connections are not in --pcap-out (the tap records what the client
  sends and receives).
* Each success or error response to a request is kept as bytes until the client has read it,
  so that its MESSAGE-INTEGRITY can be checked with the long-term key (RFC 8489 §9.2.5).
* Arrival times are ``time.monotonic_ns()``: the probe payloads carry nanoseconds.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from siptool.addr import Address, format_address, normalize_address
from siptool.errors import LocalBindError, ParseError, TransportError
from siptool.net.connect import os_reason
from siptool.net.settings import LocalSettings
from siptool.net.stun_transport import (
    Exchange,
    Schedule,
    StreamEndpoint,
    StunEndpoint,
    StunLog,
    UdpEndpoint,
    _StreamProtocol,
)
from siptool.net.tls import TlsOptions
from siptool.stun.framing import (
    HEADER_LENGTH,
    complete_frame_length,
    is_channel_data_byte,
    is_stun_byte,
    transaction_id,
)
from siptool.stun.message import (
    CONNECTION_BIND,
    DATA_METHOD,
    SEND,
    StunClass,
    StunMessage,
    new_transaction_id,
    parse_stun,
)
from siptool.stun.servers import StunServer
from siptool.stun.turn import (
    encode_channel_data,
    parse_channel_data,
    read_data_indication,
    read_probe,
    send_attributes,
    stream_channel_data,
)
from siptool.stun.turn_auth import AuthFailure, TurnAuth

__all__ = [
    "PeerConnection",
    "PeerSocket",
    "RelayedFrame",
    "TcpPeer",
    "TurnAnswer",
    "TurnClient",
    "TurnDataEndpoint",
    "TurnEndpoint",
    "TurnLog",
    "open_turn_endpoint",
]

# Credential rounds of one request: the request, its 401, a 438, and one to spare.
MAX_ROUNDS = 4


class TurnLog(StunLog):
    """-v: STUN decoded, ChannelData and probe payloads named."""

    def describe(self, data: bytes) -> str:
        if data and is_channel_data_byte(data[0]):
            try:
                channel, payload = parse_channel_data(data)
            except ParseError as exc:
                return f"bad ChannelData ({exc})"
            return f"ChannelData channel 0x{channel:04X}: {_payload(payload)}"
        if data and is_stun_byte(data[0]):
            return super().describe(data)
        return _payload(data)


def _payload(data: bytes) -> str:
    probe = read_probe(data)
    if probe is None:
        return f"{len(data)} bytes of data"
    return f"probe test {probe.test} seq {probe.seq}, {len(data)} bytes"


@dataclass(frozen=True)
class RelayedFrame:
    """Data the server relayed from a peer: by Data indication (``peer`` set) or ChannelData
    (``channel`` set)."""

    data: bytes
    arrived_ns: int
    peer: str | None = None
    channel: int | None = None


def _is_indication(data: bytes) -> bool:
    # RFC 8489 §5: class bits C1 (0x0100 of the type) 0 and C0 (0x0010) 1.
    return len(data) >= HEADER_LENGTH and not data[0] & 0x01 and bool(data[1] & 0x10)


class TurnEndpoint(StunEndpoint):
    """What the TURN endpoints add to a STUN one (see the module docs)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.turn_server: Address | None = None
        self.on_relayed: Callable[[RelayedFrame], None] | None = None
        self.on_indication: Callable[[StunMessage], None] | None = None
        self.dropped: Counter[str] = Counter()
        self.raw_responses: dict[bytes, bytes] = {}

    def _on_message(self, data: bytes, source: Address) -> None:
        from_server = self.turn_server is not None and normalize_address(source) == self.turn_server
        if data and from_server and (is_channel_data_byte(data[0]) or _is_indication(data)):
            self.log("recv", self.transport_name, self.local, source, data)
            self._relayed(data)
            return
        tid = transaction_id(data)
        if tid is not None and tid in self._waiters and len(data) > 1 and data[0] & 0x01:
            self.raw_responses[tid] = data
        super()._on_message(data, source)

    def _relayed(self, data: bytes) -> None:
        arrived = time.monotonic_ns()
        try:
            if is_channel_data_byte(data[0]):
                channel, payload = parse_channel_data(data)
                frame = RelayedFrame(payload, arrived, channel=channel)
            else:
                message = parse_stun(data)
                if message.method != DATA_METHOD:
                    self._other_indication(message)
                    return
                peer, payload = read_data_indication(message)
                frame = RelayedFrame(payload, arrived, peer=peer)
        except ParseError as exc:
            self.dropped[exc.message] += 1
            self.log.note(f"dropped from the server: {exc}")
            return
        if self.on_relayed is not None:
            self.on_relayed(frame)

    def _other_indication(self, message: StunMessage) -> None:
        if self.on_indication is None:
            self.dropped[f"{message.method_name} indication"] += 1
            return
        self.on_indication(message)


class TurnUdpEndpoint(TurnEndpoint, UdpEndpoint):
    """The UDP socket to a TURN server."""


class _TurnStreamProtocol(_StreamProtocol):
    """A stream of STUN messages and ChannelData (RFC 8656 §12.5)."""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.buffer:
            if is_channel_data_byte(self.buffer[0]):
                size = stream_channel_data(self.buffer)
            else:
                try:
                    size = complete_frame_length(self.buffer)
                except ParseError as exc:
                    self.endpoint._fail_all(
                        TransportError(f"{self.endpoint.name}: unframeable stream: {exc}")
                    )
                    self.buffer = b""
                    return
            if size is None:
                return
            frame, self.buffer = self.buffer[:size], self.buffer[size:]
            self.endpoint._on_message(frame, self.endpoint.remote)


class TurnStreamEndpoint(TurnEndpoint, StreamEndpoint):
    """A TCP or TLS connection to a TURN server."""

    protocol_class: type[_StreamProtocol] = _TurnStreamProtocol

    @classmethod
    async def open_turn(
        cls,
        transport_name: str,
        remote: Address,
        *,
        server_name: str | None,
        tls: TlsOptions,
        settings: LocalSettings,
        log: StunLog,
    ) -> TurnStreamEndpoint:
        endpoint = await cls.open(
            transport_name, remote, server_name=server_name, tls=tls, settings=settings, log=log
        )
        assert isinstance(endpoint, TurnStreamEndpoint)
        return endpoint


_CONNECTION_BIND_SUCCESS = (0x0100 | CONNECTION_BIND).to_bytes(2, "big")  # RFC 8489 §5


class _DataStreamProtocol(_StreamProtocol):
    """STUN until the ConnectionBind success, raw after it (see the module docs)."""

    endpoint: TurnDataEndpoint

    def data_received(self, data: bytes) -> None:
        endpoint = self.endpoint
        if endpoint.bound:
            endpoint._raw(data)
            return
        self.buffer += data
        while self.buffer and not endpoint.bound:
            try:
                size = complete_frame_length(self.buffer)
            except ParseError as exc:
                endpoint._fail_all(TransportError(f"{endpoint.name}: unframeable stream: {exc}"))
                self.buffer = b""
                return
            if size is None:
                return
            frame, self.buffer = self.buffer[:size], self.buffer[size:]
            tid = transaction_id(frame)
            if frame[:2] == _CONNECTION_BIND_SUCCESS and tid in endpoint._waiters:
                endpoint.bound = True
            endpoint._on_message(frame, endpoint.remote)
        if endpoint.bound and self.buffer:
            rest, self.buffer = self.buffer, b""
            endpoint._raw(rest)


class TurnDataEndpoint(TurnStreamEndpoint):
    """An RFC 6062 data connection: ConnectionBind on it, then the peer's raw bytes, which
    go to ``on_raw`` (kept until it is set)."""

    protocol_class = _DataStreamProtocol

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bound = False
        self.on_raw: Callable[[bytes, int], None] | None = None
        self._early: list[tuple[bytes, int]] = []

    def _raw(self, data: bytes) -> None:
        arrived = time.monotonic_ns()
        self.log("recv", self.transport_name, self.local, self.remote, data)
        if self.on_raw is None:
            self._early.append((data, arrived))
            return
        self.on_raw(data, arrived)

    def take_raw(self, on_raw: Callable[[bytes, int], None]) -> None:
        """From now on the peer's bytes go to ``on_raw``, those that came already first."""
        self.on_raw = on_raw
        early, self._early = self._early, []
        for data, arrived in early:
            on_raw(data, arrived)


async def open_turn_endpoint(
    server: StunServer,
    address: Address,
    *,
    tls: TlsOptions,
    settings: LocalSettings,
    log: StunLog,
) -> TurnEndpoint:
    """The socket or connection to the TURN server at ``address``; ``LocalBindError`` when
    the local address or port cannot be had, ``TransportError`` when it cannot connect."""
    endpoint: TurnEndpoint
    if server.transport == "udp":
        from siptool.addr import family_of

        udp = await TurnUdpEndpoint.open(
            family_of(address[0]),
            local_address=settings.local_address,
            local_port=settings.local_port,
            log=log,
        )
        assert isinstance(udp, TurnUdpEndpoint)
        endpoint = udp
    else:
        endpoint = await TurnStreamEndpoint.open_turn(
            server.transport,
            address,
            server_name=server.host,
            tls=tls,
            settings=settings,
            log=log,
        )
    endpoint.turn_server = normalize_address(address)
    return endpoint


# ------------------------------------------------------------------------------ the client


@dataclass
class TurnAnswer:
    """The outcome of one request after its credential rounds."""

    exchange: Exchange
    failure: AuthFailure | None = None
    integrity_ok: bool | None = None
    elapsed: float = 0.0  # seconds from the first transmission to the last answer

    @property
    def message(self) -> StunMessage | None:
        return self.exchange.response

    @property
    def ok(self) -> bool:
        return self.failure is None and self.exchange.ok


Build = Callable[[bytes], list[tuple[int, bytes]]]


class TurnClient:
    """One TURN client: requests through ``auth``, data toward peers."""

    def __init__(
        self, endpoint: TurnEndpoint, server: Address, auth: TurnAuth, schedule: Schedule
    ) -> None:
        self.endpoint = endpoint
        self.server = server
        self.auth = auth
        self.schedule = schedule

    async def request(self, method: int, build: Build) -> TurnAnswer:
        """Send a request (``build(tid)`` gives its attributes), answering 401 and 438 with
        the credentials; the answer is the last response, or why none came."""
        started = time.monotonic()
        answer: TurnAnswer | None = None
        for _ in range(MAX_ROUNDS):
            tid = new_transaction_id()
            wire = self.auth.encode(StunClass.REQUEST, method, tid, build(tid))
            exchange = await self.endpoint.request(self.server, wire, tid, self.schedule)
            raw = self.endpoint.raw_responses.pop(tid, None)
            answer = TurnAnswer(exchange, elapsed=time.monotonic() - started)
            message = exchange.response
            if message is None:
                return answer
            if message.msg_class is StunClass.SUCCESS_RESPONSE:
                self.auth.answered()
                answer.integrity_ok = None if raw is None else self.auth.verify(raw)
                return answer
            outcome = self.auth.challenge(message)
            if outcome is True:
                continue
            self.auth.answered()
            if isinstance(outcome, AuthFailure):
                answer.failure = outcome
            return answer
        assert answer is not None
        return answer

    def indicate(self, peer: str, data: bytes) -> None:
        """A Send indication to ``peer`` ("ip:port")."""
        tid = new_transaction_id()
        wire = self.auth.encode(StunClass.INDICATION, SEND, tid, send_attributes(peer, data, tid))
        self.endpoint.send(wire, self.server)

    def channel_data(self, channel: int, data: bytes) -> None:
        self.endpoint.send(
            encode_channel_data(channel, data, stream=self.endpoint.reliable), self.server
        )


class PeerSocket(UdpEndpoint):
    """siptool's own peer: a UDP socket whose datagrams go to ``on_datagram``."""

    on_datagram: Callable[[bytes, Address, int], None] | None = None

    def _on_message(self, data: bytes, source: Address) -> None:
        self.log("recv", "udp", self.local, source, data)
        if self.on_datagram is not None:
            self.on_datagram(data, source, time.monotonic_ns())

    @property
    def address(self) -> str:
        return format_address(*self.local)


# ------------------------------------------------------------------------ the TCP peer


class PeerConnection(asyncio.Protocol):
    """One TCP connection of siptool's own peer (accepted or made by it)."""

    def __init__(self, peer: TcpPeer) -> None:
        self.peer = peer
        self.transport: asyncio.Transport | None = None
        self.local: Address = ("", 0)
        self.remote: Address = ("", 0)
        self.closed = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        local, remote = transport.get_extra_info("sockname"), transport.get_extra_info("peername")
        self.local = normalize_address((str(local[0]), int(local[1])))
        self.remote = normalize_address((str(remote[0]), int(remote[1])))
        self.peer.connections.append(self)
        self.peer.accepted.set()

    def data_received(self, data: bytes) -> None:
        self.peer.log("recv", "tcp", self.local, self.remote, data)
        if self.peer.on_data is not None:
            self.peer.on_data(self, data, time.monotonic_ns())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()

    def write(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            raise TransportError(f"tcp peer connection {format_address(*self.remote)} is closed")
        self.peer.log("send", "tcp", self.local, self.remote, data)
        self.transport.write(data)


class TcpPeer:
    """siptool's own TCP peer for RFC 6062 (see the module docs)."""

    def __init__(self, log: StunLog) -> None:
        self.log = log
        self.local: Address = ("", 0)
        self.connections: list[PeerConnection] = []
        self.accepted = asyncio.Event()
        self.on_data: Callable[[PeerConnection, bytes, int], None] | None = None
        self._server: asyncio.Server | None = None

    @classmethod
    async def open(cls, ip: str, *, log: StunLog) -> TcpPeer:
        """Listen on ``ip`` at a free port; ``LocalBindError`` when it cannot."""
        peer = cls(log)
        loop = asyncio.get_running_loop()
        try:
            peer._server = await loop.create_server(lambda: PeerConnection(peer), ip, 0)
        except OSError as exc:
            raise LocalBindError(
                f"cannot listen on {ip} for the TCP peer: {exc.strerror}"
            ) from None
        name = peer._server.sockets[0].getsockname()
        peer.local = (str(name[0]), int(name[1]))
        return peer

    @property
    def address(self) -> str:
        return format_address(*self.local)

    async def connect(self, remote: Address, timeout: float) -> PeerConnection:
        """A connection from the peer's IP to ``remote`` (the relayed address);
        ``TransportError`` when it cannot be made within ``timeout``."""
        loop = asyncio.get_running_loop()
        where = format_address(*remote)
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(
                    lambda: PeerConnection(self),
                    remote[0],
                    remote[1],
                    local_addr=(self.local[0], 0),
                ),
                timeout,
            )
        except TimeoutError:
            raise TransportError(f"the peer's connection to {where} timed out") from None
        except OSError as exc:
            raise TransportError(f"the peer cannot connect to {where}: {os_reason(exc)}") from None
        return connection

    def close(self) -> None:
        for connection in self.connections:
            if connection.transport is not None:
                connection.transport.close()
        if self._server is not None:
            self._server.close()
