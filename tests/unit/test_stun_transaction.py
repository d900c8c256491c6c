"""The sans-I/O STUN client transaction against a fake clock: the RFC 8489 §6.2.1 schedule,
the --timeout cap, and which datagrams complete it."""

from __future__ import annotations

import pytest

from siptool.stun.message import (
    StunClass,
    binding_request,
    binding_response,
    encode_message,
    parse_stun,
)
from siptool.stun.transaction import (
    TRANSITIONS,
    Ignored,
    Response,
    Retransmit,
    StunClientTransaction,
    TimedOut,
    TransactionState,
    Waiting,
    retransmission_schedule,
)

SERVER = ("192.0.2.1", 3478)
OTHER = ("192.0.2.2", 3479)


def _transaction(**options: object) -> tuple[StunClientTransaction, bytes, bytes]:
    tid, wire = binding_request()
    return StunClientTransaction(wire, tid, SERVER, **options), tid, wire  # type: ignore[arg-type]


def _response_to(wire: bytes, **options: object) -> bytes:
    return binding_response(parse_stun(wire), ("198.51.100.7", 40000), **options)  # type: ignore[arg-type]


def _run_to_end(tx: StunClientTransaction, start: float = 0.0) -> tuple[list[float], TimedOut]:
    """Fire every timer exactly at its deadline; the send times and the final event."""
    _, deadline = tx.start(start)
    sends = [start]
    for _ in range(100):
        event = tx.on_timer(deadline)
        if isinstance(event, TimedOut):
            return sends, event
        assert isinstance(event, Retransmit)
        sends.append(deadline)
        deadline = event.next_deadline
    raise AssertionError("transaction never ended")


def _schedule(**options: object) -> tuple[list[float], TimedOut]:
    """The send times and the final event of a transaction made with ``options``, run out."""
    tx, _, _ = _transaction(**options)
    return _run_to_end(tx)


# ----------------------------------------------------------------------------- the schedule


def test_udp_schedule_is_rfc8489_default_0_05_15_35_75_155_315_timeout_395() -> None:
    tx, _, _ = _transaction()
    sends, end = _run_to_end(tx)
    assert sends == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert end == TimedOut(sends=7, elapsed=39.5, capped=False)
    assert tx.state is TransactionState.TIMED_OUT
    assert tx.deadline is None


def test_retransmissions_carry_the_request_and_count_sends() -> None:
    tx, _, wire = _transaction()
    data, deadline = tx.start(10.0)
    assert (data, deadline) == (wire, 10.5)
    event = tx.on_timer(10.5)
    assert event == Retransmit(wire, 11.5, 2)
    assert tx.sends == 2


def test_schedule_is_shifted_by_the_start_time() -> None:
    tx, _, _ = _transaction()
    sends, end = _run_to_end(tx, start=1000.0)
    assert sends == [1000.0 + s for s in (0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5)]
    assert end.elapsed == 39.5


def test_retransmission_schedule_helper() -> None:
    assert retransmission_schedule() == ([0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5], 39.5)
    assert retransmission_schedule(rto=1.0, rc=3, rm=2) == ([0, 1, 3], 5)
    assert retransmission_schedule(rto=0.1, rc=1, rm=16) == ([0], pytest.approx(1.6))


def test_custom_rto_rc_rm() -> None:
    sends, end = _schedule(rto=1.0, rc=3, rm=2)
    assert sends == [0, 1, 3]
    assert (end.sends, end.elapsed) == (3, 5)


def test_reliable_transport_sends_once_and_waits_ti() -> None:
    sends, end = _schedule(reliable=True)
    assert sends == [0.0]
    assert end == TimedOut(sends=1, elapsed=39.5, capped=False)


def test_late_timer_does_not_push_the_schedule_back() -> None:
    tx, _, _ = _transaction()
    tx.start(0.0)
    event = tx.on_timer(0.9)
    assert isinstance(event, Retransmit)
    assert event.next_deadline == 1.5


def test_early_timer_waits_and_changes_nothing() -> None:
    tx, _, _ = _transaction()
    tx.start(0.0)
    assert tx.on_timer(0.3) == Waiting(0.5)
    assert tx.sends == 1
    # within a millisecond counts as due (event loops fire timers slightly early)
    assert isinstance(tx.on_timer(0.4995), Retransmit)


# ------------------------------------------------------------------------------------ cap


def test_deadline_cap_ends_the_transaction_early() -> None:
    sends, end = _schedule(deadline_cap=2.0)
    assert sends == [0.0, 0.5, 1.5]
    assert end == TimedOut(sends=3, elapsed=2.0, capped=True)


def test_deadline_cap_on_a_retransmission_instant_times_out_instead() -> None:
    tx, _, _ = _transaction(deadline_cap=1.5)
    sends, end = _run_to_end(tx, start=5.0)
    assert sends == [5.0, 5.5]
    assert end == TimedOut(sends=2, elapsed=1.5, capped=True)


def test_deadline_cap_shorter_than_rto() -> None:
    tx, _, _ = _transaction(deadline_cap=0.2)
    _, deadline = tx.start(0.0)
    assert deadline == 0.2
    assert tx.on_timer(0.2) == TimedOut(sends=1, elapsed=0.2, capped=True)


def test_deadline_cap_longer_than_the_schedule_changes_nothing() -> None:
    sends, end = _schedule(deadline_cap=60.0)
    assert len(sends) == 7
    assert end == TimedOut(sends=7, elapsed=39.5, capped=False)


def test_deadline_cap_on_reliable_transport() -> None:
    sends, end = _schedule(reliable=True, deadline_cap=5.0)
    assert sends == [0.0]
    assert end == TimedOut(sends=1, elapsed=5.0, capped=True)


# ------------------------------------------------------------------------------- responses


def test_response_completes_with_rtt_from_the_only_send() -> None:
    tx, tid, wire = _transaction()
    tx.start(100.0)
    event = tx.on_datagram(_response_to(wire), SERVER, 100.25)
    assert isinstance(event, Response)
    assert event.message.transaction_id == tid
    assert event.message.xor_mapped_address == "198.51.100.7:40000"
    assert event.rtt == pytest.approx(0.25)
    assert event.retransmitted is False
    assert (event.sends, event.source) == (1, SERVER)
    assert tx.state is TransactionState.COMPLETED
    assert tx.deadline is None


def test_response_after_retransmission_measures_from_the_latest_send() -> None:
    tx, _, wire = _transaction()
    tx.start(0.0)
    tx.on_timer(0.5)
    tx.on_timer(1.5)
    event = tx.on_datagram(_response_to(wire), SERVER, 1.6)
    assert isinstance(event, Response)
    assert event.rtt == pytest.approx(0.1)
    assert event.elapsed == pytest.approx(1.6)
    assert event.retransmitted is True
    assert event.sends == 3


def test_error_response_also_completes() -> None:
    tx, tid, _ = _transaction()
    tx.start(0.0)
    error = encode_message(StunClass.ERROR_RESPONSE, 1, tid, [(0x0009, b"\0\0\x04\x00Bad Request")])
    event = tx.on_datagram(error, SERVER, 0.1)
    assert isinstance(event, Response)
    assert event.message.error_code == (400, "Bad Request")


def test_after_completion_timers_wait_and_duplicates_are_ignored() -> None:
    tx, _, wire = _transaction()
    tx.start(0.0)
    response = _response_to(wire)
    assert isinstance(tx.on_datagram(response, SERVER, 0.1), Response)
    assert tx.on_timer(0.5) == Waiting(None)
    assert tx.on_datagram(response, SERVER, 0.2) == Ignored("duplicate response after completion")


def test_response_after_timeout_is_ignored() -> None:
    tx, _, wire = _transaction(deadline_cap=0.1)
    tx.start(0.0)
    assert isinstance(tx.on_timer(0.1), TimedOut)
    assert tx.on_datagram(_response_to(wire), SERVER, 0.2) == Ignored(
        "response after the transaction timed out"
    )
    assert tx.on_timer(1.0) == Waiting(None)


def test_transaction_id_mismatch_is_ignored_and_keeps_waiting() -> None:
    tx, _, _ = _transaction()
    tx.start(0.0)
    _, stranger = binding_request()
    assert tx.on_datagram(_response_to(stranger), SERVER, 0.1) == Ignored("transaction id mismatch")
    assert tx.state is TransactionState.WAITING
    assert tx.deadline == 0.5


def test_unparseable_datagram_is_ignored() -> None:
    tx, _, _ = _transaction()
    tx.start(0.0)
    event = tx.on_datagram(b"SIP/2.0 200 OK\r\n\r\n", SERVER, 0.1)
    assert isinstance(event, Ignored)
    assert event.reason.startswith("unparseable: ")
    assert tx.state is TransactionState.WAITING


def test_our_own_request_reflected_back_is_not_a_response() -> None:
    tx, _, wire = _transaction()
    tx.start(0.0)
    event = tx.on_datagram(wire, SERVER, 0.1)
    assert event == Ignored("a request, not a response")


def test_corrupted_fingerprint_is_ignored() -> None:
    tx, _, wire = _transaction()
    tx.start(0.0)
    response = bytearray(_response_to(wire, fingerprint=True))
    response[-1] ^= 0xFF
    assert tx.on_datagram(bytes(response), SERVER, 0.1) == Ignored("FINGERPRINT does not match")
    assert tx.state is TransactionState.WAITING


def test_reply_from_another_address_is_ignored_by_default() -> None:
    tx, _, wire = _transaction()
    tx.start(0.0)
    assert tx.on_datagram(_response_to(wire), OTHER, 0.1) == Ignored(
        "reply from unexpected address"
    )
    assert tx.on_datagram(_response_to(wire), ("192.0.2.1", 3479), 0.1) == Ignored(
        "reply from unexpected address"
    )
    assert tx.state is TransactionState.WAITING


def test_accept_from_lets_the_other_address_answer() -> None:
    tx, _, wire = _transaction(accept_from={OTHER})
    tx.start(0.0)
    event = tx.on_datagram(_response_to(wire), OTHER, 0.1)
    assert isinstance(event, Response)
    assert event.source == OTHER


def test_accept_any_source_for_change_request() -> None:
    tid, wire = binding_request(change_ip=True, change_port=True)
    tx = StunClientTransaction(wire, tid, SERVER, accept_any_source=True)
    tx.start(0.0)
    assert isinstance(tx.on_datagram(_response_to(wire), ("203.0.113.9", 1), 0.1), Response)


def test_ipv6_source_is_compared_in_canonical_form() -> None:
    tid, wire = binding_request()
    tx = StunClientTransaction(wire, tid, ("2001:DB8:0::1", 3478))
    tx.start(0.0)
    # recvfrom on an AF_INET6 socket gives a 4-tuple
    event = tx.on_datagram(_response_to(wire), ("2001:db8::1", 3478, 0, 0), 0.1)
    assert isinstance(event, Response)
    assert event.source == ("2001:db8::1", 3478)


def test_legacy_sixteen_byte_transaction_matches() -> None:
    tid, wire = binding_request(legacy=True)
    tx = StunClientTransaction(wire, tid, SERVER)
    tx.start(0.0)
    event = tx.on_datagram(_response_to(wire), SERVER, 0.1)
    assert isinstance(event, Response)
    assert event.message.legacy is True


# ----------------------------------------------------------------------------- misuse


def test_datagram_before_start_is_ignored() -> None:
    tx, _, wire = _transaction()
    assert tx.on_datagram(_response_to(wire), SERVER, 0.0) == Ignored("transaction not started")
    assert tx.on_timer(0.0) == Waiting(None)


def test_start_twice_is_a_programming_error() -> None:
    tx, _, _ = _transaction()
    tx.start(0.0)
    with pytest.raises(RuntimeError):
        tx.start(1.0)


@pytest.mark.parametrize(
    "options", [{"rto": 0}, {"rc": 0}, {"rm": 0}, {"ti": -1}, {"deadline_cap": -1}]
)
def test_invalid_parameters(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        _transaction(**options)


def test_ended_states_have_no_transitions() -> None:
    sources = {state for state, _ in TRANSITIONS}
    assert TransactionState.COMPLETED not in sources
    assert TransactionState.TIMED_OUT not in sources
