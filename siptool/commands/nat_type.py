"""`siptool nat-type`: RFC 5780 NAT behaviour discovery and the RFC 3489 label.

``NatOptions`` -> ``run_nat_type`` -> ``NatResult``, every verdict on the result: the label,
the exit code, the errors and whether pystun3 agrees (--compare).  siptool's own classifier is
siptool.commands.nat_rfc5780 (its probes in nat_probes, --lifetime in nat_lifetime), pystun3's
is run by siptool.commands.nat_pystun3.

Decisions:

* ``--timeout`` bounds the whole command: one deadline, counted from the process's start
  (``NatOptions.started``, which the CLI reads from /proc: interpreter start-up included),
  caps every test and transmission, ``CLEANUP`` before it kept for closing sockets and printing
  the verdict; ``elapsed_ms`` counts from the same start.  Only ``--lifetime`` and pystun3
  (under ``--watchdog``) run past it.
* Exit 1 when the label is inconclusive or udp-blocked (with pystun3 alone, also when it gave
  none); exit 3 when a local socket cannot be bound.  Silence is one "timeout" error naming
  the requests sent; any other failure (an ICMP error, rejected answers) the reason decide()
  gave; an inconclusive run one "inconclusive" error per reason.
* pystun3 runs beside siptool's tests (--compare) and is cancelled, its child killed, when
  siptool cannot run them or the command is interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from dataclasses import dataclass, field

from siptool.commands.nat_lifetime import Lifetime
from siptool.commands.nat_pystun3 import EngineReport, run_pystun3
from siptool.commands.nat_rfc5780 import NatTests, Rfc5780Outcome, run_rfc5780
from siptool.commands.result import CheckResult
from siptool.errors import ExitCode, SiptoolError
from siptool.net.settings import LocalSettings
from siptool.net.stun_transport import StunLog
from siptool.stun.behavior import Classic, Mapping, NatVerdict, Unanswered
from siptool.stun.servers import StunServer

CLEANUP = 0.02  # seconds of --timeout kept for closing sockets and printing the verdict

# Labels that hurt calls (symmetric: media needs TURN) or tell nothing.
_TROUBLESOME = (Classic.INCONCLUSIVE, Classic.UDP_BLOCKED, Classic.SYMMETRIC)
_FAILED = (Classic.INCONCLUSIVE, Classic.UDP_BLOCKED)


class Engine(enum.Enum):
    """Who classifies: siptool's RFC 5780 tests, or pystun3's RFC 3489 algorithm."""

    SIPTOOL = "siptool"
    PYSTUN3 = "pystun3"


@dataclass(frozen=True)
class NatOptions:
    server: StunServer
    started: float  # time.monotonic() of the command's start: --timeout counts from it
    local: LocalSettings = field(default_factory=lambda: LocalSettings(timeout=1.0))
    filter_wait: float = 0.3
    lifetime: bool = False
    lifetime_max: float = 120.0
    engine: Engine = Engine.SIPTOOL
    compare: bool = False
    watchdog: float = 30.0


@dataclass
class NatResult(CheckResult):
    server: str | None
    engine: Engine = Engine.SIPTOOL
    address: str | None = None
    other_address: str | None = None
    local: str | None = None
    verdict: NatVerdict | None = None
    tests: NatTests | None = None
    lifetime: Lifetime | None = None
    pystun3: EngineReport | None = None
    agree: bool | None = None  # --compare: pystun3's label is siptool's (None: it gave none)
    elapsed_ms: float | None = None  # nat-type has no --nagios: ``nagios`` stays None

    @property
    def classic(self) -> Classic:
        """The RFC 3489 label of the engine asked."""
        if self.engine is Engine.PYSTUN3:
            found = self.pystun3.classic if self.pystun3 else None
            return found or Classic.INCONCLUSIVE
        return self.verdict.classic if self.verdict else Classic.INCONCLUSIVE

    @property
    def troublesome(self) -> bool:
        """A label that hurts calls or tells nothing."""
        return self.classic in _TROUBLESOME

    @property
    def mapping(self) -> Mapping:
        return self.verdict.mapping if self.verdict else Mapping.UNKNOWN

    @property
    def filtering(self) -> Mapping:
        return self.verdict.filtering if self.verdict else Mapping.UNKNOWN

    @property
    def hairpinning(self) -> bool | None:
        return self.verdict.hairpinning if self.verdict else None

    @property
    def port_preserved(self) -> bool | None:
        return self.verdict.port_preserved if self.verdict else None

    @property
    def mapped(self) -> str | None:
        if self.verdict is not None:
            return self.verdict.mapped
        return self.pystun3.mapped if self.pystun3 else None

    @property
    def reasons(self) -> list[str]:
        return self.verdict.reasons if self.verdict else []

    @property
    def advice(self) -> list[str]:
        return self.verdict.advice if self.verdict else []


def _elapsed_ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


async def run_nat_type(options: NatOptions) -> NatResult:
    """The engine asked (and pystun3 beside it with --compare), and the verdicts."""
    result = NatResult(options.server.text, engine=options.engine)
    # --timeout bounds the whole run, from the command's start to the verdict.
    end = max(time.monotonic(), options.started + options.local.timeout - CLEANUP)
    pystun3: asyncio.Future[EngineReport] | None = None
    if options.engine is Engine.PYSTUN3 or options.compare:
        pystun3 = asyncio.ensure_future(
            run_pystun3(
                options.server,
                local_address=options.local.local_address,
                timeout=options.local.timeout,
                watchdog=options.watchdog,
            )
        )
    try:
        if options.engine is Engine.SIPTOOL:
            outcome = await run_rfc5780(options, StunLog(options.local.verbose), end)
            if outcome.bind_error is not None:
                return _not_run(result, outcome)
            result.elapsed_ms = _elapsed_ms(options.started)
            _take_siptool(result, outcome, options)
        if pystun3 is not None:
            result.pystun3 = await pystun3
    finally:
        if pystun3 is not None and not pystun3.done():
            pystun3.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pystun3
    if result.elapsed_ms is None:
        result.elapsed_ms = _elapsed_ms(options.started)
    if options.engine is Engine.PYSTUN3:
        _take_pystun3(result)
    elif result.pystun3 is not None and result.pystun3.classic is not None:
        result.agree = result.pystun3.classic is result.classic
    return result


def _not_run(result: NatResult, outcome: Rfc5780Outcome) -> NatResult:
    """A local socket could not be bound: siptool could not run the check."""
    assert outcome.bind_error is not None
    result.address, result.local = outcome.address, outcome.local
    result.exit_code = ExitCode.NOT_RUN
    result.errors = [outcome.bind_error]
    return result


def _take_siptool(result: NatResult, outcome: Rfc5780Outcome, options: NatOptions) -> None:
    result.address, result.local = outcome.address, outcome.local
    result.other_address = outcome.other_address
    result.verdict, result.tests, result.lifetime = outcome.verdict, outcome.tests, outcome.lifetime
    if outcome.error is not None:
        result.errors.append(outcome.error)
        result.exit_code = ExitCode.FAILED
        return
    verdict = outcome.verdict
    assert verdict is not None
    if verdict.failure is not None:
        message = verdict.reasons[0]
        if verdict.failure is Unanswered.TIMEOUT:
            message = (
                f"no answer from {outcome.address} over UDP within {options.local.timeout:g} s "
                f"({outcome.requests} requests)"
            )
        result.errors.append(SiptoolError(message, code=verdict.failure.value))
    else:
        result.errors += [SiptoolError(r, code="inconclusive") for r in verdict.reasons]
    if verdict.classic in _FAILED:
        result.exit_code = ExitCode.FAILED


def _take_pystun3(result: NatResult) -> None:
    report = result.pystun3
    assert report is not None
    result.local, result.address = report.local, None
    if report.error:
        result.errors.append(SiptoolError(report.error, code="engine_error"))
    if report.classic is None or report.classic in _FAILED:
        result.exit_code = ExitCode.FAILED


__all__ = ["Engine", "NatOptions", "NatResult", "run_nat_type"]
