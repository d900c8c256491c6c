"""siptool's own NAT classifier: the RFC 5780 tests on three UDP sockets, so that one test's
state in the NAT cannot bias another's; ``siptool.stun.behavior.decide`` gives the verdict.

* The mapping socket (RFC 5780 §4.3): test I to the server's primary address, then tests II
  (other IP, primary port) and III (other IP and port) together.
* The filtering socket (§4.4): test I to the primary address, then tests II (answer from the
  other IP and port) and III (answer from the other port) together.
* The hairpin socket (§4.5): a Binding request to the mapping socket's public address, which
  that socket sees arrive when the NAT hairpins.  The hairpin path is part of the path to the
  server, so it is awaited a third of --filter-wait (or 3 RTTs), and no longer once an ICMP
  port-unreachable says the NAT took the packet for itself.

Decisions:

* One deadline (``end``, from --timeout counted from the command's start) caps every test and
  transmission; only --lifetime runs past it.
* An answer that *should* come (mapping tests II/III) is awaited until the deadline; one that
  may rightly never come (filtering tests II/III, hairpin) for --filter-wait only, at least
  three RTTs.  On a LAN the whole run takes a few hundred milliseconds.
* Answers still on their way when the tests end are awaited a few RTTs: they count toward the
  loss measured.
* ``tests`` records every test for the JSON document: where it went, what came back, its
  transmissions, transactions and responses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from siptool.addr import family_of, format_address, split_address
from siptool.commands.nat_lifetime import Lifetime, LifetimeSearch, binding_lifetime
from siptool.commands.nat_probes import (
    RTT_FACTOR,
    TEST_I,
    Hairpin,
    NatTestRun,
    PathTiming,
    ProbePlan,
    hairpin_test,
    path_loss,
    probe_of,
    run_test,
    silence_probes,
)
from siptool.errors import LocalBindError, ResolveError, SiptoolError, TransportError
from siptool.net.stun_transport import StunLog, UdpEndpoint, resolve_server, source_address_toward
from siptool.stun.behavior import (
    FilteringObservations,
    MappingObservations,
    NatVerdict,
    PathLoss,
    decide,
    mapped_address_problem,
    other_of,
)

if TYPE_CHECKING:
    from siptool.net.settings import LocalSettings
    from siptool.stun.servers import StunServer

Address = tuple[str, int]


class Rfc5780Settings(Protocol):
    """What the RFC 5780 tests read of nat-type's options (``NatOptions`` has all of it; a
    protocol rather than an import keeps commands/nat_type.py above this module)."""

    @property
    def server(self) -> StunServer: ...
    @property
    def local(self) -> LocalSettings: ...
    @property
    def filter_wait(self) -> float: ...
    @property
    def lifetime(self) -> bool: ...
    @property
    def lifetime_max(self) -> float: ...


# ---------------------------------------------------------------------- what the tests record


@dataclass(frozen=True)
class StunTestRecord:
    """One RFC 5780 test in the JSON document's ``tests``."""

    destination: str
    answered: bool
    mapped: str | None
    source: str | None
    rtt_ms: float | None
    sends: int
    probes: int
    responses: int
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "destination": self.destination,
            "answered": self.answered,
            "mapped": self.mapped,
            "source": self.source,
            "rtt_ms": self.rtt_ms,
            "sends": self.sends,
            "probes": self.probes,
            "responses": self.responses,
            "error": self.error,
        }


@dataclass(frozen=True)
class SocketTests:
    """The tests of one socket (mapping or filtering); None: not run."""

    local: str
    test1: StunTestRecord | None
    test2: StunTestRecord | None
    test3: StunTestRecord | None

    def to_dict(self) -> dict[str, Any]:
        def one(record: StunTestRecord | None) -> dict[str, Any] | None:
            return record.to_dict() if record is not None else None

        return {
            "local": self.local,
            "test1": one(self.test1),
            "test2": one(self.test2),
            "test3": one(self.test3),
        }


@dataclass(frozen=True)
class NatTests:
    """Every test of the run, and what the path lost."""

    filter_wait_ms: float
    loss: PathLoss
    mapping: SocketTests
    filtering: SocketTests

    def to_dict(self) -> dict[str, Any]:
        return {
            "filter_wait_ms": self.filter_wait_ms,
            "loss": {"sent": self.loss.sent, "unanswered": self.loss.unanswered},
            "mapping": self.mapping.to_dict(),
            "filtering": self.filtering.to_dict(),
        }


def record_of(run: NatTestRun | None) -> StunTestRecord | None:
    """``run`` for the JSON document; its error names why it got no answer."""
    probe = probe_of(run)
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
    return StunTestRecord(
        destination=format_address(*run.destination),
        answered=probe.answered,
        mapped=probe.mapped,
        source=probe.source,
        rtt_ms=None if rtt is None else round(rtt * 1000, 3),
        sends=run.sends,
        probes=len(run.tids),
        responses=run.responses,
        error=error,
    )


# ------------------------------------------------------------------------------- the run


@dataclass
class SocketRuns:
    """The RFC 5780 tests run on one socket (None: not run)."""

    test1: NatTestRun | None = None
    test2: NatTestRun | None = None
    test3: NatTestRun | None = None

    def all(self) -> list[NatTestRun | None]:
        return [self.test1, self.test2, self.test3]


@dataclass
class Rfc5780Outcome:
    """What siptool's classifier found, or why it could not run."""

    address: str | None = None  # the server's address asked
    local: str | None = None  # the mapping socket as the server would see it without NAT
    other_address: str | None = None
    verdict: NatVerdict | None = None
    tests: NatTests | None = None
    lifetime: Lifetime | None = None
    requests: int = 0  # every request sent, for the "no answer" message
    error: SiptoolError | None = None  # the server's name did not resolve
    bind_error: LocalBindError | None = None  # siptool could not run the check


T = TypeVar("T")


async def _gathered(jobs: dict[str, Awaitable[T]]) -> dict[str, T]:
    """The jobs run at once; each one's result under its name."""
    return dict(zip(jobs, await asyncio.gather(*jobs.values()), strict=True))


class _Session:
    """One run of the tests toward ``primary``: the sockets, the path learnt, the runs."""

    def __init__(
        self, options: Rfc5780Settings, log: StunLog, end: float, primary: Address
    ) -> None:
        self.options = options
        self.log = log
        self.end = end
        self.primary = primary
        self.family = family_of(primary[0])
        self.server_text = format_address(*primary)
        self.path = PathTiming()
        self.endpoints: list[UdpEndpoint] = []
        self.mapping = SocketRuns()
        self.filtering = SocketRuns()
        self.hairpin: Hairpin | None = None
        self.filter_waited: float | None = None  # the filtering tests' wait, when they ran

    async def open_socket(
        self, port: int | None = None, connect_to: Address | None = None
    ) -> UdpEndpoint:
        endpoint = await UdpEndpoint.open(
            self.family,
            local_address=self.options.local.local_address,
            local_port=port,
            log=self.log,
            connect_to=connect_to,
        )
        self.endpoints.append(endpoint)
        return endpoint

    def close(self) -> None:
        for endpoint in self.endpoints:
            endpoint.close()

    def local_text(self, endpoint: UdpEndpoint) -> str:
        """``endpoint`` as the server sees it without NAT (a wildcard bind: the source address
        the kernel picks toward the server)."""
        ip, port = endpoint.local
        if ip in ("0.0.0.0", "::"):
            ip = source_address_toward(self.primary) or ip
        return format_address(ip, port)

    def other_known(self) -> Address | None:
        """The server's OTHER-ADDRESS from either test I, when it is of our address family."""
        found = other_of(probe_of(self.mapping.test1), probe_of(self.filtering.test1))
        if found is None:
            return None
        other = split_address(found)
        return other if family_of(other[0]) == self.family else None

    def filter_wait(self) -> float:
        """An answer that may rightly never come: --filter-wait, at least 3 RTTs, within what
        is left of --timeout."""
        wanted = max(self.options.filter_wait, self.path.rtts(RTT_FACTOR))
        return max(0.0, min(wanted, self.end - time.monotonic()))

    @property
    def filter_wait_used(self) -> float:
        return self.filter_waited if self.filter_waited is not None else self.options.filter_wait

    def test(
        self,
        sock: UdpEndpoint,
        destination: Address,
        *,
        end: float | None = None,
        plan: ProbePlan | None = None,
    ) -> Awaitable[NatTestRun]:
        """One test on this run's path, until ``end`` (by default the run's own end)."""
        return run_test(
            sock, destination, end=self.end if end is None else end, path=self.path, plan=plan
        )

    async def test_one(self, runs: SocketRuns, sock: UdpEndpoint) -> NatTestRun | None:
        """Test I to the primary address from ``runs``' socket: the run when it was answered
        (the socket's other tests start from what it saw), else None."""
        test1 = runs.test1 = await self.test(sock, self.primary, plan=TEST_I)
        return test1 if test1.answer is not None else None

    async def mapping_side(self, sock: UdpEndpoint) -> None:
        """RFC 5780 §4.3 (tests II and III to the other address) and §4.5 beside them."""
        test1 = await self.test_one(self.mapping, sock)
        if test1 is None:
            return
        other = self.other_known()
        hairpin = await self.hairpin_job(sock, test1)  # before any coroutine is made
        jobs: dict[str, Awaitable[Any]] = {}
        if other is not None:
            if other[0] != self.primary[0]:
                jobs["test2"] = self.test(sock, (other[0], self.primary[1]))
            if other[1] != self.primary[1]:
                jobs["test3"] = self.test(sock, other)
        if hairpin is not None:
            jobs["hairpin"] = hairpin
        done = await _gathered(jobs)
        self.mapping.test2, self.mapping.test3 = done.get("test2"), done.get("test3")
        self.hairpin = done.get("hairpin")

    async def hairpin_job(
        self, watcher: UdpEndpoint, test1: NatTestRun
    ) -> Awaitable[Hairpin] | None:
        """The hairpin test toward the mapped address test I got, or None when there is none
        to send to."""
        probe = probe_of(test1)
        mapped = probe.mapped if probe is not None and probe.succeeded else None
        if mapped is None or mapped_address_problem(mapped, self.server_text):
            return None
        # From a socket connected to our own public address: a NAT that does not hairpin
        # often answers ICMP port-unreachable, which ends the wait.
        target = split_address(mapped)
        try:
            sender = await self.open_socket(connect_to=target)
        except LocalBindError:
            raise
        except TransportError as exc:
            self.log.note(f"hairpin test not run: {exc.message}")
            return None
        # A hairpinned packet turns round in the NAT, on the way to the server: it needs no
        # longer than a server round trip, so a third of the filter wait.
        wanted = max(self.options.filter_wait / 3, self.path.rtts(RTT_FACTOR))
        wait = min(wanted, self.filter_wait())
        return hairpin_test(sender, target, watcher, wait, self.path)

    async def filtering_side(self, sock: UdpEndpoint) -> None:
        """RFC 5780 §4.4: tests II and III ask for answers a filter may drop."""
        test1 = await self.test_one(self.filtering, sock)
        other = self.other_known()
        if test1 is None or other is None:
            return
        wait = self.filter_waited = self.filter_wait()
        until = time.monotonic() + wait
        # On a lossy path, more tries, so that silence can still tell a filter from loss.
        count = silence_probes(path_loss([self.mapping.test1, test1]))
        primary = self.primary
        jobs: dict[str, Awaitable[NatTestRun]] = {}
        if other[0] != primary[0]:
            plan = ProbePlan(count, change_ip=True, change_port=True, answer_from=other)
            jobs["test2"] = self.test(sock, primary, end=until, plan=plan)
        if other[1] != primary[1]:
            plan = ProbePlan(count, change_port=True, answer_from=(primary[0], other[1]))
            jobs["test3"] = self.test(sock, primary, end=until, plan=plan)
        done = await _gathered(jobs)
        self.filtering.test2, self.filtering.test3 = done.get("test2"), done.get("test3")

    async def late_answers(self) -> None:
        """Answers still on their way count toward the loss measured: wait a few RTTs."""
        if self.path.rtt is not None:
            left = self.end - time.monotonic()
            await asyncio.sleep(max(0.0, min(self.path.rtts(2) + 0.005, left)))

    async def lifetime(self) -> Lifetime | None:
        """RFC 5780 §4.6 with --lifetime, once the filtering socket's test I was answered."""
        probe = probe_of(self.filtering.test1)
        if not self.options.lifetime or probe is None or not probe.succeeded:
            return None
        search = LifetimeSearch(
            primary=self.primary,
            family=self.family,
            search_max=self.options.lifetime_max,
            wait=self.filter_wait_used,
            timeout=self.options.local.timeout,
            local_address=self.options.local.local_address,
        )
        return await binding_lifetime(search, self.log)

    def decide(self, local: str, lifetime: Lifetime | None, loss: PathLoss) -> NatVerdict:
        """The verdict from every probe, with the loss the tests whose answers must come saw
        (the filtering tests II/III and the hairpin test may rightly go unanswered)."""
        mapping, filtering = self.mapping, self.filtering
        m1, f1 = probe_of(mapping.test1), probe_of(filtering.test1)
        assert m1 is not None and f1 is not None
        m2, m3 = probe_of(mapping.test2), probe_of(mapping.test3)
        f2, f3 = probe_of(filtering.test2), probe_of(filtering.test3)
        return decide(
            MappingObservations(local, self.server_text, m1, m2, m3),
            FilteringObservations(self.server_text, f1, f2, f3),
            hairpinning=self.hairpin.came_round if self.hairpin else None,
            lifetime_s=lifetime.estimate_s if lifetime else None,
            loss=loss,
            hairpin_sends=self.hairpin.sends if self.hairpin else 0,
        )

    @property
    def loss(self) -> PathLoss:
        """What the tests whose answers must come lost."""
        return path_loss([*self.mapping.all(), self.filtering.test1])

    @property
    def requests(self) -> int:
        runs = [*self.mapping.all(), *self.filtering.all()]
        return sum(run.sends for run in runs if run is not None)

    def tests(self, local: str, filtering_sock: UdpEndpoint, loss: PathLoss) -> NatTests:
        def side(local: str, runs: SocketRuns) -> SocketTests:
            return SocketTests(local, *(record_of(run) for run in runs.all()))

        return NatTests(
            filter_wait_ms=round(self.filter_wait_used * 1000, 1),
            loss=loss,
            mapping=side(local, self.mapping),
            filtering=side(self.local_text(filtering_sock), self.filtering),
        )


async def run_rfc5780(options: Rfc5780Settings, log: StunLog, end: float) -> Rfc5780Outcome:
    """Every test toward ``options.server``, within ``end`` (monotonic); the sockets are
    closed when it returns or is cancelled."""
    outcome = Rfc5780Outcome()
    try:
        addresses = await resolve_server(
            options.server, options.local.families, max(0.05, end - time.monotonic())
        )
    except TransportError as exc:
        outcome.error = ResolveError(exc.message)
        return outcome
    session = _Session(options, log, end, addresses[0])
    outcome.address = session.server_text
    try:
        await _run_session(session, outcome)
    except LocalBindError as exc:
        outcome.bind_error = exc
    finally:
        session.close()
    return outcome


async def _run_session(session: _Session, outcome: Rfc5780Outcome) -> None:
    mapping_sock = await session.open_socket(session.options.local.local_port)
    filtering_sock = await session.open_socket()
    local = outcome.local = session.local_text(mapping_sock)
    await asyncio.gather(session.mapping_side(mapping_sock), session.filtering_side(filtering_sock))
    await session.late_answers()
    loss, outcome.requests = session.loss, session.requests
    outcome.lifetime = await session.lifetime()
    outcome.verdict = session.decide(local, outcome.lifetime, loss)
    outcome.other_address = other_of(
        probe_of(session.mapping.test1), probe_of(session.filtering.test1)
    )
    outcome.tests = session.tests(local, filtering_sock, loss)
