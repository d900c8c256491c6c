"""`siptool message`: its flags, as typed ``MessageOptions`` or ``ListenOptions``; the work is in
siptool.commands.message, the drawing in siptool.render.message."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from siptool.cli.options import SipCheckFlags, body_options, parse_target_flag, sip_check_options
from siptool.cli.run import Job, output_for, run_command

if TYPE_CHECKING:
    from siptool.commands.message import MessageResult

COMMAND = "message"


@click.command(COMMAND)
@click.argument("target", metavar="TARGET|REGISTRAR")
@click.option("--text", metavar="TEXT", help="The message text (text/plain; UTF-8).")
@body_options
@click.option(
    "--listen",
    is_flag=True,
    help="Register --user at REGISTRAR and wait for MESSAGEs (answered 200) until --count.",
)
@click.option(
    "-n",
    "--count",
    type=click.IntRange(1, 100_000),
    default=1,
    show_default=True,
    help="With --listen: messages to wait for.",
)
@click.option("--auth-user", metavar="NAME", help="Authentication user name, when not --user.")
@sip_check_options
def message(
    target: str,
    text: str | None,
    body: str | None,
    content_type: str | None,
    listen: bool,
    count: int,
    auth_user: str | None,
    check: SipCheckFlags,
) -> None:
    """Send a SIP MESSAGE (RFC 3428), or register and wait for incoming ones.

    Sending: 200 or 202 is success; any other final response is named. With --listen,
    REGISTRAR is where --user registers this socket; every MESSAGE that arrives is answered
    200 and printed (JSON: from, to, content_type, body, time); the binding is removed on
    exit. --timeout is how long to wait. Two siptools through a registrar make an
    end-to-end IM test.
    """

    def prepare() -> Job[MessageResult]:
        from siptool.commands.message import (
            ListenOptions,
            MessageOptions,
            run_listen,
            run_message,
        )
        from siptool.commands.sip_common import read_body, read_password
        from siptool.errors import UsageError
        from siptool.render.message import MessageRenderer

        if check.nagios.nagios:
            raise UsageError("message has no --nagios line; use its exit code or --json")
        shown = output_for(COMMAND, check.output)
        parsed = parse_target_flag(target, check.sip.transport)
        renderer = MessageRenderer(shown)
        password = read_password(check.sip.password_file, prompt=False)
        pcap_out = check.network.pcap_out
        if listen:
            if text is not None or body is not None:
                raise UsageError("--listen receives messages: no --text or --body")
            user = check.sip.user or parsed.uri.user
            if not user:
                raise UsageError("--listen needs --user (the user to register)")
            listening = ListenOptions(
                registrar=parsed,
                settings=check.settings(user=user),
                user=user,
                password=password,
                auth_user=auth_user,
                count=count,
            )
            return Job(
                shown, renderer, lambda: run_listen(listening, renderer.incoming), pcap_out=pcap_out
            )
        if (text is None) == (body is None):
            raise UsageError("give the message as --text TEXT or --body FILE (one of them)")
        if text is not None and content_type is not None:
            raise UsageError("--content-type goes with --body; --text is text/plain")
        payload = text.encode("utf-8") if text is not None else read_body(body or "-")
        sending = MessageOptions(
            target=parsed,
            settings=check.settings(),
            password=password,
            auth_user=auth_user,
            body=payload,
            content_type=content_type or "text/plain;charset=UTF-8",
        )
        return Job(shown, renderer, lambda: run_message(sending), pcap_out=pcap_out)

    run_command(COMMAND, prepare)
