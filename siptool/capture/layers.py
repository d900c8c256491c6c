"""Link-layer and IP decoding helpers: offsets into one buffer, no copies, no objects.

The per-packet hot path (Ethernet + IPv4 + UDP) is inlined in ``extract.PacketExtractor``; these
helpers cover every other link type and the IPv6 extension-header chain.
"""

from __future__ import annotations

import ipaddress

from siptool.addr import format_address

__all__ = [
    "LINKTYPE_NAMES",
    "SUPPORTED_LINKTYPES",
    "endpoint",
    "ip_offset",
    "ipv6_payload",
    "ipv6_walk",
]

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW_12 = 12
LINKTYPE_RAW_14 = 14
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

LINKTYPE_NAMES = {
    LINKTYPE_NULL: "BSD loopback",
    LINKTYPE_ETHERNET: "Ethernet",
    LINKTYPE_RAW_12: "raw IP",
    LINKTYPE_RAW_14: "raw IP",
    LINKTYPE_RAW: "raw IP",
    LINKTYPE_LOOP: "OpenBSD loopback",
    LINKTYPE_LINUX_SLL: "Linux cooked (SLL)",
    LINKTYPE_IPV4: "raw IPv4",
    LINKTYPE_IPV6: "raw IPv6",
    LINKTYPE_LINUX_SLL2: "Linux cooked v2 (SLL2)",
}
SUPPORTED_LINKTYPES = frozenset(LINKTYPE_NAMES)

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
_VLAN_TAGS = frozenset({0x8100, 0x88A8, 0x9100, 0x9200})
_ETHERTYPE_PPPOE_SESSION = 0x8864
_ETHERTYPE_MPLS = frozenset({0x8847, 0x8848})
# Address families in DLT_NULL / DLT_LOOP headers: AF_INET is 2 everywhere; AF_INET6 is 24
# (NetBSD, OpenBSD), 28 (FreeBSD), 30 (macOS) -- the values Wireshark accepts.
_AF_INET6 = frozenset({24, 28, 30})


def _after_ethertype(etype: int, buf: bytes, off: int, end: int) -> int:
    """Offset of the IP header that follows an EtherType field ending at ``off``, or -1."""
    while True:
        if etype in (ETHERTYPE_IPV4, ETHERTYPE_IPV6):
            return off if off < end else -1
        if etype in _VLAN_TAGS:
            if off + 4 > end:
                return -1
            etype = (buf[off + 2] << 8) | buf[off + 3]
            off += 4
        elif etype == _ETHERTYPE_PPPOE_SESSION:
            # RFC 2516: 6-byte PPPoE header, then the 2-byte PPP protocol.
            if off + 8 > end:
                return -1
            proto = (buf[off + 6] << 8) | buf[off + 7]
            off += 8
            if proto == 0x0021 or proto == 0x0057:
                return off if off < end else -1
            return -1
        elif etype in _ETHERTYPE_MPLS:
            # RFC 3032: labels until the bottom-of-stack bit; the payload carries no type, so
            # trust the IP version nibble.
            while off + 4 <= end:
                bottom = buf[off + 2] & 1
                off += 4
                if bottom:
                    break
            else:
                return -1
            if off < end and buf[off] >> 4 in (4, 6):
                return off
            return -1
        else:
            return -1


def ip_offset(linktype: int, buf: bytes, start: int, end: int) -> int:
    """Offset of the IPv4/IPv6 header inside the link-layer frame ``buf[start:end]``, or -1.

    -1 also for frames that do not carry IP (ARP, LLDP, ...).  The caller checks the version
    nibble.  Raises ``KeyError`` for a link type not in ``SUPPORTED_LINKTYPES``.
    """
    if linktype == LINKTYPE_ETHERNET:
        if end - start < 14:
            return -1
        return _after_ethertype((buf[start + 12] << 8) | buf[start + 13], buf, start + 14, end)
    if linktype == LINKTYPE_LINUX_SLL:
        if end - start < 16:
            return -1
        return _after_ethertype((buf[start + 14] << 8) | buf[start + 15], buf, start + 16, end)
    if linktype == LINKTYPE_LINUX_SLL2:
        if end - start < 20:
            return -1
        return _after_ethertype((buf[start] << 8) | buf[start + 1], buf, start + 20, end)
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if end - start < 5:
            return -1
        # DLT_NULL is in the byte order of the capturing host; DLT_LOOP in network order.
        if buf[start] == 0 and buf[start + 1] == 0:
            family = (buf[start + 2] << 8) | buf[start + 3]
        else:
            family = buf[start] | (buf[start + 1] << 8)
        if family == 2 or family in _AF_INET6:
            return start + 4
        return -1
    if linktype in (LINKTYPE_RAW, LINKTYPE_RAW_12, LINKTYPE_RAW_14, LINKTYPE_IPV4, LINKTYPE_IPV6):
        return start if end > start else -1
    raise KeyError(linktype)


# IANA protocol numbers: the transports siptool reads, and IPv6's Fragment header.
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_FRAGMENT = 44
# RFC 8200 §4 and the IANA list of IPv6 extension headers that share the (length + 1) * 8 form.
_EXT_LEN8 = frozenset({0, 43, 60, 135, 139, 140})
_IPPROTO_AH = 51


def ipv6_payload(buf: bytes, off: int, end: int) -> tuple[int, int, int]:
    """Walk the extension headers of the IPv6 packet at ``off``.

    Returns ``(next_header, payload_offset, fragment_header_offset)``; the last is -1 when the
    packet is not a fragment.  For a fragment, ``next_header`` and ``payload_offset`` describe
    the Fragment header's own Next Header and the start of the fragmentable part.
    Returns ``(-1, -1, -1)`` for a chain cut short.
    """
    return ipv6_walk(buf, buf[off + 6], off + 40, end)


def ipv6_walk(buf: bytes, nh: int, pos: int, end: int) -> tuple[int, int, int]:
    """``ipv6_payload`` from header type ``nh`` at ``pos`` (also for a reassembled payload)."""
    while True:
        if nh in _EXT_LEN8:
            if pos + 8 > end:
                return -1, -1, -1
            nh, pos = buf[pos], pos + (buf[pos + 1] + 1) * 8
        elif nh == IPPROTO_FRAGMENT:
            if pos + 8 > end:
                return -1, -1, -1
            return buf[pos], pos + 8, pos
        elif nh == _IPPROTO_AH:
            if pos + 8 > end:
                return -1, -1, -1
            nh, pos = buf[pos], pos + (buf[pos + 1] + 2) * 4
        else:
            return nh, pos, -1


def endpoint(address: bytes, port: int) -> str:
    """``"192.0.2.1:5060"`` or ``"[2001:db8::1]:5060"`` for a 4- or 16-byte address."""
    if len(address) == 4:
        return f"{address[0]}.{address[1]}.{address[2]}.{address[3]}:{port}"
    return format_address(ipaddress.IPv6Address(address).compressed, port)
