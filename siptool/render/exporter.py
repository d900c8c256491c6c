"""Output of `siptool exporter`: its own /metrics, and nothing on stdout.  The probes' metrics
are each command's own renderer's (``ResultRenderer.collect``)."""

from __future__ import annotations

from siptool.commands.exporter import ExporterResult, ExporterStats
from siptool.render.openmetrics import Metrics
from siptool.render.output import ResultRenderer


def stats_metrics(stats: ExporterStats) -> Metrics:
    """/metrics: probes by module and result, rejections by reason, probes in flight, and the
    probe duration histogram of each module."""
    found = Metrics()
    for (module, result), n in sorted(stats.probes.items()):
        found.add("siptool_exporter_probes", n, {"module": module, "result": result})
    for reason, n in sorted(stats.rejected.items()):
        found.add("siptool_exporter_requests_rejected", n, {"reason": reason})
    found.add("siptool_exporter_probes_in_flight", stats.in_flight)
    for module, histogram in sorted(stats.durations.items()):
        found.histogram(
            "siptool_exporter_probe_duration_seconds", histogram.buckets(),
            histogram.total, histogram.count, {"module": module},
        )  # fmt: skip
    return found


class ExporterRenderer(ResultRenderer[ExporterResult]):
    """The exporter shows nothing on stdout; why it could not start goes to stderr."""

    def body(self, result: ExporterResult) -> dict[str, object]:
        return {"served_seconds": result.served_seconds}

    def has_report(self, result: ExporterResult) -> bool:
        return False
