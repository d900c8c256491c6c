"""capture.tlsrecord: TLS record headers and the ClientHello's server name (RFC 6066 §3)."""

from __future__ import annotations

import struct

from siptool.capture.tlsrecord import client_hello_sni, is_tls_record


def client_hello(name: bytes | None) -> bytes:
    extensions = b""
    if name is not None:
        entry = b"\x00" + struct.pack("!H", len(name)) + name
        body = struct.pack("!H", len(entry)) + entry
        extensions += struct.pack("!HH", 0, len(body)) + body
    extensions = struct.pack("!HH", 43, 3) + b"\x02\x03\x04" + extensions  # supported_versions
    hello = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    hello += struct.pack("!H", len(extensions)) + extensions
    handshake = b"\x01" + len(hello).to_bytes(3, "big") + hello
    return b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake


def test_the_server_name_of_a_whole_client_hello() -> None:
    record = client_hello(b"sip.example.test")
    assert is_tls_record(record)
    assert client_hello_sni(record) == "sip.example.test"
    assert client_hello_sni(client_hello(None)) is None


def test_a_cut_or_lying_client_hello_gives_no_name_and_never_raises() -> None:
    record = client_hello(b"sip.example.test")
    for cut in range(5, len(record)):
        assert client_hello_sni(record[:cut]) is None, cut
    lying = bytearray(record)
    lying[-len(b"sip.example.test") - 2 : -len(b"sip.example.test")] = b"\xff\xff"
    assert client_hello_sni(bytes(lying)) is None


def test_record_headers() -> None:
    assert is_tls_record(b"\x17\x03\x03\x00\x10")  # application data, TLS 1.2 legacy version
    assert not is_tls_record(b"\x16\x03\x01\xff\xff")  # longer than a record may be
    assert not is_tls_record(b"INVITE sip:")
    assert not is_tls_record(b"\x16\x03")


def test_the_extractor_names_tls_and_other_tcp_and_not_a_keep_alive_only_direction() -> None:
    from siptool.capture.extract import PacketExtractor
    from tests.support.captures import ether, ipv4, tcp

    extractor = PacketExtractor()
    hello = client_hello(b"trunk.example.test")
    segments = [
        ("192.0.2.1", "192.0.2.2", 40000, 5061, hello),  # TLS, with its server name
        ("192.0.2.2", "192.0.2.1", 5061, 40000, b"\x17\x03\x03\x00\x02ok"),
        ("192.0.2.1", "192.0.2.2", 40001, 80, b"GET / HTTP/1.1\r\n"),  # ends undecided
        ("192.0.2.1", "192.0.2.2", 40002, 5060, b"\r\n\r\n"),  # RFC 5626 keep-alive only
    ]
    for frame, (src, dst, sport, dport, data) in enumerate(segments, 1):
        packet = ether(ipv4(src, dst, 6, tcp(sport, dport, 1000, data)))
        extractor.packet(frame, 0.0, 1, 0, len(packet), len(packet), 0, packet)
    extractor.finish()
    found = [(s.protocol, s.dst, s.bytes, s.sni) for s in extractor.undecoded()]
    assert found == [
        ("tls", "192.0.2.2:5061", len(hello), "trunk.example.test"),
        ("tls", "192.0.2.1:40000", 7, None),
        ("tcp", "192.0.2.2:80", 16, None),
    ]
