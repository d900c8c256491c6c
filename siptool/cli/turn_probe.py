"""`siptool turn-probe`: its flags, as typed ``TurnProbeOptions``; the work is in
siptool.commands.turn_probe, the drawing in siptool.render.turn_probe."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from siptool.cli.options import (
    MetricsFlags,
    NagiosFlags,
    NetworkFlags,
    OutputFlags,
    TlsFlags,
    TurnAuthFlags,
    metrics_options,
    nagios_options,
    network_options,
    output_options,
    seconds_option,
    thresholds,
    tls_options,
    turn_auth_options,
)
from siptool.cli.run import Job, output_for, run_command

if TYPE_CHECKING:
    from siptool.addr import Address
    from siptool.commands.turn_probe import TurnProbeResult

COMMAND = "turn-probe"


@click.command(COMMAND)
@click.argument("server", metavar="SERVER")
@click.option(
    "--transport",
    type=click.Choice(["udp", "tcp", "tls"], case_sensitive=False),
    help="Transport for a SERVER given without a scheme (a turn:/turns: URI wins).",
)
@turn_auth_options
@click.option(
    "-n",
    "--count",
    type=click.IntRange(1, 100_000),
    default=5,
    show_default=True,
    help="Packets through the relay per method (indications, then ChannelData).",
)
@seconds_option("-i", "--interval", default=0.02, help="Seconds between packets.")
@click.option(
    "--size",
    type=click.IntRange(1, 65000),
    default=160,
    show_default=True,
    metavar="BYTES",
    help="Payload bytes of each packet.",
)
@click.option(
    "--lifetime",
    type=click.IntRange(1, 0xFFFFFFFF),
    metavar="SECONDS",
    help="Allocation lifetime to ask for (default: the server's).",
)
@click.option("--ipv6-relay", is_flag=True, help="Ask for an IPv6 relayed address.")
@click.option(
    "--dual-relay", is_flag=True, help="Ask for an IPv4 and an IPv6 relayed address (RFC 8656)."
)
@click.option(
    "--peer-transport",
    type=click.Choice(["udp", "tcp"], case_sensitive=False),
    default="udp",
    show_default=True,
    help="Transport between the relay and the peer (tcp: RFC 6062, over a TCP or TLS server).",
)
@click.option(
    "--peer",
    metavar="ADDR:PORT",
    help="A UDP echo server to use as the peer instead of siptool's own peer socket.",
)
@tls_options()
@network_options
@nagios_options
@output_options
@metrics_options
def turn_probe(
    server: str,
    transport: str | None,
    turn_auth: TurnAuthFlags,
    count: int,
    interval: float,
    size: int,
    lifetime: int | None,
    ipv6_relay: bool,
    dual_relay: bool,
    peer_transport: str,
    peer: str | None,
    tls: TlsFlags,
    network: NetworkFlags,
    nagios: NagiosFlags,
    output: OutputFlags,
    metrics: MetricsFlags,
) -> None:
    """TURN relay test (RFC 8656): allocate, send data through the relay both ways, free it.

    Allocates a relay (answering the server's 401 with --user and the password from
    --password-file or SIPTOOL_PASSWORD, or with TURN REST credentials made from
    --secret-file), permits siptool's own peer socket (or --peer), sends -n packets each way
    by Send/Data indications and then by ChannelBind + ChannelData, and reports the relayed
    and mapped addresses, lifetime, allocation time, RTT, loss and jitter per method. With
    --peer-transport tcp (RFC 6062, over TCP or TLS) the relay is a TCP one: Connect to
    siptool's TCP peer and a connection from it, each bound by ConnectionBind and tested with
    -n packets both ways. The allocation is freed at the end and on Ctrl-C. SERVER is
    turn:host[:port][?transport=udp|tcp], turns:host[:port] (TLS), or host[:port] with
    --transport. -w/-c are --nagios thresholds on the allocation time in milliseconds.
    """

    def prepare() -> Job[TurnProbeResult]:
        from siptool.commands.turn_probe import TurnProbeOptions, run_turn_probe
        from siptool.errors import ParseError, UsageError
        from siptool.render.turn_probe import TurnProbeRenderer
        from siptool.stun.servers import parse_server
        from siptool.stun.turn import PROBE_HEADER

        shown = output_for(COMMAND, output, nagios=nagios, metrics=metrics)
        try:
            parsed = parse_server(server, transport, turn=True)
        except ParseError as exc:
            raise UsageError(f"bad SERVER {server!r}: {exc.message}") from None
        turn_auth.check()
        if ipv6_relay and dual_relay:
            raise UsageError("--ipv6-relay and --dual-relay are exclusive (RFC 8656 §7.1)")
        _check_peer_transport(peer_transport.lower(), parsed.transport, peer)
        if size < PROBE_HEADER:
            raise UsageError(f"--size {size}: at least {PROBE_HEADER} bytes")
        password, secret = turn_auth.secrets()
        options = TurnProbeOptions(
            server=parsed,
            local=network.local(),
            user=turn_auth.user,
            password=password,
            secret=secret,
            rest_ttl=turn_auth.rest_ttl,
            count=count,
            interval=interval,
            size=size,
            lifetime=lifetime,
            ipv6_relay=ipv6_relay,
            dual_relay=dual_relay,
            peer=_peer(peer),
            peer_transport=peer_transport.lower(),
            tls=tls.options(),
            thresholds=thresholds(nagios),
        )
        renderer = TurnProbeRenderer(shown)
        return Job(shown, renderer, lambda: run_turn_probe(options), pcap_out=network.pcap_out)

    run_command(COMMAND, prepare)


def _check_peer_transport(peer_transport: str, transport: str, peer: str | None) -> None:
    """--peer-transport tcp needs a TCP or TLS server (RFC 6062 §4.1) and siptool's peer."""
    from siptool.errors import UsageError

    if peer_transport != "tcp":
        return
    if transport == "udp":
        raise UsageError(
            "--peer-transport tcp needs a TCP or TLS connection to the server (RFC 6062 §4.1): "
            "use turn:HOST?transport=tcp, turns:HOST or --transport tcp|tls"
        )
    if peer is not None:
        raise UsageError("--peer is a UDP echo server: it does not go with --peer-transport tcp")


def _peer(text: str | None) -> Address | None:
    """--peer ADDR:PORT as an address; ``UsageError`` unless an IP literal and a port."""
    if text is None:
        return None
    import ipaddress

    from siptool.addr import port_number, split_host_port
    from siptool.errors import UsageError

    try:
        host, port_text = split_host_port(text.strip())
        ip = ipaddress.ip_address(host).compressed
    except ValueError:
        raise UsageError(f"--peer {text!r}: an IP address and a port (ADDR:PORT)") from None
    port = port_number(port_text or "")
    if port is None:
        raise UsageError(f"--peer {text!r}: an IP address and a port (ADDR:PORT)")
    return ip, port
