"""invite-test --refer-to: transfer the answered call (RFC 3515 REFER, RFC 5589 §6 basic
transfer, siptool the transferor) and report what the transfer target answered.

Once the hold is over, REFER goes in the dialog with ``Refer-To: <URI>`` and ``Referred-By:``
our From URI (RFC 3892 §3); 202 Accepted (RFC 3515 §2.4.2) starts the implicit subscription,
whose NOTIFYs (``Event: refer;id=<the REFER's CSeq>``, §2.4.4, §2.4.6) carry the target's
answer as message/sipfrag (§2.4.5): "SIP/2.0 100 Trying", then the final answer with
``Subscription-State: terminated``.  Each NOTIFY is answered 200 and recorded with its time,
its Subscription-State and its sipfrag; then the call is hung up (RFC 5589 §6: the transferor
sends BYE once the transfer succeeded) unless the far end hung up first.

Decisions:

- The REFER goes at the end of the hold, so --rtp and --hold mean what they mean in any call;
  ``--hold 0`` transfers at once.  Its wait (the REFER's answer and the NOTIFYs) is
  --refer-wait, else --timeout, from the REFER: the bound of the command moves there
  (commands/invite_state.py), and the BYE after it has the cleanup allowance as any BYE.
- 200 to the REFER is taken as 202 (RFC 3515 §2.4.2 predates RFC 6665 §8.3.1, which made
  REFER's answer 200 too); any other final response is "REFER refused: 405 Method Not
  Allowed", and a 401/407 is answered with credentials as the BYE's is.
- The wait ends with the NOTIFY that says terminated (§2.4.7) or carries a final sipfrag,
  whichever comes first: the final answer is the outcome, and the far end may never end the
  subscription.  A BYE from the far end meanwhile does not end it: the subscription outlives
  the call (RFC 5057 §5.3), and a transferee hangs up after a successful transfer.
- A NOTIFY is the transfer's when its Event is refer and its id is one of our REFERs' CSeqs, or
  it has none (§2.4.6 allows that for the first REFER of a dialog); it may come before the
  202 (RFC 6665 §4.1.2.4), so it is looked for as soon as the REFER is sent.  A refer NOTIFY
  for another id gets 481 (RFC 6665 §4.1.3).  A retransmission (a CSeq already recorded)
  gets its answer again and is not recorded twice.
- A NOTIFY without Subscription-State gets 400 (RFC 6665 §8.2.3 requires it) and is recorded
  with the error; a body that is not a readable message/sipfrag is recorded with the error
  (answered 200: the subscription is fine, only its news is unreadable).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from siptool.commands.invite_state import CallState, ms
from siptool.commands.invite_test import Transfer, TransferNotify, TransferOutcome
from siptool.errors import ParseError
from siptool.net.sip_client import Outcome
from siptool.net.sip_transport import Received
from siptool.sip.event_packages import (
    SubscriptionState,
    SubState,
    media_type,
    parse_event,
    parse_subscription_state,
)
from siptool.sip.message import SipMessage
from siptool.sip.nameaddr import parse_name_addr
from siptool.sip.sipfrag import MEDIA_TYPE as SIPFRAG
from siptool.sip.sipfrag import SipFrag, parse_sipfrag

__all__ = ["REFER_PACKAGE", "InDialogSender", "ReferTransfer", "is_refer_notify"]

REFER_PACKAGE = "refer"  # RFC 3515 §2.4.4: the Event package of the implicit subscription


class InDialogSender(Protocol):
    """Sends ``method`` in the call's dialog to its final response (challenges answered);
    the outcome and the deadline it waited to (``CallDialog.send_in_dialog``)."""

    async def __call__(
        self,
        method: str,
        *,
        extra: Sequence[tuple[str, str]] = (),
        contact: str | None = None,
        on_sent: Callable[[SipMessage], None] | None = None,
        deadline: Callable[[], float] | None = None,
    ) -> tuple[Outcome, float]: ...


class ReferTransfer:
    """One --refer-to transfer: the REFER, the NOTIFYs of its subscription, the outcome."""

    def __init__(self, state: CallState, refer_to: str) -> None:
        self.state = state
        self.transfer = state.result.transfer = Transfer(refer_to)
        self.wait = state.options.refer_wait or state.settings.timeout
        self.sent_at: float | None = None  # the first REFER
        self.cseqs: set[str] = set()  # of every REFER sent (the Event id of its NOTIFYs)
        self.answers: dict[int, tuple[int, str]] = {}  # NOTIFY CSeq -> our answer to it
        self.changed = asyncio.Event()

    # -- the REFER ------------------------------------------------------------------------

    async def run(self, send: InDialogSender, local: str, contact: str) -> None:
        """REFER (``local``: the dialog's From, whose URI is Referred-By), then wait for the
        outcome; it is on ``self.transfer`` and the errors on the call's result."""
        state = self.state
        state.bound = time.monotonic() + self.wait  # the set-up and the hold are over
        extra = [
            ("Refer-To", f"<{self.transfer.refer_to}>"),
            ("Referred-By", f"<{_uri_of(local)}>"),
        ]
        outcome, _ = await send(
            "REFER",
            extra=extra,
            contact=contact,
            on_sent=self._sent,
            deadline=lambda: min(time.monotonic() + state.settings.timeout, state.bound),
        )
        refused = self._refused(outcome)
        if refused is not None:
            answered = self.transfer.status is not None
            self._fail(refused, TransferOutcome.FAILED if answered else TransferOutcome.UNKNOWN)
            return
        await self._wait_outcome()
        self._conclude()

    def _sent(self, refer: SipMessage) -> None:
        cseq = refer.cseq
        if cseq is not None:
            self.cseqs.add(str(cseq.seq))
        if self.sent_at is None:
            self.sent_at = time.monotonic()

    def _refused(self, outcome: Outcome) -> tuple[str, str] | None:
        """None when the REFER was accepted (2xx); else the error (code, message)."""
        transfer, received = self.transfer, outcome.received
        if received is None:
            return "refer_failed", f"no final response to the REFER ({outcome.error or 'timeout'})"
        msg = received.message
        transfer.status, transfer.reason = msg.status, msg.reason
        if self.sent_at is not None:
            transfer.refer_ms = ms(received.time - self.sent_at)
        if msg.status is not None and 200 <= msg.status < 300:
            return None
        return "refer_refused", f"REFER refused: {transfer.status_text}"

    def _fail(
        self, error: tuple[str, str], outcome: TransferOutcome = TransferOutcome.FAILED
    ) -> None:
        code, message = error
        self.transfer.outcome, self.transfer.summary = outcome, message
        self.state.result.error(code, message)

    async def _wait_outcome(self) -> None:
        """Until the NOTIFY that ends the subscription or says the final answer, or the
        bound."""
        while not self._done():
            left = self.state.bound - time.monotonic()
            if left <= 0:
                return
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)

    def _done(self) -> bool:
        return any(_final(n) is not None or _terminated(n) for n in self.transfer.notifies)

    def _conclude(self) -> None:
        """The outcome and its summary, from the last final sipfrag; the error when there is
        none or it is not a 2xx."""
        transfer = self.transfer
        finals = [frag for frag in map(_final, transfer.notifies) if frag is not None]
        if not finals:
            self._fail(self._no_outcome(), TransferOutcome.UNKNOWN)
        elif finals[-1].succeeded:
            transfer.outcome, transfer.summary = TransferOutcome.SUCCEEDED, finals[-1].summary()
        else:
            self._fail(("transfer_failed", finals[-1].summary()))

    def _no_outcome(self) -> tuple[str, str]:
        """Why the transfer has no outcome: the error (code, message)."""
        ended = next((n for n in self.transfer.notifies if _terminated(n)), None)
        if ended is None:
            return "transfer_timeout", (
                f"no NOTIFY with the transfer's outcome within {self.wait:g} s"
            )
        state = ended.subscription_state
        reason = f" ({state.reason})" if state is not None and state.reason else ""
        return (
            "transfer_unknown",
            f"the transfer's subscription ended{reason} without a final answer",
        )

    def not_sent(self, why: str) -> None:
        """The call ended before the REFER could go."""
        self._fail(("refer_failed", why), TransferOutcome.UNKNOWN)

    # -- its NOTIFYs ----------------------------------------------------------------------

    @property
    def sent(self) -> bool:
        """Whether the REFER went (its NOTIFYs are looked for from then on)."""
        return self.sent_at is not None

    def on_notify(self, item: Received) -> tuple[int, str]:
        """Record an in-dialog NOTIFY of the refer package (``is_refer_notify``); our answer
        to it."""
        request = item.message
        event = parse_event(request.header("Event") or "")
        if event.id is not None and event.id not in self.cseqs:
            return 481, "Subscription Does Not Exist"
        try:
            cseq = None if request.cseq is None else request.cseq.seq
        except ParseError:
            cseq = None
        if cseq is not None and cseq in self.answers:
            return self.answers[cseq]
        record = self._record(item, cseq)
        self.transfer.notifies.append(record)
        answer = (200, "OK") if record.answered == 200 else (400, "Bad Request")
        if cseq is not None:
            self.answers[cseq] = answer
        self.changed.set()
        return answer

    def _record(self, item: Received, cseq: int | None) -> TransferNotify:
        request = item.message
        where = f"NOTIFY {len(self.transfer.notifies) + 1} of the REFER"
        record = TransferNotify(ms(item.time - (self.sent_at or item.time)), cseq, None, None)
        raw_state = request.header("Subscription-State")
        try:
            if raw_state is None:
                raise ParseError("no Subscription-State (RFC 6665 §8.2.3 requires it)")
            record.subscription_state = parse_subscription_state(raw_state)
        except ParseError as exc:
            record.error, record.answered = f"{where}: {exc.message}", 400
            self.state.result.warnings.append(record.error)
            return record
        try:
            record.sipfrag = _sipfrag(request)
        except ParseError as exc:
            record.error = f"{where}: {exc.message}"
            self.state.result.warnings.append(record.error)
        return record


def is_refer_notify(request: SipMessage) -> bool:
    """True when ``request`` is a NOTIFY whose Event is the refer package (RFC 3515 §2.4.4)."""
    if request.method != "NOTIFY":
        return False
    try:
        return parse_event(request.header("Event") or "").package == REFER_PACKAGE
    except ParseError:
        return False


def _sipfrag(notify: SipMessage) -> SipFrag:
    """The NOTIFY's message/sipfrag body (RFC 3515 §2.4.5); ParseError naming the fault."""
    kind = media_type(notify.content_type)
    if kind != SIPFRAG:
        raise ParseError(f"Content-Type {kind or 'missing'}, not {SIPFRAG} (RFC 3515 §2.4.5)")
    return parse_sipfrag(notify.body)


def _final(notify: TransferNotify) -> SipFrag | None:
    frag = notify.sipfrag
    return frag if frag is not None and frag.is_final else None


def _terminated(notify: TransferNotify) -> bool:
    state: SubscriptionState | None = notify.subscription_state
    return state is not None and state.state is SubState.TERMINATED


def _uri_of(name_addr: str) -> str:
    """The URI of a From value (``"x" <sip:a@b>;tag=1`` -> ``sip:a@b``)."""
    try:
        return str(parse_name_addr(name_addr).uri)
    except ParseError:
        return name_addr.split(";")[0].strip("<> ")
