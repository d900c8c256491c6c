"""`siptool send`: its flags, as typed ``SendOptions``; the work is in siptool.commands.send,
the drawing in siptool.render.send."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from siptool.cli.options import (
    MetricsFlags,
    SipCheckFlags,
    body_options,
    metrics_options,
    parse_target_flag,
    sip_check_options,
)
from siptool.cli.run import Job, output_for, run_command

if TYPE_CHECKING:
    from siptool.commands.send import SendResult

COMMAND = "send"


@click.command(COMMAND)
@click.argument("method", metavar="METHOD")
@click.argument("target", metavar="TARGET")
@body_options
@click.option(
    "--expect",
    metavar="CODES",
    help="Final responses that pass, e.g. 200,202 or 4xx (default: any 2xx).",
)
@click.option("--auth-user", metavar="NAME", help="Authentication user name, when not --user.")
@sip_check_options
@metrics_options
def send(
    method: str,
    target: str,
    body: str | None,
    content_type: str | None,
    expect: str | None,
    auth_user: str | None,
    check: SipCheckFlags,
    metrics: MetricsFlags,
) -> None:
    """Send any SIP request outside a dialog and show every response with its time.

    METHOD is any method (OPTIONS, INFO, MESSAGE, NOTIFY, SUBSCRIBE, PUBLISH, REFER, UPDATE,
    REGISTER, BYE ...) or an extension token; INVITE is invite-test's. The request is a non-
    INVITE transaction (RFC 3261 §17.1.2), retransmitted over UDP; a 401/407 is answered with
    digest credentials (--user, --password-file or SIPTOOL_PASSWORD). Headers come from
    -H, the body from --body FILE (- for standard input). -v shows the wire.
    """

    def prepare() -> Job[SendResult]:
        from siptool.commands.send import REFUSED_METHODS, SendOptions, run_send
        from siptool.commands.sip_common import (
            Expectation,
            guess_content_type,
            read_body,
            read_password,
        )
        from siptool.errors import UsageError
        from siptool.render.send import SendRenderer
        from siptool.sip.framing import SIP_METHODS
        from siptool.sip.headers import is_valid_header_name

        shown = output_for(COMMAND, check.output, nagios=check.nagios, metrics=metrics)
        # A registered method typed in any case goes upper-cased; an extension method is
        # case-sensitive (RFC 3261 §7.1) and goes as typed.
        name = method.upper() if method.upper().encode() in SIP_METHODS else method
        if not is_valid_header_name(name):
            raise UsageError(f"METHOD {method!r} is not a SIP method (a token, RFC 3261 §7.1)")
        if name in REFUSED_METHODS:
            raise UsageError(f"send does not send {name}: {REFUSED_METHODS[name]}")
        parsed = parse_target_flag(target, check.sip.transport)
        try:
            expectation = Expectation.parse(expect)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        payload = b"" if body is None else read_body(body)
        if content_type is not None and not payload:
            raise UsageError("--content-type needs --body")
        options = SendOptions(
            method=name,
            target=parsed,
            settings=check.settings(),
            password=read_password(check.sip.password_file, prompt=False),
            auth_user=auth_user,
            body=payload,
            content_type=content_type or (guess_content_type(payload) if payload else None),
            expect=expectation,
            thresholds=check.thresholds,
        )
        renderer = SendRenderer(shown)
        return Job(shown, renderer, lambda: run_send(options), pcap_out=check.network.pcap_out)

    run_command(COMMAND, prepare)
