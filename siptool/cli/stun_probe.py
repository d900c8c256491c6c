"""`siptool stun-probe`: its flags, as typed ``ProbeOptions``; the work is in
siptool.commands.stun_probe, the drawing in siptool.render.stun_probe."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from siptool.cli.options import (
    MetricsFlags,
    NagiosFlags,
    NetworkFlags,
    OutputFlags,
    RepeatFlags,
    TlsFlags,
    metrics_options,
    nagios_options,
    network_options,
    output_options,
    repeat_options,
    thresholds,
    tls_options,
)
from siptool.cli.run import Job, output_for, run_command

if TYPE_CHECKING:
    from siptool.commands.stun_probe import ProbeResult
    from siptool.stun.servers import StunServer

COMMAND = "stun-probe"


@click.command(COMMAND)
@click.argument("servers", nargs=-1, metavar="[SERVER...]")
@repeat_options("Binding requests", "server")
@click.option(
    "--transport",
    type=click.Choice(["udp", "tcp", "tls"], case_sensitive=False),
    help="Transport for servers given without a scheme (a stun:/stuns: URI wins).",
)
@tls_options()
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
@metrics_options
def stun_probe(
    servers: tuple[str, ...],
    repeat: RepeatFlags,
    transport: str | None,
    tls: TlsFlags,
    server_list: str | None,
    software: str | None,
    jsonl: bool,
    network: NetworkFlags,
    nagios: NagiosFlags,
    output: OutputFlags,
    metrics: MetricsFlags,
) -> None:
    """STUN Binding to one or more servers: mapped address, RTT, capabilities.

    Every UDP server is asked concurrently from one local socket, so their answers show
    whether the NAT mapping is the same toward every destination (mapping_consistent) and
    whether the NAT kept the local port. Per server: local and mapped address, RTT
    (min/avg/max/loss with -n), SOFTWARE, RESPONSE-ORIGIN, OTHER-ADDRESS (RFC 5780 support).
    SERVER is host, host:port, [v6]:port, stun:host[:port] or stuns:host[:port] (TLS).
    -n is the count (check_icmp's letter); -w/-c are the --nagios thresholds in milliseconds.
    """

    def prepare() -> Job[ProbeResult]:
        from siptool.commands.stun_probe import ProbeOptions, run_probe
        from siptool.errors import UsageError
        from siptool.render.stun_probe import ProbeRenderer

        shown = output_for(COMMAND, output, jsonl=jsonl, nagios=nagios, metrics=metrics)
        parsed, used_default = read_servers(servers, server_list, transport)
        if network.local_port and len(parsed) > 1 and any(s.transport != "udp" for s in parsed):
            raise UsageError("--local-port with TCP/TLS: give one server")
        options = ProbeOptions(
            servers=tuple(parsed),
            used_default_list=used_default,
            local=network.local(),
            count=repeat.count,
            interval=repeat.interval,
            tls=tls.options(),
            software=software,
            thresholds=thresholds(nagios),
        )
        renderer = ProbeRenderer(shown)
        return Job(
            shown, renderer, lambda: run_probe(options, renderer.reply), pcap_out=network.pcap_out
        )

    run_command(COMMAND, prepare)


def read_servers(
    args: tuple[str, ...], server_list: str | None, transport: str | None
) -> tuple[list[StunServer], bool]:
    """The SERVERs given, else --server-list (or SIPTOOL_STUN_SERVERS), else the defaults;
    and whether the list was used (no SERVER given).  ``UsageError`` names a bad SERVER."""
    from siptool.errors import ParseError, UsageError
    from siptool.stun.servers import DEFAULT_SERVERS, parse_server, split_server_list

    texts = list(args)
    used_default = not texts
    if used_default:
        texts = (split_server_list(server_list) if server_list else []) or list(DEFAULT_SERVERS)
    parsed = []
    for text in texts:
        try:
            parsed.append(parse_server(text, transport))
        except ParseError as exc:
            raise UsageError(f"bad SERVER {text!r}: {exc.message}") from None
    return parsed, used_default
