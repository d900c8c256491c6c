"""`siptool exporter`: its flags as typed ``ExporterOptions``, and the probe runner the
exporter is given: a module's prober is the command itself, its flags and the target parsed by
click as on the command line (``cli.run.prepared_job``), its work awaited in the exporter's
loop, its metrics its own renderer's.  The serving is in siptool.commands.exporter, /metrics in
siptool.render.exporter (imported only when it runs, so --help stays cheap)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import click

from siptool.cli.options import OutputFlags
from siptool.cli.run import Job, output_for, run_command

if TYPE_CHECKING:
    from siptool.commands.exporter import ExporterResult, ProbeOutcome
    from siptool.commands.exporter_config import Module

COMMAND = "exporter"
DEFAULT_LISTEN = "127.0.0.1:9150"
VALIDATION_TARGETS = {"turn-probe": "turn:127.0.0.1", "stun-probe": "127.0.0.1"}


@click.command(COMMAND)
@click.option(
    "--listen",
    default=DEFAULT_LISTEN,
    show_default=True,
    metavar="HOST:PORT",
    help="Where to serve /probe and /metrics ([v6]:PORT for IPv6; loopback by default).",
)
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False),
    metavar="FILE.toml",
    help='The modules: [modules.NAME] prober = "options-ping", timeout, and the prober\'s flags.',
)
@click.option(
    "--max-concurrent",
    type=click.IntRange(1, 10_000),
    default=64,
    show_default=True,
    help="Probes run at once; a request that waits past its timeout is 503.",
)
@click.option("-v", "--verbose", is_flag=True, help="One line on stderr per probe.")
def exporter(listen: str, config_path: str, max_concurrent: int, verbose: bool) -> None:
    """A Prometheus exporter of siptool's probes, as blackbox_exporter is of its own.

    GET /probe?module=M&target=T runs module M's prober on T and answers OpenMetrics
    (siptool_probe_success, siptool_probe_duration_seconds and the prober's metrics), within
    the module's timeout or the scrape's X-Prometheus-Scrape-Timeout-Seconds less 0.5 s.
    GET /metrics is the exporter's own. Secrets only from files the config names.
    """

    def prepare() -> Job[ExporterResult]:
        from siptool.commands.exporter import ExporterOptions, run_exporter
        from siptool.commands.exporter_config import load_config
        from siptool.render.exporter import ExporterRenderer, stats_metrics

        shown = output_for(COMMAND, OutputFlags())
        host, port = parse_listen(listen)
        # Secrets from the config's files only: no SIPTOOL_PASSWORD, and no prompt (stdin is
        # a server's, not a person's).
        os.environ.pop("SIPTOOL_PASSWORD", None)
        sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115
        modules = load_config(config_path)
        for module in modules.values():
            check_module(module)
        options = ExporterOptions(
            modules, host, port, max_concurrent, verbose, run_probe, stats_metrics
        )
        return Job(shown, ExporterRenderer(shown), lambda: run_exporter(options))

    run_command(COMMAND, prepare)


def check_module(module: Module) -> None:
    """Prepare one probe of ``module`` (nothing is sent): its flags parse, its files read."""
    from siptool.errors import UsageError

    target = VALIDATION_TARGETS.get(module.prober, "sip:127.0.0.1")
    try:
        prepare_probe(module, target, module.timeout)
    except UsageError as exc:
        raise UsageError(f"module {module.name!r}: {exc.message}") from None


def parse_listen(text: str) -> tuple[str, int]:
    from siptool.addr import port_number, split_host_port
    from siptool.errors import UsageError

    host, port = split_host_port(text)
    number = port_number(port) if port is not None else None
    if not host or number is None:
        raise UsageError(f"--listen {text!r}: not HOST:PORT")
    return host, number


GRACE = 1.0  # past the probe's timeout, its work is cancelled


def command_of(prober: str) -> click.Command:
    """The click command of a prober (one of commands/exporter_config.py's PROBERS): the
    command ``options-ping`` is ``options_ping`` in siptool/cli/options_ping.py."""
    import importlib

    name = prober.replace("-", "_")
    command: click.Command = getattr(importlib.import_module(f"siptool.cli.{name}"), name)
    return command


def prepare_probe(module: Module, target: str, timeout: float) -> Job[Any]:
    """The command's ``Job`` for ``target`` (nothing sent yet); ``UsageError`` for a target or
    a flag it does not take."""
    from siptool.cli.run import prepared_job
    from siptool.errors import UsageError

    # "--" first: a target is never read as a flag.
    arguments = [*module.positional, "--", target]
    flags = [*module.flags, "--format", "openmetrics", "--timeout", f"{timeout:g}"]
    try:
        return prepared_job(command_of(module.prober), [*flags, *arguments])
    except click.UsageError as exc:
        raise UsageError(exc.format_message()) from None


async def run_probe(module: Module, target: str, timeout: float) -> ProbeOutcome:
    """One probe: the command's work within ``timeout`` (and ``GRACE``), its renderer's
    metrics.  A probe that fails is an outcome (siptool_probe_success 0), not an error."""
    import asyncio
    import inspect
    import time

    from siptool.commands.exporter import ProbeOutcome
    from siptool.errors import ExitCode, SiptoolError
    from siptool.render.openmetrics import Metrics
    from siptool.render.output import ResultRenderer

    started = time.monotonic()
    job = prepare_probe(module, target, timeout)
    failure: str | None
    try:
        pending = job.work()
        result = (
            await asyncio.wait_for(pending, timeout + GRACE)
            if inspect.isawaitable(pending)
            else pending
        )
    except TimeoutError:
        failure = f"no result within {timeout + GRACE:g} s"
    except SiptoolError as exc:
        failure = exc.message
    else:
        assert isinstance(job.renderer, ResultRenderer)
        found = job.renderer.collect(result)
        success = result.exit_code is ExitCode.OK
        failure = None
        if not success:
            failure = "; ".join(e.message for e in result.all_errors) or "check failed"
        return ProbeOutcome(success, found, time.monotonic() - started, failure)
    found = Metrics()
    found.add("siptool_probe_success", 0, {"target": target})
    seconds = time.monotonic() - started
    found.add("siptool_probe_duration_seconds", seconds)
    return ProbeOutcome(False, found, seconds, failure)
