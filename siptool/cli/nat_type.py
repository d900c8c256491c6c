"""`siptool nat-type`: its flags, as typed ``NatOptions``; the work is in
siptool.commands.nat_type, the drawing in siptool.render.nat_type."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import click

from siptool.cli.options import (
    MetricsFlags,
    NetworkFlags,
    OutputFlags,
    metrics_options,
    network_options,
    output_options,
    seconds_option,
)
from siptool.cli.run import Job, output_for, run_command

if TYPE_CHECKING:
    from siptool.commands.nat_type import NatResult
    from siptool.stun.servers import StunServer

COMMAND = "nat-type"


# A NAT test either gets its test-I answers within a second or is talking to a blocked path:
# test I goes out at 0 and 0.5 s (RFC 8489 RTO) from each of two sockets, a second probe at
# 0.5 s beside it, then the verdict; on a lossy path --timeout 3 gives every test more tries.
@click.command(COMMAND, context_settings={"default_map": {"timeout": 1.0}})
@click.argument("server", required=False, metavar="[SERVER]")
@seconds_option(
    "--filter-wait",
    default=0.3,
    minimum=0.01,
    maximum=30.0,
    help="How long to wait for an answer that a filtering NAT may rightly drop "
    "(at least 3x the measured RTT).",
)
@click.option(
    "--lifetime",
    is_flag=True,
    help="Also estimate how long an idle UDP binding lives (RFC 5780 §4.6); takes about that long.",
)
@seconds_option(
    "--lifetime-max",
    default=120.0,
    minimum=1.0,
    maximum=3600.0,
    help="Longest binding lifetime --lifetime looks for.",
)
@click.option(
    "--engine",
    type=click.Choice(["siptool", "pystun3"], case_sensitive=False),
    default="siptool",
    show_default=True,
    help="Classifier: siptool's RFC 5780 tests, or pystun3's RFC 3489 algorithm.",
)
@click.option("--compare", is_flag=True, help="Run pystun3 too and show both verdicts.")
@seconds_option(
    "--watchdog",
    default=30.0,
    minimum=1.0,
    help="Kill pystun3 when it has no verdict after this long.",
)
@click.option(
    "--server-list",
    metavar="LIST",
    envvar="SIPTOOL_STUN_SERVERS",
    help="Servers to pick the first of when no SERVER is given (also SIPTOOL_STUN_SERVERS).",
)
@network_options
@output_options
@metrics_options
def nat_type(
    server: str | None,
    filter_wait: float,
    lifetime: bool,
    lifetime_max: float,
    engine: str,
    compare: bool,
    watchdog: float,
    server_list: str | None,
    network: NetworkFlags,
    output: OutputFlags,
    metrics: MetricsFlags,
) -> None:
    """NAT behaviour discovery (RFC 5780 mapping/filtering) and the RFC 3489 label.

    Mapping and filtering are tested each on its own UDP socket, with hairpinning and port
    preservation; the classic label (open-internet, full-cone, restricted-cone,
    port-restricted-cone, symmetric, symmetric-udp-firewall, udp-blocked) follows from them.
    The server must send OTHER-ADDRESS from a second IP (RFC 5780); otherwise the answer is
    "inconclusive" with the reason, never a guess. Exit 1 when UDP is blocked or the answer is
    inconclusive.

    --timeout (1 s by default here) bounds the whole command, from its start to the verdict,
    every test and retransmission included (--lifetime and --engine pystun3 excepted: they take
    as long as they need, up to --lifetime-max and --watchdog). Raise it on a slow or lossy
    path: each test retransmits inside its wait, and a silence that loss may explain is
    reported as "lossy path: N of M probes unanswered" (inconclusive), never as a filter.
    udp-blocked means silence; an ICMP port-unreachable from the server ("no STUN server at
    ...") or answers that were rejected ("answers rejected: bad FINGERPRINT") are named and
    inconclusive.
    """
    started = command_started()

    def prepare() -> Job[NatResult]:
        from siptool.commands.nat_type import Engine, NatOptions, run_nat_type
        from siptool.errors import UsageError
        from siptool.render.nat_type import NatRenderer

        shown = output_for(COMMAND, output, metrics=metrics)
        chosen = Engine(engine.lower())
        if compare and chosen is Engine.PYSTUN3:
            raise UsageError(
                "--compare runs pystun3 beside siptool's engine: drop --engine pystun3"
            )
        options = NatOptions(
            server=parse_nat_server(server, server_list),
            started=started,
            local=network.local(),
            filter_wait=filter_wait,
            lifetime=lifetime,
            lifetime_max=lifetime_max,
            engine=chosen,
            compare=compare,
            watchdog=watchdog,
        )
        renderer = NatRenderer(shown)
        return Job(shown, renderer, lambda: run_nat_type(options), pcap_out=network.pcap_out)

    run_command(COMMAND, prepare)


def parse_nat_server(text: str | None, server_list: str | None) -> StunServer:
    """SERVER, else the first of --server-list, else the first default server; ``UsageError``
    when it is no UDP STUN server."""
    from siptool.errors import ParseError, UsageError
    from siptool.stun.servers import DEFAULT_SERVERS, parse_server, split_server_list

    if not text:
        listed = split_server_list(server_list) if server_list else []
        text = (listed or list(DEFAULT_SERVERS))[0]
    try:
        parsed = parse_server(text)
    except ParseError as exc:
        raise UsageError(f"bad SERVER {text!r}: {exc.message}") from None
    if parsed.transport != "udp":
        raise UsageError(
            f"{text}: NAT behaviour discovery runs over UDP (a stun: URI or host:port)"
        )
    return parsed


def command_started() -> float:
    """``time.monotonic()`` at the start of this process, so that ``--timeout`` bounds the
    whole command, interpreter start-up included.  Linux only (``/proc``); elsewhere, and in
    a process older than a few seconds (siptool called from inside a long-lived Python), now.
    """
    now = time.monotonic()
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            # Field 22 (starttime, clock ticks since boot) follows "pid (comm) state ...";
            # comm may hold spaces and parentheses, so count from the last ')'.
            fields = stat.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime", encoding="ascii") as uptime:
            up = float(uptime.read().split()[0])
        age = up - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return now
    return now - age if 0.0 <= age <= 5.0 else now
