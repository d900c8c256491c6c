"""SIP and STUN over TCP inside captures: reassembly per direction, framing, damage."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siptool.capture import Problem, RawMessage, iter_input
from tests.support.captures import (
    ACK,
    FIN,
    PSH_ACK,
    RST,
    STUN_BINDING_REQUEST,
    STUN_BINDING_SUCCESS,
    SYN,
    ether,
    ipv4,
    ipv6,
    pcap_file,
    problems,
    raw,
    sdp,
    sip_request,
    sip_response,
    tcp,
)
from tests.support.spy import record_calls

CLIENT, SERVER = ("192.0.2.1", 40000), ("192.0.2.2", 5060)
ISN_C, ISN_S = 1000, 5000

OPTIONS = [sip_request(call_id=f"opt-{i}@x", cseq=i) for i in range(5)]
INVITE = sip_request("INVITE", "inv@x", sdp(80))
OK = sip_response(call_id="inv@x", method="INVITE", body=sdp(3))


def c2s(seq: int, data: bytes = b"", flags: int = PSH_ACK) -> bytes:
    return ether(ipv4(CLIENT[0], SERVER[0], 6, tcp(CLIENT[1], SERVER[1], seq, data, flags=flags)))


def s2c(seq: int, data: bytes = b"", flags: int = PSH_ACK) -> bytes:
    return ether(ipv4(SERVER[0], CLIENT[0], 6, tcp(SERVER[1], CLIENT[1], seq, data, flags=flags)))


def handshake() -> list[bytes | tuple[bytes, int]]:
    return [c2s(ISN_C, flags=SYN), s2c(ISN_S, flags=SYN | ACK), c2s(ISN_C + 1, flags=ACK)]


def segments(data: bytes, size: int, seq: int, direction=c2s) -> list[bytes]:  # type: ignore[no-untyped-def]
    return [direction(seq + i, data[i : i + size]) for i in range(0, len(data), size)]


def run(frames: list[bytes | tuple[bytes, int]]) -> list[RawMessage | Problem]:
    return list(iter_input(pcap_file(frames)))


def test_many_messages_in_one_segment_complete_in_that_packet() -> None:
    frames = [*handshake(), c2s(ISN_C + 1, b"".join(OPTIONS))]
    messages = raw(run(frames))
    assert [m.data for m in messages] == OPTIONS
    assert {m.frame for m in messages} == {4}
    assert {(m.src, m.dst, m.transport) for m in messages} == {
        ("192.0.2.1:40000", "192.0.2.2:5060", "tcp")
    }


def test_one_message_across_many_segments_completes_at_the_last_one() -> None:
    frames = [*handshake(), *segments(INVITE, 500, ISN_C + 1)]
    pcap = pcap_file(frames)
    [message] = raw(list(iter_input(pcap)))
    assert message.data == INVITE
    assert message.frame == len(frames)
    # offset: the record of the packet that carried the first byte of the message
    assert message.offset == 24 + sum(16 + len(f) for f in frames[:3] if isinstance(f, bytes))


def test_messages_straddling_segment_boundaries() -> None:
    stream = INVITE + OPTIONS[0] + OPTIONS[1] + INVITE
    frames = [*handshake(), *segments(stream, 700, ISN_C + 1)]
    assert [m.data for m in raw(run(frames))] == [INVITE, OPTIONS[0], OPTIONS[1], INVITE]


def test_out_of_order_segments_wait_for_the_gap() -> None:
    stream = OPTIONS[0] + OPTIONS[1] + OPTIONS[2]
    assert 200 < len(OPTIONS[0]) < 300
    parts = segments(stream, 100, ISN_C + 1)
    order = [parts[2], parts[0], parts[3], parts[1], *parts[4:]]
    messages = raw(run([*handshake(), *order]))
    assert [m.data for m in messages] == [OPTIONS[0], OPTIONS[1], OPTIONS[2]]
    # OPTIONS[0] (bytes 0-299) is complete only once parts[1], frame 7, fills the hole
    assert messages[0].frame == 7


def test_retransmissions_and_partial_overlaps_are_trimmed() -> None:
    stream = OPTIONS[0] + OPTIONS[1] + OPTIONS[2]
    base = ISN_C + 1
    frames = [
        *handshake(),
        c2s(base, stream[:200]),
        c2s(base, stream[:200]),  # exact retransmission
        c2s(base + 100, stream[100:450]),  # overlaps 100 old bytes
        c2s(base + 150, stream[150:300]),  # entirely old
        c2s(base + 450, stream[450:]),
        c2s(base + 450, stream[450:]),
        c2s(base + len(stream) - 1, stream[-1:], flags=ACK),  # TCP keep-alive probe
    ]
    items = run(frames)
    assert problems(items) == []
    assert [m.data for m in raw(items)] == [OPTIONS[0], OPTIONS[1], OPTIONS[2]]


def test_capture_starting_mid_stream_without_syn_finds_the_next_start_line() -> None:
    tail_of_previous = INVITE[len(INVITE) // 2 :]
    frames = [
        c2s(7_000_000, tail_of_previous + OPTIONS[0]),
        c2s(7_000_000 + len(tail_of_previous) + len(OPTIONS[0]), OPTIONS[1]),
    ]
    items = run(frames)
    assert problems(items) == []
    assert [m.data for m in raw(items)] == [OPTIONS[0], OPTIONS[1]]


def test_sequence_numbers_wrapping_around_zero() -> None:
    isn = 0xFFFFFF00
    stream = INVITE + OPTIONS[0]
    frames = [c2s(isn, flags=SYN), *segments(stream, 100, isn + 1)]
    parts = frames[1:]
    frames = [frames[0], parts[1], parts[0], *parts[2:]]  # one out of order across the wrap
    assert [m.data for m in raw(run(frames))] == [INVITE, OPTIONS[0]]


def test_missing_content_length_on_a_stream_is_a_problem_and_resyncs() -> None:
    bare = sip_request("MESSAGE", "no-cl@x", length_header="")
    frames = [*handshake(), c2s(ISN_C + 1, bare + b"hello body\r\n" + OPTIONS[0])]
    items = run(frames)
    [problem] = problems(items)
    assert problem.where == "packet 4"
    assert (
        problem.message == "SIP over TCP 192.0.2.1:40000 -> 192.0.2.2:5060: Content-Length missing"
    )
    assert [m.data for m in raw(items)] == [bare, OPTIONS[0]]


def test_garbage_inside_a_sip_stream_is_reported_and_skipped() -> None:
    frames = [
        *handshake(),
        c2s(ISN_C + 1, OPTIONS[0]),
        c2s(ISN_C + 1 + len(OPTIONS[0]), b"\x00\x01junk\r\n" + OPTIONS[1]),
    ]
    items = run(frames)
    assert [str(p) for p in problems(items)] == [
        "packet 5: SIP over TCP 192.0.2.1:40000 -> 192.0.2.2:5060: not a SIP start line: '..junk'"
    ]
    assert [m.data for m in raw(items)] == [OPTIONS[0], OPTIONS[1]]


def test_a_hole_never_filled_is_reported_at_the_end_and_the_stream_resyncs() -> None:
    base = ISN_C + 1
    stream = OPTIONS[0] + INVITE + OPTIONS[1]
    hole_start, hole_end = len(OPTIONS[0]) + 100, len(OPTIONS[0]) + 600
    frames = [*handshake(), c2s(base, stream[:hole_start]), c2s(base + hole_end, stream[hole_end:])]
    items = run(frames)
    assert [m.data for m in raw(items)] == [OPTIONS[0], OPTIONS[1]]
    [problem] = problems(items)
    assert problem.message.endswith(
        "500 bytes missing from the stream; dropped 100 bytes of an unfinished message"
    )


def test_fin_with_an_unfinished_message_is_reported() -> None:
    frames = [
        *handshake(),
        c2s(ISN_C + 1, INVITE[:-10]),
        c2s(ISN_C + 1 + len(INVITE) - 10, flags=FIN | ACK),
    ]
    items = run(frames)
    assert raw(items) == []
    [problem] = problems(items)
    assert problem.where == "packet 4"
    assert "incomplete message" in problem.message


def test_retransmission_after_fin_does_not_duplicate() -> None:
    frames = [
        *handshake(),
        c2s(ISN_C + 1, OPTIONS[0]),
        c2s(ISN_C + 1 + len(OPTIONS[0]), flags=FIN | ACK),
        c2s(ISN_C + 1, OPTIONS[0]),
    ]
    assert len(raw(run(frames))) == 1


def test_reused_ports_start_a_new_stream_after_syn() -> None:
    first = [*handshake(), c2s(ISN_C + 1, OPTIONS[0][:50]), c2s(ISN_C + 51, flags=RST)]
    second = [c2s(90_000, flags=SYN), c2s(90_001, OPTIONS[1])]
    items = run([*first, *second])
    assert [m.data for m in raw(items)] == [OPTIONS[1]]
    assert len(problems(items)) == 1  # the unfinished message of the first connection


def test_non_sip_tcp_is_silent() -> None:
    tls = bytes.fromhex("160301020001000200") + b"\x03" * 600
    http = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    frames = [c2s(1, tls), c2s(1 + len(tls), tls), s2c(9, http)]
    assert run(frames) == []


def test_stun_over_tcp_is_framed_by_its_length_and_channel_data_is_skipped() -> None:
    channel_data = b"\x40\x00\x00\x05hello\x00\x00\x00"  # RFC 8656 §11.5, padded over TCP
    stream = STUN_BINDING_REQUEST + channel_data + STUN_BINDING_SUCCESS + STUN_BINDING_REQUEST
    frames = [*handshake(), *segments(stream, 7, ISN_C + 1)]
    items = run(frames)
    assert problems(items) == []
    messages = raw(items)
    assert [(m.protocol, m.data) for m in messages] == [
        ("stun", STUN_BINDING_REQUEST),
        ("stun", STUN_BINDING_SUCCESS),
        ("stun", STUN_BINDING_REQUEST),
    ]
    assert messages[-1].frame == len(frames)


def test_snaplen_cut_tcp_segment_is_a_problem_naming_the_packet() -> None:
    cut = c2s(ISN_C + 1, INVITE)
    frames = [*handshake(), (cut[:300], len(cut)), c2s(ISN_C + 1 + len(INVITE), OPTIONS[0])]
    items = run(frames)
    assert [m.data for m in raw(items)] == [OPTIONS[0]]
    first = problems(items)[0]
    assert first.where == "packet 4"
    assert first.message.startswith(
        f"snaplen cut the packet: 300 of {len(cut)} bytes; SIP over TCP"
    )


def test_ipv6_tcp_addresses() -> None:
    data = ipv6("2001:db8::1", "2001:db8::2", 6, tcp(5061, 5060, 1, OPTIONS[0]))
    [message] = raw(run([ether(data)]))
    assert (message.src, message.dst) == ("[2001:db8::1]:5061", "[2001:db8::2]:5060")


@pytest.mark.parametrize("size", [1, 3, 64, 1460])
def test_segment_size_does_not_change_the_messages(size: int) -> None:
    stream = b"\r\n\r\n".join([INVITE, OPTIONS[0], OK]) + b"\r\n"
    frames = [*handshake(), *segments(stream, size, ISN_C + 1)]
    assert [m.data for m in raw(run(frames))] == [INVITE, OPTIONS[0], OK]


def test_retransmitted_syn_does_not_reset_the_stream() -> None:
    frames = [
        c2s(ISN_C, flags=SYN),
        c2s(ISN_C + 1, OPTIONS[0][:100]),
        c2s(ISN_C, flags=SYN),  # a late duplicate of the SYN
        c2s(ISN_C + 101, OPTIONS[0][100:]),
    ]
    items = run(frames)
    assert problems(items) == []
    assert [m.data for m in raw(items)] == [OPTIONS[0]]


def test_long_non_sip_stream_is_given_up_quietly() -> None:
    noise = bytes(range(256)) * 6  # binary, with a few LF bytes per chunk
    frames = [c2s(1 + i * len(noise), noise) for i in range(60)]
    frames.append(c2s(1 + 60 * len(noise), b"\r\n" + OPTIONS[0]))  # too late: the stream is ignored
    assert run(frames) == []


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32))
def test_duplicated_overlapping_and_reordered_segments_give_the_same_messages(
    isn: int, seed: int
) -> None:
    rng = random.Random(seed)
    stream = b"".join([INVITE, *OPTIONS, OK])
    pieces: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(stream):
        size = rng.randint(1, 300)
        pieces.append((pos, stream[pos : pos + size]))
        pos += size
    for _ in range(rng.randint(0, 12)):  # retransmissions that overlap segment boundaries
        start = rng.randrange(len(stream))
        pieces.insert(rng.randrange(len(pieces) + 1), (start, stream[start : start + 400]))
    for _ in range(rng.randint(0, 12)):  # local reordering
        i = rng.randrange(len(pieces))
        j = min(len(pieces) - 1, i + rng.randint(1, 6))
        pieces[i], pieces[j] = pieces[j], pieces[i]
    frames = [c2s(isn, flags=SYN), *(c2s(isn + 1 + at, data) for at, data in pieces)]
    frames.append(c2s(isn + 1 + len(stream), flags=FIN | ACK))
    items = run(frames)
    assert problems(items) == []
    assert [m.data for m in raw(items)] == [INVITE, *OPTIONS, OK]


def test_a_hole_behind_more_segments_than_may_wait_is_skipped_and_the_rest_decoded() -> None:
    messages = [sip_request(call_id=f"many-{i}@x", cseq=i) for i in range(1200)]
    offsets = [sum(len(m) for m in messages[:i]) for i in range(len(messages))]
    frames = [*handshake(), c2s(ISN_C + 1, messages[0])]
    # messages[1] is never captured; everything after it waits until the bound is hit.
    frames += [c2s(ISN_C + 1 + at, m) for at, m in zip(offsets[2:], messages[2:], strict=True)]
    items = run(frames)
    assert [m.data for m in raw(items)] == [messages[0], *messages[2:]]
    [problem] = problems(items)
    assert problem.message.endswith(f"{len(messages[1])} bytes missing from the stream")


def test_every_other_segment_lost_reports_each_hole_once() -> None:
    chunks = [OPTIONS[i % 5] for i in range(3000)]
    offsets = [sum(len(c) for c in chunks[:i]) for i in range(len(chunks))]
    kept = range(0, len(chunks), 2)
    frames = [*handshake(), *(c2s(ISN_C + 1 + offsets[i], chunks[i]) for i in kept)]
    items = run(frames)
    assert [m.data for m in raw(items)] == [chunks[i] for i in kept]
    assert len(problems(items)) == len(kept) - 1


# -- streams that never frame: linear work (issue 8) -------------------------------------------


def scanned_by_header_search(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Bytes each search for the end of a header section looks at, in the framer."""
    from siptool.sip import framing

    def looked(buf: bytes | bytearray, start: int, end: int | None = None) -> int:
        return (len(buf) if end is None else end) - start

    return record_calls(monkeypatch, framing, "find_header_end", looked)


@pytest.mark.parametrize(
    "unit",
    [
        b"SIP/2.0 200 OK\r\n",  # every line a start line: each began a new 64 KiB search
        sip_request("INVITE", "x@y").split(b"\r\n\r\n")[0] + b"\r\n",  # no empty line
        b"X-Filler: 0123456789\r\n",  # one start line, then header lines for ever
    ],
    ids=["status-lines", "no-separator", "header-flood"],
)
def test_sip_over_tcp_that_never_ends_its_headers_is_searched_once_and_reported_once(
    monkeypatch: pytest.MonkeyPatch, unit: bytes
) -> None:
    looked = scanned_by_header_search(monkeypatch)
    stream = OPTIONS[0] + b"INVITE sip:bob@example.com SIP/2.0\r\n" + unit * (400_000 // len(unit))
    items = run([*handshake(), *segments(stream, 1448, ISN_C + 1)])
    assert [m.data for m in raw(items)] == [OPTIONS[0]]
    assert [p.message.split(": ", 1)[1] for p in problems(items)] == [
        "no end of headers within 65536 bytes"
    ]
    assert sum(looked) <= 2 * len(stream)


def test_a_header_search_resumed_after_resynchronising_finds_the_empty_line() -> None:
    # Garbage, then a start line whose empty line arrives in a later chunk: the resync had
    # dropped the garbage but the search resumed where the dropped bytes would have been.
    from siptool.sip.framing import FramingError, SipStreamFramer

    stream = b"\nabc\nSIP/2.0 200 OK\r\nSIP/2.0 200 OK\r\n\r\nSIP/2.0 200 OK\r\nabc"
    results = []
    for cuts in ([], [1, 36]):
        framer = SipStreamFramer(max_header_bytes=48)
        out: list[bytes | FramingError] = []
        previous = 0
        for cut in [*cuts, len(stream)]:
            out += framer.feed(stream[previous:cut])
            previous = cut
        out += framer.close()
        results.append([item if isinstance(item, bytes) else item.message for item in out])
    assert results[0] == results[1]
    assert b"SIP/2.0 200 OK\r\nSIP/2.0 200 OK\r\n\r\n" in results[1]


def test_many_attribute_stun_over_tcp_checks_one_fingerprint_per_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 8,000 FINGERPRINT attributes in a message: each was checked with a CRC-32 over the whole
    # message, though only the last attribute may be a FINGERPRINT (RFC 8489 §14.7).
    import struct

    from siptool.commands.decode import DecodedMessage, decode_items
    from siptool.stun import message as stun

    crcs = record_calls(monkeypatch, stun, "_fingerprint_over", lambda data, end: end)
    body = b"".join(struct.pack("!HHI", 0x8028, 4, k) for k in range(8000))
    messages = [
        struct.pack("!HHI12s", 0x0101, len(body), 0x2112A442, bytes([k]) * 12) + body
        for k in range(5)
    ]
    items = run([*handshake(), *segments(b"".join(messages), 1448, ISN_C + 1)])
    decoded = [d for d in decode_items(items, lint=False) if isinstance(d, DecodedMessage)]
    assert [d.raw.data for d in decoded] == messages
    assert [d.stun.fingerprint_ok for d in decoded] == [False] * 5
    assert len(crcs) == 5
