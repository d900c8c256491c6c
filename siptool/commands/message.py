"""`siptool message`: MESSAGE (RFC 3428) — send one instant message, or register and wait for
incoming ones (``--listen``).

Sending: one MESSAGE outside a dialog (a non-INVITE transaction, digest challenges answered)
through ``RequestSession``; 200 or 202 is success (RFC 3428 §7: 202 when it was only
accepted, a gateway or store-and-forward server), any other final is named with what it means
for instant messages.

Listening: REGISTER the user's Contact on this flow's own address (RFC 3261 §10), wait for
MESSAGE requests arriving over that flow, answer each 200 OK (a retransmission gets the same
answer, ``Answerer``), report each as it comes, and take the binding back (Expires: 0) when done:
after ``count`` messages, at the --timeout, or at Ctrl-C (then exit 130, the runner's).

Decisions:

- A MESSAGE carries no Contact: it creates no dialog (RFC 3428 §4), and a Contact would invite
  replies to an address siptool does not serve after it exits.
- In --listen, --timeout is how long to wait for the messages (the REGISTER has its own share,
  the same --timeout); the check passes once ``count`` messages arrived (default 1).
- Other requests arriving while listening: OPTIONS gets 200 (a registrar's keep-alive probe),
  anything else 405 with ``Allow: MESSAGE, OPTIONS`` (RFC 3261 §8.2.1); ACK nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from siptool.commands.result import CheckResult
from siptool.commands.send import final_verdict
from siptool.commands.sip_common import (
    NatView,
    Reached,
    SipSettings,
    local_endpoint,
    nat_view,
    run_check,
)
from siptool.commands.sip_request import (
    Answerer,
    RequestSession,
    TransactionRecord,
    aor_of,
    body_text,
)
from siptool.errors import ExitCode, ParseError, SiptoolError
from siptool.net.sip_transport import Received, SipFlow
from siptool.sip.auth import AuthReport
from siptool.sip.message import SipMessage, clean_text
from siptool.sip.target import Target

CLEANUP_SECONDS = 1.0  # Ctrl-C or the end: how long taking the binding back may take
LISTEN_EXPIRES = 300  # the binding asked for while listening (refreshed if the wait is longer)
ALLOW = "MESSAGE, OPTIONS"

# What a final response to a MESSAGE says about the instant message (RFC 3428 §7-§9, RFC 3261
# §21); the others are named by their reason phrase alone.
MESSAGE_FINALS = {
    404: "no such user at the server",
    408: "the request timed out inside the network",
    413: "the message is too large for the recipient (RFC 3428 §7)",
    415: "the recipient does not accept this content type",
    480: "the user is not online (no registered device)",
    486: "the recipient is busy",
    488: "the recipient does not accept this content (RFC 3428 §7)",
    603: "the recipient declined the message",
}


@dataclass(frozen=True)
class MessageOptions:
    target: Target
    settings: SipSettings
    password: str | None = None
    auth_user: str | None = None
    body: bytes = b""
    content_type: str = "text/plain;charset=UTF-8"


@dataclass(frozen=True)
class ListenOptions:
    registrar: Target
    settings: SipSettings
    user: str
    password: str | None = None
    auth_user: str | None = None
    count: int = 1
    expires: int = LISTEN_EXPIRES


@dataclass
class Incoming:
    """One MESSAGE received while listening."""

    from_: str | None
    to: str | None
    content_type: str | None
    body: str | None
    time_ms: float
    source: str
    call_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.from_,
            "to": self.to,
            "content_type": self.content_type,
            "body": self.body,
            "time_ms": self.time_ms,
            "source": self.source,
            "call_id": self.call_id,
        }


@dataclass
class MessageResult(Reached, CheckResult):
    mode: str  # "send" or "listen"
    transactions: list[TransactionRecord] = field(default_factory=list)
    final_status: int | None = None
    final_reason: str | None = None
    rtt_ms: float | None = None
    auth: AuthReport | None = None
    nat: NatView = field(default_factory=NatView)
    received: list[Incoming] = field(default_factory=list)
    registered: bool = False
    unregistered: bool | None = None  # --listen: the binding taken back at the end
    warnings: list[str] = field(default_factory=list)
    exit_code: ExitCode = field(default=ExitCode.FAILED, kw_only=True)

    @property
    def method(self) -> str:
        return "MESSAGE"

    def to_dict(self) -> dict[str, Any]:
        doc = {
            "target": self.target,
            "mode": self.mode,
            "resolved": self.resolved,
            "transactions": [t.to_dict() for t in self.transactions],
            "final_status": self.final_status,
            "final_reason": self.final_reason,
            "rtt_ms": self.rtt_ms,
            "auth": None if self.auth is None else self.auth.to_dict(),
            "nat": self.nat.to_dict(),
            "warnings": self.warnings,
        }
        if self.mode == "listen":
            doc["received"] = [m.to_dict() for m in self.received]
            doc["registered"] = self.registered
            doc["unregistered"] = self.unregistered
        return doc


# -- sending ----------------------------------------------------------------------------------


async def run_message(options: MessageOptions) -> MessageResult:
    """Send one MESSAGE; every verdict is on the result."""
    result = MessageResult(str(options.target), "send")
    await run_check(
        options.target,
        options.settings,
        result,
        lambda flow, _more: _send_over(flow, options, result),
    )
    return result


async def _send_over(
    flow: SipFlow, options: MessageOptions, result: MessageResult
) -> SiptoolError | None:
    session = RequestSession(
        flow, options.settings, password=options.password, auth_user=options.auth_user
    )
    build = session.request(
        "MESSAGE",
        options.target,
        body=options.body,
        content_type=options.content_type,
        contact=False,
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
    # RFC 3428 §7: 200 (delivered) or 202 (accepted for delivery) is success.
    final_verdict(result, done, lambda status: status in (200, 202), "200 or 202")
    status = result.final_status
    if result.exit_code is not ExitCode.OK and status in MESSAGE_FINALS and result.errors:
        last = result.errors[-1]
        result.errors[-1] = SiptoolError(
            f"{last.message}: {MESSAGE_FINALS[status]}", code=last.code
        )
    return None


# -- listening --------------------------------------------------------------------------------

OnMessage = Callable[[Incoming], None]


async def run_listen(options: ListenOptions, on_message: OnMessage | None = None) -> MessageResult:
    """Register, wait for MESSAGEs, unregister; every verdict is on the result."""
    result = MessageResult(str(options.registrar), "listen")
    await run_check(
        options.registrar,
        options.settings,
        result,
        lambda flow, _more: _listen_over(flow, options, result, on_message),
        accept_any_source=True,  # MESSAGEs may come from another socket of the server's
    )
    return result


class _Listener:
    """The registration and the wait over one flow."""

    def __init__(self, flow: SipFlow, options: ListenOptions, result: MessageResult) -> None:
        self.options = options
        self.result = result
        self.session = RequestSession(
            flow, options.settings, password=options.password, auth_user=options.auth_user
        )
        self.answerer = Answerer(self.session.client, options.settings.knobs.user_agent)
        self.aor = aor_of(options.registrar, options.user)

    def _register(self, expires: int) -> Callable[[int], SipMessage]:
        contact = local_endpoint(self.session.flow).contact_uri(self.options.user)
        return self.session.request(
            "REGISTER",
            self.options.registrar,
            extra=[("Expires", str(expires))],
            to_uri=self.aor,
            contact=f"<{contact}>;expires={expires}",
        )

    async def register(self, expires: int, deadline: float) -> SiptoolError | None:
        done = await self.session.exchange(self._register(expires), deadline)
        if done.final is not None:
            self.result.nat = nat_view(self.session.flow, done.final)
        if done.error is not None:
            return done.error
        status = (done.final.status if done.final is not None else None) or 0
        if not 200 <= status < 300:
            reason = done.final.reason if done.final is not None else ""
            return SiptoolError(f"REGISTER {status} {reason}".rstrip(), code="not_registered")
        return None

    async def wait(self, on_message: OnMessage | None) -> None:
        """MESSAGEs until ``count`` came or --timeout passed (a refresh when the binding
        would lapse first)."""
        options, result = self.options, self.result
        deadline = time.monotonic() + options.settings.timeout
        refresh_at = time.monotonic() + options.expires * 0.9
        requests = self.session.client.requests
        while len(result.received) < options.count:
            now = time.monotonic()
            if now >= refresh_at:
                await self.register(options.expires, now + options.settings.timeout)
                refresh_at = time.monotonic() + options.expires * 0.9
            left = min(deadline, refresh_at) - time.monotonic()
            if deadline - time.monotonic() <= 0:
                return
            try:
                item = await asyncio.wait_for(requests.get(), max(0.001, left))
            except TimeoutError:
                continue
            incoming = self.serve(item)
            if incoming is not None:
                result.received.append(incoming)
                if on_message is not None:
                    on_message(incoming)

    def serve(self, item: Received) -> Incoming | None:
        """Answer one request; the MESSAGE it carried, if it is a new one."""
        request = item.message
        method = request.method or ""
        if method == "ACK" or self.answerer.again(item):
            return None
        if method == "OPTIONS":
            self.answerer.answer(item, 200, "OK", extra=[("Allow", ALLOW)])
            return None
        if method != "MESSAGE":
            self.answerer.answer(item, 405, "Method Not Allowed", extra=[("Allow", ALLOW)])
            return None
        self.answerer.answer(item, 200, "OK")
        return Incoming(
            from_=_uri_of(request, "From"),
            to=_uri_of(request, "To"),
            content_type=request.content_type,
            body=body_text(request.body),
            time_ms=round((item.time - self.session.started) * 1000.0, 3),
            source=item.source,
            call_id=request.call_id,
        )

    async def unregister(self) -> None:
        """Take the binding back (Expires: 0, RFC 3261 §10.2.2) within ``CLEANUP_SECONDS``."""
        if self.session.auth is not None:
            self.session.auth.restart()
        error = await self.register(0, time.monotonic() + CLEANUP_SECONDS)
        self.result.unregistered = error is None


def _uri_of(request: SipMessage, name: str) -> str | None:
    try:
        value = request.from_ if name == "From" else request.to
    except ParseError:
        return clean_text(request.header(name) or "") or None
    return None if value is None else clean_text(str(value.uri))


async def _listen_over(
    flow: SipFlow, options: ListenOptions, result: MessageResult, on_message: OnMessage | None
) -> SiptoolError | None:
    listener = _Listener(flow, options, result)
    try:
        error = await listener.register(
            options.expires, time.monotonic() + options.settings.timeout
        )
        if error is not None:
            if not listener.session.answered:
                return error
            result.errors.append(error)
            return None
        result.registered = True
        try:
            await listener.wait(on_message)
        except asyncio.CancelledError:
            await listener.unregister()
            raise
        await listener.unregister()
        _listen_verdict(result, options)
        return None
    finally:
        result.transactions = listener.session.records
        result.auth = listener.session.auth_report()
        await listener.session.close()


def _listen_verdict(result: MessageResult, options: ListenOptions) -> None:
    got = len(result.received)
    if got >= options.count:
        result.exit_code = ExitCode.OK
    else:
        result.errors.append(
            SiptoolError(
                f"{got} of {options.count} MESSAGE(s) received in {options.settings.timeout:g} s",
                code="timeout",
            )
        )
    if result.unregistered is False:
        result.warnings.append(f"the binding of {options.user} could not be removed")


__all__ = [
    "Incoming",
    "ListenOptions",
    "MessageOptions",
    "MessageResult",
    "run_listen",
    "run_message",
]
