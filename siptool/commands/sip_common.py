"""What the SIP commands share: their settings, which final responses pass (--expect), how the
RFC 3263 failover loop opens a flow (net/failover.py), the NAT view from Via received/rport
(RFC 3581), reading the password.

With --proxy (RFC 3261 §8.1.2) the first hop is the proxy: it is what RFC 3263 resolves and
what the flow goes to, while the Request-URI stays the target and the requests carry the
proxy as a preloaded Route (``settings.knobs``)."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from siptool.addr import format_address, is_loopback_address, is_private_address
from siptool.commands.result import CheckResult
from siptool.errors import (
    ExitCode,
    InputError,
    LocalBindError,
    ParseError,
    ResolveError,
    SiptoolError,
)
from siptool.net.failover import Failover, OpenFlow
from siptool.net.resolver import Candidate, Resolution, resolve_target
from siptool.net.sip_transport import SipFlow, WireLog, open_flow
from siptool.net.tls import TlsOptions, TlsPeer
from siptool.net.ws_transport import WsOptions
from siptool.numbers import is_decimal
from siptool.sip.builders import PLAIN, LocalEndpoint, RequestKnobs
from siptool.sip.message import SipMessage
from siptool.sip.target import Target
from siptool.sip.transaction import Timers


@dataclass(frozen=True)
class SipSettings:
    """The flags every SIP command has (shared/cli-contract.md)."""

    timeout: float = 5.0
    families: tuple[int, ...] = (socket.AF_INET, socket.AF_INET6)
    local_address: str | None = None
    local_port: int | None = None
    verbose: bool = False
    transport: str | None = None
    insecure: bool = False
    ca_file: str | None = None
    user: str | None = None
    dns_server: str | None = None
    t1: float = 0.5
    t2: float = 4.0
    proxy: Target | None = None  # --proxy: where every request goes first (RFC 3261 §8.1.2)
    knobs: RequestKnobs = PLAIN  # -H, --from, --to, --user-agent and the proxy's Route
    ws_path: str = "/"  # --ws-path: the WebSocket server's resource (RFC 7118)
    origin: str | None = None  # --origin: the upgrade's Origin header
    tls_keylog: str | None = None  # --tls-keylog: NSS key log of every TLS/WSS connection

    def first_hop(self, target: Target) -> Target:
        """What RFC 3263 resolves for a request to ``target``: the outbound proxy if any."""
        return self.proxy or target

    @property
    def timers(self) -> Timers:
        return Timers(t1=self.t1, t2=self.t2)

    @property
    def tls(self) -> TlsOptions:
        return TlsOptions(insecure=self.insecure, ca_file=self.ca_file, keylog_file=self.tls_keylog)

    @property
    def ws(self) -> WsOptions:
        return WsOptions(path=self.ws_path, origin=self.origin)


@dataclass
class Expectation:
    """--expect: which final responses count as alive ("200,404", "2xx"); None: any."""

    codes: frozenset[int] = frozenset()
    classes: frozenset[int] = frozenset()

    @classmethod
    def parse(cls, text: str | None) -> Expectation | None:
        if not text:
            return None
        codes: set[int] = set()
        classes: set[int] = set()
        for item in text.replace(" ", "").split(","):
            if len(item) == 3 and item[0] in "123456" and item[1:].lower() == "xx":
                classes.add(int(item[0]))
            elif is_decimal(item, 3) and 100 <= int(item) <= 699:
                codes.add(int(item))
            else:
                raise ValueError(f"bad status code {item!r} (use e.g. 200,404 or 2xx)")
        return cls(frozenset(codes), frozenset(classes))

    def accepts(self, status: int) -> bool:
        return status in self.codes or status // 100 in self.classes


@dataclass
class Reached:
    """Where a SIP check went (RFC 3263): the target as given, its resolution, the server
    whose flow it used, and the errors on the way (the check's own join them).  Only the
    target is positional, before the command's own fields."""

    target: str
    _: KW_ONLY
    resolution: Resolution | None = None
    transport: str | None = None
    address: str | None = None
    errors: list[SiptoolError] = field(default_factory=list)
    tls: TlsPeer | None = None  # the TLS or WSS connection's version, cipher, certificate

    def reach(self, candidate: Candidate, flow: SipFlow | None = None) -> None:
        self.transport, self.address = candidate.transport, candidate.hostport
        self.tls = flow.tls if flow is not None else None

    @property
    def resolved(self) -> dict[str, str | None] | None:
        return resolved(self.transport, self.address)


def resolved(transport: str | None, address: str | None) -> dict[str, str | None] | None:
    """The JSON ``resolved`` object: the server a check reached, or null."""
    return None if address is None else {"transport": transport, "address": address}


@dataclass
class NatView:
    """Our address as we know it beside the address the server saw (RFC 3581 §4)."""

    local: str | None = None
    reflexive: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def behind_nat(self) -> bool | None:
        if self.local is None or self.reflexive is None:
            return None
        return self.local != self.reflexive

    def to_dict(self) -> dict[str, Any]:
        return {
            "local": self.local,
            "reflexive": self.reflexive,
            "behind_nat": self.behind_nat,
            "warnings": self.warnings,
        }


def nat_view(flow: SipFlow, response: SipMessage | None) -> NatView:
    view = NatView(local=flow.local_text)
    if response is None:
        return view
    via = None
    with contextlib.suppress(ParseError):
        via = response.top_via
    if via is None:
        return view
    # RFC 3261 §18.2.1: "received" is added only when the source IP differs from sent-by;
    # RFC 3581 §4: "rport" carries the source port.  Absent, the server saw what we sent.
    host = via.received or flow.local[0]
    port = via.rport or flow.local[1]
    view.reflexive = format_address(host, port)
    peer_ip = flow.remote[0]
    if (
        is_private_address(flow.local[0])
        and not is_private_address(peer_ip)
        and not is_loopback_address(peer_ip)
    ):
        view.warnings.append(
            f"our Contact and Via carry the private address {flow.local[0]} while the server "
            f"{flow.remote_text} is public: it must use received/rport (RFC 3581) to reach us"
        )
    return view


async def resolve(target: Target, settings: SipSettings) -> Resolution:
    """RFC 3263 for ``target`` itself (``settings.first_hop`` says when it is the proxy)."""
    return await resolve_target(
        target,
        dns_server=settings.dns_server,
        families=settings.families,
        timeout=settings.timeout,
    )


def flow_opener(
    settings: SipSettings,
    log: WireLog,
    *,
    connect_timeout: float | None = None,
    accept_any_source: bool = False,
) -> OpenFlow:
    """How the RFC 3263 failover loop (net/failover.py) opens a flow to one server
    (``accept_any_source``: a UDP flow that takes requests from any address, ``open_flow``)."""

    async def open_to(candidate: Candidate) -> SipFlow:
        return await open_flow(
            candidate.transport,
            (candidate.address, candidate.port),
            local_address=settings.local_address,
            local_port=settings.local_port,
            server_name=candidate.hostname,
            tls=settings.tls,
            connect_timeout=settings.timeout if connect_timeout is None else connect_timeout,
            log=log,
            accept_any_source=accept_any_source,
            ws=settings.ws,
        )

    return open_to


CheckOver = Callable[[SipFlow, bool], Awaitable[SiptoolError | None]]


async def check_target(
    target: Target,
    settings: SipSettings,
    log: WireLog,
    result: Reached,
    check_over: CheckOver | None,
    *,
    accept_any_source: bool = False,
) -> None:
    """Resolve ``target`` onto ``result`` (a name that does not resolve: its ResolveError),
    then, RFC 3263 §4.3, run the check over one server's flow after another, in the
    resolution's order, until one answers or none is left.  ``check_over(flow, more)`` is
    told whether a server is left after this one and returns the error when the server never
    answered (None: it did, or the check stays with it); that error joins the result's, with
    the server in front when the next one gets the check.  Without ``check_over``
    (--resolve-only) the first server is where the check would go, and nothing is sent."""
    try:
        resolution = await resolve(settings.first_hop(target), settings)
    except ResolveError as exc:
        result.errors.append(exc)
        return
    result.resolution = resolution
    if check_over is None:
        result.reach(resolution.candidates[0])
        return
    servers = Failover(
        resolution, flow_opener(settings, log, accept_any_source=accept_any_source), result.errors
    )
    while (opened := await servers.next_flow()) is not None:
        result.reach(opened.candidate, opened.flow)
        silent = await check_over(opened.flow, servers.more)
        if silent is None:
            return
        where = opened.candidate.hostport
        result.errors.append(silent.prefixed(where) if servers.more else silent)


async def run_check(
    target: Target,
    settings: SipSettings,
    result: Reached,
    check_over: CheckOver,
    *,
    accept_any_source: bool = False,
) -> None:
    """``check_target`` with the run's own wire log (-v); a ``LocalBindError`` (our address,
    port or CA file: every server would fail the same way) is the result's error and makes it
    a check that could not run (exit 3).  ``result`` is a ``Reached`` and a ``CheckResult``."""
    log = WireLog(settings.verbose)
    try:
        await check_target(
            target, settings, log, result, check_over, accept_any_source=accept_any_source
        )
    except LocalBindError as exc:
        result.errors.append(exc)
        if isinstance(result, CheckResult):
            result.exit_code = ExitCode.NOT_RUN


def local_endpoint(flow: SipFlow) -> LocalEndpoint:
    return LocalEndpoint(flow.transport_name, flow.local[0], flow.local[1])


def read_password(password_file: str | None, *, prompt: bool) -> str | None:
    """--password-file, else SIPTOOL_PASSWORD, else an interactive prompt (when a terminal).
    ``InputError`` (exit 3) when the --password-file cannot be read."""
    if password_file:
        try:
            with open(password_file, encoding="utf-8") as handle:
                return handle.readline().rstrip("\r\n")
        except OSError as exc:
            raise InputError(
                f"cannot read --password-file {password_file}: {exc.strerror}"
            ) from None
        except UnicodeDecodeError as exc:
            raise InputError(
                f"cannot read --password-file {password_file}: not UTF-8 text ({exc.reason})"
            ) from None
    env = os.environ.get("SIPTOOL_PASSWORD")
    if env is not None:
        return env
    if prompt:
        import sys

        if sys.stdin.isatty():
            import getpass

            return getpass.getpass("SIP password: ")
    return None


MAX_BODY = 1 << 20  # a request body read from --body: more is not a diagnostic request


def read_body(path: str) -> bytes:
    """--body FILE (``-``: standard input) as bytes; ``InputError`` (exit 3) when it cannot be
    read or is larger than ``MAX_BODY``."""
    import sys

    try:
        if path == "-":
            data = sys.stdin.buffer.read(MAX_BODY + 1)
        else:
            with open(path, "rb") as handle:
                data = handle.read(MAX_BODY + 1)
    except OSError as exc:
        raise InputError(f"cannot read --body {path}: {exc.strerror}") from None
    if len(data) > MAX_BODY:
        raise InputError(f"--body {path}: more than {MAX_BODY} bytes")
    return data


def guess_content_type(body: bytes) -> str:
    """The Content-Type of a body given without --content-type: SDP (RFC 8866 §5: it starts
    with "v=0"), else plain text."""
    return "application/sdp" if body.lstrip().startswith(b"v=0") else "text/plain"


__all__ = [
    "Expectation",
    "NatView",
    "Reached",
    "ResolveError",
    "SipSettings",
    "check_target",
    "flow_opener",
    "guess_content_type",
    "local_endpoint",
    "nat_view",
    "read_body",
    "read_password",
    "resolve",
    "resolved",
    "run_check",
]
