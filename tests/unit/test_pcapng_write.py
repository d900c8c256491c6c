"""capture/pcapng_write.py read back by siptool's own pcapng reader (tshark reads the same
files in tests/integration/test_sniffer_vs_tcpdump.py): times to the nanosecond, link types,
interfaces, bytes, original lengths, the block layout of draft-ietf-opsawg-pcapng."""

from __future__ import annotations

import io
import struct

import pytest

from siptool.capture import Problem, iter_input
from siptool.capture.layers import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_RAW
from siptool.capture.pcap import PCAPNG_MAGIC, iter_pcapng
from siptool.capture.pcapng_write import PcapngWriter
from tests.support.captures import ether, raw, sip_request, sll, udp4, udp6

# A time whose nanoseconds a float of seconds cannot hold: the reader's float is compared to
# within its precision, the file's 64-bit tick count exactly.
T0 = 1_700_000_000_123_456_789


def blocks(data: bytes) -> list[tuple[int, bytes]]:
    """(type, body) of every block, checking the general block structure (§3.1)."""
    found = []
    offset = 0
    while offset < len(data):
        btype, length = struct.unpack_from("<II", data, offset)
        assert length % 4 == 0 and length >= 12
        assert struct.unpack_from("<I", data, offset + length - 4)[0] == length
        found.append((btype, data[offset + 8 : offset + length - 4]))
        offset += length
    assert offset == len(data)
    return found


def options(body: bytes) -> dict[int, bytes]:
    """The options of an IDB body (after its 8 fixed bytes), ending with opt_endofopt."""
    found: dict[int, bytes] = {}
    pos = 8
    while True:
        code, size = struct.unpack_from("<HH", body, pos)
        if code == 0:
            assert size == 0 and pos + 4 == len(body)
            return found
        found[code] = body[pos + 4 : pos + 4 + size]
        pos += 4 + ((size + 3) & ~3)


def test_packets_read_back_with_their_times_linktypes_bytes_and_lengths() -> None:
    stream = io.BytesIO()
    writer = PcapngWriter(stream)
    eth = writer.interface(LINKTYPE_ETHERNET, "lo")
    cooked = writer.interface(LINKTYPE_LINUX_SLL, "eth0", 65535)
    frames = [
        (eth, T0, ether(udp4(sip_request())), None),
        (cooked, T0 + 1, sll(udp6(sip_request(call_id="two"))), None),
        (eth, T0 + 1_000_000_007, ether(udp4(b"odd")), 900),  # 3 bytes: padding needed
    ]
    for interface, ticks, frame, original in frames:
        writer.packet(interface, ticks, frame, original)
    data = stream.getvalue()
    assert data[:4] == PCAPNG_MAGIC
    everything = list(iter_pcapng(data))
    records = [r for r in everything if not isinstance(r, Problem)]
    assert len(records) == len(everything)
    assert [r[0] for r in records] == [1, 2, 3]  # and no Problem among them
    for record, (_, ticks, frame, original) in zip(records, frames, strict=True):
        _, time, _, start, end, origlen, _ = record
        assert data[start:end] == frame
        assert origlen == (original if original is not None else len(frame))
        assert time == pytest.approx(ticks / 1e9, abs=1e-6)
    assert [r[2] for r in records] == [LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_ETHERNET]
    ticks_written = [
        (hi << 32) | lo
        for btype, body in blocks(data)
        if btype == 6
        for _, hi, lo in [struct.unpack_from("<III", body)]
    ]
    assert ticks_written == [T0, T0 + 1, T0 + 1_000_000_007]
    messages = raw(iter_input(data))
    assert [m.src for m in messages] == ["192.0.2.1:5060", "[2001:db8::1]:5060"]


def test_one_idb_per_linktype_and_name_with_nanosecond_resolution_and_the_name() -> None:
    stream = io.BytesIO()
    writer = PcapngWriter(stream, application="test app")
    assert writer.interface(LINKTYPE_ETHERNET, "lo") == 0
    assert writer.interface(LINKTYPE_LINUX_SLL, "lo") == 1
    assert writer.interface(LINKTYPE_ETHERNET, "lo", 100) == 0  # the same pair: the same IDB
    assert writer.interface(LINKTYPE_RAW, "wg0", 0) == 2
    shb, *idbs = blocks(stream.getvalue())
    assert shb[0] == 0x0A0D0D0A
    magic, major, minor, length = struct.unpack_from("<IHHq", shb[1])
    assert (magic, major, minor, length) == (0x1A2B3C4D, 1, 0, -1)
    assert shb[1][16:20] == struct.pack("<HH", 4, 8) and shb[1][20:28] == b"test app"
    assert [b[0] for b in idbs] == [1, 1, 1]
    described = [(struct.unpack_from("<HHI", body), options(body)) for _, body in idbs]
    assert described == [
        ((LINKTYPE_ETHERNET, 0, 262144), {2: b"lo", 9: b"\x09"}),
        ((LINKTYPE_LINUX_SLL, 0, 262144), {2: b"lo", 9: b"\x09"}),
        ((LINKTYPE_RAW, 0, 0), {2: b"wg0", 9: b"\x09"}),
    ]


def test_a_packet_longer_than_the_snaplen_is_cut_and_keeps_its_original_length() -> None:
    stream = io.BytesIO()
    writer = PcapngWriter(stream)
    small = writer.interface(LINKTYPE_ETHERNET, "lo", 64)
    frame = ether(udp4(sip_request()))
    writer.packet(small, T0, frame)
    [record] = iter_pcapng(stream.getvalue())
    assert not isinstance(record, Problem)
    _, _, _, start, end, origlen, _ = record
    assert stream.getvalue()[start:end] == frame[:64] and origlen == len(frame)


def test_the_writer_refuses_what_no_block_can_say() -> None:
    writer = PcapngWriter(io.BytesIO())
    with pytest.raises(ValueError, match="unknown interface"):
        writer.packet(0, T0, b"x")
    eth = writer.interface(LINKTYPE_ETHERNET, "lo")
    with pytest.raises(ValueError, match="64-bit"):
        writer.packet(eth, -1, b"x")
    with pytest.raises(ValueError, match="out of range"):
        writer.interface(70000, "lo")


def test_each_block_is_one_write_so_a_flushed_file_holds_whole_blocks() -> None:
    class Writes(io.BytesIO):
        sizes: list[int]

        def write(self, data: bytes) -> int:  # type: ignore[override]
            self.sizes.append(len(data))
            return super().write(data)

    stream = Writes()
    stream.sizes = []
    writer = PcapngWriter(stream)
    writer.packet(writer.interface(LINKTYPE_ETHERNET, "lo"), T0, ether(udp4(b"abc")))
    assert stream.sizes == [len(body) + 12 for _, body in blocks(stream.getvalue())]
