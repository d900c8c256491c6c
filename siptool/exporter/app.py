"""`siptool exporter`: the HTTP paths, the concurrency limit and the exporter's own metrics.

- ``GET /probe?module=M&target=T`` runs one probe (exporter/probes.py) and answers its
  metrics; a missing or unknown module, a bad target, an unknown parameter or a malformed
  X-Prometheus-Scrape-Timeout-Seconds is 400 with one line saying which.
- ``GET /metrics``: probes run per module and result, rejected requests per reason, probes in
  flight and a probe duration histogram per module.
- ``GET /-/healthy`` (as Prometheus's own) and ``GET /``, a page naming the modules.

Decisions:

- OpenMetrics when the scraper asks for it (Accept: application/openmetrics-text, as
  Prometheus does), else the 0.0.4 text (curl, older scrapers): the samples are the same.
- At most ``max_concurrent`` probes run at once; a request that cannot start one within its
  own timeout is 503, so a flood slows nobody's answer past their scrape timeout.
- A probe's failure (the target is down) is never logged by default: the metric says it.
  With -v every probe is one line on stderr.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from siptool.addr import format_address
from siptool.commands.result import CheckResult
from siptool.errors import ExitCode, LocalBindError, UsageError
from siptool.exporter.config import Module
from siptool.exporter.http import Request, Response, start_http_server
from siptool.exporter.probes import check_target, probe_timeout, run_probe
from siptool.render.openmetrics import OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE, Metrics
from siptool.render.output import ResultRenderer
from siptool.terminal import one_line

# Seconds: from a loopback OPTIONS (a millisecond) to a slow trunk's INVITE.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))
TIMEOUT_HEADER = "x-prometheus-scrape-timeout-seconds"
PROBE_PARAMETERS = frozenset({"module", "target"})


@dataclass
class Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    total: float = 0.0
    count: int = 0

    def observe(self, seconds: float) -> None:
        self.total += seconds
        self.count += 1
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.counts[i] += 1

    def buckets(self) -> list[tuple[float, int]]:
        return list(zip(BUCKETS, self.counts, strict=True))


@dataclass
class ExporterStats:
    probes: Counter[tuple[str, str]] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    durations: dict[str, Histogram] = field(default_factory=dict)
    in_flight: int = 0

    def metrics(self) -> Metrics:
        found = Metrics()
        for (module, result), n in sorted(self.probes.items()):
            found.add("siptool_exporter_probes", n, {"module": module, "result": result})
        for reason, n in sorted(self.rejected.items()):
            found.add("siptool_exporter_requests_rejected", n, {"reason": reason})
        found.add("siptool_exporter_probes_in_flight", self.in_flight)
        for module, histogram in sorted(self.durations.items()):
            found.histogram(
                "siptool_exporter_probe_duration_seconds", histogram.buckets(),
                histogram.total, histogram.count, {"module": module},
            )  # fmt: skip
        return found


class Exporter:
    def __init__(self, modules: dict[str, Module], *, max_concurrent: int, verbose: bool) -> None:
        self.modules = modules
        self.slots = asyncio.Semaphore(max_concurrent)
        self.verbose = verbose
        self.stats = ExporterStats()
        for name in modules:
            self.stats.durations[name] = Histogram()

    async def handle(self, request: Request) -> Response:
        if request.path == "/probe":
            return await self.probe(request)
        if request.path == "/metrics":
            return _metrics(self.stats.metrics(), request)
        if request.path == "/-/healthy":
            return Response(200, "Healthy\n")
        if request.path == "/":
            return Response(200, self.index(), "text/html; charset=utf-8")
        return Response(404, "not found: /probe, /metrics, /-/healthy\n")

    async def probe(self, request: Request) -> Response:
        try:
            module, target, scrape_timeout = self._probe_request(request)
        except UsageError as exc:
            return self._reject(exc.message, "bad_request")
        timeout = probe_timeout(module, scrape_timeout)
        try:
            await asyncio.wait_for(self.slots.acquire(), timeout)
        except TimeoutError:
            return self._reject("too many probes in flight", "concurrency", status=503)
        self.stats.in_flight += 1
        try:
            outcome = await run_probe(module, target, timeout)
        except UsageError as exc:
            return self._reject(exc.message, "bad_target")
        finally:
            self.stats.in_flight -= 1
            self.slots.release()
        result = "success" if outcome.success else "failure"
        self.stats.probes[(module.name, result)] += 1
        self.stats.durations[module.name].observe(outcome.seconds)
        if self.verbose:
            why = f" ({outcome.failure})" if outcome.failure else ""
            self._log(
                f"module={module.name} target={target} success={int(outcome.success)} "
                f"duration={outcome.seconds:.4f}s{why}"
            )
        return _metrics(outcome.metrics, request)

    def _probe_request(self, request: Request) -> tuple[Module, str, float | None]:
        unknown = sorted(set(request.query) - PROBE_PARAMETERS)
        if unknown:
            raise UsageError(f"unknown parameter {unknown[0]!r} (module and target only)")
        for name, values in request.query.items():
            if len(values) > 1:
                raise UsageError(f"{name} given {len(values)} times")
        name = request.query.get("module", [""])[0]
        if not name:
            raise UsageError("module parameter is missing")
        module = self.modules.get(name)
        if module is None:
            raise UsageError(f"unknown module {name!r}")
        target = check_target(request.query.get("target", [""])[0])
        header = request.headers.get(TIMEOUT_HEADER)
        scrape_timeout = None
        if header is not None:
            try:
                scrape_timeout = float(header)
            except ValueError:
                scrape_timeout = -1.0
            if not 0 < scrape_timeout < 3600:
                raise UsageError(f"bad X-Prometheus-Scrape-Timeout-Seconds {header!r}")
        return module, target, scrape_timeout

    def _reject(self, reason: str, kind: str, *, status: int = 400) -> Response:
        self.stats.rejected[kind] += 1
        if self.verbose:
            self._log(f"{status}: {reason}")
        return Response(status, one_line(reason) + "\n")

    def index(self) -> str:
        from html import escape

        items = "".join(
            f"<li>{escape(m.name)}: {escape(m.prober)}, timeout {m.timeout:g} s</li>"
            for m in self.modules.values()
        )
        return (
            "<html><head><title>siptool exporter</title></head><body>"
            "<h1>siptool exporter</h1><p><a href='/metrics'>/metrics</a> · "
            "/probe?module=M&amp;target=T</p>"
            f"<ul>{items}</ul></body></html>\n"
        )

    def _log(self, line: str) -> None:
        sys.stderr.write(f"siptool exporter: {one_line(line)}\n")
        sys.stderr.flush()


def _metrics(found: Metrics, request: Request) -> Response:
    if "application/openmetrics-text" in request.headers.get("accept", ""):
        return Response(200, found.openmetrics(), OPENMETRICS_CONTENT_TYPE)
    return Response(200, found.prometheus(), PROMETHEUS_CONTENT_TYPE)


async def serve(
    exporter: Exporter, host: str, port: int, *, ready: asyncio.Event | None = None
) -> float:
    """Serve until SIGTERM or SIGINT; the seconds it served.  OSError when it cannot bind."""
    started = time.monotonic()
    server = await start_http_server(host, port, exporter.handle)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    where = server.sockets[0].getsockname()
    shown = f"[{where[0]}]" if ":" in where[0] else where[0]
    exporter._log(
        f"listening on http://{shown}:{where[1]}/ (modules: {', '.join(exporter.modules)})"
    )
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        # Not wait_closed(): from Python 3.12 it waits for the keep-alive connections too,
        # which asyncio.run cancels on the way out.
        server.close()
    return time.monotonic() - started


@dataclass(kw_only=True)
class ExporterResult(CheckResult):
    """How the exporter ended: stopped by a signal (exit 0) or unable to listen (exit 3)."""

    served_seconds: float = 0.0


class ExporterRenderer(ResultRenderer[ExporterResult]):
    """The exporter's run shows nothing on stdout; why it could not start goes to stderr."""

    def body(self, result: ExporterResult) -> dict[str, object]:
        return {"served_seconds": result.served_seconds}

    def has_report(self, result: ExporterResult) -> bool:
        return False


async def run_exporter(exporter: Exporter, host: str, port: int) -> ExporterResult:
    try:
        served = await serve(exporter, host, port)
    except OSError as exc:
        from siptool.net.connect import os_reason

        error = LocalBindError(f"cannot listen on {format_address(host, port)}: {os_reason(exc)}")
        return ExporterResult(exit_code=ExitCode.NOT_RUN, errors=[error])
    return ExporterResult(served_seconds=served)
