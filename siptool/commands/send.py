"""`siptool send METHOD TARGET`: one request outside a dialog, any method, as a non-INVITE
client transaction (RFC 3261 §17.1.2), answering digest challenges (§22.2).

Decisions:

- INVITE is refused (it opens a dialog, needs an ACK, and is what invite-test is for); ACK and
  CANCEL are refused too: neither is a request of its own outside an INVITE transaction
  (§17.1.1.3, §9.1).  PRACK needs an early dialog (RFC 3262) and is refused likewise.  Every
  other method, registered or an extension token (§7.1 ``extension-method``), is sent.
- The check passes when the final response is one --expect accepts; without --expect, a 2xx.
- RFC 3263 §4.3: a server that never answers hands the request to the next one of the
  resolution; any answer ends it there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from siptool.commands.nagios import NagiosVerdict, Thresholds, unknown, verdict
from siptool.commands.result import CheckResult
from siptool.commands.sip_common import (
    Expectation,
    NatView,
    Reached,
    SipSettings,
    nat_view,
    run_check,
)
from siptool.commands.sip_request import Exchange, RequestSession, TransactionRecord
from siptool.errors import ExitCode, SiptoolError
from siptool.net.sip_transport import SipFlow
from siptool.sip.auth import AuthReport
from siptool.sip.target import Target

# Methods `send` will not send, and where to go instead.
REFUSED_METHODS = {
    "INVITE": "INVITE opens a call: use siptool invite-test",
    "ACK": "ACK belongs to an INVITE transaction (RFC 3261 §17.1.1.3): use siptool invite-test",
    "CANCEL": "CANCEL cancels a pending INVITE (RFC 3261 §9.1): use invite-test --cancel-after",
    "PRACK": "PRACK acknowledges a reliable provisional response in an early dialog (RFC 3262)",
}


@dataclass(frozen=True)
class SendOptions:
    method: str
    target: Target
    settings: SipSettings
    password: str | None = None
    auth_user: str | None = None
    body: bytes = b""
    content_type: str | None = None
    expect: Expectation | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)


@dataclass
class SendResult(Reached, CheckResult):
    method: str
    transactions: list[TransactionRecord] = field(default_factory=list)
    final_status: int | None = None
    final_reason: str | None = None
    rtt_ms: float | None = None  # the last request: sent to its final response
    auth: AuthReport | None = None
    nat: NatView = field(default_factory=NatView)
    exit_code: ExitCode = field(default=ExitCode.FAILED, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "method": self.method,
            "resolved": self.resolved,
            "transactions": [t.to_dict() for t in self.transactions],
            "final_status": self.final_status,
            "final_reason": self.final_reason,
            "rtt_ms": self.rtt_ms,
            "auth": None if self.auth is None else self.auth.to_dict(),
            "nat": self.nat.to_dict(),
            "tls": None if self.tls is None else self.tls.to_dict(),
        }


class Concluded(Protocol):
    """A result with a final response to set (send's, message's, publish's)."""

    final_status: int | None
    final_reason: str | None
    rtt_ms: float | None
    errors: list[SiptoolError]
    exit_code: ExitCode


def final_verdict(
    result: Concluded, done: Exchange, passes: Callable[[int], bool], wanted: str
) -> None:
    """The final response (or its absence) as the result's status, exit code and error:
    it passes when ``passes(status)``; else the error says it was not ``wanted``."""
    msg = done.final
    if msg is not None:
        result.final_status, result.final_reason = msg.status, msg.reason
        result.rtt_ms = done.rtt_ms
    if done.error is not None:
        result.errors.append(done.error)
        return
    status = (msg.status if msg is not None else None) or 0
    if passes(status):
        result.exit_code = ExitCode.OK
        return
    what = f"{status} {result.final_reason or ''}".rstrip()
    result.errors.append(SiptoolError(f"{what}, not {wanted}", code="rejected"))


def expected(expect: Expectation | None) -> tuple[Callable[[int], bool], str]:
    """--expect as ``final_verdict``'s test and words; without it, any 2xx passes."""
    if expect is not None:
        return expect.accepts, "an expected status (--expect)"
    return (lambda status: 200 <= status < 300), "a 2xx"


async def run_send(options: SendOptions) -> SendResult:
    """Send the request; every verdict is on the result."""
    result = SendResult(str(options.target), options.method)
    await run_check(
        options.target,
        options.settings,
        result,
        lambda flow, _more: _send_over(flow, options, result),
    )
    result.nagios = nagios_verdict(result, options.thresholds)
    return result


async def _send_over(
    flow: SipFlow, options: SendOptions, result: SendResult
) -> SiptoolError | None:
    """The request over one flow; the error when this server never answered at all."""
    session = RequestSession(
        flow, options.settings, password=options.password, auth_user=options.auth_user
    )
    build = session.request(
        options.method,
        options.target,
        body=options.body,
        content_type=options.content_type,
    )
    try:
        done = await session.exchange(build, session.started + options.settings.timeout)
    finally:
        result.transactions = session.records
        result.auth = session.auth_report()
        await session.close()
    if not session.answered and done.error is not None:
        return done.error
    result.nat = nat_view(flow, done.final)
    final_verdict(result, done, *expected(options.expect))
    return None


def nagios_verdict(result: SendResult, limits: Thresholds) -> NagiosVerdict:
    if result.exit_code is ExitCode.NOT_RUN:
        return unknown("SIP", result.errors)
    rtt = result.rtt_ms
    perf = [] if rtt is None else [limits.time_perfdata("time", rtt)]
    passed = result.exit_code is ExitCode.OK
    state = limits.state(passed, rtt)
    if not passed:
        why = result.errors[-1].message if result.errors else "failed"
        return verdict("SIP", state, f"{result.method} {result.target}: {why}", perf)
    what = f"{result.final_status} {result.final_reason or ''}".rstrip()
    took = "" if rtt is None else f" in {rtt:.1f} ms"
    return verdict("SIP", state, f"{what} to {result.method} {result.target}{took}", perf)
