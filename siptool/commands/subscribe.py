"""`siptool subscribe TARGET --event PKG`: SUBSCRIBE and NOTIFY (RFC 6665) for any event
package — presence (RFC 3856), dialog / BLF (RFC 4235), message-summary / MWI (RFC 3842),
reg (RFC 3680) and any other by name.

The run: SUBSCRIBE with the package's Event and Accept (``sip.event_packages``), answering
digest challenges (``RequestSession``); a 2xx makes the subscription dialog (RFC 6665 §4.1.2.1,
built as RFC 3261 §12.1.2 has it, ``sip.dialog.Dialog``).  Every NOTIFY of that dialog is
answered 200 and recorded with its Subscription-State and its body parsed; a NOTIFY of no
subscription of ours gets 481 (RFC 6665 §4.1.3).  Then, by mode:

- default: once the first NOTIFY (the initial state, §4.2.1) is in, unsubscribe;
- ``--duration S``: keep the subscription S seconds, refreshing it before it ends
  (``event_packages.refresh_at``), then unsubscribe;
- ``--once``: a fetch (Expires: 0, §4.1.2.3): the one NOTIFY it brings, nothing to undo.

Unsubscribing is a SUBSCRIBE with Expires: 0 in the dialog (§4.1.2.3); its NOTIFY with
"terminated" is waited for (--timeout) and reported.  Ctrl-C unsubscribes too (then exit 130).

Decisions:

- The check passes when the subscription was accepted (2xx) and a NOTIFY with a readable
  state came.  A 2xx without Expires (which §4.1.2.1 requires) is a warning: the requested
  value is assumed.  A body that does not parse is an error naming the NOTIFY and the fault
  (the other NOTIFYs are still read).  A NOTIFY without Subscription-State gets 400 (§8.2.3 is
  mandatory in NOTIFY) and is recorded as an error.
- The notifier may terminate the subscription itself: its reason is reported with what
  §4.2.2 tells a subscriber to do about it; "rejected", "noresource" and "giveup" fail the check.
- 423 Interval Too Brief is answered once with the Min-Expires the server asked for
  (RFC 3261 §10.2.8, kept by RFC 6665 §4.1.2.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from siptool.commands.result import CheckResult
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
    Build,
    RequestSession,
    TransactionRecord,
    body_text,
)
from siptool.errors import ExitCode, ParseError, SiptoolError
from siptool.net.sip_transport import Received, SipFlow
from siptool.numbers import decimal_or_none
from siptool.sip.auth import AuthReport
from siptool.sip.builders import new_branch
from siptool.sip.dialog import Dialog, DialogError
from siptool.sip.event_packages import (
    REASONS,
    SubscriptionState,
    SubState,
    accept_for,
    parse_event,
    parse_notify_body,
    parse_subscription_state,
    refresh_at,
)
from siptool.sip.message import SipMessage
from siptool.sip.target import Target

FAILED_REASONS = ("rejected", "noresource", "giveup")  # the notifier ended it for good
CLEANUP_SECONDS = 2.0  # Ctrl-C: the unsubscribe and its final NOTIFY


@dataclass(frozen=True)
class SubscribeOptions:
    target: Target
    settings: SipSettings
    event: str
    password: str | None = None
    auth_user: str | None = None
    expires: int = 600
    duration: float | None = None  # None: until the first NOTIFY
    once: bool = False


@dataclass
class NotifyRecord:
    """One NOTIFY that came in, as the JSON's ``notifies`` shows it."""

    time_ms: float
    cseq: int | None
    subscription_state: SubscriptionState | None
    content_type: str | None
    body: str | None
    parsed: dict[str, Any] | None
    summary: str | None
    error: str | None = None
    answered: int = 200

    def to_dict(self) -> dict[str, Any]:
        state = self.subscription_state
        return {
            "time_ms": self.time_ms,
            "cseq": self.cseq,
            "subscription_state": None if state is None else state.to_dict(),
            "content_type": self.content_type,
            "body": self.body,
            "parsed": self.parsed,
            "summary": self.summary,
            "error": self.error,
            "answered": self.answered,
        }


@dataclass
class SubscribeResult(Reached, CheckResult):
    event: str
    mode: str  # "subscribe", "duration", "once"
    transactions: list[TransactionRecord] = field(default_factory=list)
    final_status: int | None = None
    final_reason: str | None = None
    expires: int | None = None  # granted by the 2xx
    notifies: list[NotifyRecord] = field(default_factory=list)
    states: list[str] = field(default_factory=list)  # Subscription-State transitions
    terminated_reason: str | None = None
    unsubscribed: bool | None = None
    refreshes: int = 0
    unknown_notifies: int = 0  # answered 481
    auth: AuthReport | None = None
    nat: NatView = field(default_factory=NatView)
    warnings: list[str] = field(default_factory=list)
    exit_code: ExitCode = field(default=ExitCode.FAILED, kw_only=True)

    @property
    def state(self) -> str | None:
        """What the last readable NOTIFY said, in a few words."""
        for record in reversed(self.notifies):
            if record.summary is not None:
                return record.summary
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "event": self.event,
            "mode": self.mode,
            "resolved": self.resolved,
            "transactions": [t.to_dict() for t in self.transactions],
            "final_status": self.final_status,
            "final_reason": self.final_reason,
            "expires": self.expires,
            "notifies": [n.to_dict() for n in self.notifies],
            "states": self.states,
            "state": self.state,
            "terminated_reason": self.terminated_reason,
            "unsubscribed": self.unsubscribed,
            "refreshes": self.refreshes,
            "unknown_notifies": self.unknown_notifies,
            "auth": None if self.auth is None else self.auth.to_dict(),
            "nat": self.nat.to_dict(),
            "warnings": self.warnings,
        }


async def run_subscribe(options: SubscribeOptions) -> SubscribeResult:
    """Subscribe, read the NOTIFYs, unsubscribe; every verdict is on the result."""
    mode = "once" if options.once else "duration" if options.duration is not None else "subscribe"
    result = SubscribeResult(str(options.target), options.event, mode)
    await run_check(
        options.target,
        options.settings,
        result,
        lambda flow, _more: _subscribe_over(flow, options, result),
        accept_any_source=True,  # NOTIFYs may come from another socket of the notifier's
    )
    _verdict(result)
    return result


class _Subscription:
    """The subscription over one flow: its SUBSCRIBEs, its dialog, its NOTIFYs."""

    def __init__(self, flow: SipFlow, options: SubscribeOptions, result: SubscribeResult) -> None:
        self.options = options
        self.result = result
        self.session = RequestSession(
            flow, options.settings, password=options.password, auth_user=options.auth_user
        )
        self.answerer = Answerer(self.session.client, options.settings.knobs.user_agent)
        self.dialog: Dialog | None = None
        self.subscribe: SipMessage | None = None  # the first SUBSCRIBE that was answered 2xx
        self.changed = asyncio.Event()  # a NOTIFY came
        self.terminated = False
        self.granted_at = time.monotonic()  # when the last 2xx granted ``result.expires``

    # -- requests ---------------------------------------------------------------------------

    def _headers(self, expires: int) -> list[tuple[str, str]]:
        headers = [("Event", self.options.event), ("Expires", str(expires))]
        accept = accept_for(self.options.event)
        if accept is not None:
            headers.append(("Accept", accept))
        return headers

    def _initial(self, expires: int) -> Build:
        build = self.session.request("SUBSCRIBE", self.options.target, extra=self._headers(expires))

        def keep(cseq: int) -> SipMessage:
            self.subscribe = build(cseq)
            return self.subscribe

        return keep

    def _in_dialog(self, expires: int) -> Build:
        dialog = self.dialog
        assert dialog is not None
        flow = self.session.flow

        def build(_cseq: int) -> SipMessage:
            local = local_endpoint(flow)
            contact = f"<{local.contact_uri(self.options.settings.user or 'siptool')}>"
            return dialog.request(
                "SUBSCRIBE",
                local.via(new_branch()),
                contact=contact,
                extra=self._headers(expires),
            )

        return build

    async def open(self) -> SiptoolError | None:
        """The first SUBSCRIBE (a 423 answered with Min-Expires once); the error when the
        server never answered at all (None: it did, the verdict is on the result)."""
        expires = 0 if self.options.once else self.options.expires
        deadline = time.monotonic() + self.options.settings.timeout
        done = await self.session.exchange(self._initial(expires), deadline)
        msg = done.final
        if msg is not None and msg.status == 423:
            least = decimal_or_none((msg.header("Min-Expires") or "").strip(), 10)
            if least is not None and least > expires:
                self.result.warnings.append(
                    f"423 Interval Too Brief: subscribed again for {least} s"
                )
                done = await self.session.exchange(self._initial(least), deadline)
                msg = done.final
        result = self.result
        if msg is None:
            if not self.session.answered and done.error is not None:
                return done.error
            result.errors.append(done.error or SiptoolError("no answer", code="timeout"))
            return None
        result.final_status, result.final_reason = msg.status, msg.reason
        result.nat = nat_view(self.session.flow, msg)
        if done.error is not None:
            result.errors.append(done.error)
            return None
        status = msg.status or 0
        if not 200 <= status < 300:
            result.errors.append(_refused(msg, self.options.event))
            return None
        self._accepted(msg, expires)
        return None

    def _accepted(self, msg: SipMessage, asked: int) -> None:
        result = self.result
        granted = decimal_or_none((msg.header("Expires") or "").strip(), 10)
        if granted is None:
            result.warnings.append(
                f"the {msg.status} to SUBSCRIBE has no Expires (RFC 6665 §4.1.2.1 requires it): "
                f"assuming the {asked} s asked for"
            )
            granted = asked
        result.expires = granted
        self.granted_at = time.monotonic()
        assert self.subscribe is not None
        try:
            self.dialog = Dialog.from_response(self.subscribe, msg)
        except DialogError as exc:
            result.warnings.append(f"no subscription dialog: {exc.message}")
            return
        self.dialog.user_agent = self.options.settings.knobs.user_agent
        if not self.dialog.route_set and self.options.settings.knobs.route is not None:
            self.dialog.route_set = [self.options.settings.knobs.route]
        result.warnings += self.dialog.warnings

    async def refresh(self, expires: int) -> bool:
        """A SUBSCRIBE in the dialog (a refresh, or Expires: 0 to end it); True on a 2xx."""
        if self.dialog is None:
            return False
        deadline = time.monotonic() + self.options.settings.timeout
        done = await self.session.exchange(self._in_dialog(expires), deadline)
        msg = done.final
        ok = msg is not None and 200 <= (msg.status or 0) < 300
        if ok and expires and msg is not None:
            granted = decimal_or_none((msg.header("Expires") or "").strip(), 10)
            self.result.expires = expires if granted is None else granted
            self.granted_at = time.monotonic()
        if not ok and expires:
            what = (
                done.error.message if done.error else f"{msg.status} {msg.reason}" if msg else "?"
            )
            self.result.warnings.append(f"refreshing the subscription failed: {what}")
        return ok

    # -- NOTIFYs ----------------------------------------------------------------------------

    async def serve(self) -> None:
        """Answer every request that comes over the flow (see the module docstring)."""
        requests = self.session.client.requests
        while True:
            item = await requests.get()
            with contextlib.suppress(SiptoolError):
                self._answer(item)

    def _answer(self, item: Received) -> None:
        request = item.message
        method = request.method or ""
        if method == "ACK" or self.answerer.again(item):
            return
        if method != "NOTIFY":
            self.answerer.answer(item, 405, "Method Not Allowed", extra=[("Allow", "NOTIFY")])
            return
        if not self._ours(request):
            self.result.unknown_notifies += 1
            self.answerer.answer(item, 481, "Subscription Does Not Exist")
            return
        self._notify(item)

    def _ours(self, request: SipMessage) -> bool:
        """RFC 6665 §4.1.3: the NOTIFY matches our SUBSCRIBE by Call-ID, its To tag is our
        From tag, and its Event is our package (the id too, when we sent one)."""
        try:
            to = request.to
            event = parse_event(request.header("Event") or "")
        except ParseError:
            return False
        ours = parse_event(self.options.event)
        return (
            request.call_id == self.session.call_id
            and to is not None
            and to.tag == self.session.tag
            and event.package == ours.package
            and event.id == ours.id
        )

    def _notify(self, item: Received) -> None:
        request, result = item.message, self.result
        cseq = request.cseq
        record = NotifyRecord(
            time_ms=round((item.time - self.session.started) * 1000.0, 3),
            cseq=None if cseq is None else cseq.seq,
            subscription_state=None,
            content_type=request.content_type,
            body=body_text(request.body),
            parsed=None,
            summary=None,
        )
        result.notifies.append(record)
        where = f"NOTIFY {len(result.notifies)}"
        raw_state = request.header("Subscription-State")
        try:
            if raw_state is None:
                raise ParseError("no Subscription-State (RFC 6665 §8.2.3 requires it)")
            state = parse_subscription_state(raw_state)
        except ParseError as exc:
            record.error = f"{where}: {exc.message}"
            record.answered = 400
            self.answerer.answer(item, 400, "Bad Request")
            self.changed.set()
            return
        record.subscription_state = state
        self.answerer.answer(item, 200, "OK")
        self._transition(state)
        try:
            parsed = parse_notify_body(request.content_type, request.body)
        except ParseError as exc:
            record.error = f"{where}: {exc.message}"
        else:
            if parsed is not None:
                record.parsed, record.summary = parsed.to_dict(), parsed.summary()
        self.changed.set()

    def _transition(self, state: SubscriptionState) -> None:
        result = self.result
        if not result.states or result.states[-1] != state.state_text:
            result.states.append(state.state_text)
        if state.state is SubState.TERMINATED:
            self.terminated = True
            result.terminated_reason = state.reason

    async def wait_notify(self, until: float, *, terminated: bool = False, after: int = 0) -> bool:
        """Wait until more than ``after`` NOTIFYs came (with ``terminated``: the one that
        ends the subscription) or ``until``; whether it came."""
        while True:
            if self.terminated if terminated else len(self.result.notifies) > after:
                return True
            left = until - time.monotonic()
            if left <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)


def _refused(msg: SipMessage, event: str) -> SiptoolError:
    what = f"{msg.status} {msg.reason or ''}".rstrip()
    if msg.status == 489:
        return SiptoolError(
            f"{what}: the server does not support the event package {event!r} "
            f"(Allow-Events: {msg.header('Allow-Events') or 'not given'})",
            code="bad_event",
        )
    return SiptoolError(f"SUBSCRIBE {what}", code="rejected")


async def _subscribe_over(
    flow: SipFlow, options: SubscribeOptions, result: SubscribeResult
) -> SiptoolError | None:
    sub = _Subscription(flow, options, result)
    server = asyncio.ensure_future(sub.serve())
    try:
        silent = await sub.open()
        if silent is not None:
            return silent
        if result.expires is None:
            return None  # refused: the error is on the result
        try:
            await _hold(sub, options)
        except asyncio.CancelledError:
            await _end(sub, time.monotonic() + CLEANUP_SECONDS)
            raise
        return None
    finally:
        server.cancel()
        result.transactions = sub.session.records
        result.auth = sub.session.auth_report()
        await sub.session.close()


async def _hold(sub: _Subscription, options: SubscribeOptions) -> None:
    """The NOTIFYs of the mode, refreshes, then the end (see the module docstring)."""
    timeout = options.settings.timeout
    first = time.monotonic() + timeout
    if not await sub.wait_notify(first):
        sub.result.errors.append(SiptoolError(f"no NOTIFY within {timeout:g} s", code="timeout"))
    if options.once or sub.terminated:
        if options.once:
            await sub.wait_notify(first, terminated=True)
        return
    if options.duration:
        end = time.monotonic() + options.duration
        while time.monotonic() < end and not sub.terminated:
            granted = sub.result.expires or options.expires
            due = refresh_at(granted, sub.granted_at, options.settings.timers)
            await sub.wait_notify(min(end, due), terminated=True)
            now = time.monotonic()
            if not sub.terminated and due <= now < end:
                if await sub.refresh(options.expires):
                    sub.result.refreshes += 1
                else:
                    sub.granted_at = now  # refused: try again a refresh interval later
    if not sub.terminated:
        await _end(sub, time.monotonic() + timeout)


async def _end(sub: _Subscription, until: float) -> None:
    """Unsubscribe (Expires: 0) and wait for the NOTIFY that says "terminated"."""
    if sub.terminated or sub.dialog is None:
        return
    sub.result.unsubscribed = await sub.refresh(0)
    if sub.result.unsubscribed and not await sub.wait_notify(until, terminated=True):
        sub.result.warnings.append(
            "no NOTIFY with Subscription-State: terminated after unsubscribing"
        )


def _verdict(result: SubscribeResult) -> None:
    """Passed: accepted, a readable NOTIFY, no error on the way (module docstring)."""
    if result.exit_code is ExitCode.NOT_RUN:
        return
    for record in result.notifies:
        if record.error is not None:
            result.errors.append(SiptoolError(record.error, code="bad_notify"))
    reason = result.terminated_reason
    if reason in FAILED_REASONS and not result.unsubscribed:
        result.errors.append(
            SiptoolError(
                f"the notifier terminated the subscription: {reason}: {REASONS[reason]}",
                code="terminated",
            )
        )
    readable = any(n.subscription_state is not None and n.error is None for n in result.notifies)
    if result.expires is not None and readable and not result.errors:
        result.exit_code = ExitCode.OK


__all__ = ["NotifyRecord", "SubscribeOptions", "SubscribeResult", "run_subscribe"]
