"""Builders of synthetic packets and capture files for the capture tests.

tests/integration/test_capture_vs_tshark.py proves that the builders make captures a real
dissector reads the way the capture tests assume.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from siptool.capture import Problem, RawMessage

STUN_BINDING_REQUEST = bytes.fromhex(
    "000100002112a442b7e7a701bc34d686fa87dfae"
)  # RFC 5769 style header-only Binding request
STUN_BINDING_SUCCESS = (
    bytes.fromhex("0101000c2112a442b7e7a701bc34d686fa87dfae")
    + bytes.fromhex("0020000800019cd5f4b13c81")  # XOR-MAPPED-ADDRESS 192.0.2.1:48879-ish
)


def sip_request(
    method: str = "OPTIONS",
    call_id: str = "call-1@example.com",
    body: bytes = b"",
    *,
    cseq: int = 1,
    uri: str = "sip:bob@example.com",
    length_header: str = "Content-Length",
    extra: str = "",
) -> bytes:
    head = (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK{cseq}{call_id[:4]}\r\n"
        f"From: <sip:alice@example.com>;tag=a{cseq}\r\n"
        f"To: <{uri}>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        f"Max-Forwards: 70\r\n"
        f"{extra}"
    )
    if length_header:
        head += f"{length_header}: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def sip_response(
    status: int = 200,
    call_id: str = "call-1@example.com",
    body: bytes = b"",
    *,
    method: str = "OPTIONS",
    cseq: int = 1,
) -> bytes:
    head = (
        f"SIP/2.0 {status} OK\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK{cseq}{call_id[:4]}\r\n"
        f"From: <sip:alice@example.com>;tag=a{cseq}\r\n"
        f"To: <sip:bob@example.com>;tag=b{cseq}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def sdp(lines: int = 5) -> bytes:
    text = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
    text += "m=audio 4000 RTP/AVP 0 8 101\r\n"
    text += "".join(f"a=x-filler-{i}:{'y' * 60}\r\n" for i in range(lines))
    return text.encode()


# -- network layers ----------------------------------------------------------------------------


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _addr(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def ipv4(
    src: str,
    dst: str,
    proto: int,
    payload: bytes,
    *,
    ident: int = 1,
    flags_offset: int = 0x4000,
    options: bytes = b"",
    total: int | None = None,
) -> bytes:
    ihl = 5 + len(options) // 4
    length = ihl * 4 + len(payload) if total is None else total
    header = (
        struct.pack(
            "!BBHHHBBH4s4s",
            0x40 | ihl,
            0,
            length,
            ident,
            flags_offset,
            64,
            proto,
            0,
            _addr(src),
            _addr(dst),
        )
        + options
    )
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return header + payload


def ipv6(
    src: str, dst: str, nh: int, payload: bytes, *, ext: tuple[int, bytes] | None = None
) -> bytes:
    """``ext`` is ``ipv6_ext_chain(...)``: (first header type, encoded chain ending in ``nh``)."""
    first, chain = (nh, b"") if ext is None else ext
    fixed = struct.pack(
        "!IHBB16s16s", 0x60000000, len(chain) + len(payload), first, 64, _addr(src), _addr(dst)
    )
    return fixed + chain + payload


def ipv6_ext_chain(headers: Sequence[tuple[int, bytes]], final_nh: int) -> tuple[int, bytes]:
    """Extension headers given as (type, body), each padded to 8 bytes, the last pointing at
    ``final_nh``."""
    out = bytearray()
    for index, (_, body) in enumerate(headers):
        nh = headers[index + 1][0] if index + 1 < len(headers) else final_nh
        padded = body + b"\0" * ((-(len(body) + 2)) % 8)
        out += bytes([nh, (len(padded) + 2) // 8 - 1]) + padded
    return headers[0][0], bytes(out)


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def tcp(
    sport: int, dport: int, seq: int, payload: bytes = b"", *, flags: int = 0x18, ack: int = 1
) -> bytes:
    return (
        struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack, 5 << 4, flags, 65535, 0, 0)
        + payload
    )


SYN, FIN, RST, PSH_ACK, ACK = 0x02, 0x01, 0x04, 0x18, 0x10


# The default (source, destination) of the datagrams: documentation addresses (RFC 5737, 3849).
V4 = ("192.0.2.1", "192.0.2.2")
V6 = ("2001:db8::1", "2001:db8::2")


def udp4(
    payload: bytes, src: str = V4[0], dst: str = V4[1], sport: int = 5060, dport: int = 5060
) -> bytes:
    return ipv4(src, dst, 17, udp(sport, dport, payload))


def udp6(
    payload: bytes, src: str = V6[0], dst: str = V6[1], sport: int = 5060, dport: int = 5060
) -> bytes:
    return ipv6(src, dst, 17, udp(sport, dport, payload))


def _pieces(payload: bytes, size: int) -> Iterator[tuple[int, bytes, bool]]:
    """(offset, bytes, whether more follow) for each ``size`` bytes of ``payload``."""
    for offset in range(0, len(payload), size):
        yield offset, payload[offset : offset + size], offset + size < len(payload)


def fragment_ipv4(
    src: str, dst: str, proto: int, payload: bytes, *, ident: int, size: int
) -> list[bytes]:
    """IPv4 fragments of ``payload`` with ``size`` (multiple of 8) payload bytes per fragment."""
    return [
        ipv4(
            src, dst, proto, chunk, ident=ident, flags_offset=(0x2000 if more else 0) | offset // 8
        )
        for offset, chunk, more in _pieces(payload, size)
    ]


def fragment_ipv6(
    src: str, dst: str, nh: int, payload: bytes, *, ident: int, size: int
) -> list[bytes]:
    """IPv6 fragments (RFC 8200 §4.5) of ``payload``, ``size`` payload bytes per fragment."""
    return [
        struct.pack("!IHBB16s16s", 0x60000000, 8 + len(chunk), 44, 64, _addr(src), _addr(dst))
        + struct.pack("!BBHI", nh, 0, offset | int(more), ident)
        + chunk
        for offset, chunk, more in _pieces(payload, size)
    ]


# -- link layers -------------------------------------------------------------------------------


def ether(
    ip_packet: bytes, *, ethertype: int | None = None, vlans: Iterable[int] = (), tpid: int = 0x8100
) -> bytes:
    if ethertype is None:
        ethertype = 0x86DD if ip_packet[0] >> 4 == 6 else 0x0800
    tags = b"".join(
        struct.pack("!HH", tpid if i == 0 else 0x8100, vid) for i, vid in enumerate(vlans)
    )
    return (
        b"\x02\x00\x00\x00\x00\x02"
        + b"\x02\x00\x00\x00\x00\x01"
        + tags
        + struct.pack("!H", ethertype)
        + ip_packet
    )


def sll(ip_packet: bytes) -> bytes:
    proto = 0x86DD if ip_packet[0] >> 4 == 6 else 0x0800
    return struct.pack("!HHH8sH", 0, 1, 6, b"\x02\0\0\0\0\x01\0\0", proto) + ip_packet


def sll2(ip_packet: bytes) -> bytes:
    proto = 0x86DD if ip_packet[0] >> 4 == 6 else 0x0800
    return struct.pack("!HHIHBB8s", proto, 0, 2, 1, 0, 6, b"\x02\0\0\0\0\x01\0\0") + ip_packet


def null_link(ip_packet: bytes, *, family6: int = 24, order: str = "<") -> bytes:
    family = family6 if ip_packet[0] >> 4 == 6 else 2
    return struct.pack(order + "I", family) + ip_packet


def loop_link(ip_packet: bytes, *, family6: int = 24) -> bytes:
    return null_link(ip_packet, family6=family6, order=">")


# -- capture files -----------------------------------------------------------------------------

Packet = bytes | tuple[bytes, int]  # frame, or (captured frame, original length)


def pcap_file(
    frames: Sequence[Packet],
    *,
    linktype: int = 1,
    nanos: bool = False,
    order: str = "<",
    start: float = 1_700_000_000.0,
    step: float = 0.001,
    modified: bool = False,
    snaplen: int = 262144,
) -> bytes:
    magic = 0xA1B2CD34 if modified else 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for index, item in enumerate(frames):
        frame, origlen = item if isinstance(item, tuple) else (item, len(item))
        ts = start + index * step
        sec = int(ts)
        frac = round((ts - sec) * (1e9 if nanos else 1e6))
        out.append(struct.pack(order + "IIII", sec, frac, len(frame), origlen))
        if modified:
            out.append(struct.pack(order + "IHBB", 1, 0x0800, 0, 0))
        out.append(frame)
    return b"".join(out)


def _block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack(order + "II", btype, length) + body + struct.pack(order + "I", length)


def _options(order: str, options: Sequence[tuple[int, bytes]]) -> bytes:
    if not options:
        return b""
    out = b""
    for code, value in options:
        out += struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)
    return out + struct.pack(order + "HH", 0, 0)


def pcapng_shb(order: str = "<") -> bytes:
    body = struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1)
    return _block(order, 0x0A0D0D0A, body)


def pcapng_idb(
    linktype: int = 1,
    *,
    order: str = "<",
    tsresol: int | None = None,
    tsoffset: int = 0,
    snaplen: int = 0,
) -> bytes:
    options: list[tuple[int, bytes]] = []
    if tsresol is not None:
        options.append((9, bytes([tsresol])))
    if tsoffset:
        options.append((14, struct.pack(order + "q", tsoffset)))
    return _block(
        order, 1, struct.pack(order + "HHI", linktype, 0, snaplen) + _options(order, options)
    )


def pcapng_epb(
    iface: int, ticks: int, frame: bytes, *, order: str = "<", origlen: int | None = None
) -> bytes:
    body = struct.pack(
        order + "IIIII",
        iface,
        ticks >> 32,
        ticks & 0xFFFFFFFF,
        len(frame),
        len(frame) if origlen is None else origlen,
    )
    return _block(order, 6, body + frame)


def pcapng_spb(frame: bytes, *, order: str = "<") -> bytes:
    return _block(order, 3, struct.pack(order + "I", len(frame)) + frame)


def pcapng_pb(iface: int, ticks: int, frame: bytes, *, order: str = "<") -> bytes:
    body = struct.pack(
        order + "HHIIII", iface, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame)
    )
    return _block(order, 2, body + frame)


def pcapng_unknown(
    btype: int = 0x00000BAD, body: bytes = b"custom!!", *, order: str = "<"
) -> bytes:
    return _block(order, btype, body)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def raw(items: Iterable[RawMessage | Problem]) -> list[RawMessage]:
    """The messages among what ``iter_input`` gave."""
    return [item for item in items if isinstance(item, RawMessage)]


def problems(items: Iterable[RawMessage | Problem]) -> list[Problem]:
    """The problems among what ``iter_input`` gave."""
    return [item for item in items if isinstance(item, Problem)]
