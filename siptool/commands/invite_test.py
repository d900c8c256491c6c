"""`siptool invite-test`: what goes into a test call, what comes out, and the verdicts.

``InviteOptions`` in, ``CallResult`` out; the call itself (INVITE, CANCEL, ACK, hold, BYE) is
``siptool.commands.invite_call``, whose ``run_invite`` ends with ``judge`` and
``nagios_verdict`` from here.  The result object feeds every renderer; nothing here prints.

Decisions:

- The call passes when it is answered (or its final response is one of --expect) and the BYE
  succeeds; with --rtp, also when audio comes back.  A ring test (--ring-timeout) passes when
  it rang (an 18x) and the CANCEL ended it (RFC 3261 §9.1).
- A --password-file siptool cannot read when a challenge asks for it, and a local address or
  port it cannot bind, mean siptool could not run the check: exit 3, Nagios UNKNOWN.
- --nagios: the -w/-c thresholds apply to the PDD (post-dial delay: the time to the first
  18x, else to the final response); a warning about the call is a Nagios WARNING.
- --refer-to: the call also needs the transfer to succeed, the final message/sipfrag of the
  REFER's NOTIFYs a 2xx (RFC 3515 §2.4.5); the transfer itself is commands/invite_refer.py.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from siptool.commands.nagios import (
    NagiosState,
    NagiosVerdict,
    Thresholds,
    ms_or_unknown,
    unknown,
    verdict,
)
from siptool.commands.result import CheckResult
from siptool.commands.sip_common import Expectation, NatView, Reached, SipSettings
from siptool.errors import ExitCode, InputError, SiptoolError
from siptool.net.rtp import RtpStats, RtpVerdict
from siptool.sip.auth import AuthReport
from siptool.sip.event_packages import SubscriptionState
from siptool.sip.sdp_offer import AnswerSummary, Codec
from siptool.sip.sipfrag import SipFrag
from siptool.sip.target import Target

__all__ = [
    "ByeOutcome",
    "CallEvent",
    "CallResult",
    "CancelReason",
    "Direction",
    "InviteOptions",
    "Timings",
    "Transfer",
    "TransferNotify",
    "TransferOutcome",
    "judge",
    "nagios_verdict",
]

# The error codes that fail an answered call (its set-up went well, its end did not).
_ENDING_FAILURES = ("bye_failed", "dialog_error", "transport_error")


@dataclass(frozen=True)
class InviteOptions:
    target: Target
    settings: SipSettings
    codecs: tuple[Codec, ...]
    hold: float = 2.0
    ring_timeout: float | None = None
    expect: Expectation | None = None
    rtp: bool = False
    from_user: str | None = None
    to_user: str | None = None
    media_address: str | None = None
    # Asked on the first 401/407 only, so an unchallenged call never prompts; it raises
    # ``InputError`` for a --password-file it cannot read.
    password: Callable[[], str | None] | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    # --refer-to: REFER the answered call there (RFC 3515) once the hold is over; the wait for
    # the NOTIFY with the outcome is --refer-wait, else --timeout.
    refer_to: str | None = None
    refer_wait: float | None = None

    @property
    def contact_user(self) -> str:
        """The user part of From and Contact."""
        return self.from_user or self.settings.user or "siptool"


class Direction(enum.Enum):
    SEND = "send"
    RECV = "recv"


class CancelReason(enum.Enum):
    """Why the INVITE was CANCELled (RFC 3261 §9.1): the JSON ``cancel_reason``."""

    RING_TIMEOUT = "ring-timeout"  # a ring test: --ring-timeout passed while it rang
    TIMEOUT = "timeout"  # --timeout passed while it rang


class ByeOutcome(enum.Enum):
    """How an answered call ended."""

    NOT_ENDED = "not-ended"  # no BYE answered: none sent, or ours got no final response
    ANSWERED = "answered"  # our BYE got a final response (``CallResult.bye_response``)
    REMOTE = "remote"  # the far end hung up first, and we answered its BYE


@dataclass
class Timings:
    """Milliseconds from sending the INVITE that got them (the last one, after auth)."""

    trying: float | None = None
    ringing: float | None = None
    early_media: float | None = None
    answer: float | None = None
    final: float | None = None
    pdd: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return {
            "trying": self.trying,
            "ringing": self.ringing,
            "early_media": self.early_media,
            "answer": self.answer,
            "final": self.final,
            "pdd": self.pdd,
        }


@dataclass
class CallEvent:
    """One line of the call's ladder: what went which way, when (ms from the first INVITE)."""

    t_ms: float
    direction: Direction
    what: str

    def to_dict(self) -> dict[str, Any]:
        return {"t_ms": self.t_ms, "direction": self.direction.value, "message": self.what}


class TransferOutcome(enum.Enum):
    """What the REFER's NOTIFYs said of the transfer (the JSON ``transfer.outcome``)."""

    SUCCEEDED = "succeeded"  # the last sipfrag is a 2xx: the target answered
    FAILED = "failed"  # a final sipfrag of 3xx-6xx, or the REFER refused
    UNKNOWN = "unknown"  # no final sipfrag came (or none could be read)


@dataclass
class TransferNotify:
    """One NOTIFY of the REFER's implicit subscription (RFC 3515 §2.4.4), as it came."""

    time_ms: float  # from the (first) REFER
    cseq: int | None
    subscription_state: SubscriptionState | None
    sipfrag: SipFrag | None
    error: str | None = None  # why its Subscription-State or body could not be read
    answered: int = 200  # our answer to it

    @property
    def summary(self) -> str | None:
        return None if self.sipfrag is None else self.sipfrag.summary()

    def to_dict(self) -> dict[str, Any]:
        state, frag = self.subscription_state, self.sipfrag
        return {
            "time_ms": self.time_ms,
            "cseq": self.cseq,
            "subscription_state": None if state is None else state.to_dict(),
            "sipfrag": None if frag is None else {"status": frag.status, "reason": frag.reason},
            "summary": self.summary,
            "error": self.error,
            "answered": self.answered,
        }


@dataclass
class Transfer:
    """A --refer-to transfer: the REFER's final response and every NOTIFY it brought."""

    refer_to: str
    status: int | None = None  # the REFER's final response (202 expected, RFC 3515 §2.4.2)
    reason: str | None = None
    refer_ms: float | None = None  # the REFER's round trip
    notifies: list[TransferNotify] = field(default_factory=list)
    outcome: TransferOutcome = TransferOutcome.UNKNOWN
    summary: str | None = None  # "transfer target answered 200 OK"

    @property
    def status_text(self) -> str | None:
        """``202 Accepted``, or None before the REFER's final response."""
        if self.status is None:
            return None
        return f"{self.status} {self.reason or ''}".rstrip()

    def to_dict(self) -> dict[str, Any]:
        return {
            "refer_to": self.refer_to,
            "status": self.status,
            "reason": self.reason,
            "refer_ms": self.refer_ms,
            "notifies": [n.to_dict() for n in self.notifies],
            "outcome": self.outcome.value,
            "summary": self.summary,
        }


@dataclass
class CallResult(Reached, CheckResult):
    call_id: str | None = None
    final_status: int | None = None
    final_reason: str | None = None
    answered: bool = False
    rang: bool = False  # a provisional other than 100 came
    timings: Timings = field(default_factory=Timings)
    cancelled: bool = False
    cancel_reason: CancelReason | None = None
    cancel_status: int | None = None
    bye: ByeOutcome = ByeOutcome.NOT_ENDED
    bye_response: int | None = None  # the status of the last response to our BYE
    hold_ms: float | None = None
    ack_retransmissions: int = 0
    sdp_answer: AnswerSummary | None = None
    rtp: RtpStats | None = None
    warnings: list[str] = field(default_factory=list)
    nat: NatView = field(default_factory=NatView)
    auth: AuthReport | None = None
    server: str | None = None
    events: list[CallEvent] = field(default_factory=list)
    # With --refer-to (the JSON's ``transfer``, a key only then); the REFER went if the call
    # was answered.
    transfer: Transfer | None = None
    passed: bool = False
    exit_code: ExitCode = field(default=ExitCode.FAILED, kw_only=True)  # OK once it passed

    def error(self, code: str, message: str) -> None:
        self.errors.append(SiptoolError(message, code=code))

    @property
    def bye_status(self) -> int | str | None:
        """The JSON ``bye_status``: the BYE's status, "remote" when the far end hung up,
        null when no BYE was answered."""
        if self.bye is ByeOutcome.REMOTE:
            return "remote"
        return self.bye_response if self.bye is ByeOutcome.ANSWERED else None

    @property
    def rtp_ok(self) -> bool | None:
        """Whether the --rtp media check found audio coming back (None: no check made)."""
        return None if self.rtp is None else self.rtp.verdict is RtpVerdict.OK

    @property
    def final_text(self) -> str | None:
        """``486 Busy Here``, or None before a final response."""
        if self.final_status is None:
            return None
        return f"{self.final_status} {self.final_reason or ''}".rstrip()

    def to_dict(self) -> dict[str, Any]:
        auth = self.auth or AuthReport(None, None, None, 0)
        return {
            "target": self.target,
            "resolved": self.resolved,
            "call_id": self.call_id,
            "final_status": self.final_status,
            "final_reason": self.final_reason,
            "answered": self.answered,
            "timings_ms": self.timings.to_dict(),
            "cancelled": self.cancelled,
            "cancel_reason": None if self.cancel_reason is None else self.cancel_reason.value,
            "cancel_status": self.cancel_status,
            "bye_status": self.bye_status,
            "hold_ms": self.hold_ms,
            "ack_retransmissions": self.ack_retransmissions,
            "sdp_answer": None if self.sdp_answer is None else self.sdp_answer.to_dict(),
            "rtp": None if self.rtp is None else self.rtp.to_dict(),
            "warnings": self.warnings,
            "nat": self.nat.to_dict(),
            "tls": None if self.tls is None else self.tls.to_dict(),
            "auth": auth.to_dict(),
            "server": self.server,
            "events": [e.to_dict() for e in self.events],
            # --refer-to's outcome; null without (the contract: absent values are null).
            "transfer": None if self.transfer is None else self.transfer.to_dict(),
        }


# -- the verdicts ---------------------------------------------------------------------------


def judge(options: InviteOptions, result: CallResult) -> None:
    """Whether the check passed, and why not; the exit code follows."""
    status = result.final_status
    if status is None:
        passed = False
    elif options.expect is not None:
        passed = _as_expected(options.expect, status, result)
    elif result.cancel_reason is CancelReason.RING_TIMEOUT:
        passed = _ring_test_passed(result)
    else:
        passed = _answered(options, result)
    if passed and result.answered:
        passed = _ended_well(result)
    if passed and result.answered and options.refer_to is not None:
        passed = _transferred(result)
    result.passed = passed
    if any(isinstance(e, InputError) for e in result.errors):
        result.exit_code = ExitCode.NOT_RUN
    else:
        result.exit_code = ExitCode.OK if passed else ExitCode.FAILED


def _as_expected(expect: Expectation, status: int, result: CallResult) -> bool:
    if expect.accepts(status):
        return True
    result.error("unexpected_status", f"unwanted final response {result.final_text}")
    return False


def _ring_test_passed(result: CallResult) -> bool:
    """A ring test passes when the phone rang and the CANCEL took effect (or it answered)."""
    if (result.cancelled and result.rang) or result.answered:
        return True
    why = f"the CANCEL did not end the call ({result.final_text})"
    if not result.rang:
        why = "no ringing (18x) before the ring timeout"
    result.error("unexpected_status", why)
    return False


def _answered(options: InviteOptions, result: CallResult) -> bool:
    if result.answered:
        return True
    what = result.final_text
    if result.cancel_reason is CancelReason.TIMEOUT:
        what = f"not answered within {options.settings.timeout:g} s (cancelled, {what})"
    result.error("not_answered", f"call not answered: {what}")
    return False


def _ended_well(result: CallResult) -> bool:
    """An answered call also needs its BYE answered with a 2xx and, with --rtp, audio back."""
    passed = True
    if result.bye is ByeOutcome.ANSWERED and not 200 <= (result.bye_response or 0) < 300:
        result.error("bye_failed", f"the BYE got {result.bye_response}")
    if any(e.code in _ENDING_FAILURES for e in result.errors):
        passed = False
    if result.rtp is not None and not result.rtp_ok:
        result.error("one_way_audio", f"RTP: {result.rtp.verdict}")
        passed = False
    return passed


def _transferred(result: CallResult) -> bool:
    """With --refer-to an answered call must also be transferred; the transfer engine named
    the error when it was not (commands/invite_refer.py)."""
    transfer = result.transfer
    return transfer is not None and transfer.outcome is TransferOutcome.SUCCEEDED


def nagios_verdict(result: CallResult, limits: Thresholds) -> NagiosVerdict:
    """The --nagios line; the thresholds apply to the PDD, and a warning is a WARNING."""
    if result.exit_code is ExitCode.NOT_RUN:
        return unknown("SIP", result.errors)
    t = result.timings
    state = limits.state(result.passed, t.pdd)
    if state is NagiosState.OK and result.warnings:
        state = NagiosState.WARNING
    perfdata = [limits.time_perfdata("pdd", t.pdd), f"answer={ms_or_unknown(t.answer)}"]
    return verdict("SIP", state, _nagios_summary(result), perfdata)


def _nagios_summary(result: CallResult) -> str:
    if result.final_status is None:
        return f"{result.target}: " + (result.errors[-1].message if result.errors else "no answer")
    what = f"{result.final_text} from {result.target}"
    if result.answered and result.timings.answer is not None:
        what += f", answered in {result.timings.answer:.1f} ms"
    elif result.cancelled:
        what += ", cancelled after ringing"
    if not result.passed and result.errors:
        what += f": {result.errors[-1].message}"
    elif result.warnings:
        what += f" ({result.warnings[0]})"
    return what
