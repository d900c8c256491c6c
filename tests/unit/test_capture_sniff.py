"""Input detection, and raw STUN input."""

from __future__ import annotations

import struct

import pytest

from siptool.capture import Problem, RawMessage, detect_format, iter_input
from siptool.errors import ParseError
from tests.support.captures import (
    STUN_BINDING_REQUEST,
    STUN_BINDING_SUCCESS,
)
from tests.support.paths import CAPTURES

PCAP = (CAPTURES / "sip-call-sipp-uac-uas.pcap").read_bytes()
PCAPNG = (CAPTURES / "sip-register-digest-auth.pcapng").read_bytes()
SIP = b"OPTIONS sip:bob@example.com SIP/2.0\r\nCall-ID: s@x\r\nContent-Length: 0\r\n\r\n"


def pcap_magic(magic: int, order: str) -> bytes:
    return struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, 1)


@pytest.mark.parametrize(
    "header",
    [
        pcap_magic(0xA1B2C3D4, "<"),
        pcap_magic(0xA1B2C3D4, ">"),
        pcap_magic(0xA1B23C4D, "<"),
        pcap_magic(0xA1B23C4D, ">"),
        pcap_magic(0xA1B2CD34, "<"),
    ],
    ids=["us-le", "us-be", "ns-le", "ns-be", "modified"],
)
def test_every_pcap_magic_is_pcap(header: bytes) -> None:
    assert detect_format(header) == "pcap"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PCAP, "pcap"),
        (PCAPNG, "pcapng"),
        (STUN_BINDING_REQUEST, "stun"),
        (STUN_BINDING_REQUEST + STUN_BINDING_SUCCESS, "stun"),
        (STUN_BINDING_SUCCESS[:25], "stun"),  # cut, still STUN: the splitter reports the cut
        (bytes.fromhex("0001000800000000000000000000000000000000") + b"\0" * 8, "stun"),  # RFC 3489
        (SIP, "sip"),
        (b"\r\n\n   \n" + SIP, "sip"),
        (SIP.replace(b"\r\n", b"\n"), "sip"),
        (b"\xef\xbb\xbf" + SIP, "sip"),
        (b"SIP/2.0 200 OK\r\n\r\n", "sip"),
        (b"log line one\nanother line\n" + SIP, "sip"),
        (STUN_BINDING_REQUEST.hex().encode(), "hex"),
        (b"00000000: 4f50 5449 4f4e 5320  OPTIONS \n", "hex"),
        (b"0000  00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f   ................\n", "hex"),
    ],
)
def test_detect_format(data: bytes, expected: str) -> None:
    assert detect_format(data) == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "unrecognised input: it is empty"),
        (b" \r\n\t", "unrecognised input: only whitespace"),
        (
            b"\x1f\x8b\x08\x00" + b"\0" * 30,
            "unrecognised input: 34 bytes starting 0x1f8b080000000000"
            " (not SIP text, raw STUN, a hex dump, pcap or pcapng)",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            "unrecognised input: text starting 'GET / HTTP/1.1'"
            " (not SIP text, raw STUN, a hex dump, pcap or pcapng)",
        ),
    ],
)
def test_unrecognised_input_raises_parse_error(data: bytes, message: str) -> None:
    with pytest.raises(ParseError) as caught:
        detect_format(data)
    assert str(caught.value) == message


def test_unknown_input_format_is_a_parse_error() -> None:
    with pytest.raises(ParseError):
        iter_input(SIP, input_format="json")


def test_raw_stun_sequence_is_split_by_length() -> None:
    items = list(iter_input(STUN_BINDING_REQUEST + STUN_BINDING_SUCCESS + b"\n"))
    assert items == [
        RawMessage("stun", STUN_BINDING_REQUEST, None, None, None, None, None, 0),
        RawMessage("stun", STUN_BINDING_SUCCESS, None, None, None, None, None, 20),
    ]


def test_raw_stun_cut_short_is_a_fatal_problem_after_the_whole_messages() -> None:
    data = STUN_BINDING_REQUEST + STUN_BINDING_SUCCESS[:-5]
    items = list(iter_input(data))
    assert isinstance(items[0], RawMessage)
    assert items[1] == Problem("byte 20", "truncated STUN message: 27 of 32 bytes", fatal=True)


def test_raw_stun_followed_by_garbage() -> None:
    items = list(iter_input(STUN_BINDING_REQUEST + b"\xff" * 24, input_format="stun"))
    assert isinstance(items[0], RawMessage)
    assert isinstance(items[1], Problem) and items[1].fatal
    assert items[1].where == "byte 20"


def test_forced_formats_override_detection() -> None:
    assert list(iter_input(b"", input_format="sip")) == []
    problems = list(iter_input(SIP, input_format="pcap"))
    assert len(problems) == 1 and isinstance(problems[0], Problem) and problems[0].fatal
