"""`siptool exporter`: the HTTP paths, the concurrency limit and the exporter's own metrics.

The exporter serves siptool's probes to Prometheus as blackbox_exporter serves its own.  A
probe is the command itself: cli/exporter.py hands this module a ``ProbeRunner`` that parses
the module's flags and the target with click, as on the command line, and runs the command's
work in this event loop; and a ``StatsExposition`` (render/exporter.py) for /metrics.  So
``siptool options-ping --format openmetrics T`` and ``/probe?module=options&target=T`` cannot
disagree, and this module imports neither cli nor render.

- ``GET /probe?module=M&target=T`` runs one probe and answers its
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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from siptool.addr import format_address
from siptool.commands.exporter_config import Module
from siptool.commands.result import CheckResult
from siptool.errors import ExitCode, LocalBindError, UsageError
from siptool.net.http_server import Request, Response, start_http_server
from siptool.terminal import one_line

OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SCRAPE_MARGIN = 0.5  # blackbox_exporter's timeout offset
MIN_TIMEOUT = 0.2
TARGET_LIMIT = 1024

# Seconds: from a loopback OPTIONS (a millisecond) to a slow trunk's INVITE.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))
TIMEOUT_HEADER = "x-prometheus-scrape-timeout-seconds"
PROBE_PARAMETERS = frozenset({"module", "target"})


class Exposition(Protocol):
    """Metrics as the two texts a scraper may ask for (render/openmetrics.py's ``Metrics``)."""

    def openmetrics(self) -> str: ...

    def prometheus(self) -> str: ...


@dataclass(frozen=True)
class ProbeOutcome:
    success: bool
    metrics: Exposition
    seconds: float
    failure: str | None  # why it failed, one line (the -v log)


# (module, target, timeout) -> the outcome; UsageError for a target the prober refuses.
ProbeRunner = Callable[[Module, str, float], Awaitable[ProbeOutcome]]


def check_target(target: str | None) -> str:
    """The target of a /probe request; ``UsageError`` saying what is wrong with it.  A target
    with a password in it is refused: it would become a label."""
    from siptool.sip.target import redact_password

    if not target:
        raise UsageError("target parameter is missing")
    if len(target) > TARGET_LIMIT:
        raise UsageError(f"target is longer than {TARGET_LIMIT} characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in target):
        raise UsageError("target has spaces or control characters")
    if target.startswith("-"):
        raise UsageError("target must not start with '-'")
    if redact_password(target) != target:
        raise UsageError("target has a password in it: put it in the module's password_file")
    return target


def probe_timeout(module: Module, scrape_timeout: float | None) -> float:
    """The module's timeout, or the scrape's less ``SCRAPE_MARGIN`` when that is shorter
    (never below ``MIN_TIMEOUT``): the answer is back before Prometheus gives up."""
    if scrape_timeout is None:
        return module.timeout
    return max(MIN_TIMEOUT, min(module.timeout, scrape_timeout - SCRAPE_MARGIN))


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


StatsExposition = Callable[[ExporterStats], Exposition]


@dataclass(frozen=True)
class ExporterOptions:
    modules: dict[str, Module]
    host: str
    port: int
    max_concurrent: int
    verbose: bool
    run_probe: ProbeRunner
    expose_stats: StatsExposition


class Exporter:
    def __init__(self, options: ExporterOptions) -> None:
        self.modules = options.modules
        self.slots = asyncio.Semaphore(options.max_concurrent)
        self.verbose = options.verbose
        self.run_probe = options.run_probe
        self.expose_stats = options.expose_stats
        self.stats = ExporterStats()
        for name in self.modules:
            self.stats.durations[name] = Histogram()

    async def handle(self, request: Request) -> Response:
        try:
            return await self._route(request)
        except Exception as exc:  # a bug in a probe: one line and a 500, never a traceback
            self._log(f"internal error, a bug in siptool: {type(exc).__name__}: {exc}")
            return Response(500, f"internal error: {type(exc).__name__}\n")

    async def _route(self, request: Request) -> Response:
        if request.path == "/probe":
            return await self.probe(request)
        if request.path == "/metrics":
            return _metrics(self.expose_stats(self.stats), request)
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
            outcome = await self.run_probe(module, target, timeout)
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


def _metrics(found: Exposition, request: Request) -> Response:
    if "application/openmetrics-text" in request.headers.get("accept", ""):
        return Response(200, found.openmetrics(), OPENMETRICS_CONTENT_TYPE)
    return Response(200, found.prometheus(), PROMETHEUS_CONTENT_TYPE)


async def serve(exporter: Exporter, host: str, port: int) -> float:
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


async def run_exporter(options: ExporterOptions) -> ExporterResult:
    """Serve until SIGTERM or SIGINT (exit 0); exit 3 when the address cannot be had."""
    host, port = options.host, options.port
    try:
        served = await serve(Exporter(options), host, port)
    except OSError as exc:
        from siptool.net.connect import os_reason

        error = LocalBindError(f"cannot listen on {format_address(host, port)}: {os_reason(exc)}")
        return ExporterResult(exit_code=ExitCode.NOT_RUN, errors=[error])
    return ExporterResult(served_seconds=served)
