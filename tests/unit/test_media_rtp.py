"""The RTP stream tracker on hand-built packets: Wireshark's definitions of packets, lost,
max delta and jitter; wraparound, loss, duplicates, reordering, SSRC changes, markers;
RTCP SR/RR with the round-trip time; bad input counted, never raised; and the fast path
giving exactly what the general path gives."""

from __future__ import annotations

import random
import struct

import pytest

from siptool.media.rtp import MediaProblem, RtpStream, RtpTracker, _Flow

SRC = bytes((10, 0, 0, 1))
DST = bytes((10, 0, 0, 2))
T0 = 1000.0  # small, so that float times keep their microseconds exactly enough


def key(sport: int = 40000, dport: int = 50000, src: bytes = SRC, dst: bytes = DST) -> bytes:
    return src + dst + struct.pack("!HH", sport, dport)


def rtp(
    seq: int,
    ts: int,
    *,
    ssrc: int = 0x11223344,
    pt: int = 0,
    marker: bool = False,
    payload: bytes = b"\xff" * 160,
    first: int = 0x80,
) -> bytes:
    return struct.pack("!BBHII", first, (0x80 if marker else 0) | pt, seq, ts, ssrc) + payload


def feed(
    tracker: RtpTracker, packets: list[tuple[float, bytes]], flow: bytes | None = None
) -> list[bool]:
    flow = key() if flow is None else flow
    return [
        tracker.datagram(flow, data, 0, len(data), T0 + at, frame)
        for frame, (at, data) in enumerate(packets, 1)
    ]


def stream(
    seqs: list[int], *, step: float = 0.020, ts_step: int = 160
) -> list[tuple[float, bytes]]:
    """Packets with these sequence numbers, sent and received on time (timestamps follow the
    sequence numbers, arrival times follow the order in the list)."""
    return [(i * step, rtp(seq & 0xFFFF, seq * ts_step)) for i, seq in enumerate(seqs)]


def only(tracker: RtpTracker) -> RtpStream:
    (found,) = tracker.streams()
    return found


class CountingTracker(RtpTracker):
    """Counts the packets the fast path left to the general one."""

    slow = 0

    def _slow(
        self, flow: _Flow, buf: bytes, p: int, end: int, time: float | None, frame: int
    ) -> bool:
        self.slow += 1
        return super()._slow(flow, buf, p, end, time, frame)


class SlowTracker(RtpTracker):
    """Every packet through the general path: what the fast path must agree with."""

    def datagram(
        self, key: bytes, buf: bytes, p: int, end: int, time: float | None, frame: int
    ) -> bool:
        flow = self._flows.get(key)
        if flow is None:
            return self._new_flow(key, buf, p, end, time, frame)
        return self._slow(flow, buf, p, end, time, frame)


# -- the figures ---------------------------------------------------------------------------


def test_a_clean_stream_has_no_loss_no_jitter_and_its_packet_interval_as_max_delta() -> None:
    tracker = RtpTracker()
    assert all(feed(tracker, stream(list(range(1000, 1050)))))
    found = only(tracker).to_dict()
    assert found["ssrc"] == "0x11223344"
    assert (found["src"], found["dst"]) == ("10.0.0.1:40000", "10.0.0.2:50000")
    assert (found["packets"], found["expected"], found["lost"]) == (50, 50, 0)
    assert (found["duplicates"], found["out_of_order"], found["sequence_errors"]) == (0, 0, 0)
    assert found["max_delta_ms"] == pytest.approx(20.0)
    assert found["jitter_max_ms"] == pytest.approx(0.0, abs=1e-3)
    assert (found["payload_type"], found["codec"], found["clock_rate"]) == (0, "PCMU", 8000)
    assert found["first_time"] == T0 and found["last_time"] == pytest.approx(T0 + 49 * 0.020)


def test_sequence_numbers_wrap_at_65535_without_counting_loss() -> None:
    tracker = RtpTracker()
    feed(tracker, stream(list(range(65500, 65536 + 100))))
    found = only(tracker)
    assert (found.packets, found.expected, found.lost, found.cycles) == (136, 136, 0, 1)
    assert found.sequence_errors == 0


def test_loss_across_the_wrap_counts_the_missing_packets() -> None:
    tracker = RtpTracker()
    seqs = [s for s in range(65530, 65536 + 10) if s not in (65534, 65535, 65536, 65540)]
    feed(tracker, stream(seqs))
    found = only(tracker)
    assert (found.expected, found.lost, found.out_of_order, found.duplicates) == (16, 4, 0, 0)


def test_a_gap_is_loss_and_one_sequence_error() -> None:
    tracker = RtpTracker()
    feed(tracker, stream([1, 2, 3, 7, 8, 9]))
    found = only(tracker)
    assert (found.packets, found.expected, found.lost) == (6, 9, 3)
    assert found.sequence_errors == 1 and found.out_of_order == 0


def test_a_duplicate_is_counted_and_makes_lost_negative_as_in_tshark() -> None:
    tracker = RtpTracker()
    packets = stream([1, 2, 3, 4, 5])
    packets.insert(3, (0.050, packets[2][1]))  # packet 3 again, 10 ms after the first copy
    feed(tracker, packets)
    found = only(tracker)
    assert (found.packets, found.expected, found.lost) == (6, 5, -1)
    assert (found.duplicates, found.out_of_order) == (1, 0)


def test_a_late_packet_is_out_of_order_not_lost() -> None:
    tracker = RtpTracker()
    packets = [(0.000, rtp(1, 160)), (0.020, rtp(2, 320)), (0.040, rtp(4, 640))]
    packets += [(0.045, rtp(3, 480)), (0.060, rtp(5, 800))]
    feed(tracker, packets)
    found = only(tracker)
    assert (found.packets, found.expected, found.lost) == (5, 5, 0)
    assert (found.out_of_order, found.duplicates) == (1, 0)
    # Wireshark: the jump to 4 and the late 3 are both "wrong sequence".  The late packet was
    # sent after the first, so tshark 4.0 takes it as in time sequence and regular: deltas
    # 20, 20, 5 and 15 ms.
    assert found.sequence_errors == 2
    assert found.max_delta == pytest.approx(20.0)
    assert found.mean_delta == pytest.approx(15.0)


def test_a_packet_sent_before_the_first_one_is_out_of_time_sequence() -> None:
    tracker = RtpTracker()
    packets = [(0.000, rtp(2, 320)), (0.020, rtp(3, 480)), (0.030, rtp(1, 160))]
    packets += [(0.040, rtp(4, 640)), (0.060, rtp(5, 800))]
    feed(tracker, packets)
    found = only(tracker)
    # Packet 1 moves nothing: packet 4's delta is measured from packet 3 (20 ms), and the
    # jitter sees no 10 ms surprise.
    assert (found.out_of_order, found.sequence_errors) == (1, 1)
    assert found.max_delta == pytest.approx(20.0) and found.mean_delta == pytest.approx(20.0)
    assert found.max_jitter == pytest.approx(0.0, abs=1e-3)


def test_a_reordered_last_packet_shows_in_lost_as_in_tshark() -> None:
    tracker = RtpTracker()
    packets = [(0.000, rtp(1, 160)), (0.020, rtp(3, 480)), (0.025, rtp(2, 320))]
    feed(tracker, packets)
    found = only(tracker)
    # expected = last number (2) - first (1) + 1: Wireshark's stop_seq_nr is the last packet's.
    assert (found.expected, found.lost, found.out_of_order) == (2, -1, 1)


def test_a_new_ssrc_on_the_same_5_tuple_is_a_new_stream() -> None:
    tracker = RtpTracker()
    packets = stream([10, 11, 12])
    packets += [(0.060 + 0.020 * i, rtp(500 + i, 9000 + 160 * i, ssrc=0xCAFE)) for i in range(3)]
    packets.append((0.120, rtp(13, 13 * 160)))  # and back to the first one
    feed(tracker, packets)
    first, second = tracker.streams()
    assert (first.ssrc, first.packets, first.ssrc_changes, first.lost) == (0x11223344, 4, 1, 0)
    assert (second.ssrc, second.packets, second.ssrc_changes) == (0xCAFE, 3, 1)
    assert second.to_dict()["ssrc"] == "0x0000CAFE"


def test_a_marker_packet_after_silence_is_left_out_of_max_delta_and_jitter() -> None:
    tracker = RtpTracker()
    packets = stream([1, 2, 3, 4])
    # A talkspurt after 2 s of silence suppression (RFC 3551 §4.1): marker, and the timestamp
    # jumps with the arrival time.
    packets += [(2.060, rtp(5, 4 * 160 + 16000, marker=True)), (2.080, rtp(6, 5 * 160 + 16000))]
    feed(tracker, packets)
    found = only(tracker)
    assert found.marker_bits == 1
    assert found.max_delta == pytest.approx(20.0)
    assert found.max_jitter == pytest.approx(0.0, abs=1e-3)


def test_jitter_is_rfc_3550_s_estimator_in_ms() -> None:
    """Arrivals at 0, 20, 45, 60, 80 ms for packets 20 ms apart in timestamp (PCMU, 8 kHz):
    D = 0, 5, 5, 0 ms; J = J + (|D| - J) / 16 (RFC 3550 §6.4.1, A.8)."""
    tracker = RtpTracker()
    arrivals = [0.000, 0.020, 0.045, 0.060, 0.080]
    feed(tracker, [(at, rtp(i, i * 160)) for i, at in enumerate(arrivals)])
    jitters = [0.0]
    for d in (0.0, 5.0, 5.0, 0.0):
        jitters.append(jitters[-1] + (d - jitters[-1]) / 16)
    found = only(tracker)
    assert found.jitter == pytest.approx(jitters[-1])  # 0.567626953125 ms
    assert found.max_jitter == pytest.approx(max(jitters))
    # Wireshark's mean is over the packets after the first.
    assert found.mean_jitter == pytest.approx(sum(jitters[1:]) / 4)
    assert found.max_delta == pytest.approx(25.0)
    assert found.to_dict()["jitter_max_ms"] == round(max(jitters), 3)


def test_the_clock_divides_as_integers_like_wireshark() -> None:
    """L16 at 44100 Hz (payload type 11) is measured at 44 samples a millisecond."""
    tracker = RtpTracker()
    feed(tracker, [(0.0, rtp(1, 0, pt=11)), (0.020, rtp(2, 882, pt=11))])
    assert only(tracker).jitter == pytest.approx(abs(20.0 - 882 / 44) / 16)


def test_a_stream_with_no_known_clock_has_deltas_but_no_jitter() -> None:
    tracker = RtpTracker()
    feed(tracker, [(i * 0.020, rtp(i, i * 960, pt=111)) for i in range(5)])
    found = only(tracker).to_dict()
    assert found["codec"] is None and found["max_delta_ms"] == pytest.approx(20.0)
    assert found["jitter_mean_ms"] is None and found["jitter_max_ms"] is None


# -- which payloads are RTP ----------------------------------------------------------------


def test_the_heuristic_wants_version_2_an_even_destination_port_and_unprivileged_ports() -> None:
    tracker = RtpTracker()
    data = rtp(1, 160)
    assert not tracker.datagram(key(dport=50001), data, 0, len(data), T0, 1)
    assert not tracker.datagram(key(sport=53), data, 0, len(data), T0, 2)
    assert not tracker.datagram(key(), rtp(1, 160, first=0xC0), 0, 172, T0, 3)
    assert not tracker.datagram(key(), rtp(1, 160, pt=50), 0, 172, T0, 4)  # unassigned type
    assert not tracker.datagram(key(), rtp(1, 160, pt=73), 0, 172, T0, 5)  # RFC 5761 §4
    assert tracker.streams() == []
    assert tracker.datagram(key(), data, 0, len(data), T0, 6)


def test_an_announced_flow_is_taken_on_any_port_with_the_sdp_s_codec_and_call() -> None:
    tracker = RtpTracker()
    assert tracker.announce("10.0.0.2", 50001, {96: ("opus", 48000)}, "call-1@x")
    assert not tracker.announce("0.0.0.0", 50001, {}, "held")
    assert not tracker.announce("media.example.com", 50001, {}, None)
    packets = [(i * 0.020, rtp(i, i * 960, pt=96)) for i in range(5)]
    assert all(feed(tracker, packets, key(dport=50001)))
    found = only(tracker).to_dict()
    assert (found["codec"], found["clock_rate"], found["call_id"]) == ("opus", 48000, "call-1@x")
    assert found["jitter_max_ms"] == pytest.approx(0.0, abs=1e-3)


def test_rtp_from_an_announced_address_is_taken_too() -> None:
    """Symmetric RTP (RFC 4961): the announcer sends from the port it receives on."""
    tracker = RtpTracker()
    tracker.announce("10.0.0.1", 40001, {0: ("PCMU", 8000)}, "c")
    assert all(feed(tracker, stream([1, 2]), key(sport=40001, dport=50001)))
    assert only(tracker).call_id == "c"


def test_telephone_events_are_kept_per_stream() -> None:
    tracker = RtpTracker()
    tracker.announce("10.0.0.2", 50000, {0: ("PCMU", 8000), 101: ("telephone-event", 8000)}, "c")
    packets = stream([1, 2, 3])
    for i, (duration, end) in enumerate(((160, False), (320, False), (480, True))):
        event = struct.pack("!BBH", 5, (0x80 if end else 0) | 10, duration)
        packets.append((0.060 + 0.020 * i, rtp(4 + i, 640, pt=101, marker=i == 0, payload=event)))
    packets += [(0.120, rtp(7, 7 * 160)), (0.140, rtp(8, 8 * 160))]
    feed(tracker, packets)
    found = only(tracker)
    assert found.payload_types == {0, 101} and found.packets == 8 and found.lost == 0
    assert found.dtmf is not None
    assert [(e.digit, e.duration_ms, e.ended) for e in found.dtmf.events()] == [("5", 60.0, True)]


# -- bad input -----------------------------------------------------------------------------


def test_bad_rtp_headers_are_counted_per_stream_and_kind_never_raised() -> None:
    tracker = RtpTracker()
    tracker.announce("10.0.0.2", 50000, {0: ("PCMU", 8000)}, "c")
    flow = key()
    good = rtp(1, 160)
    assert tracker.datagram(flow, good, 0, len(good), T0, 1)
    short = good[:8]
    assert tracker.datagram(flow, short, 0, len(short), T0, 2)  # shorter than the header
    csrc = rtp(2, 320, first=0x83, payload=b"")  # three CSRCs announced, none there
    assert tracker.datagram(flow, csrc, 0, len(csrc), T0, 3)
    ext = rtp(3, 480, first=0x90, payload=struct.pack("!HH", 0xBEDE, 40) + b"\0" * 8)
    assert tracker.datagram(flow, ext, 0, len(ext), T0, 4)
    pad = rtp(4, 640, first=0xA0, payload=b"\x00\x00\xff")  # 255 bytes of padding in 3
    assert tracker.datagram(flow, pad, 0, len(pad), T0, 5)
    v1 = rtp(5, 800, first=0x60)
    assert not tracker.datagram(flow, v1, 0, len(v1), T0, 6)
    turn = struct.pack("!HH", 0x4001, 4) + b"data"  # RFC 8656 ChannelData: not a wrong version
    assert not tracker.datagram(flow, turn, 0, len(turn), T0, 7)
    found = only(tracker)
    assert found.problems == {
        MediaProblem.TRUNCATED: 2,
        MediaProblem.EXTENSION: 1,
        MediaProblem.PADDING: 1,
        MediaProblem.VERSION: 1,
    }
    assert found.packets == 2  # the good one and the padded one: a bad padding is analysed
    assert tracker.problems()["truncated RTP header"] == 2
    # Each kind's one line says where it was first seen.
    places = tracker.problem_places()
    assert set(places) == set(tracker.problems())
    assert places["RTP padding longer than the payload"] == (
        f"packet 5, {found.src} -> {found.dst}"
    )


# -- RTCP ------------------------------------------------------------------------------------


def sr(ssrc: int, ntp: float, packets: int, blocks: bytes = b"", count: int = 0) -> bytes:
    msw = int(ntp) + 2208988800
    lsw = int((ntp % 1) * 2**32)
    body = struct.pack("!IIIIII", ssrc, msw, lsw, 1234, packets, packets * 160) + blocks
    return struct.pack("!BBH", 0x80 | count, 200, (len(body) + 4) // 4 - 1) + body


def rr(ssrc: int, blocks: bytes, count: int = 1, length: int | None = None) -> bytes:
    body = struct.pack("!I", ssrc) + blocks
    words = (len(body) + 4) // 4 - 1 if length is None else length
    return struct.pack("!BBH", 0x80 | count, 201, words) + body


def block(
    ssrc: int, fraction: int, lost: int, highest: int, jitter: int, lsr: int, dlsr: float
) -> bytes:
    return struct.pack(
        "!IB3sIIII", ssrc, fraction, lost.to_bytes(3, "big", signed=True), highest, jitter, lsr,
        int(dlsr * 65536),
    )  # fmt: skip


def ntp_middle(ntp: float) -> int:
    msw = int(ntp) + 2208988800
    lsw = int((ntp % 1) * 2**32)
    return ((msw & 0xFFFF) << 16) | (lsw >> 16)


def test_sender_and_receiver_reports_give_loss_jitter_and_round_trip() -> None:
    tracker = RtpTracker()
    feed(tracker, stream(list(range(1, 11))))  # 10.0.0.1:40000 -> 10.0.0.2:50000
    ntp = 1_700_000_000.25
    report = sr(0x11223344, ntp, 10)
    assert tracker.datagram(key(40001, 50001), report, 0, len(report), T0 + 1.0, 20)
    about = block(0x11223344, 64, 3, 65546, 80, ntp_middle(ntp), 0.250)
    back = rr(0x55667788, about)
    assert tracker.datagram(key(50001, 40001, DST, SRC), back, 0, len(back), T0 + 1.3, 21)
    rtcp = only(tracker).to_dict()["rtcp"]
    assert isinstance(rtcp, dict)
    assert (rtcp["sender_reports"], rtcp["sender_packets"], rtcp["receiver_reports"]) == (1, 10, 1)
    assert (rtcp["fraction_lost"], rtcp["cumulative_lost"], rtcp["highest_seq"]) == (0.25, 3, 65546)
    assert rtcp["jitter_ms"] == 10.0  # 80 timestamp units at 8 kHz
    assert rtcp["rtt_ms"] == pytest.approx(50.0, abs=0.1)  # 300 ms - 250 ms held
    assert tracker.rtcp_packets == 2 and tracker.problems() == {}


def test_rtcp_whose_lengths_lie_is_counted_and_what_came_before_is_kept() -> None:
    tracker = RtpTracker()
    feed(tracker, stream([1, 2, 3]))
    ntp = 1_700_000_000.5
    flow = key(40001, 50001)
    long_one = sr(0x11223344, ntp, 3) + rr(0x11223344, b"", count=0, length=40)
    assert tracker.datagram(flow, long_one, 0, len(long_one), T0 + 1, 10)
    too_many = sr(0x11223344, ntp + 1, 3, count=2)  # two report blocks said, none there
    assert tracker.datagram(flow, too_many, 0, len(too_many), T0 + 2, 11)
    trailing = sr(0x11223344, ntp + 2, 3) + b"\x80\xc9"
    assert tracker.datagram(flow, trailing, 0, len(trailing), T0 + 3, 12)
    found = only(tracker)
    assert found.problems == {
        MediaProblem.RTCP_LENGTH: 1,
        MediaProblem.RTCP_REPORT_COUNT: 1,
        MediaProblem.RTCP_TRAILING: 1,
    }
    assert found.rtcp is not None and found.rtcp.sender_reports == 3


def test_rtcp_xr_block_types_are_listed() -> None:
    tracker = RtpTracker()
    feed(tracker, stream([1, 2, 3]))
    rrtr = struct.pack("!BBHII", 4, 0, 2, 1, 2)
    stats = struct.pack("!BBHI", 6, 0, 1, 0x11223344)
    body = struct.pack("!I", 0x55667788) + rrtr + stats
    xr = struct.pack("!BBH", 0x80, 207, (len(body) + 4) // 4 - 1) + body
    flow = key(50001, 40001, DST, SRC)
    assert tracker.datagram(flow, xr, 0, len(xr), T0 + 1, 10)
    rtcp = only(tracker).rtcp
    assert rtcp is not None and rtcp.xr_blocks == {"statistics-summary": 1}


# -- the fast path is the general path -------------------------------------------------------


def _figures(tracker: RtpTracker) -> list[dict[str, object]]:
    out = []
    for st in tracker.streams():
        d = st.to_dict()
        d.update(
            jitter=st.jitter, max_jitter=st.max_jitter, mean_jitter=st.mean_jitter,
            max_delta=st.max_delta, mean_delta=st.mean_delta, cycles=st.cycles,
        )  # fmt: skip
        out.append(d)
    return out


@pytest.mark.parametrize("seed", range(12))
def test_the_fast_path_gives_exactly_what_the_general_path_gives(seed: int) -> None:
    """Random streams with loss, duplicates, reordering, markers, comfort noise, payload
    changes, SSRC changes and wraps, through both trackers."""
    rng = random.Random(seed)
    packets: list[tuple[float, bytes]] = []
    seq, ts, at, ssrc = rng.randrange(65536), rng.randrange(2**32), 0.0, 0xABCD
    if seed % 2:
        seq = 65536 - 1500  # through a wrap, and the "under" state after it
    for _ in range(3000):
        roll = rng.random()
        seq, ts = seq + 1, ts + 160
        at += 0.020 + rng.uniform(-0.004, 0.006)
        if roll < 0.03:
            continue  # lost
        # Comfort noise, and payload changes: PCMA (the same clock), L16 (44 kHz).
        pt = 13 if 0.05 < roll < 0.06 else 11 if roll > 0.993 else 8 if roll > 0.99 else 0
        data = rtp(seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc=ssrc, marker=roll > 0.995, pt=pt)
        packets.append((at, data))
        if roll < 0.05:
            packets.append((at + 0.001, data))  # duplicated
        elif roll < 0.07 and len(packets) > 2:
            packets[-1], packets[-2] = packets[-2], packets[-1]  # reordered
        if rng.random() < 0.0005:
            ssrc, seq = rng.randrange(2**32), rng.randrange(65536)
    fast, slow = CountingTracker(), SlowTracker()
    assert feed(fast, packets) == feed(slow, packets)
    assert _figures(fast) == _figures(slow)
    assert sum(st.packets for st in fast.streams()) == len(packets)
    assert fast.slow < len(packets) // 3  # the fast path did take most of them
