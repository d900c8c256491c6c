"""CallFlows.ended: a flow is handed on once its call (or its last transaction) has ended and
LINGER seconds of capture time have passed, so the ladder view streams call by call."""

from __future__ import annotations

from siptool.capture import RawMessage
from siptool.commands.callflow import LINGER, CallFlows
from siptool.commands.decode import DecodedMessage
from siptool.sip.message import parse_message


def sip(index: int, time: float, call_id: str, start: str, cseq: str) -> DecodedMessage:
    data = (
        f"{start}\r\nVia: SIP/2.0/UDP a:5060;branch=z9hG4bK{index}\r\nFrom: <sip:a@a>;tag=1\r\n"
        f"To: <sip:b@b>\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    raw = RawMessage("sip", data, index, time, "192.0.2.1:5060", "192.0.2.2:5060", "udp", 0)
    return DecodedMessage(index, raw, sip=parse_message(data))


def feed(flows: CallFlows, messages: list[DecodedMessage]) -> list[tuple[float, str]]:
    """(time, call_id) of each flow handed on, checking after every message."""
    out = []
    for m in messages:
        flows.add(m)
        assert m.raw.time is not None
        out += [(m.raw.time, f.call_id) for f in flows.ended(m.raw.time)]
    return out


def test_a_call_is_handed_on_after_its_bye_is_answered_and_the_linger() -> None:
    flows = CallFlows()
    call = [
        sip(1, 0.0, "c1", "INVITE sip:b@b SIP/2.0", "1 INVITE"),
        sip(2, 0.1, "c1", "SIP/2.0 200 OK", "1 INVITE"),
        sip(3, 0.2, "c1", "ACK sip:b@b SIP/2.0", "1 ACK"),
        sip(4, 5.0, "c1", "BYE sip:b@b SIP/2.0", "2 BYE"),
        sip(5, 5.1, "c1", "SIP/2.0 200 OK", "2 BYE"),
        # An OPTIONS ping while the call is still lingering, then time moves on.
        sip(6, 5.2, "p1", "OPTIONS sip:b@b SIP/2.0", "1 OPTIONS"),
        sip(7, 5.3, "p1", "SIP/2.0 200 OK", "1 OPTIONS"),
        sip(8, 5.1 + LINGER, "open", "INVITE sip:b@b SIP/2.0", "1 INVITE"),
        sip(9, 5.3 + LINGER + 1, "open", "SIP/2.0 180 Ringing", "1 INVITE"),
    ]
    assert feed(flows, call) == [(5.1 + LINGER, "c1"), (5.3 + LINGER + 1, "p1")]
    [left] = flows.flows
    assert left.call_id == "open"  # never answered: handed on only at the end, by the caller
    assert flows.ended(1e9) == []


def test_a_challenged_register_lingers_through_its_retry() -> None:
    flows = CallFlows()
    register = [
        sip(1, 0.0, "r1", "REGISTER sip:b SIP/2.0", "1 REGISTER"),
        sip(2, 0.1, "r1", "SIP/2.0 401 Unauthorized", "1 REGISTER"),
        sip(3, 0.2, "r1", "REGISTER sip:b SIP/2.0", "2 REGISTER"),
        sip(4, 0.3, "r1", "SIP/2.0 200 OK", "2 REGISTER"),
        sip(5, 10.0, "x", "OPTIONS sip:b@b SIP/2.0", "1 OPTIONS"),
    ]
    assert feed(flows, register) == [(10.0, "r1")]
    handed = CallFlows()
    for m in register[:4]:
        handed.add(m)
    [flow] = handed.ended(10.0)
    assert [a.index for a in flow.arrows] == [1, 2, 3, 4]


def test_a_rejected_invite_ends_the_call_but_a_provisional_does_not() -> None:
    flows = CallFlows()
    rejected = [
        sip(1, 0.0, "c2", "INVITE sip:b@b SIP/2.0", "1 INVITE"),
        sip(2, 0.1, "c2", "SIP/2.0 100 Trying", "1 INVITE"),
        sip(3, 0.2, "c2", "SIP/2.0 486 Busy Here", "1 INVITE"),
        sip(4, 0.3, "c2", "ACK sip:b@b SIP/2.0", "1 ACK"),
        sip(5, 0.3 + LINGER, "y", "SIP/2.0 100 Trying", "1 INVITE"),
    ]
    assert feed(flows, rejected) == [(0.3 + LINGER, "c2")]
