"""`siptool nat-type`: RFC 5780 NAT behaviour discovery and the RFC 3489 label.

The probes run here; ``siptool.stun.behavior`` decides.  Three UDP sockets, so that one test's
state in the NAT cannot bias another's:

* the mapping socket (RFC 5780 §4.3): test I to the server's primary address, then tests II
  (other IP, primary port) and III (other IP and port) together;
* the filtering socket (§4.4): test I to the primary address, then tests II (answer from the
  other IP and port) and III (answer from the other port) together;
* the hairpin socket (§4.5): a Binding request to the mapping socket's public address, which
  that socket sees arrive when the NAT hairpins.  The hairpin path is part of the path to the
  server, so it is awaited a third of --filter-wait (or 3 RTTs), and no longer once an ICMP
  port-unreachable says the NAT took the packet for itself.

Both tests I run at once on the full RFC 8489 schedule (capped by --timeout).  An answer that
*should* come (mapping tests) gets that schedule too; an answer that may rightly never come
(filtering tests II/III, hairpin) is awaited for ``--filter-wait`` only, at least three times
the RTT measured by test I, with retransmissions inside that window against loss.  On a LAN
the whole run takes a few hundred milliseconds.

``--lifetime`` (RFC 5780 §4.6) opens one socket per probe time (1, 2, 4, 8 ... s up to
``--lifetime-max``), each with a fresh binding toward the server; at its time a fourth socket
asks the server to answer to that binding's port (RESPONSE-PORT, RFC 5780 §7.5).  The first
binding that no longer gets the answer ends the search: the lifetime lies between its time and
the previous one's.  The run takes about the lifetime, never more than the maximum.

``--engine pystun3`` runs pystun3's RFC 3489 classifier in a child process under a watchdog
(it can wait forever on some replies); ``--compare`` runs it beside siptool's own.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from siptool.errors import TransportError
from siptool.net.stun_transport import (
    Exchange,
    LocalBindError,
    Schedule,
    StunEndpoint,
    StunLog,
    StunServer,
    UdpEndpoint,
    resolve_server,
    source_address_toward,
)
from siptool.stun.behavior import (
    Classic,
    FilteringObservations,
    Mapping,
    MappingObservations,
    NatVerdict,
    Probe,
    decide,
    other_of,
)
from siptool.stun.message import StunClass, binding_request, format_address, split_address

EXIT_OK, EXIT_FAILED, EXIT_NOT_RUN = 0, 1, 3
LIFETIME_STEPS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0)
RTT_FACTOR = 3.0

# pystun3's labels (pystun3 2.0.0 stun/__init__.py) in RFC 3489 terms.
PYSTUN3_LABELS = {
    "Blocked": Classic.UDP_BLOCKED,
    "Open Internet": Classic.OPEN_INTERNET,
    "Full Cone": Classic.FULL_CONE,
    "Symmetric UDP Firewall": Classic.SYMMETRIC_UDP_FIREWALL,
    "Restric NAT": Classic.RESTRICTED_CONE,
    "Restric Port NAT": Classic.PORT_RESTRICTED_CONE,
    "Symmetric NAT": Classic.SYMMETRIC,
}


@dataclass(frozen=True)
class NatSettings:
    timeout: float = 5.0
    families: tuple[int, ...] = (socket.AF_INET, socket.AF_INET6)
    local_address: str | None = None
    local_port: int | None = None
    verbose: bool = False
    filter_wait: float = 0.3
    lifetime: bool = False
    lifetime_max: float = 120.0
    engine: str = "siptool"
    compare: bool = False
    watchdog: float = 30.0


@dataclass
class Lifetime:
    alive_s: float | None = None  # the longest wait after which the binding still worked
    expired_s: float | None = None  # the shortest wait after which it no longer did
    max_s: float = 0.0
    error: str | None = None

    @property
    def estimate_s(self) -> float | None:
        if self.expired_s is None:
            return None
        return self.expired_s if self.alive_s is None else (self.alive_s + self.expired_s) / 2

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_s": self.alive_s,
            "max_s": self.expired_s,
            "estimate_s": self.estimate_s,
            "search_max_s": self.max_s,
            "outlived_search": self.expired_s is None and self.error is None,
            "error": self.error,
        }


@dataclass
class EngineReport:
    """pystun3's verdict, as it gave it."""

    engine: str
    classic: str | None = None
    raw: str | None = None
    mapped: str | None = None
    local: str | None = None
    elapsed_ms: float | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "classic": self.classic,
            "raw": self.raw,
            "mapped": self.mapped,
            "local": self.local,
            "elapsed_ms": self.elapsed_ms,
            "error": self.error,
        }


@dataclass
class NatResult:
    server: str | None
    engine: str = "siptool"
    address: str | None = None
    other_address: str | None = None
    local: str | None = None
    verdict: NatVerdict | None = None
    tests: dict[str, Any] = field(default_factory=dict)
    lifetime: Lifetime | None = None
    pystun3: EngineReport | None = None
    elapsed_ms: float | None = None
    exit_code: int = EXIT_OK
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def classic(self) -> str:
        if self.engine == "pystun3":
            return (self.pystun3.classic if self.pystun3 else None) or Classic.INCONCLUSIVE.value
        return self.verdict.classic.value if self.verdict else Classic.INCONCLUSIVE.value


def _probe(exchange: Exchange) -> Probe:
    message = exchange.response
    if message is None:
        stray = format_address(*exchange.strays[0]) if exchange.strays else None
        return Probe(answered=False, stray=stray)
    error = None
    if message.error_code is not None:
        error = f"{message.error_code[0]} {message.error_code[1]}"
    elif message.msg_class is StunClass.ERROR_RESPONSE:
        error = "an error response without ERROR-CODE"
    return Probe(
        answered=True,
        mapped=message.reflexive_address,
        source=format_address(*exchange.source) if exchange.source else None,
        response_origin=message.response_origin or message.source_address,
        other_address=message.other_address or message.changed_address,
        error=error,
    )


def _test_record(exchange: Exchange | None, probe: Probe | None) -> dict[str, Any] | None:
    if exchange is None or probe is None:
        return None
    return {
        "destination": format_address(*exchange.destination),
        "answered": probe.answered,
        "mapped": probe.mapped,
        "source": probe.source,
        "rtt_ms": None if exchange.rtt is None else round(exchange.rtt * 1000, 3),
        "sends": exchange.sends,
        "error": probe.error or (None if probe.answered else exchange.error),
    }


async def _watch(
    sender: StunEndpoint,
    destination: tuple[str, int],
    wire: bytes,
    tid: bytes,
    watcher: StunEndpoint,
    wait: float,
) -> bool:
    """Send ``wire`` from ``sender`` (retransmitting inside ``wait``) until ``watcher``
    receives a message with ``tid``; True when it did within ``wait``, False when the wait
    ended or (a connected ``sender``) ICMP said the destination refused the packet."""
    queue = watcher.expect(tid)
    refused = sender.refused if isinstance(sender, UdpEndpoint) else None
    try:
        deadline = time.monotonic() + wait
        gap = wait / 4
        next_send = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= deadline or (refused is not None and refused.is_set()):
                return False
            if now >= next_send:
                sender.send(wire, destination)
                next_send = now + gap
                gap *= 2
            got = asyncio.ensure_future(queue.get())
            waiters: set[asyncio.Future[Any]] = {got}
            if refused is not None:
                waiters.add(asyncio.ensure_future(refused.wait()))
            await asyncio.wait(
                waiters,
                timeout=max(0.0, min(next_send, deadline) - now),
                return_when=asyncio.FIRST_COMPLETED,
            )
            for future in waiters:
                if not future.done():
                    future.cancel()
            if got.done() and not got.cancelled():
                return True
    finally:
        watcher.forget(tid)


async def _lifetime(
    primary: tuple[str, int],
    family: int,
    settings: NatSettings,
    wait: float,
    log: StunLog,
) -> Lifetime:
    steps = [s for s in LIFETIME_STEPS if s < settings.lifetime_max] + [settings.lifetime_max]
    result = Lifetime(max_s=settings.lifetime_max)
    sockets: list[UdpEndpoint] = []
    asker = await UdpEndpoint.open(family, local_address=settings.local_address, log=log)
    try:
        for _ in steps:
            sockets.append(
                await UdpEndpoint.open(family, local_address=settings.local_address, log=log)
            )
        schedule = Schedule(cap=settings.timeout)
        created = await asyncio.gather(
            *(s.request(primary, *_swap(binding_request()), schedule) for s in sockets)
        )
        start = time.monotonic()
        if not all(e.ok for e in created):
            result.error = "a binding for the lifetime test got no answer"
            return result
        for step, endpoint, exchange in zip(steps, sockets, created, strict=True):
            assert exchange.response is not None
            mapped = exchange.response.reflexive_address
            if mapped is None:
                result.error = "the server's answer carries no mapped address"
                return result
            await asyncio.sleep(max(0.0, start + step - time.monotonic()))
            tid, wire = binding_request(response_port=split_address(mapped)[1])
            got = await _watch(asker, primary, wire, tid, endpoint, wait)
            if not got and tid in {t for t, _ in asker.late}:
                result.error = "the server ignores RESPONSE-PORT (RFC 5780 §7.5)"
                return result
            if got:
                result.alive_s = step
            else:
                result.expired_s = step
                break
            endpoint.close()
        return result
    finally:
        asker.close()
        for endpoint in sockets:
            endpoint.close()


def _swap(pair: tuple[bytes, bytes]) -> tuple[bytes, bytes]:
    tid, wire = pair
    return wire, tid


async def _run_siptool(
    server: StunServer, settings: NatSettings, result: NatResult, log: StunLog
) -> None:
    try:
        addresses = await resolve_server(server, settings.families, settings.timeout)
    except TransportError as exc:
        result.errors.append({"code": "dns_error", "message": exc.message})
        result.exit_code = EXIT_FAILED
        return
    primary = addresses[0]
    family = socket.AF_INET6 if ":" in primary[0] else socket.AF_INET
    result.address = format_address(*primary)
    endpoints: list[UdpEndpoint] = []

    async def open_socket(port: int | None = None) -> UdpEndpoint:
        endpoint = await UdpEndpoint.open(
            family, local_address=settings.local_address, local_port=port, log=log
        )
        endpoints.append(endpoint)
        return endpoint

    try:
        mapping_sock = await open_socket(settings.local_port)
        filtering_sock = await open_socket()
        ip, port = mapping_sock.local
        if ip in ("0.0.0.0", "::"):
            ip = source_address_toward(primary) or ip
        local = format_address(ip, port)
        result.local = local
        full = Schedule(cap=settings.timeout)

        def request(
            sock: UdpEndpoint,
            destination: tuple[str, int],
            schedule: Schedule,
            *,
            change_ip: bool = False,
            change_port: bool = False,
            answer_from: tuple[str, int] | None = None,
        ) -> Any:
            # A CHANGE-REQUEST answer comes from ``answer_from`` (or, from a server that
            # ignores the flags, the primary address: behavior.py tells them apart).
            tid, wire = binding_request(
                fingerprint=True, change_ip=change_ip, change_port=change_port
            )
            accept = [answer_from] if answer_from else None
            return sock.request(destination, wire, tid, schedule, accept_from=accept)

        m1, f1 = await asyncio.gather(
            request(mapping_sock, primary, full), request(filtering_sock, primary, full)
        )
        pm1, pf1 = _probe(m1), _probe(f1)
        server_text = format_address(*primary)
        other = other_of(pm1, pf1)
        result.other_address = other
        rtts = [e.rtt for e in (m1, f1) if e.rtt is not None]
        wait = max(settings.filter_wait, RTT_FACTOR * max(rtts, default=0.0))
        wait = min(wait, max(settings.timeout, settings.filter_wait))
        short = Schedule(cap=wait, rto=wait / 4)

        m2 = m3 = f2 = f3 = None
        hairpin: bool | None = None
        jobs: dict[str, Any] = {}
        other_ip, other_port = split_address(other) if other else ("", 0)
        if other is not None and (":" in other_ip) == (family == socket.AF_INET6):
            if other_ip != primary[0]:
                jobs["m2"] = request(mapping_sock, (other_ip, primary[1]), full)
                jobs["f2"] = request(
                    filtering_sock,
                    primary,
                    short,
                    change_ip=True,
                    change_port=True,
                    answer_from=(other_ip, other_port),
                )
            if other_port != primary[1]:
                jobs["m3"] = request(mapping_sock, (other_ip, other_port), full)
                jobs["f3"] = request(
                    filtering_sock,
                    primary,
                    short,
                    change_port=True,
                    answer_from=(primary[0], other_port),
                )
        mapped1 = pm1.mapped if pm1.succeeded else None
        if mapped1 is not None:
            # RFC 5780 §4.5 from a socket connected to our own public address: a NAT that
            # does not hairpin often answers ICMP port-unreachable, which ends the wait.
            target = split_address(mapped1)
            try:
                hairpin_sock: UdpEndpoint | None = await UdpEndpoint.open(
                    family, local_address=settings.local_address, log=log, connect_to=target
                )
            except LocalBindError:
                raise
            except TransportError as exc:
                # The server's mapped address is nothing we can send to (another family,
                # broadcast): hairpinning stays unknown.
                log.note(f"hairpin test not run: {exc.message}")
                hairpin_sock = None
            if hairpin_sock is not None:
                endpoints.append(hairpin_sock)
                tid, wire = binding_request()
                # A hairpinned packet turns round in the NAT, on the way to the server: it
                # needs no longer than a server round trip, so a third of the filter wait.
                hairpin_wait = max(settings.filter_wait / 3, RTT_FACTOR * max(rtts, default=0.0))
                jobs["hairpin"] = _watch(
                    hairpin_sock, target, wire, tid, mapping_sock, min(hairpin_wait, wait)
                )
        if pm1.answered or pf1.answered:
            done = dict(zip(jobs, await asyncio.gather(*jobs.values()), strict=True))
        else:
            done = {}
        m2, m3, f2, f3 = (done.get(k) for k in ("m2", "m3", "f2", "f3"))
        if "hairpin" in done:
            hairpin = bool(done["hairpin"])
        probes = {
            name: _probe(e) if e is not None else None
            for name, e in (("m2", m2), ("m3", m3), ("f2", f2), ("f3", f3))
        }
        lifetime = None
        if settings.lifetime and pf1.succeeded:
            lifetime = await _lifetime(primary, family, settings, wait, log)
            result.lifetime = lifetime
        verdict = decide(
            MappingObservations(local, server_text, pm1, probes["m2"], probes["m3"]),
            FilteringObservations(server_text, pf1, probes["f2"], probes["f3"]),
            hairpinning=hairpin,
            lifetime_s=lifetime.estimate_s if lifetime else None,
        )
        result.verdict = verdict
        result.tests = {
            "filter_wait_ms": round(wait * 1000, 1),
            "mapping": {
                "local": local,
                "test1": _test_record(m1, pm1),
                "test2": _test_record(m2, probes["m2"]),
                "test3": _test_record(m3, probes["m3"]),
            },
            "filtering": {
                "local": _local_text(filtering_sock, primary),
                "test1": _test_record(f1, pf1),
                "test2": _test_record(f2, probes["f2"]),
                "test3": _test_record(f3, probes["f3"]),
            },
        }
        for reason in verdict.reasons:
            result.errors.append({"code": "inconclusive", "message": reason})
        if verdict.classic in (Classic.INCONCLUSIVE, Classic.UDP_BLOCKED):
            result.exit_code = EXIT_FAILED
            if verdict.classic is Classic.UDP_BLOCKED:
                result.errors = [
                    {
                        "code": "timeout",
                        "message": f"no answer from {server_text} over UDP within "
                        f"{settings.timeout:g} s",
                    }
                ]
    finally:
        for endpoint in endpoints:
            endpoint.close()


def _local_text(endpoint: UdpEndpoint, toward: tuple[str, int]) -> str:
    ip, port = endpoint.local
    if ip in ("0.0.0.0", "::"):
        ip = source_address_toward(toward) or ip
    return format_address(ip, port)


# ------------------------------------------------------------------------------ pystun3

_PYSTUN3_SCRIPT = """
import json, socket, sys, time
import stun
host, port, source_ip = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)  # what stun.get_ip_info sets
s.bind((source_ip, 0))
started = time.monotonic()
nat_type, info = stun.get_nat_type(s, source_ip, s.getsockname()[1], stun_host=host, stun_port=port)
print(json.dumps({"nat_type": nat_type, "ip": info.get("ExternalIP"),
                  "port": info.get("ExternalPort"), "local": list(s.getsockname()),
                  "elapsed": time.monotonic() - started}))
"""


async def run_pystun3(server: StunServer, settings: NatSettings) -> EngineReport:
    """pystun3's classifier in a child process, killed when ``settings.watchdog`` passes.

    pystun3 compares the mapped IP with the address its socket is bound to, so it is bound to
    the concrete local address toward the server (bound to 0.0.0.0 it could never answer
    "Open Internet").  It speaks IPv4 only.
    """
    report = EngineReport("pystun3")
    try:
        addresses = await resolve_server(server, (socket.AF_INET,), settings.timeout)
    except TransportError as exc:
        report.error = exc.message
        return report
    host, port = addresses[0]
    source_ip = settings.local_address or source_address_toward((host, port)) or "0.0.0.0"
    started = time.monotonic()
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _PYSTUN3_SCRIPT,
            host,
            str(port),
            source_ip,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
    except OSError as exc:
        report.error = f"cannot start pystun3: {exc}"
        return report
    try:
        out, err = await asyncio.wait_for(process.communicate(), settings.watchdog)
    except TimeoutError:
        process.kill()
        await process.wait()
        report.error = f"pystun3 gave no verdict within the {settings.watchdog:g} s watchdog"
        report.elapsed_ms = round((time.monotonic() - started) * 1000, 1)
        return report
    report.elapsed_ms = round((time.monotonic() - started) * 1000, 1)
    if process.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        report.error = "pystun3 failed: " + (lines[-1] if lines else f"exit {process.returncode}")
        return report
    try:
        data = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        report.error = "pystun3 printed no verdict"
        return report
    report.raw = str(data["nat_type"])
    label = PYSTUN3_LABELS.get(report.raw)
    report.classic = (label or Classic.INCONCLUSIVE).value
    if data.get("ip") is not None and data.get("port") is not None:
        report.mapped = format_address(str(data["ip"]), int(data["port"]))
    report.local = format_address(str(data["local"][0]), int(data["local"][1]))
    return report


# ---------------------------------------------------------------------------------- entry


async def run_nat_type(server: StunServer, settings: NatSettings) -> NatResult:
    result = NatResult(server.text, engine=settings.engine)
    log = StunLog(settings.verbose)
    started = time.monotonic()
    tasks: list[Any] = []
    if settings.engine == "siptool":

        async def timed() -> None:
            await _run_siptool(server, settings, result, log)
            result.elapsed_ms = round((time.monotonic() - started) * 1000, 1)

        tasks.append(timed())
    if settings.engine == "pystun3" or settings.compare:
        tasks.append(run_pystun3(server, settings))
    try:
        outcomes = await asyncio.gather(*tasks)
    except LocalBindError as exc:
        result.exit_code = EXIT_NOT_RUN
        result.errors = [{"code": exc.code, "message": exc.message}]
        return result
    for outcome in outcomes:
        if isinstance(outcome, EngineReport):
            result.pystun3 = outcome
    if result.elapsed_ms is None:
        result.elapsed_ms = round((time.monotonic() - started) * 1000, 1)
    if settings.engine == "pystun3":
        report = result.pystun3
        assert report is not None
        result.local, result.address = report.local, None
        if report.error:
            result.errors.append({"code": "engine_error", "message": report.error})
        if report.classic in (None, Classic.INCONCLUSIVE.value, Classic.UDP_BLOCKED.value):
            result.exit_code = EXIT_FAILED
    return result


__all__ = [
    "PYSTUN3_LABELS",
    "EngineReport",
    "Lifetime",
    "Mapping",
    "NatResult",
    "NatSettings",
    "run_nat_type",
    "run_pystun3",
]
