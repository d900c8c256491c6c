"""The STUN codec against the RFC 5769 / RFC 8489 test vectors, legacy RFC 3489 messages,
hand-built malformed input and encode -> parse round trips."""

from __future__ import annotations

import json
import struct

import pytest

from siptool.addr import split_address
from siptool.errors import ParseError
from siptool.stun.framing import MAGIC_COOKIE, looks_like_stun, stun_frame_length
from siptool.stun.message import (
    METHOD_NAMES,
    StunClass,
    binding_request,
    binding_response,
    encode_address,
    encode_change_request,
    encode_message,
    encode_xor_address,
    long_term_key,
    new_transaction_id,
    parse_stun,
    short_term_key,
    verify_message_integrity,
    verify_message_integrity_sha256,
)

# RFC 5769 §2.1: software "STUN test client", username "evtj:h6vY" (padded with spaces).
RFC5769_REQUEST = bytes.fromhex(
    "00010058 2112a442 b7e7a701 bc34d686 fa87dfae"
    "80220010 5354554e 20746573 7420636c 69656e74"
    "00240004 6e0001ff"
    "80290008 932ff9b1 51263b36"
    "00060009 6576746a 3a683676 59202020"
    "00080014 9aeaa70c bfd8cb56 781ef2b5 b2d3f249 c1b571a2"
    "80280004 e57a3bcf"
)
# RFC 5769 §2.2: software "test vector", mapped address 192.0.2.1 port 32853.
RFC5769_IPV4_RESPONSE = bytes.fromhex(
    "0101003c 2112a442 b7e7a701 bc34d686 fa87dfae"
    "8022000b 74657374 20766563 746f7220"
    "00200008 0001a147 e112a643"
    "00080014 2b91f599 fd9e90c3 8c7489f9 2af9ba53 f06be7d7"
    "80280004 c07d4c96"
)
# RFC 5769 §2.3: mapped address 2001:db8:1234:5678:11:2233:4455:6677 port 32853.
RFC5769_IPV6_RESPONSE = bytes.fromhex(
    "01010048 2112a442 b7e7a701 bc34d686 fa87dfae"
    "8022000b 74657374 20766563 746f7220"
    "00200014 0002a147 0113a9fa a5d3f179 bc25f4b5 bed2b9d9"
    "00080014 a382954e 4be67bf1 1784c97c 8292c275 bfe3ed41"
    "80280004 c8fb0b4c"
)
# RFC 5769 §2.4: long-term credentials; the password is "TheMatrIX" after SASLprep.
RFC5769_LONG_TERM_REQUEST = bytes.fromhex(
    "00010060 2112a442 78ad3433 c6ad72c0 29da412e"
    "00060012 e3839ee3 8388e383 aae38383 e382afe3 82b90000"
    "0015001c 662f2f34 39396b39 35346436 4f4c3334 6f4c3946 53547679 36347341"
    "0014000b 6578616d 706c652e 6f726700"
    "00080014 f6702465 6dd64a3e 02b8e071 2e85c9a2 8ca89666"
)
# RFC 8489 Appendix B.1: USERHASH, PASSWORD-ALGORITHM SHA-256, MESSAGE-INTEGRITY-SHA256.
RFC8489_SHA256_REQUEST = bytes.fromhex(
    "00010090 2112a442 78ad3433 c6ad72c0 29da412e"
    "001e0020 4a3cf38f ef6992bd a952c678 0417da0f 24819415 569e60b2 05c46e41 407f1704"
    "00150029 6f624d61 744a6f73 32414141 43662f2f 3439396b 39353464 364f4c33 346f4c39"
    "46535476 79363473 41000000"
    "0014000b 6578616d 706c652e 6f726700"
    "001d0004 00020000"
    "001c0020 b5c7bf00 5b6c52a2 1c51c5e8 92f81924 136296cb 927c4314 9309278c c6518e65"
)
RFC5769_PASSWORD = b"VOkJxbRl1RmTxUk/WvJxBt"
RFC5769_TID = bytes.fromhex("b7e7a701bc34d686fa87dfae")
MATRIX_USER = "\u30de\u30c8\u30ea\u30c3\u30af\u30b9"

# RFC 3489 §11.1 Binding Response with a 16-byte id and no cookie, as a 3489 server sends it.
LEGACY_TID = bytes.fromhex("0123456789abcdef0011223344556677")
LEGACY_RESPONSE = (
    bytes.fromhex("01010024")
    + LEGACY_TID
    + bytes.fromhex("00010008 0001 1f90 c0000201")  # MAPPED-ADDRESS 192.0.2.1:8080
    + bytes.fromhex("00040008 0001 0d96 c6336401")  # SOURCE-ADDRESS 198.51.100.1:3478
    + bytes.fromhex("00050008 0001 0d97 c6336402")  # CHANGED-ADDRESS 198.51.100.2:3479
)


def _attribute(attr_type: int, value: bytes) -> bytes:
    pad = -len(value) % 4
    return struct.pack("!HH", attr_type, len(value)) + value + bytes(pad)


def _message(body: bytes, message_type: int = 0x0101, tid: bytes = RFC5769_TID) -> bytes:
    cookie = MAGIC_COOKIE.to_bytes(4, "big") if len(tid) == 12 else b""
    return struct.pack("!HH", message_type, len(body)) + cookie + tid + body


# ---------------------------------------------------------------------------- RFC 5769 vectors


def test_rfc5769_sample_request_decodes_every_field() -> None:
    message = parse_stun(RFC5769_REQUEST)
    assert message.msg_class is StunClass.REQUEST
    assert message.method == 0x001
    assert message.method_name == "binding"
    assert message.transaction_id == RFC5769_TID
    assert message.legacy is False
    assert message.length == 0x58
    assert [(a.type, a.name) for a in message.attributes] == [
        (0x8022, "SOFTWARE"),
        (0x0024, "PRIORITY"),
        (0x8029, "ICE-CONTROLLED"),
        (0x0006, "USERNAME"),
        (0x0008, "MESSAGE-INTEGRITY"),
        (0x8028, "FINGERPRINT"),
    ]
    assert message.software == "STUN test client"
    assert message.attribute("PRIORITY").value == 0x6E0001FF  # type: ignore[union-attr]
    assert message.attribute(0x8029).value == 0x932FF9B151263B36  # type: ignore[union-attr]
    assert message.attribute("username").value == "evtj:h6vY"  # type: ignore[union-attr]
    assert message.attribute("USERNAME").raw == b"evtj:h6vY"  # type: ignore[union-attr]
    assert message.attribute("MESSAGE-INTEGRITY").value == (  # type: ignore[union-attr]
        "9aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2"
    )
    assert message.attribute("FINGERPRINT").value == 0xE57A3BCF  # type: ignore[union-attr]
    assert message.fingerprint_ok is True
    assert message.xor_mapped_address is None
    assert message.error_code is None


@pytest.mark.parametrize(
    "vector", [RFC5769_REQUEST, RFC5769_IPV4_RESPONSE, RFC5769_IPV6_RESPONSE], ids=str
)
def test_rfc5769_short_term_integrity_verifies_only_with_the_right_password(
    vector: bytes,
) -> None:
    assert verify_message_integrity(vector, short_term_key(RFC5769_PASSWORD.decode())) is True
    assert verify_message_integrity(vector, b"VOkJxbRl1RmTxUk/WvJxBT") is False
    assert verify_message_integrity_sha256(vector, RFC5769_PASSWORD) is None


def test_rfc5769_ipv4_response_xor_mapped_address() -> None:
    message = parse_stun(RFC5769_IPV4_RESPONSE)
    assert message.msg_class is StunClass.SUCCESS_RESPONSE
    assert message.method_name == "binding"
    assert message.transaction_id == RFC5769_TID
    assert message.software == "test vector"
    assert message.xor_mapped_address == "192.0.2.1:32853"
    assert message.reflexive_address == "192.0.2.1:32853"
    assert message.mapped_address is None
    assert message.fingerprint_ok is True
    assert [a.name for a in message.attributes] == [
        "SOFTWARE",
        "XOR-MAPPED-ADDRESS",
        "MESSAGE-INTEGRITY",
        "FINGERPRINT",
    ]


def test_rfc5769_ipv6_response_xor_mapped_address_uses_the_transaction_id() -> None:
    message = parse_stun(RFC5769_IPV6_RESPONSE)
    assert message.xor_mapped_address == "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
    assert split_address(message.xor_mapped_address) == (
        "2001:db8:1234:5678:11:2233:4455:6677",
        32853,
    )
    assert message.fingerprint_ok is True


def test_rfc5769_xor_address_encoding_matches_the_vectors() -> None:
    assert encode_xor_address("192.0.2.1", 32853, RFC5769_TID) == bytes.fromhex("0001a147e112a643")
    assert encode_xor_address(
        "2001:db8:1234:5678:11:2233:4455:6677", 32853, RFC5769_TID
    ) == bytes.fromhex("0002a1470113a9faa5d3f179bc25f4b5bed2b9d9")


def test_rfc5769_long_term_request_fields_and_integrity() -> None:
    message = parse_stun(RFC5769_LONG_TERM_REQUEST)
    assert message.msg_class is StunClass.REQUEST
    assert message.transaction_id == bytes.fromhex("78ad3433c6ad72c029da412e")
    assert message.attribute("USERNAME").value == MATRIX_USER  # type: ignore[union-attr]
    assert message.attribute("NONCE").value == "f//499k954d6OL34oL9FSTvy64sA"  # type: ignore[union-attr]
    assert message.attribute("REALM").value == "example.org"  # type: ignore[union-attr]
    assert message.fingerprint_ok is None
    key = long_term_key(MATRIX_USER, "example.org", "TheMatrIX")
    assert verify_message_integrity(RFC5769_LONG_TERM_REQUEST, key) is True
    wrong = long_term_key(MATRIX_USER, "example.org", "TheMatrix")
    assert verify_message_integrity(RFC5769_LONG_TERM_REQUEST, wrong) is False


def test_rfc5769_long_term_request_is_reproduced_byte_for_byte_by_the_encoder() -> None:
    message = parse_stun(RFC5769_LONG_TERM_REQUEST)
    wire = encode_message(
        StunClass.REQUEST,
        0x001,
        message.transaction_id,
        [(a.type, a.raw) for a in message.attributes if a.name != "MESSAGE-INTEGRITY"],
        integrity_key=long_term_key(MATRIX_USER, "example.org", "TheMatrIX"),
    )
    assert wire == RFC5769_LONG_TERM_REQUEST


def test_rfc8489_sha256_request_integrity_and_password_algorithm() -> None:
    message = parse_stun(RFC8489_SHA256_REQUEST)
    assert message.attribute("PASSWORD-ALGORITHM").value == {  # type: ignore[union-attr]
        "algorithm": 2,
        "name": "SHA-256",
        "parameters": "",
    }
    assert message.attribute("NONCE").value == "obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA"  # type: ignore[union-attr]
    assert message.attribute("USERHASH").value.startswith("4a3cf38f")  # type: ignore[union-attr]
    key = long_term_key(MATRIX_USER, "example.org", "TheMatrIX", algorithm="SHA-256")
    assert verify_message_integrity_sha256(RFC8489_SHA256_REQUEST, key) is True
    assert verify_message_integrity_sha256(RFC8489_SHA256_REQUEST, key[:-1] + b"\0") is False
    assert verify_message_integrity(RFC8489_SHA256_REQUEST, key) is None


@pytest.mark.parametrize(
    "vector",
    [
        RFC5769_REQUEST,
        RFC5769_IPV4_RESPONSE,
        RFC5769_IPV6_RESPONSE,
        RFC5769_LONG_TERM_REQUEST,
        RFC8489_SHA256_REQUEST,
        LEGACY_RESPONSE,
    ],
)
def test_to_dict_is_json_and_follows_the_decode_contract(vector: bytes) -> None:
    document = parse_stun(vector).to_dict()
    keys = {"class", "method", "transaction_id", "legacy", "attributes", "fingerprint_ok"}
    assert set(document) == keys
    assert json.loads(json.dumps(document)) == document
    for attribute in document["attributes"]:  # type: ignore[attr-defined]
        assert set(attribute) == {"type", "name", "value"}


# ----------------------------------------------------------------------------- fingerprint


def test_tampered_fingerprint_is_reported_not_raised() -> None:
    tampered = RFC5769_IPV4_RESPONSE[:-1] + bytes([RFC5769_IPV4_RESPONSE[-1] ^ 1])
    assert parse_stun(tampered).fingerprint_ok is False


def test_tampered_body_fails_fingerprint_and_integrity() -> None:
    data = bytearray(RFC5769_IPV4_RESPONSE)
    data[24] ^= 0x20  # "test vector" -> "Test vector"
    message = parse_stun(bytes(data))
    assert message.software == "Test vector"
    assert message.fingerprint_ok is False
    assert verify_message_integrity(bytes(data), RFC5769_PASSWORD) is False


def test_fingerprint_not_last_is_not_ok() -> None:
    tid = new_transaction_id()
    wire = encode_message(StunClass.REQUEST, 1, tid, [], fingerprint=True)
    body = wire[20:] + _attribute(0x8022, b"late")
    moved = struct.pack("!HH", 0x0001, len(body)) + wire[4:20] + body
    assert parse_stun(moved).fingerprint_ok is False


def test_absent_fingerprint_and_integrity_are_none() -> None:
    _, wire = binding_request()
    assert parse_stun(wire).fingerprint_ok is None
    assert verify_message_integrity(wire, b"key") is None


# --------------------------------------------------------------------------- legacy RFC 3489


def test_legacy_response_has_sixteen_byte_id_and_classic_addresses() -> None:
    message = parse_stun(LEGACY_RESPONSE)
    assert message.legacy is True
    assert message.transaction_id == LEGACY_TID
    assert message.msg_class is StunClass.SUCCESS_RESPONSE
    assert message.mapped_address == "192.0.2.1:8080"
    assert message.reflexive_address == "192.0.2.1:8080"
    assert message.source_address == "198.51.100.1:3478"
    assert message.changed_address == "198.51.100.2:3479"
    assert message.xor_mapped_address is None
    assert message.to_dict()["transaction_id"] == LEGACY_TID.hex()
    assert looks_like_stun(LEGACY_RESPONSE)


def test_old_xor_mapped_address_0x8020_in_a_legacy_message_xors_with_the_id_start() -> None:
    # stund answers an RFC 3489 request with 0x8020 XOR'd with the first 4 bytes of the id.
    value = encode_xor_address("203.0.113.7", 40000, LEGACY_TID)
    assert value[4:] == bytes(
        a ^ b for a, b in zip(bytes([203, 0, 113, 7]), LEGACY_TID[:4], strict=True)
    )
    message = parse_stun(_message(_attribute(0x8020, value), tid=LEGACY_TID))
    attribute = message.attribute(0x8020)
    assert attribute is not None
    assert attribute.name == "XOR-MAPPED-ADDRESS-OLD"
    assert message.xor_mapped_address == "203.0.113.7:40000"


def test_old_xor_mapped_address_in_a_modern_message_uses_the_cookie() -> None:
    value = encode_xor_address("198.51.100.9", 5060, RFC5769_TID)
    message = parse_stun(_message(_attribute(0x8020, value)))
    assert message.xor_mapped_address == "198.51.100.9:5060"


def test_text_values_lose_rfc3489_nul_padding_but_raw_keeps_it() -> None:
    message = parse_stun(_message(_attribute(0x8022, b"Vovida.org 0.97\0")))
    assert message.software == "Vovida.org 0.97"
    assert message.attributes[0].raw == b"Vovida.org 0.97\0"


def test_legacy_binding_request_has_no_cookie_and_parses_back() -> None:
    tid, wire = binding_request(legacy=True, change_port=True)
    assert len(tid) == 16
    assert wire[4:20] == tid
    assert len(wire) == 28
    message = parse_stun(wire)
    assert message.legacy is True
    assert message.transaction_id == tid
    assert message.attribute("CHANGE-REQUEST").value == {  # type: ignore[union-attr]
        "change_ip": False,
        "change_port": True,
    }


# ------------------------------------------------------------------------------- round trips

TID = bytes(range(12))

ROUND_TRIPS: list[tuple[int, str, bytes, object]] = [
    (0x0001, "MAPPED-ADDRESS", encode_address("192.0.2.1", 1), "192.0.2.1:1"),
    (0x0001, "MAPPED-ADDRESS", encode_address("2001:db8::1", 65535), "[2001:db8::1]:65535"),
    (0x0002, "RESPONSE-ADDRESS", encode_address("10.0.0.1", 9), "10.0.0.1:9"),
    (
        0x0003,
        "CHANGE-REQUEST",
        encode_change_request(True, True),
        {"change_ip": True, "change_port": True},
    ),
    (
        0x0003,
        "CHANGE-REQUEST",
        encode_change_request(True, False),
        {"change_ip": True, "change_port": False},
    ),
    (0x0004, "SOURCE-ADDRESS", encode_address("10.0.0.2", 3478), "10.0.0.2:3478"),
    (0x0005, "CHANGED-ADDRESS", encode_address("10.0.0.3", 3479), "10.0.0.3:3479"),
    (0x0006, "USERNAME", "ünïcode:user".encode(), "ünïcode:user"),
    (0x0007, "PASSWORD", b"secret", "secret"),
    (0x0008, "MESSAGE-INTEGRITY", bytes(range(20)), bytes(range(20)).hex()),
    (0x0009, "ERROR-CODE", b"\0\0\x04\x01Unauthorized", {"code": 401, "reason": "Unauthorized"}),
    (0x0009, "ERROR-CODE", b"\0\0\x04\x20", {"code": 432, "reason": ""}),
    (0x000A, "UNKNOWN-ATTRIBUTES", bytes.fromhex("00 1a 80 99 00 30"), [0x1A, 0x8099, 0x30]),
    (0x000B, "REFLECTED-FROM", encode_address("10.0.0.4", 1000), "10.0.0.4:1000"),
    (0x000C, "CHANNEL-NUMBER", b"\x40\x01\0\0", 0x4001),
    (0x000D, "LIFETIME", (600).to_bytes(4, "big"), 600),
    (
        0x0012,
        "XOR-PEER-ADDRESS",
        encode_xor_address("198.51.100.5", 50000, TID),
        "198.51.100.5:50000",
    ),
    (0x0013, "DATA", b"\x80\x00abc", "8000616263"),
    (0x0014, "REALM", b"example.org", "example.org"),
    (0x0015, "NONCE", b"f//499k954d6OL34oL9FSTvy64sA", "f//499k954d6OL34oL9FSTvy64sA"),
    (
        0x0016,
        "XOR-RELAYED-ADDRESS",
        encode_xor_address("::ffff:1.2.3.4", 7, TID),
        "[::ffff:102:304]:7",
    ),
    (0x0018, "EVEN-PORT", b"\x80", {"reserve": True}),
    (0x0019, "REQUESTED-TRANSPORT", b"\x11\0\0\0", 17),
    (0x001A, "DONT-FRAGMENT", b"", True),
    (0x001C, "MESSAGE-INTEGRITY-SHA256", bytes(32), "00" * 32),
    (
        0x001D,
        "PASSWORD-ALGORITHM",
        b"\0\x01\0\0",
        {"algorithm": 1, "name": "MD5", "parameters": ""},
    ),
    (0x001E, "USERHASH", b"\xab" * 32, "ab" * 32),
    (
        0x0020,
        "XOR-MAPPED-ADDRESS",
        encode_xor_address("203.0.113.1", 4242, TID),
        "203.0.113.1:4242",
    ),
    (0x0020, "XOR-MAPPED-ADDRESS", encode_xor_address("fe80::1", 4242, TID), "[fe80::1]:4242"),
    (0x0022, "RESERVATION-TOKEN", b"12345678", "3132333435363738"),
    (0x0024, "PRIORITY", (0x6E0001FF).to_bytes(4, "big"), 0x6E0001FF),
    (0x0025, "USE-CANDIDATE", b"", True),
    (0x0026, "PADDING", bytes(1000), 1000),
    (0x0027, "RESPONSE-PORT", b"\x13\x88\0\0", 5000),
    (
        0x8002,
        "PASSWORD-ALGORITHMS",
        b"\0\x02\0\0\0\x01\0\x02\xab\xcd\0\0",
        [
            {"algorithm": 2, "name": "SHA-256", "parameters": ""},
            {"algorithm": 1, "name": "MD5", "parameters": "abcd"},
        ],
    ),
    (0x8003, "ALTERNATE-DOMAIN", b"stun.example.net", "stun.example.net"),
    (0x8020, "XOR-MAPPED-ADDRESS-OLD", encode_xor_address("192.0.2.77", 1, TID), "192.0.2.77:1"),
    (0x8022, "SOFTWARE", b"siptool 0.1", "siptool 0.1"),
    (0x8023, "ALTERNATE-SERVER", encode_address("192.0.2.200", 3478), "192.0.2.200:3478"),
    (0x8029, "ICE-CONTROLLED", (2**64 - 1).to_bytes(8, "big"), 2**64 - 1),
    (0x802A, "ICE-CONTROLLING", (1).to_bytes(8, "big"), 1),
    (0x802B, "RESPONSE-ORIGIN", encode_address("192.0.2.10", 3478), "192.0.2.10:3478"),
    (0x802C, "OTHER-ADDRESS", encode_address("192.0.2.11", 3479), "192.0.2.11:3479"),
    (0x7FFF, "0x7FFF", b"\x01\x02\x03", "010203"),  # unknown comprehension-required: kept
    (0xC001, "0xC001", b"", ""),
]


@pytest.mark.parametrize(
    ("attr_type", "name", "raw", "value"),
    ROUND_TRIPS,
    ids=[f"{name}-{i}" for i, (_, name, _, _) in enumerate(ROUND_TRIPS)],
)
def test_encode_parse_round_trip_of_every_attribute_kind(
    attr_type: int, name: str, raw: bytes, value: object
) -> None:
    wire = encode_message(
        StunClass.SUCCESS_RESPONSE, 0x001, TID, [(attr_type, raw)], fingerprint=True
    )
    assert len(wire) % 4 == 0
    assert looks_like_stun(wire)
    message = parse_stun(wire)
    first = message.attributes[0]
    assert (first.type, first.name, first.value, first.raw) == (attr_type, name, value, raw)
    assert message.attribute(name) is first
    assert message.fingerprint_ok is True
    json.dumps(message.to_dict())


def test_every_message_class_and_method_bits_round_trip() -> None:
    for method, name in METHOD_NAMES.items():
        for msg_class in StunClass:
            message = parse_stun(encode_message(msg_class, method, TID, []))
            assert (message.msg_class, message.method, message.method_name) == (
                msg_class,
                method,
                name,
            )
            assert message.to_dict()["class"] == msg_class.label


@pytest.mark.parametrize(
    ("msg_class", "method", "wire_type"),
    [
        (StunClass.REQUEST, 0x001, 0x0001),
        (StunClass.SUCCESS_RESPONSE, 0x001, 0x0101),
        (StunClass.ERROR_RESPONSE, 0x001, 0x0111),
        (StunClass.ERROR_RESPONSE, 0x003, 0x0113),  # Allocate error (RFC 8656)
        (StunClass.INDICATION, 0x006, 0x0016),  # Send indication
        (StunClass.INDICATION, 0x007, 0x0017),  # Data indication
        (StunClass.REQUEST, 0xFFF, 0x3EEF),
    ],
)
def test_message_type_bit_layout_rfc8489_section_5(
    msg_class: StunClass, method: int, wire_type: int
) -> None:
    wire = encode_message(msg_class, method, TID, [])
    assert int.from_bytes(wire[:2], "big") == wire_type


def test_unknown_method_is_named_by_number() -> None:
    message = parse_stun(encode_message(StunClass.REQUEST, 0x0FE, TID, []))
    assert message.method_name == "0x0FE"


def test_labels() -> None:
    assert [c.label for c in StunClass] == [
        "request",
        "indication",
        "success_response",
        "error_response",
    ]


def test_error_response_error_code_property() -> None:
    body = _attribute(0x0009, b"\0\0\x04\x14Unknown Attribute") + _attribute(
        0x000A, b"\x00\x1a\x00\x1a"
    )
    message = parse_stun(_message(body, message_type=0x0111))
    assert message.msg_class is StunClass.ERROR_RESPONSE
    assert message.error_code == (420, "Unknown Attribute")
    assert message.attribute("UNKNOWN-ATTRIBUTES").value == [0x1A, 0x1A]  # type: ignore[union-attr]


def test_attribute_lookup_by_unknown_name_and_hex_name() -> None:
    message = parse_stun(_message(_attribute(0x7ABC, b"zz")))
    assert message.attribute("NO-SUCH-THING") is None
    assert message.attribute("0x7ABC") is message.attributes[0]
    assert message.attributes[0].comprehension_required is True


# --------------------------------------------------------------------------- builders


def test_binding_request_with_every_option_round_trips_and_verifies() -> None:
    key = long_term_key("alice", "example.org", "pw")
    tid, wire = binding_request(
        change_ip=True,
        change_port=True,
        response_port=40000,
        padding=500,
        software="siptool",
        username="alice",
        realm="example.org",
        nonce="abc",
        integrity_key=key,
        fingerprint=True,
    )
    message = parse_stun(wire)
    assert message.transaction_id == tid and len(tid) == 12
    assert message.msg_class is StunClass.REQUEST
    assert [a.name for a in message.attributes] == [
        "CHANGE-REQUEST",
        "RESPONSE-PORT",
        "PADDING",
        "SOFTWARE",
        "USERNAME",
        "REALM",
        "NONCE",
        "MESSAGE-INTEGRITY",
        "FINGERPRINT",
    ]
    assert message.attribute("CHANGE-REQUEST").value == {  # type: ignore[union-attr]
        "change_ip": True,
        "change_port": True,
    }
    assert message.attribute("RESPONSE-PORT").value == 40000  # type: ignore[union-attr]
    assert message.attribute("PADDING").value == 500  # type: ignore[union-attr]
    assert message.fingerprint_ok is True
    assert verify_message_integrity(wire, key) is True
    assert verify_message_integrity(wire, long_term_key("alice", "example.org", "px")) is False


def test_binding_request_plain_is_twenty_bytes_with_the_given_id() -> None:
    tid, wire = binding_request(TID)
    assert tid == TID
    assert wire == bytes.fromhex("00010000 2112a442") + TID


def test_sha256_integrity_encoding_verifies() -> None:
    wire = encode_message(
        StunClass.REQUEST,
        1,
        TID,
        [(0x0006, b"bob")],
        integrity_key=b"k",
        integrity_sha256=True,
        fingerprint=True,
    )
    assert verify_message_integrity_sha256(wire, b"k") is True
    assert verify_message_integrity_sha256(wire, b"j") is False
    assert parse_stun(wire).fingerprint_ok is True


def test_binding_response_to_a_modern_request() -> None:
    _, request_wire = binding_request()
    request = parse_stun(request_wire)
    wire = binding_response(
        request,
        ("2001:db8::7", 61000),
        response_origin=("192.0.2.1", 3478),
        other_address=("192.0.2.2", 3479),
        software="test",
    )
    response = parse_stun(wire)
    assert response.msg_class is StunClass.SUCCESS_RESPONSE
    assert response.transaction_id == request.transaction_id
    assert response.xor_mapped_address == "[2001:db8::7]:61000"
    assert response.response_origin == "192.0.2.1:3478"
    assert response.other_address == "192.0.2.2:3479"
    assert response.software == "test"
    assert response.fingerprint_ok is True


def test_binding_response_to_a_legacy_request_uses_rfc3489_attributes() -> None:
    _, request_wire = binding_request(legacy=True)
    request = parse_stun(request_wire)
    response = parse_stun(
        binding_response(
            request,
            ("192.0.2.9", 1234),
            response_origin=("192.0.2.1", 3478),
            other_address=("192.0.2.2", 3479),
        )
    )
    assert response.legacy is True
    assert response.transaction_id == request.transaction_id
    assert response.mapped_address == "192.0.2.9:1234"
    assert response.xor_mapped_address is None
    assert response.source_address == "192.0.2.1:3478"
    assert response.changed_address == "192.0.2.2:3479"


def test_encoder_rejects_bad_transaction_ids_and_methods() -> None:
    with pytest.raises(ValueError):
        encode_message(StunClass.REQUEST, 1, b"short", [])
    with pytest.raises(ValueError):
        encode_message(StunClass.REQUEST, 0x1000, TID, [])


def test_new_transaction_ids_are_twelve_random_bytes() -> None:
    ids = {new_transaction_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) == 12 for i in ids)


# --------------------------------------------------------------------- looks_like_stun, framing


@pytest.mark.parametrize(
    "data",
    [
        b"OPTIONS sip:alice@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1\r\n\r\n",
        b"SIP/2.0 200 OK\r\n\r\n",
        bytes.fromhex("80 00 12 34 00 00 00 a0 de ad be ef") + bytes(160),  # RTP, PT 0
        bytes.fromhex("80 c8 00 06") + bytes(24),  # RTCP sender report
        b"",
        RFC5769_REQUEST[:19],
        RFC5769_REQUEST[:-4],  # length field says more than there is
        bytes.fromhex("00010001 2112a442") + TID + b"\0",  # length not a multiple of 4
        LEGACY_RESPONSE + b"\0\0\0\0",  # no cookie: must be exactly the length
        bytes.fromhex("00030000") + bytes(16),  # no cookie and not a classic type
        b"\r\n\r\n" * 8,  # SIP keep-alives
    ],
)
def test_looks_like_stun_rejects_other_traffic(data: bytes) -> None:
    assert looks_like_stun(data) is False


@pytest.mark.parametrize(
    "data",
    [RFC5769_REQUEST, RFC5769_IPV6_RESPONSE, LEGACY_RESPONSE, binding_request(legacy=True)[1]],
)
def test_looks_like_stun_accepts_stun(data: bytes) -> None:
    assert looks_like_stun(data) is True


def test_stun_frame_length_rfc8489_section_6_2_2() -> None:
    assert stun_frame_length(b"") is None
    assert stun_frame_length(RFC5769_REQUEST[:19]) is None
    assert stun_frame_length(RFC5769_REQUEST[:20]) == len(RFC5769_REQUEST)
    assert stun_frame_length(RFC5769_REQUEST + RFC5769_IPV4_RESPONSE) == len(RFC5769_REQUEST)
    with pytest.raises(ParseError):
        stun_frame_length(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    with pytest.raises(ParseError):
        stun_frame_length(bytes.fromhex("00010002") + bytes(16))


# ---------------------------------------------------------------------------- malformed input


def _xor_attr_with_family(family: int) -> bytes:
    return _attribute(0x0020, bytes((0, family)) + b"\x12\x34" + bytes(4))


MALFORMED: list[tuple[str, bytes, int]] = [
    ("empty", b"", 0),
    ("short header", RFC5769_REQUEST[:12], 12),
    ("first bits set", b"\x40" + RFC5769_REQUEST[1:], 0),
    ("length not multiple of 4", _message(b"\0\0\0\0\0"), 2),
    ("truncated body", RFC5769_REQUEST[:-4], len(RFC5769_REQUEST) - 4),
    ("trailing bytes", RFC5769_REQUEST + b"\0\0\0\0", len(RFC5769_REQUEST)),
    ("attribute overruns", _message(struct.pack("!HH", 0x8022, 9) + b"abcd"), 20),
    ("second attribute overruns", _message(_attribute(0x8022, b"ok") + b"\x00\x06\x00\x08"), 28),
    ("bad address family", _message(_xor_attr_with_family(3)), 20),
    ("ipv6 family with 4 bytes", _message(_xor_attr_with_family(2)), 20),
    ("address shorter than 4", _message(_attribute(0x0001, b"\0\1")), 20),
    ("short error code", _message(_attribute(0x0009, b"\0\4")), 20),
    ("fingerprint of 2 bytes", _message(_attribute(0x8028, b"\0\0")), 20),
    ("change request of 8 bytes", _message(_attribute(0x0003, bytes(8))), 20),
    ("odd unknown attributes", _message(_attribute(0x000A, b"\0\1\0")), 20),
    (
        "password algorithm overrun",
        _message(_attribute(0x8004, b"") + _attribute(0x8002, b"\0\1\0\x08ab")),
        24,
    ),
]


@pytest.mark.parametrize(("label", "data", "offset"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_input_raises_parse_error_with_offset(
    label: str, data: bytes, offset: int
) -> None:
    with pytest.raises(ParseError) as info:
        parse_stun(data)
    assert info.value.offset == offset
    assert str(info.value).startswith(f"byte {offset}: ")


def test_garbage_raises_parse_error() -> None:
    with pytest.raises(ParseError):
        parse_stun(b"\x00\x01\x00\x08" + b"garbage!" * 3)


def test_integrity_check_on_broken_framing_raises_parse_error() -> None:
    with pytest.raises(ParseError):
        verify_message_integrity(_message(struct.pack("!HH", 0x0008, 40) + bytes(4)), b"k")
    with pytest.raises(ParseError):
        verify_message_integrity(b"\0\1", b"k")
