"""`siptool subscribe`: its flags, as typed ``SubscribeOptions``; the work is in
siptool.commands.subscribe, the drawing in siptool.render.subscribe."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from siptool.cli.options import SipCheckFlags, parse_target_flag, seconds_option, sip_check_options
from siptool.cli.run import Job, output_for, run_command

if TYPE_CHECKING:
    from siptool.commands.subscribe import SubscribeResult

COMMAND = "subscribe"


@click.command(COMMAND)
@click.argument("target", metavar="TARGET")
@click.option(
    "--event",
    required=True,
    metavar="PACKAGE",
    help="Event package: presence, dialog (BLF), message-summary (MWI), reg, or any other.",
)
@click.option(
    "--expires",
    type=click.IntRange(0, 2**31 - 1),
    default=600,
    show_default=True,
    help="Subscription lifetime asked for, in seconds.",
)
@seconds_option(
    "--duration",
    help="Keep the subscription this long (refreshed before it ends), then unsubscribe.",
)
@click.option("--once", is_flag=True, help="Fetch the state once (Expires: 0) and exit.")
@click.option("--auth-user", metavar="NAME", help="Authentication user name, when not --user.")
@sip_check_options
def subscribe(
    target: str,
    event: str,
    expires: int,
    duration: float | None,
    once: bool,
    auth_user: str | None,
    check: SipCheckFlags,
) -> None:
    """SUBSCRIBE to an event package and read its NOTIFYs (RFC 6665).

    Every NOTIFY is answered 200 and its body read: PIDF presence (basic status and note),
    dialog-info (state per dialog, for BLF), message-summary (messages waiting, new/old, for
    MWI) and reginfo. Subscription-State transitions are reported. By default siptool
    unsubscribes once the first NOTIFY is in; --duration keeps the subscription (refreshing
    it) and --once fetches the state with Expires: 0. A NOTIFY for no subscription of ours
    gets 481.
    """

    def prepare() -> Job[SubscribeResult]:
        from siptool.commands.sip_common import read_password
        from siptool.commands.subscribe import SubscribeOptions, run_subscribe
        from siptool.errors import ParseError, UsageError
        from siptool.render.subscribe import SubscribeRenderer
        from siptool.sip.event_packages import parse_event

        if check.nagios.nagios:
            raise UsageError("subscribe has no --nagios line; use its exit code or --json")
        if once and duration is not None:
            raise UsageError("--once fetches the state and ends: not with --duration")
        try:
            parse_event(event)
        except ParseError as exc:
            raise UsageError(f"--event {event!r}: {exc.message}") from None
        shown = output_for(COMMAND, check.output)
        options = SubscribeOptions(
            target=parse_target_flag(target, check.sip.transport),
            settings=check.settings(),
            event=event,
            password=read_password(check.sip.password_file, prompt=False),
            auth_user=auth_user,
            expires=expires,
            duration=duration,
            once=once,
        )
        renderer = SubscribeRenderer(shown)
        return Job(shown, renderer, lambda: run_subscribe(options), pcap_out=check.network.pcap_out)

    run_command(COMMAND, prepare)
