"""IPv4 and IPv6 fragment reassembly: big SIP INVITEs over UDP."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from siptool.capture import iter_input
from siptool.capture.ipfrag import FragmentReassembler
from tests.support.captures import (
    ether,
    fragment_ipv4,
    fragment_ipv6,
    pcap_file,
    problems,
    raw,
    sdp,
    sip_request,
    udp,
)

INVITE = sip_request("INVITE", "big-invite@example.com", sdp(60))
SRC, DST = "192.0.2.1", "192.0.2.2"
SRC6, DST6 = "2001:db8::1", "2001:db8::2"


def v4_fragments(message: bytes = INVITE, ident: int = 0x4242, size: int = 1480) -> list[bytes]:
    return [
        ether(p)
        for p in fragment_ipv4(SRC, DST, 17, udp(5060, 5060, message), ident=ident, size=size)
    ]


def v6_fragments(message: bytes = INVITE, ident: int = 0x01020304, size: int = 1232) -> list[bytes]:
    return [
        ether(p)
        for p in fragment_ipv6(SRC6, DST6, 17, udp(5060, 5060, message), ident=ident, size=size)
    ]


def test_ipv4_fragments_in_order_make_one_message_at_the_last_fragment() -> None:
    frames = v4_fragments()
    assert len(frames) >= 4
    [message] = raw(list(iter_input(pcap_file(frames))))
    assert message.data == INVITE
    assert message.frame == len(frames)
    assert (message.src, message.dst) == ("192.0.2.1:5060", "192.0.2.2:5060")


def test_ipv4_fragments_out_of_order_duplicated_and_interleaved() -> None:
    frames = v4_fragments(ident=1)
    others = v4_fragments(sip_request("MESSAGE", "other@x", b"y" * 3000), ident=2, size=1000)
    flat = [frames[2], others[0], frames[0], frames[0], others[2], *others[3:], *frames[3:]]
    flat += [others[1], frames[1]]
    messages = raw(list(iter_input(pcap_file(flat))))
    assert [m.data for m in messages] == [sip_request("MESSAGE", "other@x", b"y" * 3000), INVITE]
    assert [m.frame for m in messages] == [len(flat) - 1, len(flat)]


def test_ipv4_overlapping_fragments_keep_the_first_bytes() -> None:
    reassembler = FragmentReassembler()
    assert reassembler.add(b"k", 0, True, b"AAAAAAAABBBBBBBB", 17, 1, 0, 0.0) is None
    assert reassembler.add(b"k", 8, True, b"XXXXXXXXCCCCCCCC", 17, 2, 0, 0.0) is None
    done = reassembler.add(b"k", 24, False, b"DDDD", 17, 3, 0, 0.0)
    assert done is not None
    assert done[0] == b"AAAAAAAABBBBBBBBCCCCCCCCDDDD"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 120), st.integers(0, 40), st.integers(0, 255)),
        min_size=1,
        max_size=30,
    ),
    st.integers(1, 160),
)
def test_overlapping_duplicated_fragments_agree_with_a_byte_by_byte_model(
    pieces: list[tuple[int, int, int]], total: int
) -> None:
    # Each fragment is (offset, length, fill byte); the last one (MF clear) fixes the total.
    pieces = [*pieces, (max(0, total - 8), total - max(0, total - 8), 0xEE)]
    model: list[int | None] = [None] * 200
    reassembler = FragmentReassembler()
    done = None
    for index, (offset, length, fill) in enumerate(pieces):
        last = index == len(pieces) - 1
        done = reassembler.add(b"k", offset, not last, bytes([fill]) * length, 17, index, 0, 0.0)
        for pos in range(offset, offset + length):
            if model[pos] is None:
                model[pos] = fill  # the bytes that arrived first win
        if not last:
            assert done is None or all(b is not None for b in model[:total])
    expected = model[:total]
    if None in expected:
        assert done is None
        [dgram] = reassembler.drain()
        assert dgram.have == sum(b is not None for b in model)
    else:
        assert done is not None and done[0] == bytes(expected)  # type: ignore[arg-type]


def test_duplicate_fragments_are_counted_once_in_the_loss_report() -> None:
    frames = v4_fragments(size=1000)
    items = list(iter_input(pcap_file([frames[0]] * 500 + frames[2:])))
    [problem] = problems(items)
    dgram_size = len(udp(5060, 5060, INVITE))
    assert problem.message == (
        f"incomplete fragmented SIP or STUN datagram: {dgram_size - 1000} of {dgram_size}"
        " bytes captured"
    )


def test_incomplete_fragmented_sip_is_reported_at_the_end() -> None:
    frames = v4_fragments()
    items = list(iter_input(pcap_file([*frames[:-2], frames[-1]])))
    assert raw(items) == []
    [problem] = problems(items)
    assert problem.where == "packet 1"
    assert problem.message.startswith("incomplete fragmented SIP or STUN datagram:")


def test_incomplete_fragments_of_other_traffic_are_silent() -> None:
    frames = [
        ether(p)
        for p in fragment_ipv4(SRC, DST, 17, udp(4000, 4000, b"\x80" * 3000), ident=9, size=1480)
    ]
    assert list(iter_input(pcap_file(frames[:-1]))) == []


def test_fragments_expire_after_their_timeout() -> None:
    reassembler = FragmentReassembler(timeout=30.0)
    reassembler.add(b"k", 8, False, b"tail....", 17, 1, 0, 100.0)
    # Same key 31 s later: the old piece is given up, not glued to the new datagram.
    assert reassembler.add(b"k", 0, True, b"head....", 17, 2, 0, 131.0) is None
    assert [d.first_frame for d in reassembler.lost] == [1]


def test_snaplen_cut_fragment_is_a_problem() -> None:
    frames = v4_fragments()
    cut = (frames[1][:300], len(frames[1]))
    items = list(iter_input(pcap_file([frames[0], cut, *frames[2:]])))
    assert raw(items) == []
    assert any(
        p.where == "packet 2" and "snaplen cut an IP fragment" in p.message for p in problems(items)
    )


def test_ipv6_fragments_are_reassembled() -> None:
    frames = v6_fragments()
    reordered = [frames[1], frames[0], *frames[2:]]
    [message] = raw(list(iter_input(pcap_file(reordered))))
    assert message.data == INVITE
    assert message.src == "[2001:db8::1]:5060"
    assert message.frame == len(frames)


def test_ipv6_fragments_with_headers_before_and_inside_the_fragmentable_part() -> None:
    # Hop-by-hop before the Fragment header; Destination Options inside the fragmentable part.
    dest_opts = bytes([17, 0]) + b"\x01\x04\0\0\0\0"  # Next Header UDP, 8 bytes, PadN
    fragmentable = dest_opts + udp(5060, 5060, INVITE)
    frames = []
    size = 1232
    for offset in range(0, len(fragmentable), size):
        chunk = fragmentable[offset : offset + size]
        more = offset + size < len(fragmentable)
        hop = bytes([44, 0]) + b"\x01\x04\0\0\0\0"  # Hop-by-hop, then Fragment
        frag = struct.pack("!BBHI", 60, 0, offset | int(more), 77)
        payload = hop + frag + chunk
        fixed = struct.pack(
            "!IHBB16s16s",
            0x60000000,
            len(payload),
            0,
            64,
            bytes.fromhex("20010db8" + "0" * 23 + "1"),
            bytes.fromhex("20010db8" + "0" * 23 + "2"),
        )
        frames.append(ether(fixed + payload))
    [message] = raw(list(iter_input(pcap_file(frames))))
    assert message.data == INVITE
