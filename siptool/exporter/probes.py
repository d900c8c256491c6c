"""One probe for the exporter: a module's prober run in-process on one target, its result as
the OpenMetrics the command's own ``--format openmetrics`` prints.

The probe is the command itself, not a copy: click parses the module's flags and the target as
on the command line (``cli.run.prepared_job``), the command builds its options and renderer,
and the exporter awaits the work in its own event loop, then asks the renderer for the
metrics.  So ``siptool options-ping --format openmetrics T`` and ``/probe?target=T`` cannot
disagree.

Decisions:

- The timeout is the module's, or the scrape's (X-Prometheus-Scrape-Timeout-Seconds) less
  ``SCRAPE_MARGIN`` when that is shorter (blackbox_exporter's offset), never below
  ``MIN_TIMEOUT``; the work is cancelled ``GRACE`` after it, as a last bound.
- A probe that fails is an answer (siptool_probe_success 0), not an HTTP error: the scrape
  succeeds and says the target is down.  Only a bad request (module, target) is a 400.
- A target with a password in it is refused: it would become a label.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from siptool.errors import ExitCode, SiptoolError, UsageError
from siptool.exporter.config import Module
from siptool.render.openmetrics import Metrics

if TYPE_CHECKING:
    import click

SCRAPE_MARGIN = 0.5
MIN_TIMEOUT = 0.2
GRACE = 1.0
TARGET_LIMIT = 1024

# prober -> (module, click command) in siptool.cli
COMMANDS = {
    "options-ping": ("siptool.cli.options_ping", "options_ping"),
    "register": ("siptool.cli.register", "register"),
    "invite-test": ("siptool.cli.invite_test", "invite_test"),
    "send": ("siptool.cli.send", "send"),
    "stun-probe": ("siptool.cli.stun_probe", "stun_probe"),
    "nat-type": ("siptool.cli.nat_type", "nat_type"),
    "turn-probe": ("siptool.cli.turn_probe", "turn_probe"),
}


@dataclass(frozen=True)
class ProbeOutcome:
    success: bool
    metrics: Metrics
    seconds: float
    failure: str | None  # why it failed, one line (the -v log)


def command_of(prober: str) -> click.Command:
    module, name = COMMANDS[prober]
    command: click.Command = getattr(importlib.import_module(module), name)
    return command


def check_target(target: str | None) -> str:
    """The target of a /probe request; ``UsageError`` saying what is wrong with it."""
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
    if scrape_timeout is None:
        return module.timeout
    return max(MIN_TIMEOUT, min(module.timeout, scrape_timeout - SCRAPE_MARGIN))


def prepare(module: Module, target: str, timeout: float) -> Any:
    """The command's ``Job`` for ``target``; ``UsageError`` for a target it does not take."""
    import click

    from siptool.cli.run import prepared_job

    argv = [*module.positional, "--", target] if module.positional else ["--", target]
    flags = [*module.flags, "--format", "openmetrics", "--timeout", f"{timeout:g}"]
    try:
        return prepared_job(command_of(module.prober), [*flags, *argv])
    except click.UsageError as exc:
        raise UsageError(exc.format_message()) from None


async def run_probe(module: Module, target: str, timeout: float) -> ProbeOutcome:
    """One probe; ``UsageError`` (before anything is sent) for a target the prober refuses."""
    started = time.monotonic()
    job = prepare(module, target, timeout)
    failure: str | None = None
    try:
        result = await asyncio.wait_for(_awaited(job.work()), timeout + GRACE)
    except TimeoutError:
        failure = f"no result within {timeout + GRACE:g} s"
    except SiptoolError as exc:
        failure = exc.message
    else:
        found = job.renderer.collect(result)
        success = result.exit_code is ExitCode.OK
        if not success:
            failure = "; ".join(e.message for e in result.all_errors) or "check failed"
        return ProbeOutcome(success, found, time.monotonic() - started, failure)
    found = Metrics()
    found.add("siptool_probe_success", 0, {"target": target})
    seconds = time.monotonic() - started
    found.add("siptool_probe_duration_seconds", seconds)
    return ProbeOutcome(False, found, seconds, failure)


async def _awaited(pending: Any) -> Any:
    if asyncio.iscoroutine(pending) or isinstance(pending, asyncio.Future):
        return await pending
    return pending
