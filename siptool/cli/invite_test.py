"""`siptool invite-test` options (the command body is built by a later issue)."""

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


@click.command("invite-test")
@click.argument("target", required=False, metavar="TARGET")
@network_options
@sip_options
@nagios_options()
@output_options
def invite_test(**_kwargs: Any) -> None:
    """Place a test call: INVITE/SDP, ringing, answer, ACK, hold, BYE or CANCEL; timings; RTP check.

    Not implemented yet: exits 3.
    """
    not_implemented("invite-test")
