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
