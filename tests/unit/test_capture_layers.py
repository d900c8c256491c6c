"""Link types, IPv4/IPv6 and UDP: which datagrams become messages, with which addresses."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from siptool.capture import Problem, RawMessage, iter_input
from siptool.capture.extract import PacketExtractor
from tests.support.captures import (
    STUN_BINDING_REQUEST,
    STUN_BINDING_SUCCESS,
    ether,
    ipv4,
    ipv6,
    ipv6_ext_chain,
    loop_link,
    null_link,
    pcap_file,
    problems,
    raw,
    sip_request,
    sip_response,
    sll,
    sll2,
    udp,
    udp4,
    udp6,
)

Wrap = Callable[[bytes], bytes]

LINKS: list[tuple[str, int, Wrap]] = [
    ("ethernet", 1, ether),
    ("vlan", 1, lambda p: ether(p, vlans=[100])),
    ("qinq", 1, lambda p: ether(p, vlans=[100, 200], tpid=0x88A8)),
    ("sll", 113, sll),
    ("sll2", 276, sll2),
    ("null-le", 0, null_link),
    ("null-be", 0, lambda p: null_link(p, order=">")),
    ("null-freebsd-v6", 0, lambda p: null_link(p, family6=28)),
    ("null-macos-v6", 0, lambda p: null_link(p, family6=30)),
    ("loop", 108, loop_link),
    ("raw", 101, lambda p: p),
    ("raw-12", 12, lambda p: p),
    ("raw-14", 14, lambda p: p),
]


def extract(
    frames: list[bytes | tuple[bytes, int]], linktype: int = 1
) -> list[RawMessage | Problem]:
    return list(iter_input(pcap_file(frames, linktype=linktype)))


@pytest.mark.parametrize(("name", "linktype", "wrap"), LINKS, ids=[n for n, _, _ in LINKS])
def test_every_link_type_carries_sip_over_ipv4_and_ipv6(
    name: str, linktype: int, wrap: Wrap
) -> None:
    request = sip_request(call_id=name)
    response = sip_response(call_id=name)
    items = extract([wrap(udp4(request, sport=5070)), wrap(udp6(response, dport=5071))], linktype)
    assert problems(items) == []
    assert [(m.protocol, m.data, m.frame, m.src, m.dst, m.transport) for m in raw(items)] == [
        ("sip", request, 1, "192.0.2.1:5070", "192.0.2.2:5060", "udp"),
        ("sip", response, 2, "[2001:db8::1]:5060", "[2001:db8::2]:5071", "udp"),
    ]


@pytest.mark.parametrize("linktype", [228, 229])
def test_raw_ipv4_and_ipv6_link_types(linktype: int) -> None:
    packet = udp4(sip_request()) if linktype == 228 else udp6(sip_request())
    assert len(raw(extract([packet], linktype))) == 1


def test_stun_is_found_on_any_udp_port_and_rtp_dns_and_keepalives_are_skipped() -> None:
    dns = (
        struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
        + b"\x07example\x03com\x00\x00\x01\x00\x01"
    )
    frames = [
        ether(udp4(STUN_BINDING_REQUEST, sport=40000, dport=3478)),
        ether(udp4(STUN_BINDING_SUCCESS, sport=19302, dport=40000)),
        ether(udp4(STUN_BINDING_REQUEST, sport=5060, dport=5060)),  # RFC 5626 keep-alive STUN
        ether(udp4(b"\x80\x00\x00\x01" + b"\0" * 168, sport=4000, dport=4002)),  # RTP
        ether(udp4(dns, sport=53000, dport=53)),
        ether(udp4(b"\r\n\r\n")),  # RFC 5626 CRLF keep-alive
        ether(udp4(b"\r\n")),
        ether(udp4(b"")),
        ether(udp4(b"hello world, not sip", sport=9, dport=9)),
    ]
    items = extract(frames)
    assert problems(items) == []
    assert [(m.protocol, m.frame, m.src) for m in raw(items)] == [
        ("stun", 1, "192.0.2.1:40000"),
        ("stun", 2, "192.0.2.1:19302"),
        ("stun", 3, "192.0.2.1:5060"),
    ]


def test_stun_with_the_cookie_but_a_wrong_length_reaches_the_parser() -> None:
    # The magic cookie makes it STUN (a 2**-32 accident otherwise); the length mismatch is for
    # the STUN parser to report, so that decode names the bad packet instead of hiding it.
    from siptool.errors import ParseError
    from siptool.stun.message import parse_stun

    bad = bytearray(STUN_BINDING_SUCCESS)
    bad[3] = 4  # header says 4 bytes of attributes, datagram has 12
    messages = raw(extract([ether(udp4(bytes(bad), sport=1, dport=2))]))
    assert [m.protocol for m in messages] == ["stun"]
    with pytest.raises(ParseError):
        parse_stun(messages[0].data)


def test_classic_stun_lookalike_with_a_wrong_length_is_not_stun() -> None:
    # Without the cookie only the exact length marks RFC 3489 STUN.
    bad = bytearray(STUN_BINDING_SUCCESS)
    bad[4:8] = b"\x01\x02\x03\x04"
    bad[3] = 4
    assert raw(extract([ether(udp4(bytes(bad), sport=1, dport=2))])) == []


def test_malformed_sip_datagrams_still_reach_the_parser() -> None:
    frames = [
        ether(udp4(b"INVITE this is broken\r\n\r\n")),
        ether(udp4(b"SIP/2.0 99 weird\r\n")),
        ether(udp4(b"\r\n" + sip_request())),  # stray CRLF before a message
    ]
    messages = raw(extract(frames))
    assert [m.data for m in messages] == [
        b"INVITE this is broken\r\n\r\n",
        b"SIP/2.0 99 weird\r\n",
        sip_request(),
    ]


def test_ethernet_padding_and_udp_length_bound_the_payload() -> None:
    message = b"ACK sip:b@x SIP/2.0\r\n\r\n"  # shorter than Ethernet's 46-byte minimum once in IP
    frame = ether(udp4(message)) + b"\0" * 20
    assert [m.data for m in raw(extract([frame]))] == [message]
    # UDP length shorter than the IP payload: the UDP length wins.
    datagram = udp(5060, 5060, message + b"TRAILER")
    datagram = datagram[:4] + struct.pack("!H", 8 + len(message)) + datagram[6:]
    assert [
        m.data for m in raw(extract([ether(ipv4("192.0.2.1", "192.0.2.2", 17, datagram))]))
    ] == [message]


def test_ipv4_options_and_tso_zero_length_are_handled() -> None:
    message = sip_request(call_id="opts")
    with_options = ipv4(
        "192.0.2.1", "192.0.2.2", 17, udp(5060, 5060, message), options=b"\x94\x04\0\0"
    )
    tso = ipv4("192.0.2.1", "192.0.2.2", 17, udp(5060, 5060, message), total=0)
    assert [m.data for m in raw(extract([ether(with_options), ether(tso)]))] == [message, message]


def test_ipv6_extension_headers_are_skipped() -> None:
    message = sip_request(call_id="ext")
    chain = ipv6_ext_chain(
        [(0, b"\x01\x04\0\0\0\0"), (43, b"\0\0\0\0\0\0"), (60, b"\x01\x04\0\0\0\0")], 17
    )
    packet = ipv6("2001:db8::1", "2001:db8::2", 17, udp(5060, 5060, message), ext=chain)
    [found] = raw(extract([ether(packet)]))
    assert found.data == message
    assert found.src == "[2001:db8::1]:5060"


def test_ip_in_ip_tunnels_are_unwrapped() -> None:
    inner = udp6(sip_request(call_id="6in4"))
    outer = ipv4("198.51.100.1", "198.51.100.2", 41, inner)
    inner4 = udp4(sip_request(call_id="4in6"))
    outer6 = ipv6("2001:db8::a", "2001:db8::b", 4, inner4)
    assert [m.src for m in raw(extract([ether(outer), ether(outer6)]))] == [
        "[2001:db8::1]:5060",
        "192.0.2.1:5060",
    ]


def test_pppoe_and_mpls_are_unwrapped() -> None:
    packet = udp4(sip_request())
    pppoe = struct.pack("!BBHH", 0x11, 0, 0x1234, len(packet) + 2) + b"\x00\x21" + packet
    mpls = struct.pack("!I", (100 << 12) | 0x100 | 64) + packet  # one label, bottom of stack
    frames = [ether(pppoe, ethertype=0x8864), ether(mpls, ethertype=0x8847)]
    assert len(raw(extract(frames))) == 2


def test_non_ip_frames_are_skipped_silently() -> None:
    arp = ether(b"\x00\x01\x08\x00\x06\x04\x00\x01" + b"\0" * 20, ethertype=0x0806)
    assert extract([arp, b"\x01\x02", b""]) == []


def test_snaplen_cut_sip_datagram_is_a_problem_naming_the_packet() -> None:
    frame = ether(udp4(sip_request("INVITE", body=b"v=0\r\n" * 100)))
    items = extract([(frame[:200], len(frame)), ether(udp4(sip_request(call_id="next")))])
    [problem] = problems(items)
    assert problem.where == "packet 1"
    assert problem.message == (
        f"snaplen cut the packet: 200 of {len(frame)} bytes;"
        " SIP over UDP 192.0.2.1:5060 -> 192.0.2.2:5060 is incomplete"
    )
    assert [m.frame for m in raw(items)] == [2]


def test_snaplen_cut_non_sip_datagram_is_silent() -> None:
    frame = ether(udp4(b"\x80\x00" + b"\0" * 500, sport=4000, dport=4000))
    assert extract([(frame[:96], len(frame))]) == []


def test_extractor_can_be_driven_packet_by_packet() -> None:
    extractor = PacketExtractor()
    frame = ether(udp4(sip_request()))
    extractor.packet(7, 1.5, 1, 0, len(frame), len(frame), 123, frame)
    [message] = extractor.out
    assert isinstance(message, RawMessage)
    assert (message.frame, message.time, message.offset) == (7, 1.5, 123)
    extractor.finish()
