"""The one Nagios plugin verdict, shared by the four commands that have --nagios.

Decisions (Nagios Plugin Development Guidelines, "Plugin Return Codes" and "Performance
data"):

- The state is computed by the command and carried on its result; the renderer only prints
  ``NagiosVerdict.text``.  The process exits with the state (0 OK, 1 WARNING, 2 CRITICAL,
  3 UNKNOWN) instead of the command's exit code.
- Thresholds are milliseconds, crossed at ``>=`` (a value equal to -c is critical).
- Loss thresholds are fixed: 20 % warning, 60 % critical, like check_icmp's defaults for a
  path worth alerting on.
- Perfdata is ``label=value[UOM];warn;crit;min;max``; an unknown value is ``U``.
- UNKNOWN when siptool could not run the check (exit 3), with the errors as the text.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass

from siptool.errors import SiptoolError

LOSS_WARNING_PCT = 20.0
LOSS_CRITICAL_PCT = 60.0


class NagiosState(enum.IntEnum):
    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


@dataclass(frozen=True)
class NagiosVerdict:
    """One status line: ``SERVICE STATE - summary | perfdata``."""

    state: NagiosState
    summary: str
    perfdata: str = ""

    @property
    def text(self) -> str:
        return f"{self.summary} | {self.perfdata}" if self.perfdata else self.summary


@dataclass(frozen=True)
class Thresholds:
    """-w/--warning and -c/--critical in milliseconds (None: not given)."""

    warning_ms: float | None = None
    critical_ms: float | None = None
    loss_warning_pct: float = LOSS_WARNING_PCT
    loss_critical_pct: float = LOSS_CRITICAL_PCT

    def state(self, answered: bool, rtt_ms: float | None, loss_pct: float = 0.0) -> NagiosState:
        """CRITICAL when down or past a critical threshold, WARNING past a warning one."""
        if not answered or loss_pct >= self.loss_critical_pct or _past(rtt_ms, self.critical_ms):
            return NagiosState.CRITICAL
        if loss_pct >= self.loss_warning_pct or _past(rtt_ms, self.warning_ms):
            return NagiosState.WARNING
        return NagiosState.OK

    def time_perfdata(self, label: str, value_ms: float | None) -> str:
        """``label=12.3ms;warn;crit;0`` for a time the thresholds apply to."""
        return (
            f"{label}={ms_or_unknown(value_ms)};{_num(self.warning_ms)};{_num(self.critical_ms)};0"
        )

    def ping_perfdata(self, suffix: str, rtt_ms: float | None, loss_pct: float) -> list[str]:
        """rtt and loss, as check_icmp writes them; ``suffix`` numbers them per target."""
        return [
            self.time_perfdata(f"rtt{suffix}", rtt_ms),
            f"loss{suffix}={loss_pct:g}%;{self.loss_warning_pct:g};{self.loss_critical_pct:g};0;100",
        ]


def verdict(
    service: str, state: NagiosState, summary: str, perfdata: Iterable[str] = ()
) -> NagiosVerdict:
    """``SIP OK - 200 OK from sip:pbx in 12.3 ms`` with its perfdata."""
    return NagiosVerdict(state, f"{service} {state.name} - {summary}", " ".join(perfdata))


@dataclass(frozen=True)
class Pinged:
    """One target of a ping-like check (options-ping, stun-probe) as its line counts it."""

    answered: bool
    rtt_ms: float | None
    loss_pct: float | None  # None: nothing was sent, which counts as all lost
    summary: str


def ping_verdict(
    service: str, pinged: Iterable[Pinged], limits: Thresholds, *, warning: str | None = None
) -> NagiosVerdict:
    """The worst target's state, every target's summary, and rtt and loss perfdata for each
    (numbered when there are several, as check_icmp does).  ``warning``: a finding of the whole
    run that makes an otherwise OK line a WARNING, said then."""
    targets = list(pinged)
    worst = NagiosState.OK
    perf: list[str] = []
    many = len(targets) > 1
    for index, target in enumerate(targets, 1):
        loss = target.loss_pct if target.loss_pct is not None else 100.0
        worst = max(worst, limits.state(target.answered, target.rtt_ms, loss))
        perf += limits.ping_perfdata(f"_{index}" if many else "", target.rtt_ms, loss)
    parts = [target.summary for target in targets]
    if warning is not None and worst is NagiosState.OK:
        worst = NagiosState.WARNING
        parts.append(warning)
    return verdict(service, worst, "; ".join(parts), perf)


def unknown(service: str, errors: Iterable[SiptoolError]) -> NagiosVerdict:
    """siptool could not run the check: UNKNOWN, whatever the thresholds say."""
    return verdict(service, NagiosState.UNKNOWN, "; ".join(e.message for e in errors))


def ms_or_unknown(value_ms: float | None) -> str:
    return "U" if value_ms is None else f"{value_ms:.1f}ms"


def _past(value: float | None, threshold: float | None) -> bool:
    return value is not None and threshold is not None and value >= threshold


def _num(value: float | None) -> str:
    if value is None or math.isnan(value):
        return ""
    return f"{value:g}"
