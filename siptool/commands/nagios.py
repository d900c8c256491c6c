"""Nagios plugin verdicts shared by the probing commands (Nagios Plugin Development
Guidelines: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; perfdata
``label=value[UOM];warn;crit;min;max``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

LABELS = ("OK", "WARNING", "CRITICAL", "UNKNOWN")


@dataclass(frozen=True)
class Thresholds:
    warning_ms: float | None
    critical_ms: float | None
    loss_warning_pct: float
    loss_critical_pct: float

    def state(self, answered: bool, rtt_ms: float | None, loss_pct: float) -> int:
        """CRITICAL when down or past a critical threshold, WARNING past a warning one."""
        if not answered or loss_pct >= self.loss_critical_pct or _past(rtt_ms, self.critical_ms):
            return 2
        if loss_pct >= self.loss_warning_pct or _past(rtt_ms, self.warning_ms):
            return 1
        return 0

    def perfdata(self, suffix: str, rtt_ms: float | None, loss_pct: float) -> list[str]:
        rtt = "U" if rtt_ms is None else f"{rtt_ms:.1f}ms"
        return [
            f"rtt{suffix}={rtt};{_num(self.warning_ms)};{_num(self.critical_ms)};0",
            f"loss{suffix}={loss_pct:g}%;{self.loss_warning_pct:g};{self.loss_critical_pct:g};0;100",
        ]


def _past(value: float | None, threshold: float | None) -> bool:
    return value is not None and threshold is not None and value >= threshold


def _num(value: float | None) -> str:
    if value is None or math.isnan(value):
        return ""
    return f"{value:g}"
