"""`siptool stun-probe` options; the work is in siptool.commands.stun_probe."""

from __future__ import annotations

from typing import Any

import click

from siptool.cli.options import (
    nagios_options,
    network_options,
    output_options,
    repeat_options,
)


@click.command("stun-probe")
@click.argument("servers", nargs=-1, metavar="[SERVER...]")
@repeat_options("Binding requests", "server")
@click.option(
    "--transport",
    type=click.Choice(["udp", "tcp", "tls"], case_sensitive=False),
    help="Transport for servers given without a scheme (a stun:/stuns: URI wins).",
)
@click.option("--insecure", is_flag=True, help="Do not verify the TLS certificate.")
# A directory is a CA file siptool cannot read (exit 3), not a usage error: no dir_okay=False.
@click.option(
    "--ca-file", type=click.Path(), metavar="FILE", help="CA bundle for TLS verification."
)
@click.option(
    "--server-list",
    metavar="LIST",
    envvar="SIPTOOL_STUN_SERVERS",
    help="Servers to use when no SERVER is given, separated by commas or spaces "
    "(also SIPTOOL_STUN_SERVERS; default: Google's and Cloudflare's public servers).",
)
@click.option("--software", metavar="TEXT", help="Send a SOFTWARE attribute with this text.")
@click.option("--jsonl", is_flag=True, help="One JSON object per reply, then the summary.")
@network_options
@nagios_options
@output_options
def stun_probe(**kwargs: Any) -> None:
    """STUN Binding to one or more servers: mapped address, RTT, capabilities.

    Every UDP server is asked concurrently from one local socket, so their answers show
    whether the NAT mapping is the same toward every destination (mapping_consistent) and
    whether the NAT kept the local port. Per server: local and mapped address, RTT
    (min/avg/max/loss with -c), SOFTWARE, RESPONSE-ORIGIN, OTHER-ADDRESS (RFC 5780 support).
    SERVER is host, host:port, [v6]:port, stun:host[:port] or stuns:host[:port] (TLS).
    -c is the count, as in ping: with --nagios the critical threshold is --critical.
    """
    from siptool.cli.options import flatten
    from siptool.commands.stun_probe_cli import main

    raise SystemExit(main(flatten(kwargs)))
