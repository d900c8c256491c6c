"""nat-type's hairpin probes on the STUN transaction engine, without sockets: the engine's
``send_until`` and ``echo`` against a fake clock, and the hairpin test's driver against a fake
sender and watcher on a real event loop."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from siptool.commands.nat_probes import Hairpin, PathTiming, hairpin_test
from siptool.stun.message import binding_request, binding_response, parse_stun
from siptool.stun.transaction import (
    Ignored,
    Response,
    Retransmit,
    StunClientTransaction,
    TimedOut,
)

SELF = ("198.51.100.1", 40000)  # our own public address, as the hairpin test sends to it


def test_send_until_stops_transmissions_but_the_wait_lasts_to_the_cap() -> None:
    tid, wire = binding_request()
    tx = StunClientTransaction(wire, tid, SELF, rto=0.1, deadline_cap=1.0, send_until=0.5)
    _, deadline = tx.start(0.0)
    sends = [0.0]
    while True:
        event = tx.on_timer(deadline)
        if isinstance(event, TimedOut):
            break
        assert isinstance(event, Retransmit)
        sends.append(deadline)
        deadline = event.next_deadline
    assert sends == [0.0, 0.1, 0.30000000000000004]  # 0, RTO, 3 RTO; 7 RTO is past 0.5 s
    assert deadline == 1.0 and event.capped and event.sends == 3


def test_echo_takes_our_own_request_coming_round_as_the_answer() -> None:
    tid, wire = binding_request()
    plain = StunClientTransaction(wire, tid, SELF, accept_any_source=True)
    echo = StunClientTransaction(wire, tid, SELF, accept_any_source=True, echo=True)
    for tx in (plain, echo):
        tx.start(0.0)
    assert plain.on_datagram(wire, ("10.0.0.2", 5000), 0.01) == Ignored("a request, not a response")
    answered = echo.on_datagram(wire, ("10.0.0.2", 5000), 0.01)
    assert isinstance(answered, Response) and answered.message.transaction_id == tid
    # A response with our id still completes an echo transaction; another id never does.
    _, other = binding_request()
    assert isinstance(echo.on_datagram(other, SELF, 0.02), Ignored)
    again = StunClientTransaction(wire, tid, SELF, accept_any_source=True, echo=True)
    again.start(0.0)
    reply = binding_response(parse_stun(wire), SELF)
    assert isinstance(again.on_datagram(reply, SELF, 0.02), Response)


class FakeWatcher:
    """The mapping socket: messages with an id it expects are queued for the test."""

    def __init__(self) -> None:
        self.queues: dict[bytes, asyncio.Queue[Any]] = {}
        self.forgotten: list[bytes] = []

    def expect(self, tid: bytes) -> asyncio.Queue[Any]:
        self.queues[tid] = asyncio.Queue()
        return self.queues[tid]

    def forget(self, tid: bytes) -> None:
        self.forgotten.append(tid)


class FakeSender:
    """The connected hairpin socket; a hairpinning NAT hands what it sends to ``watcher``."""

    def __init__(self, watcher: FakeWatcher, *, hairpins: bool = False, refuses: bool = False):
        self.watcher = watcher
        self.hairpins = hairpins
        self.refuses = refuses
        self.refused = asyncio.Event()
        self.sent: list[float] = []
        self.started = time.monotonic()

    def send(self, data: bytes, destination: tuple[str, int]) -> None:
        assert destination == SELF
        self.sent.append(time.monotonic() - self.started)
        if self.refuses:
            self.refused.set()
        elif self.hairpins:
            tid = parse_stun(data).transaction_id
            self.watcher.queues[tid].put_nowait((data, ("10.0.0.2", 5000), time.monotonic()))


def hairpin(wait: float, rtt: float | None, **behaviour: bool) -> tuple[Hairpin, FakeSender]:
    async def main() -> tuple[Hairpin, FakeSender]:
        path = PathTiming()
        path.rtt = rtt
        watcher = FakeWatcher()
        sender = FakeSender(watcher, **behaviour)
        found = await hairpin_test(sender, SELF, watcher, wait, path)  # type: ignore[arg-type]
        assert sorted(watcher.forgotten) == sorted(watcher.queues)  # every id forgotten
        return found, sender

    return asyncio.run(main())


def test_a_silent_hairpin_test_sends_on_the_rfc8489_schedule_in_90_percent_of_its_wait() -> None:
    # RTT 5 ms: RTO 15 ms; two transactions 7.5 ms apart at 0, 1, 3, 7, 15 RTO (31 RTO is past
    # 0.9 x 0.5 s), so ten requests, and the answer awaited to the end of the wait.
    started = time.monotonic()
    found, sender = hairpin(0.5, 0.005)
    assert found == Hairpin(False, 10)
    assert len(sender.sent) == 10 and max(sender.sent) < 0.45
    assert time.monotonic() - started >= 0.5


def test_a_request_that_comes_round_is_hairpinning() -> None:
    found, sender = hairpin(0.5, 0.005, hairpins=True)
    assert found == Hairpin(True, 1)
    assert len(sender.sent) == 1


def test_icmp_refusal_ends_the_hairpin_test_with_no_sends_to_count() -> None:
    started = time.monotonic()
    found, _ = hairpin(0.5, 0.005, refuses=True)
    assert found == Hairpin(False, 0)
    assert time.monotonic() - started < 0.4


def test_a_slow_path_leaves_room_for_one_transmission_only() -> None:
    # No RTT yet: the 500 ms initial RTO; the second transaction would start past 90 % of 0.2 s.
    found, sender = hairpin(0.2, None)
    assert found == Hairpin(False, 1) and len(sender.sent) == 1
