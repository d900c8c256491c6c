"""A STUN client transaction (RFC 8489 §6.2.1 over UDP, §6.2.2 over TCP/TLS), sans I/O.

Modelled on h11: the object never touches a socket or a clock.  The caller passes ``now`` (any
monotonic clock, in seconds) and does what the returned events say:

    tx = StunClientTransaction(wire, tid, ("192.0.2.1", 3478))
    data, deadline = tx.start(now)          # send data; call on_timer(now) at deadline
    tx.on_timer(now)       -> Retransmit(data, next_deadline, sends) | TimedOut | Waiting
    tx.on_datagram(data, source, now) -> Response(message, rtt, ...) | Ignored(reason)

Everything that moves the state lives in this file; the legal moves are the table
``TRANSITIONS``.

Decisions:

* The schedule is anchored to the first transmission: with RTO 0.5 s and Rc 7 the request goes
  out at 0, 0.5, 1.5, 3.5, 7.5, 15.5 and 31.5 s and the transaction fails at 39.5 s (Rm 16).  A
  late timer does not push the later retransmissions back.
* ``deadline_cap`` is a duration from ``start`` (the user's ``--timeout``): the transaction times
  out then, even when a retransmission was due at that same instant.
* ``send_until`` (a duration from ``start``) ends the transmissions early while the transaction
  still waits for its deadline: a test with a fixed wait sends only while an answer could still
  come back inside it (nat-type's hairpin test).
* With ``echo``, the awaited answer is the request itself arriving (RFC 5780 §4.5: a Binding
  request sent to the client's own mapped address shows hairpinning when it comes round), so a
  request carrying our transaction id ends the transaction instead of being ignored.
* ``rtt`` is measured from the most recent transmission.  After a retransmission the response
  may answer an earlier copy (Karn's problem), so ``Response.retransmitted`` says to distrust it.
* A response whose FINGERPRINT is present but wrong is ignored (RFC 8489 §7.3: a corrupted
  message is discarded), as is a request or indication carrying our transaction id.
  ``rejection`` names what such an ignored datagram says about the peer that sent it ("bad
  FINGERPRINT", "wrong transaction id"): an answer that was rejected is not silence, and the
  caller reports it as such.
* Responses must come from the destination unless ``accept_from`` lists other addresses or
  ``accept_any_source`` is set (CHANGE-REQUEST answers come from the server's other address,
  RFC 5780 §4.4).
* ``on_timer`` called more than 1 ms before the deadline, or after the transaction ended, returns
  ``Waiting`` and changes nothing: event loops may fire timers a little early, or after a
  response already ended the transaction.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from siptool.addr import normalize_address
from siptool.errors import ParseError
from siptool.stun.message import StunClass, StunMessage, parse_stun

__all__ = [
    "DEFAULT_RC",
    "DEFAULT_RM",
    "DEFAULT_RTO",
    "DEFAULT_TI",
    "TRANSITIONS",
    "UNEXPECTED_SOURCE",
    "Ignored",
    "Response",
    "Retransmit",
    "StunClientTransaction",
    "TimedOut",
    "TransactionState",
    "Waiting",
    "rejection",
    "retransmission_schedule",
]

# RFC 8489 §6.2.1: RTO SHOULD start at 500 ms, Rc 7, Rm 16; §6.2.2: Ti 39.5 s.
DEFAULT_RTO = 0.5
DEFAULT_RC = 7
DEFAULT_RM = 16
DEFAULT_TI = 39.5

# How early a timer may fire and still count as due.
TIMER_SLACK = 0.001

# ``Ignored.reason`` of a response (our transaction id) from an address not accepted.
UNEXPECTED_SOURCE = "reply from unexpected address"

Address = tuple[str, int]


# ----------------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Retransmit:
    """Send ``data`` again now; call ``on_timer`` at ``next_deadline``."""

    data: bytes
    next_deadline: float
    sends: int


@dataclass(frozen=True, slots=True)
class TimedOut:
    """No response: ``sends`` transmissions over ``elapsed`` seconds."""

    sends: int
    elapsed: float
    capped: bool


@dataclass(frozen=True, slots=True)
class Waiting:
    """Nothing to do yet; ``next_deadline`` is None when the transaction has ended."""

    next_deadline: float | None


@dataclass(frozen=True, slots=True)
class Response:
    """The response (success or error class) that ends the transaction."""

    message: StunMessage
    source: Address
    rtt: float
    retransmitted: bool
    sends: int
    elapsed: float


@dataclass(frozen=True, slots=True)
class Ignored:
    """A datagram that is not (or no longer) this transaction's response."""

    reason: str


# ----------------------------------------------------------------------------- state machine


class TransactionState(enum.Enum):
    IDLE = "idle"
    WAITING = "waiting"
    COMPLETED = "completed"
    TIMED_OUT = "timed_out"


class _Trigger(enum.Enum):
    START = "start"
    RETRANSMIT = "retransmit"
    EXPIRE = "expire"
    RESPONSE = "response"


TRANSITIONS: dict[tuple[TransactionState, _Trigger], TransactionState] = {
    (TransactionState.IDLE, _Trigger.START): TransactionState.WAITING,
    (TransactionState.WAITING, _Trigger.RETRANSMIT): TransactionState.WAITING,
    (TransactionState.WAITING, _Trigger.EXPIRE): TransactionState.TIMED_OUT,
    (TransactionState.WAITING, _Trigger.RESPONSE): TransactionState.COMPLETED,
}


def retransmission_schedule(
    rto: float = DEFAULT_RTO, rc: int = DEFAULT_RC, rm: float = DEFAULT_RM
) -> tuple[list[float], float]:
    """Offsets of the ``rc`` transmissions from the first one, and of the final timeout.

    RFC 8489 §6.2.1: the interval starts at RTO and doubles after each transmission; after the
    last one the client waits Rm * RTO.
    """
    sends = [rto * (2**k - 1) for k in range(rc)]
    return sends, sends[-1] + rm * rto


# Ignored.reason -> what it says about the peer that sent the datagram.
_REJECTIONS = {
    "transaction id mismatch": "wrong transaction id",
    "FINGERPRINT does not match": "bad FINGERPRINT",
    "a request, not a response": "a request instead of a response",
    "a indication, not a response": "an indication instead of a response",
}


def rejection(event: Ignored) -> str | None:
    """Why an answer from the peer asked was rejected, or None when ``event`` is no such answer
    (a reply from elsewhere, a late or duplicate response)."""
    if event.reason.startswith("unparseable: "):
        return "not a valid STUN message (" + event.reason.removeprefix("unparseable: ") + ")"
    return _REJECTIONS.get(event.reason)


class StunClientTransaction:
    """One request awaiting its response, with RFC 8489 §6.2 retransmissions."""

    def __init__(
        self,
        request_bytes: bytes,
        transaction_id: bytes,
        destination: tuple[str, int],
        *,
        rto: float = DEFAULT_RTO,
        rc: int = DEFAULT_RC,
        rm: float = DEFAULT_RM,
        reliable: bool = False,
        ti: float = DEFAULT_TI,
        deadline_cap: float | None = None,
        accept_from: Iterable[tuple[str, int]] | None = None,
        accept_any_source: bool = False,
        send_until: float | None = None,
        echo: bool = False,
    ) -> None:
        if rto <= 0 or rc < 1 or rm <= 0 or ti <= 0:
            raise ValueError("rto, rc, rm and ti must be positive")
        if deadline_cap is not None and deadline_cap < 0:
            raise ValueError("deadline_cap must not be negative")
        self.request = bytes(request_bytes)
        self.transaction_id = bytes(transaction_id)
        self.destination = destination
        self.reliable = reliable
        self.deadline_cap = deadline_cap
        self.accept_any_source = accept_any_source
        self.echo = echo
        self._accepted = {normalize_address(destination)}
        self._accepted.update(normalize_address(a) for a in accept_from or ())
        self._offsets, self._final = (
            ([0.0], ti) if reliable else retransmission_schedule(rto, rc, rm)
        )
        if send_until is not None:
            self._offsets = [0.0] + [o for o in self._offsets[1:] if o < send_until]
        self.state = TransactionState.IDLE
        self.sends = 0
        self._started = 0.0
        self._last_send = 0.0
        self._cap = math.inf
        self._deadline: float | None = None

    # -- the state machine --------------------------------------------------------------

    def _move(self, trigger: _Trigger) -> None:
        target = TRANSITIONS.get((self.state, trigger))
        if target is None:
            raise RuntimeError(f"STUN transaction cannot {trigger.value} in state {self.state}")
        self.state = target

    def _scheduled_deadline(self) -> float:
        if self.sends < len(self._offsets):
            scheduled = self._started + self._offsets[self.sends]
        else:
            scheduled = self._started + self._final
        return min(scheduled, self._cap)

    @property
    def deadline(self) -> float | None:
        """When ``on_timer`` must be called next; None before start and after the end."""
        return self._deadline

    @property
    def started(self) -> float:
        """The ``now`` of the first transmission (0 before ``start``)."""
        return self._started

    @property
    def done(self) -> bool:
        return self.state in (TransactionState.COMPLETED, TransactionState.TIMED_OUT)

    # -- inputs ---------------------------------------------------------------------------

    def start(self, now: float) -> tuple[bytes, float]:
        """The first transmission: bytes to send now, and when to call ``on_timer``."""
        self._move(_Trigger.START)
        self._started = self._last_send = now
        if self.deadline_cap is not None:
            self._cap = now + self.deadline_cap
        self.sends = 1
        self._deadline = self._scheduled_deadline()
        return self.request, self._deadline

    def on_timer(self, now: float) -> Retransmit | TimedOut | Waiting:
        """The deadline passed: retransmit, or give up."""
        if self.state is not TransactionState.WAITING or self._deadline is None:
            return Waiting(None)
        if now < self._deadline - TIMER_SLACK:
            return Waiting(self._deadline)
        capped = self._deadline >= self._cap
        if capped or self.sends >= len(self._offsets):
            self._move(_Trigger.EXPIRE)
            self._deadline = None
            return TimedOut(self.sends, now - self._started, capped)
        self._move(_Trigger.RETRANSMIT)
        self.sends += 1
        self._last_send = now
        self._deadline = self._scheduled_deadline()
        return Retransmit(self.request, self._deadline, self.sends)

    def on_datagram(self, data: bytes, source: tuple[Any, ...], now: float) -> Response | Ignored:
        """A datagram arrived on the transaction's socket from ``source`` (as recvfrom gives)."""
        try:
            message = parse_stun(data)
        except ParseError as exc:
            return Ignored(f"unparseable: {exc}")
        if message.transaction_id != self.transaction_id:
            return Ignored("transaction id mismatch")
        echoed = self.echo and message.msg_class is StunClass.REQUEST
        if message.msg_class in (StunClass.REQUEST, StunClass.INDICATION) and not echoed:
            return Ignored(f"a {message.msg_class.label}, not a response")
        if not self.accept_any_source and normalize_address(source) not in self._accepted:
            return Ignored(UNEXPECTED_SOURCE)
        if message.fingerprint_ok is False:
            return Ignored("FINGERPRINT does not match")
        if self.state is TransactionState.IDLE:
            return Ignored("transaction not started")
        if self.state is TransactionState.TIMED_OUT:
            return Ignored("response after the transaction timed out")
        if self.state is TransactionState.COMPLETED:
            return Ignored("duplicate response after completion")
        self._move(_Trigger.RESPONSE)
        self._deadline = None
        return Response(
            message=message,
            source=normalize_address(source),
            rtt=now - self._last_send,
            retransmitted=self.sends > 1,
            sends=self.sends,
            elapsed=now - self._started,
        )
