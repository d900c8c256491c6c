"""Glue between the pure RFC 3261 §17.1 client transactions and one asyncio ``SipFlow``.

One task per flow reads what arrives, hands each response to the transaction whose (branch,
CSeq method) it carries (§17.1.3), fires the transactions' timers when due, and sends what they
ask to send.  Commands see each transaction as a ``PendingTransaction`` they can await events
from; requests the peer sends us (a BYE ending the test call, a NOTIFY) are queued for them.
Responses no transaction takes are counted as strays, never acted on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from siptool.errors import TransportError
from siptool.net.sip_transport import Received, SipFlow
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


@dataclass
class Outcome:
    """What a command waits for: a provisional, the final, a timeout or a transport failure."""

    kind: str  # "provisional", "final", "timeout", "transport_error"
    received: Received | None = None
    error: str | None = None

    @property
    def message(self) -> SipMessage | None:
        return None if self.received is None else self.received.message


@dataclass
class PendingTransaction:
    transaction: ClientInviteTransaction | ClientNonInviteTransaction
    sent_at: float  # monotonic time of the first transmission
    events: asyncio.Queue[Outcome] = field(default_factory=asyncio.Queue)
    final: Received | None = None
    provisionals: list[Received] = field(default_factory=list)
    done: bool = False

    @property
    def retransmissions(self) -> int:
        return self.transaction.retransmissions

    async def next(self, deadline: float) -> Outcome:
        """The next outcome; a "timeout" outcome when ``deadline`` (monotonic) passes first
        (the user's --timeout, which may be shorter than Timer B/F)."""
        remaining = deadline - time.monotonic()
        if remaining > 0:
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(self.events.get(), remaining)
        return Outcome("timeout", error="no answer before the timeout")

    async def final_outcome(self, deadline: float) -> Outcome:
        """Skip provisionals; the final response, the timeout or the transport error."""
        while True:
            outcome = await self.next(deadline)
            if outcome.kind != "provisional":
                return outcome

    def rtt_ms(self, received: Received) -> float:
        return round((received.time - self.sent_at) * 1000.0, 3)


class SipClient:
    """Client transactions over one flow."""

    def __init__(self, flow: SipFlow, timers: Timers | None = None) -> None:
        self.flow = flow
        self.timers = timers or Timers()
        self.pending: dict[tuple[str, str], PendingTransaction] = {}
        self.requests: asyncio.Queue[Received] = asyncio.Queue()
        self.strays = 0
        self.duplicates = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._error: TransportError | None = None

    def start(self, request: SipMessage) -> PendingTransaction:
        """Send ``request`` in a new client transaction."""
        now = time.monotonic()
        txn: ClientInviteTransaction | ClientNonInviteTransaction
        if request.method == "INVITE":
            txn = ClientInviteTransaction(request, self.flow.reliable, self.timers, now)
        else:
            txn = ClientNonInviteTransaction(request, self.flow.reliable, self.timers, now)
        pending = PendingTransaction(txn, now)
        self.pending[txn.key] = pending
        if self._error is not None:
            pending.events.put_nowait(Outcome("transport_error", error=self._error.message))
            return pending
        self._apply(pending, txn.start(now))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        self._wake.set()
        return pending

    def send_raw(self, message: SipMessage) -> None:
        """Send outside any transaction: an ACK for a 2xx (RFC 3261 §13.2.2.4), a response."""
        self.flow.send(message.serialize())

    def _apply(self, pending: PendingTransaction, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, Send):
                try:
                    self.flow.send(event.data)
                except TransportError as exc:
                    pending.events.put_nowait(Outcome("transport_error", error=exc.message))
            elif isinstance(event, Provisional):
                received = self._received_for(event.msg)
                pending.provisionals.append(received)
                pending.events.put_nowait(Outcome("provisional", received))
            elif isinstance(event, Final):
                received = self._received_for(event.msg)
                if pending.final is None:
                    pending.final = received
                pending.events.put_nowait(Outcome("final", received))
            elif isinstance(event, Timeout):
                pending.events.put_nowait(
                    Outcome("timeout", error=f"no final response (Timer {event.timer})")
                )
            elif isinstance(event, Stray):
                self.strays += 1
            elif isinstance(event, Duplicate):
                self.duplicates += 1
            elif isinstance(event, Terminated):
                pending.done = True
                self.pending.pop(pending.transaction.key, None)

    _last: Received | None = None

    def _received_for(self, msg: SipMessage) -> Received:
        last = self._last
        if last is not None and last.message is msg:
            return last
        return Received(msg, msg.serialize(), time.monotonic(), self.flow.remote_text)

    def _dispatch(self, item: Received) -> None:
        msg = item.message
        if msg.method is not None:
            self.requests.put_nowait(item)
            return
        via = None
        with contextlib.suppress(Exception):
            via = msg.top_via
        cseq = None
        with contextlib.suppress(Exception):
            cseq = msg.cseq
        if via is None or cseq is None or via.branch is None:
            self.strays += 1
            return
        pending = self.pending.get((via.branch, cseq.method))
        if pending is None:
            # RFC 3261 §17.1.3: no transaction matches; not ours to act on.
            self.strays += 1
            return
        self._last = item
        self._apply(pending, pending.transaction.on_response(msg, item.time))
        self._last = None

    async def _run(self) -> None:
        flow = self.flow
        while True:
            deadlines = [d for p in self.pending.values() if (d := p.transaction.next_deadline())]
            wait = (min(deadlines) - time.monotonic()) if deadlines else 3600.0
            getter = asyncio.ensure_future(flow.inbox.get())
            waker = asyncio.ensure_future(self._wake.wait())
            done, _ = await asyncio.wait(
                {getter, waker}, timeout=max(0.0, wait), return_when=asyncio.FIRST_COMPLETED
            )
            waker.cancel()
            if getter in done:
                item = getter.result()
                if isinstance(item, TransportError):
                    self._error = item
                    for pending in list(self.pending.values()):
                        pending.events.put_nowait(Outcome("transport_error", error=item.message))
                else:
                    self._dispatch(item)
            else:
                getter.cancel()
            self._wake.clear()
            now = time.monotonic()
            for pending in list(self.pending.values()):
                deadline = pending.transaction.next_deadline()
                if deadline is not None and deadline <= now:
                    self._apply(pending, pending.transaction.on_timer(now))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.flow.close()
