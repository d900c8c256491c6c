"""Group decoded SIP messages into call flows (one per Call-ID) for the ladder diagram.

A flow lists its participants in order of first appearance and one arrow per message with the
time relative to the flow's first message.  Without capture addresses (SIP text input) the
sender of a request is its top Via sent-by and the receiver the Request-URI host; a response
goes back to the top Via.

The decode command builds the flows while the messages stream past (``CallFlows.add``), so a
flow keeps one arrow per message and never the message itself; the renderers only draw them.
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


class CallFlows:
    """The flows of a stream of messages, one per Call-ID, in order of each call's first
    message; STUN messages are not part of any."""

    def __init__(self) -> None:
        self._flows: dict[str, CallFlow] = {}
        self._starts: dict[str, float] = {}

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

    @property
    def flows(self) -> list[CallFlow]:
        return list(self._flows.values())


def build_flows(messages: Iterable[FlowMessage]) -> list[CallFlow]:
    """One flow per Call-ID, in order of each call's first message."""
    flows = CallFlows()
    for m in messages:
        flows.add(m)
    return flows.flows
