"""`siptool nat-type` options (the command body is built by a later issue)."""

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


@click.command("nat-type")
@click.argument("server", required=False, metavar="[SERVER]")
@network_options
@output_options
def nat_type(**_kwargs: Any) -> None:
    """NAT behaviour discovery (RFC 5780 mapping/filtering) and the RFC 3489 label.

    Not implemented yet: exits 3.
    """
    not_implemented("nat-type")
