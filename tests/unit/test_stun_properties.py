"""Property tests of the STUN codec: no input makes it raise anything but ParseError, and what
the encoder builds the parser reads back exactly."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from siptool.errors import ParseError
from siptool.stun.framing import MAGIC_COOKIE, looks_like_stun, stun_frame_length
from siptool.stun.message import (
    ATTRIBUTE_NAMES,
    StunClass,
    encode_address,
    encode_change_request,
    encode_message,
    encode_xor_address,
    parse_stun,
    verify_message_integrity,
    verify_message_integrity_sha256,
)

COOKIE = MAGIC_COOKIE.to_bytes(4, "big")


def _parse_or_parse_error(data: bytes) -> None:
    try:
        message = parse_stun(data)
    except ParseError as exc:
        assert exc.offset is not None
        return
    json.dumps(message.to_dict())


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_parse_error(data: bytes) -> None:
    _parse_or_parse_error(data)
    looks_like_stun(data)
    for check in (verify_message_integrity, verify_message_integrity_sha256):
        with contextlib.suppress(ParseError):
            check(data, b"key")
    with contextlib.suppress(ParseError):
        stun_frame_length(data)


# Headers that pass the framing checks, so the attribute decoders see the random bytes.
_known_types = st.sampled_from(sorted(ATTRIBUTE_NAMES))
_any_type = st.one_of(_known_types, st.integers(0, 0xFFFF))


@st.composite
def _framed_garbage(draw: st.DrawFn) -> bytes:
    body = b""
    for _ in range(draw(st.integers(0, 6))):
        value = draw(st.binary(max_size=24))
        declared = draw(st.one_of(st.just(len(value)), st.integers(0, 40)))
        body += struct.pack("!HH", draw(_any_type), declared) + value + bytes(-len(value) % 4)
    body = body[: len(body) - len(body) % 4]
    message_type = draw(st.integers(0, 0x3FFF))
    id_field = draw(
        st.one_of(
            st.binary(min_size=16, max_size=16),
            st.binary(min_size=12, max_size=12).map(lambda t: COOKIE + t),
        )
    )
    return struct.pack("!HH", message_type, len(body)) + id_field + body


@settings(max_examples=500)
@given(_framed_garbage())
def test_well_framed_random_attributes_raise_only_parse_error(data: bytes) -> None:
    _parse_or_parse_error(data)


_ipv4 = st.ip_addresses(v=4).map(str)
_ipv6 = st.ip_addresses(v=6).map(str)
_ip = st.one_of(_ipv4, _ipv6)
_port = st.integers(0, 65535)
_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=40
)


@st.composite
def _attribute(draw: st.DrawFn, transaction_id: bytes) -> tuple[int, bytes]:
    kind = draw(st.sampled_from(["address", "xor", "change", "text", "error", "unknown", "u32"]))
    if kind == "address":
        attr_type = draw(st.sampled_from([0x0001, 0x0004, 0x0005, 0x802B, 0x802C, 0x8023]))
        return attr_type, encode_address(draw(_ip), draw(_port))
    if kind == "xor":
        attr_type = draw(st.sampled_from([0x0020, 0x8020, 0x0012, 0x0016]))
        return attr_type, encode_xor_address(draw(_ip), draw(_port), transaction_id)
    if kind == "change":
        return 0x0003, encode_change_request(draw(st.booleans()), draw(st.booleans()))
    if kind == "text":
        attr_type = draw(st.sampled_from([0x0006, 0x0014, 0x0015, 0x8022, 0x8003]))
        return attr_type, draw(_text).encode("utf-8")
    if kind == "error":
        code = draw(st.integers(300, 699))
        reason = draw(_text).encode("utf-8")
        return 0x0009, bytes((0, 0, code // 100, code % 100)) + reason
    if kind == "u32":
        return draw(st.sampled_from([0x000D, 0x0024])), draw(st.binary(min_size=4, max_size=4))
    unknown = draw(st.integers(0, 0xFFFF).filter(lambda t: t not in ATTRIBUTE_NAMES))
    return unknown, draw(st.binary(max_size=30))


@st.composite
def _message_parts(draw: st.DrawFn) -> tuple[bytes, list[tuple[int, bytes]]]:
    transaction_id = draw(
        st.one_of(
            st.binary(min_size=12, max_size=12),
            st.binary(min_size=16, max_size=16).filter(lambda t: t[:4] != COOKIE),
        )
    )
    attributes = draw(st.lists(_attribute(transaction_id), max_size=8))
    return transaction_id, attributes


def _expected_value(attr_type: int, raw: bytes, transaction_id: bytes) -> object:
    # Independent of the codec's decoders: what each generated attribute must read as.
    if attr_type in (0x0001, 0x0004, 0x0005, 0x802B, 0x802C, 0x8023):
        plain = raw
    elif attr_type in (0x0020, 0x8020, 0x0012, 0x0016):
        key = (COOKIE + transaction_id) if len(transaction_id) == 12 else transaction_id
        plain = raw[:2] + bytes(a ^ b for a, b in zip(raw[2:], key[:2] + key, strict=False))
    else:
        return None
    ip = str(ipaddress.ip_address(plain[4:]))
    port = int.from_bytes(plain[2:4], "big")
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@settings(max_examples=300)
@given(
    _message_parts(),
    st.sampled_from(list(StunClass)),
    st.integers(0, 0xFFF),
    st.one_of(st.none(), st.binary(min_size=1, max_size=20)),
    st.booleans(),
    st.booleans(),
)
def test_encode_parse_round_trip(
    parts: tuple[bytes, list[tuple[int, bytes]]],
    msg_class: StunClass,
    method: int,
    key: bytes | None,
    sha256: bool,
    fingerprint: bool,
) -> None:
    transaction_id, attributes = parts
    wire = encode_message(
        msg_class,
        method,
        transaction_id,
        attributes,
        integrity_key=key,
        integrity_sha256=sha256,
        fingerprint=fingerprint,
    )
    # Without the cookie only the RFC 3489 Binding/Shared Secret types look like STUN.
    assert looks_like_stun(wire) or len(transaction_id) == 16
    assert stun_frame_length(wire) == len(wire)
    message = parse_stun(wire)
    assert message.msg_class is msg_class
    assert message.method == method
    assert message.transaction_id == transaction_id
    assert message.legacy is (len(transaction_id) == 16)
    assert message.length == len(wire) - 20
    decoded = message.attributes[: len(attributes)]
    assert [(a.type, a.raw) for a in decoded] == attributes
    for attribute in decoded:
        expected = _expected_value(attribute.type, attribute.raw, transaction_id)
        if expected is not None:
            assert attribute.value == expected
    assert message.fingerprint_ok is (True if fingerprint else None)
    if key is None:
        assert len(message.attributes) == len(attributes) + fingerprint
    elif sha256:
        assert verify_message_integrity_sha256(wire, key) is True
        assert verify_message_integrity_sha256(wire, key + b"x") is False
    else:
        assert verify_message_integrity(wire, key) is True
        assert verify_message_integrity(wire, key + b"x") is False
    json.dumps(message.to_dict())
