"""`siptool stun-probe`: STUN Binding (RFC 8489) to one or more servers, concurrently.

Every UDP server is asked from one local socket per address family, so the mapped addresses the
servers report describe the same NAT binding source: equal everywhere means the mapping did
not depend on the destination (``mapping_consistent``), a test that needs no RFC 5780 server.
TCP and TLS servers get a connection each.  Per server: local and mapped address, RTTs
(``count`` requests ``interval`` apart), SOFTWARE, RESPONSE-ORIGIN, OTHER-ADDRESS and so
RFC 5780 support, port preservation, and a MAPPED-ADDRESS that differs from
XOR-MAPPED-ADDRESS, the mark of an ALG rewriting addresses in packets (RFC 8489 §14.2 is why
XOR-MAPPED-ADDRESS exists).

Decisions:

* A check passes only on a usable answer.  A mapped address nobody can send to (0.0.0.0, port
  0, broadcast, multicast, another address family than the server's) fails it with that reason
  (``mapped`` is then null; ``xor_mapped_address``/``mapped_address`` keep what the server
  said).  An ICMP error ends the wait at once ("no STUN server at ...: port unreachable"), and
  answers refused by the transaction (wrong transaction id, bad FINGERPRINT, not STUN) are
  named ("answers rejected: ...") instead of "no answer".
* --nagios: the worst server's state (commands/nagios.py); every server answering with a
  mapping that differs between them is a WARNING even when each one alone is OK.
* Ctrl-C: the sockets and connections are closed on the way out (``finally``), then the
  runner says "interrupted" and exits 130.
"""

from __future__ import annotations

import asyncio
import enum
import statistics
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from siptool.addr import format_address, split_address
from siptool.commands.nagios import NagiosVerdict, Pinged, Thresholds, ping_verdict, unknown
from siptool.commands.result import Probed, SeveralResult
from siptool.errors import ExitCode, LocalBindError, SiptoolError, TransportError
from siptool.net.settings import LocalSettings
from siptool.net.stun_transport import (
    Exchange,
    Schedule,
    StreamEndpoint,
    StunEndpoint,
    StunLog,
    UdpEndpoint,
    open_endpoint_for,
    resolve_server,
    source_address_toward,
)
from siptool.net.tls import TlsOptions
from siptool.stun.behavior import mapped_address_problem
from siptool.stun.message import StunClass, StunMessage, binding_request
from siptool.stun.servers import StunServer

__all__ = [
    "BindingReply",
    "MappedFrom",
    "ProbeOptions",
    "ProbeResult",
    "ServerProbe",
    "StunErrorResponse",
    "nagios_verdict",
    "run_probe",
]

SERVICE = "STUN"  # the Nagios service name

Address = tuple[str, int]


@dataclass(frozen=True)
class ProbeOptions:
    """Everything one run needs, checked by the CLI before it starts."""

    servers: tuple[StunServer, ...]
    used_default_list: bool = False  # no SERVER given: --server-list, its variable or defaults
    local: LocalSettings = field(default_factory=LocalSettings)
    count: int = 1
    interval: float = 1.0
    tls: TlsOptions = field(default_factory=TlsOptions)
    software: str | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)


class MappedFrom(enum.Enum):
    """The attribute that gave a server's ``mapped`` address."""

    XOR_MAPPED_ADDRESS = "XOR-MAPPED-ADDRESS"
    MAPPED_ADDRESS = "MAPPED-ADDRESS"


@dataclass(frozen=True)
class StunErrorResponse:
    """An error response's ERROR-CODE (RFC 8489 §14.8); both None when it had none."""

    code: int | None
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "reason": self.reason}


@dataclass(frozen=True)
class BindingReply:
    """One request's outcome, as it comes (--jsonl streams these)."""

    seq: int
    transaction_id: str
    mapped: str | None
    rtt_ms: float | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "transaction_id": self.transaction_id,
            "mapped": self.mapped,
            "rtt_ms": self.rtt_ms,
            "error": self.error,
        }


@dataclass
class ServerProbe(Probed):
    """Everything learnt about one server."""

    server: str
    transport: str
    address: str | None = None
    local: str | None = None
    mapped: str | None = None
    mapped_from: MappedFrom | None = None
    xor_mapped_address: str | None = None
    mapped_address: str | None = None
    sent: int = 0
    received: int = 0
    rtts_ms: list[float] = field(default_factory=list)
    software: str | None = None
    other_address: str | None = None
    changed_address: str | None = None
    response_origin: str | None = None
    source_address: str | None = None
    legacy_reply: bool | None = None
    fingerprint: bool | None = None
    error_response: StunErrorResponse | None = None
    connect_ms: float | None = None
    tls_version: str | None = None
    mappings_seen: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def answered(self) -> bool:
        """A success response that says what the server saw (RFC 8489 §14.2 requires it)."""
        return self.received > 0 and self.error_response is None and self.mapped is not None

    @property
    def rfc5780(self) -> bool | None:
        """OTHER-ADDRESS is how a server says it can run the RFC 5780 tests (§7.4)."""
        if not self.received:
            return None
        return self.other_address is not None

    @property
    def port_preserved(self) -> bool | None:
        if self.mapped is None or self.local is None:
            return None
        return split_address(self.mapped)[1] == split_address(self.local)[1]

    @property
    def alg_suspected(self) -> bool | None:
        if self.xor_mapped_address is None or self.mapped_address is None:
            return None
        return self.xor_mapped_address != self.mapped_address

    @property
    def loss_pct(self) -> float | None:
        if not self.sent:
            return None
        return round(100.0 * (self.sent - self.received) / self.sent, 1)

    @property
    def rtt_avg_ms(self) -> float | None:
        return round(statistics.fmean(self.rtts_ms), 3) if self.rtts_ms else None

    @property
    def name(self) -> str:
        return self.server

    def to_dict(self) -> dict[str, Any]:
        r = self.rtts_ms
        return {
            "server": self.server,
            "transport": self.transport,
            "address": self.address,
            "local": self.local,
            "mapped": self.mapped,
            "mapped_from": None if self.mapped_from is None else self.mapped_from.value,
            "xor_mapped_address": self.xor_mapped_address,
            "mapped_address": self.mapped_address,
            "alg_suspected": self.alg_suspected,
            "rtt_ms": r[0] if r else None,
            "rtt_min_ms": min(r) if r else None,
            "rtt_avg_ms": self.rtt_avg_ms,
            "rtt_max_ms": max(r) if r else None,
            "sent": self.sent,
            "received": self.received,
            "loss_pct": self.loss_pct,
            "software": self.software,
            "other_address": self.other_address,
            "changed_address": self.changed_address,
            "response_origin": self.response_origin,
            "source_address": self.source_address,
            "rfc5780": self.rfc5780,
            "legacy_reply": self.legacy_reply,
            "fingerprint_ok": self.fingerprint,
            "port_preserved": self.port_preserved,
            "error_response": None
            if self.error_response is None
            else self.error_response.to_dict(),
            "connect_ms": self.connect_ms,
            "tls_version": self.tls_version,
            "warnings": self.warnings,
            "errors": [e.to_dict() for e in self.errors],
        }


@dataclass
class ProbeResult(SeveralResult):
    servers: list[ServerProbe]
    _: KW_ONLY
    used_default_list: bool = False

    @property
    def probed(self) -> list[ServerProbe]:
        return self.servers

    @property
    def mapping_consistent(self) -> bool | None:
        """Whether every UDP server saw the same mapping of our socket (per address family,
        as each family has its own socket); None with fewer than two answers to compare."""
        by_family: dict[bool, set[str]] = {}
        counted = 0
        for probe in self.servers:
            if probe.transport != "udp" or not probe.answered:
                continue
            for mapped in probe.mappings_seen:
                by_family.setdefault(mapped.startswith("["), set()).add(mapped)
            counted += 1
        if counted < 2 and all(len(m) <= 1 for m in by_family.values()):
            return None
        return all(len(mapped) == 1 for mapped in by_family.values())

    @property
    def port_preserved(self) -> bool | None:
        answers = [p.port_preserved for p in self.servers if p.port_preserved is not None]
        if not answers:
            return None
        return all(answers)

    @property
    def behind_nat(self) -> bool | None:
        pairs = [(p.local, p.mapped) for p in self.servers if p.mapped and p.local]
        if not pairs:
            return None
        return any(local != mapped for local, mapped in pairs)


# ------------------------------------------------------------------------ one response


def _record(probe: ServerProbe, exchange: Exchange, local: Address) -> None:
    """What one response says, into ``probe``."""
    message = exchange.response
    if message is None:
        return
    probe.received += 1
    if exchange.rtt is not None:
        probe.rtts_ms.append(round(exchange.rtt * 1000, 3))
    if exchange.retransmitted and "rtt after a retransmission" not in " ".join(probe.warnings):
        probe.warnings.append(
            "rtt after a retransmission: it may time an earlier copy (Karn's problem)"
        )
    _record_error_response(probe, message)
    probe.legacy_reply = message.legacy
    probe.fingerprint = message.fingerprint_ok
    _record_mapping(probe, message)
    probe.software = message.software
    probe.other_address = message.other_address or None
    probe.changed_address = message.changed_address
    probe.response_origin = message.response_origin
    probe.source_address = message.source_address
    probe.local = format_address(*local)
    _record_warnings(probe, exchange)


def _record_error_response(probe: ServerProbe, message: StunMessage) -> None:
    if message.error_code is not None:
        code, reason = message.error_code
        probe.error_response = StunErrorResponse(code, reason)
        probe.errors.append(SiptoolError(f"{code} {reason}", code="error_response"))
    elif message.msg_class is StunClass.ERROR_RESPONSE:
        probe.error_response = StunErrorResponse(None, None)
        _add_error(probe, "error_response", "an error response without ERROR-CODE")


def _record_mapping(probe: ServerProbe, message: StunMessage) -> None:
    """The mapped address, checked for use (RFC 8489 §14.2 prefers the XOR form)."""
    probe.xor_mapped_address = message.xor_mapped_address
    probe.mapped_address = message.mapped_address
    probe.mapped = message.reflexive_address
    if probe.mapped is not None and probe.address is not None:
        problem = mapped_address_problem(probe.mapped, probe.address)
        if problem is not None:
            _add_error(probe, "unusable_mapped_address", problem)
            probe.mapped = None
    if message.xor_mapped_address:
        probe.mapped_from = MappedFrom.XOR_MAPPED_ADDRESS
    elif message.mapped_address:
        probe.mapped_from = MappedFrom.MAPPED_ADDRESS
    else:
        probe.mapped_from = None
    if (
        probe.mapped is None
        and probe.error_response is None
        and probe.xor_mapped_address is None
        and probe.mapped_address is None
    ):
        _add_error(
            probe,
            "no_mapped_address",
            "the success response has neither XOR-MAPPED-ADDRESS nor MAPPED-ADDRESS",
        )
    if probe.mapped and probe.mapped not in probe.mappings_seen:
        probe.mappings_seen.append(probe.mapped)
    if len(probe.mappings_seen) > 1:
        note = "the mapping changed between requests: " + ", ".join(probe.mappings_seen)
        probe.warnings = [w for w in probe.warnings if not w.startswith("the mapping changed")]
        probe.warnings.append(note)


def _record_warnings(probe: ServerProbe, exchange: Exchange) -> None:
    """An ALG rewriting MAPPED-ADDRESS, a RESPONSE-ORIGIN that is not the sender."""
    if probe.alg_suspected:
        _add_warning(
            probe,
            f"MAPPED-ADDRESS {probe.mapped_address} differs from XOR-MAPPED-ADDRESS "
            f"{probe.xor_mapped_address}: an ALG on the path rewrites addresses in packets",
        )
    origin = probe.response_origin
    if origin and exchange.source and origin != format_address(*exchange.source):
        _add_warning(
            probe,
            f"RESPONSE-ORIGIN {origin} is not where the response came from "
            f"({format_address(*exchange.source)}): the server is behind a NAT or misconfigured",
        )


def _add_warning(probe: ServerProbe, warning: str) -> None:
    if warning not in probe.warnings:
        probe.warnings.append(warning)


def _add_error(probe: ServerProbe, code: str, message: str) -> None:
    if not any(e.code == code and e.message == message for e in probe.errors):
        probe.errors.append(SiptoolError(message, code=code))


# ------------------------------------------------------------------------ one server


def _local_for(endpoint: StunEndpoint, address: Address) -> Address:
    """The socket's address with the IP the kernel uses toward ``address`` when wildcard."""
    ip, port = endpoint.local
    if ip in ("0.0.0.0", "::"):
        ip = source_address_toward(address) or ip
    return ip, port


class _UdpSockets:
    """One UDP socket per address family, opened on first use."""

    def __init__(self, options: ProbeOptions, log: StunLog) -> None:
        self.options = options
        self.log = log
        self.sockets: dict[int, UdpEndpoint] = {}
        self.locks: dict[int, asyncio.Lock] = {}

    async def get(self, family: int) -> UdpEndpoint:
        lock = self.locks.setdefault(family, asyncio.Lock())
        async with lock:
            if family not in self.sockets:
                self.sockets[family] = await UdpEndpoint.open(
                    family,
                    local_address=self.options.local.local_address,
                    local_port=self.options.local.local_port,
                    log=self.log,
                )
        return self.sockets[family]

    def close(self) -> None:
        for endpoint in self.sockets.values():
            endpoint.close()


ReplyCallback = Callable[[ServerProbe, BindingReply], None]


async def probe_server(
    server: StunServer,
    options: ProbeOptions,
    udp: _UdpSockets,
    log: StunLog,
    on_reply: ReplyCallback | None = None,
) -> ServerProbe:
    """Resolve ``server``, reach it (the shared UDP socket or a connection of its own) and
    send it ``options.count`` Binding requests.  ``LocalBindError`` (and so a --ca-file
    siptool cannot use) is raised: the check cannot run."""
    probe = ServerProbe(server.text, server.transport)
    try:
        addresses = await resolve_server(server, options.local.families, options.local.timeout)
    except TransportError as exc:
        probe.errors.append(SiptoolError(exc.message, code="dns_error"))
        return probe
    address = addresses[0]
    probe.address = format_address(*address)
    try:
        endpoint = await open_endpoint_for(
            server, address, udp=udp.get, tls=options.tls, settings=options.local, log=log
        )
    except LocalBindError:
        raise
    except TransportError as exc:
        probe.errors.append(SiptoolError(exc.message, code="transport_error"))
        return probe
    try:
        if isinstance(endpoint, StreamEndpoint):
            connect = endpoint.connect_time
            probe.connect_ms = round(connect * 1000, 3) if connect is not None else None
            probe.tls_version = endpoint.tls_version
        await _ask(probe, server, endpoint, address, options, on_reply)
    finally:
        if server.transport != "udp":
            endpoint.close()  # the UDP sockets are shared: run_probe closes them
    return probe


async def _ask(
    probe: ServerProbe,
    server: StunServer,
    endpoint: StunEndpoint,
    address: Address,
    options: ProbeOptions,
    on_reply: ReplyCallback | None,
) -> None:
    """``options.count`` requests ``options.interval`` apart over ``endpoint``."""
    local = _local_for(endpoint, address)
    probe.local = format_address(*local)
    schedule = Schedule(cap=options.local.timeout)
    last_error: str | None = None
    failure: SiptoolError | None = None
    for n in range(options.count):
        if n:
            await asyncio.sleep(options.interval)
        tid, wire = binding_request(software=options.software, fingerprint=True)
        probe.sent += 1
        exchange = await endpoint.request(address, wire, tid, schedule)
        if on_reply is not None:
            on_reply(probe, _reply(n + 1, tid, exchange))
        if exchange.response is None:
            last_error = exchange.error or "no answer"
            failure = _failure(exchange, probe.address or server.hostport)
            if server.transport != "udp" and last_error != "timeout" and failure is None:
                break  # the connection is gone; the rest would fail the same way
            continue
        _record(probe, exchange, local)
    if not probe.received:
        probe.errors.append(failure or _no_answer(probe, last_error, options.local.timeout))


def _reply(seq: int, tid: bytes, exchange: Exchange) -> BindingReply:
    answer = exchange.response
    return BindingReply(
        seq=seq,
        transaction_id=tid.hex(),
        mapped=None if answer is None else answer.reflexive_address,
        rtt_ms=None if answer is None or exchange.rtt is None else round(exchange.rtt * 1000, 3),
        error=None if answer is not None else exchange.error or "no answer",
    )


def _no_answer(probe: ServerProbe, last_error: str | None, timeout: float) -> SiptoolError:
    """Silence until the timeout, or the transport failure that ended the wait."""
    if last_error == "timeout":
        requests = f"{probe.sent} request{'s' if probe.sent != 1 else ''}"
        return SiptoolError(
            f"no answer from {probe.address} within {timeout:g} s ({requests})", code="timeout"
        )
    return SiptoolError(f"{probe.address}: {last_error}", code="transport_error")


def _failure(exchange: Exchange, address: str) -> SiptoolError | None:
    """The error of an exchange that ended with an ICMP error or only with answers it
    refused; None for silence or a transport failure."""
    if exchange.unreachable:
        sender = exchange.unreachable_from
        if exchange.unreachable == "port unreachable" and sender in (
            None,
            split_address(address)[0],
        ):
            return SiptoolError(
                f"no STUN server at {address}: port unreachable", code="unreachable"
            )
        via = f" (ICMP from {sender})" if sender else ""
        return SiptoolError(f"{address}: {exchange.unreachable}{via}", code="unreachable")
    if exchange.rejected:
        return SiptoolError(f"answers rejected: {', '.join(exchange.rejected)}", code="rejected")
    return None


# ------------------------------------------------------------------------ the run


async def run_probe(options: ProbeOptions, on_reply: ReplyCallback | None = None) -> ProbeResult:
    """Probe every server concurrently; ``on_reply`` sees each request's outcome as it comes.
    The sockets are closed whatever happens, Ctrl-C included."""
    log = StunLog(options.local.verbose)
    udp = _UdpSockets(options, log)
    tasks = [
        asyncio.ensure_future(probe_server(s, options, udp, log, on_reply)) for s in options.servers
    ]
    try:
        probes = await asyncio.gather(*tasks)
    except LocalBindError as exc:
        result = ProbeResult([], exit_code=ExitCode.NOT_RUN, errors=[exc])
    else:
        ok = all(p.answered for p in probes)
        code = ExitCode.OK if ok else ExitCode.FAILED
        result = ProbeResult(list(probes), exit_code=code)
    finally:
        # gather leaves the other probes running when one raises: stop them (their
        # connections close in probe_server's finally) before the shared sockets go.
        for task in tasks:
            task.cancel()
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            udp.close()
    result.used_default_list = options.used_default_list
    result.nagios = nagios_verdict(result, options.thresholds)
    return result


def nagios_verdict(result: ProbeResult, limits: Thresholds) -> NagiosVerdict:
    """The --nagios line: the worst server's state, every server's summary and perfdata;
    a mapping that differs between servers is at least a WARNING."""
    if not result.servers:
        return unknown(SERVICE, result.errors)
    differs = "mapping differs between servers" if result.mapping_consistent is False else None
    return ping_verdict(SERVICE, map(_pinged, result.servers), limits, warning=differs)


def _pinged(probe: ServerProbe) -> Pinged:
    avg = probe.rtt_avg_ms
    if probe.answered and avg is not None:
        what = f"{probe.server} mapped {probe.mapped} in {avg:.1f} ms"
    else:
        what = f"{probe.server}: {probe.failure}"
    return Pinged(probe.answered, avg, probe.loss_pct, what)
