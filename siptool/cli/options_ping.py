"""`siptool options-ping`: its flags, as typed ``PingOptions``; the work is in
siptool.commands.options_ping, the drawing in siptool.render.options_ping."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from siptool.cli.options import (
    MetricsFlags,
    RepeatFlags,
    SipCheckFlags,
    metrics_options,
    repeat_options,
    sip_check_options,
)
from siptool.cli.run import Job, output_for, run_command

if TYPE_CHECKING:
    from siptool.commands.options_ping import PingResult
    from siptool.sip.target import Target

COMMAND = "options-ping"


@click.command(COMMAND)
@click.argument("targets", nargs=-1, metavar="TARGET...")
@click.option(
    "-f",
    "--file",
    "targets_file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Read targets from FILE, one per line (# comments); - is standard input.",
)
@repeat_options("OPTIONS requests", "target")
@click.option(
    "--expect",
    metavar="CODES",
    help="Final responses that count as alive, e.g. 200 or 200,404 or 2xx (default: any).",
)
@click.option(
    "--resolve-only",
    is_flag=True,
    help="Print the RFC 3263 resolution path (NAPTR, SRV, A/AAAA) and send nothing.",
)
@click.option("--jsonl", is_flag=True, help="One JSON object per reply, then the summary.")
@sip_check_options
@metrics_options
def options_ping(
    targets: tuple[str, ...],
    targets_file: str | None,
    repeat: RepeatFlags,
    expect: str | None,
    resolve_only: bool,
    jsonl: bool,
    check: SipCheckFlags,
    metrics: MetricsFlags,
) -> None:
    """SIP OPTIONS ping to one or many targets: liveness, RTT, server identity, NAT view.

    Every target is probed concurrently, each from its own socket; replies are matched by
    branch and CSeq and RTTs measured from the first transmission. A target is alive when it
    gives a final response (one of --expect, when given). -n is the count (check_icmp's
    letter); -w/-c are the --nagios thresholds in milliseconds.
    """

    def prepare() -> Job[PingResult]:
        from siptool.commands.options_ping import PingOptions, run_ping
        from siptool.commands.sip_common import Expectation
        from siptool.errors import UsageError
        from siptool.render.options_ping import PingRenderer

        shown = output_for(COMMAND, check.output, jsonl=jsonl, nagios=check.nagios, metrics=metrics)
        parsed = read_targets(targets, targets_file, check.sip.transport)
        try:
            expectation = Expectation.parse(expect)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if not parsed:
            raise UsageError("no TARGET given (arguments or -f FILE)")
        if check.network.local_port and len(parsed) > 1:
            raise UsageError("--local-port binds one socket: give one target")
        options = PingOptions(
            targets=tuple(parsed),
            settings=check.settings(),
            count=repeat.count,
            interval=repeat.interval,
            expect=expectation,
            resolve_only=resolve_only,
            thresholds=check.thresholds,
        )
        renderer = PingRenderer(shown, count=repeat.count)
        return Job(
            shown,
            renderer,
            lambda: run_ping(options, renderer.reply),
            pcap_out=check.network.pcap_out,
        )

    run_command(COMMAND, prepare)


def read_targets(args: tuple[str, ...], path: str | None, transport: str | None) -> list[Target]:
    """Targets from the arguments then the file; ``UsageError`` names the bad one,
    ``InputError`` an unreadable file."""
    from siptool.errors import InputError, ParseError, UsageError
    from siptool.sip.target import parse_target, redact_password

    lines = [(text, f"argument {redact_password(text)!r}") for text in args]
    if path:
        try:
            handle = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
            with handle:
                for number, line in enumerate(handle, 1):
                    text = line.split("#", 1)[0].strip()
                    if text:
                        lines.append((text, f"{path}:{number}"))
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise InputError(f"cannot read {path}: not UTF-8 text ({exc.reason})") from None
    parsed = []
    for text, where in lines:
        try:
            parsed.append(parse_target(text, transport))
        except ParseError as exc:
            raise UsageError(f"{where}: bad target: {exc.message}") from None
    return parsed
