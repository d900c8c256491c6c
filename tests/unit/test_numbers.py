"""Every number read from the wire or a file is ASCII digits or a ParseError (issue 8):
``str.isdigit()`` accepts superscripts that ``int()`` refuses, and ``int()`` accepts every
Unicode decimal digit.  No parser may raise anything else, nor take such a "number"."""

from __future__ import annotations

import pytest

from siptool.errors import ParseError
from siptool.numbers import decimal_or_none, is_decimal, parse_decimal
from siptool.sip.message import parse_cseq, parse_message
from siptool.sip.nameaddr import parse_via
from siptool.sip.sdp import parse_sdp
from siptool.sip.sdp_offer import read_answer
from siptool.sip.uri import parse_uri

# Superscript two (isdigit, not int), Arabic-Indic three and fullwidth one (int() takes both).
NOT_ASCII = ["\u00b2", "\u0663", "\uff11"]


@pytest.mark.parametrize("digit", NOT_ASCII)
def test_numbers_refuse_non_ascii_digits(digit: str) -> None:
    assert not is_decimal(f"1{digit}")
    assert decimal_or_none(digit) is None
    with pytest.raises(ParseError, match="bad port"):
        parse_decimal(digit, "port")


def test_numbers_take_ascii_digits_within_the_bound() -> None:
    assert parse_decimal("0065", "port", max_digits=5) == 65
    assert not is_decimal("123456", 5)
    assert not is_decimal("")


@pytest.mark.parametrize("digit", NOT_ASCII)
def test_sip_numbers_with_non_ascii_digits_are_parse_errors(digit: str) -> None:
    with pytest.raises(ParseError):
        parse_cseq(f"{digit} INVITE")
    with pytest.raises(ParseError):
        parse_uri(f"sip:alice@example.com:506{digit}")
    with pytest.raises(ParseError):
        parse_via(f"SIP/2.0/UDP 192.0.2.1:50{digit}0;branch=z9hG4bK1")
    with pytest.raises(ParseError):
        parse_via(f"SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1;rport={digit}")
    with pytest.raises(ParseError):
        parse_via(f"SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1;ttl={digit}")
    base = (
        "OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
        "From: <sip:b@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: x\r\n"
        "CSeq: 1 OPTIONS\r\n"
    )
    with pytest.raises(ParseError):
        parse_message(f"{base}Content-Length: {digit}\r\n\r\n".encode())
    with pytest.raises(ParseError):
        parse_message(f"SIP/2.0 2{digit}0 OK\r\n\r\n".encode())
    msg = parse_message(f"{base}Max-Forwards: 7{digit}\r\n\r\n".encode())
    with pytest.raises(ParseError):
        _ = msg.max_forwards


@pytest.mark.parametrize("digit", NOT_ASCII)
def test_sdp_numbers_with_non_ascii_digits_are_not_numbers(digit: str) -> None:
    text = (
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        f"m=audio 4000 RTP/AVP 0 {digit}\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:{digit} X/8000\r\n"
        f"a=ptime:2{digit}\r\n"
    )
    media = parse_sdp(text).media[0]
    assert media.port == 4000
    summary = read_answer(parse_sdp(text), [])
    # Only the ASCII payload type is a payload type.
    assert set(summary.payload_types.values()) == {0}
    with pytest.raises(ParseError):
        parse_sdp(text.replace("m=audio 4000", f"m=audio 40{digit}0"))


def test_signed32_is_rfc_1982_serial_distance() -> None:
    from siptool.numbers import signed32

    assert signed32(5 - 3) == 2 and signed32(3 - 5) == -2
    assert signed32(0 - 0xFFFFFFFF) == 1  # across the wrap, forward
    assert signed32(0xFFFFFFFF - 0) == -1
    assert signed32(1 << 31) == -(1 << 31) and signed32((1 << 31) - 1) == (1 << 31) - 1
