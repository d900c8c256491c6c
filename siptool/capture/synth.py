"""IP packets built from socket addresses: what ``--pcap-out`` writes for each datagram and
segment siptool moved, since a socket hands over payloads and never the headers around them.

Each packet is a whole IPv4 (RFC 791) or IPv6 (RFC 8200) packet, as LINKTYPE_RAW carries it,
around a UDP datagram (RFC 768) or a TCP segment (RFC 9293 §3.1).  Every checksum is real: the
IPv4 header checksum and the UDP/TCP checksums over the pseudo-header (RFC 768, RFC 9293
§3.1, RFC 8200 §8.1), the one's-complement sum of RFC 1071, so that tshark validates them.

``TcpConversation`` keeps the sequence and acknowledgment numbers of one connection (RFC 9293
§3.4) and hands out its packets: a handshake, data segments, FIN or RST.  Pure: no socket, no
clock; the caller stamps and writes the packets.

Decisions:

- IPv4 packets carry DF and TTL 64, as Linux sends them; the identification is the caller's
  (a counter).  IPv6 packets carry hop limit 64, no flow label, no extension header.
- A datagram is one packet even when the kernel fragmented it on the way (a socket never says
  so): the file holds what was sent, not the fragments of it.
- A zero UDP checksum over IPv4 is sent as 0xFFFF (RFC 768: zero means "no checksum"); over
  IPv6 a checksum is mandatory (RFC 8200 §8.1), so the same rule keeps it non-zero.
- A TCP write longer than ``MAX_SEGMENT`` becomes several segments, so that every packet fits
  the 16-bit IP length fields.  The handshake carries no options (no MSS, no window scaling):
  a reader then takes the window of 65535 as it is.
- An IPv4-mapped IPv6 address (``::ffff:192.0.2.1``, from a dual-stack socket) is written as
  the IPv4 address it is, as it went on the wire.
"""

from __future__ import annotations

import ipaddress
import struct
import sys
from dataclasses import dataclass

from siptool.capture.layers import IPPROTO_TCP, IPPROTO_UDP

__all__ = [
    "ACK",
    "FIN",
    "MAX_SEGMENT",
    "PSH",
    "RST",
    "SYN",
    "TcpConversation",
    "internet_checksum",
    "ip_bytes",
    "ip_packet",
    "tcp_packet",
    "udp_packet",
]

# TCP header flags (RFC 9293 §3.1).
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

MAX_SEGMENT = 65000  # payload bytes per TCP segment: well inside 65535 with any IP header
_WINDOW = 65535
_TTL = 64
_DONT_FRAGMENT = 0x4000

_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_UDP = struct.Struct("!HHHH")
_TCP = struct.Struct("!HHIIBBHHH")
_PSEUDO6 = struct.Struct("!16s16sI3xB")
_PSEUDO4 = struct.Struct("!4s4sxBH")


def internet_checksum(data: bytes) -> int:
    """The 16-bit one's complement of the one's-complement sum of ``data`` (RFC 1071), an odd
    length padded with a zero byte."""
    if len(data) % 2:
        data += b"\0"
    total = sum(memoryview(data).cast("H"))  # native order: folded and swapped below
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    folded = ~total & 0xFFFF
    if sys.byteorder == "little":  # the words were summed swapped: swap the sum back
        folded = ((folded & 0xFF) << 8) | (folded >> 8)
    return folded


def ip_bytes(host: str) -> bytes:
    """The 4 or 16 bytes of an IP literal (a zone or brackets dropped, IPv4-mapped as IPv4);
    ``ValueError`` for anything else."""
    address = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.packed
    return address.packed


def _pseudo_header(src: bytes, dst: bytes, protocol: int, length: int) -> bytes:
    if len(src) == 4:
        return _PSEUDO4.pack(src, dst, protocol, length)
    return _PSEUDO6.pack(src, dst, length, protocol)


def ip_packet(src: bytes, dst: bytes, protocol: int, segment: bytes, ident: int = 0) -> bytes:
    """``segment`` (a UDP or TCP header and payload) inside an IPv4 or IPv6 header."""
    if len(src) != len(dst) or len(src) not in (4, 16):
        raise ValueError("source and destination must both be IPv4 or both IPv6")
    if len(src) == 16:
        return _IPV6.pack(6 << 28, len(segment), protocol, _TTL, src, dst) + segment
    total = _IPV4.size + len(segment)
    head = _IPV4.pack(0x45, 0, total, ident & 0xFFFF, _DONT_FRAGMENT, _TTL, protocol, 0, src, dst)
    checksum = internet_checksum(head)
    return head[:10] + checksum.to_bytes(2, "big") + head[12:] + segment


def _with_checksum(src: bytes, dst: bytes, protocol: int, segment: bytes, at: int) -> bytes:
    """``segment`` with its transport checksum (zero at ``at`` on entry) filled in."""
    checksum = internet_checksum(_pseudo_header(src, dst, protocol, len(segment)) + segment)
    if protocol == IPPROTO_UDP and checksum == 0:
        checksum = 0xFFFF
    return segment[:at] + checksum.to_bytes(2, "big") + segment[at + 2 :]


def udp_packet(
    src: bytes, sport: int, dst: bytes, dport: int, payload: bytes, ident: int = 0
) -> bytes:
    """One UDP datagram as an IP packet."""
    segment = _UDP.pack(sport, dport, _UDP.size + len(payload), 0) + payload
    return ip_packet(
        src, dst, IPPROTO_UDP, _with_checksum(src, dst, IPPROTO_UDP, segment, 6), ident
    )


def tcp_packet(
    src: bytes,
    sport: int,
    dst: bytes,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    payload: bytes = b"",
    ident: int = 0,
) -> bytes:
    """One TCP segment (a 20-byte header, no options) as an IP packet."""
    head = _TCP.pack(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, _WINDOW, 0, 0)
    segment = _with_checksum(src, dst, IPPROTO_TCP, head + payload, 16)
    return ip_packet(src, dst, IPPROTO_TCP, segment, ident)


@dataclass
class _Side:
    address: bytes
    port: int
    next_seq: int  # the sequence number of this side's next byte (or SYN/FIN)
    closed: bool = False  # sent its FIN or RST


class TcpConversation:
    """The packets of one TCP connection between ``local`` and ``remote`` (IP bytes, port),
    starting at the initial sequence numbers given (RFC 9293 §3.4.1)."""

    def __init__(
        self,
        local: tuple[bytes, int],
        remote: tuple[bytes, int],
        local_isn: int,
        remote_isn: int,
    ) -> None:
        self._sides = (_Side(*local, local_isn), _Side(*remote, remote_isn))
        self.ident = 0  # the IPv4 identification of the next packet

    def _packet(self, outgoing: bool, flags: int, payload: bytes = b"") -> bytes:
        me, peer = self._sides if outgoing else self._sides[::-1]
        ack = peer.next_seq if flags & ACK else 0
        packet = tcp_packet(
            me.address, me.port, peer.address, peer.port, me.next_seq, ack, flags, payload,
            self.ident,
        )  # fmt: skip
        self.ident = (self.ident + 1) & 0xFFFF
        me.next_seq += len(payload) + (1 if flags & (SYN | FIN) else 0)
        return packet

    def syn(self) -> bytes:
        """Our SYN (the connect began)."""
        return self._packet(True, SYN)

    def established(self) -> list[bytes]:
        """The peer's SYN-ACK and our ACK (the connect completed)."""
        return [self._packet(False, SYN | ACK), self._packet(True, ACK)]

    def data(self, outgoing: bool, payload: bytes) -> list[bytes]:
        """The segments that carry ``payload`` in one direction, ``MAX_SEGMENT`` bytes each."""
        return [
            self._packet(outgoing, PSH | ACK, payload[start : start + MAX_SEGMENT])
            for start in range(0, len(payload), MAX_SEGMENT)
        ]

    def fin(self, outgoing: bool) -> list[bytes]:
        """A FIN from one side, once (nothing when that side already closed)."""
        side = self._sides[0 if outgoing else 1]
        if side.closed:
            return []
        packet = self._packet(outgoing, FIN | ACK)
        side.closed = True
        return [packet]

    def reset(self, outgoing: bool) -> list[bytes]:
        """An RST from one side, which ends the connection for both; nothing once that side
        closed."""
        if self._sides[0 if outgoing else 1].closed:
            return []
        packet = self._packet(outgoing, RST | ACK)
        for side in self._sides:
            side.closed = True
        return [packet]

    @property
    def closed(self) -> bool:
        return all(side.closed for side in self._sides)
