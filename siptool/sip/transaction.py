"""RFC 3261 §17.1 client transactions, sans-I/O (after h11's ``_state.py``).

Everything that decides what a client transaction does lives in this file: the states, the
transitions (RFC 3261 Figures 5 and 6, written as tables), and the few irregular cases beside
them.  Nothing here opens a socket or reads a clock: the caller passes ``now`` in, sends the
bytes of every ``Send`` event, and calls ``on_timer`` at ``next_deadline()``.

    txn = ClientNonInviteTransaction(request, reliable=False, now=clock())
    events = txn.start()                    # [Send(request bytes)]
    ... txn.on_response(parse_message(datagram), clock())  -> [Provisional | Final | ...]
    ... txn.on_timer(clock())                              -> [Send | Timeout, Terminated]

Decisions:

* Timer A doubles without the T2 cap (RFC 3261 §17.1.1.2 says "2*T1, 4*T1, ..." for INVITE; the
  T2 cap is only in Figure 6's Timer E).  Timer E doubles up to T2 in TRYING and is T2 after a
  provisional (§17.1.2.2); the pending E is not rescheduled when the 1xx arrives, the next
  reset uses T2.
* A timer is reset from the time it fired (``now``), not from its nominal deadline, so a late
  wake-up does not cause a burst of catch-up retransmissions.
* When two timers fall due together, the timeout (B, F) fires first: no retransmission at the
  instant the transaction gives up.
* Timer D and K are 0 on reliable transports: COMPLETED is passed through within the same call
  (the final response and ``Terminated`` come out together).
* In PROCEEDING an INVITE transaction has no timer (Figure 5: Timer B only leaves CALLING); the
  TU bounds the ringing time itself (CANCEL, §9.1).
* 2xx to INVITE terminates the transaction at once (RFC 3261 §17.1.1.2; RFC 6026's Accepted
  state is not modelled).  A 2xx arriving later is reported to the TU, which owns that ACK
  (§13.2.2.4): ``Duplicate`` when it repeats the first 2xx's To tag, ``Final`` when it comes
  from another fork (new To tag).
* Responses whose status is outside 100-699 are ``Stray``: no class to treat them as
  (§8.1.3.2 maps unknown codes to x00 of their class, 7xx has none).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

from siptool.errors import ParseError
from siptool.sip.builders import MAX_FORWARDS, mandatory_headers
from siptool.sip.headers import split_comma_list
from siptool.sip.message import Header, SipMessage

__all__ = [
    "INVITE_TRANSITIONS",
    "NON_INVITE_TRANSITIONS",
    "ClientInviteTransaction",
    "ClientNonInviteTransaction",
    "Duplicate",
    "Event",
    "Final",
    "Provisional",
    "Send",
    "State",
    "Stray",
    "Terminated",
    "Timeout",
    "Timers",
    "TransportFailed",
    "Trigger",
    "build_ack",
    "build_cancel",
    "match_response",
]

# -- timers -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timers:
    """RFC 3261 §17.1.1.1 / Table 4 timer values, in seconds."""

    t1: float = 0.5  # RTT estimate
    t2: float = 4.0  # maximum retransmit interval for non-INVITE requests
    t4: float = 5.0  # maximum time a message stays in the network
    d_unreliable: float = 32.0  # Table 4: Timer D "> 32s for UDP"

    def __post_init__(self) -> None:
        if not (self.t1 > 0 and self.t2 >= self.t1 and self.t4 >= 0 and self.d_unreliable >= 0):
            raise ValueError(f"bad SIP timers {self!r} (need T1 > 0, T2 >= T1, T4 >= 0)")

    @property
    def a(self) -> float:
        """Initial retransmit interval on unreliable transports: Timer A (INVITE), and Timer E
        (non-INVITE), which Table 4 gives the same value."""
        return self.t1

    @property
    def b(self) -> float:
        """Transaction timeout: Timer B (INVITE), and Timer F (non-INVITE), the same 64*T1."""
        return 64 * self.t1

    # Table 4: Timer E starts as A does, and F is B's 64*T1.
    e = a
    f = b

    def d(self, reliable: bool) -> float:
        """Wait time for response retransmits after an INVITE's non-2xx final."""
        return 0.0 if reliable else self.d_unreliable

    def k(self, reliable: bool) -> float:
        """Wait time for response retransmits after a non-INVITE final."""
        return 0.0 if reliable else self.t4


# -- events -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Bytes to hand to the transport (the request, a retransmission, or an ACK)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class _WithResponse:
    """What the events about a received response share: the response."""

    msg: SipMessage


@dataclass(frozen=True, slots=True)
class Provisional(_WithResponse):
    """A 1xx for the TU."""


@dataclass(frozen=True, slots=True)
class Final(_WithResponse):
    """A final response for the TU (the first one; or a 2xx from another fork)."""


@dataclass(frozen=True, slots=True)
class Timeout:
    """Timer B or F fired: no final response in time (RFC 3261 §17.1.1.2, §17.1.2.2)."""

    timer: str


@dataclass(frozen=True, slots=True)
class Terminated:
    """The transaction reached TERMINATED; the TU can forget it."""


@dataclass(frozen=True, slots=True)
class TransportFailed:
    """The transport reported an error sending this transaction's request or ACK (§17.1.4)."""


@dataclass(frozen=True, slots=True)
class Stray(_WithResponse):
    """A response this transaction does not take: not matching (§17.1.3) or out of place."""

    reason: str


@dataclass(frozen=True, slots=True)
class Duplicate(_WithResponse):
    """A retransmission of the final response already reported (the ACK, if any, is re-sent)."""


Event = Send | Provisional | Final | Timeout | Terminated | TransportFailed | Stray | Duplicate


# -- states and transitions ---------------------------------------------------------------------


class State(enum.Enum):
    CALLING = "calling"  # INVITE only
    TRYING = "trying"  # non-INVITE only
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    TERMINATED = "terminated"


class Trigger(enum.Enum):
    PROVISIONAL = "1xx"
    SUCCESS = "2xx"
    FAILURE = "300-699"
    TIMER_A = "A"
    TIMER_B = "B"
    TIMER_D = "D"
    TIMER_E = "E"
    TIMER_F = "F"
    TIMER_K = "K"
    TRANSPORT_ERROR = "transport error"


_S = State
_T = Trigger

# RFC 3261 Figure 5 (INVITE client transaction).
INVITE_TRANSITIONS: dict[State, dict[Trigger, State]] = {
    _S.CALLING: {
        _T.TIMER_A: _S.CALLING,  # retransmit, A doubles
        _T.TIMER_B: _S.TERMINATED,  # timeout
        _T.TRANSPORT_ERROR: _S.TERMINATED,
        _T.PROVISIONAL: _S.PROCEEDING,
        _T.SUCCESS: _S.TERMINATED,
        _T.FAILURE: _S.COMPLETED,  # send ACK, start D
    },
    _S.PROCEEDING: {
        _T.PROVISIONAL: _S.PROCEEDING,
        _T.SUCCESS: _S.TERMINATED,
        _T.FAILURE: _S.COMPLETED,  # send ACK, start D
    },
    _S.COMPLETED: {
        _T.FAILURE: _S.COMPLETED,  # retransmitted final: re-send ACK
        _T.TIMER_D: _S.TERMINATED,
        _T.TRANSPORT_ERROR: _S.TERMINATED,
    },
    _S.TERMINATED: {},
}

# RFC 3261 Figure 6 (non-INVITE client transaction).
NON_INVITE_TRANSITIONS: dict[State, dict[Trigger, State]] = {
    _S.TRYING: {
        _T.TIMER_E: _S.TRYING,  # retransmit, E = min(2E, T2)
        _T.TIMER_F: _S.TERMINATED,  # timeout
        _T.TRANSPORT_ERROR: _S.TERMINATED,
        _T.PROVISIONAL: _S.PROCEEDING,
        _T.SUCCESS: _S.COMPLETED,  # start K
        _T.FAILURE: _S.COMPLETED,  # start K
    },
    _S.PROCEEDING: {
        _T.TIMER_E: _S.PROCEEDING,  # retransmit, E = T2
        _T.TIMER_F: _S.TERMINATED,
        _T.TRANSPORT_ERROR: _S.TERMINATED,
        _T.PROVISIONAL: _S.PROCEEDING,
        _T.SUCCESS: _S.COMPLETED,
        _T.FAILURE: _S.COMPLETED,
    },
    _S.COMPLETED: {
        # §17.1.2.2: COMPLETED buffers response retransmissions until Timer K.
        _T.SUCCESS: _S.COMPLETED,
        _T.FAILURE: _S.COMPLETED,
        _T.TIMER_K: _S.TERMINATED,
    },
    _S.TERMINATED: {},
}

# Irregular cases, handled in ``_ClientTransaction.on_response`` / ``on_transport_error``:
# * A response failing §17.1.3 matching never reaches the table: ``Stray``.
# * A response with no entry in the current state (a 1xx or 2xx after an INVITE's non-2xx
#   final, a 1xx in a non-INVITE COMPLETED) changes nothing: ``Stray`` with the reason.
# * After an INVITE is TERMINATED by a 2xx, further 2xx go to the TU (§13.2.2.4, see the module
#   docstring); anything else after TERMINATED is ``Stray``.
# * A transport error with no entry (PROCEEDING of an INVITE, where nothing is sent) is ignored.
# * Timer D / K of 0 (reliable transports) makes COMPLETED last no time at all.


@dataclass(frozen=True, slots=True)
class _Figure:
    """One client transaction diagram: its transitions, its first state, and which of its
    timers retransmits, which times out and which ends COMPLETED."""

    transitions: dict[State, dict[Trigger, State]]
    initial: State
    retransmit: Trigger
    timeout: Trigger
    completed_timer: Trigger


_FIGURE_5 = _Figure(INVITE_TRANSITIONS, _S.CALLING, _T.TIMER_A, _T.TIMER_B, _T.TIMER_D)
_FIGURE_6 = _Figure(NON_INVITE_TRANSITIONS, _S.TRYING, _T.TIMER_E, _T.TIMER_F, _T.TIMER_K)

# Which timers are timeouts: they win ties (module docstring).
_TIMEOUTS = frozenset({_T.TIMER_B, _T.TIMER_F})


def _classify(status: int | None) -> Trigger | None:
    if status is None or not 100 <= status <= 699:
        return None
    if status < 200:
        return _T.PROVISIONAL
    if status < 300:
        return _T.SUCCESS
    return _T.FAILURE


# -- matching (§17.1.3) -------------------------------------------------------------------------


def _mismatch(request: SipMessage, response: SipMessage) -> str | None:
    """Why ``response`` does not belong to ``request``'s client transaction, or None."""
    if response.is_request:
        return "not a response"
    try:
        theirs = response.top_via
        cseq = response.cseq
        ours = request.top_via
    except ParseError as exc:
        return f"malformed: {exc.message}"
    if theirs is None or theirs.branch is None:
        return "no Via branch"
    if ours is None or theirs.branch != ours.branch:
        # §8.2.6.2: a UAS copies Via verbatim, so the branch is compared exactly.
        return "Via branch does not match"
    if cseq is None or cseq.method != request.method:
        # §17.1.3: the method matters because a CANCEL shares the INVITE's branch.
        return "CSeq method does not match"
    return None


def match_response(request: SipMessage, response: SipMessage) -> bool:
    """True when ``response`` belongs to the client transaction of ``request`` (RFC 3261
    §17.1.3: same top-Via branch and same CSeq method).  Never raises."""
    return _mismatch(request, response) is None


# -- ACK and CANCEL -----------------------------------------------------------------------------


def _copy_headers(source: SipMessage, name: str) -> list[Header]:
    return [Header(h.name, h.value) for h in source.header_fields(name)]


def _first_via_value(request: SipMessage) -> str:
    if request.top_via is None:  # also validates it (ParseError when malformed)
        raise ValueError("request has no Via")
    # The top via-parm exactly as sent, not rebuilt: §9.1 and §17.1.1.3 want it identical,
    # and one header line may hold several via-parms (§7.3.1).
    value = request.header("Via") or ""
    return split_comma_list(value)[0]


def _derived_request(original: SipMessage, method: str, to_value: str) -> SipMessage:
    """The common part of ACK (§17.1.1.3) and CANCEL (§9.1): same Request-URI, Call-ID, From,
    CSeq number and Route; one Via equal to the original's top Via."""
    if original.method is None or original.request_uri is None:
        raise ValueError("needs a request")
    cseq = original.cseq
    call_id = original.call_id
    from_ = original.header("From")
    if cseq is None or call_id is None or from_ is None:
        raise ValueError("request lacks CSeq, Call-ID or From")
    headers = mandatory_headers(
        method,
        via=_first_via_value(original),
        max_forwards=original.header("Max-Forwards") or str(MAX_FORWARDS),
        from_=from_,
        to=to_value,
        call_id=call_id,
        seq=cseq.seq,
    )
    headers += _copy_headers(original, "Route")
    headers.append(Header("Content-Length", "0"))
    return SipMessage.request(method, original.request_uri, headers)


def build_ack(invite: SipMessage, response: SipMessage) -> SipMessage:
    """The ACK for a non-2xx final response, built by the transaction (RFC 3261 §17.1.1.3):
    To is the response's (with its tag), the rest comes from the INVITE."""
    to_value = response.header("To") or invite.header("To")
    if to_value is None:
        raise ValueError("no To header")
    return _derived_request(invite, "ACK", to_value)


def build_cancel(invite: SipMessage) -> SipMessage:
    """A CANCEL for ``invite`` (RFC 3261 §9.1).  Send it in its own non-INVITE transaction; it
    has the INVITE's branch, which is how the UAS matches it (§9.2)."""
    if invite.method != "INVITE":
        raise ValueError(f"only an INVITE can be cancelled, not {invite.method}")
    to_value = invite.header("To")
    if to_value is None:
        raise ValueError("INVITE has no To header")
    return _derived_request(invite, "CANCEL", to_value)


# -- the transactions ---------------------------------------------------------------------------


class _ClientTransaction:
    """What both client transactions share: timers, matching, the table-driven dispatch."""

    FIGURE: ClassVar[_Figure]

    def __init__(
        self,
        request: SipMessage,
        reliable: bool,
        timers: Timers | None = None,
        now: float = 0.0,
    ) -> None:
        refused = self._refuse(request.method)
        if refused is not None:
            raise ValueError(refused)
        if request.method is None:
            raise ValueError("a client transaction needs a request")
        via = request.top_via
        cseq = request.cseq
        if via is None or not via.branch:
            raise ValueError("the request's top Via needs a branch (RFC 3261 §8.1.1.7)")
        if cseq is None or cseq.method != request.method:
            raise ValueError("the request's CSeq method must equal its method (§8.1.1.5)")
        self.request = request
        self.reliable = reliable
        self.timers = timers or Timers()
        self.created = now
        self.branch: str = via.branch
        self.method: str = request.method
        self.state = self.FIGURE.initial
        self.final: SipMessage | None = None
        self.retransmissions = 0
        self.duplicates = 0
        self._wire = request.serialize()
        self._deadlines: dict[Trigger, float] = {}
        self._interval = self.timers.t1
        self._started = False

    @property
    def key(self) -> tuple[str, str]:
        """(branch, method): what §17.1.3 matches responses on, for the TU's lookup table."""
        return self.branch, self.method

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method} {self.branch} {self.state.name}>"

    # -- inputs ------------------------------------------------------------------------------

    def start(self, now: float | None = None) -> list[Event]:
        """Send the request and start the timers (defaults to the creation time)."""
        if self._started:
            raise RuntimeError("transaction already started")
        self._started = True
        now = self.created if now is None else now
        self._deadlines[self.FIGURE.timeout] = now + self.timers.b  # B and F are both 64*T1
        if not self.reliable:
            # RFC 3261 §17.1.1.2 / §17.1.2.2: retransmit only over unreliable transports.
            self._interval = self.timers.t1
            self._deadlines[self.FIGURE.retransmit] = now + self._interval
        return [Send(self._wire)]

    def next_deadline(self) -> float | None:
        """When ``on_timer`` must next be called, or None when no timer runs."""
        return min(self._deadlines.values(), default=None)

    def on_timer(self, now: float) -> list[Event]:
        """Fire every timer due at ``now``, earliest first."""
        events: list[Event] = []
        while self._deadlines:
            trigger, when = min(
                self._deadlines.items(), key=lambda item: (item[1], item[0] not in _TIMEOUTS)
            )
            if when > now:
                break
            del self._deadlines[trigger]
            events += self._transition(trigger, None, now)
        return events

    def on_response(self, msg: SipMessage, now: float) -> list[Event]:
        """Take a response received from the transport."""
        why = _mismatch(self.request, msg)
        if why is not None:
            return [Stray(msg, why)]
        trigger = _classify(msg.status)
        if trigger is None:
            return [Stray(msg, f"status {msg.status} outside 100-699")]
        if not self._started:
            return [Stray(msg, "transaction not started")]
        if self.state is State.TERMINATED:
            return self._after_terminated(msg, trigger)
        if trigger not in self.FIGURE.transitions[self.state]:
            return [Stray(msg, f"{trigger.value} response in state {self.state.name}")]
        return self._transition(trigger, msg, now)

    def on_transport_error(self, now: float) -> list[Event]:
        """The transport failed to send our request or ACK (RFC 3261 §17.1.4)."""
        if _T.TRANSPORT_ERROR not in self.FIGURE.transitions[self.state]:
            return []
        return self._transition(_T.TRANSPORT_ERROR, None, now)

    # -- machinery ---------------------------------------------------------------------------

    def _transition(self, trigger: Trigger, msg: SipMessage | None, now: float) -> list[Event]:
        old = self.state
        self.state = self.FIGURE.transitions[old][trigger]
        events = self._act(trigger, old, msg, now)
        if self.state is State.TERMINATED and old is not State.TERMINATED:
            self._deadlines.clear()
            events.append(Terminated())
        return events

    def _enter_completed(self, wait: float, now: float) -> None:
        self._deadlines.clear()
        if wait > 0:
            self._deadlines[self.FIGURE.completed_timer] = now + wait
        else:
            # Reliable transports: Timer D / K are zero, COMPLETED lasts no time.
            self.state = State.TERMINATED

    def _retransmit(self) -> Send:
        self.retransmissions += 1
        return Send(self._wire)

    def _act(self, trigger: Trigger, old: State, msg: SipMessage | None, now: float) -> list[Event]:
        """What a transition does besides changing the state.  The timers act alike in both
        transactions (Figures 5 and 6: retransmit, time out, leave COMPLETED); each handles
        the responses in its own way."""
        if trigger is self.FIGURE.retransmit:
            self._interval = self._next_interval()
            self._deadlines[trigger] = now + self._interval
            return [self._retransmit()]
        if trigger is self.FIGURE.timeout:
            return [Timeout(trigger.value)]
        if trigger is self.FIGURE.completed_timer:
            return []
        if trigger is _T.TRANSPORT_ERROR:
            return [TransportFailed()]
        assert msg is not None
        return self._take(trigger, old, msg, now)

    @staticmethod
    def _refuse(method: str | None) -> str | None:
        """Why this kind of transaction cannot carry a request of ``method``, or None."""
        raise NotImplementedError

    def _next_interval(self) -> float:
        """The retransmission interval after the one that just ended (Timer A or E)."""
        raise NotImplementedError

    def _take(self, trigger: Trigger, old: State, msg: SipMessage, now: float) -> list[Event]:
        """A response that moves the transaction (1xx, 2xx or 300-699)."""
        raise NotImplementedError

    def _after_terminated(self, msg: SipMessage, trigger: Trigger) -> list[Event]:
        return [Stray(msg, "transaction terminated")]


class ClientInviteTransaction(_ClientTransaction):
    """RFC 3261 §17.1.1 (Figure 5)."""

    FIGURE = _FIGURE_5

    ack: SipMessage | None = None  # the ACK of a non-2xx final (§17.1.1.3), once built
    _ack_wire = b""

    @staticmethod
    def _refuse(method: str | None) -> str | None:
        if method != "INVITE":
            return f"ClientInviteTransaction needs an INVITE, not {method}"
        return None

    def _next_interval(self) -> float:
        # §17.1.1.2: A is reset to twice its last value (no T2 cap).
        return 2 * self._interval

    def _take(self, trigger: Trigger, old: State, msg: SipMessage, now: float) -> list[Event]:
        if trigger is _T.PROVISIONAL:
            # Figure 5: PROCEEDING runs no timer; retransmissions stop.
            self._deadlines.clear()
            return [Provisional(msg)]
        if trigger is _T.SUCCESS:
            self.final = msg
            return [Final(msg)]
        # 300-699
        if old is State.COMPLETED:
            # §17.1.1.2: a retransmitted final gets the same ACK again, not the TU.
            self.duplicates += 1
            return [Send(self._ack_wire), Duplicate(msg)]
        self.final = msg
        self.ack = build_ack(self.request, msg)
        self._ack_wire = self.ack.serialize()
        self._enter_completed(self.timers.d(self.reliable), now)
        return [Send(self._ack_wire), Final(msg)]

    def _after_terminated(self, msg: SipMessage, trigger: Trigger) -> list[Event]:
        final = self.final
        if trigger is not _T.SUCCESS or final is None or _classify(final.status) is not _T.SUCCESS:
            return [Stray(msg, "transaction terminated")]
        try:
            theirs, first = msg.to, final.to
        except ParseError:
            return [Stray(msg, "2xx with malformed To")]
        if theirs is not None and first is not None and theirs.tag == first.tag:
            self.duplicates += 1
            return [Duplicate(msg)]
        # §13.2.2.4: a 2xx from another fork is a new dialog the TU must ACK (and may BYE).
        return [Final(msg)]


class ClientNonInviteTransaction(_ClientTransaction):
    """RFC 3261 §17.1.2 (Figure 6)."""

    FIGURE = _FIGURE_6

    @staticmethod
    def _refuse(method: str | None) -> str | None:
        if method in ("INVITE", "ACK"):
            # ACK has no client transaction at all (§17.1).
            return f"ClientNonInviteTransaction cannot carry {method}"
        return None

    def _next_interval(self) -> float:
        # §17.1.2.2: E doubles up to T2 in TRYING; in PROCEEDING it is reset to T2.
        if self.state is State.TRYING:
            return min(2 * self._interval, self.timers.t2)
        return self.timers.t2

    def _take(self, trigger: Trigger, old: State, msg: SipMessage, now: float) -> list[Event]:
        if trigger is _T.PROVISIONAL:
            return [Provisional(msg)]
        if old is State.COMPLETED:
            self.duplicates += 1
            return [Duplicate(msg)]
        self.final = msg
        self._enter_completed(self.timers.k(self.reliable), now)
        return [Final(msg)]
