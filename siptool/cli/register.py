"""`siptool register` options; the work is in siptool.commands.register."""

from __future__ import annotations

from typing import Any

import click

from siptool.cli.options import (
    dns_options,
    nagios_options,
    network_options,
    output_options,
    sip_options,
    timer_options,
)


@click.command("register")
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
@dns_options
@timer_options
@network_options
@sip_options
@nagios_options
@output_options
def register(**kwargs: Any) -> None:
    """REGISTER with digest auth; query, refresh or remove bindings.

    Registers --user at TARGET (the registrar: a SIP URI or host[:port]), answering 401/407
    challenges with the password from --password-file, SIPTOOL_PASSWORD or a prompt, and
    reports the granted expiry, the bindings the registrar holds, Service-Route and Path.
    A second challenge after credentials were sent is reported as wrong credentials.
    """
    from siptool.cli.options import flatten
    from siptool.commands.register_cli import main

    raise SystemExit(main(flatten(kwargs)))
