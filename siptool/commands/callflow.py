"""Group decoded SIP messages into call flows (one per Call-ID) for the ladder diagram.

A flow lists its participants in order of first appearance and one arrow per message with the
time relative to the flow's first message.  Without capture addresses (SIP text input) the
sender of a request is its top Via sent-by and the receiver the Request-URI host; a response
goes back to the top Via.

The decode command builds the flows while the messages stream past (``CallFlows.add``), so a
flow keeps one arrow per message and never the message itself; the renderers only draw them.
A flow that has ended (``CallFlows.ended``) can be handed on and forgotten, so that the text
ladder of a long capture, or of a live one, is printed call by call and memory does not grow
with the calls: a call has ended when its INVITE got a final response of 300 or more, or its
BYE a final response (RFC 3261 §15); a flow with no INVITE (OPTIONS, MESSAGE, REGISTER) when
its last request got a final response.  It is handed on once ``LINGER`` seconds of capture
time have passed without a message in it, so that the ACK and any retransmission still join.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from siptool.capture.model import RawMessage
from siptool.errors import ParseError
from siptool.sip.message import SipMessage, clean_text


class FlowMessage(Protocol):
    """What a flow reads of a decoded message (commands.decode.DecodedMessage is one)."""

    @property
    def index(self) -> int: ...

    @property
    def raw(self) -> RawMessage: ...

    @property
    def sip(self) -> SipMessage | None: ...


@dataclass
class Arrow:
    index: int
    time_ms: float | None
    src: str
    dst: str
    label: str


@dataclass
class CallFlow:
    call_id: str
    participants: list[str] = field(default_factory=list)
    arrows: list[Arrow] = field(default_factory=list)

    @property
    def duration_ms(self) -> float | None:
        times = [a.time_ms for a in self.arrows if a.time_ms is not None]
        return max(times) if times else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "participants": self.participants,
            "duration_ms": self.duration_ms,
            "messages": [
                {
                    "index": a.index,
                    "time_ms": a.time_ms,
                    "src": a.src,
                    "dst": a.dst,
                    "label": a.label,
                }
                for a in self.arrows
            ],
        }


def _endpoints(m: FlowMessage) -> tuple[str, str]:
    raw = m.raw
    if raw.src and raw.dst:
        return raw.src, raw.dst
    msg = m.sip
    assert msg is not None
    try:
        via = msg.top_via
    except ParseError:
        via = None
    via_end = "?" if via is None else (f"{via.host}:{via.port}" if via.port else via.host)
    if msg.method is not None:
        try:
            uri = msg.uri
        except ParseError:
            uri = None  # a malformed Request-URI is still drawn, toward "?"
        target = (
            "?" if uri is None or not uri.host else uri.host + (f":{uri.port}" if uri.port else "")
        )
        return via_end, target
    return "peer", via_end


def arrow_label(m: FlowMessage) -> str:
    msg = m.sip
    assert msg is not None
    if msg.method is not None:
        label = msg.method
    else:
        label = f"{msg.status} {msg.reason or ''}".rstrip()
        try:
            cseq = msg.cseq
        except ParseError:
            cseq = None
        if cseq is not None and cseq.method != "INVITE":
            label += f" ({cseq.method})"
    if msg.body and (msg.content_type or "").lower().startswith("application/sdp"):
        label += " (SDP)"
    return clean_text(label)


# Seconds of capture time an ended flow waits for its last messages (ACK, retransmissions:
# RFC 3261 §17.1.1.2 Timer D is 32 s on UDP, but a retransmitted final comes within T2 = 4 s).
LINGER = 4.0


class CallFlows:
    """The flows of a stream of messages, one per Call-ID, in order of each call's first
    message; STUN messages are not part of any."""

    def __init__(self) -> None:
        self._flows: dict[str, CallFlow] = {}
        self._starts: dict[str, float] = {}
        self._invite: set[str] = set()  # flows that carried an INVITE: a call
        self._ended: dict[str, float | None] = {}  # call_id -> time of its last message

    def add(self, m: FlowMessage) -> None:
        msg = m.sip
        if msg is None:
            return
        # Undecodable bytes would make the ladder unprintable on a strict UTF-8 stdout.
        call_id = clean_text(msg.call_id or "(no Call-ID)")
        flow = self._flows.get(call_id)
        if flow is None:
            flow = self._flows[call_id] = CallFlow(call_id)
        src, dst = _endpoints(m)
        for end in (src, dst):
            if end not in flow.participants:
                flow.participants.append(end)
        time = m.raw.time
        rel: float | None = None
        if time is not None:
            start = self._starts.setdefault(call_id, time)
            rel = round((time - start) * 1000.0, 3)
        flow.arrows.append(Arrow(m.index, rel, src, dst, arrow_label(m)))
        self._track(call_id, msg, time)

    def _track(self, call_id: str, msg: SipMessage, time: float | None) -> None:
        """Whether the flow has ended with this message (see the module docstring)."""
        if msg.method is not None:
            if msg.method == "INVITE":
                self._invite.add(call_id)
            if call_id in self._ended:
                self._ended[call_id] = time  # an ACK or a retransmission: still lingering
            return
        status = msg.status or 0
        if status < 200 and call_id not in self._ended:
            return
        try:
            cseq = msg.cseq
        except ParseError:
            cseq = None
        method = cseq.method if cseq is not None else None
        call = call_id in self._invite
        if (
            call_id in self._ended  # a message after the end: it lingers on
            or method == "BYE"
            or (method == "INVITE" and status >= 300)
            or (not call and method is not None and method != "INVITE")
        ):
            self._ended[call_id] = time

    def ended(self, now: float | None) -> list[CallFlow]:
        """The flows that ended at least ``LINGER`` s of capture time before ``now``, removed
        from this collection (``now`` None: text input has no time, nothing is handed on)."""
        if now is None or not self._ended:
            return []
        done = [c for c, last in self._ended.items() if last is not None and now - last >= LINGER]
        out = []
        for call_id in done:
            del self._ended[call_id]
            self._starts.pop(call_id, None)
            self._invite.discard(call_id)
            out.append(self._flows.pop(call_id))
        return out

    @property
    def flows(self) -> list[CallFlow]:
        return list(self._flows.values())


def build_flows(messages: Iterable[FlowMessage]) -> list[CallFlow]:
    """One flow per Call-ID, in order of each call's first message."""
    flows = CallFlows()
    for m in messages:
        flows.add(m)
    return flows.flows
