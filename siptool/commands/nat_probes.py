"""The probes of `siptool nat-type`: RFC 5780 §4.3/§4.4 tests and the §4.5 hairpin test, each
made of STUN transactions run on the engine (``siptool.stun.transaction``: RFC 8489 §6.2.1
RTO, Rc and Rm).  What the probes got is handed to ``siptool.stun.behavior`` to decide.

Decisions:

* Each test is several transactions ("probes"), each retransmitted on the RFC 8489 §6.2.1
  schedule, the RTO doubling, and cut at the test's end (``deadline_cap``; RFC 8489 §6.2 allows
  up to ten outstanding transactions toward a server).  Both tests I run at once, each starting
  a new transaction every 100 ms while none is answered, at most five (ten toward the server),
  each retransmitted from the 500 ms initial RTO: silence on a lossy path is then rarely total
  even at --timeout 1.  The first answer on either socket gives the RTT; an unanswered test I
  then stops its slow transactions for two on the RTO that RTT gives (RFC 6298 §2.2, cached per
  server as RFC 8489 §6.2.1 says).  Every later test starts from that RTO, stretched so that the
  Rc = 7 transmissions spread over its wait (``PathTiming.rto_within``).
* Every transmission and response is counted (``UdpEndpoint.sent``/``responses``, late ones
  included); the tests whose answers must come give the path's loss (``path_loss``), from which
  ``decide`` tells a filter's silence from loss.  When test I already saw loss, the filtering
  tests get more transactions (``silence_probes``) so that their silence can count.
* The first ICMP error or answer ends a test; rejected answers and ICMP errors are kept on the
  ``Probe`` for ``decide`` to name.
* The hairpin test (RFC 5780 §4.5) is two transactions whose answer is their own request
  arriving at the mapping socket (the engine's ``echo``), sent from a socket connected to our
  public address so that an ICMP port-unreachable (the NAT took the packet for itself) ends the
  wait.  They transmit in the first 90 % of the wait only (``send_until``): a request sent later
  could not come round in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from siptool.addr import format_address
from siptool.errors import TransportError
from siptool.net.stun_transport import Exchange, Schedule, UdpEndpoint
from siptool.stun.behavior import PathLoss, Probe
from siptool.stun.message import StunClass, binding_request
from siptool.stun.transaction import (
    DEFAULT_RC,
    DEFAULT_RTO,
    Response,
    Retransmit,
    StunClientTransaction,
    TransactionState,
)

Address = tuple[str, int]

# RFC 8489 §6.2.1: RTO from RFC 6298 with a 1 ms clock granularity (G).
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
SPREAD = 0.9  # a test's transmissions go out in the first 90 % of its wait
RTT_FACTOR = 3.0  # an answer that may rightly never come is awaited at least 3 RTTs


class PathTiming:
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

    def rtts(self, count: float) -> float:
        """``count`` round trips, 0 before the first answer."""
        return count * (self.rtt or 0.0)


# ------------------------------------------------------------------- RFC 5780 §4.3, §4.4


@dataclass(frozen=True)
class ProbePlan:
    """How one RFC 5780 test runs: its request and the number and pace of its transactions."""

    probes: int = PROBES
    first_rto: float | None = None  # None: the path's RTO, stretched over what is left
    spacing: float | None = None  # between transaction starts; None: half an RTO
    change_ip: bool = False
    change_port: bool = False
    answer_from: Address | None = None  # where a CHANGE-REQUEST answer must come from
    hurry: bool = False  # the first RTT seen (any test) replaces the slow transactions


# RFC 5780 §4.3 test I, the same on both sockets: transactions in quick succession until one is
# answered (the path's RTT and loss are learnt from it).
TEST_I = ProbePlan(probes=TEST1_PROBES, first_rto=DEFAULT_RTO, spacing=TEST1_SPACING, hurry=True)


@dataclass
class NatTestRun:
    """One RFC 5780 test: its transactions (probes) and the exchange that answered it."""

    sock: UdpEndpoint
    destination: Address
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


class _TestDriver:
    """One test's transactions in flight: started ``plan.spacing`` apart while none is
    answered, each on the engine's schedule capped at ``end``."""

    def __init__(
        self, sock: UdpEndpoint, destination: Address, end: float, path: PathTiming, plan: ProbePlan
    ) -> None:
        self.run = NatTestRun(sock, destination)
        self.end = end
        self.path = path
        self.plan = plan
        self.pending: set[asyncio.Task[Exchange]] = set()
        self.dropped: set[asyncio.Task[Exchange]] = set()
        self.started = 0
        self.spacing = plan.spacing if plan.spacing is not None else self.rto_now() / 2
        self.next_start = time.monotonic()
        self.hurried = not plan.hurry
        self.hurry_wait: asyncio.Future[Any] | None = None

    def rto_now(self) -> float:
        if self.plan.first_rto is not None:
            return self.plan.first_rto
        return self.path.rto_within(self.end - time.monotonic())

    def start(self, rto: float) -> None:
        # A CHANGE-REQUEST answer comes from ``answer_from`` (or, from a server that ignores
        # the flags, the primary address: behavior.py tells them apart).
        plan, run = self.plan, self.run
        tid, wire = binding_request(
            fingerprint=True, change_ip=plan.change_ip, change_port=plan.change_port
        )
        run.tids.append(tid)
        schedule = Schedule(cap=max(0.0, self.end - time.monotonic()), rto=rto)
        accept = [plan.answer_from] if plan.answer_from else None
        request = run.sock.request(run.destination, wire, tid, schedule, accept_from=accept)
        self.pending.add(asyncio.ensure_future(request))

    def start_due(self, now: float) -> None:
        if self.started < self.plan.probes and self.next_start <= now < self.end:
            self.start(self.rto_now())
            self.started += 1
            self.next_start = now + self.spacing
        if not self.hurried and self.path.answered.is_set() and now < self.end:
            self.hurry(now)

    def hurry(self, now: float) -> None:
        """The RTT is known: two transactions on its RTO replace the slow ones."""
        self.hurried = True
        self.started = self.plan.probes
        for task in self.pending:
            task.cancel()
        self.dropped.update(self.pending)
        self.pending.clear()
        for _ in range(PROBES):
            self.start(self.path.rto_within(self.end - now))

    async def next_events(self, now: float) -> set[asyncio.Future[Any]]:
        waits: set[asyncio.Future[Any]] = set(self.pending)
        if not self.hurried:
            if self.hurry_wait is None:
                self.hurry_wait = asyncio.ensure_future(self.path.answered.wait())
            waits.add(self.hurry_wait)
        timeout = max(0.0, self.next_start - now) if self.started < self.plan.probes else None
        done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        return done

    def settle(self, done: set[asyncio.Future[Any]]) -> bool:
        """Take the finished transactions; True when one ended the test (an answer, an ICMP
        error)."""
        for finished in done:
            if finished is self.hurry_wait or finished not in self.pending:
                continue
            self.pending.discard(finished)
            exchange: Exchange = finished.result()
            self.run.exchanges.append(exchange)
            if exchange.response is not None:
                self.path.learn(exchange)
                self.run.answer = exchange
                return True
            if exchange.unreachable:
                return True
        return False

    async def drive(self) -> NatTestRun:
        while True:
            now = time.monotonic()
            self.start_due(now)
            if not self.pending:
                if self.started >= self.plan.probes or now >= self.end:
                    return self.run
                await asyncio.sleep(max(0.0, self.next_start - now))
                continue
            if self.settle(await self.next_events(now)):
                return self.run

    async def close(self) -> None:
        for task in self.pending:
            task.cancel()
        if self.hurry_wait is not None:
            self.hurry_wait.cancel()
        for task in self.pending | self.dropped:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def run_test(
    sock: UdpEndpoint,
    destination: Address,
    *,
    end: float,
    path: PathTiming,
    plan: ProbePlan | None = None,
) -> NatTestRun:
    """Run one test until ``end`` (monotonic): up to ``plan.probes`` transactions, each on the
    RFC 8489 §6.2.1 schedule capped at ``end``.  The first answer or ICMP error ends the test.
    With ``plan.hurry``, the first answer to any other test (which gives the RTT) starts
    ``PROBES`` more transactions on the path's RTO.  Cancelled, it cancels its transactions."""
    driver = _TestDriver(sock, destination, end, path, plan or ProbePlan())
    try:
        return await driver.drive()
    finally:
        await driver.close()


def path_loss(runs: list[NatTestRun | None]) -> PathLoss:
    """The requests of ``runs`` and how many went unanswered."""
    done = [r for r in runs if r is not None]
    return PathLoss(sum(r.sends for r in done), sum(r.sends - r.responses for r in done))


def silence_probes(loss: PathLoss) -> int:
    """How many transactions a test whose silence means a filter gets: ``PROBES`` on a path
    that lost nothing so far, ``LOSSY_SILENCE_PROBES`` once loss was seen, so that decide()
    (which judges the silence with the whole run's loss) can still take it for a filter."""
    return LOSSY_SILENCE_PROBES if loss.lossy else PROBES


def probe_of(run: NatTestRun | None) -> Probe | None:
    """What ``run`` got, as ``decide`` reads it."""
    if run is None:
        return None
    if run.answer is None or run.answer.response is None:
        return _silent_probe(run)
    answer = run.answer
    message = run.answer.response
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
        destination=format_address(*run.destination),
    )


def _silent_probe(run: NatTestRun) -> Probe:
    exchange = run.final
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
        destination=format_address(*run.destination),
    )


# ---------------------------------------------------------------------------- RFC 5780 §4.5


@dataclass(frozen=True)
class Hairpin:
    """What the hairpin test found: whether a request came round, and the requests it sent
    (0 when ICMP said the NAT refused the packet, which no loss explains)."""

    came_round: bool
    sends: int


class _Echo:
    """One hairpin transaction: its answer is its own request arriving at ``watcher``."""

    def __init__(self, tx: StunClientTransaction, start_at: float, watcher: UdpEndpoint) -> None:
        self.tx = tx
        self.start_at = start_at
        self.queue = watcher.expect(tx.transaction_id)
        self.arrival: asyncio.Future[Any] = asyncio.ensure_future(self.queue.get())
        self.sent = 0

    @property
    def due(self) -> float | None:
        """When it needs the clock next: its start, then the engine's timer (None: ended)."""
        return self.start_at if self.tx.state is TransactionState.IDLE else self.tx.deadline

    def fire(self, sender: UdpEndpoint, now: float) -> None:
        """Start or retransmit, when due (``TransportError`` when the socket is gone)."""
        tx = self.tx
        if tx.state is TransactionState.IDLE:
            if now >= self.start_at:
                data, _ = tx.start(now)
                sender.send(data, tx.destination)
                self.sent += 1
            return
        event = tx.on_timer(now)
        if isinstance(event, Retransmit):
            sender.send(event.data, tx.destination)
            self.sent += 1

    def came_round(self) -> bool:
        while self.arrival.done() and not self.arrival.cancelled():
            item = self.arrival.result()
            self.arrival = asyncio.ensure_future(self.queue.get())
            if isinstance(item, tuple):
                data, source, arrived = item
                if isinstance(self.tx.on_datagram(data, source, arrived), Response):
                    return True
        return False


def _echoes(target: Address, watcher: UdpEndpoint, wait: float, rto: float) -> list[_Echo]:
    """``PROBES`` hairpin transactions half an RTO apart, each transmitting only in the first
    ``SPREAD`` of ``wait`` and waiting until its end."""
    now = time.monotonic()
    window = SPREAD * wait
    echoes = []
    for index in range(PROBES):
        delay = index * rto / 2
        if delay >= window:
            break
        tid, wire = binding_request()
        tx = StunClientTransaction(
            wire,
            tid,
            target,
            rto=rto,
            deadline_cap=wait - delay,
            send_until=window - delay,
            accept_any_source=True,  # it comes from our own public address, as the NAT maps it
            echo=True,
        )
        echoes.append(_Echo(tx, now + delay, watcher))
    return echoes


async def hairpin_test(
    sender: UdpEndpoint, target: Address, watcher: UdpEndpoint, wait: float, path: PathTiming
) -> Hairpin:
    """RFC 5780 §4.5: Binding requests from ``sender`` (connected to our own public address
    ``target``) until ``watcher`` (the socket that owns that address) receives one, or ``wait``
    ends, or ICMP says the NAT refused them."""
    deadline = time.monotonic() + wait
    echoes = _echoes(target, watcher, wait, path.rto_within(wait))
    refused = asyncio.ensure_future(sender.refused.wait())

    def sends() -> int:
        return sum(e.sent for e in echoes)

    try:
        while True:
            now = time.monotonic()
            for echo in echoes:
                echo.fire(sender, now)
            if sender.refused.is_set():
                return Hairpin(False, 0)
            if any(echo.came_round() for echo in echoes):
                return Hairpin(True, sends())
            if now >= deadline:
                return Hairpin(False, sends())
            wake = min([deadline, *(d for e in echoes if (d := e.due) is not None)])
            await asyncio.wait(
                [refused, *(e.arrival for e in echoes)],
                timeout=max(0.0, wake - now),
                return_when=asyncio.FIRST_COMPLETED,
            )
    except TransportError:
        return Hairpin(False, sends())
    finally:
        refused.cancel()
        for echo in echoes:
            echo.arrival.cancel()
            watcher.forget(echo.tx.transaction_id)
