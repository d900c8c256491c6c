"""Glue between the pure RFC 3261 §17.1 client transactions and one asyncio ``SipFlow``.

One task per flow reads what arrives, hands each response to the transaction whose (branch,
CSeq method) it carries (§17.1.3), fires the transactions' timers when due, and sends what they
ask to send.  Commands see each transaction as a ``PendingTransaction`` they can await events
from; requests the peer sends us (a BYE ending the test call, a NOTIFY) are queued for them.
Responses no transaction takes are counted as strays, never acted on.

A message the flow had to drop (too large for the stream framer, unparseable) is never taken
as an answer either, but it is not forgotten: a final response that plainly answers a waiting
transaction (its top Via branch and CSeq method, read leniently) ends that transaction at once
with a "dropped" outcome naming the message and its size, and any other dropped message is
named in the timeout a transaction may come to.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from siptool.errors import ParseError, TransportError
from siptool.net.sip_transport import Dropped, Received, SipFlow
from siptool.sip.message import SipMessage
from siptool.sip.transaction import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    Duplicate,
    Event,
    Final,
    Provisional,
    Send,
    Stray,
    Terminated,
    Timeout,
    Timers,
)


class OutcomeKind(enum.Enum):
    PROVISIONAL = "provisional"
    FINAL = "final"
    TIMEOUT = "timeout"  # Timer B/F fired, or the command's deadline passed
    TRANSPORT_ERROR = "transport_error"
    DROPPED = "dropped"  # the final response came but could not be read (``error`` says why)


@dataclass
class Outcome:
    """What a command waits for: a provisional, the final, a timeout or a transport failure."""

    kind: OutcomeKind
    received: Received | None = None
    error: str | None = None
    dropped: Dropped | None = None  # the unreadable final response of a "dropped" outcome

    @property
    def message(self) -> SipMessage | None:
        return None if self.received is None else self.received.message

    @property
    def error_code(self) -> str:
        """The JSON ``errors[].code`` of an outcome without a readable final response."""
        return _ERROR_CODES.get(self.kind, "transport_error")


_ERROR_CODES = {OutcomeKind.TIMEOUT: "timeout", OutcomeKind.DROPPED: "dropped_message"}


class _Outcomes:
    """A tiny single-consumer queue of outcomes.  asyncio.Queue plus wait_for would wrap every
    wait in a new Task; a thousand-target ping makes thousands of waits."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[Outcome] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, outcome: Outcome) -> None:
        self._items.append(outcome)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    async def get(self, deadline: float) -> Outcome | None:
        """The next outcome, or None once ``deadline`` (monotonic) has passed."""
        while not self._items:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(remaining, _wake, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        return self._items.popleft()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


@dataclass
class PendingTransaction:
    transaction: ClientInviteTransaction | ClientNonInviteTransaction
    sent_at: float  # monotonic time of the first transmission
    # The client's log of dropped messages (shared): named when this transaction times out.
    dropped: list[Dropped] = field(default_factory=list)
    events: _Outcomes = field(default_factory=_Outcomes)
    final: Received | None = None
    provisionals: list[Received] = field(default_factory=list)
    done: bool = False

    @property
    def retransmissions(self) -> int:
        return self.transaction.retransmissions

    async def next(self, deadline: float) -> Outcome:
        """The next outcome; a "timeout" outcome when ``deadline`` (monotonic) passes first
        (the user's --timeout, which may be shorter than Timer B/F)."""
        outcome = await self.events.get(deadline)
        if outcome is None:
            return Outcome(
                OutcomeKind.TIMEOUT, error=self.with_dropped("no answer before the timeout")
            )
        return outcome

    def with_dropped(self, text: str) -> str:
        """``text``, and the messages dropped since this transaction began if any were: they
        may have been its answer."""
        since = [d for d in self.dropped if d.time >= self.sent_at]
        if not since:
            return text
        more = f" (and {len(since) - 1} more)" if len(since) > 1 else ""
        return f"{text}; {since[-1].describe()}{more}"

    async def final_outcome(self, deadline: float) -> Outcome:
        """Skip provisionals; the final response, the timeout or the transport error."""
        while True:
            outcome = await self.next(deadline)
            if outcome.kind is not OutcomeKind.PROVISIONAL:
                return outcome

    def rtt_ms(self, received: Received) -> float:
        return round((received.time - self.sent_at) * 1000.0, 3)


class SipClient:
    """Client transactions over one flow.

    Event driven, no polling task: the flow calls ``_on_item`` for every message or failure it
    gets, and each transaction's next deadline is a ``loop.call_at`` timer that is re-armed
    whenever the transaction's timers change.
    """

    def __init__(self, flow: SipFlow, timers: Timers | None = None) -> None:
        self.flow = flow
        self.timers = timers or Timers()
        self.pending: dict[tuple[str, str], PendingTransaction] = {}
        self.requests: asyncio.Queue[Received] = asyncio.Queue()
        self.strays = 0
        self.duplicates = 0
        self.dropped: list[Dropped] = []  # the last few, for the timeout messages
        self.dropped_count = 0
        # Offered each response no transaction takes; True means the TU dealt with it (a 2xx
        # retransmitted after the INVITE transaction ended, whose ACK the TU owns, RFC 3261
        # §13.2.2.4).  Unhandled ones count as strays.
        self.on_unmatched_response: Callable[[Received], bool] | None = None
        self._error: TransportError | None = None
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._loop = asyncio.get_running_loop()
        self._last: Received | None = None
        # Whatever arrived before this client existed is handled first.
        while not flow.inbox.empty():
            self._on_item(flow.inbox.get_nowait())
        flow.on_item = self._on_item

    def start(self, request: SipMessage) -> PendingTransaction:
        """Send ``request`` in a new client transaction."""
        now = time.monotonic()
        txn: ClientInviteTransaction | ClientNonInviteTransaction
        if request.method == "INVITE":
            txn = ClientInviteTransaction(request, self.flow.reliable, self.timers, now)
        else:
            txn = ClientNonInviteTransaction(request, self.flow.reliable, self.timers, now)
        pending = PendingTransaction(txn, now, self.dropped)
        self.pending[txn.key] = pending
        if self._error is not None:
            pending.events.put_nowait(
                Outcome(OutcomeKind.TRANSPORT_ERROR, error=self._error.message)
            )
            return pending
        self._apply(pending, txn.start(now))
        return pending

    def send_raw(self, message: SipMessage) -> None:
        """Send outside any transaction: an ACK for a 2xx (RFC 3261 §13.2.2.4), a response."""
        self.flow.send(message.serialize())

    def _arm(self, pending: PendingTransaction) -> None:
        key = pending.transaction.key
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        deadline = pending.transaction.next_deadline()
        if deadline is None or pending.done:
            return
        # loop.time() and time.monotonic() share the clock (the default event loop's time()).
        self._timers[key] = self._loop.call_at(deadline, self._fire, pending)

    def _fire(self, pending: PendingTransaction) -> None:
        self._timers.pop(pending.transaction.key, None)
        self._apply(pending, pending.transaction.on_timer(time.monotonic()))

    def _apply(self, pending: PendingTransaction, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, Send):
                try:
                    self.flow.send(event.data)
                except TransportError as exc:
                    pending.events.put_nowait(
                        Outcome(OutcomeKind.TRANSPORT_ERROR, error=exc.message)
                    )
            elif isinstance(event, Provisional):
                received = self._received_for(event.msg)
                pending.provisionals.append(received)
                pending.events.put_nowait(Outcome(OutcomeKind.PROVISIONAL, received))
            elif isinstance(event, Final):
                received = self._received_for(event.msg)
                if pending.final is None:
                    pending.final = received
                pending.events.put_nowait(Outcome(OutcomeKind.FINAL, received))
            elif isinstance(event, Timeout):
                error = pending.with_dropped(f"no final response (Timer {event.timer})")
                pending.events.put_nowait(Outcome(OutcomeKind.TIMEOUT, error=error))
            elif isinstance(event, Stray):
                self.strays += 1
            elif isinstance(event, Duplicate):
                self.duplicates += 1
            elif isinstance(event, Terminated):
                pending.done = True
                self.pending.pop(pending.transaction.key, None)
        self._arm(pending)

    def _received_for(self, msg: SipMessage) -> Received:
        last = self._last
        if last is not None and last.message is msg:
            return last
        return Received(msg, msg.serialize(), time.monotonic(), self.flow.remote_text)

    def _on_dropped(self, item: Dropped) -> None:
        self.dropped_count += 1
        self.dropped.append(item)
        if len(self.dropped) > 8:
            del self.dropped[0]
        if not item.final or item.branch is None or item.cseq_method is None:
            return
        pending = self.pending.get((item.branch, item.cseq_method))
        if pending is None or pending.final is not None:
            return
        # Its answer came and cannot be read: waiting on would only bring its retransmissions.
        # The transaction ends here (no ACK can be built for a response not read).
        pending.done = True
        self.pending.pop(pending.transaction.key, None)
        handle = self._timers.pop(pending.transaction.key, None)
        if handle is not None:
            handle.cancel()
        pending.events.put_nowait(Outcome(OutcomeKind.DROPPED, error=item.describe(), dropped=item))

    def _on_item(self, item: Received | TransportError | Dropped) -> None:
        if isinstance(item, Dropped):
            self._on_dropped(item)
            return
        if isinstance(item, TransportError):
            self._error = item
            for waiting in list(self.pending.values()):
                waiting.events.put_nowait(Outcome(OutcomeKind.TRANSPORT_ERROR, error=item.message))
            return
        msg = item.message
        if msg.method is not None:
            self.requests.put_nowait(item)
            return
        via = None
        with contextlib.suppress(ParseError):
            via = msg.top_via
        cseq = None
        with contextlib.suppress(ParseError):
            cseq = msg.cseq
        if via is None or cseq is None or via.branch is None:
            self.strays += 1
            return
        pending = self.pending.get((via.branch, cseq.method))
        if pending is None:
            # RFC 3261 §17.1.3: no transaction matches; not ours to act on.
            hook = self.on_unmatched_response
            if hook is None or not hook(item):
                self.strays += 1
            return
        self._last = item
        try:
            self._apply(pending, pending.transaction.on_response(msg, item.time))
        finally:
            self._last = None

    async def close(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self.flow.on_item = None
        self.flow.close()
