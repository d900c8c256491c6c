"""The packets --pcap-out writes (capture/synth.py, net/pcap_tap.py), without a socket: UDP
checksums equal to those of a real capture that tshark validates, RFC 1071's own example, IPv4
headers that sum to zero, TCP conversations whose segments siptool's own reader reassembles
into the very bytes written, and the recording's file, ContextVar and errors."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest

from siptool.addr import split_address
from siptool.capture import RawMessage, iter_input
from siptool.capture.synth import (
    ACK,
    FIN,
    MAX_SEGMENT,
    PSH,
    RST,
    SYN,
    TcpConversation,
    internet_checksum,
    ip_bytes,
    ip_packet,
    udp_packet,
)
from siptool.errors import InputError
from siptool.net.pcap_tap import PcapTap, current_tap, recording
from tests.support.captures import sip_request
from tests.support.paths import CAPTURES

# tshark -o udp.check_checksum:TRUE on sip-invite-ipfrag.pcap (captured on a veth pair, where
# the kernel computes every checksum): frame -> UDP checksum, each one "Good".
GOOD_CHECKSUMS = {
    2: 0x0425,
    10: 0xA705,
    12: 0x100E,
    15: 0xEE90,
    17: 0x7E33,
    19: 0x8705,
    21: 0xEA68,
}


def test_udp_checksums_equal_those_of_a_real_capture() -> None:
    data = (CAPTURES / "sip-invite-ipfrag.pcap").read_bytes()
    checked = 0
    for message in iter_input(data):
        assert isinstance(message, RawMessage)
        if message.frame not in GOOD_CHECKSUMS:
            continue
        assert message.src is not None and message.dst is not None
        (src, sport), (dst, dport) = split_address(message.src), split_address(message.dst)
        packet = udp_packet(ip_bytes(src), sport, ip_bytes(dst), dport, message.data)
        udp = 20 if packet[0] >> 4 == 4 else 40
        assert struct.unpack_from("!H", packet, udp + 6)[0] == GOOD_CHECKSUMS[message.frame]
        checked += 1
    assert checked == len(GOOD_CHECKSUMS)


def test_rfc1071_example_and_odd_lengths() -> None:
    # RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (one's complement 220d).
    assert internet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D
    # An odd length is padded with a zero byte.
    assert internet_checksum(b"\x01") == internet_checksum(b"\x01\x00") == 0xFEFF
    assert internet_checksum(b"") == 0xFFFF


def test_ipv4_header_sums_to_zero_and_carries_df_ttl_and_lengths() -> None:
    payload = b"x" * 101
    packet = udp_packet(ip_bytes("192.0.2.1"), 5060, ip_bytes("198.51.100.7"), 5070, payload, 7)
    assert internet_checksum(packet[:20]) == 0
    version_ihl, _, total, ident, flags, ttl, proto = struct.unpack_from("!BBHHHBB", packet)
    assert (version_ihl, total, ident, flags, ttl, proto) == (0x45, 20 + 8 + 101, 7, 0x4000, 64, 17)
    assert struct.unpack_from("!HHH", packet, 20) == (5060, 5070, 8 + 101)
    # The UDP checksum over the pseudo-header validates to zero as well.
    pseudo = packet[12:20] + struct.pack("!BBH", 0, 17, 8 + 101)
    assert internet_checksum(pseudo + packet[20:]) == 0


def test_ipv6_and_mapped_addresses() -> None:
    packet = udp_packet(ip_bytes("2001:db8::1"), 1, ip_bytes("[2001:db8::2]"), 2, b"abc")
    assert packet[0] >> 4 == 6 and struct.unpack_from("!H", packet, 4)[0] == 8 + 3
    assert packet[6] == 17 and packet[7] == 64
    assert ip_bytes("::ffff:192.0.2.1") == bytes([192, 0, 2, 1])
    assert ip_bytes("fe80::1%eth0") == ip_bytes("fe80::1")
    with pytest.raises(ValueError):
        ip_packet(ip_bytes("192.0.2.1"), ip_bytes("2001:db8::2"), 17, b"")
    with pytest.raises(ValueError):
        ip_bytes("example.com")


def tcp_fields(packet: bytes) -> tuple[int, int, int, bytes]:
    """(seq, ack, flags, payload) of an IPv4 TCP packet, its checksums checked."""
    assert internet_checksum(packet[:20]) == 0
    length = len(packet) - 20
    pseudo = packet[12:20] + struct.pack("!BBH", 0, 6, length)
    assert internet_checksum(pseudo + packet[20:]) == 0
    seq, ack, offset, flags = struct.unpack_from("!IIBB", packet, 24)
    return seq, ack, flags, packet[20 + (offset >> 4) * 4 :]


def test_tcp_conversation_numbers_each_direction_consistently() -> None:
    local, remote = (ip_bytes("192.0.2.1"), 40000), (ip_bytes("192.0.2.2"), 5060)
    tcp = TcpConversation(local, remote, 0xFFFFFFF0, 1000)  # our numbers wrap around
    packets = [tcp.syn(), *tcp.established()]
    big = bytes(range(256)) * 600  # 153,600 bytes: three segments
    packets += tcp.data(True, big)
    packets += tcp.data(False, b"reply")
    packets += tcp.fin(False) + tcp.fin(True) + tcp.fin(True)  # a second FIN is not sent
    fields = [tcp_fields(p) for p in packets]
    assert [f[2] for f in fields] == [SYN, SYN | ACK, ACK] + [PSH | ACK] * 4 + [FIN | ACK] * 2
    assert fields[0][:2] == (0xFFFFFFF0, 0) and fields[1][:2] == (1000, 0xFFFFFFF1)
    assert fields[2][:2] == (0xFFFFFFF1, 1001)
    segments = fields[3:6]
    assert b"".join(f[3] for f in segments) == big
    assert all(len(f[3]) <= MAX_SEGMENT for f in segments)
    assert [f[0] for f in segments] == [
        (0xFFFFFFF1 + n * MAX_SEGMENT) & 0xFFFFFFFF for n in range(3)
    ]
    end = (0xFFFFFFF1 + len(big)) & 0xFFFFFFFF
    assert fields[6][:2] == (1001, end)  # the reply acknowledges all of it
    assert fields[7][:2] == (1006, end)  # the peer's FIN
    assert fields[8][:2] == (end, 1007)  # ours acknowledges it
    assert tcp.closed


def test_a_reset_ends_both_sides() -> None:
    tcp = TcpConversation((ip_bytes("::1"), 1), (ip_bytes("::1"), 2), 0, 0)
    tcp.syn()
    (reset,) = tcp.reset(False)
    assert reset[40 + 13] == RST | ACK
    assert tcp.closed and tcp.fin(True) == [] and tcp.reset(True) == []


def test_recording_writes_a_file_siptool_decode_reassembles(tmp_path: Path) -> None:
    path = tmp_path / "out.pcapng"
    assert current_tap() is None
    invite = sip_request(body=b"v=0\r\n" + b"a=x\r\n" * 30000)  # 150 kB: segmented
    local, remote = ("127.0.0.1", 40000), ("127.0.0.1", 5060)
    with recording(str(path)):
        tap = current_tap()
        assert isinstance(tap, PcapTap)

        async def inside_a_task() -> PcapTap | None:
            return current_tap()

        assert asyncio.run(inside_a_task()) is tap  # tasks inherit it
        tap.udp(local, remote, sip_request(call_id="udp-out"), True)
        tap.udp(("::1", 5062), ("::1", 5060), sip_request(call_id="udp-in6"), False)
        conversation = tap.tcp(local, remote, 1_700_000_000_000_000_000)
        tap.write(conversation.data(True, invite))
        # The recording ends with the connection open: our FIN is written.
    assert current_tap() is None and tap.closed
    found = [m for m in iter_input(path.read_bytes()) if isinstance(m, RawMessage)]
    assert [(m.src, m.dst, m.transport) for m in found] == [
        ("127.0.0.1:40000", "127.0.0.1:5060", "udp"),
        ("[::1]:5060", "[::1]:5062", "udp"),
        ("127.0.0.1:40000", "127.0.0.1:5060", "tcp"),
    ]
    assert found[2].data == invite
    assert b"udp-out" in found[0].data and b"udp-in6" in found[1].data


def test_a_path_that_cannot_be_written_is_one_input_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing" / "out.pcapng"
    with pytest.raises(InputError) as raised, recording(str(missing)):
        pytest.fail("the recording must not start")
    assert raised.value.message == (f"cannot write --pcap-out {missing}: No such file or directory")
    with pytest.raises(InputError, match="Is a directory"), recording(str(tmp_path)):
        pass
    assert current_tap() is None
