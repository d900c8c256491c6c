"""STUN messages: parse and build (RFC 8489, RFC 5780, RFC 3489 legacy, TURN RFC 8656).

Pure: no sockets, no clock.  ``parse_stun`` turns one message into a ``StunMessage`` whose
attributes are decoded per type from the table ``ATTRIBUTES`` (data, not code paths);
``encode_message`` and the ``binding_*`` helpers build wire bytes.

Decisions (each is a choice the RFCs leave open, or a tolerance of real servers):

* A header without the magic cookie is RFC 3489 "classic" STUN: the transaction id is then the
  16 bytes after the length (``legacy=True``).
* XOR'd addresses are decoded with the 16 header bytes after the length as the key: cookie and
  transaction id (RFC 8489 §14.2).  For a legacy message that is the first 4 bytes of its id,
  which is what servers implementing the pre-RFC 5389 drafts (stund, old coturn) XOR with.
* Unknown attributes, comprehension-required ones included (RFC 8489 §14), are kept with their
  raw bytes: a diagnostic tool shows what came, it does not reject the message.
* Padding bytes are not required to be zero (RFC 5769 §2.1 pads USERNAME with spaces).
* Trailing NULs are stripped from text values (SOFTWARE, USERNAME, ...): RFC 3489 padded them
  inside the attribute length and real servers still do.  ``raw`` keeps the exact bytes.
* Attributes after MESSAGE-INTEGRITY other than MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are
  kept, although RFC 8489 §14.5 says a receiver ignores them.
* A known attribute with a malformed value (address family 3, ERROR-CODE shorter than 4 bytes,
  a FINGERPRINT of 2 bytes ...) makes the whole message a ``ParseError``.
* Except ICMP (RFC 8656 §18.14, comprehension-optional, only informative in a Data
  indication): one of the wrong size is kept as hex, so that it does not lose the data the
  indication carries.
* MESSAGE-INTEGRITY is checked with the RFC 8489 §14.5 rule (length field adjusted to end at
  the attribute) for legacy messages too; RFC 3489 §11.2.8 padded to 64 bytes instead.
* Keys: SASLprep (RFC 4013) / OpaqueString (RFC 8265) preparation of the password is skipped;
  ASCII passwords, by far the common case, are unaffected.
"""

from __future__ import annotations

import binascii
import enum
import hashlib
import hmac
import ipaddress
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import overload

from siptool.addr import format_address
from siptool.errors import ParseError
from siptool.stun.framing import (
    COOKIE,
    HEADER_LENGTH,
    has_magic_cookie,
    padded,
    stun_frame_length,
)

__all__ = [
    "ATTRIBUTES",
    "ATTRIBUTE_NAMES",
    "ATTRIBUTE_TYPES",
    "METHOD_NAMES",
    "StunAttribute",
    "StunClass",
    "StunMessage",
    "binding_request",
    "binding_response",
    "encode_address",
    "encode_address_family",
    "encode_change_request",
    "encode_message",
    "encode_xor_address",
    "long_term_key",
    "new_transaction_id",
    "parse_stun",
    "short_term_key",
    "verify_message_integrity",
    "verify_message_integrity_sha256",
]

# RFC 8489 §14.7
FINGERPRINT_XOR = 0x5354554E

# Attribute type numbers used by the code below (the full table is ATTRIBUTES).
MAPPED_ADDRESS = 0x0001
RESPONSE_ADDRESS = 0x0002
CHANGE_REQUEST = 0x0003
SOURCE_ADDRESS = 0x0004
CHANGED_ADDRESS = 0x0005
USERNAME = 0x0006
MESSAGE_INTEGRITY = 0x0008
ERROR_CODE = 0x0009
REALM = 0x0014
NONCE = 0x0015
MESSAGE_INTEGRITY_SHA256 = 0x001C
XOR_MAPPED_ADDRESS = 0x0020
PADDING = 0x0026
RESPONSE_PORT = 0x0027
XOR_MAPPED_ADDRESS_OLD = 0x8020
SOFTWARE = 0x8022
FINGERPRINT = 0x8028
RESPONSE_ORIGIN = 0x802B
OTHER_ADDRESS = 0x802C
# TURN (RFC 8656 §18, RFC 6062 §6.2).
CHANNEL_NUMBER = 0x000C
LIFETIME = 0x000D
XOR_PEER_ADDRESS = 0x0012
DATA = 0x0013
XOR_RELAYED_ADDRESS = 0x0016
REQUESTED_ADDRESS_FAMILY = 0x0017
EVEN_PORT = 0x0018
REQUESTED_TRANSPORT = 0x0019
DONT_FRAGMENT = 0x001A
PASSWORD_ALGORITHM = 0x001D
CONNECTION_ID = 0x002A
ADDITIONAL_ADDRESS_FAMILY = 0x8000
ADDITIONAL_ADDRESS_FAMILY_OLD = 0x8032
ADDRESS_ERROR_CODE = 0x8001
PASSWORD_ALGORITHMS = 0x8002
ICMP = 0x8004

_FAMILY_IPV4 = 0x01
_FAMILY_IPV6 = 0x02


class StunClass(enum.Enum):
    """The two class bits C1 C0 of the message type (RFC 8489 §5)."""

    REQUEST = 0b00
    INDICATION = 0b01
    SUCCESS_RESPONSE = 0b10
    ERROR_RESPONSE = 0b11

    @property
    def label(self) -> str:
        return self.name.lower()


# Method numbers used by the code (the names are METHOD_NAMES).
BINDING = 0x001
ALLOCATE = 0x003
REFRESH = 0x004
SEND = 0x006
DATA_METHOD = 0x007
CREATE_PERMISSION = 0x008
CHANNEL_BIND = 0x009
CONNECT = 0x00A
CONNECTION_BIND = 0x00B
CONNECTION_ATTEMPT = 0x00C

METHOD_NAMES: dict[int, str] = {
    0x001: "binding",  # RFC 8489 §18.2
    0x002: "shared_secret",  # RFC 3489 §8.2, reserved since RFC 5389
    0x003: "allocate",  # RFC 8656 §17
    0x004: "refresh",
    0x006: "send",
    0x007: "data",
    0x008: "create_permission",
    0x009: "channel_bind",
    0x00A: "connect",  # RFC 6062 §6.1
    0x00B: "connection_bind",
    0x00C: "connection_attempt",
}


# --------------------------------------------------------------------------------------------
# Attribute values: one decoder per kind, chosen by the table below.


class _Malformed(Exception):
    """A known attribute whose value does not have its defined form."""


# A decoder gets the value bytes and the 16-byte XOR key (header bytes 4..20).
_Decoder = Callable[[bytes, bytes], object]


def _address_bytes(value: bytes) -> tuple[int, bytes, bytes]:
    # RFC 8489 §14.1: 0x00, family, port, address (4 or 16 bytes).
    if len(value) < 4:
        raise _Malformed(f"address attribute of {len(value)} bytes, at least 8 expected")
    family = value[1]
    address = value[4:]
    if family == _FAMILY_IPV4:
        expected = 4
    elif family == _FAMILY_IPV6:
        expected = 16
    else:
        raise _Malformed(f"bad address family 0x{family:02x}")
    if len(address) != expected:
        raise _Malformed(
            f"address attribute of {len(value)} bytes for family {family}, {expected + 4} expected"
        )
    return family, value[2:4], address


def _decode_address(value: bytes, key: bytes) -> object:
    _, port, address = _address_bytes(value)
    ip = str(ipaddress.ip_address(address))
    return format_address(ip, int.from_bytes(port, "big"))


def _xor(data: bytes, key: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, key, strict=False))


def _decode_xor_address(value: bytes, key: bytes) -> object:
    # RFC 8489 §14.2: port XOR the cookie's top 16 bits; IPv4 XOR the cookie; IPv6 XOR
    # cookie || transaction id.
    _, port, address = _address_bytes(value)
    ip = str(ipaddress.ip_address(_xor(address, key)))
    return format_address(ip, int.from_bytes(_xor(port, key), "big"))


def _decode_text(value: bytes, key: bytes) -> object:
    # RFC 3489 §11.2.6/§11.2.7 asked for values padded to a multiple of 4 inside the length;
    # stund and coturn (answering RFC 3489 requests) pad SOFTWARE with NULs that way.
    return value.decode("utf-8", errors="replace").rstrip("\x00")


def _decode_hex(value: bytes, key: bytes) -> object:
    return value.hex()


def _decode_uint(size: int) -> _Decoder:
    def decode(value: bytes, key: bytes) -> object:
        if len(value) != size:
            raise _Malformed(f"value of {len(value)} bytes, {size} expected")
        return int.from_bytes(value, "big")

    return decode


def _decode_change_request(value: bytes, key: bytes) -> object:
    # RFC 5780 §7.2 (RFC 3489 §11.2.4): flags A (change IP, 0x4) and B (change port, 0x2).
    if len(value) != 4:
        raise _Malformed(f"CHANGE-REQUEST of {len(value)} bytes, 4 expected")
    return {"change_ip": bool(value[3] & 0x04), "change_port": bool(value[3] & 0x02)}


def _decode_error_code(value: bytes, key: bytes) -> object:
    # RFC 8489 §14.8: 21 reserved bits, class (3 bits, 3..6), number (0..99), reason.
    if len(value) < 4:
        raise _Malformed(f"ERROR-CODE of {len(value)} bytes, at least 4 expected")
    code = (value[2] & 0x07) * 100 + value[3]
    # RFC 3489 §11.2.9 padded the reason inside the length; strip the NULs that leaves.
    reason = value[4:].decode("utf-8", errors="replace").rstrip("\x00")
    return {"code": code, "reason": reason}


def _decode_unknown_attributes(value: bytes, key: bytes) -> object:
    # RFC 8489 §14.9: a list of 16-bit types.
    if len(value) % 2:
        raise _Malformed(f"UNKNOWN-ATTRIBUTES of odd length {len(value)}")
    return [int.from_bytes(value[i : i + 2], "big") for i in range(0, len(value), 2)]


def _decode_response_port(value: bytes, key: bytes) -> object:
    # RFC 5780 §7.5: a 16-bit port followed by 2 bytes of padding; accept the port alone too.
    if len(value) not in (2, 4):
        raise _Malformed(f"RESPONSE-PORT of {len(value)} bytes, 4 expected")
    return int.from_bytes(value[:2], "big")


def _decode_padding(value: bytes, key: bytes) -> object:
    # RFC 5780 §7.6: only its length matters.
    return len(value)


def _decode_flag(value: bytes, key: bytes) -> object:
    return True


def _decode_requested_transport(value: bytes, key: bytes) -> object:
    # RFC 8656 §18.7: protocol number, then 3 reserved bytes.
    if len(value) != 4:
        raise _Malformed(f"REQUESTED-TRANSPORT of {len(value)} bytes, 4 expected")
    return value[0]


def _decode_channel_number(value: bytes, key: bytes) -> object:
    # RFC 8656 §18.1: the 16-bit channel number, then 16 reserved bits.
    if len(value) != 4:
        raise _Malformed(f"CHANNEL-NUMBER of {len(value)} bytes, 4 expected")
    return int.from_bytes(value[:2], "big")


def _decode_even_port(value: bytes, key: bytes) -> object:
    # RFC 8656 §18.8: R bit.
    if len(value) != 1:
        raise _Malformed(f"EVEN-PORT of {len(value)} bytes, 1 expected")
    return {"reserve": bool(value[0] & 0x80)}


ADDRESS_FAMILY_NAMES = {_FAMILY_IPV4: "IPv4", _FAMILY_IPV6: "IPv6"}


def _decode_address_family(value: bytes, key: bytes) -> object:
    # RFC 8656 §18.11/§18.12: family (0x01 IPv4, 0x02 IPv6), then 3 reserved bytes.
    if len(value) != 4:
        raise _Malformed(f"address family attribute of {len(value)} bytes, 4 expected")
    return ADDRESS_FAMILY_NAMES.get(value[0], f"0x{value[0]:02X}")


def _decode_address_error_code(value: bytes, key: bytes) -> object:
    # RFC 8656 §18.13: family (8 bits), 13 reserved bits, class (3 bits), number, reason.
    if len(value) < 4:
        raise _Malformed(f"ADDRESS-ERROR-CODE of {len(value)} bytes, at least 4 expected")
    family = ADDRESS_FAMILY_NAMES.get(value[0], f"0x{value[0]:02X}")
    code = (value[2] & 0x07) * 100 + value[3]
    reason = value[4:].decode("utf-8", errors="replace").rstrip("\x00")
    return {"family": family, "code": code, "reason": reason}


def _decode_icmp(value: bytes, key: bytes) -> object:
    # RFC 8656 §18.14: 18 reserved bits, ICMP type (7 bits), code (9 bits), error data (32).
    # Comprehension-optional and only informative: one of another size is kept as hex (see
    # the module docs).
    if len(value) != 8:
        return value.hex()
    word = int.from_bytes(value[:4], "big")
    return {
        "type": (word >> 9) & 0x7F,
        "code": word & 0x1FF,
        "data": int.from_bytes(value[4:], "big"),
    }


PASSWORD_ALGORITHM_NAMES = {0x0001: "MD5", 0x0002: "SHA-256"}  # RFC 8489 §18.5


def _password_algorithms(value: bytes) -> list[dict[str, object]]:
    # RFC 8489 §14.11: algorithm (16 bits), parameters length (16 bits), parameters, padding.
    out: list[dict[str, object]] = []
    pos = 0
    while pos < len(value):
        if len(value) - pos < 4:
            raise _Malformed("truncated password algorithm")
        number = int.from_bytes(value[pos : pos + 2], "big")
        size = int.from_bytes(value[pos + 2 : pos + 4], "big")
        params = value[pos + 4 : pos + 4 + size]
        if len(params) != size:
            raise _Malformed("password algorithm parameters overrun the attribute")
        out.append(
            {
                "algorithm": number,
                "name": PASSWORD_ALGORITHM_NAMES.get(number, f"0x{number:04X}"),
                "parameters": params.hex(),
            }
        )
        pos += 4 + padded(size)
    return out


def _decode_password_algorithm(value: bytes, key: bytes) -> object:
    algorithms = _password_algorithms(value)
    if len(algorithms) != 1:
        raise _Malformed("PASSWORD-ALGORITHM must hold exactly one algorithm")
    return algorithms[0]


def _decode_password_algorithms(value: bytes, key: bytes) -> object:
    return _password_algorithms(value)


_uint16 = _decode_uint(2)
_uint32 = _decode_uint(4)
_uint64 = _decode_uint(8)

# The attribute table: type, name, decoder.  RFC 8489 §18.3 (with the RFC 3489 ones it
# keeps as reserved), RFC 5780 §7, RFC 8656 §18 (TURN), RFC 6062 §6.2 (TURN over TCP),
# RFC 8445 §16.1 (ICE).
ATTRIBUTES: tuple[tuple[int, str, _Decoder], ...] = (
    (0x0001, "MAPPED-ADDRESS", _decode_address),
    (0x0002, "RESPONSE-ADDRESS", _decode_address),  # RFC 3489 §11.2.2
    (0x0003, "CHANGE-REQUEST", _decode_change_request),
    (0x0004, "SOURCE-ADDRESS", _decode_address),  # RFC 3489 §11.2.5
    (0x0005, "CHANGED-ADDRESS", _decode_address),  # RFC 3489 §11.2.3
    (0x0006, "USERNAME", _decode_text),
    (0x0007, "PASSWORD", _decode_text),  # RFC 3489 §11.2.7
    (0x0008, "MESSAGE-INTEGRITY", _decode_hex),
    (0x0009, "ERROR-CODE", _decode_error_code),
    (0x000A, "UNKNOWN-ATTRIBUTES", _decode_unknown_attributes),
    (0x000B, "REFLECTED-FROM", _decode_address),  # RFC 3489 §11.2.11
    (0x000C, "CHANNEL-NUMBER", _decode_channel_number),
    (0x000D, "LIFETIME", _uint32),
    (0x0012, "XOR-PEER-ADDRESS", _decode_xor_address),
    (0x0013, "DATA", _decode_hex),
    (0x0014, "REALM", _decode_text),
    (0x0015, "NONCE", _decode_text),
    (0x0016, "XOR-RELAYED-ADDRESS", _decode_xor_address),
    (0x0017, "REQUESTED-ADDRESS-FAMILY", _decode_address_family),  # RFC 8656 §18.11
    (0x0018, "EVEN-PORT", _decode_even_port),
    (0x0019, "REQUESTED-TRANSPORT", _decode_requested_transport),
    (0x001A, "DONT-FRAGMENT", _decode_flag),
    (0x001C, "MESSAGE-INTEGRITY-SHA256", _decode_hex),
    (0x001D, "PASSWORD-ALGORITHM", _decode_password_algorithm),
    (0x001E, "USERHASH", _decode_hex),
    (0x0020, "XOR-MAPPED-ADDRESS", _decode_xor_address),
    (0x0022, "RESERVATION-TOKEN", _decode_hex),
    (0x0024, "PRIORITY", _uint32),
    (0x0025, "USE-CANDIDATE", _decode_flag),
    (0x0026, "PADDING", _decode_padding),
    (0x0027, "RESPONSE-PORT", _decode_response_port),
    (0x002A, "CONNECTION-ID", _uint32),  # RFC 6062 §6.2.1
    (0x8000, "ADDITIONAL-ADDRESS-FAMILY", _decode_address_family),  # RFC 8656 §18.12
    (0x8001, "ADDRESS-ERROR-CODE", _decode_address_error_code),  # RFC 8656 §18.13
    (0x8002, "PASSWORD-ALGORITHMS", _decode_password_algorithms),
    (0x8003, "ALTERNATE-DOMAIN", _decode_text),
    (0x8004, "ICMP", _decode_icmp),  # RFC 8656 §18.14
    # The XOR-MAPPED-ADDRESS number of draft-ietf-behave-rfc3489bis-02, still sent by stund
    # and older coturn.
    (0x8020, "XOR-MAPPED-ADDRESS-OLD", _decode_xor_address),
    (0x8022, "SOFTWARE", _decode_text),
    # The ADDITIONAL-ADDRESS-FAMILY number coturn 4.6 still sends and reads (before RFC 8656
    # assigned 0x8000).
    (0x8032, "ADDITIONAL-ADDRESS-FAMILY-OLD", _decode_address_family),
    (0x8023, "ALTERNATE-SERVER", _decode_address),
    (0x8028, "FINGERPRINT", _uint32),
    (0x8029, "ICE-CONTROLLED", _uint64),
    (0x802A, "ICE-CONTROLLING", _uint64),
    (0x802B, "RESPONSE-ORIGIN", _decode_address),
    (0x802C, "OTHER-ADDRESS", _decode_address),
)

ATTRIBUTE_NAMES: dict[int, str] = {number: name for number, name, _ in ATTRIBUTES}
ATTRIBUTE_TYPES: dict[str, int] = {name: number for number, name, _ in ATTRIBUTES}
_DECODERS: dict[int, tuple[str, _Decoder]] = {
    number: (name, decoder) for number, name, decoder in ATTRIBUTES
}


@dataclass(frozen=True)
class StunAttribute:
    """One attribute: ``value`` is decoded per type (see the module docs), ``raw`` is exact."""

    type: int
    name: str
    value: object
    raw: bytes

    @property
    def comprehension_required(self) -> bool:
        # RFC 8489 §14: types 0x0000-0x7FFF must be understood by the receiver.
        return self.type < 0x8000

    def to_dict(self) -> dict[str, object]:
        return {"type": self.type, "name": self.name, "value": self.value}


class _TextAttribute:
    """A ``StunMessage`` property: the first of ``types`` the message carries with text."""

    def __init__(self, *types: int) -> None:
        self.types = types

    @overload
    def __get__(self, message: None, owner: type[StunMessage]) -> _TextAttribute: ...

    @overload
    def __get__(self, message: StunMessage, owner: type[StunMessage]) -> str | None: ...

    def __get__(
        self, message: StunMessage | None, owner: type[StunMessage]
    ) -> _TextAttribute | str | None:
        return self if message is None else message._string(*self.types)


@dataclass
class StunMessage:
    """A parsed STUN message.  ``length`` is the header's length field."""

    msg_class: StunClass
    method: int
    method_name: str
    transaction_id: bytes
    legacy: bool
    attributes: list[StunAttribute] = field(default_factory=list)
    fingerprint_ok: bool | None = None
    length: int = 0

    def attribute(self, type_or_name: int | str) -> StunAttribute | None:
        """The first attribute of this type number or name (``"XOR-MAPPED-ADDRESS"``)."""
        if isinstance(type_or_name, str):
            wanted = ATTRIBUTE_TYPES.get(type_or_name.upper())
            if wanted is None:
                try:
                    wanted = int(type_or_name, 16)
                except ValueError:
                    return None
        else:
            wanted = type_or_name
        for attribute in self.attributes:
            if attribute.type == wanted:
                return attribute
        return None

    def _string(self, *types: int) -> str | None:
        """The value of the first attribute of these types that carries text (an address
        ``"ip:port"``, SOFTWARE), or None."""
        for number in types:
            attribute = self.attribute(number)
            if attribute is not None and isinstance(attribute.value, str):
                return attribute.value
        return None

    # The text attributes by name: XOR-MAPPED-ADDRESS includes its pre-standard 0x8020 form.
    xor_mapped_address = _TextAttribute(XOR_MAPPED_ADDRESS, XOR_MAPPED_ADDRESS_OLD)
    mapped_address = _TextAttribute(MAPPED_ADDRESS)
    other_address = _TextAttribute(OTHER_ADDRESS)
    response_origin = _TextAttribute(RESPONSE_ORIGIN)
    changed_address = _TextAttribute(CHANGED_ADDRESS)
    source_address = _TextAttribute(SOURCE_ADDRESS)
    software = _TextAttribute(SOFTWARE)

    @property
    def reflexive_address(self) -> str | None:
        """What the server saw: XOR-MAPPED-ADDRESS when present, else MAPPED-ADDRESS."""
        return self.xor_mapped_address or self.mapped_address

    @property
    def error_code(self) -> tuple[int, str] | None:
        attribute = self.attribute(ERROR_CODE)
        if attribute is None or not isinstance(attribute.value, dict):
            return None
        code, reason = attribute.value.get("code"), attribute.value.get("reason")
        if isinstance(code, int) and isinstance(reason, str):
            return code, reason
        return None

    def to_dict(self) -> dict[str, object]:
        """The JSON form of the decode contract's ``stun`` object."""
        return {
            "class": self.msg_class.label,
            "method": self.method_name,
            "transaction_id": self.transaction_id.hex(),
            "legacy": self.legacy,
            "attributes": [attribute.to_dict() for attribute in self.attributes],
            "fingerprint_ok": self.fingerprint_ok,
        }


# --------------------------------------------------------------------------------------------
# Header


def _split_type(message_type: int) -> tuple[StunClass, int]:
    # RFC 8489 §5: M11..M7 C1 M6..M4 C0 M3..M0
    method = (
        ((message_type & 0x3E00) >> 2) | ((message_type & 0x00E0) >> 1) | (message_type & 0x000F)
    )
    bits = ((message_type >> 7) & 0b10) | ((message_type >> 4) & 0b01)
    return StunClass(bits), method


def _join_type(msg_class: StunClass, method: int) -> int:
    if not 0 <= method <= 0xFFF:
        raise ValueError(f"STUN method {method:#x} does not fit in 12 bits")
    bits = msg_class.value
    return (
        ((method & 0xF80) << 2)
        | ((method & 0x070) << 1)
        | (method & 0x00F)
        | ((bits & 0b10) << 7)
        | ((bits & 0b01) << 4)
    )


# --------------------------------------------------------------------------------------------
# Parsing


def _fingerprint_over(data: bytes, end: int) -> int:
    # RFC 8489 §14.7: CRC-32 of the message up to the attribute, the length field covering it.
    header = data[:2] + (end + 8 - HEADER_LENGTH).to_bytes(2, "big") + data[4:HEADER_LENGTH]
    return (binascii.crc32(data[HEADER_LENGTH:end], binascii.crc32(header))) ^ FINGERPRINT_XOR


def parse_stun(data: bytes) -> StunMessage:
    """Parse exactly one STUN message.  Raises only ``ParseError`` (with the byte offset)."""
    data = bytes(data)
    size = len(data)
    end = stun_frame_length(data)  # ParseError when the header cannot be STUN
    if end is None:
        raise ParseError(f"truncated STUN header: {size} of 20 bytes", offset=size)
    message_type, length = struct.unpack_from("!HH", data)
    if size < end:
        raise ParseError(f"truncated STUN message: {size} of {end} bytes", offset=size)
    if size > end:
        raise ParseError(f"{size - end} bytes after the STUN message", offset=end)
    msg_class, method = _split_type(message_type)
    legacy = not has_magic_cookie(data)
    transaction_id = data[4:HEADER_LENGTH] if legacy else data[8:HEADER_LENGTH]
    key = data[4:HEADER_LENGTH]

    attributes: list[StunAttribute] = []
    fingerprint_ok: bool | None = None
    pos = HEADER_LENGTH
    while pos < end:
        if end - pos < 4:
            raise ParseError("truncated STUN attribute header", offset=pos)
        attr_type, attr_length = struct.unpack_from("!HH", data, pos)
        value_end = pos + 4 + attr_length
        if value_end > end:
            raise ParseError(
                f"STUN attribute 0x{attr_type:04X} ({attr_length} bytes) overruns the message",
                offset=pos,
            )
        raw = data[pos + 4 : value_end]
        known = _DECODERS.get(attr_type)
        if known is None:
            attributes.append(StunAttribute(attr_type, f"0x{attr_type:04X}", raw.hex(), raw))
        else:
            name, decoder = known
            try:
                value = decoder(raw, key)
            except _Malformed as exc:
                raise ParseError(f"STUN {name}: {exc}", offset=pos) from None
            attributes.append(StunAttribute(attr_type, name, value, raw))
            if attr_type == FINGERPRINT:
                # RFC 8489 §14.7: valid only when it matches and is the last attribute.  The CRC
                # (over the whole message) only for the last one: a message of 8,000
                # FINGERPRINTs would otherwise cost 8,000 CRCs of 64 KiB.
                fingerprint_ok = value_end == end and value == _fingerprint_over(data, pos)
        pos += 4 + padded(attr_length)

    return StunMessage(
        msg_class=msg_class,
        method=method,
        method_name=METHOD_NAMES.get(method, f"0x{method:03X}"),
        transaction_id=transaction_id,
        legacy=legacy,
        attributes=attributes,
        fingerprint_ok=fingerprint_ok,
        length=length,
    )


def _find_attribute(data: bytes, wanted: int) -> tuple[int, bytes] | None:
    """Offset and value of the first attribute of type ``wanted``; ParseError on bad framing."""
    if len(data) < HEADER_LENGTH:
        raise ParseError(f"truncated STUN header: {len(data)} of 20 bytes", offset=len(data))
    end = min(len(data), HEADER_LENGTH + ((data[2] << 8) | data[3]))
    pos = HEADER_LENGTH
    while pos + 4 <= end:
        attr_type, attr_length = struct.unpack_from("!HH", data, pos)
        if pos + 4 + attr_length > end:
            raise ParseError(f"STUN attribute 0x{attr_type:04X} overruns the message", offset=pos)
        if attr_type == wanted:
            return pos, data[pos + 4 : pos + 4 + attr_length]
        pos += 4 + padded(attr_length)
    return None


def _integrity_over(data: bytes, pos: int, mac_length: int, digest: str, key: bytes) -> bytes:
    # RFC 8489 §14.5/§14.6: HMAC over the message up to the attribute, the header length
    # counting up to the end of the MESSAGE-INTEGRITY(-SHA256) attribute.
    length = pos + 4 + mac_length - HEADER_LENGTH
    signed = data[:2] + length.to_bytes(2, "big") + data[4:pos]
    return hmac.new(key, signed, digest).digest()


def verify_message_integrity(data: bytes, key: bytes) -> bool | None:
    """Check MESSAGE-INTEGRITY (HMAC-SHA1, RFC 8489 §14.5); None when the message has none."""
    found = _find_attribute(bytes(data), MESSAGE_INTEGRITY)
    if found is None:
        return None
    pos, mac = found
    if len(mac) != 20:
        return False
    return hmac.compare_digest(mac, _integrity_over(bytes(data), pos, 20, "sha1", key))


def verify_message_integrity_sha256(data: bytes, key: bytes) -> bool | None:
    """Check MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6), which may be truncated to 16..32 bytes."""
    found = _find_attribute(bytes(data), MESSAGE_INTEGRITY_SHA256)
    if found is None:
        return None
    pos, mac = found
    if not 16 <= len(mac) <= 32 or len(mac) % 4:
        return False
    expected = _integrity_over(bytes(data), pos, len(mac), "sha256", key)[: len(mac)]
    return hmac.compare_digest(mac, expected)


# --------------------------------------------------------------------------------------------
# Keys and ids


def long_term_key(username: str, realm: str, password: str, *, algorithm: str = "md5") -> bytes:
    """RFC 8489 §9.2.2: MD5 (or SHA-256) of ``username:realm:password``.

    SASLprep / OpaqueString preparation of the password is skipped (see the module docs).
    """
    text = f"{username}:{realm}:{password}".encode()
    if algorithm.lower() in ("sha-256", "sha256"):
        return hashlib.sha256(text).digest()
    return hashlib.md5(text).digest()


def short_term_key(password: str) -> bytes:
    """RFC 8489 §9.1.1: the password itself (OpaqueString preparation skipped)."""
    return password.encode("utf-8")


def new_transaction_id() -> bytes:
    """96 random bits (RFC 8489 §5)."""
    return os.urandom(12)


def _new_legacy_transaction_id() -> bytes:
    # RFC 3489 §11.1: 128 random bits.  One starting with the cookie would read as RFC 8489.
    while True:
        candidate = os.urandom(16)
        if candidate[:4] != COOKIE:
            return candidate


# --------------------------------------------------------------------------------------------
# Encoding


def _ip_bytes(ip: str) -> tuple[int, bytes]:
    address = ipaddress.ip_address(ip.strip("[]"))
    family = _FAMILY_IPV4 if address.version == 4 else _FAMILY_IPV6
    return family, address.packed


def encode_address(ip: str, port: int) -> bytes:
    """MAPPED-ADDRESS-style value (RFC 8489 §14.1)."""
    family, packed = _ip_bytes(ip)
    return bytes((0, family)) + port.to_bytes(2, "big") + packed


def _xor_key(transaction_id: bytes) -> bytes:
    if len(transaction_id) == 12:
        return COOKIE + transaction_id
    if len(transaction_id) == 16:
        return transaction_id  # legacy: what pre-RFC 5389 servers XOR with
    raise ValueError(f"transaction id of {len(transaction_id)} bytes, 12 or 16 expected")


def encode_xor_address(ip: str, port: int, transaction_id: bytes) -> bytes:
    """XOR-MAPPED-ADDRESS-style value (RFC 8489 §14.2)."""
    key = _xor_key(transaction_id)
    plain = encode_address(ip, port)
    return plain[:2] + _xor(plain[2:4], key) + _xor(plain[4:], key)


def encode_address_family(ipv6: bool) -> bytes:
    """REQUESTED-ADDRESS-FAMILY / ADDITIONAL-ADDRESS-FAMILY value (RFC 8656 §18.11-18.12)."""
    return bytes((_FAMILY_IPV6 if ipv6 else _FAMILY_IPV4, 0, 0, 0))


def encode_change_request(change_ip: bool, change_port: bool) -> bytes:
    """CHANGE-REQUEST value (RFC 5780 §7.2)."""
    return bytes((0, 0, 0, (0x04 if change_ip else 0) | (0x02 if change_port else 0)))


def _attribute(attr_type: int, value: bytes) -> bytes:
    if not 0 <= attr_type <= 0xFFFF or len(value) > 0xFFFF:
        raise ValueError(f"attribute 0x{attr_type:X} of {len(value)} bytes cannot be encoded")
    return (
        struct.pack("!HH", attr_type, len(value)) + value + bytes(padded(len(value)) - len(value))
    )


def encode_message(
    msg_class: StunClass,
    method: int,
    transaction_id: bytes,
    attributes: list[tuple[int, bytes]],
    *,
    integrity_key: bytes | None = None,
    integrity_sha256: bool = False,
    fingerprint: bool = False,
) -> bytes:
    """Wire bytes of a message; a 16-byte id makes an RFC 3489 message without cookie.

    With ``integrity_key`` MESSAGE-INTEGRITY (or -SHA256) is appended, then FINGERPRINT when
    asked: RFC 8489 §14.5-14.7 order, each computed with the length field covering itself.
    """
    if len(transaction_id) == 12:
        id_field = COOKIE + transaction_id
    elif len(transaction_id) == 16:
        id_field = transaction_id
    else:
        raise ValueError(f"transaction id of {len(transaction_id)} bytes, 12 or 16 expected")
    message_type = _join_type(msg_class, method)
    body = b"".join(_attribute(attr_type, value) for attr_type, value in attributes)

    def header(extra: int) -> bytes:
        length = len(body) + extra
        if length > 0xFFFF:
            raise ValueError(f"STUN message body of {length} bytes is too long")
        return struct.pack("!HH", message_type, length) + id_field

    if integrity_key is not None:
        attr_type, digest, mac_length = (
            (MESSAGE_INTEGRITY_SHA256, "sha256", 32)
            if integrity_sha256
            else (MESSAGE_INTEGRITY, "sha1", 20)
        )
        mac = hmac.new(integrity_key, header(4 + mac_length) + body, digest).digest()
        body += _attribute(attr_type, mac)
    if fingerprint:
        crc = binascii.crc32(header(8) + body) ^ FINGERPRINT_XOR
        body += _attribute(FINGERPRINT, crc.to_bytes(4, "big"))
    return header(0) + body


def binding_request(
    transaction_id: bytes | None = None,
    *,
    change_ip: bool = False,
    change_port: bool = False,
    response_port: int | None = None,
    padding: int = 0,
    software: str | None = None,
    username: str | None = None,
    realm: str | None = None,
    nonce: str | None = None,
    integrity_key: bytes | None = None,
    fingerprint: bool = False,
    legacy: bool = False,
) -> tuple[bytes, bytes]:
    """A Binding request: ``(transaction_id, wire bytes)``.

    ``legacy`` makes an RFC 3489 request (16-byte id, no cookie) for servers that predate
    RFC 5389; a 16-byte ``transaction_id`` does the same.
    """
    if transaction_id is None:
        transaction_id = _new_legacy_transaction_id() if legacy else new_transaction_id()
    attributes: list[tuple[int, bytes]] = []
    if change_ip or change_port:
        attributes.append((CHANGE_REQUEST, encode_change_request(change_ip, change_port)))
    if response_port is not None:
        attributes.append((RESPONSE_PORT, response_port.to_bytes(2, "big") + b"\0\0"))
    if padding:
        attributes.append((PADDING, bytes(padding)))
    if software is not None:
        attributes.append((SOFTWARE, software.encode("utf-8")))
    if username is not None:
        attributes.append((USERNAME, username.encode("utf-8")))
    if realm is not None:
        attributes.append((REALM, realm.encode("utf-8")))
    if nonce is not None:
        attributes.append((NONCE, nonce.encode("utf-8")))
    wire = encode_message(
        StunClass.REQUEST,
        0x001,
        transaction_id,
        attributes,
        integrity_key=integrity_key,
        fingerprint=fingerprint,
    )
    return transaction_id, wire


def binding_response(
    request: StunMessage,
    mapped: tuple[str, int],
    *,
    response_origin: tuple[str, int] | None = None,
    other_address: tuple[str, int] | None = None,
    software: str | None = None,
    fingerprint: bool = True,
) -> bytes:
    """A success response to ``request`` as a server would send it.

    RFC 8489 §12: an RFC 3489 client gets MAPPED-ADDRESS; RFC 5780 §7.3/7.4 attributes are
    then sent under their RFC 3489 names (SOURCE-ADDRESS, CHANGED-ADDRESS).
    """
    tid = request.transaction_id
    attributes: list[tuple[int, bytes]] = []
    if request.legacy:
        attributes.append((MAPPED_ADDRESS, encode_address(*mapped)))
        origin_type, other_type = SOURCE_ADDRESS, CHANGED_ADDRESS
    else:
        attributes.append((XOR_MAPPED_ADDRESS, encode_xor_address(*mapped, tid)))
        origin_type, other_type = RESPONSE_ORIGIN, OTHER_ADDRESS
    if response_origin is not None:
        attributes.append((origin_type, encode_address(*response_origin)))
    if other_address is not None:
        attributes.append((other_type, encode_address(*other_address)))
    if software is not None:
        attributes.append((SOFTWARE, software.encode("utf-8")))
    return encode_message(
        StunClass.SUCCESS_RESPONSE,
        request.method,
        tid,
        attributes,
        fingerprint=fingerprint and not request.legacy,
    )
