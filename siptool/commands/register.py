"""`siptool register`: REGISTER (RFC 3261 §10) with digest authentication (§22, RFC 7616/8760).

One flow to the registrar; the first REGISTER goes without credentials, each 401/407 is handed
to ``AuthState`` (which refuses to loop: a second challenge for credentials already sent is
"wrong credentials" unless the nonce was stale), and the final answer's Contact list is the
registrar's view of the bindings (§10.3 step 8).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from siptool.commands.sip_common import (
    NatView,
    SipSettings,
    connect,
    local_endpoint,
    nat_view,
    resolve,
)
from siptool.errors import LocalBindError, ParseError, SiptoolError
from siptool.net.resolver import Resolution
from siptool.net.sip_client import SipClient
from siptool.net.sip_transport import SipFlow, WireLog
from siptool.numbers import decimal_or_none
from siptool.sip.auth import AuthReport, AuthState, DigestCredentials
from siptool.sip.builders import build_request, new_call_id, new_tag
from siptool.sip.message import SipMessage
from siptool.sip.nameaddr import NameAddr
from siptool.sip.target import Target
from siptool.sip.uri import format_host

EXIT_OK, EXIT_FAILED, EXIT_NOT_RUN = 0, 1, 3
MAX_ROUNDS = 5  # requests per run: 1 + challenges (AuthState stops loops well before)


@dataclass
class RegisterOptions:
    target: Target
    settings: SipSettings
    user: str
    password: str | None
    auth_user: str | None = None
    domain: str | None = None
    expires: int = 300
    contact: str | None = None
    mode: str = "register"  # register, query, unregister, unregister-all


@dataclass
class Binding:
    contact: str
    expires: int | None
    ours: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"contact": self.contact, "expires": self.expires, "ours": self.ours}


@dataclass
class RegisterResult:
    target: str
    aor: str
    mode: str
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
    transport: str | None = None
    address: str | None = None
    nat: NatView = field(default_factory=NatView)
    errors: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    exit_code: int = EXIT_FAILED

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "aor": self.aor,
            "mode": self.mode,
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
            "resolved": None
            if self.address is None
            else {"transport": self.transport, "address": self.address},
            "nat": self.nat.to_dict(),
            "warnings": self.warnings,
        }


def _build(
    options: RegisterOptions,
    flow: SipFlow,
    aor: str,
    call_id: str,
    tag: str,
    cseq: int,
    contact_uri: str,
) -> SipMessage:
    local = local_endpoint(flow)
    mode = options.mode
    extra: list[tuple[str, str]] = []
    contact: str | None
    if mode == "query":
        contact = None  # RFC 3261 §10.2.3: no Contact lists the bindings
    elif mode == "unregister-all":
        contact = "*"  # §10.2.2: "*" with Expires: 0 removes every binding
        extra.append(("Expires", "0"))
    elif mode == "unregister":
        contact = f"<{contact_uri}>;expires=0"
        extra.append(("Expires", "0"))
    else:
        contact = f"<{contact_uri}>;expires={options.expires}"
        extra.append(("Expires", str(options.expires)))
    target = options.target
    registrar_uri = f"{'sips' if target.secure else 'sip'}:{format_host(target.host)}"
    if target.port:
        registrar_uri += f":{target.port}"
    if target.uri.params.get("transport"):
        registrar_uri += f";transport={target.uri.params['transport']}"
    extra.append(("Supported", "path, outbound"))
    return build_request(
        "REGISTER",
        registrar_uri,
        local=local,
        from_uri=aor,
        from_tag=tag,
        to_uri=aor,
        call_id=call_id,
        cseq=cseq,
        contact=contact,
        extra=extra,
    )


def _same_contact(a: NameAddr, uri: str) -> bool:
    # RFC 3261 §10.3 step 6 compares URIs per §19.1.4; user, host and port settle it here.
    from siptool.sip.uri import parse_uri

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


async def run_register(options: RegisterOptions, log: WireLog) -> RegisterResult:
    settings = options.settings
    target = options.target
    domain = options.domain or target.host
    aor = f"{'sips' if target.secure else 'sip'}:{options.user}@{format_host(domain)}"
    result = RegisterResult(str(target), aor, options.mode)
    if options.mode == "register":
        result.requested_expires = options.expires
    elif options.mode != "query":
        result.requested_expires = 0
    try:
        resolution = await resolve(target, settings)
    except SiptoolError as exc:
        result.errors.append({"code": exc.code, "message": exc.message})
        return result
    remaining = list(resolution.candidates)
    while remaining:
        try:
            _, tried = await connect(
                target, settings, log, Resolution(target, remaining, resolution.path)
            )
        except LocalBindError as exc:
            result.errors.append({"code": exc.code, "message": exc.message})
            result.exit_code = EXIT_NOT_RUN
            return result
        for candidate, attempt in tried:
            remaining.remove(candidate)
            if isinstance(attempt, SiptoolError):
                result.errors.append({"code": attempt.code, "message": attempt.message})
        if not tried or not isinstance(tried[-1][1], SipFlow):
            return result
        flow = tried[-1][1]
        result.transport, result.address = tried[-1][0].transport, tried[-1][0].hostport
        answered = await _register_over(flow, options, aor, result)
        if answered or not remaining:
            return result
        # RFC 3263 §4.3: no answer at all from this registrar: try the next one.
        result.errors[-1]["message"] = f"{result.address}: {result.errors[-1]['message']}"
    return result


async def _register_over(
    flow: SipFlow, options: RegisterOptions, aor: str, result: RegisterResult
) -> bool:
    """The REGISTER rounds over one flow; False when the server never answered at all."""
    settings = options.settings
    result.nat = NatView()
    contact_uri = options.contact or local_endpoint(flow).contact_uri(options.user)
    auth: AuthState | None = None
    if options.password is not None:
        auth = AuthState(DigestCredentials(options.auth_user or options.user, options.password))
    client = SipClient(flow, settings.timers)
    call_id = new_call_id(flow.local[0])
    tag = new_tag()
    started = time.monotonic()
    deadline = started + settings.timeout
    answered = False
    try:
        for cseq in range(1, MAX_ROUNDS + 1):
            request = _build(options, flow, aor, call_id, tag, cseq, contact_uri)
            if auth is not None:
                auth.apply(request)
            pending = client.start(request)
            outcome = await pending.final_outcome(deadline)
            if outcome.received is None:
                code = outcome.error_code
                result.errors.append({"code": code, "message": outcome.error or "no answer"})
                break
            answered = True
            msg = outcome.received.message
            result.status, result.reason = msg.status, msg.reason
            result.rtt_ms = pending.rtt_ms(outcome.received)
            result.nat = nat_view(flow, msg)
            if msg.status in (401, 407):
                if auth is None:
                    result.errors.append(
                        {
                            "code": "auth_required",
                            "message": f"{msg.status} {msg.reason}: credentials needed "
                            "(--password-file, SIPTOOL_PASSWORD or the prompt)",
                        }
                    )
                    break
                decision = auth.on_challenge(msg)
                if decision == "retry":
                    continue
                if decision == "wrong_credentials":
                    result.errors.append(
                        {
                            "code": "wrong_credentials",
                            "message": f"wrong credentials: {msg.status} {msg.reason} again "
                            f"after sending them for user {options.auth_user or options.user}",
                        }
                    )
                else:
                    result.errors.append(
                        {"code": "auth_unsupported", "message": auth.error or "unsupported auth"}
                    )
                break
            if msg.status is not None and 200 <= msg.status < 300:
                result.bindings, result.expires = _bindings(msg, contact_uri)
                if options.mode == "register" and result.expires is None:
                    result.warnings.append(
                        "the registrar's 200 OK does not list our Contact: binding not confirmed"
                    )
                result.service_route = msg.header_values("Service-Route")
                result.path = msg.header_values("Path")
                result.exit_code = EXIT_OK
            elif msg.status == 423:
                # RFC 3261 §10.2.8: Interval Too Brief carries the minimum in Min-Expires.
                result.errors.append(
                    {
                        "code": "interval_too_brief",
                        "message": "423 Interval Too Brief: Min-Expires "
                        f"{msg.header('Min-Expires')}",
                    }
                )
            else:
                result.errors.append(
                    {"code": "rejected", "message": f"{msg.status} {msg.reason or ''}".rstrip()}
                )
            break
    finally:
        result.total_ms = round((time.monotonic() - started) * 1000.0, 3)
        if auth is not None:
            result.auth = auth.report()
        if result.nat.local is None:
            result.nat = nat_view(flow, None)
        if answered:
            result.warnings += result.nat.warnings
        await client.close()
    return answered


def register_sync(options: RegisterOptions, log: WireLog) -> RegisterResult:
    return asyncio.run(run_register(options, log))
