"""turn-probe --peer-transport tcp: TCP relaying (RFC 6062) tested both ways.

After an Allocate with REQUESTED-TRANSPORT TCP over a TCP or TLS control connection (§4.1)
and a CreatePermission for the peer's IP, two tests, each on a data connection of its own:

* ``tcp`` (the client connects, §4.3): Connect with the XOR-PEER-ADDRESS of siptool's TCP
  peer, which listens; the server connects to it from the relayed address and answers with a
  CONNECTION-ID; a new connection to the server (TLS when the control one is) sends
  ConnectionBind with it, and after the success the probes go raw through it.
* ``tcp_passive`` (the peer connects, §4.4): the peer connects to the relayed address, the
  server announces it with a ConnectionAttempt indication (CONNECTION-ID, XOR-PEER-ADDRESS)
  on the control connection, and the client binds a data connection to it the same way.

The probes are the UDP tests' (``siptool.stun.turn``), cut out of the stream by
``ProbeStream``; the peer echoes each on the connection it came on, so each measures
client -> server -> peer -> server -> client.  ``connect_ms`` is the time from the Connect
request (or the peer's connect) to the ConnectionBind success: the relay's connection set up.

Decisions:

* The test is the session's (``commands/turn_probe.py``): this module runs the RFC 6062
  steps and hands the data connection's probes to the session as ``RelayedFrame``s, so the
  figures are counted exactly as the UDP methods' are.  It imports nothing from
  ``turn_probe`` (the session passes in what it needs), so there is no import circle.
* The data connection is opened from an ephemeral port even with --local-port: the control
  connection holds that port (RFC 6062 §4.3: a new connection).
* Each error is named: 446 and 447 from the table in ``stun.turn``; a Connect success
  without CONNECTION-ID ``bad_response``; no ConnectionAttempt within --timeout after the
  peer connected ``no_connection_attempt``; the peer unable to connect to the relayed
  address ``peer_connect``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from siptool.addr import format_address, split_address
from siptool.errors import ParseError, SiptoolError, TransportError
from siptool.net.settings import LocalSettings
from siptool.net.tls import TlsOptions
from siptool.net.turn_client import (
    RelayedFrame,
    TcpPeer,
    TurnAnswer,
    TurnClient,
    TurnDataEndpoint,
    TurnEndpoint,
)
from siptool.stun.message import CONNECT, CONNECTION_ATTEMPT, CONNECTION_BIND, StunMessage
from siptool.stun.servers import StunServer
from siptool.stun.turn import (
    ProbeStream,
    RelayFigures,
    connect_attributes,
    connection_bind_attributes,
    read_connection_attempt,
    read_connection_id,
)

__all__ = ["TCP", "TCP_PASSIVE", "TcpRelay", "TcpTest"]

TCP, TCP_PASSIVE = 3, 4  # the probe payloads' test numbers (the UDP ones are 1 and 2)

RunTest = Callable[[int, Callable[[bytes], None]], Awaitable[RelayFigures]]


@dataclass(frozen=True)
class TcpTest:
    """One TCP relay test: the figures and what set the connection up."""

    figures: RelayFigures
    connect_ms: float | None
    connection_id: int
    peer: str  # the peer as the relay saw it

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.figures.to_dict(),
            "connect_ms": self.connect_ms,
            "connection_id": self.connection_id,
            "peer": self.peer,
        }


class TcpRelay:
    """The RFC 6062 steps of one allocation (see the module docs)."""

    def __init__(
        self,
        client: TurnClient,
        server: StunServer,
        peer: TcpPeer,
        *,
        settings: LocalSettings,
        tls: TlsOptions,
        run_test: RunTest,
        echoed: Callable[[RelayedFrame], None],
        fail: Callable[[TurnAnswer, str], None],
        errors: list[SiptoolError],
    ) -> None:
        self.client = client
        self.server = server
        self.peer = peer
        self.settings = settings
        self.tls = tls
        self.run_test = run_test
        self.echoed = echoed
        self.fail = fail
        self.errors = errors
        self.size = 0
        self.data: list[TurnDataEndpoint] = []
        self.attempts: asyncio.Queue[StunMessage] = asyncio.Queue()
        control = client.endpoint
        control.on_indication = self._indication

    def _indication(self, message: StunMessage) -> None:
        if message.method == CONNECTION_ATTEMPT:
            self.attempts.put_nowait(message)
        else:
            self.client.endpoint.dropped[f"{message.method_name} indication"] += 1

    # -- the two tests ---------------------------------------------------------------

    async def active(self, peer: str, size: int) -> TcpTest | None:
        """Connect to siptool's listening peer, bind, probe (§4.3)."""
        started = time.monotonic()
        answer = await self.client.request(CONNECT, lambda tid: connect_attributes(peer, tid))
        if not answer.ok or answer.message is None:
            self.fail(answer, "Connect")
            return None
        try:
            connection_id = read_connection_id(answer.message)
        except ParseError as exc:
            self.errors.append(SiptoolError(exc.message, code="bad_response"))
            return None
        return await self._bound_test(TCP, connection_id, peer, started, size)

    async def passive(self, relayed: str, size: int) -> TcpTest | None:
        """The peer connects to the relayed address; ConnectionAttempt, bind, probe (§4.4)."""
        started = time.monotonic()
        timeout = self.settings.timeout
        try:
            await self.peer.connect(split_address(relayed), timeout)
        except TransportError as exc:
            self.errors.append(SiptoolError(exc.message, code="peer_connect"))
            return None
        try:
            message = await asyncio.wait_for(self.attempts.get(), timeout)
        except TimeoutError:
            self.errors.append(
                SiptoolError(
                    f"the peer connected to {relayed} but no ConnectionAttempt came within "
                    f"{timeout:g} s (RFC 6062 §4.4)",
                    code="no_connection_attempt",
                )
            )
            return None
        try:
            connection_id, seen = read_connection_attempt(message)
        except ParseError as exc:
            self.errors.append(SiptoolError(exc.message, code="bad_response"))
            return None
        return await self._bound_test(TCP_PASSIVE, connection_id, seen, started, size)

    async def _bound_test(
        self, test: int, connection_id: int, peer: str, started: float, size: int
    ) -> TcpTest | None:
        data = await self._bind(connection_id)
        if data is None:
            return None
        connect_ms = round((time.monotonic() - started) * 1000, 3)
        stream = ProbeStream(size)
        data.take_raw(lambda raw, at: self._from_data(stream, raw, at))
        figures = await self.run_test(test, lambda payload: data.send(payload, data.remote))
        data.close()
        return TcpTest(figures, connect_ms, connection_id, peer)

    def _from_data(self, stream: ProbeStream, raw: bytes, arrived_ns: int) -> None:
        for chunk in stream.feed(raw):
            self.echoed(RelayedFrame(chunk, arrived_ns))

    # -- the data connection ---------------------------------------------------------

    async def _bind(self, connection_id: int) -> TurnDataEndpoint | None:
        """A new connection to the server with ConnectionBind for ``connection_id``; None
        (the error recorded) when it cannot be opened or the bind fails."""
        control = self.client.endpoint
        assert isinstance(control, TurnEndpoint) and control.turn_server is not None
        settings = replace(self.settings, local_port=None)  # see the module docs
        try:
            data = await TurnDataEndpoint.open_turn(
                self.server.transport,
                control.turn_server,
                server_name=self.server.host,
                tls=self.tls,
                settings=settings,
                log=control.log,
            )
        except TransportError as exc:
            self.errors.append(SiptoolError(f"data connection: {exc.message}", code="timeout"))
            return None
        assert isinstance(data, TurnDataEndpoint)
        data.turn_server = control.turn_server
        self.data.append(data)
        binder = TurnClient(data, control.turn_server, self.client.auth, self.client.schedule)
        answer = await binder.request(
            CONNECTION_BIND, lambda tid: connection_bind_attributes(connection_id)
        )
        if not answer.ok:
            self.fail(answer, "ConnectionBind")
            data.close()
            return None
        return data

    def close(self) -> None:
        for data in self.data:
            data.close()
        self.peer.close()


def peer_address(ip: str, peer: TcpPeer) -> str:
    """The listening peer's address as the relay reaches it: the permitted IP, its port."""
    return format_address(ip, peer.local[1])
