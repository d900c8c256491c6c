"""RFC 3261 lint: silent on real traffic, loud on values the decoder cannot parse."""

from __future__ import annotations

from pathlib import Path

import pytest

from siptool.capture import RawMessage, iter_input
from siptool.sip.lint import lint_message
from siptool.sip.message import parse_message
from tests.support.paths import FIXTURES, ROOT

# The call from behind a NAT is recorded on the public side: its private Contact and c= are
# what lint is for (test_the_nat_example_is_flagged_for_its_private_addresses).
NAT_EXAMPLE = ROOT / "examples" / "call-one-way-nat.pcap"
REAL = sorted(
    [*(FIXTURES / "captures").iterdir(), *(FIXTURES / "text").iterdir()]
    + [
        p
        for p in (ROOT / "examples").iterdir()
        if p.suffix in (".pcap", ".pcapng", ".txt") and p != NAT_EXAMPLE
    ]
)

GOOD = (
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:alice@example.com>;tag=a1\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: lint-1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:alice@192.0.2.1>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 10\r\n"
    b"\r\n"
    b"v=0\r\ns=-\r\n"
)


def test_the_nat_example_is_flagged_for_its_private_addresses() -> None:
    codes = set()
    for item in iter_input(NAT_EXAMPLE.read_bytes()):
        if isinstance(item, RawMessage) and item.protocol == "sip":
            message = parse_message(item.data)
            codes |= {w.code for w in lint_message(message, src=item.src, dst=item.dst)}
    assert codes == {"private-contact", "private-sdp"}


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name)
def test_real_sipp_and_kamailio_traffic_gives_no_findings(path: Path) -> None:
    for item in iter_input(path.read_bytes()):
        if isinstance(item, RawMessage) and item.protocol == "sip":
            message = parse_message(item.data)
            assert lint_message(message, src=item.src, dst=item.dst) == [], item.frame


def test_a_clean_message_gives_no_findings() -> None:
    assert lint_message(parse_message(GOOD)) == []


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        (b"INVITE sip:bob@example.com", b"INVITE sip:bob@[2001:db8::1", "bad-request-uri"),
        (b"From: <sip:alice@example.com>", b"From: <sip:alice@example.com", "bad-from"),
        (b"To: <sip:bob@example.com>", b'To: "Bob <sip:bob@example.com>', "bad-to"),
        (b"Contact: <sip:alice@192.0.2.1>", b"Contact: <sip:alice@192.0.2.1:99999>", "bad-contact"),
        (b"v=0\r\ns=-\r\n", b"v=X\r\ns=-\r\n", "bad-sdp"),
    ],
)
def test_a_value_that_does_not_parse_is_an_error_finding(old: bytes, new: bytes, code: str) -> None:
    findings = lint_message(parse_message(GOOD.replace(old, new)))
    assert [(f.code, f.severity) for f in findings] == [(code, "error")]
