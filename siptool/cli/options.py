"""Option groups shared by several commands (see shared/cli-contract.md)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


class DnsServer(click.types.StringParamType):
    """``ip[:port]`` or ``[v6]:port``, checked before anything runs."""

    name = "ADDR[:PORT]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from siptool.net.resolver import parse_dns_server  # not at --help time

        text = super().convert(value, param, ctx)
        try:
            parse_dns_server(text)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return text


class FiniteFloat(click.FloatRange):
    """A float range that also refuses nan and inf (click's range checks let nan through,
    and ``--timeout inf`` would wait forever)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def _apply(func: F, decorators: list[Callable[[F], F]]) -> F:
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def output_options(func: F) -> F:
    """--json, -q, --no-color: how a result is shown."""
    return _apply(
        func,
        [
            click.option(
                "--json", "as_json", is_flag=True, help="Print one JSON document on stdout."
            ),
            click.option(
                "-q", "--quiet", is_flag=True, help="Print nothing but errors; use the exit code."
            ),
            click.option(
                "--no-color",
                is_flag=True,
                envvar="NO_COLOR",
                help="No colours (the NO_COLOR environment variable does the same).",
            ),
        ],
    )


def network_options(func: F) -> F:
    """Flags every network command has."""
    return _apply(
        func,
        [
            click.option(
                "--timeout",
                type=FiniteFloat(min=0.01),
                default=5.0,
                show_default=True,
                help="Seconds to wait for an answer.",
            ),
            click.option("-4", "family4", is_flag=True, help="Use IPv4 only."),
            click.option("-6", "family6", is_flag=True, help="Use IPv6 only."),
            click.option("--local-address", metavar="ADDR", help="Local address to bind."),
            click.option(
                "--local-port",
                type=click.IntRange(0, 65535),
                metavar="PORT",
                help="Local port to bind.",
            ),
            click.option(
                "-v",
                "--verbose",
                is_flag=True,
                help="Print every message sent and received on stderr.",
            ),
        ],
    )


def sip_options(func: F) -> F:
    """Flags the SIP commands share."""
    return _apply(
        func,
        [
            click.option(
                "--transport",
                type=click.Choice(["udp", "tcp", "tls"], case_sensitive=False),
                help="Transport (a ;transport= URI parameter or sips: wins).",
            ),
            click.option("--insecure", is_flag=True, help="Do not verify the TLS certificate."),
            click.option(
                "--ca-file",
                # Not click's dir_okay=False: a directory is a CA file siptool cannot read
                # (exit 3, Nagios UNKNOWN), not a usage error (exit 2, Nagios CRITICAL).
                type=click.Path(),
                metavar="FILE",
                help="CA bundle for TLS verification.",
            ),
            click.option("--user", help="User name for the From URI and digest authentication."),
            click.option(
                "--password-file",
                type=click.Path(dir_okay=False),
                help="File holding the password (else SIPTOOL_PASSWORD, else a prompt).",
            ),
        ],
    )


def nagios_options(*, critical_short: bool = True) -> Callable[[F], F]:
    """--nagios and its thresholds in milliseconds.  ``-c`` is short for --critical except
    where it already means --count (options-ping, stun-probe: ping's convention wins there)."""
    critical = ("-c", "--critical") if critical_short else ("--critical",)

    def decorate(func: F) -> F:
        return _apply(
            func,
            [
                click.option(
                    "--nagios", is_flag=True, help="One Nagios plugin status line; exit 0/1/2/3."
                ),
                click.option(
                    "-w",
                    "--warning",
                    type=FiniteFloat(min=0),
                    metavar="MS",
                    help="Warning threshold (ms).",
                ),
                click.option(
                    *critical,
                    "critical",
                    type=FiniteFloat(min=0),
                    metavar="MS",
                    help="Critical threshold (ms).",
                ),
            ],
        )

    return decorate


def repeat_options(what: str, per: str) -> Callable[[F], F]:
    """-c/--count and -i/--interval of the ping-like commands (``what`` per ``per``)."""

    def decorate(func: F) -> F:
        return _apply(
            func,
            [
                click.option(
                    "-c",
                    "--count",
                    type=click.IntRange(1, 100_000),
                    default=1,
                    show_default=True,
                    help=f"{what} per {per}.",
                ),
                click.option(
                    "-i",
                    "--interval",
                    type=FiniteFloat(min=0.0),
                    default=1.0,
                    show_default=True,
                    help=f"Seconds between requests to one {per}.",
                ),
            ],
        )

    return decorate


def dns_options(func: F) -> F:
    """--dns-server for the RFC 3263 lookups."""
    return _apply(
        func,
        [
            click.option(
                "--dns-server",
                type=DnsServer(),
                metavar="ADDR[:PORT]",
                help="DNS server for NAPTR/SRV/A/AAAA lookups (default: /etc/resolv.conf).",
            ),
        ],
    )


def timer_options(func: F) -> F:
    """RFC 3261 §17 T1 and T2."""
    return _apply(
        func,
        [
            click.option(
                "--t1",
                type=FiniteFloat(min=0.001),
                default=0.5,
                show_default=True,
                help="RFC 3261 T1 in seconds: first UDP retransmission interval.",
            ),
            click.option(
                "--t2",
                type=FiniteFloat(min=0.001),
                default=4.0,
                show_default=True,
                help="RFC 3261 T2 in seconds: cap of the non-INVITE retransmission interval.",
            ),
        ],
    )
