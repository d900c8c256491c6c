"""`siptool turn-probe`: allocate a TURN relay (RFC 8656) and send data through it both ways.

The steps, each a verdict of its own: Allocate (answering 401/438 with long-term or TURN REST
credentials), CreatePermission for the peer, data by Send/Data indications, ChannelBind and
data by ChannelData, Refresh while it runs, and Refresh with LIFETIME 0 at the end (and on
Ctrl-C).  The peer is a UDP socket siptool opens itself (or an echo server given with
--peer): it echoes every probe back through the relay, so each probe measures the round
trip client -> relay -> peer -> relay -> client.  The engine is ``siptool.stun.turn`` and
``turn_auth``; the I/O ``siptool.net.turn_client``.

Decisions:

* The peer's permission is for the IP the relay will see it from (RFC 8656 §9: permissions
  are by IP only): the allocation's mapped IP when the client is behind a NAT (the peer
  socket is on the same host, behind the same NAT), else the peer socket's own IP.  The peer
  then sends first, to the relayed address; the Data indication's XOR-PEER-ADDRESS is its
  address as the relay sees it and is used from then on (a NAT may have changed the port).
* The data goes to the first relayed address; with --dual-relay both are reported.
* The check passes when the allocation is made and data came back through the relay by both
  methods.  Some loss is a warning (and counts in --nagios); all of a method's probes lost is
  ``data_lost``, said with how far they got (siptool's own peer knows whether they reached it).
* A 403 to CreatePermission is ``peer_refused``, naming the peer; 403 to Allocate
  ``forbidden``.  Every other error code is named from ``stun.turn.TURN_ERRORS``.
* Refresh (RFC 8656 §8) runs when half the allocation's lifetime has gone; permissions are
  renewed after 240 s and the channel after 480 s (§9: 300 s, §12: 600 s), so a long -n -i
  keeps its relay.  ``refreshes`` counts the Refresh requests that succeeded.
* The allocation is freed (Refresh LIFETIME 0) whatever ends the run, a failure or Ctrl-C
  included: ``deallocated`` says whether the server confirmed it.
* What the server sends that is wrong is named and the rest of the run goes on: a
  MESSAGE-INTEGRITY that does not verify (``bad_integrity``, RFC 8489 §9.2.5: the response
  is not authentic) and a LIFETIME 0 allocation (``bad_lifetime``) fail the check, and the
  tests still run and are reported; frames that do not parse (a lying ChannelData length)
  are dropped (RFC 8656 §12.4), counted in ``dropped`` and summed up in one warning.
* --nagios: -w/-c are thresholds on the allocate time; loss counts as in stun-probe.
* --peer-transport tcp (RFC 6062, ``commands/turn_probe_tcp.py``) replaces the two UDP
  methods by the TCP relay's two directions (``relay_tests.tcp``, ``tcp_passive``): Send
  indications and ChannelBind are for UDP allocations only (RFC 6062 §5.1).  The peer is
  siptool's own TCP peer: --peer is a UDP echo server and does not go with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from siptool import __version__
from siptool.addr import Address, family_of, format_address, split_address, wildcard_address
from siptool.commands.nagios import (
    NagiosState,
    NagiosVerdict,
    Thresholds,
    ms_or_unknown,
    unknown,
    verdict,
)
from siptool.commands.result import CheckResult
from siptool.commands.turn_probe_tcp import TCP, TCP_PASSIVE, TcpRelay, TcpTest, peer_address
from siptool.errors import (
    ExitCode,
    InputError,
    LocalBindError,
    ParseError,
    SiptoolError,
    TransportError,
)
from siptool.net.settings import LocalSettings
from siptool.net.stun_transport import (
    Schedule,
    StreamEndpoint,
    resolve_server,
    source_address_toward,
)
from siptool.net.tls import TlsOptions
from siptool.net.turn_client import (
    PeerConnection,
    PeerSocket,
    RelayedFrame,
    TcpPeer,
    TurnAnswer,
    TurnClient,
    TurnEndpoint,
    TurnLog,
    open_turn_endpoint,
)
from siptool.stun.message import ALLOCATE, CHANNEL_BIND, CREATE_PERMISSION, REFRESH
from siptool.stun.servers import StunServer
from siptool.stun.turn import (
    CHANNEL_FIRST,
    CHANNEL_LIFETIME,
    DEFAULT_LIFETIME,
    PERMISSION_LIFETIME,
    Allocation,
    ProbeStream,
    RelayFigures,
    RelayTally,
    allocate_attributes,
    channel_bind_attributes,
    error_for,
    permission_attributes,
    probe_payload,
    read_allocation,
    read_lifetime,
    read_probe,
    refresh_attributes,
    restamp,
)
from siptool.stun.turn_auth import TurnAuth, TurnCredentials, credentials_for

__all__ = [
    "RelayAttempt",
    "TurnProbeOptions",
    "TurnProbeResult",
    "allocate_relay",
    "nagios_verdict",
    "read_secret",
    "run_turn_probe",
]

SERVICE = "TURN"  # the Nagios service name
SOFTWARE = f"siptool/{__version__}"
HELLO, INDICATION, CHANNEL = 0, 1, 2  # the probe payloads' test numbers
TESTS = {INDICATION: "indication", CHANNEL: "channel", TCP: "tcp", TCP_PASSIVE: "tcp_passive"}
HOW = {
    INDICATION: "Send/Data indications",
    CHANNEL: "ChannelData",
    TCP: "the TCP relay (Connect)",
    TCP_PASSIVE: "the TCP relay (ConnectionAttempt)",
}
HELLO_TRIES = 5  # the peer's first datagrams to the relayed address


@dataclass(frozen=True)
class TurnProbeOptions:
    """Everything one run needs, checked by the CLI before it starts."""

    server: StunServer
    local: LocalSettings = field(default_factory=LocalSettings)
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    secret: str | None = field(default=None, repr=False)
    rest_ttl: int = 3600
    count: int = 5
    interval: float = 0.02
    size: int = 160
    lifetime: int | None = None
    ipv6_relay: bool = False
    dual_relay: bool = False
    peer: Address | None = None  # an external UDP echo peer instead of siptool's own
    peer_transport: str = "udp"  # "tcp": RFC 6062 TCP relaying
    tls: TlsOptions = field(default_factory=TlsOptions)
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def tcp_relay(self) -> bool:
        return self.peer_transport == "tcp"

    def credentials(self, now: float) -> TurnCredentials | None:
        """--secret-file (REST, valid from ``now`` for --rest-ttl), else --user/password."""
        return credentials_for(self.user, self.password, self.secret, self.rest_ttl, now)


def read_secret(path: str) -> str:
    """The first line of --secret-file; ``InputError`` (exit 3) when it cannot be read or is
    empty."""
    try:
        with open(path, encoding="utf-8") as handle:
            secret = handle.readline().rstrip("\r\n")
    except OSError as exc:
        raise InputError(f"cannot read --secret-file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"cannot read --secret-file {path}: not UTF-8 ({exc.reason})") from None
    if not secret:
        raise InputError(f"--secret-file {path} is empty")
    return secret


@dataclass
class TurnProbeResult(CheckResult):
    """Everything the run found; ``body()`` is the JSON contract's turn-probe keys."""

    server: str
    transport: str
    _: KW_ONLY
    address: str | None = None
    local: str | None = None
    connect_ms: float | None = None
    tls_version: str | None = None
    relayed: list[str] = field(default_factory=list)
    mapped: str | None = None
    lifetime_s: int | None = None
    allocate_ms: float | None = None
    software: str | None = None
    auth_mode: str | None = None
    auth_rounds: int = 0
    realm: str | None = None
    algorithm: str | None = None
    integrity_ok: bool | None = None
    permission: str | None = None  # the IP the permission was made for
    peer: str | None = None
    peer_local: str | None = None
    channel: int | None = None
    indication: RelayFigures | None = None
    channel_test: RelayFigures | None = None
    peer_transport: str = "udp"
    tcp: TcpTest | None = None
    tcp_passive: TcpTest | None = None
    refreshes: int = 0
    deallocated: bool = False
    dropped: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def allocated(self) -> bool:
        return bool(self.relayed)

    def tests(self) -> dict[int, RelayFigures | None]:
        """The figures of the tests this run makes, by test number."""
        if self.peer_transport == "tcp":
            return {t: None if r is None else r.figures for t, r in self._tcp_tests().items()}
        return {INDICATION: self.indication, CHANNEL: self.channel_test}

    def _tcp_tests(self) -> dict[int, TcpTest | None]:
        return {TCP: self.tcp, TCP_PASSIVE: self.tcp_passive}

    def worst_loss(self) -> float:
        losses = [t.loss_pct for t in self.tests().values() if t is not None]
        return max((x for x in losses if x is not None), default=100.0)

    def body(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "transport": self.transport,
            "address": self.address,
            "local": self.local,
            "relayed": self.relayed,
            "mapped": self.mapped,
            "lifetime_s": self.lifetime_s,
            "allocate_ms": self.allocate_ms,
            "software": self.software,
            "auth": {
                "mode": self.auth_mode,
                "rounds": self.auth_rounds,
                "realm": self.realm,
                "algorithm": self.algorithm,
                "integrity_ok": self.integrity_ok,
            },
            "permission": self.permission,
            "peer": self.peer,
            "peer_local": self.peer_local,
            "channel": self.channel,
            "peer_transport": self.peer_transport,
            "relay_tests": {
                "indication": None if self.indication is None else self.indication.to_dict(),
                "channel": None if self.channel_test is None else self.channel_test.to_dict(),
                "tcp": None if self.tcp is None else self.tcp.to_dict(),
                "tcp_passive": None if self.tcp_passive is None else self.tcp_passive.to_dict(),
            },
            "refreshes": self.refreshes,
            "deallocated": self.deallocated,
            "connect_ms": self.connect_ms,
            "tls_version": self.tls_version,
            "dropped": self.dropped,
            "warnings": self.warnings,
        }


# ------------------------------------------------------------------------------ the run


async def run_turn_probe(options: TurnProbeOptions) -> TurnProbeResult:
    """Allocate, test the relay both ways by both methods, free it.  Sockets are closed and
    the allocation freed whatever happens, Ctrl-C included (the cancellation goes on up)."""
    result = TurnProbeResult(
        options.server.text, options.server.transport, peer_transport=options.peer_transport
    )
    log = TurnLog(options.local.verbose)
    try:
        endpoint = await _connect(options, result, log)
        if endpoint is not None:
            session = _Session(options, result, endpoint, log)
            try:
                await session.run()
            finally:
                await session.close()
    except LocalBindError as exc:
        result.errors.append(exc)
        result.exit_code = ExitCode.NOT_RUN
    else:
        result.exit_code = _exit_code(result)
    result.nagios = nagios_verdict(result, options.thresholds)
    return result


@dataclass
class RelayAttempt:
    """One allocation made and freed by ``allocate_relay``: what ice-gather needs for a
    relayed candidate (RFC 8445 §5.1.1.2: the relayed address, its related address the
    mapped one) and how long each step took.  ``allocation`` is None when it failed, and
    ``error`` then says why (a ``SiptoolError`` with its JSON code)."""

    server: str
    transport: str  # of the connection to the server: udp, tcp, tls
    allocation: Allocation | None = None
    error: SiptoolError | None = None
    address: str | None = None  # the server's IP:port
    local: str | None = None  # ours toward it (the candidate's base, behind the relay)
    connect_ms: float | None = None  # TCP/TLS connection set-up
    allocate_ms: float | None = None  # Allocate, its credential rounds included
    elapsed_ms: float = 0.0  # the whole attempt, resolve to freed
    deallocated: bool = False
    auth_mode: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def relayed(self) -> str | None:
        return self.allocation.relayed[0] if self.allocation is not None else None


async def allocate_relay(
    server: StunServer,
    credentials: TurnCredentials | None,
    settings: LocalSettings,
    *,
    tls: TlsOptions | None = None,
    tcp_relay: bool = False,
    ipv6: bool = False,
) -> RelayAttempt:
    """Allocate one relay on ``server`` (its ``transport`` is the connection's), answering
    401/438 with ``credentials``, and free it at once (Refresh LIFETIME 0).  ``tcp_relay``
    asks for an RFC 6062 TCP relay (REQUESTED-TRANSPORT 6; a TCP or TLS server only),
    ``ipv6`` an IPv6 relayed address.  Never raises for what the server or the network did:
    the error is in the attempt.  ``LocalBindError`` (our own address) goes up."""
    started = time.monotonic()
    if tcp_relay and server.transport == "udp":
        message = "a TCP relay is allocated over TCP or TLS only (RFC 6062 §4.1)"
        return RelayAttempt(server.text, "udp", error=SiptoolError(message, code="usage"))
    options = TurnProbeOptions(
        server=server,
        local=settings,
        ipv6_relay=ipv6,
        tls=tls or TlsOptions(),
        peer_transport="tcp" if tcp_relay else "udp",
    )
    result = TurnProbeResult(server.text, server.transport)
    log = TurnLog(settings.verbose)
    allocation: Allocation | None = None
    endpoint = await _connect(options, result, log)
    if endpoint is not None:
        session = _Session(options, result, endpoint, log, credentials=credentials)
        try:
            allocation = await session._allocate()
        finally:
            await session.close()
    return RelayAttempt(
        server.text,
        server.transport,
        allocation=allocation,
        error=result.errors[0] if result.errors else None,
        address=result.address,
        local=result.local,
        connect_ms=result.connect_ms,
        allocate_ms=result.allocate_ms,
        elapsed_ms=round((time.monotonic() - started) * 1000, 3),
        deallocated=result.deallocated,
        auth_mode=result.auth_mode,
        warnings=result.warnings,
    )


async def _connect(
    options: TurnProbeOptions, result: TurnProbeResult, log: TurnLog
) -> TurnEndpoint | None:
    """Resolve the server and open the socket or connection; None (the error recorded)
    when that fails.  ``LocalBindError`` goes up: the check cannot run."""
    server = options.server
    try:
        addresses = await resolve_server(server, options.local.families, options.local.timeout)
    except TransportError as exc:
        result.errors.append(SiptoolError(exc.message, code="dns_error"))
        return None
    address = addresses[0]
    result.address = format_address(*address)
    try:
        endpoint = await open_turn_endpoint(
            server, address, tls=options.tls, settings=options.local, log=log
        )
    except LocalBindError:
        raise
    except TransportError as exc:
        tls = server.transport == "tls" and ("TLS" in exc.message or "certificate" in exc.message)
        result.errors.append(SiptoolError(exc.message, code="tls" if tls else "timeout"))
        return None
    if isinstance(endpoint, StreamEndpoint):
        connect = endpoint.connect_time
        result.connect_ms = None if connect is None else round(connect * 1000, 3)
        result.tls_version = endpoint.tls_version
    ip, port = endpoint.local
    if ip == wildcard_address(family_of(ip)):
        ip = source_address_toward(address) or ip
    result.local = format_address(ip, port)
    return endpoint


def _exit_code(result: TurnProbeResult) -> ExitCode:
    through = all(t is not None and t.received > 0 for t in result.tests().values())
    return ExitCode.OK if result.allocated and through and not result.errors else ExitCode.FAILED


class _Session:
    """One allocation, its peer and its tests."""

    def __init__(
        self,
        options: TurnProbeOptions,
        result: TurnProbeResult,
        endpoint: TurnEndpoint,
        log: TurnLog,
        *,
        credentials: TurnCredentials | None = None,
    ) -> None:
        self.options = options
        self.result = result
        self.endpoint = endpoint
        self.log = log
        if credentials is None:
            credentials = options.credentials(time.time())
        self.auth = TurnAuth(credentials, SOFTWARE)
        assert endpoint.turn_server is not None
        self.client = TurnClient(
            endpoint, endpoint.turn_server, self.auth, Schedule(cap=options.local.timeout)
        )
        self.peer_socket: PeerSocket | None = None
        self.tcp: TcpRelay | None = None
        self.peer_streams: dict[int, ProbeStream] = {}
        self.tallies: dict[int, RelayTally] = {}
        self.complete = asyncio.Event()
        self.hello = asyncio.Event()
        self.keepalive: asyncio.Task[None] | None = None
        self.lifetime = DEFAULT_LIFETIME
        endpoint.on_relayed = self._from_relay

    # -- the steps --------------------------------------------------------------------

    async def run(self) -> None:
        allocation = await self._allocate()
        if allocation is None:
            return
        relayed = allocation.relayed[0]
        if self.options.tcp_relay:
            await self._run_tcp(relayed)
            return
        if not await self._open_peer(relayed):
            return
        if not await self._permit():
            return
        self.keepalive = asyncio.ensure_future(self._keep_alive())
        await self._find_peer(relayed)
        peer = self.result.peer
        assert peer is not None
        self.result.indication = await self._test(
            INDICATION, lambda p: self.client.indicate(peer, p)
        )
        if await self._bind_channel(peer):
            channel = CHANNEL_FIRST
            self.result.channel_test = await self._test(
                CHANNEL, lambda p: self.client.channel_data(channel, p)
            )
        self._data_verdicts()

    async def _run_tcp(self, relayed: str) -> None:
        """RFC 6062: siptool's TCP peer, its permission, then both directions."""
        result, options = self.result, self.options
        ip = self._peer_ip(split_address(relayed))
        peer = await TcpPeer.open(ip, log=self.log)
        peer.on_data = self._at_tcp_peer
        self.tcp = TcpRelay(
            self.client,
            options.server,
            peer,
            settings=options.local,
            tls=options.tls,
            run_test=self._test,
            echoed=self._from_relay,
            fail=self._fail,
            errors=result.errors,
        )
        result.peer_local = peer.address
        result.permission = self._permission_ip(ip)
        if not await self._permit():
            return
        self.keepalive = asyncio.ensure_future(self._keep_alive())
        result.peer = peer_address(result.permission, peer)
        result.tcp = await self.tcp.active(result.peer, options.size)
        result.tcp_passive = await self.tcp.passive(relayed, options.size)
        self._data_verdicts()

    async def _allocate(self) -> Allocation | None:
        options = self.options
        answer = await self.client.request(
            ALLOCATE,
            lambda tid: allocate_attributes(
                tcp=options.tcp_relay,
                lifetime=options.lifetime,
                ipv6=options.ipv6_relay,
                dual=options.dual_relay,
            ),
        )
        self._record_auth(answer)
        if not answer.ok:
            self._fail(answer, "Allocate")
            return None
        assert answer.message is not None
        try:
            allocation = read_allocation(answer.message)
        except ParseError as exc:
            self.result.errors.append(SiptoolError(exc.message, code="bad_response"))
            return None
        result = self.result
        result.allocate_ms = round(answer.elapsed * 1000, 3)
        result.relayed = allocation.relayed
        result.mapped = allocation.mapped
        result.lifetime_s = allocation.lifetime
        result.software = allocation.software
        self.lifetime = allocation.lifetime or DEFAULT_LIFETIME
        if allocation.lifetime == 0:
            message = (
                "the Allocate success response grants LIFETIME 0: the allocation is gone "
                "as soon as it is made (RFC 8656 §7.2)"
            )
            result.errors.append(SiptoolError(message, code="bad_lifetime"))
        for problem in allocation.address_errors:
            result.warnings.append(f"no relayed address for {problem}")
        return allocation

    def _record_auth(self, answer: TurnAnswer) -> None:
        auth, result = self.auth, self.result
        result.auth_mode = auth.mode
        result.auth_rounds = auth.rounds
        result.realm = auth.realm
        result.algorithm = auth.algorithm if auth.key is not None else None
        result.integrity_ok = answer.integrity_ok
        if answer.integrity_ok is False:
            message = (
                "the Allocate response's MESSAGE-INTEGRITY does not verify with the key: "
                "it is not from a server that knows the password (RFC 8489 §9.2.5)"
            )
            result.errors.append(SiptoolError(message, code="bad_integrity"))

    async def _open_peer(self, relayed: str) -> bool:
        """siptool's own peer socket (or the --peer), and the IP to permit."""
        result = self.result
        if self.options.peer is not None:
            result.peer = format_address(*self.options.peer)
            result.permission = self.options.peer[0]
            return True
        relay = split_address(relayed)
        ip = self._peer_ip(relay)
        peer = await PeerSocket.open(family_of(ip), local_address=ip, log=self.log)
        assert isinstance(peer, PeerSocket)
        peer.on_datagram = self._at_peer
        self.peer_socket = peer
        result.peer_local = peer.address
        result.permission = self._permission_ip(ip)
        return True

    def _peer_ip(self, relay: Address) -> str:
        wanted = family_of(relay[0])
        chosen = self.options.local.local_address
        if chosen and family_of(chosen) == wanted:
            return chosen
        return source_address_toward(relay) or ("::1" if ":" in relay[0] else "127.0.0.1")

    def _permission_ip(self, peer_ip: str) -> str:
        """The peer's IP as the relay will see it (see the module docs)."""
        mapped, local = self.result.mapped, self.result.local
        if mapped is None or local is None:
            return peer_ip
        mapped_ip, local_ip = split_address(mapped)[0], split_address(local)[0]
        behind_nat = mapped_ip != local_ip
        if behind_nat and family_of(mapped_ip) == family_of(peer_ip):
            return mapped_ip
        return peer_ip

    async def _permit(self) -> bool:
        ip = self.result.permission
        assert ip is not None
        answer = await self.client.request(
            CREATE_PERMISSION, lambda tid: permission_attributes([ip], tid)
        )
        if answer.ok:
            return True
        status = answer.message.error_code if answer.message is not None else None
        if status is not None and status[0] == 403:
            self.result.errors.append(
                SiptoolError(
                    f"the server refuses peer {ip}: 403 {status[1]} "
                    "(allowed-peer-ip / denied-peer-ip)",
                    code="peer_refused",
                )
            )
        else:
            self._fail(answer, "CreatePermission")
        return False

    async def _find_peer(self, relayed: str) -> None:
        """siptool's peer sends first; the Data indication says where the relay saw it."""
        if self.peer_socket is None:
            return
        relay = split_address(relayed)
        pause = max(0.05, self.options.local.timeout / (2 * HELLO_TRIES))
        for seq in range(HELLO_TRIES):
            self.peer_socket.send(probe_payload(HELLO, seq, time.monotonic_ns(), 20), relay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.hello.wait(), pause * (seq + 1))
                return
        self.result.peer = format_address(self.result.permission or "", self.peer_socket.local[1])
        self.result.warnings.append(
            f"the peer's datagrams to {relayed} never came back as Data indications; "
            f"sending to {self.result.peer}"
        )

    async def _bind_channel(self, peer: str) -> bool:
        answer = await self.client.request(
            CHANNEL_BIND, lambda tid: channel_bind_attributes(CHANNEL_FIRST, peer, tid)
        )
        if not answer.ok:
            self._fail(answer, "ChannelBind")
            return False
        self.result.channel = CHANNEL_FIRST
        return True

    async def _test(self, test: int, send: Callable[[bytes], None]) -> RelayFigures:
        """``count`` probes ``interval`` apart, then the echoes until all came or --timeout."""
        options = self.options
        own_peer = self.peer_socket is not None or self.tcp is not None
        tally = RelayTally(options.count, own_peer=own_peer)
        self.tallies[test] = tally
        self.complete.clear()
        for seq in range(options.count):
            if seq:
                await asyncio.sleep(options.interval)
            now = time.monotonic_ns()
            tally.sent(seq, now)
            try:
                send(probe_payload(test, seq, now, options.size))
            except TransportError as exc:
                self.result.errors.append(SiptoolError(exc.message, code="transport_error"))
                break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.complete.wait(), options.local.timeout)
        return tally.figures()

    def _data_verdicts(self) -> None:
        for test, figures in self.result.tests().items():
            if figures is None or not figures.sent:
                continue
            how = HOW[test]
            if figures.received == 0:
                self.result.errors.append(
                    SiptoolError(
                        f"no data came back by {how}: {_how_far(figures)}", code="data_lost"
                    )
                )
            elif figures.loss_pct:
                self.result.warnings.append(f"{figures.loss_pct:g}% of the probes lost by {how}")

    # -- what arrives -------------------------------------------------------------------

    def _from_relay(self, frame: RelayedFrame) -> None:
        probe = read_probe(frame.data)
        if probe is None:
            return
        if probe.test == HELLO:
            if frame.peer is not None and not self.hello.is_set():
                self.result.peer = frame.peer
                self.hello.set()
            return
        tally = self.tallies.get(probe.test)
        if tally is not None and tally.echoed(probe, frame.arrived_ns) and tally.complete:
            self.complete.set()

    def _at_peer(self, data: bytes, source: Address, arrived_ns: int) -> None:
        """siptool's peer: count what reached it and echo it back through the relay."""
        probe = read_probe(data)
        if probe is None or probe.test == HELLO or self.peer_socket is None:
            return
        tally = self.tallies.get(probe.test)
        if tally is not None:
            tally.at_peer(probe, arrived_ns)
        with contextlib.suppress(TransportError):
            self.peer_socket.send(restamp(data, time.monotonic_ns()), source)

    def _at_tcp_peer(self, connection: PeerConnection, data: bytes, arrived_ns: int) -> None:
        """siptool's TCP peer: the probes cut out of each connection's stream, counted and
        echoed on the connection they came on."""
        stream = self.peer_streams.setdefault(id(connection), ProbeStream(self.options.size))
        for chunk in stream.feed(data):
            probe = read_probe(chunk)
            tally = None if probe is None else self.tallies.get(probe.test)
            if probe is not None and tally is not None:
                tally.at_peer(probe, arrived_ns)
            with contextlib.suppress(TransportError):
                connection.write(restamp(chunk, time.monotonic_ns()))

    # -- keeping it and freeing it ---------------------------------------------------------

    async def _keep_alive(self) -> None:
        """Refresh at half the lifetime; renew the permission and the channel (see the docs)."""
        started = time.monotonic()
        due = {"refresh": self.lifetime / 2, "permission": PERMISSION_LIFETIME * 0.8}
        due["channel"] = CHANNEL_LIFETIME * 0.8
        while True:
            await asyncio.sleep(max(1.0, min(due.values()) - (time.monotonic() - started)))
            elapsed = time.monotonic() - started
            if elapsed >= due["refresh"]:
                await self._refresh()
                due["refresh"] = elapsed + self.lifetime / 2
            if elapsed >= due["permission"]:
                await self._permit()
                due["permission"] = elapsed + PERMISSION_LIFETIME * 0.8
            if elapsed >= due["channel"]:
                if self.result.channel is not None and self.result.peer is not None:
                    await self._bind_channel(self.result.peer)
                due["channel"] = elapsed + CHANNEL_LIFETIME * 0.8

    async def _refresh(self) -> None:
        answer = await self.client.request(
            REFRESH, lambda tid: refresh_attributes(self.options.lifetime)
        )
        if answer.ok and answer.message is not None:
            self.result.refreshes += 1
            self.lifetime = read_lifetime(answer.message) or self.lifetime
        else:
            self._fail(answer, "Refresh")

    async def close(self) -> None:
        """Free the allocation (Refresh LIFETIME 0) and close the sockets."""
        try:
            if self.keepalive is not None:
                self.keepalive.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self.keepalive
            if self.result.allocated:
                answer = await self.client.request(REFRESH, lambda tid: refresh_attributes(0))
                self.result.deallocated = answer.ok
                if not answer.ok:
                    where = self.result.address or self.result.server
                    timeout = self.options.local.timeout
                    _, message = _answer_error(answer, "Refresh (lifetime 0)", where, timeout)
                    self.result.warnings.append(f"the allocation was not freed: {message}")
            self.result.dropped = dict(self.endpoint.dropped)
            self._dropped_warning()
        finally:
            self.endpoint.close()
            if self.peer_socket is not None:
                self.peer_socket.close()
            if self.tcp is not None:
                self.tcp.close()

    def _dropped_warning(self) -> None:
        dropped = self.result.dropped
        if dropped:
            reasons = "; ".join(f"{reason} ({count})" for reason, count in dropped.items())
            total = sum(dropped.values())
            self.result.warnings.append(
                f"{total} message{'s' if total != 1 else ''} from the server dropped: {reasons}"
            )

    # -- errors ----------------------------------------------------------------------------

    def _fail(self, answer: TurnAnswer, what: str) -> None:
        where = self.result.address or self.result.server
        code, message = _answer_error(answer, what, where, self.options.local.timeout)
        self.result.errors.append(SiptoolError(message, code=code))


def _answer_error(answer: TurnAnswer, what: str, where: str, timeout: float) -> tuple[str, str]:
    """The JSON error code and message of a request that did not succeed.  Silence, an ICMP
    error and a dead connection are all "no answer" (``timeout``), each said as it was."""
    if answer.failure is not None:
        return answer.failure.code, answer.failure.message
    exchange = answer.exchange
    message = exchange.response
    if message is not None:
        status, reason = message.error_code or (None, "")
        return error_for(status, reason, what)
    rejected = f"; answers rejected: {', '.join(exchange.rejected)}" if exchange.rejected else ""
    if exchange.unreachable:
        return "timeout", f"no TURN server at {where}: {exchange.unreachable}{rejected}"
    if exchange.error == "timeout":
        sends = f"{exchange.sends} request{'s' if exchange.sends != 1 else ''}"
        return (
            "timeout",
            f"no answer from {where} to {what} within {timeout:g} s ({sends}){rejected}",
        )
    return "timeout", f"{what}: {exchange.error or 'no answer'}{rejected}"


def _how_far(figures: RelayFigures) -> str:
    if figures.peer_received is None:
        return f"{figures.sent} sent, no echo from the peer"
    if figures.peer_received == 0:
        return f"none of the {figures.sent} probes reached the peer through the relay"
    return (
        f"{figures.peer_received} of {figures.sent} reached the peer, "
        "none of its echoes came back through the relay"
    )


# ----------------------------------------------------------------------------- --nagios


def nagios_verdict(result: TurnProbeResult, limits: Thresholds) -> NagiosVerdict:
    """OK when the relay works both ways; -w/-c on the allocate time; loss as stun-probe's."""
    if result.exit_code is ExitCode.NOT_RUN:
        return unknown(SERVICE, result.errors)
    ok = result.exit_code is ExitCode.OK
    loss = result.worst_loss() if result.allocated else 100.0
    state = limits.state(ok, result.allocate_ms, loss)
    if ok:
        summary = (
            f"relay {result.relayed[0]} from {result.server} allocated in "
            f"{result.allocate_ms or 0:.1f} ms, data through it both ways"
        )
    else:
        summary = f"{result.server}: {result.errors[-1].message if result.errors else 'failed'}"
    perf = [limits.time_perfdata("allocate", result.allocate_ms)]
    for test, figures in result.tests().items():
        name = TESTS[test]
        rtt = None if figures is None else figures.rtt_avg_ms
        lost = 100.0 if figures is None or figures.loss_pct is None else figures.loss_pct
        perf += [f"rtt_{name}={ms_or_unknown(rtt)};;;0", f"loss_{name}={lost:g}%;;;0;100"]
    if state is NagiosState.OK and result.warnings:
        summary += "; " + result.warnings[0]
    return verdict(SERVICE, state, summary, perf)
