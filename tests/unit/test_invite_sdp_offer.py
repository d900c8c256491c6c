"""The SDP offer of invite-test (RFC 3264) and the reading of answers."""

from __future__ import annotations

import pytest

from siptool.commands.invite_media import no_rtp_reason, private_address_warnings
from siptool.sip.sdp import parse_sdp
from siptool.sip.sdp_offer import build_offer, parse_codec_list, read_answer

DEFAULT = parse_codec_list("PCMU,PCMA,telephone-event")


def test_codec_list_maps_to_payload_types_in_order() -> None:
    assert [(c.name, c.payload_type) for c in DEFAULT] == [
        ("PCMU", 0),
        ("PCMA", 8),
        ("telephone-event", 101),
    ]
    assert [c.name for c in parse_codec_list(" pcma , PCMU,pcma")] == ["PCMA", "PCMU"]


@pytest.mark.parametrize("text", ["", "opus", "telephone-event"])
def test_bad_codec_lists_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_codec_list(text)


def test_offer_round_trips_through_the_parser() -> None:
    offer = build_offer("192.0.2.10", 40000, DEFAULT, session_id="42")
    text = offer.to_text()
    assert "m=audio 40000 RTP/AVP 0 8 101\r\n" in text
    assert "c=IN IP4 192.0.2.10\r\n" in text
    assert "a=fmtp:101 0-16\r\n" in text
    parsed = parse_sdp(offer.to_bytes())
    audio = parsed.media[0]
    assert audio.codecs == ["PCMU/8000", "PCMA/8000", "telephone-event/8000"]
    assert audio.connection_address == "192.0.2.10" and audio.port == 40000
    assert audio.ptime == 20 and audio.direction == "sendrecv"
    assert parsed.origin is not None and parsed.origin.session_id == "42"


def test_ipv6_offer_uses_ip6() -> None:
    text = build_offer("::1", 40002, DEFAULT).to_text()
    assert "c=IN IP6 ::1\r\n" in text


def answer(m: str, c: str = "c=IN IP4 203.0.113.5", extra: str = "") -> bytes:
    return f"v=0\r\no=- 1 1 IN IP4 203.0.113.5\r\ns=-\r\n{c}\r\nt=0 0\r\n{m}\r\n{extra}".encode()


def test_answer_summary_reports_codecs_and_media_address() -> None:
    s = read_answer(
        parse_sdp(
            answer("m=audio 30000 RTP/AVP 8 101", extra="a=rtpmap:101 telephone-event/8000\r\n")
        ),
        DEFAULT,
    )
    assert s.codecs == ["PCMA/8000", "telephone-event/8000"]
    assert s.media_address == "203.0.113.5:30000"
    assert s.payload_types["PCMA"] == 8
    assert s.warnings == []


def test_no_common_codec_is_a_codec_mismatch() -> None:
    s = read_answer(parse_sdp(answer("m=audio 30000 RTP/AVP 18")), DEFAULT)
    assert any("codec mismatch" in w and "G729/8000" in w for w in s.warnings)


def test_formats_never_offered_are_reported() -> None:
    s = read_answer(parse_sdp(answer("m=audio 30000 RTP/AVP 0 9")), DEFAULT)
    assert any("never offered: G722/8000" in w for w in s.warnings)


def test_rejected_stream_and_hold_address() -> None:
    assert read_answer(parse_sdp(answer("m=audio 0 RTP/AVP 0")), DEFAULT).rejected
    held = read_answer(parse_sdp(answer("m=audio 3000 RTP/AVP 0", c="c=IN IP4 0.0.0.0")), DEFAULT)
    assert any("hold" in w for w in held.warnings)


def test_private_answer_behind_a_public_peer_is_warned_about() -> None:
    warnings = private_address_warnings("203.0.113.9", "192.168.1.20", "10.1.2.3")
    assert len(warnings) == 2
    assert "Contact" in warnings[0] and "192.168.1.20" in warnings[0]
    assert "c=" in warnings[1] and "10.1.2.3" in warnings[1]
    # A private or loopback peer: the same addresses are normal.
    assert private_address_warnings("192.168.1.1", "192.168.1.20", "10.1.2.3") == []
    assert private_address_warnings("127.0.0.1", "192.168.1.20", None) == []
    assert private_address_warnings("203.0.113.9", "198.51.100.1", "203.0.113.9") == []


@pytest.mark.parametrize(
    ("c", "m", "extra", "reason"),
    [
        ("c=IN IP4 203.0.113.5", "m=audio 3000 RTP/AVP 0", "", None),
        ("c=IN IP4 203.0.113.5", "m=audio 3000 RTP/AVP 0", "a=recvonly\r\n", None),
        ("c=IN IP4 0.0.0.0", "m=audio 3000 RTP/AVP 0", "", "on hold (c=0.0.0.0)"),
        ("c=IN IP6 ::", "m=audio 3000 RTP/AVP 0", "", "on hold (c=::)"),
        ("c=IN IP4 media.example.com", "m=audio 3000 RTP/AVP 0", "", "not an IP address"),
        ("c=IN IP4 203.0.113.5", "m=audio 3000 RTP/AVP 0", "a=sendonly\r\n", "sendonly"),
        ("c=IN IP4 203.0.113.5", "m=audio 3000 RTP/AVP 0", "a=inactive\r\n", "inactive"),
        ("c=IN IP4 203.0.113.5", "m=audio 0 RTP/AVP 0", "", "no usable media address"),
    ],
)
def test_where_the_test_rtp_may_go(c: str, m: str, extra: str, reason: str | None) -> None:
    """RFC 3264 §6.1, §8.4: no RTP toward a held, sendonly or inactive answer, nor to a name
    that would be looked up for every packet."""
    summary = read_answer(parse_sdp(answer(m, c=c, extra=extra)), DEFAULT)
    why = no_rtp_reason(summary)
    if reason is None:
        assert why is None
    else:
        assert why is not None and reason in why
