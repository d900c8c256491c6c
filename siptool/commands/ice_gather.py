"""`siptool ice-gather --stun URI... --turn URI...`: gather the ICE candidates a WebRTC or SIP
client here would offer (RFC 8445 §5.1.1) — host, server-reflexive and relayed — as the
Trickle ICE page does, and say what they mean for calls from here.

The run, everything at once:

1. host candidates: one UDP socket on each address of the interfaces that are up
   (``net.interfaces``; loopback only with ``--loopback``);
2. server-reflexive: a Binding request (RFC 8489) from each host socket to each --stun server
   of its family; the XOR-MAPPED-ADDRESS is the candidate (none when it equals the base, RFC
   8445 §5.1.3, but the mapping is kept for the verdict);
3. relayed: an Allocate (RFC 8656) to each --turn server over its transport (UDP, TCP, TLS),
   answering the long-term or REST challenge; the XOR-RELAYED-ADDRESS is the candidate, its
   XOR-MAPPED-ADDRESS the related address; the allocation is freed at once (Refresh 0).

Each candidate carries the time from the start of the run to its answer (``elapsed_ms``), its
RFC 8445 priority and foundation, and its SDP line (``stun.ice``).  The verdict (``stun.ice
.verdict``): which servers answered, the mapping seen, which relay transports work, and what
follows for calls.

Decisions:

- The check passes (exit 0) when every server asked answered with a candidate; a server that
  did not is named with why, and the others are still reported (exit 1).
- STUN is asked over UDP only: server-reflexive candidates are UDP ones (a ``stuns:`` or
  ``?transport=tcp`` STUN server is a usage error, pointing at --turn for TCP and TLS).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from siptool.addr import Address, family_of, format_address, split_address
from siptool.commands.result import CheckResult
from siptool.commands.turn_probe import allocate_relay
from siptool.errors import ExitCode, LocalBindError, SiptoolError, TransportError
from siptool.net.interfaces import HostAddress, host_addresses
from siptool.net.settings import LocalSettings
from siptool.net.stun_transport import Schedule, StunLog, UdpEndpoint, resolve_server
from siptool.net.tls import TlsOptions
from siptool.stun.ice import Candidate, CandidateType, IceVerdict, Mapping, make_candidate, verdict
from siptool.stun.message import binding_request
from siptool.stun.servers import StunServer
from siptool.stun.turn_auth import TurnCredentials

SOFTWARE = "siptool ice-gather"


@dataclass(frozen=True)
class IceGatherOptions:
    stun: tuple[StunServer, ...] = ()
    turn: tuple[StunServer, ...] = ()
    local: LocalSettings = field(default_factory=LocalSettings)
    loopback: bool = False
    credentials: Callable[[float], TurnCredentials | None] = field(
        default=lambda now: None, repr=False
    )
    tls: TlsOptions = field(default_factory=TlsOptions)


@dataclass
class ServerOutcome:
    """One server asked: whether it gave a candidate, and why not."""

    server: str
    kind: str  # "stun" or "turn"
    transport: str
    ok: bool = False
    error: str | None = None
    error_code: str | None = None
    elapsed_ms: float | None = None
    mapped: list[str] = field(default_factory=list)
    relayed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "kind": self.kind,
            "transport": self.transport,
            "ok": self.ok,
            "error": self.error,
            "elapsed_ms": self.elapsed_ms,
            "mapped": self.mapped,
            "relayed": self.relayed,
        }


@dataclass
class IceGatherResult(CheckResult):
    candidates: list[Candidate] = field(default_factory=list)
    servers: list[ServerOutcome] = field(default_factory=list)
    mappings: list[Mapping] = field(default_factory=list)
    ice: IceVerdict | None = None
    warnings: list[str] = field(default_factory=list)
    exit_code: ExitCode = field(default=ExitCode.FAILED, kw_only=True)

    def body(self) -> dict[str, Any]:
        return {
            "candidates": [c.to_dict() for c in self.candidates],
            "servers": [s.to_dict() for s in self.servers],
            "verdict": None if self.ice is None else self.ice.to_dict(),
            "sdp": [c.sdp() for c in self.candidates],
            "warnings": self.warnings,
        }


async def run_ice_gather(options: IceGatherOptions) -> IceGatherResult:
    """Gather every candidate (module docstring); every verdict is on the result."""
    result = IceGatherResult()
    started = time.monotonic()
    log = StunLog(options.local.verbose)
    endpoints: list[tuple[HostAddress, UdpEndpoint]] = []
    try:
        endpoints = await _host_sockets(options, log)
        for n, (host, endpoint) in enumerate(endpoints):
            result.candidates.append(_host_candidate(host, endpoint, n))
        if not endpoints:
            result.warnings.append("no usable host address (is any interface up?)")
        jobs: list[Awaitable[None]] = [
            _reflexive(server, endpoints, options, result, started) for server in options.stun
        ]
        jobs += [_relayed(server, options, result, started) for server in options.turn]
        await asyncio.gather(*jobs)
    except LocalBindError as exc:
        result.errors.append(exc)
        result.exit_code = ExitCode.NOT_RUN
        return result
    finally:
        for _, endpoint in endpoints:
            endpoint.close()
    _conclude(result, options)
    return result


async def _host_sockets(
    options: IceGatherOptions, log: StunLog
) -> list[tuple[HostAddress, UdpEndpoint]]:
    """One UDP socket per host address (--local-address: that one only)."""
    local = options.local
    if local.local_address:
        family = family_of(local.local_address)
        hosts = [HostAddress("-", local.local_address, family)]
    else:
        hosts = host_addresses(loopback=options.loopback, families=local.families)
    out = []
    for host in hosts:
        endpoint = await UdpEndpoint.open(
            host.family, local_address=host.address, local_port=local.local_port, log=log
        )
        out.append((host, endpoint))
    return out


def _host_candidate(host: HostAddress, endpoint: UdpEndpoint, index: int) -> Candidate:
    ip, port = endpoint.local
    return make_candidate(CandidateType.HOST, ip, port, base=ip, index=index, elapsed_ms=0.0)


async def _reflexive(
    server: StunServer,
    endpoints: list[tuple[HostAddress, UdpEndpoint]],
    options: IceGatherOptions,
    result: IceGatherResult,
    started: float,
) -> None:
    """Binding requests to ``server`` from every host socket of its family."""
    outcome = ServerOutcome(server.text, "stun", server.transport)
    result.servers.append(outcome)
    timeout = options.local.timeout
    try:
        addresses = await resolve_server(server, options.local.families, timeout)
    except TransportError as exc:
        outcome.error, outcome.error_code = exc.message, "dns_error"
        return
    errors: list[str] = []
    asks = [
        _bind(server, endpoint, address, index, outcome, result, started, timeout, errors)
        for address in addresses[:1]
        for index, (_, endpoint) in enumerate(endpoints)
        if family_of(endpoint.local[0]) == family_of(address[0])
    ]
    if not asks:
        outcome.error, outcome.error_code = "no host address of its family", "address_family"
        return
    await asyncio.gather(*asks)
    outcome.ok = bool(outcome.mapped)
    if not outcome.ok:
        outcome.error = errors[0] if errors else "no answer"
        outcome.error_code = "timeout"


async def _bind(
    server: StunServer,
    endpoint: UdpEndpoint,
    address: Address,
    index: int,
    outcome: ServerOutcome,
    result: IceGatherResult,
    started: float,
    timeout: float,
    errors: list[str],
) -> None:
    tid, wire = binding_request(software=SOFTWARE, fingerprint=True)
    exchange = await endpoint.request(address, wire, tid, Schedule(cap=timeout))
    answer = exchange.response
    reflexive = None if answer is None else answer.reflexive_address
    if reflexive is None:
        what = exchange.error or "no answer"
        if what == "timeout":
            what = f"no answer within {timeout:g} s"
        errors.append(f"{format_address(*address)}: {what}")
        return
    elapsed = round((time.monotonic() - started) * 1000.0, 3)
    outcome.elapsed_ms = elapsed if outcome.elapsed_ms is None else min(outcome.elapsed_ms, elapsed)
    mapped_ip, mapped_port = split_address(reflexive)
    base = endpoint.local
    server_text = format_address(*address)
    result.mappings.append(Mapping(base, server_text, (mapped_ip, mapped_port)))
    outcome.mapped.append(format_address(mapped_ip, mapped_port))
    if (mapped_ip, mapped_port) == base:
        return  # RFC 8445 §5.1.3: the same as its base, redundant
    if any(
        c.kind is CandidateType.SRFLX
        and (c.ip, c.port) == (mapped_ip, mapped_port)
        and c.related == format_address(*base)
        for c in result.candidates
    ):
        return  # another server saw the same mapping: one candidate
    result.candidates.append(
        make_candidate(
            CandidateType.SRFLX,
            mapped_ip,
            mapped_port,
            base=base[0],
            index=index,
            related=base,
            server=server_text,
            elapsed_ms=elapsed,
        )
    )


async def _relayed(
    server: StunServer, options: IceGatherOptions, result: IceGatherResult, started: float
) -> None:
    """One Allocate to ``server`` (made and freed by turn-probe's ``allocate_relay``): its
    relayed addresses as candidates, related to the mapped address (RFC 8839 §5.1)."""
    outcome = ServerOutcome(server.text, "turn", server.transport)
    result.servers.append(outcome)
    attempt = await allocate_relay(
        server, options.credentials(time.time()), options.local, tls=options.tls
    )
    result.warnings += [f"turn {server.text}: {w}" for w in attempt.warnings]
    allocation = attempt.allocation
    if allocation is None:
        error = attempt.error
        outcome.error = error.message if error is not None else "no allocation"
        outcome.error_code = error.code if error is not None else "error"
        return
    outcome.ok = True
    outcome.elapsed_ms = round((time.monotonic() - started) * 1000.0, 3)
    outcome.relayed = list(allocation.relayed)
    if allocation.mapped is not None:
        outcome.mapped.append(allocation.mapped)
    related = None if allocation.mapped is None else split_address(allocation.mapped)
    base = split_address(attempt.local)[0] if attempt.local else "0.0.0.0"
    for relayed in allocation.relayed:
        ip, port = split_address(relayed)
        result.candidates.append(
            make_candidate(
                CandidateType.RELAY,
                ip,
                port,
                base=base,
                related=related,
                server=attempt.address or server.hostport,
                relay_protocol=server.transport,
                elapsed_ms=outcome.elapsed_ms,
            )
        )


def _conclude(result: IceGatherResult, options: IceGatherOptions) -> None:
    order = {CandidateType.HOST: 0, CandidateType.SRFLX: 1, CandidateType.RELAY: 2}
    result.candidates.sort(key=lambda c: (order[c.kind], -c.priority))
    turn_asked: dict[str, int] = {}
    for server in options.turn:
        turn_asked[server.transport] = turn_asked.get(server.transport, 0) + 1
    result.ice = verdict(result.candidates, result.mappings, len(options.stun), turn_asked)
    for outcome in result.servers:
        if not outcome.ok:
            result.errors.append(
                SiptoolError(
                    f"{outcome.kind} {outcome.server}: {outcome.error or 'no answer'}",
                    code=outcome.error_code or "error",
                )
            )
    asked = len(options.stun) + len(options.turn)
    if asked and not result.errors:
        result.exit_code = ExitCode.OK
    elif not asked:
        result.exit_code = ExitCode.OK if result.candidates else ExitCode.FAILED


__all__ = ["IceGatherOptions", "IceGatherResult", "ServerOutcome", "run_ice_gather"]
