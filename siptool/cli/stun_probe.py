"""`siptool stun-probe` options (the command body is built by a later issue)."""

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


@click.command("stun-probe")
@click.argument("servers", nargs=-1, metavar="[SERVER...]")
@network_options
@nagios_options(critical_short=False)
@output_options
def stun_probe(**_kwargs: Any) -> None:
    """STUN Binding to one or more servers: mapped address, RTT, capabilities.

    Not implemented yet: exits 3.
    """
    not_implemented("stun-probe")
