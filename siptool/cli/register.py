"""`siptool register` options (the command body is built by a later issue)."""

from __future__ import annotations

from typing import Any

import click

from siptool.cli.options import (
    nagios_options,
    network_options,
    not_implemented,
    output_options,
    sip_options,
)

_ = (nagios_options, sip_options)


@click.command("register")
@click.argument("target", required=False, metavar="TARGET")
@network_options
@sip_options
@nagios_options()
@output_options
def register(**_kwargs: Any) -> None:
    """REGISTER with digest auth; query, refresh or remove bindings.

    Not implemented yet: exits 3.
    """
    not_implemented("register")
