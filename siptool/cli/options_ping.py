"""`siptool options-ping` options (the command body is built by a later issue)."""

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


@click.command("options-ping")
@click.argument("targets", nargs=-1, metavar="TARGET...")
@network_options
@sip_options
@nagios_options
@output_options
def options_ping(**_kwargs: Any) -> None:
    """SIP OPTIONS ping to one or many targets: liveness, RTT, server identity, NAT view.

    Not implemented yet: exits 3.
    """
    not_implemented("options-ping")
