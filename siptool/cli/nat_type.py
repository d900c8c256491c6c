"""`siptool nat-type` options; the work is in siptool.commands.nat_type."""

from __future__ import annotations

from typing import Any

import click

from siptool.cli.options import FiniteFloat, network_options, output_options


# A NAT test either gets its test-I answers within a second or is talking to a blocked path:
# test I goes out at 0 and 0.5 s (RFC 8489 RTO) from each of two sockets, a second probe at
# 0.5 s beside it, then the verdict; on a lossy path --timeout 3 gives every test more tries.
@click.command("nat-type", context_settings={"default_map": {"timeout": 1.0}})
@click.argument("server", required=False, metavar="[SERVER]")
@click.option(
    "--filter-wait",
    type=FiniteFloat(min=0.01, max=30.0),
    default=0.3,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for an answer that a filtering NAT may rightly drop "
    "(at least 3x the measured RTT).",
)
@click.option(
    "--lifetime",
    is_flag=True,
    help="Also estimate how long an idle UDP binding lives (RFC 5780 §4.6); takes about that long.",
)
@click.option(
    "--lifetime-max",
    type=FiniteFloat(min=1.0, max=3600.0),
    default=120.0,
    show_default=True,
    metavar="SECONDS",
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
@click.option(
    "--watchdog",
    type=FiniteFloat(min=1.0),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
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
def nat_type(**kwargs: Any) -> None:
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
    from siptool.cli.options import flatten
    from siptool.commands.nat_type_cli import main

    raise SystemExit(main(flatten(kwargs)))
