"""`siptool invite-test` options; the work is in siptool.commands.invite_test."""

from __future__ import annotations

from typing import Any

import click

from siptool.cli.options import (
    FiniteFloat,
    dns_options,
    nagios_options,
    network_options,
    output_options,
    sip_options,
    timer_options,
)


@click.command("invite-test")
@click.argument("target", metavar="TARGET")
@click.option(
    "--codecs",
    default="PCMU,PCMA,telephone-event",
    show_default=True,
    metavar="LIST",
    help="Codecs to offer, in order (PCMU, PCMA, G722, GSM, G729, telephone-event).",
)
@click.option(
    "--hold",
    type=FiniteFloat(min=0.0),
    default=2.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to stay in the call once answered, before the BYE.",
)
@click.option(
    "--ring-timeout",
    type=FiniteFloat(min=0.0),
    metavar="SECONDS",
    help="Ring test: CANCEL when no final answer by then (expects 487); passes when it rang.",
)
@click.option(
    "--expect",
    metavar="CODES",
    help="Final responses that pass the check instead of a 2xx, e.g. 486 or 486,603 or 4xx.",
)
@click.option(
    "--rtp",
    is_flag=True,
    help="Send 20 ms PCMU packets to the answer's media address during the hold and count "
    "what comes back (loss, jitter, one-way audio).",
)
@click.option("--from-user", metavar="USER", help="User part of From and Contact (default --user).")
@click.option("--to-user", metavar="USER", help="Callee (default: the user part of TARGET).")
@click.option(
    "--media-address",
    metavar="ADDR",
    help="Address announced in the SDP c= line (default: the local address of the SIP flow).",
)
@dns_options
@timer_options
@network_options
@sip_options
@nagios_options
@output_options
def invite_test(**kwargs: Any) -> None:
    """Place a test call: INVITE/SDP, ringing, answer, ACK, hold, BYE or CANCEL; timings; RTP check.

    The call passes when it is answered (or its final response is one of --expect) and the BYE
    succeeds; with --rtp, also when audio comes back.  --ring-timeout makes a ring test that
    passes when the call rang and the CANCEL ended it.  PDD (post-dial delay) is the time to
    the first 18x, else to the final response.  With --nagios the -w/-c thresholds apply to the
    PDD.

    --timeout bounds the whole command: the call must be answered within it, or within a
    longer --ring-timeout (a ringing call is then CANCELled; several servers share it, RFC 3263
    failover), plus --hold once answered, plus at most 1 s to end the call (the CANCEL's 487 or
    the BYE's answer).  A cleanup cut short at that bound is reported as a warning.
    """
    from siptool.cli.options import flatten
    from siptool.commands.invite_test_cli import main

    raise SystemExit(main(flatten(kwargs)))
