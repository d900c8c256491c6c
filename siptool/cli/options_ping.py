"""`siptool options-ping` options; the work is in siptool.commands.options_ping."""

from __future__ import annotations

from typing import Any

import click

from siptool.cli.options import (
    dns_options,
    nagios_options,
    network_options,
    output_options,
    repeat_options,
    sip_options,
    timer_options,
)


@click.command("options-ping")
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
@dns_options
@timer_options
@network_options
@sip_options
@nagios_options(critical_short=False)
@output_options
def options_ping(**kwargs: Any) -> None:
    """SIP OPTIONS ping to one or many targets: liveness, RTT, server identity, NAT view.

    Every target is probed concurrently, each from its own socket; replies are matched by
    branch and CSeq and RTTs measured from the first transmission. A target is alive when it
    gives a final response (one of --expect, when given). -c is the count, as in ping: with
    --nagios the critical threshold is --critical.
    """
    from siptool.commands.options_ping_cli import main

    raise SystemExit(main(kwargs))
