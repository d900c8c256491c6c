"""RFC 4733 telephone-events: digits, durations, lost end packets, short payloads."""

from __future__ import annotations

import struct

from siptool.media.dtmf import TelephoneEvents, event_name


def block(event: int, duration: int, end: bool = False, volume: int = 10) -> bytes:
    return struct.pack("!BBH", event, (0x80 if end else 0) | volume, duration)


def feed(events: TelephoneEvents, packets: list[tuple[int, float, bytes]]) -> None:
    for timestamp, time, payload in packets:
        padded = b"\xff" * 12 + payload  # the payload sits after an RTP header
        events.add(padded, 12, len(padded), timestamp, time)


def test_an_event_is_its_first_arrival_and_its_longest_duration() -> None:
    events = TelephoneEvents(8000)
    feed(events, [
        (1000, 10.00, block(5, 160)),
        (1000, 10.02, block(5, 320)),
        (1000, 10.04, block(5, 800, end=True)),
        (1000, 10.04, block(5, 800, end=True)),  # RFC 4733 §2.5.1.4: the end, three times
        (1000, 10.04, block(5, 800, end=True)),
        (9000, 11.00, block(11, 160)),  # '#', whose end packets were all lost
        (9000, 11.02, block(11, 400)),
    ])  # fmt: skip
    found = [(e.digit, e.time, e.duration_ms, e.ended, e.volume_dbm0) for e in events.events()]
    assert found == [("5", 10.0, 100.0, True, -10), ("#", 11.0, 50.0, False, -10)]


def test_a_payload_shorter_than_an_event_block_is_counted_not_raised() -> None:
    events = TelephoneEvents()
    feed(events, [(1, 0.0, b"\x05\x80")])
    assert events.bad == 1 and events.events() == []


def test_event_names() -> None:
    assert [event_name(n) for n in (0, 9, 10, 11, 12, 15, 16, 40)] == [
        "0", "9", "*", "#", "A", "D", "flash", "40"
    ]  # fmt: skip
