"""`siptool register`: its flags, as typed ``RegisterOptions``; the work is in
siptool.commands.register, the drawing in siptool.render.register."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from siptool.cli.options import (
    MetricsFlags,
    SipCheckFlags,
    metrics_options,
    parse_target_flag,
    sip_check_options,
)
from siptool.cli.run import Job, output_for, run_command

if TYPE_CHECKING:
    from siptool.commands.register import RegisterResult

COMMAND = "register"


@click.command(COMMAND)
@click.argument("target", metavar="TARGET")
@click.option(
    "--expires",
    type=click.IntRange(0, 2**31 - 1),
    default=300,
    show_default=True,
    help="Requested binding lifetime in seconds.",
)
@click.option("--contact", metavar="URI", help="Contact URI to bind (default: this socket).")
@click.option("--auth-user", metavar="NAME", help="Authentication user name, when not --user.")
@click.option("--domain", metavar="HOST", help="Domain of the address of record (default: TARGET).")
@click.option("--query", "mode", flag_value="query", help="List the bindings, change nothing.")
@click.option(
    "--unregister", "mode", flag_value="unregister", help="Remove this contact's binding."
)
@click.option(
    "--unregister-all",
    "mode",
    flag_value="unregister-all",
    help="Remove every binding of the address of record (Contact: *).",
)
@sip_check_options
@metrics_options
def register(
    target: str,
    expires: int,
    contact: str | None,
    auth_user: str | None,
    domain: str | None,
    mode: str | None,
    check: SipCheckFlags,
    metrics: MetricsFlags,
) -> None:
    """REGISTER with digest auth; query, refresh or remove bindings.

    Registers --user at TARGET (the registrar: a SIP URI or host[:port]), answering 401/407
    challenges with the password from --password-file, SIPTOOL_PASSWORD or a prompt, and
    reports the granted expiry, the bindings the registrar holds, Service-Route and Path.
    A second challenge after credentials were sent is reported as wrong credentials.
    """

    def prepare() -> Job[RegisterResult]:
        from siptool.commands.register import RegisterMode, RegisterOptions, run_register
        from siptool.commands.sip_common import read_password
        from siptool.errors import UsageError
        from siptool.render.register import RegisterRenderer

        shown = output_for(COMMAND, check.output, nagios=check.nagios, metrics=metrics)
        parsed = parse_target_flag(target, check.sip.transport)
        user = check.sip.user or parsed.uri.user
        if not user:
            raise UsageError("--user is required (or a user in the TARGET URI)")
        chosen = RegisterMode(mode) if mode else RegisterMode.REGISTER
        options = RegisterOptions(
            target=parsed,
            settings=check.settings(user=user),
            user=user,
            # InputError (exit 3) when --password-file cannot be read.
            password=read_password(
                check.sip.password_file, prompt=chosen is not RegisterMode.QUERY
            ),
            auth_user=auth_user,
            domain=domain,
            expires=expires,
            contact=contact,
            mode=chosen,
            thresholds=check.thresholds,
        )
        renderer = RegisterRenderer(shown)
        return Job(shown, renderer, lambda: run_register(options), pcap_out=check.network.pcap_out)

    run_command(COMMAND, prepare)
