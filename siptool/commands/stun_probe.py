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
"""

from __future__ import annotations

import asyncio
import socket
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from siptool.commands.nagios import LABELS, Thresholds
from siptool.errors import TransportError
from siptool.net.stun_transport import (
    DEFAULT_SERVERS,
    Exchange,
    LocalBindError,
    Schedule,
    StunEndpoint,
    StunLog,
    StunServer,
    TlsOptions,
    UdpEndpoint,
    resolve_server,
    source_address_toward,
    split_server_list,
)

__all__ = ["DEFAULT_SERVERS", "ProbeResult", "ProbeSettings", "run_probe", "split_server_list"]
from siptool.stun.behavior import mapped_address_problem
from siptool.stun.message import StunClass, binding_request, format_address, split_address

EXIT_OK, EXIT_FAILED, EXIT_NOT_RUN = 0, 1, 3


@dataclass(frozen=True)
class ProbeSettings:
    timeout: float = 5.0
    families: tuple[int, ...] = (socket.AF_INET, socket.AF_INET6)
    local_address: str | None = None
    local_port: int | None = None
    verbose: bool = False
    count: int = 1
    interval: float = 1.0
    tls: TlsOptions = field(default_factory=TlsOptions)
    software: str | None = None


@dataclass
class ServerProbe:
    """Everything learnt about one server."""

    server: str
    transport: str
    address: str | None = None
    local: str | None = None
    mapped: str | None = None
    mapped_from: str | None = None  # which attribute gave ``mapped``
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
    error_response: dict[str, Any] | None = None
    connect_ms: float | None = None
    tls_version: str | None = None
    mappings_seen: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
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

    def to_dict(self) -> dict[str, Any]:
        r = self.rtts_ms
        return {
            "server": self.server,
            "transport": self.transport,
            "address": self.address,
            "local": self.local,
            "mapped": self.mapped,
            "mapped_from": self.mapped_from,
            "xor_mapped_address": self.xor_mapped_address,
            "mapped_address": self.mapped_address,
            "alg_suspected": self.alg_suspected,
            "rtt_ms": r[0] if r else None,
            "rtt_min_ms": min(r) if r else None,
            "rtt_avg_ms": round(statistics.fmean(r), 3) if r else None,
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
            "error_response": self.error_response,
            "connect_ms": self.connect_ms,
            "tls_version": self.tls_version,
            "warnings": self.warnings,
            "errors": self.errors,
        }


@dataclass
class ProbeResult:
    servers: list[ServerProbe]
    exit_code: int = EXIT_OK
    errors: list[dict[str, str]] = field(default_factory=list)
    used_default_list: bool = False

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


def _record(probe: ServerProbe, exchange: Exchange, local: tuple[str, int]) -> None:
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
    if message.error_code is not None:
        code, reason = message.error_code
        probe.error_response = {"code": code, "reason": reason}
        probe.errors.append({"code": "error_response", "message": f"{code} {reason}"})
    elif message.msg_class is StunClass.ERROR_RESPONSE:
        probe.error_response = {"code": None, "reason": None}
        _add_error(probe, "error_response", "an error response without ERROR-CODE")
    probe.legacy_reply = message.legacy
    probe.fingerprint = message.fingerprint_ok
    probe.xor_mapped_address = message.xor_mapped_address
    probe.mapped_address = message.mapped_address
    probe.mapped = message.reflexive_address
    if probe.mapped is not None and probe.address is not None:
        problem = mapped_address_problem(probe.mapped, probe.address)
        if problem is not None:
            _add_error(probe, "unusable_mapped_address", problem)
            probe.mapped = None
    probe.mapped_from = (
        "XOR-MAPPED-ADDRESS"
        if message.xor_mapped_address
        else "MAPPED-ADDRESS"
        if message.mapped_address
        else None
    )
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
    probe.software = message.software
    probe.other_address = message.other_address or None
    probe.changed_address = message.changed_address
    probe.response_origin = message.response_origin
    probe.source_address = message.source_address
    probe.local = format_address(*local)
    if probe.alg_suspected:
        warning = (
            f"MAPPED-ADDRESS {probe.mapped_address} differs from XOR-MAPPED-ADDRESS "
            f"{probe.xor_mapped_address}: an ALG on the path rewrites addresses in packets"
        )
        if warning not in probe.warnings:
            probe.warnings.append(warning)
    origin = probe.response_origin
    if origin and exchange.source and origin != format_address(*exchange.source):
        warning = (
            f"RESPONSE-ORIGIN {origin} is not where the response came from "
            f"({format_address(*exchange.source)}): the server is behind a NAT or misconfigured"
        )
        if warning not in probe.warnings:
            probe.warnings.append(warning)


def _add_error(probe: ServerProbe, code: str, message: str) -> None:
    error = {"code": code, "message": message}
    if error not in probe.errors:
        probe.errors.append(error)


def _local_for(endpoint: StunEndpoint, address: tuple[str, int]) -> tuple[str, int]:
    """The socket's address with the IP the kernel uses toward ``address`` when wildcard."""
    ip, port = endpoint.local
    if ip in ("0.0.0.0", "::"):
        ip = source_address_toward(address) or ip
    return ip, port


class _UdpSockets:
    """One UDP socket per address family, opened on first use."""

    def __init__(self, settings: ProbeSettings, log: StunLog) -> None:
        self.settings = settings
        self.log = log
        self.sockets: dict[int, UdpEndpoint] = {}
        self.locks: dict[int, asyncio.Lock] = {}

    async def get(self, family: int) -> UdpEndpoint:
        lock = self.locks.setdefault(family, asyncio.Lock())
        async with lock:
            if family not in self.sockets:
                self.sockets[family] = await UdpEndpoint.open(
                    family,
                    local_address=self.settings.local_address,
                    local_port=self.settings.local_port,
                    log=self.log,
                )
        return self.sockets[family]

    def close(self) -> None:
        for endpoint in self.sockets.values():
            endpoint.close()


ReplyCallback = Callable[[ServerProbe, dict[str, Any]], None]


async def probe_server(
    server: StunServer,
    settings: ProbeSettings,
    udp: _UdpSockets,
    log: StunLog,
    on_reply: ReplyCallback | None = None,
) -> ServerProbe:
    from siptool.net.stun_transport import StreamEndpoint

    probe = ServerProbe(server.text, server.transport)
    try:
        addresses = await resolve_server(server, settings.families, settings.timeout)
    except TransportError as exc:
        probe.errors.append({"code": "dns_error", "message": exc.message})
        return probe
    address = addresses[0]
    probe.address = format_address(*address)
    endpoint: StunEndpoint
    if server.transport == "udp":
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        endpoint = await udp.get(family)
    else:
        try:
            stream = await StreamEndpoint.open(
                server.transport,
                address,
                server_name=server.host,
                tls=settings.tls,
                local_address=settings.local_address,
                local_port=settings.local_port,
                timeout=settings.timeout,
                log=log,
            )
        except LocalBindError:
            raise
        except TransportError as exc:
            probe.errors.append({"code": "transport_error", "message": exc.message})
            return probe
        endpoint = stream
        probe.connect_ms = (
            round(stream.connect_time * 1000, 3) if stream.connect_time is not None else None
        )
        probe.tls_version = stream.tls_version
    local = _local_for(endpoint, address)
    probe.local = format_address(*local)
    schedule = Schedule(cap=settings.timeout)
    last_error: str | None = None
    failure: tuple[str, str] | None = None
    try:
        for n in range(settings.count):
            if n:
                await asyncio.sleep(settings.interval)
            tid, wire = binding_request(software=settings.software, fingerprint=True)
            probe.sent += 1
            exchange = await endpoint.request(address, wire, tid, schedule)
            if on_reply is not None:
                answer = exchange.response
                on_reply(
                    probe,
                    {
                        "seq": n + 1,
                        "transaction_id": tid.hex(),
                        "mapped": None if answer is None else answer.reflexive_address,
                        "rtt_ms": None
                        if answer is None or exchange.rtt is None
                        else round(exchange.rtt * 1000, 3),
                        "error": None if answer is not None else exchange.error or "no answer",
                    },
                )
            if exchange.response is None:
                last_error = exchange.error or "no answer"
                failure = _failure(exchange, probe.address or server.hostport)
                if server.transport != "udp" and last_error != "timeout" and failure is None:
                    break  # the connection is gone; the rest would fail the same way
                continue
            _record(probe, exchange, local)
    finally:
        if server.transport != "udp":
            endpoint.close()
    if not probe.received and failure is not None:
        probe.errors.append({"code": failure[0], "message": failure[1]})
    elif not probe.received:
        code = "timeout" if last_error == "timeout" else "transport_error"
        message = (
            f"no answer from {probe.address} within {settings.timeout:g} s"
            f" ({probe.sent} request{'s' if probe.sent != 1 else ''})"
            if code == "timeout"
            else f"{probe.address}: {last_error}"
        )
        probe.errors.append({"code": code, "message": message})
    return probe


def _failure(exchange: Exchange, address: str) -> tuple[str, str] | None:
    """(error code, message) of an exchange that ended with an ICMP error or only with answers
    it refused; None for silence or a transport failure."""
    if exchange.unreachable:
        sender = exchange.unreachable_from
        if exchange.unreachable == "port unreachable" and sender in (
            None,
            split_address(address)[0],
        ):
            return "unreachable", f"no STUN server at {address}: port unreachable"
        via = f" (ICMP from {sender})" if sender else ""
        return "unreachable", f"{address}: {exchange.unreachable}{via}"
    if exchange.rejected:
        return "rejected", f"answers rejected: {', '.join(exchange.rejected)}"
    return None


async def run_probe(
    servers: list[StunServer], settings: ProbeSettings, on_reply: ReplyCallback | None = None
) -> ProbeResult:
    log = StunLog(settings.verbose)
    udp = _UdpSockets(settings, log)
    try:
        probes = await asyncio.gather(
            *(probe_server(s, settings, udp, log, on_reply) for s in servers)
        )
    except LocalBindError as exc:
        return ProbeResult([], EXIT_NOT_RUN, [{"code": exc.code, "message": exc.message}])
    finally:
        udp.close()
    ok = all(p.answered for p in probes)
    return ProbeResult(list(probes), EXIT_OK if ok else EXIT_FAILED)


def nagios_state(
    result: ProbeResult,
    warning_ms: float | None,
    critical_ms: float | None,
    loss_warning: float,
    loss_critical: float,
) -> tuple[int, str, str]:
    """(exit status 0-3, status text, perfdata) for --nagios."""
    if not result.servers:
        return 3, "STUN UNKNOWN - " + "; ".join(e["message"] for e in result.errors), ""
    limits = Thresholds(warning_ms, critical_ms, loss_warning, loss_critical)
    worst = 0
    parts: list[str] = []
    perf: list[str] = []
    many = len(result.servers) > 1
    for index, probe in enumerate(result.servers, 1):
        d = probe.to_dict()
        avg = d["rtt_avg_ms"]
        loss = d["loss_pct"] if d["loss_pct"] is not None else 100.0
        state = limits.state(probe.answered, avg, loss)
        worst = max(worst, state)
        if probe.answered and avg is not None:
            parts.append(f"{probe.server} mapped {probe.mapped} in {avg:.1f} ms")
        else:
            reason = probe.errors[-1]["message"] if probe.errors else "no answer"
            parts.append(f"{probe.server}: {reason}")
        perf += limits.perfdata(f"_{index}" if many else "", avg, loss)
    if result.mapping_consistent is False and worst == 0:
        worst = 1
        parts.append("mapping differs between servers")
    label = LABELS[worst]
    return worst, f"STUN {label} - " + "; ".join(parts), " ".join(perf)
