"""RTP header codec, RFC 3550 interarrival jitter and the media verdict of invite-test."""

from __future__ import annotations

import pytest

from siptool.net.rtp import (
    JitterEstimator,
    StreamStats,
    build_packet,
    parse_header,
    summarize,
)


def test_header_round_trip_and_fields() -> None:
    packet = build_packet(65535, 2**32 + 5, 0xDEADBEEF, 0, b"\xff" * 160, marker=True)
    assert len(packet) == 12 + 160
    assert packet[0] == 0x80 and packet[1] == 0x80  # V=2; marker set, PT 0
    header = parse_header(packet)
    assert header is not None
    assert (header.seq, header.timestamp, header.ssrc, header.payload_type, header.marker) == (
        65535,
        5,
        0xDEADBEEF,
        0,
        True,
    )


@pytest.mark.parametrize(
    "data",
    [b"", b"\x80" * 11, b"\x40" + b"\x00" * 20, bytes([0x80, 200]) + b"\x00" * 10],
    ids=["empty", "short", "version-1", "rtcp-sr"],
)
def test_non_rtp_is_rejected(data: bytes) -> None:
    assert parse_header(data) is None


def test_jitter_is_zero_for_perfect_pacing_and_follows_rfc3550_a8() -> None:
    steady = JitterEstimator()
    for n in range(50):
        steady.update(10.0 + n * 0.02, 1000 + n * 160)
    assert steady.jitter_ms == pytest.approx(0.0, abs=1e-6)
    # One packet 8 ms late: D = 64 timestamp units, then back: J = 64/16, then 4 + (64-4)/16.
    j = JitterEstimator()
    j.update(0.0, 0)
    j.update(0.028, 160)
    assert j.jitter == pytest.approx(4.0)
    j.update(0.040, 320)
    assert j.jitter == pytest.approx(4.0 + (64 - 4.0) / 16)
    assert j.jitter_ms == pytest.approx(j.jitter / 8)


def test_sequence_wrap_is_extended() -> None:
    s = StreamStats(1, "x")
    for i, seq in enumerate([65534, 65535, 0, 1]):
        header = parse_header(build_packet(seq, i * 160, 1, 0, b""))
        assert header is not None
        s.add(header, i * 0.02)
    assert s.expected == 4 and len(s.seqs) == 4


def _stream(ssrc: int, seqs: list[int]) -> StreamStats:
    s = StreamStats(ssrc, "192.0.2.1:4000")
    for n, seq in enumerate(seqs):
        header = parse_header(build_packet(seq, n * 160, ssrc, 0, b""))
        assert header is not None
        s.add(header, n * 0.02)
    return s


def test_echo_loss_is_against_what_we_sent() -> None:
    stats = summarize(10, 7, {7: _stream(7, [1, 2, 3, 4, 5, 6, 7, 8])})
    assert (stats.received, stats.loss_pct, stats.echoed, stats.verdict) == (8, 20.0, True, "ok")


def test_a_talking_peer_is_measured_from_its_own_sequence_numbers() -> None:
    stats = summarize(10, 7, {99: _stream(99, [100, 101, 103, 104])})
    assert stats.echoed is False and stats.received == 4 and stats.loss_pct == 20.0


def test_verdicts() -> None:
    assert summarize(50, 7, {}).verdict == "one-way: nothing came back"
    assert summarize(50, 7, {}).loss_pct == 100.0
    assert summarize(0, 7, {}).verdict == "no media sent"
