"""`siptool invite-test`: its flags, as typed ``InviteOptions``; the work is in
siptool.commands.invite_call (the call) and siptool.commands.invite_test (its verdicts), the
drawing in siptool.render.invite_test."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from siptool.cli.options import (
    MetricsFlags,
    SipCheckFlags,
    metrics_options,
    parse_target_flag,
    seconds_option,
    sip_check_options,
)
from siptool.cli.run import Job, output_for, run_command

if TYPE_CHECKING:
    from siptool.commands.invite_test import CallResult

COMMAND = "invite-test"


@click.command(COMMAND)
@click.argument("target", metavar="TARGET")
@click.option(
    "--codecs",
    default="PCMU,PCMA,telephone-event",
    show_default=True,
    metavar="LIST",
    help="Codecs to offer, in order (PCMU, PCMA, G722, GSM, G729, telephone-event).",
)
@seconds_option(
    "--hold", default=2.0, help="How long to stay in the call once answered, before the BYE."
)
@seconds_option(
    "--ring-timeout",
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
@click.option(
    "--refer-to",
    metavar="URI",
    help="Transfer the answered call there once the hold is over (REFER, RFC 3515); passes when "
    "the NOTIFYs say the transfer target answered 2xx.",
)
@seconds_option(
    "--refer-wait",
    help="With --refer-to: how long to wait for the REFER's answer and the NOTIFY with the "
    "transfer's outcome (default: --timeout).",
)
@sip_check_options
@metrics_options
def invite_test(
    target: str,
    codecs: str,
    hold: float,
    ring_timeout: float | None,
    expect: str | None,
    rtp: bool,
    from_user: str | None,
    to_user: str | None,
    media_address: str | None,
    refer_to: str | None,
    refer_wait: float | None,
    check: SipCheckFlags,
    metrics: MetricsFlags,
) -> None:
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

    --refer-to URI transfers the call (RFC 5589 basic transfer): after the hold, REFER with
    Refer-To: <URI>, 202 expected; each NOTIFY's message/sipfrag is reported (100 Trying, then
    the target's answer); then BYE.  The wait for the outcome (--refer-wait, else --timeout)
    is added to the bound.  Exit 0 only when the target answered 2xx.
    """

    def prepare() -> Job[CallResult]:
        from siptool.commands.invite_call import run_invite
        from siptool.commands.invite_test import InviteOptions
        from siptool.commands.sip_common import Expectation, read_password
        from siptool.errors import UsageError
        from siptool.render.invite_test import InviteRenderer
        from siptool.sip.sdp_offer import parse_codec_list

        shown = output_for(COMMAND, check.output, nagios=check.nagios, metrics=metrics)
        parsed = parse_target_flag(target, check.sip.transport)
        try:
            offered = parse_codec_list(codecs)
            expectation = Expectation.parse(expect)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        options = InviteOptions(
            target=parsed,
            settings=check.settings(),
            codecs=tuple(offered),
            hold=hold,
            ring_timeout=ring_timeout,
            expect=expectation,
            rtp=rtp,
            from_user=from_user,
            to_user=to_user,
            media_address=media_ip(media_address),
            # Read at the first challenge only: an unchallenged call never prompts.
            password=lambda: read_password(check.sip.password_file, prompt=True),
            thresholds=check.thresholds,
            refer_to=refer_uri(refer_to),
            refer_wait=refer_wait,
        )
        return Job(
            shown,
            InviteRenderer(shown),
            lambda: run_invite(options),
            pcap_out=check.network.pcap_out,
        )

    run_command(COMMAND, prepare)


def refer_uri(text: str | None) -> str | None:
    """--refer-to: a URI (sip:, sips:, tel: ...) for Refer-To; ``UsageError`` else."""
    from siptool.errors import ParseError, UsageError
    from siptool.sip.uri import parse_uri

    if text is None:
        return None
    uri = text.strip(" \t<>")
    try:
        parse_uri(uri)
    except ParseError as exc:
        raise UsageError(f"--refer-to {text!r}: {exc.message}") from None
    return uri


def media_ip(text: str | None) -> str | None:
    """--media-address: an IP address, brackets around IPv6 allowed; ``UsageError`` else."""
    from siptool.addr import is_ip_address
    from siptool.errors import UsageError

    if text is None:
        return None
    if not is_ip_address(text.strip("[]")):
        raise UsageError(f"--media-address {text!r} is not an IP address")
    return text.strip("[]")
