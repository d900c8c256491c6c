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

Decisions:

* ``--timeout`` bounds the whole command: one deadline, counted from the process's start
  (``NatSettings.started``), caps every test and transmission; ``elapsed_ms`` counts from the
  same start.  Only ``--lifetime`` and pystun3 (under ``--watchdog``) run past it.
* Each test is several transactions ("probes"), each retransmitted on the RFC 8489 §6.2.1
  schedule, the RTO doubling, and cut at the test's end (RFC 8489 §6.2 allows up to ten
  outstanding transactions toward a server).  Both tests I run at once, each starting a new
  transaction every 100 ms while none is answered, at most five (ten toward the server), each
  retransmitted from the 500 ms initial RTO (RFC 8489 §6.2.1): silence on a lossy path is then
  rarely total even at --timeout 1.  The first answer on either socket gives the RTT; an
  unanswered test I then stops its slow transactions for two on the RTO that RTT gives
  (RFC 6298 §2.2, cached per server as RFC 8489 §6.2.1 says).  Every later test starts from
  that RTO, stretched so that the Rc = 7 transmissions spread over its wait
  (``_Path.rto_within``).
* An answer that *should* come (mapping tests II/III) is awaited until the deadline; one that
  may rightly never come (filtering tests II/III, hairpin) for ``--filter-wait`` only, at
  least three RTTs.  On a LAN the whole run takes a few hundred milliseconds.
* Every transmission and response is counted (``UdpEndpoint.sent``/``responses``, late ones
  included); the tests whose answers must come give the path's loss (``PathLoss``), from which
  ``decide`` tells a filter's silence from loss.  When test I already saw heavy loss, the
  filtering tests get more transactions (``silence_probes``) so that their silence can count.
* The first ICMP error or answer ends a test; rejected answers and ICMP errors are kept on the
  ``Probe`` for ``decide`` to name.

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
import contextlib
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
    PathLoss,
    Probe,
    decide,
    mapped_address_problem,
    other_of,
)
from siptool.stun.message import StunClass, binding_request, format_address, split_address
from siptool.stun.transaction import DEFAULT_RC, DEFAULT_RTO

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
    started: float | None = None  # time.monotonic() of the command's start; None: now


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


# ------------------------------------------------------------------------------ probing

# RFC 8489 §6.2.1: RTO from RFC 6298 with a 1 ms clock granularity (G), and at most Rc
# transmissions per transaction; RFC 8489 §6.2: several transactions may be outstanding toward
# one server (at most ten).
CLOCK_GRANULARITY = 0.001
# Test I: a new transaction every TEST1_SPACING while none is answered, five per socket, so
# ten toward the server at most (RFC 8489 §6.2); each on the schedule from the 500 ms initial
# RTO.  On a path that answers, the first one is answered before the second goes out.
TEST1_PROBES = 5
TEST1_SPACING = 0.1
PROBES = 2  # every later test: two transactions, Rc transmissions each, inside its wait
# A filtering test's transactions once loss was seen: with tests II and III and an unanswered
# test I's two, ten outstanding toward the server (RFC 8489 §6.2).
LOSSY_SILENCE_PROBES = 4
CLEANUP = 0.02  # seconds of --timeout kept for closing sockets and printing the verdict
SPREAD = 0.9  # a test's transmissions go out in the first 90 % of its wait


class _Path:
    """What the run learnt of the path: the first RTT, hence the RTO that every transaction
    after the first answer starts from (RFC 8489 §6.2.1: the RTO is cached for the server)."""

    def __init__(self) -> None:
        self.rtt: float | None = None
        self.answered = asyncio.Event()

    def learn(self, exchange: Exchange) -> None:
        if self.rtt is None and exchange.rtt is not None and exchange.response is not None:
            self.rtt = exchange.rtt
            self.answered.set()

    @property
    def rto(self) -> float:
        """RFC 6298 §2.2 after the first measurement: SRTT + max(G, 4 * RTTVAR) with SRTT = R
        and RTTVAR = R / 2."""
        if self.rtt is None:
            return DEFAULT_RTO
        return self.rtt + max(CLOCK_GRANULARITY, 2 * self.rtt)

    def rto_within(self, wait: float) -> float:
        """The RTO for a test of ``wait`` seconds: the path's, or longer so that the Rc
        transmissions of the RFC 8489 schedule (0, RTO, 3 RTO ... 63 RTO) spread over it."""
        last = float(2 ** (DEFAULT_RC - 1) - 1)  # the last transmission, in RTOs
        return max(self.rto, SPREAD * wait / last)


@dataclass
class _TestRun:
    """One RFC 5780 test: its transactions (probes) and the exchange that answered it."""

    sock: UdpEndpoint
    destination: tuple[str, int]
    tids: list[bytes] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    answer: Exchange | None = None

    @property
    def sends(self) -> int:
        return sum(self.sock.sent[t] for t in self.tids)

    @property
    def responses(self) -> int:
        return sum(min(self.sock.responses[t], self.sock.sent[t]) for t in self.tids)

    @property
    def final(self) -> Exchange | None:
        """The exchange that tells most: the answer, else an ICMP error, else the last one."""
        if self.answer is not None:
            return self.answer
        for exchange in self.exchanges:
            if exchange.unreachable:
                return exchange
        return self.exchanges[-1] if self.exchanges else None


async def _run_test(
    sock: UdpEndpoint,
    destination: tuple[str, int],
    *,
    end: float,
    path: _Path,
    probes: int = PROBES,
    first_rto: float | None = None,
    spacing: float | None = None,
    change_ip: bool = False,
    change_port: bool = False,
    answer_from: tuple[str, int] | None = None,
    hurry: bool = False,
) -> _TestRun:
    """Run one test until ``end`` (monotonic): up to ``probes`` transactions, each on the
    RFC 8489 §6.2.1 schedule capped at ``end``, started ``spacing`` apart (half an RTO by
    default) while none is answered.  The first answer or ICMP error ends the test.
    With ``hurry``, the first answer to any other test (which gives the RTT) starts ``PROBES``
    more transactions on the path's RTO."""
    run = _TestRun(sock, destination)
    accept = [answer_from] if answer_from else None
    pending: set[asyncio.Task[Exchange]] = set()
    dropped: set[asyncio.Task[Exchange]] = set()

    def start(rto: float) -> None:
        # A CHANGE-REQUEST answer comes from ``answer_from`` (or, from a server that ignores
        # the flags, the primary address: behavior.py tells them apart).
        tid, wire = binding_request(fingerprint=True, change_ip=change_ip, change_port=change_port)
        run.tids.append(tid)
        cap = max(0.0, end - time.monotonic())
        task = asyncio.ensure_future(
            sock.request(destination, wire, tid, Schedule(cap=cap, rto=rto), accept_from=accept)
        )
        pending.add(task)

    def rto_now() -> float:
        return first_rto if first_rto is not None else path.rto_within(end - time.monotonic())

    started = 0
    if spacing is None:
        spacing = rto_now() / 2
    next_start = time.monotonic()
    hurried = not hurry
    hurry_wait: asyncio.Task[bool] | None = None
    try:
        while True:
            now = time.monotonic()
            if started < probes and now >= next_start and now < end:
                start(rto_now())
                started += 1
                next_start = now + spacing
            if not hurried and path.answered.is_set() and now < end:
                # The RTT is known: two transactions on its RTO replace the slow ones.
                hurried = True
                started = probes
                for task in pending:
                    task.cancel()
                dropped.update(pending)
                pending.clear()
                for _ in range(PROBES):
                    start(path.rto_within(end - now))
            if not pending:
                if started >= probes or now >= end:
                    return run
                await asyncio.sleep(max(0.0, next_start - now))
                continue
            waits: set[asyncio.Future[Any]] = set(pending)
            if not hurried:
                if hurry_wait is None:
                    hurry_wait = asyncio.ensure_future(path.answered.wait())
                waits.add(hurry_wait)
            timeout = max(0.0, next_start - now) if started < probes else None
            done, _ = await asyncio.wait(
                waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            for finished in done:
                if finished is hurry_wait or finished not in pending:
                    continue
                pending.discard(finished)
                exchange = finished.result()
                run.exchanges.append(exchange)
                if exchange.response is not None:
                    path.learn(exchange)
                    run.answer = exchange
                    return run
                if exchange.unreachable:
                    return run
    finally:
        for task in pending:
            task.cancel()
        if hurry_wait is not None:
            hurry_wait.cancel()
        for task in pending | dropped:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _loss(runs: list[_TestRun | None]) -> PathLoss:
    done = [r for r in runs if r is not None]
    return PathLoss(sum(r.sends for r in done), sum(r.sends - r.responses for r in done))


def silence_probes(loss: PathLoss) -> int:
    """How many transactions a test whose silence means a filter gets: ``PROBES`` on a path
    that lost nothing so far, ``LOSSY_SILENCE_PROBES`` once loss was seen, so that decide()
    (which judges the silence with the whole run's loss) can still take it for a filter."""
    return LOSSY_SILENCE_PROBES if loss.lossy else PROBES


def _probe(run: _TestRun | None) -> Probe | None:
    if run is None:
        return None
    exchange = run.final
    destination = format_address(*run.destination)
    message = run.answer.response if run.answer is not None else None
    if message is None or run.answer is None:
        strays = [s for e in run.exchanges for s in e.strays]
        rejected: list[str] = []
        for e in run.exchanges:
            rejected += [r for r in e.rejected if r not in rejected]
        return Probe(
            answered=False,
            stray=format_address(*strays[0]) if strays else None,
            sends=run.sends,
            rejected=tuple(rejected),
            unreachable=exchange.unreachable if exchange else None,
            unreachable_from=exchange.unreachable_from if exchange else None,
            destination=destination,
        )
    answer = run.answer
    error = None
    if message.error_code is not None:
        error = f"{message.error_code[0]} {message.error_code[1]}"
    elif message.msg_class is StunClass.ERROR_RESPONSE:
        error = "an error response without ERROR-CODE"
    return Probe(
        answered=True,
        mapped=message.reflexive_address,
        source=format_address(*answer.source) if answer.source else None,
        response_origin=message.response_origin or message.source_address,
        other_address=message.other_address or message.changed_address,
        error=error,
        sends=run.sends,
        destination=destination,
    )


def _test_record(run: _TestRun | None, probe: Probe | None) -> dict[str, Any] | None:
    if run is None or probe is None:
        return None
    exchange = run.final
    error = probe.error
    if error is None and not probe.answered:
        if probe.unreachable:
            error = probe.unreachable
        elif probe.rejected:
            error = "answers rejected: " + ", ".join(probe.rejected)
        else:
            error = exchange.error if exchange is not None else "not run"
    rtt = run.answer.rtt if run.answer is not None else None
    return {
        "destination": format_address(*run.destination),
        "answered": probe.answered,
        "mapped": probe.mapped,
        "source": probe.source,
        "rtt_ms": None if rtt is None else round(rtt * 1000, 3),
        "sends": run.sends,
        "probes": len(run.tids),
        "responses": run.responses,
        "error": error,
    }


async def _hairpin(
    sender: UdpEndpoint,
    target: tuple[str, int],
    watcher: UdpEndpoint,
    wait: float,
    path: _Path,
) -> tuple[bool, int]:
    """RFC 5780 §4.5: Binding requests from ``sender`` (connected to our own public address)
    until ``watcher`` (the socket that owns that address) receives one.  ``PROBES`` requests
    with their own ids, each resent on the RFC 8489 schedule inside ``wait``.  (True, sends)
    when one came round; (False, sends) when the wait ended, or (False, 0) when ICMP said the
    NAT refused the packet, which no loss explains."""
    rto = path.rto_within(wait)
    pairs = [binding_request() for _ in range(PROBES)]
    queues = [watcher.expect(tid) for tid, _ in pairs]
    offsets = sorted(
        (rto * (2**k - 1) + i * rto / 2, i)
        for k in range(DEFAULT_RC)
        for i in range(PROBES)
        if rto * (2**k - 1) + i * rto / 2 < SPREAD * wait
    )
    started = time.monotonic()
    deadline = started + wait
    sends = 0
    waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(q.get()) for q in queues]
    waits.append(asyncio.ensure_future(sender.refused.wait()))
    try:
        while True:
            now = time.monotonic()
            while offsets and started + offsets[0][0] <= now:
                _, index = offsets.pop(0)
                sender.send(pairs[index][1], target)
                sends += 1
            if sender.refused.is_set():
                return False, 0
            if any(w.done() for w in waits[:-1]):
                return True, sends
            if now >= deadline:
                return False, sends
            until = started + offsets[0][0] if offsets else deadline
            await asyncio.wait(
                waits, timeout=max(0.0, min(until, deadline) - now),
                return_when=asyncio.FIRST_COMPLETED,
            )  # fmt: skip
    except TransportError:
        return False, sends
    finally:
        for w in waits:
            w.cancel()
        for tid, _ in pairs:
            watcher.forget(tid)


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
    server: StunServer, settings: NatSettings, result: NatResult, log: StunLog, end: float
) -> None:
    try:
        addresses = await resolve_server(
            server, settings.families, max(0.05, end - time.monotonic())
        )
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
        server_text = format_address(*primary)
        path = _Path()
        runs: dict[str, _TestRun | None] = dict.fromkeys(("m1", "m2", "m3", "f1", "f2", "f3"))
        hairpin: list[tuple[bool, int]] = []
        waits: list[float] = []

        def other_known() -> tuple[str, int] | None:
            found = other_of(_probe(runs["m1"]), _probe(runs["f1"]))
            if found is None:
                return None
            other_ip, other_port = split_address(found)
            if (":" in other_ip) != (family == socket.AF_INET6):
                return None
            return other_ip, other_port

        def filter_wait() -> float:
            # An answer that may rightly never come: --filter-wait, at least 3 RTTs, within
            # what is left of --timeout.
            wanted = max(settings.filter_wait, RTT_FACTOR * (path.rtt or 0.0))
            return max(0.0, min(wanted, end - time.monotonic()))

        async def test_one(sock: UdpEndpoint) -> _TestRun:
            # RFC 5780 §4.3 test I, the same on both sockets: probes in quick succession until
            # one is answered (the path's RTT and loss are learnt from it).
            return await _run_test(
                sock,
                primary,
                end=end,
                path=path,
                probes=TEST1_PROBES,
                first_rto=DEFAULT_RTO,
                spacing=TEST1_SPACING,
                hurry=True,
            )

        async def mapping_side() -> None:
            m1 = runs["m1"] = await test_one(mapping_sock)
            if m1.answer is None:
                return
            other = other_known()
            jobs: dict[str, Any] = {}
            if other is not None:
                if other[0] != primary[0]:
                    jobs["m2"] = _run_test(mapping_sock, (other[0], primary[1]), end=end, path=path)
                if other[1] != primary[1]:
                    jobs["m3"] = _run_test(mapping_sock, other, end=end, path=path)
            hairpin_job = await _hairpin_job(m1)
            if hairpin_job is not None:
                jobs["hairpin"] = hairpin_job
            done = dict(zip(jobs, await asyncio.gather(*jobs.values()), strict=True))
            runs["m2"], runs["m3"] = done.get("m2"), done.get("m3")
            if "hairpin" in done:
                hairpin.append(done["hairpin"])

        async def _hairpin_job(m1: _TestRun) -> Any:
            probe = _probe(m1)
            mapped = probe.mapped if probe is not None and probe.succeeded else None
            if mapped is None or mapped_address_problem(mapped, server_text):
                return None
            # RFC 5780 §4.5 from a socket connected to our own public address: a NAT that
            # does not hairpin often answers ICMP port-unreachable, which ends the wait.
            target = split_address(mapped)
            try:
                sock = await UdpEndpoint.open(
                    family, local_address=settings.local_address, log=log, connect_to=target
                )
            except LocalBindError:
                raise
            except TransportError as exc:
                log.note(f"hairpin test not run: {exc.message}")
                return None
            endpoints.append(sock)
            # A hairpinned packet turns round in the NAT, on the way to the server: it needs
            # no longer than a server round trip, so a third of the filter wait.
            wait = min(max(settings.filter_wait / 3, RTT_FACTOR * (path.rtt or 0.0)), filter_wait())
            return _hairpin(sock, target, mapping_sock, wait, path)

        async def filtering_side() -> None:
            f1 = runs["f1"] = await test_one(filtering_sock)
            if f1.answer is None:
                return
            other = other_known()
            if other is None:
                return
            wait = filter_wait()
            waits.append(wait)
            jobs: dict[str, Any] = {}
            until = time.monotonic() + wait
            # On a lossy path, more tries, so that silence can still tell a filter from loss.
            count = silence_probes(_loss([runs["m1"], f1]))
            if other[0] != primary[0]:
                jobs["f2"] = _run_test(
                    filtering_sock,
                    primary,
                    end=until,
                    path=path,
                    change_ip=True,
                    change_port=True,
                    answer_from=other,
                    probes=count,
                )
            if other[1] != primary[1]:
                jobs["f3"] = _run_test(
                    filtering_sock,
                    primary,
                    end=until,
                    path=path,
                    change_port=True,
                    answer_from=(primary[0], other[1]),
                    probes=count,
                )
            done = dict(zip(jobs, await asyncio.gather(*jobs.values()), strict=True))
            runs["f2"], runs["f3"] = done.get("f2"), done.get("f3")

        await asyncio.gather(mapping_side(), filtering_side())
        # Answers still on their way count toward the loss measured: wait a few RTTs for them.
        if path.rtt is not None:
            await asyncio.sleep(max(0.0, min(2 * path.rtt + 0.005, end - time.monotonic())))
        probes = {name: _probe(run) for name, run in runs.items()}
        # The tests whose answers must come measure the loss; the filtering tests II/III and
        # the hairpin test may rightly go unanswered.
        loss = _loss([runs["m1"], runs["m2"], runs["m3"], runs["f1"]])
        total_sent = sum(r.sends for r in runs.values() if r is not None)
        lifetime = None
        pf1 = probes["f1"]
        if settings.lifetime and pf1 is not None and pf1.succeeded:
            lifetime = await _lifetime(primary, family, settings, filter_wait_or_default(waits,
                                       settings), log)  # fmt: skip
            result.lifetime = lifetime
        pm1 = probes["m1"]
        assert pm1 is not None and pf1 is not None
        hairpinning = hairpin[0][0] if hairpin else None
        verdict = decide(
            MappingObservations(local, server_text, pm1, probes["m2"], probes["m3"]),
            FilteringObservations(server_text, pf1, probes["f2"], probes["f3"]),
            hairpinning=hairpinning,
            lifetime_s=lifetime.estimate_s if lifetime else None,
            loss=loss,
            hairpin_sends=hairpin[0][1] if hairpin else 0,
        )
        result.other_address = other_of(pm1, pf1)
        result.verdict = verdict
        result.tests = {
            "filter_wait_ms": round(filter_wait_or_default(waits, settings) * 1000, 1),
            "loss": {"sent": loss.sent, "unanswered": loss.unanswered},
            "mapping": {
                "local": local,
                "test1": _test_record(runs["m1"], pm1),
                "test2": _test_record(runs["m2"], probes["m2"]),
                "test3": _test_record(runs["m3"], probes["m3"]),
            },
            "filtering": {
                "local": _local_text(filtering_sock, primary),
                "test1": _test_record(runs["f1"], pf1),
                "test2": _test_record(runs["f2"], probes["f2"]),
                "test3": _test_record(runs["f3"], probes["f3"]),
            },
        }
        if verdict.failure is not None:
            code, message = verdict.failure, verdict.reasons[0]
            if code == "timeout":
                message = (
                    f"no answer from {server_text} over UDP within {settings.timeout:g} s "
                    f"({total_sent} requests)"
                )
            result.errors.append({"code": code, "message": message})
        else:
            for reason in verdict.reasons:
                result.errors.append({"code": "inconclusive", "message": reason})
        if verdict.classic in (Classic.INCONCLUSIVE, Classic.UDP_BLOCKED):
            result.exit_code = EXIT_FAILED
    finally:
        for endpoint in endpoints:
            endpoint.close()


def filter_wait_or_default(waits: list[float], settings: NatSettings) -> float:
    return waits[0] if waits else settings.filter_wait


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
    started = settings.started if settings.started is not None else time.monotonic()
    # --timeout bounds the whole run, from the command's start to the verdict.
    end = max(time.monotonic(), started + settings.timeout - CLEANUP)
    tasks: list[Any] = []
    if settings.engine == "siptool":

        async def timed() -> None:
            await _run_siptool(server, settings, result, log, end)
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
