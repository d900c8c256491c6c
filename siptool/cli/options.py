"""Option groups shared by several commands (see shared/cli-contract.md).

Each group declares its click options once and hands the command function ONE typed, frozen
value (``NetworkFlags``, ``SipFlags``, ...) instead of a handful of loose keyword arguments,
so mypy checks every flag against the field it fills and a command's signature names the
groups it has.  Only click is imported here: ``siptool --help`` stays as cheap as click (and the
groups are NamedTuples, not dataclasses: seven frozen dataclasses cost 5 ms at every start).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


class OutputFlags(NamedTuple):
    """--json, -q, --no-color (every command)."""

    as_json: bool = False
    quiet: bool = False
    no_color: bool = False


class NetworkFlags(NamedTuple):
    """The flags every network command has."""

    timeout: float = 5.0
    family4: bool = False
    family6: bool = False
    local_address: str | None = None
    local_port: int | None = None
    verbose: bool = False
    pcap_out: str | None = None

    @property
    def families(self) -> tuple[int, ...]:
        """Address families to resolve and bind, from -4/-6 (both or neither: either)."""
        from siptool.addr import families_from_flags

        return families_from_flags(self.family4, self.family6)

    def local(self) -> LocalSettings:
        """The flags as the I/O layer's one value."""
        from siptool.net.settings import LocalSettings

        return LocalSettings(
            self.timeout, self.families, self.local_address, self.local_port, self.verbose
        )


class SipFlags(NamedTuple):
    """The flags the SIP commands share."""

    transport: str | None = None
    insecure: bool = False
    ca_file: str | None = None
    user: str | None = None
    password_file: str | None = None
    proxy: str | None = None
    headers: tuple[str, ...] = ()
    from_uri: str | None = None
    to_uri: str | None = None
    user_agent: str | None = None
    ws_path: str = "/"
    origin: str | None = None
    tls_keylog: str | None = None

    def knobs(self) -> RequestKnobs:
        """-H, --from, --to, --user-agent and --proxy's Route as the builders' one value;
        ``UsageError`` naming a flag that cannot be sent."""
        from siptool.sip.builders import USER_AGENT, RequestKnobs, proxy_route

        proxy = self.proxy_target()
        route = None
        if proxy is not None:
            scheme = "sips" if proxy.secure else "sip"
            route = proxy_route(scheme, proxy.uri.hostport, proxy.transport)
        return RequestKnobs(
            headers=tuple(_user_header(text) for text in self.headers),
            from_=_name_addr_flag("--from", self.from_uri),
            to=_name_addr_flag("--to", self.to_uri),
            user_agent=_agent_flag(self.user_agent) or USER_AGENT,
            route=route,
        )

    def proxy_target(self) -> Target | None:
        """--proxy as a ``Target`` (RFC 3263 resolves it instead of TARGET); None without."""
        if self.proxy is None:
            return None
        return parse_target_flag(self.proxy, self.transport, flag="--proxy")


class NagiosFlags(NamedTuple):
    """--nagios, -w/--warning and -c/--critical (milliseconds)."""

    nagios: bool = False
    warning: float | None = None
    critical: float | None = None


class MetricsFlags(NamedTuple):
    """--format text|json|openmetrics and --textfile PATH (the probes Prometheus runs)."""

    output_format: str | None = None
    textfile: str | None = None


class RepeatFlags:
    """-n/--count and -i/--interval of the ping-like commands.  (Not a NamedTuple: a field
    named ``count`` would hide ``tuple.count``.)"""

    __slots__ = ("count", "interval")
    _fields = __slots__

    def __init__(self, count: int = 1, interval: float = 1.0) -> None:
        self.count = count
        self.interval = interval


class TurnAuthFlags(NamedTuple):
    """TURN credentials (turn-probe, ice-gather): long-term with --user and a password, or
    the TURN REST API's, made from --secret-file's shared secret."""

    user: str | None = None
    password_file: str | None = None
    secret_file: str | None = None
    rest_ttl: int = 3600

    def check(self) -> None:
        """``UsageError`` for credential flags that do not go together."""
        from siptool.errors import UsageError

        if self.secret_file and self.password_file:
            raise UsageError("--secret-file and --password-file are exclusive")
        if self.password_file and self.user is None:
            raise UsageError("--password-file needs --user")

    def secrets(self) -> tuple[str | None, str | None]:
        """(password, REST secret); ``UsageError`` for flags that do not go together or
        --user without a password, ``InputError`` (exit 3) for a file that cannot be read."""
        from siptool.commands.sip_common import read_password
        from siptool.commands.turn_probe import read_secret
        from siptool.errors import UsageError

        self.check()
        if self.secret_file:
            return None, read_secret(self.secret_file)
        if self.user is None:
            return None, None
        password = read_password(self.password_file, prompt=False)
        if password is None:
            raise UsageError("--user needs a password: --password-file or SIPTOOL_PASSWORD")
        return password, None


class TlsFlags(NamedTuple):
    """TLS verification and key logging of the STUN and TURN commands (the SIP commands have
    the same three flags in ``SipFlags``)."""

    insecure: bool = False
    ca_file: str | None = None
    tls_keylog: str | None = None

    def options(self) -> TlsOptions:
        from siptool.net.tls import TlsOptions

        return TlsOptions(insecure=self.insecure, ca_file=self.ca_file, keylog_file=self.tls_keylog)


class DnsFlags(NamedTuple):
    dns_server: str | None = None


class TimerFlags(NamedTuple):
    """RFC 3261 §17 T1 and T2, seconds."""

    t1: float = 0.5
    t2: float = 4.0


if TYPE_CHECKING:
    from siptool.commands.nagios import Thresholds
    from siptool.commands.sip_common import SipSettings
    from siptool.net.settings import LocalSettings
    from siptool.net.tls import TlsOptions
    from siptool.sip.builders import RequestKnobs
    from siptool.sip.target import Target


def _user_header(text: str) -> tuple[str, str]:
    """-H 'Name: value' as (name, value); ``UsageError`` saying what is wrong with it."""
    from siptool.errors import UsageError
    from siptool.sip.builders import protected_header
    from siptool.sip.headers import is_valid_header_name

    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not is_valid_header_name(name):
        raise UsageError(f"-H {text!r}: expected 'Name: value' with a header name (a token)")
    if any(ch in value for ch in "\r\n\0"):
        raise UsageError(f"-H {name}: the value may not hold a line break or NUL")
    why = protected_header(name)
    if why is not None:
        raise UsageError(f"-H {name}: siptool sets {name} itself: {why}")
    return name, value


def _name_addr_flag(flag: str, text: str | None) -> str | None:
    """--from/--to (a URI, or a name-addr with a display name) as the name-addr text the
    header starts with; ``UsageError`` when it does not parse or carries a tag (ours is ours)."""
    if text is None:
        return None
    from siptool.errors import ParseError, UsageError
    from siptool.sip.nameaddr import parse_name_addr

    try:
        parsed = parse_name_addr(text.strip())
    except ParseError as exc:
        raise UsageError(f"{flag} {text!r}: {exc.message}") from None
    if parsed.tag is not None:
        raise UsageError(f"{flag} {text!r}: siptool chooses the tag; give the URI without it")
    if parsed.uri.scheme not in ("sip", "sips", "tel"):
        raise UsageError(f"{flag} {text!r}: not a sip:, sips: or tel: URI")
    return str(parsed)


def _agent_flag(text: str | None) -> str | None:
    from siptool.errors import UsageError

    if text is not None and (not text.strip() or any(ch in text for ch in "\r\n\0")):
        raise UsageError("--user-agent: one line of text, not empty")
    return None if text is None else text.strip()


def thresholds(nagios: NagiosFlags) -> Thresholds:
    from siptool.commands.nagios import Thresholds

    return Thresholds(warning_ms=nagios.warning, critical_ms=nagios.critical)


class SipCheckFlags(NamedTuple):
    """Every flag a SIP check shares (options-ping, register, invite-test), as one value."""

    network: NetworkFlags
    sip: SipFlags
    dns: DnsFlags
    timers: TimerFlags
    nagios: NagiosFlags
    output: OutputFlags

    def settings(self, *, user: str | None = None) -> SipSettings:
        """The engine's ``SipSettings`` (``user`` instead of --user when given)."""
        from siptool.commands.sip_common import SipSettings

        network, sip = self.network, self.sip
        return SipSettings(
            timeout=network.timeout,
            families=network.families,
            local_address=network.local_address,
            local_port=network.local_port,
            verbose=network.verbose,
            transport=sip.transport,
            insecure=sip.insecure,
            ca_file=sip.ca_file,
            user=sip.user if user is None else user,
            dns_server=self.dns.dns_server,
            t1=self.timers.t1,
            t2=self.timers.t2,
            proxy=sip.proxy_target(),
            knobs=sip.knobs(),
            ws_path=sip.ws_path,
            origin=sip.origin,
            tls_keylog=sip.tls_keylog,
        )

    @property
    def thresholds(self) -> Thresholds:
        return thresholds(self.nagios)


def parse_target_flag(text: str, transport: str | None, *, flag: str = "target") -> Target:
    """TARGET (or ``flag``'s URI) as a ``Target``; ``UsageError`` naming it (its password, if
    any, hidden)."""
    from siptool.errors import ParseError, UsageError
    from siptool.sip.target import parse_target, redact_password

    try:
        return parse_target(text, transport)
    except ParseError as exc:
        raise UsageError(f"bad {flag} {redact_password(text)!r}: {exc.message}") from None


def _grouped(flags: type[Any], name: str, decorators: list[Callable[[F], F]]) -> Callable[[F], F]:
    """Declare ``decorators``' options and pass their values to the command as one ``flags``
    instance under the keyword ``name``."""
    names = flags._fields

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def collect(**kwargs: Any) -> Any:
            kwargs[name] = flags(**{key: kwargs.pop(key) for key in names})
            return func(**kwargs)

        return _apply(collect, decorators)  # type: ignore[arg-type,return-value]

    return decorate


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


class HeaderText(click.types.StringParamType):
    """One line of text for an HTTP header value: not empty, no control characters."""

    name = "TEXT"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = super().convert(value, param, ctx).strip()
        if not text or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
            self.fail(f"{value!r}: one line of text without control characters", param, ctx)
        return text


class WsPath(HeaderText):
    """--ws-path: an absolute path with its query, as a WebSocket URI's resource (RFC 6455
    §3): starts with "/", no spaces, no fragment."""

    name = "PATH"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = super().convert(value, param, ctx)
        if not text.startswith("/") or " " in text or "#" in text:
            self.fail(f"{value!r}: a path starting with / (no spaces, no #fragment)", param, ctx)
        return text


class FiniteFloat(click.FloatRange):
    """A float range that also refuses nan and inf (click's range checks let nan through,
    and ``--timeout inf`` would wait forever)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def seconds_option(
    *decls: str,
    help: str,
    default: float | None = None,
    minimum: float = 0.0,
    maximum: float | None = None,
) -> Callable[[F], F]:
    """An option that is a number of seconds: finite, within its range, shown as SECONDS."""
    return click.option(
        *decls,
        type=FiniteFloat(min=minimum, max=maximum),
        default=default,
        show_default=default is not None,
        metavar="SECONDS",
        help=help,
    )


def _apply(func: F, decorators: list[Callable[[F], F]]) -> F:
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def output_options(func: F) -> F:
    """--json, -q, --no-color: how a result is shown (as ``output: OutputFlags``)."""
    return _grouped(
        OutputFlags,
        "output",
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
    )(func)


def network_options(func: F) -> F:
    """Flags every network command has (as ``network: NetworkFlags``)."""
    return _grouped(
        NetworkFlags,
        "network",
        [
            seconds_option(
                "--timeout", default=5.0, minimum=0.01, help="Seconds to wait for an answer."
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
            click.option(
                "--pcap-out",
                # Not click's writable check: a file siptool cannot write is exit 3 (it could
                # not run the check), not a usage error.
                type=click.Path(dir_okay=False),
                metavar="FILE",
                help="Save every packet sent and received as pcapng in FILE.",
            ),
        ],
    )(func)


def sip_options(func: F) -> F:
    """Flags the SIP commands share (as ``sip: SipFlags``)."""
    return _grouped(
        SipFlags,
        "sip",
        [
            click.option(
                "--transport",
                type=click.Choice(["udp", "tcp", "tls", "ws", "wss"], case_sensitive=False),
                help="Transport; ws and wss are SIP over WebSocket, RFC 7118 (a ;transport= "
                "URI parameter or sips: wins).",
            ),
            click.option(
                "--ws-path",
                type=WsPath(),
                default="/",
                show_default=True,
                metavar="PATH",
                help="Resource of the WebSocket upgrade, with --transport ws|wss.",
            ),
            click.option(
                "--origin",
                type=HeaderText(),
                metavar="URL",
                help="Origin header of the WebSocket upgrade, as a browser sends it.",
            ),
            *_tls_decorators("the TLS certificate"),
            click.option("--user", help="User name for the From URI and digest authentication."),
            click.option(
                "--password-file",
                type=click.Path(dir_okay=False),
                help="File holding the password (else SIPTOOL_PASSWORD, else a prompt).",
            ),
            click.option(
                "--proxy",
                metavar="URI",
                help="Outbound proxy: send every request there, with a Route to it (RFC 3261 "
                "§8.1.2); the Request-URI stays TARGET.",
            ),
            click.option(
                "-H",
                "--header",
                "headers",
                multiple=True,
                metavar="'NAME: VALUE'",
                help="Add a header, or replace the one siptool would send (repeatable).",
            ),
            click.option("--from", "from_uri", metavar="URI", help="From URI (or name-addr)."),
            click.option("--to", "to_uri", metavar="URI", help="To URI (or name-addr)."),
            click.option(
                "--user-agent", metavar="TEXT", help="User-Agent (and Server) header value."
            ),
        ],
    )(func)


def nagios_options(func: F) -> F:
    """--nagios and its thresholds in milliseconds (as ``nagios: NagiosFlags``).  -c is the
    critical threshold as in every Nagios plugin; the repeat count is -n (check_icmp's letter),
    and -w/-c without --nagios is a usage error (cli/run.py) so a ping habit fails loudly."""
    return _grouped(
        NagiosFlags,
        "nagios",
        [
            click.option(
                "--nagios", is_flag=True, help="One Nagios plugin status line; exit 0/1/2/3."
            ),
            click.option(
                "-w",
                "--warning",
                type=FiniteFloat(min=0),
                metavar="MS",
                help="Warning threshold (ms), with --nagios.",
            ),
            click.option(
                "-c",
                "--critical",
                type=FiniteFloat(min=0),
                metavar="MS",
                help="Critical threshold (ms), with --nagios.  The count is -n.",
            ),
        ],
    )(func)


def metrics_options(func: F) -> F:
    """--format and --textfile (as ``metrics: MetricsFlags``): OpenMetrics on stdout, and the
    same metrics written atomically for node_exporter's textfile collector."""
    return _grouped(
        MetricsFlags,
        "metrics",
        [
            click.option(
                "--format",
                "output_format",
                type=click.Choice(["text", "json", "openmetrics"]),
                help="What stdout shows: text (the default), json (as --json) or openmetrics.",
            ),
            click.option(
                "--textfile",
                type=click.Path(dir_okay=False),
                metavar="PATH",
                help="Also write the metrics to PATH (write, then rename) for node_exporter's "
                "textfile collector; name it *.prom.",
            ),
        ],
    )(func)


def repeat_options(what: str, per: str) -> Callable[[F], F]:
    """-n/--count and -i/--interval of the ping-like commands (``what`` per ``per``), as
    ``repeat: RepeatFlags``."""
    return _grouped(
        RepeatFlags,
        "repeat",
        [
            click.option(
                "-n",
                "--count",
                type=click.IntRange(1, 100_000),
                default=1,
                show_default=True,
                help=f"{what} per {per}.",
            ),
            seconds_option(
                "-i", "--interval", default=1.0, help=f"Seconds between requests to one {per}."
            ),
        ],
    )


def turn_auth_options(func: F) -> F:
    """--user, --password-file, --secret-file, --rest-ttl (as ``turn_auth: TurnAuthFlags``)."""
    return _grouped(
        TurnAuthFlags,
        "turn_auth",
        [
            click.option(
                "--user", help="User name (long-term credentials; the USER of --secret-file's)."
            ),
            click.option(
                "--password-file",
                type=click.Path(dir_okay=False),
                help="File holding the password of --user (else SIPTOOL_PASSWORD).",
            ),
            click.option(
                "--secret-file",
                type=click.Path(dir_okay=False),
                help="File holding the TURN REST API shared secret (coturn's static-auth-secret).",
            ),
            click.option(
                "--rest-ttl",
                type=click.IntRange(1, 10 * 365 * 86400),
                default=3600,
                show_default=True,
                metavar="SECONDS",
                help="How long the REST credentials made from --secret-file are valid.",
            ),
        ],
    )(func)


def _tls_decorators(verified: str) -> list[Callable[[F], F]]:
    """--insecure, --ca-file, --tls-keylog; ``verified`` names what --insecure skips."""
    return [
        click.option("--insecure", is_flag=True, help=f"Do not verify {verified}."),
        click.option(
            "--ca-file",
            # Not click's dir_okay=False: a directory is a CA file siptool cannot read
            # (exit 3, Nagios UNKNOWN), not a usage error (exit 2, Nagios CRITICAL).
            type=click.Path(),
            metavar="FILE",
            help="CA bundle for TLS verification.",
        ),
        click.option(
            "--tls-keylog",
            # Opened when a TLS flow starts: one that cannot be written is exit 3.
            type=click.Path(dir_okay=False),
            metavar="FILE",
            help="Append the TLS session keys (NSS key log) to FILE, for Wireshark, tshark "
            "and decode (default: SSLKEYLOGFILE).",
        ),
    ]


def tls_options(verified: str = "the TLS certificate") -> Callable[[F], F]:
    """--insecure, --ca-file, --tls-keylog (as ``tls: TlsFlags``)."""
    return _grouped(TlsFlags, "tls", _tls_decorators(verified))


def dns_options(func: F) -> F:
    """--dns-server for the RFC 3263 lookups (as ``dns: DnsFlags``)."""
    return _grouped(
        DnsFlags,
        "dns",
        [
            click.option(
                "--dns-server",
                type=DnsServer(),
                metavar="ADDR[:PORT]",
                help="DNS server for NAPTR/SRV/A/AAAA lookups (default: /etc/resolv.conf).",
            ),
        ],
    )(func)


def timer_options(func: F) -> F:
    """RFC 3261 §17 T1 and T2 (as ``timers: TimerFlags``)."""
    return _grouped(
        TimerFlags,
        "timers",
        [
            seconds_option(
                "--t1",
                default=0.5,
                minimum=0.001,
                help="RFC 3261 T1: first UDP retransmission interval.",
            ),
            seconds_option(
                "--t2",
                default=4.0,
                minimum=0.001,
                help="RFC 3261 T2: cap of the non-INVITE retransmission interval.",
            ),
        ],
    )(func)


def body_options(func: F) -> F:
    """--body FILE|- and --content-type of the commands that send a body of the user's."""
    func = click.option(
        "--content-type",
        metavar="TYPE",
        help="Content-Type of --body (default: application/sdp for SDP, else text/plain).",
    )(func)
    return click.option(
        "--body",
        # Read by the command (cli/run.py: an unreadable file is exit 3, not a usage error).
        type=click.Path(dir_okay=False, allow_dash=True),
        metavar="FILE",
        help="Request body from FILE (- for standard input).",
    )(func)


def sip_check_options(func: F) -> F:
    """The DNS, timer, network, SIP, Nagios and output groups of a SIP check, handed to the
    command as one ``check: SipCheckFlags``."""
    names = SipCheckFlags._fields

    @functools.wraps(func)
    def collect(**kwargs: Any) -> Any:
        kwargs["check"] = SipCheckFlags(**{key: kwargs.pop(key) for key in names})
        return func(**kwargs)

    groups = (dns_options, timer_options, network_options, sip_options, nagios_options)
    return _apply(output_options(collect), list(groups))  # type: ignore[return-value]
