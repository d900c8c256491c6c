"""`siptool exporter`: its flags; the serving is in siptool.exporter (imported only when it
runs, so --help stays cheap)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click

from siptool.cli.options import OutputFlags
from siptool.cli.run import Job, output_for, run_command

if TYPE_CHECKING:
    from siptool.exporter.app import ExporterResult
    from siptool.exporter.config import Module

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
        from siptool.exporter.app import Exporter, ExporterRenderer, run_exporter
        from siptool.exporter.config import load_config

        shown = output_for(COMMAND, OutputFlags())
        host, port = parse_listen(listen)
        # Secrets from the config's files only: no SIPTOOL_PASSWORD, and no prompt (stdin is
        # a server's, not a person's).
        os.environ.pop("SIPTOOL_PASSWORD", None)
        sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115
        modules = load_config(config_path)
        for module in modules.values():
            check_module(module)
        server = Exporter(modules, max_concurrent=max_concurrent, verbose=verbose)
        return Job(shown, ExporterRenderer(shown), lambda: run_exporter(server, host, port))

    run_command(COMMAND, prepare)


def check_module(module: Module) -> None:
    """Prepare one probe of ``module`` (nothing is sent): its flags parse, its files read."""
    from siptool.errors import UsageError
    from siptool.exporter.probes import prepare

    target = VALIDATION_TARGETS.get(module.prober, "sip:127.0.0.1")
    try:
        prepare(module, target, module.timeout)
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
