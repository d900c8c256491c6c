"""RFC 3261 §17.1 client transactions driven by a fake clock: exact retransmission schedules,
state transitions, the ACK for non-2xx, matching of responses, CANCEL."""

from __future__ import annotations

import pytest

from siptool.sip.builders import new_branch
from siptool.sip.message import SipMessage, parse_message
from siptool.sip.transaction import (
    INVITE_TRANSITIONS,
    NON_INVITE_TRANSITIONS,
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    Duplicate,
    Event,
    Final,
    Provisional,
    Send,
    State,
    Stray,
    Terminated,
    Timeout,
    Timers,
    TransportFailed,
    build_cancel,
    match_response,
)

BRANCH = "z9hG4bK776asdhds"


def _request(method: str = "INVITE", *, cseq: int = 314159, branch: str = BRANCH) -> SipMessage:
    return parse_message(
        f"{method} sip:bob@biloxi.com SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP pc33.atlanta.com;branch={branch};rport, "
        "SIP/2.0/UDP second.example.com;branch=z9hG4bKother\r\n"
        "Max-Forwards: 69\r\n"
        "Route: <sip:p1.example.com;lr>\r\n"
        "Route: <sip:p2.example.com;lr>\r\n"
        "To: Bob <sip:bob@biloxi.com>\r\n"
        "From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"
        "Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Contact: <sip:alice@pc33.atlanta.com>\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: 4\r\n\r\nv=0\n".encode()
    )


def _response(
    status: int,
    method: str = "INVITE",
    *,
    branch: str = BRANCH,
    to_tag: str | None = "a6c85cf",
    cseq: int = 314159,
) -> SipMessage:
    tag = "" if to_tag is None else f";tag={to_tag}"
    return parse_message(
        f"SIP/2.0 {status} Whatever\r\n"
        f"Via: SIP/2.0/UDP pc33.atlanta.com;branch={branch};rport=5060;received=192.0.2.1\r\n"
        f"To: Bob <sip:bob@biloxi.com>{tag}\r\n"
        "From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"
        "Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Content-Length: 0\r\n\r\n".encode()
    )


def _run_timers(
    txn: ClientInviteTransaction | ClientNonInviteTransaction,
) -> list[tuple[float, Event]]:
    """Advance a fake clock from deadline to deadline until no timer is left."""
    out: list[tuple[float, Event]] = []
    while (deadline := txn.next_deadline()) is not None:
        out += [(deadline, event) for event in txn.on_timer(deadline)]
        assert len(out) < 1000
    return out


def _send_times(start: list[Event], timed: list[tuple[float, Event]]) -> list[float]:
    times = [0.0 for e in start if isinstance(e, Send)]
    return times + [t for t, e in timed if isinstance(e, Send)]


# -- timers -------------------------------------------------------------------------------------


def test_timer_defaults_and_derived_values() -> None:
    t = Timers()
    assert (t.t1, t.t2, t.t4) == (0.5, 4.0, 5.0)
    assert (t.a, t.b, t.e, t.f) == (0.5, 32.0, 0.5, 32.0)
    assert (t.d(False), t.d(True), t.k(False), t.k(True)) == (32.0, 0.0, 5.0, 0.0)
    custom = Timers(t1=0.1, t2=2.0, t4=2.5)
    assert custom.b == pytest.approx(6.4) and custom.f == pytest.approx(6.4)
    assert custom.k(False) == 2.5


@pytest.mark.parametrize("kwargs", [{"t1": 0}, {"t1": 1.0, "t2": 0.5}, {"t4": -1}])
def test_bad_timers_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Timers(**kwargs)


# -- INVITE over UDP ----------------------------------------------------------------------------


def test_invite_udp_retransmits_with_doubling_timer_a_until_timer_b() -> None:
    txn = ClientInviteTransaction(_request(), reliable=False, now=0.0)
    start = txn.start()
    assert start == [Send(_request().serialize())]
    states = [txn.state]
    timed = _run_timers(txn)
    states.append(txn.state)
    assert states == [State.CALLING, State.TERMINATED]
    # §17.1.1.2: A = 0.5, 1, 2, 4, 8, 16 s (no T2 cap); B = 64*T1 = 32 s.
    assert _send_times(start, timed) == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert [e for _, e in timed[-2:]] == [Timeout("B"), Terminated()]
    assert timed[-1][0] == 32.0
    assert txn.retransmissions == 6
    assert {e for _, e in timed if isinstance(e, Send)} == {Send(_request().serialize())}


def test_invite_custom_t1_scales_a_and_b() -> None:
    txn = ClientInviteTransaction(_request(), reliable=False, timers=Timers(t1=0.25), now=10.0)
    start = txn.start()
    timed = _run_timers(txn)
    assert [t for t, e in timed if isinstance(e, Send)] == [
        10.25,
        10.75,
        11.75,
        13.75,
        17.75,
        25.75,
    ]
    assert timed[-2] == (26.0, Timeout("B"))
    assert len(start) == 1


def test_invite_reliable_never_retransmits_and_times_out_at_b() -> None:
    txn = ClientInviteTransaction(_request(), reliable=True, now=0.0)
    txn.start()
    assert txn.next_deadline() == 32.0
    assert _run_timers(txn) == [(32.0, Timeout("B")), (32.0, Terminated())]


def test_on_timer_before_deadline_does_nothing() -> None:
    txn = ClientInviteTransaction(_request(), reliable=False, now=0.0)
    txn.start()
    assert txn.on_timer(0.49) == []
    assert txn.on_timer(0.5) == [Send(_request().serialize())]
    assert txn.next_deadline() == 1.5


def test_late_wakeup_fires_once_and_resets_from_now() -> None:
    txn = ClientInviteTransaction(_request(), reliable=False, now=0.0)
    txn.start()
    events = txn.on_timer(1.7)  # A was due at 0.5
    assert len(events) == 1 and isinstance(events[0], Send)
    assert txn.next_deadline() == pytest.approx(2.7)


def test_invite_provisional_stops_retransmissions_and_timer_b() -> None:
    txn = ClientInviteTransaction(_request(), reliable=False, now=0.0)
    txn.start()
    txn.on_timer(0.5)
    trying = _response(100, to_tag=None)
    assert txn.on_response(trying, 0.6) == [Provisional(trying)]
    assert txn.state is State.PROCEEDING
    assert txn.next_deadline() is None  # Figure 5: no timer in PROCEEDING
    ringing = _response(180)
    assert txn.on_response(ringing, 2.0) == [Provisional(ringing)]


def test_invite_2xx_after_1xx_terminates_and_sends_no_ack() -> None:
    txn = ClientInviteTransaction(_request(), reliable=False, now=0.0)
    txn.start()
    txn.on_response(_response(180), 0.2)
    ok = _response(200)
    assert txn.on_response(ok, 3.0) == [Final(ok), Terminated()]
    assert txn.state is State.TERMINATED and txn.final is ok
    assert txn.ack is None  # §13.2.2.4: the TU ACKs a 2xx


def test_invite_2xx_retransmission_and_fork_after_termination() -> None:
    txn = ClientInviteTransaction(_request(), reliable=False, now=0.0)
    txn.start()
    txn.on_response(_response(200, to_tag="one"), 1.0)
    again = _response(200, to_tag="one")
    assert txn.on_response(again, 1.5) == [Duplicate(again)]
    fork = _response(200, to_tag="two")
    assert txn.on_response(fork, 1.6) == [Final(fork)]
    late = _response(180, to_tag="one")
    assert txn.on_response(late, 1.7) == [Stray(late, "transaction terminated")]
    assert txn.duplicates == 1


def test_invite_non_2xx_sends_ack_built_per_17_1_1_3() -> None:
    invite = _request()
    txn = ClientInviteTransaction(invite, reliable=False, now=0.0)
    txn.start()
    busy = _response(486, to_tag="x9")
    events = txn.on_response(busy, 0.3)
    assert len(events) == 2 and isinstance(events[0], Send) and events[1] == Final(busy)
    assert txn.state is State.COMPLETED
    ack = parse_message(events[0].data)
    assert ack.method == "ACK"
    assert ack.request_uri == invite.request_uri
    assert ack.call_id == invite.call_id
    assert ack.header("From") == invite.header("From")
    assert ack.header("To") == "Bob <sip:bob@biloxi.com>;tag=x9"  # the response's To
    cseq = ack.cseq
    assert cseq is not None and (cseq.seq, cseq.method) == (314159, "ACK")
    # One Via, identical to the INVITE's top via-parm (same branch).
    assert ack.header_values("Via") == [
        "SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds;rport"
    ]
    assert ack.header_values("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert ack.header("Max-Forwards") == "69"
    assert ack.body == b"" and ack.header("Content-Length") == "0"
    assert ack.header("Contact") is None and ack.header("Content-Type") is None
    assert txn.ack is not None and txn.ack.serialize() == events[0].data


def test_invite_retransmitted_final_resends_ack_and_counts_duplicate() -> None:
    txn = ClientInviteTransaction(_request(), reliable=False, now=0.0)
    txn.start()
    first = txn.on_response(_response(603), 0.3)
    ack_wire = first[0]
    again = _response(603)
    assert txn.on_response(again, 0.8) == [ack_wire, Duplicate(again)]
    assert txn.on_response(again, 1.8) == [ack_wire, Duplicate(again)]
    assert txn.duplicates == 2
    assert txn.state is State.COMPLETED


def test_invite_timer_d_32s_on_udp() -> None:
    txn = ClientInviteTransaction(_request(), reliable=False, now=0.0)
    txn.start()
    txn.on_response(_response(404), 1.0)
    assert txn.next_deadline() == 33.0
    assert _run_timers(txn) == [(33.0, Terminated())]
    late = _response(404)
    assert txn.on_response(late, 40.0) == [Stray(late, "transaction terminated")]


def test_invite_timer_d_zero_on_reliable_terminates_at_once() -> None:
    txn = ClientInviteTransaction(_request(), reliable=True, now=0.0)
    txn.start()
    busy = _response(486)
    events = txn.on_response(busy, 1.0)
    assert [type(e) for e in events] == [Send, Final, Terminated]
    assert txn.state is State.TERMINATED and txn.next_deadline() is None


def test_invite_1xx_or_2xx_after_non_2xx_final_is_stray() -> None:
    txn = ClientInviteTransaction(_request(), reliable=False, now=0.0)
    txn.start()
    txn.on_response(_response(500), 0.1)
    ok = _response(200)
    assert txn.on_response(ok, 0.2) == [Stray(ok, "2xx response in state COMPLETED")]
    assert txn.state is State.COMPLETED


def test_invite_transport_error() -> None:
    txn = ClientInviteTransaction(_request(), reliable=True, now=0.0)
    txn.start()
    assert txn.on_transport_error(0.1) == [TransportFailed(), Terminated()]
    assert txn.next_deadline() is None


# -- non-INVITE ---------------------------------------------------------------------------------


def test_non_invite_udp_timer_e_doubles_capped_at_t2_until_timer_f() -> None:
    txn = ClientNonInviteTransaction(_request("OPTIONS"), reliable=False, now=0.0)
    start = txn.start()
    timed = _run_timers(txn)
    # §17.1.2.2: E = 0.5, 1, 2, 4, 4, ... (capped at T2 = 4); F = 64*T1 = 32 s.
    expected = [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert _send_times(start, timed) == expected
    assert timed[-2:] == [(32.0, Timeout("F")), (32.0, Terminated())]
    assert txn.retransmissions == 10


def test_non_invite_custom_t1_t2() -> None:
    txn = ClientNonInviteTransaction(
        _request("REGISTER"), reliable=False, timers=Timers(t1=1.0, t2=2.0), now=0.0
    )
    start = txn.start()
    timed = _run_timers(txn)
    sends = _send_times(start, timed)
    assert sends[:6] == [0.0, 1.0, 3.0, 5.0, 7.0, 9.0]
    assert sends[-1] == 63.0 and timed[-2] == (64.0, Timeout("F"))


def test_timeout_wins_a_tie_with_retransmission() -> None:
    # T1 = T2 = 0.5: E fires every 0.5 s and coincides with F at 32 s.
    txn = ClientNonInviteTransaction(
        _request("OPTIONS"), reliable=False, timers=Timers(t1=0.5, t2=0.5), now=0.0
    )
    txn.start()
    timed = _run_timers(txn)
    assert max(t for t, e in timed if isinstance(e, Send)) == 31.5
    assert timed[-2:] == [(32.0, Timeout("F")), (32.0, Terminated())]


def test_non_invite_reliable_no_retransmission() -> None:
    txn = ClientNonInviteTransaction(_request("BYE"), reliable=True, now=5.0)
    assert txn.start() == [Send(_request("BYE").serialize())]
    assert _run_timers(txn) == [(37.0, Timeout("F")), (37.0, Terminated())]


def test_non_invite_provisional_slows_timer_e_to_t2() -> None:
    txn = ClientNonInviteTransaction(_request("REGISTER"), reliable=False, now=0.0)
    start = txn.start()
    txn.on_timer(0.5)  # next E at 1.5
    trying = _response(100, "REGISTER", to_tag=None)
    assert txn.on_response(trying, 0.7) == [Provisional(trying)]
    assert txn.state is State.PROCEEDING
    timed = _run_timers(txn)
    sends = _send_times(start, timed)
    # The pending E still fires at 1.5, then every T2 = 4 s; F still ends it at 32 s.
    assert sends == [0.0, 1.5, 5.5, 9.5, 13.5, 17.5, 21.5, 25.5, 29.5]
    assert timed[-2:] == [(32.0, Timeout("F")), (32.0, Terminated())]


def test_non_invite_final_then_timer_k_on_udp() -> None:
    txn = ClientNonInviteTransaction(_request("OPTIONS"), reliable=False, now=0.0)
    txn.start()
    ok = _response(200, "OPTIONS")
    assert txn.on_response(ok, 0.2) == [Final(ok)]
    assert txn.state is State.COMPLETED and txn.final is ok
    again = _response(200, "OPTIONS")
    assert txn.on_response(again, 0.7) == [Duplicate(again)]  # absorbed, no re-send
    late_1xx = _response(180, "OPTIONS")
    assert txn.on_response(late_1xx, 0.8) == [Stray(late_1xx, "1xx response in state COMPLETED")]
    assert txn.duplicates == 1
    assert _run_timers(txn) == [(5.2, Terminated())]  # K = T4


def test_non_invite_timer_k_zero_on_reliable() -> None:
    txn = ClientNonInviteTransaction(_request("OPTIONS"), reliable=True, now=0.0)
    txn.start()
    forbidden = _response(403, "OPTIONS")
    assert txn.on_response(forbidden, 0.2) == [Final(forbidden), Terminated()]
    assert txn.next_deadline() is None


def test_non_invite_final_after_provisional() -> None:
    txn = ClientNonInviteTransaction(_request("REGISTER"), reliable=False, now=0.0)
    txn.start()
    txn.on_response(_response(100, "REGISTER"), 0.1)
    unauthorized = _response(401, "REGISTER")
    assert txn.on_response(unauthorized, 0.3) == [Final(unauthorized)]
    assert txn.state is State.COMPLETED


# -- matching (§17.1.3) -------------------------------------------------------------------------


def test_match_response_needs_branch_and_method() -> None:
    invite = _request()
    assert match_response(invite, _response(180))
    assert not match_response(invite, _response(180, branch="z9hG4bKnope"))
    assert not match_response(invite, _response(200, "CANCEL"))  # same branch, CANCEL's
    assert not match_response(invite, _request())  # a request is no response
    assert not match_response(invite, _response(200, branch="Z9HG4BK776ASDHDS"))


def test_match_response_never_raises_on_malformed() -> None:
    broken = parse_message(b"SIP/2.0 200 OK\r\nVia: garbage;;\r\nCSeq: x\r\n\r\n")
    assert not match_response(_request(), broken)
    no_via = parse_message(b"SIP/2.0 200 OK\r\nCSeq: 314159 INVITE\r\n\r\n")
    assert not match_response(_request(), no_via)


def test_stray_responses_are_reported_and_change_nothing() -> None:
    txn = ClientNonInviteTransaction(_request("OPTIONS"), reliable=False, now=0.0)
    txn.start()
    wrong_branch = _response(200, "OPTIONS", branch="z9hG4bKelse")
    wrong_method = _response(200, "INVITE")
    out_of_range = _response(700, "OPTIONS")
    assert txn.on_response(wrong_branch, 0.1) == [Stray(wrong_branch, "Via branch does not match")]
    assert txn.on_response(wrong_method, 0.1) == [Stray(wrong_method, "CSeq method does not match")]
    assert txn.on_response(out_of_range, 0.1) == [Stray(out_of_range, "status 700 outside 100-699")]
    assert txn.state is State.TRYING and txn.next_deadline() == 0.5


def test_response_before_start_is_stray() -> None:
    txn = ClientNonInviteTransaction(_request("OPTIONS"), reliable=False, now=0.0)
    ok = _response(200, "OPTIONS")
    assert txn.on_response(ok, 0.0) == [Stray(ok, "transaction not started")]


def test_key_and_start_twice() -> None:
    txn = ClientNonInviteTransaction(_request("OPTIONS"), reliable=False, now=0.0)
    assert txn.key == (BRANCH, "OPTIONS")
    txn.start()
    with pytest.raises(RuntimeError):
        txn.start()


@pytest.mark.parametrize(
    ("cls", "method"),
    [
        (ClientInviteTransaction, "OPTIONS"),
        (ClientNonInviteTransaction, "INVITE"),
        (ClientNonInviteTransaction, "ACK"),
    ],
)
def test_wrong_method_for_transaction_kind(
    cls: type[ClientInviteTransaction | ClientNonInviteTransaction], method: str
) -> None:
    with pytest.raises(ValueError):
        cls(_request(method), reliable=False)


def test_request_without_branch_rejected() -> None:
    request = _request("OPTIONS")
    request.set_header("Via", "SIP/2.0/UDP pc33.atlanta.com")
    with pytest.raises(ValueError, match="branch"):
        ClientNonInviteTransaction(request, reliable=False)


# -- tables -------------------------------------------------------------------------------------


def test_transition_tables_cover_figures_5_and_6() -> None:
    assert set(INVITE_TRANSITIONS) == {
        State.CALLING,
        State.PROCEEDING,
        State.COMPLETED,
        State.TERMINATED,
    }
    assert set(NON_INVITE_TRANSITIONS) == {
        State.TRYING,
        State.PROCEEDING,
        State.COMPLETED,
        State.TERMINATED,
    }
    assert INVITE_TRANSITIONS[State.TERMINATED] == {} == NON_INVITE_TRANSITIONS[State.TERMINATED]


# -- CANCEL (§9.1) and branches -----------------------------------------------------------------


def test_build_cancel_per_9_1() -> None:
    invite = _request()
    cancel = build_cancel(invite)
    assert cancel.method == "CANCEL"
    assert cancel.request_uri == invite.request_uri
    assert cancel.call_id == invite.call_id
    assert cancel.header("From") == invite.header("From")
    assert cancel.header("To") == invite.header("To")  # no tag added
    cseq = cancel.cseq
    assert cseq is not None and (cseq.seq, cseq.method) == (314159, "CANCEL")
    assert cancel.header_values("Via") == [
        "SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds;rport"
    ]
    assert cancel.header_values("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert cancel.body == b"" and cancel.header("Content-Type") is None
    # The CANCEL is its own non-INVITE transaction, matched by method on the shared branch.
    txn = ClientNonInviteTransaction(parse_message(cancel.serialize()), reliable=False)
    assert txn.key == (BRANCH, "CANCEL")
    assert match_response(cancel, _response(200, "CANCEL"))
    assert not match_response(cancel, _response(487))


def test_build_cancel_only_for_invite() -> None:
    with pytest.raises(ValueError):
        build_cancel(_request("OPTIONS"))


def test_new_branch_has_magic_cookie_and_is_unique() -> None:
    branches = {new_branch() for _ in range(1000)}
    assert len(branches) == 1000
    assert all(b.startswith("z9hG4bK") and len(b) > 7 + 16 for b in branches)
