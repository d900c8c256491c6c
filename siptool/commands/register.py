"""`siptool register`: REGISTER (RFC 3261 §10) with digest authentication (§22, RFC 7616/8760).

One flow to the registrar; the first REGISTER goes without credentials, each 401/407 is handed
to ``AuthState`` (which refuses to loop: a second challenge for credentials already sent is
"wrong credentials" unless the nonce was stale), and the final answer's Contact list is the
registrar's view of the bindings (§10.3 step 8).  The result carries every verdict: the exit
code, the errors and the --nagios line.

Decisions:

- RFC 3263 §4.3: a registrar that never answers (or whose transport fails) hands the
  registration to the next server of the resolution (net/failover.py); any answer ends it.
- All rounds of one flow share a Call-ID and From tag with CSeq counting up (§10.2.4), so a
  late retransmission of an earlier REGISTER cannot undo a later one (§10.3 step 7).
- Ctrl-C while registering: the binding the registrar may already hold is taken back with
  the same Call-ID, the next CSeq and Expires: 0 (§10.2.2), waiting at most
  ``CLEANUP_SECONDS`` for the answer (a challenge is answered within that bound too); the
  runner then says "interrupted" and exits 130.  Query and unregister runs change nothing
  that needs undoing.
- Nagios: the thresholds apply to the whole exchange (``total_ms``, challenges included).
"""

from __future__ import annotations

import asyncio
import enum
import time
from dataclasses import dataclass, field
from typing import Any

from siptool.addr import format_host
from siptool.commands.nagios import NagiosVerdict, Thresholds, unknown, verdict
from siptool.commands.result import CheckResult
from siptool.commands.sip_common import (
    NatView,
    Reached,
    SipSettings,
    local_endpoint,
    nat_view,
    run_check,
)
from siptool.commands.sip_request import challenge_refusal
from siptool.errors import ExitCode, ParseError, SiptoolError
from siptool.net.sip_client import Outcome, SipClient
from siptool.net.sip_transport import SipFlow
from siptool.numbers import decimal_or_none
from siptool.sip.auth import AuthReport, AuthState, DigestCredentials
from siptool.sip.builders import build_request, new_call_id, new_tag
from siptool.sip.message import SipMessage
from siptool.sip.nameaddr import NameAddr
from siptool.sip.target import Target
from siptool.sip.uri import parse_uri

MAX_ROUNDS = 5  # requests per run: 1 + challenges (AuthState stops loops well before)
CLEANUP_SECONDS = 1.0  # Ctrl-C: how long the REGISTER that removes our binding may take


class RegisterMode(enum.Enum):
    """What the REGISTER asks of the registrar (RFC 3261 §10.2.1-§10.2.3)."""

    REGISTER = "register"  # add or refresh our binding
    QUERY = "query"  # no Contact: list the bindings
    UNREGISTER = "unregister"  # our Contact with expires=0
    UNREGISTER_ALL = "unregister-all"  # Contact: * with Expires: 0

    def requested_expires(self, expires: int) -> int | None:
        """The expiry this mode asks for; None for a query, which asks for none."""
        if self is RegisterMode.REGISTER:
            return expires
        return None if self is RegisterMode.QUERY else 0


@dataclass(frozen=True)
class RegisterOptions:
    target: Target
    settings: SipSettings
    user: str
    password: str | None
    auth_user: str | None = None
    domain: str | None = None
    expires: int = 300
    contact: str | None = None
    mode: RegisterMode = RegisterMode.REGISTER
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def aor(self) -> str:
        """The address of record: ``sip:user@domain`` (the To and From of every REGISTER)."""
        target = self.target
        domain = self.domain or target.host
        return f"{'sips' if target.secure else 'sip'}:{self.user}@{format_host(domain)}"

    @property
    def registrar_uri(self) -> str:
        """The Request-URI: the registrar's host, port and transport, no user (§10.2)."""
        target = self.target
        uri = f"{'sips' if target.secure else 'sip'}:{format_host(target.host)}"
        if target.port:
            uri += f":{target.port}"
        if target.uri.params.get("transport"):
            uri += f";transport={target.uri.params['transport']}"
        return uri

    @property
    def binds(self) -> bool:
        """This run may leave a binding at the registrar that Ctrl-C must take back."""
        return self.mode is RegisterMode.REGISTER and self.expires > 0


@dataclass
class Binding:
    contact: str
    expires: int | None
    ours: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"contact": self.contact, "expires": self.expires, "ours": self.ours}


@dataclass
class RegisterResult(Reached, CheckResult):
    aor: str
    mode: RegisterMode
    status: int | None = None
    reason: str | None = None
    rtt_ms: float | None = None  # the last REGISTER: request to final response
    total_ms: float | None = None  # all rounds, challenges included
    auth: AuthReport | None = None
    requested_expires: int | None = None
    expires: int | None = None  # granted for our contact
    bindings: list[Binding] = field(default_factory=list)
    service_route: list[str] = field(default_factory=list)
    path: list[str] = field(default_factory=list)
    nat: NatView = field(default_factory=NatView)
    warnings: list[str] = field(default_factory=list)
    exit_code: ExitCode = field(default=ExitCode.FAILED, kw_only=True)  # OK once registered

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "aor": self.aor,
            "mode": self.mode.value,
            "status": self.status,
            "reason": self.reason,
            "rtt_ms": self.rtt_ms,
            "total_ms": self.total_ms,
            "auth": None if self.auth is None else self.auth.to_dict(),
            "requested_expires": self.requested_expires,
            "expires": self.expires,
            "bindings": [b.to_dict() for b in self.bindings],
            "service_route": self.service_route,
            "path": self.path,
            "resolved": self.resolved,
            "nat": self.nat.to_dict(),
            "tls": None if self.tls is None else self.tls.to_dict(),
            "warnings": self.warnings,
        }


def _contact_and_expires(
    mode: RegisterMode, contact_uri: str, expires: int
) -> tuple[str | None, str | None]:
    """The Contact and Expires header values of a REGISTER in ``mode`` (None: no header)."""
    if mode is RegisterMode.QUERY:
        return None, None  # RFC 3261 §10.2.3: no Contact lists the bindings
    if mode is RegisterMode.UNREGISTER_ALL:
        return "*", "0"  # §10.2.2: "*" with Expires: 0 removes every binding
    if mode is RegisterMode.UNREGISTER:
        return f"<{contact_uri}>;expires=0", "0"
    return f"<{contact_uri}>;expires={expires}", str(expires)


class _Session:
    """One registration flow: its client transactions, credentials, Call-ID, tag and CSeq."""

    def __init__(self, flow: SipFlow, options: RegisterOptions) -> None:
        self.flow = flow
        self.options = options
        self.client = SipClient(flow, options.settings.timers)
        self.contact_uri = options.contact or local_endpoint(flow).contact_uri(options.user)
        self.auth: AuthState | None = None
        if options.password is not None:
            credentials = DigestCredentials(options.auth_user or options.user, options.password)
            self.auth = AuthState(credentials)
        self.call_id = new_call_id(flow.local[0])
        self.tag = new_tag()
        self.cseq = 0
        self.answered = False

    @property
    def sent(self) -> bool:
        return self.cseq > 0

    def request(self, mode: RegisterMode) -> SipMessage:
        """The next REGISTER of this flow (CSeq + 1), with credentials for every realm."""
        options = self.options
        self.cseq += 1
        contact, expires = _contact_and_expires(mode, self.contact_uri, options.expires)
        extra = [] if expires is None else [("Expires", expires)]
        extra.append(("Supported", "path, outbound"))
        request = build_request(
            "REGISTER",
            options.registrar_uri,
            local=local_endpoint(self.flow),
            from_uri=options.aor,
            from_tag=self.tag,
            to_uri=options.aor,
            call_id=self.call_id,
            cseq=self.cseq,
            contact=contact,
            extra=extra,
            knobs=options.settings.knobs,
        )
        if self.auth is not None:
            self.auth.apply(request)
        return request

    async def exchange(self, mode: RegisterMode, deadline: float) -> tuple[Outcome, float | None]:
        """Send the next REGISTER; its final outcome and, when answered, its RTT."""
        pending = self.client.start(self.request(mode))
        outcome = await pending.final_outcome(deadline)
        rtt = None if outcome.received is None else pending.rtt_ms(outcome.received)
        return outcome, rtt


def _same_contact(a: NameAddr, uri: str) -> bool:
    # RFC 3261 §10.3 step 6 compares URIs per §19.1.4; user, host and port settle it here.
    try:
        ours = parse_uri(uri)
    except ParseError:
        return False
    theirs = a.uri
    return (
        theirs.user == ours.user
        and theirs.host.lower() == ours.host.lower()
        and (theirs.port or 5060) == (ours.port or 5060)
    )


def _bindings(msg: SipMessage, contact_uri: str) -> tuple[list[Binding], int | None]:
    header_expires: int | None = None
    raw = msg.header("Expires")
    if raw is not None:
        # RFC 3261 §20.19: Expires = delta-seconds (1*DIGIT); anything else is ignored.
        header_expires = decimal_or_none(raw.strip(), 10)
    out: list[Binding] = []
    granted: int | None = None
    try:
        contacts = msg.contacts
    except ParseError:
        contacts = []
    for c in contacts:
        if c.is_star:
            continue
        value = c.params.get("expires")
        contact_expires = None if value is None else decimal_or_none(value, 10)
        expires = header_expires if contact_expires is None else contact_expires
        ours = _same_contact(c, contact_uri)
        if ours:
            granted = expires
        out.append(Binding(str(c.uri), expires, ours))
    return out, granted


async def run_register(options: RegisterOptions) -> RegisterResult:
    """Register (or query, or unregister) at the target; every verdict is on the result."""
    result = RegisterResult(str(options.target), options.aor, options.mode)
    result.requested_expires = options.mode.requested_expires(options.expires)
    await run_check(
        options.target,
        options.settings,
        result,
        lambda flow, _more: _register_over(flow, options, result),
    )
    result.nagios = nagios_verdict(result, options.thresholds)
    return result


async def _register_over(
    flow: SipFlow, options: RegisterOptions, result: RegisterResult
) -> SiptoolError | None:
    """The REGISTER rounds over one flow; the error when the server never answered at all."""
    result.nat = NatView()
    session = _Session(flow, options)
    started = time.monotonic()
    try:
        return await _rounds(session, result, started + options.settings.timeout)
    except asyncio.CancelledError:
        if options.binds and session.sent:
            await _remove_binding(session)
        raise
    finally:
        result.total_ms = round((time.monotonic() - started) * 1000.0, 3)
        if session.auth is not None:
            result.auth = session.auth.report()
        if result.nat.local is None:
            result.nat = nat_view(flow, None)
        if session.answered:
            result.warnings += result.nat.warnings
        await session.client.close()


async def _rounds(
    session: _Session, result: RegisterResult, deadline: float
) -> SiptoolError | None:
    """REGISTER, answering challenges, until a final verdict; see ``_register_over``."""
    options = session.options
    for _ in range(MAX_ROUNDS):
        outcome, rtt = await session.exchange(options.mode, deadline)
        msg = outcome.message
        if msg is None:
            error = SiptoolError(outcome.error or "no answer", code=outcome.error_code)
            if not session.answered:
                return error
            result.errors.append(error)
            return None
        session.answered = True
        result.status, result.reason = msg.status, msg.reason
        result.rtt_ms = rtt
        result.nat = nat_view(session.flow, msg)
        if msg.status in (401, 407):
            refused = challenge_refusal(session.auth, msg)
            if refused is None:
                continue
            result.errors.append(refused)
            return None
        _final(session, msg, result)
        return None
    return None


def _final(session: _Session, msg: SipMessage, result: RegisterResult) -> None:
    """The registrar's final answer (not a challenge): the bindings, or why it refused."""
    status = msg.status or 0
    if 200 <= status < 300:
        result.bindings, result.expires = _bindings(msg, session.contact_uri)
        if session.options.mode is RegisterMode.REGISTER and result.expires is None:
            result.warnings.append(
                "the registrar's 200 OK does not list our Contact: binding not confirmed"
            )
        result.service_route = msg.header_values("Service-Route")
        result.path = msg.header_values("Path")
        result.exit_code = ExitCode.OK
    elif status == 423:
        # RFC 3261 §10.2.8: Interval Too Brief carries the minimum in Min-Expires.
        result.errors.append(
            SiptoolError(
                f"423 Interval Too Brief: Min-Expires {msg.header('Min-Expires')}",
                code="interval_too_brief",
            )
        )
    else:
        result.errors.append(
            SiptoolError(f"{msg.status} {msg.reason or ''}".rstrip(), code="rejected")
        )


async def _remove_binding(session: _Session) -> None:
    """Ctrl-C: REGISTER our Contact with Expires: 0 (RFC 3261 §10.2.2), answering a challenge,
    for at most ``CLEANUP_SECONDS``.  Whatever happens, the interruption goes on."""
    deadline = time.monotonic() + CLEANUP_SECONDS
    auth = session.auth
    if auth is not None:
        auth.restart()  # a new request: the cached nonce is answered, the loop guard reset
    for _ in range(MAX_ROUNDS):
        outcome, _rtt = await session.exchange(RegisterMode.UNREGISTER, deadline)
        msg = outcome.message
        if msg is None or msg.status not in (401, 407) or auth is None:
            return
        if auth.on_challenge(msg) != "retry":
            return


def nagios_verdict(result: RegisterResult, limits: Thresholds) -> NagiosVerdict:
    """The --nagios line: the thresholds apply to the whole exchange, challenges included."""
    if result.exit_code is ExitCode.NOT_RUN:
        return unknown("SIP", result.errors)
    rtt = result.total_ms
    perf = [] if rtt is None else [limits.time_perfdata("time", rtt)]
    passed = result.exit_code is ExitCode.OK
    state = limits.state(passed, rtt)
    if not passed:
        why = result.errors[-1].message if result.errors else "failed"
        return verdict("SIP", state, f"REGISTER {result.aor} at {result.target}: {why}", perf)
    what = f"{result.status} {result.reason or ''}".rstrip()
    granted = f" for {result.expires} s" if result.expires else ""
    took = "" if rtt is None else f" in {rtt:.1f} ms"
    return verdict("SIP", state, f"{what}: {result.aor}{granted}{took}", perf)
