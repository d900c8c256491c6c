"""pcap and pcapng readers: every magic, byte order, interface, block type, and damaged files."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from siptool.capture import Problem, RawMessage, iter_input
from siptool.capture.pcap import iter_pcap, iter_pcapng
from tests.support.captures import (
    ether,
    pcap_file,
    pcapng_epb,
    pcapng_idb,
    pcapng_pb,
    pcapng_shb,
    pcapng_spb,
    pcapng_unknown,
    problems,
    raw,
    sip_request,
    sip_response,
    sll,
    udp4,
    udp6,
)
from tests.support.paths import CAPTURES
from tests.support.spy import record_calls

CALL = CAPTURES / "sip-call-sipp-uac-uas.pcap"
TCP_OPTIONS = CAPTURES / "sip-options-tcp.pcap"
REGISTER_NG = CAPTURES / "sip-register-digest-auth.pcapng"


def call_ids(items: list[RawMessage | Problem]) -> list[str]:
    out = []
    for message in raw(items):
        for line in message.data.split(b"\r\n"):
            if line.lower().startswith(b"call-id:"):
                out.append(line.split(b":", 1)[1].strip().decode())
    return out


# -- pcap --------------------------------------------------------------------------------------


FRAMES = [
    ether(udp4(sip_request(call_id="a"))),
    ether(udp6(sip_response(call_id="a"))),
    ether(udp4(b"\x80\x08" + b"\0" * 170)),  # RTP: ignored silently
    ether(udp4(sip_request("BYE", call_id="a", cseq=2))),
]


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nanos", [False, True])
def test_pcap_in_both_byte_orders_and_resolutions_gives_the_same_messages(
    order: str, nanos: bool
) -> None:
    data = pcap_file(FRAMES, order=order, nanos=nanos, start=1_700_000_000.0, step=0.000123457)
    items = list(iter_input(data))
    assert problems(items) == []
    messages = raw(items)
    assert [m.frame for m in messages] == [1, 2, 4]
    assert [m.src for m in messages] == ["192.0.2.1:5060", "[2001:db8::1]:5060", "192.0.2.1:5060"]
    assert messages[1].time == pytest.approx(1_700_000_000.000123457, abs=1e-6)
    if nanos:
        assert messages[2].time == pytest.approx(
            1_700_000_000.000370371, abs=1e-9 * 1_700_000_000 * 4e-7
        )
        assert messages[2].time != pytest.approx(1_700_000_000.000370, abs=1e-7)
    assert messages[0].offset == 24


def test_modified_pcap_with_24_byte_record_headers_is_read() -> None:
    items = list(iter_input(pcap_file(FRAMES, modified=True)))
    assert [m.frame for m in raw(items)] == [1, 2, 4]


def test_pcap_fcs_bits_in_the_link_type_strip_the_frame_check_sequence() -> None:
    frames = [frame + b"\xde\xad\xbe\xef" for frame in FRAMES]
    data = bytearray(pcap_file(frames))
    struct.pack_into("<I", data, 20, 1 | 0x04000000 | (2 << 28))  # Ethernet, FCS of 2 words
    messages = raw(list(iter_input(bytes(data))))
    assert [m.frame for m in messages] == [1, 2, 4]
    assert not messages[1].data.endswith(b"\xde\xad\xbe\xef")


def test_pcap_with_a_corrupt_record_header_is_resynchronised() -> None:
    data = bytearray(pcap_file(FRAMES))
    second = 24 + 16 + len(FRAMES[0])
    struct.pack_into("<I", data, second + 8, 0x7FFFFFFF)  # captured length of record 2
    items = list(iter_input(bytes(data)))
    [problem] = problems(items)
    assert problem.where == f"packet 2, byte {second}"
    assert "corrupt record header" in problem.message and not problem.fatal
    # Record 2 is lost; numbering goes on from the next record found.
    assert [(m.frame, m.data[:3]) for m in raw(items)] == [(1, b"OPT"), (3, b"BYE")]


# -- pcapng ------------------------------------------------------------------------------------


def multi_interface(order: str) -> bytes:
    return b"".join(
        [
            pcapng_shb(order),
            pcapng_idb(1, order=order),  # Ethernet, µs
            pcapng_idb(101, order=order, tsresol=9),  # raw IP, ns
            pcapng_unknown(order=order),
            pcapng_idb(113, order=order, tsresol=0x80 | 20, tsoffset=100),  # SLL, 2^-20 s, +100 s
            pcapng_epb(
                0, 1_700_000_000_000_001, ether(udp4(sip_request(call_id="e0"))), order=order
            ),
            pcapng_epb(1, 1_700_000_000_000_000_002, udp4(sip_request(call_id="e1")), order=order),
            pcapng_epb(2, 1_700_000_000 << 20, sll(udp6(sip_request(call_id="e2"))), order=order),
            pcapng_spb(ether(udp4(sip_request(call_id="s0"))), order=order),
            pcapng_pb(1, 3_000_000_000, udp4(sip_request(call_id="p1")), order=order),
            pcapng_unknown(0x40000BAD, b"custom block data", order=order),
        ]
    )


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_several_interfaces_with_own_link_types_and_resolutions(order: str) -> None:
    items = list(iter_input(multi_interface(order)))
    assert problems(items) == []
    assert call_ids(items) == ["e0", "e1", "e2", "s0", "p1"]
    messages = raw(items)
    # the custom block (0xBAD) before them takes frame 1, as in tshark
    assert [m.frame for m in messages] == [2, 3, 4, 5, 6]
    assert messages[0].time == pytest.approx(1_700_000_000.000001, abs=1e-7)
    assert messages[1].time == pytest.approx(1_700_000_000.000000002, abs=1e-6)
    assert messages[2].time == pytest.approx(1_700_000_100.0)
    assert messages[3].time is None  # a Simple Packet Block has no timestamp
    assert messages[4].time == pytest.approx(3.0)
    assert messages[2].src == "[2001:db8::1]:5060"


def test_pcapng_sections_in_different_byte_orders_are_concatenable() -> None:
    little = multi_interface("<")
    big = multi_interface(">")
    items = list(iter_input(little + big))
    assert problems(items) == []
    assert [m.frame for m in raw(items)] == [2, 3, 4, 5, 6, 9, 10, 11, 12, 13]


def test_pcapng_garbage_between_blocks_is_reported_and_skipped() -> None:
    data = multi_interface("<")
    blocks = pcapng_shb() + pcapng_idb(1)
    first = pcapng_epb(0, 1, ether(udp4(sip_request(call_id="before"))))
    after = pcapng_epb(0, 2, ether(udp4(sip_request(call_id="after"))))
    data = blocks + first + b"\x00garbage\xff" * 3 + after
    items = list(iter_input(data))
    [problem] = problems(items)
    assert problem.where == f"byte {len(blocks) + len(first)}"
    assert problem.message == "garbage between blocks: skipped 27 bytes"
    assert call_ids(items) == ["before", "after"]


def test_pcapng_packet_before_any_interface_is_a_problem_not_a_crash() -> None:
    data = pcapng_shb() + pcapng_epb(3, 1, b"whatever") + pcapng_spb(b"x")
    items = list(iter_input(data))
    assert [p.message for p in problems(items)] == [
        "unknown interface 3",
        "simple packet block before any interface",
    ]


def test_unsupported_link_type_is_reported_once() -> None:
    data = pcap_file([b"\0" * 60] * 3, linktype=147)
    assert [str(p) for p in problems(list(iter_input(data)))] == [
        "packet 1: unsupported link type 147"
    ]


# -- damaged files -----------------------------------------------------------------------------


def record_ends(data: bytes, fmt: str) -> dict[int, int]:
    """frame -> offset just past its pcap record or pcapng block."""
    ends = {}
    records = iter_pcap(data) if fmt == "pcap" else iter_pcapng(data)
    for record in records:
        assert isinstance(record, tuple)
        frame, _, _, _, end, _, offset = record
        ends[frame] = (
            end if fmt == "pcap" else offset + struct.unpack_from("<I", data, offset + 4)[0]
        )
    return ends


def boundaries(data: bytes, fmt: str) -> set[int]:
    """Offsets where a cut leaves only whole records or blocks."""
    if fmt == "pcap":
        return {24, *record_ends(data, fmt).values()}
    found = set()
    offset = 0
    while offset < len(data):
        offset += struct.unpack_from("<I", data, offset + 4)[0]
        found.add(offset)
    return found


@pytest.mark.parametrize(
    ("path", "fmt"), [(CALL, "pcap"), (TCP_OPTIONS, "pcap"), (REGISTER_NG, "pcapng")]
)
def test_cut_real_captures_give_problems_and_every_message_before_the_cut(
    path: Path, fmt: str
) -> None:
    data = path.read_bytes()
    full = list(iter_input(data))
    ends = record_ends(data, fmt)
    whole = boundaries(data, fmt)
    for cut in range(len(data)):
        items = list(iter_input(data[:cut], input_format=fmt))
        got = [(m.frame, m.data) for m in raw(items)]
        complete = [
            (m.frame, m.data) for m in raw(full) if m.frame is not None and ends[m.frame] <= cut
        ]
        assert got[: len(complete)] == complete, cut
        bad = problems(items)
        if cut in whole:
            assert [p for p in bad if p.fatal] == [], cut
        else:
            assert bad and bad[-1].fatal, cut
            assert items[-1] is bad[-1]
            assert bad[-1].where.startswith(("packet", "byte")), cut


def test_truncated_record_problem_names_packet_and_offset() -> None:
    data = CALL.read_bytes()
    ends = record_ends(data, "pcap")
    cut = ends[3] + 16 + 40
    items = list(iter_input(data[:cut]))
    assert [m.frame for m in raw(items)] == [1, 2, 3]
    assert (
        str(items[-1])
        == f"packet 4, byte {ends[3]}: truncated record: 40 of {ends[4] - ends[3] - 16} bytes"
    )


def test_truncated_pcapng_block_names_the_packet() -> None:
    data = REGISTER_NG.read_bytes()
    ends = record_ends(data, "pcapng")
    items = list(iter_input(data[: ends[2] + 100]))
    assert [m.frame for m in raw(items)] == [1, 2]
    problem = items[-1]
    assert isinstance(problem, Problem) and problem.fatal
    assert problem.where == f"packet 3, byte {ends[2]}"
    assert problem.message.startswith("truncated block: 100 of ")


# -- damage crossed in linear time (issue 8) ---------------------------------------------------


class ScanCounting(bytes):
    """Capture bytes that count how many bytes ``find`` calls look at."""

    scanned = 0

    def find(self, sub: Any, start: Any = None, end: Any = None) -> int:
        found = super().find(sub, start, end)
        ScanCounting.scanned += (len(self) if found < 0 else found) - (start or 0)
        return found


def test_pcapng_damage_full_of_block_types_is_crossed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # Words that are block types with lengths no block has: each was a candidate, and each
    # candidate searched the rest of the file again for every block type (100 KB took 16 s).
    from siptool.capture import pcap

    checked = record_calls(monkeypatch, pcap, "_block_ok", lambda data, offset, order: offset)
    head = pcapng_shb() + pcapng_idb(1)
    first = pcapng_epb(0, 1, ether(udp4(sip_request(call_id="before"))))
    after = pcapng_epb(0, 2, ether(udp4(sip_request(call_id="after"))))
    words = struct.pack("<II", 6, 13) + struct.pack("<II", 1, 7) + struct.pack("<II", 0x0A0D0D0A, 5)
    damage = words * 40_000  # 480 KB
    ScanCounting.scanned = 0
    items = list(iter_pcapng(ScanCounting(head + first + damage + after)))
    [problem] = [i for i in items if isinstance(i, Problem)]
    assert problem.message == f"garbage between blocks: skipped {len(damage)} bytes"
    assert [r[0] for r in items if not isinstance(r, Problem)] == [1, 2]
    # Each candidate checked once (4 block-type words a unit, ISB's 5 too; the first is the
    # block the reader refused, the block after the damage the one found), and no search of
    # the rest of the file per candidate.
    assert len(checked) == len(set(checked)) == 4 * 40_000
    assert ScanCounting.scanned <= len(damage)


@pytest.mark.parametrize("fill", ["random", "zeros", "ones"])
def test_pcap_damage_of_any_bytes_is_skipped_to_the_next_record(fill: str) -> None:
    import random

    damage = {
        "random": random.Random(8).randbytes(300_000),
        "zeros": bytes(300_000),
        "ones": b"\xff" * 300_000,
    }[fill]
    data = pcap_file(FRAMES)
    second = 24 + 16 + len(FRAMES[0])
    items = list(iter_input(data[:second] + b"\xff" * 16 + damage + data[second:]))
    [problem] = problems(items)
    assert problem.message.endswith(f"skipped {16 + len(damage)} bytes")
    assert [m.data[:3] for m in raw(items)] == [b"OPT", b"SIP", b"BYE"]


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize(("nanos", "modified"), [(False, False), (True, False), (False, True)])
def test_every_real_record_header_passes_the_resync_prefilter(
    order: str, nanos: bool, modified: bool
) -> None:
    # The resync scans for a cheap pattern first; it must never skip a real record.
    from siptool.capture.pcap import _record_starts

    for path in sorted(CAPTURES.glob("*.pcap")):
        records = [r for r in iter_pcap(path.read_bytes()) if not isinstance(r, Problem)]
        frames = [path.read_bytes()[start:end] for _, _, _, start, end, _, _ in records]
        data = pcap_file(frames, order=order, nanos=nanos, modified=modified)
        pattern = _record_starts(order, 1e-9 if nanos else 1e-6)
        offsets = [r[-1] for r in iter_pcap(data) if not isinstance(r, Problem)]
        assert offsets and all(pattern.match(data, offset) for offset in offsets), path.name


# -- times that are no date (issue 8) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("idb", "ticks", "seconds"),
    [
        (pcapng_idb(1, tsoffset=300_000_000_000), 5_000_000, 300_000_000_005.0),
        (pcapng_idb(1, tsoffset=-(2**62)), 0, float(-(2**62))),
        (pcapng_idb(1, tsresol=0), 1_700_000_000_000_000, 1.7e15),
        (pcapng_idb(1, tsresol=0x80), 2**63, 2.0**63),
    ],
    ids=["year-11476", "before-year-1", "if_tsresol-0", "if_tsresol-2^0"],
)
def test_a_time_that_is_no_date_is_kept_and_reported_once_per_interface(
    idb: bytes, ticks: int, seconds: float
) -> None:
    packets = [pcapng_epb(0, ticks + k, ether(udp4(sip_request(cseq=k + 1)))) for k in range(3)]
    data = pcapng_shb() + idb + b"".join(packets)
    items = list(iter_pcapng(data))
    [problem] = [i for i in items if isinstance(i, Problem)]
    assert problem.where == f"packet 1, byte {len(pcapng_shb()) + len(idb)}"
    assert problem.message.startswith("timestamp out of range: ") and not problem.fatal
    assert "is no date in years 1-9999 (interface 0: " in problem.message
    records = [r for r in items if not isinstance(r, Problem)]
    assert [r[0] for r in records] == [1, 2, 3]
    assert records[0][1] == pytest.approx(seconds, rel=1e-9)


def test_one_packet_with_a_wild_timestamp_is_reported_and_the_others_keep_their_dates() -> None:
    good = 1_700_000_000_000_000
    ticks = [good, 2**64 - 1, good + 1]
    data = (
        pcapng_shb()
        + pcapng_idb(1)
        + b"".join(
            pcapng_epb(0, t, ether(udp4(sip_request(cseq=k + 1)))) for k, t in enumerate(ticks)
        )
    )
    items = list(iter_input(data))
    [problem] = problems(items)
    assert problem.where.startswith("packet 2, byte ")
    assert [m.time for m in raw(items)] == [
        1.7e9,
        pytest.approx(1.8446744073709552e13),
        1.7e9 + 1e-6,
    ]
