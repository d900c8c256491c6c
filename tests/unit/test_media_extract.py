"""PacketExtractor's media hook: UDP payloads that are neither SIP nor STUN reach the sink with
the 5-tuple key and their offsets, on the Ethernet/IPv4 fast path and on every other path;
SIP and STUN still come out as messages, and without a sink nothing changes."""

from __future__ import annotations

import struct

from siptool.capture.extract import PacketExtractor
from siptool.capture.layers import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_RAW
from siptool.capture.model import RawMessage
from siptool.media.rtp import RtpTracker
from tests.support.captures import (
    STUN_BINDING_REQUEST,
    ether,
    fragment_ipv4,
    sip_request,
    sll,
    udp,
    udp4,
    udp6,
)

RTP = struct.pack("!BBHII", 0x80, 0, 7, 1120, 0xDEADBEEF) + b"\xff" * 160


class Recorder:
    """A MediaSink that keeps what it was given."""

    def __init__(self) -> None:
        self.got: list[tuple[bytes, bytes, float | None, int]] = []

    def datagram(
        self, key: bytes, buf: bytes, p: int, end: int, time: float | None, frame: int
    ) -> bool:
        self.got.append((key, buf[p:end], time, frame))
        return True


def run(frames: list[tuple[int, bytes]], media: object | None) -> list[object]:
    extractor = PacketExtractor(media=media)  # type: ignore[arg-type]
    for frame, (linktype, data) in enumerate(frames, 1):
        extractor.packet(frame, 10.0 + frame, linktype, 0, len(data), len(data), 0, data)
    extractor.finish()
    return list(extractor.out)


def v4_key(sport: int, dport: int) -> bytes:
    return bytes((192, 0, 2, 1, 192, 0, 2, 2)) + struct.pack("!HH", sport, dport)


def test_rtp_on_the_ethernet_ipv4_fast_path_reaches_the_sink_with_its_key() -> None:
    sink = Recorder()
    out = run([(LINKTYPE_ETHERNET, ether(udp4(RTP, sport=40000, dport=50000)))], sink)
    assert out == []
    assert sink.got == [(v4_key(40000, 50000), RTP, 11.0, 1)]


def test_every_other_path_reaches_the_sink_too() -> None:
    sink = Recorder()
    six = udp6(RTP, sport=40000, dport=50000)
    frames = [
        (LINKTYPE_ETHERNET, ether(six)),
        (LINKTYPE_LINUX_SLL, sll(udp4(RTP, sport=40000, dport=50000))),
        (LINKTYPE_RAW, udp4(RTP, sport=40000, dport=50000)),
        (LINKTYPE_ETHERNET, ether(udp4(RTP, sport=40000, dport=50000), vlans=[7])),
    ]
    # A fragmented datagram reaches it once, when it is whole.
    pieces = fragment_ipv4("192.0.2.1", "192.0.2.2", 17, udp(40000, 50000, RTP), ident=9, size=96)
    frames += [(LINKTYPE_RAW, piece) for piece in pieces]
    run(frames, sink)
    six_key = six[8:40] + struct.pack("!HH", 40000, 50000)
    assert [(k, payload, frame) for k, payload, _, frame in sink.got] == [
        (six_key, RTP, 1),
        (v4_key(40000, 50000), RTP, 2),
        (v4_key(40000, 50000), RTP, 3),
        (v4_key(40000, 50000), RTP, 4),
        (v4_key(40000, 50000), RTP, 4 + len(pieces)),
    ]


def test_sip_and_stun_are_still_messages_and_never_media() -> None:
    sink = Recorder()
    frames = [
        (LINKTYPE_ETHERNET, ether(udp4(sip_request()))),
        (LINKTYPE_ETHERNET, ether(udp4(STUN_BINDING_REQUEST, sport=40000, dport=3478))),
        (LINKTYPE_RAW, udp6(sip_request(), sport=5060, dport=5060)),
        (LINKTYPE_ETHERNET, ether(udp4(b"\r\n\r\n"))),  # a keep-alive is neither
    ]
    out = run(frames, sink)
    assert [m.protocol for m in out if isinstance(m, RawMessage)] == ["sip", "stun", "sip"]
    assert sink.got == []


def test_without_a_sink_media_is_skipped_as_before() -> None:
    frames = [(LINKTYPE_ETHERNET, ether(udp4(RTP, sport=40000, dport=50000)))]
    frames.append((LINKTYPE_ETHERNET, ether(udp4(sip_request()))))
    out = run(frames, None)
    assert [m.protocol for m in out if isinstance(m, RawMessage)] == ["sip"]


def test_a_tracker_behind_the_extractor_counts_the_stream() -> None:
    tracker = RtpTracker()
    frames = []
    for i in range(20):
        packet = struct.pack("!BBHII", 0x80, 8, 100 + i, 160 * i, 0xABCDEF01) + b"\xd5" * 160
        frames.append((LINKTYPE_ETHERNET, ether(udp4(packet, sport=40000, dport=50000))))
    run(frames, tracker)
    (found,) = tracker.streams()
    assert (found.src, found.dst, found.packets, found.lost) == (
        "192.0.2.1:40000",
        "192.0.2.2:50000",
        20,
        0,
    )
    assert found.codec == "PCMA" and found.max_delta == 1000.0  # one packet a second here
