"""`siptool ice-gather`: its flags, as typed ``IceGatherOptions``; the work is in
siptool.commands.ice_gather, the drawing in siptool.render.ice_gather."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from siptool.cli.options import (
    NetworkFlags,
    OutputFlags,
    TlsFlags,
    TurnAuthFlags,
    network_options,
    output_options,
    tls_options,
    turn_auth_options,
)
from siptool.cli.run import Job, output_for, run_command

if TYPE_CHECKING:
    from siptool.commands.ice_gather import IceGatherResult
    from siptool.stun.servers import StunServer

COMMAND = "ice-gather"


@click.command(COMMAND)
@click.option(
    "--stun",
    "stun",
    multiple=True,
    metavar="URI",
    help="A STUN server (stun:host[:port]); repeatable.",
)
@click.option(
    "--turn",
    "turn",
    multiple=True,
    metavar="URI",
    help="A TURN server (turn:host[:port][?transport=udp|tcp], turns:host[:port]); repeatable.",
)
@click.option("--loopback", is_flag=True, help="Offer loopback host candidates too.")
@turn_auth_options
@tls_options("the TURN server's TLS certificate")
@network_options
@output_options
def ice_gather(
    stun: tuple[str, ...],
    turn: tuple[str, ...],
    loopback: bool,
    turn_auth: TurnAuthFlags,
    tls: TlsFlags,
    network: NetworkFlags,
    output: OutputFlags,
) -> None:
    """Gather ICE candidates (RFC 8445) as a WebRTC client here would: host, server-reflexive
    and relayed.

    Every host address gets a UDP socket; each --stun server is asked from each of them, each
    --turn server allocates a relay over its transport (UDP, TCP or TLS; credentials as for
    turn-probe) that is freed at once. Prints the candidates with the time each took, their
    SDP a=candidate lines, which servers answered, and what follows for calls from here.
    """

    def prepare() -> Job[IceGatherResult]:
        from siptool.commands.ice_gather import IceGatherOptions, run_ice_gather
        from siptool.errors import UsageError
        from siptool.render.ice_gather import IceGatherRenderer
        from siptool.stun.turn_auth import credentials_for

        if not stun and not turn:
            raise UsageError("give at least one --stun or --turn server")
        shown = output_for(COMMAND, output)
        password, secret = turn_auth.secrets()
        user, ttl = turn_auth.user, turn_auth.rest_ttl
        options = IceGatherOptions(
            stun=tuple(_server(text, turn=False) for text in stun),
            turn=tuple(_server(text, turn=True) for text in turn),
            local=network.local(),
            loopback=loopback,
            credentials=lambda now: credentials_for(user, password, secret, ttl, now),
            tls=tls.options(),
        )
        renderer = IceGatherRenderer(shown)
        return Job(shown, renderer, lambda: run_ice_gather(options), pcap_out=network.pcap_out)

    run_command(COMMAND, prepare)


def _server(text: str, *, turn: bool) -> StunServer:
    """--stun/--turn URI as a server; ``UsageError`` naming it."""
    from siptool.errors import ParseError, UsageError
    from siptool.stun.servers import parse_server

    flag = "--turn" if turn else "--stun"
    try:
        server = parse_server(text, None, turn=turn)
    except ParseError as exc:
        raise UsageError(f"bad {flag} {text!r}: {exc.message}") from None
    if not turn and server.transport != "udp":
        raise UsageError(
            f"{flag} {text!r}: ice-gather asks STUN over UDP; give a TCP or TLS server as --turn"
        )
    return server
