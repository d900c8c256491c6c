"""SDP (RFC 8866) with RTP payload views (RFC 3551) and ICE candidates (RFC 8839)."""

from __future__ import annotations

import json

import pytest

from siptool.errors import ParseError
from siptool.sip.sdp import Connection, MediaDescription, RtpMap, SessionDescription, parse_sdp

# RFC 8866 §5 example
RFC8866_EXAMPLE = (
    "v=0\r\n"
    "o=jdoe 3724394400 3724394405 IN IP4 198.51.100.1\r\n"
    "s=Call to John Smith\r\n"
    "i=SDP Offer #1\r\n"
    "u=http://www.jdoe.example.com/home.html\r\n"
    "e=Jane Doe <jane@jdoe.example.com>\r\n"
    "p=+1 617 555-6011\r\n"
    "c=IN IP4 198.51.100.1\r\n"
    "t=0 0\r\n"
    "m=audio 49170 RTP/AVP 0\r\n"
    "m=audio 49180 RTP/AVP 0\r\n"
    "m=video 51372 RTP/AVP 99\r\n"
    "c=IN IP6 2001:db8::2\r\n"
    "a=rtpmap:99 h263-1998/90000\r\n"
)

WEBRTC_OFFER = (
    "v=0\n"
    "o=- 4611731400430051336 2 IN IP4 127.0.0.1\n"
    "s=-\n"
    "t=0 0\n"
    "a=group:BUNDLE 0\n"
    "a=sendonly\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8 13 101 126\n"
    "c=IN IP4 0.0.0.0\n"
    "b=AS:64\n"
    "a=candidate:842163049 1 udp 1677729535 203.0.113.7 61665 typ srflx"
    " raddr 10.0.0.5 rport 61665 generation 0 network-cost 999\n"
    "a=candidate:1 1 UDP 2130706431 10.0.0.5 61665 typ host\n"
    "a=ice-ufrag:F7gI\n"
    "a=rtpmap:111 opus/48000/2\n"
    "a=fmtp:111 minptime=10;useinbandfec=1\n"
    "a=rtpmap:101 telephone-event/8000\n"
    "a=fmtp:101 0-15\n"
    "a=ptime:20\n"
    "a=recvonly\n"
    "m=video 0 RTP/AVP 31\n"
)


def test_rfc8866_example_session_fields() -> None:
    sdp = parse_sdp(RFC8866_EXAMPLE.encode())
    assert sdp.version == 0
    assert sdp.origin is not None and sdp.origin.session_id == "3724394400"
    assert sdp.origin.address == "198.51.100.1" and sdp.origin.addrtype == "IP4"
    assert sdp.session_name == "Call to John Smith" and sdp.information == "SDP Offer #1"
    assert sdp.connection == Connection("IN", "IP4", "198.51.100.1")
    assert [(t.start, t.stop) for t in sdp.times] == [(0, 0)]
    assert [k for k, _ in sdp.other_lines] == ["u", "e", "p"]
    assert [(m.media, m.port, m.proto, m.formats) for m in sdp.media] == [
        ("audio", 49170, "RTP/AVP", ["0"]),
        ("audio", 49180, "RTP/AVP", ["0"]),
        ("video", 51372, "RTP/AVP", ["99"]),
    ]


def test_connection_address_falls_back_to_session_level() -> None:
    sdp = parse_sdp(RFC8866_EXAMPLE)
    addresses = [m.connection_address for m in sdp.media]
    assert addresses == ["198.51.100.1", "198.51.100.1", "2001:db8::2"]
    assert sdp.media[0].connection is None and sdp.media[2].connection is not None


def test_codecs_use_rtpmap_then_static_payload_types() -> None:
    sdp = parse_sdp(WEBRTC_OFFER)
    audio = sdp.media[0]
    assert audio.codecs == [
        "opus/48000/2",
        "PCMU/8000",
        "PCMA/8000",
        "CN/8000",
        "telephone-event/8000",
        "126",
    ]
    assert audio.rtpmap["111"] == RtpMap(111, "opus", 48000, 2)
    assert audio.fmtp == {"111": "minptime=10;useinbandfec=1", "101": "0-15"}
    assert audio.ptime == 20
    assert [(b.bwtype, b.bandwidth) for b in audio.bandwidths] == [("AS", 64)]
    assert sdp.media[1].codecs == ["H261/90000"]


def test_direction_media_level_then_session_level_then_sendrecv() -> None:
    sdp = parse_sdp(WEBRTC_OFFER)
    assert sdp.direction == "sendonly"
    assert [m.direction for m in sdp.media] == ["recvonly", "sendonly"]
    assert parse_sdp("v=0\r\nm=audio 1 RTP/AVP 0\r\n").media[0].direction == "sendrecv"


def test_ice_candidates() -> None:
    first, second = parse_sdp(WEBRTC_OFFER).media[0].candidates
    assert (first.foundation, first.component, first.transport, first.priority) == (
        "842163049",
        1,
        "udp",
        1677729535,
    )
    assert (first.address, first.port, first.type, first.raddr, first.rport) == (
        "203.0.113.7",
        61665,
        "srflx",
        "10.0.0.5",
        61665,
    )
    assert first.extensions == {"generation": "0", "network-cost": "999"}
    assert (second.type, second.raddr, second.rport) == ("host", None, None)


def test_multicast_connection_ttl_and_count() -> None:
    sdp = parse_sdp(
        "v=0\r\nc=IN IP4 233.252.0.1/127/3\r\nm=audio 49170/2 RTP/AVP 0\r\nc=IN IP6 ff15::101/3\r\n"
    )
    assert sdp.connection == Connection("IN", "IP4", "233.252.0.1", 127, 3)
    assert sdp.media[0].connection == Connection("IN", "IP6", "ff15::101", None, 3)
    assert sdp.media[0].port_count == 2


def test_lf_and_crlf_give_the_same_description() -> None:
    assert parse_sdp(RFC8866_EXAMPLE.replace("\r\n", "\n")) == parse_sdp(RFC8866_EXAMPLE)


def test_unknown_line_types_and_attributes_are_kept_in_order() -> None:
    sdp = parse_sdp(
        "v=0\r\nx=unknown\r\nz=2882844526 -1h\r\na=tool:foo\r\na=flag\r\n"
        "m=audio 1 RTP/AVP 0\r\ny=media-level\r\na=rtcp-mux\r\n"
    )
    assert sdp.other_lines == [("x", "unknown"), ("z", "2882844526 -1h")]
    assert sdp.attributes == [("tool", "foo"), ("flag", None)]
    assert sdp.media[0].other_lines == [("y", "media-level")]
    assert sdp.media[0].has_attribute("rtcp-mux") and sdp.media[0].attribute("rtcp-mux") is None


def test_rtpmap_without_clock_rate_is_accepted_rfc4475() -> None:
    (media,) = parse_sdp("v=0\r\nm=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n").media
    assert media.rtpmap["31"] == RtpMap(31, "LPC", None) and media.codecs == ["LPC"]


def test_uninterpretable_attribute_values_become_problems_not_errors() -> None:
    text = (
        "v=0\r\nm=audio 1 RTP/AVP 0\r\n"
        "a=rtpmap:abc PCMU/8000\r\n"
        "a=rtpmap:0 PCMU/fast\r\n"
        "a=candidate:1 1 udp\r\n"
        "a=ptime:twenty\r\n"
        "a=fmtp:\r\n"
        "\r\n"
        "a=sendrecv\r\n"
    )
    sdp = parse_sdp(text)
    media = sdp.media[0]
    assert (
        media.rtpmap == {} and media.candidates == [] and media.ptime is None and media.fmtp == {}
    )
    assert (
        len(sdp.problems) == 6 and "rtpmap" in sdp.problems[0] and "empty line" in sdp.problems[5]
    )
    assert media.codecs == ["PCMU/8000"] and len(media.attributes) == 6


def test_trailing_empty_line_is_not_a_problem() -> None:
    assert parse_sdp("v=0\r\ns=-\r\n\r\n").problems == []


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("", "without v=", 0),
        ("\r\n\r\n", "without v=", 0),
        ("s=-\r\nv=0\r\n", "start with v=", 0),
        ("v=zero\r\n", "bad v=", 0),
        ("v=0\r\nv=0\r\n", "second v=", 1),
        ("v=0\r\nm =video 3227 RTP/AVP 31\r\n", "not of the form", 1),  # RFC 4475 §3.1.1.8
        ("v=0\r\nhello\r\n", "not of the form", 1),
        ("v=0\r\n1=x\r\n", "not of the form", 1),
        ("v=0\r\nm=audio 70000 RTP/AVP 0\r\n", "bad m= port", 1),
        ("v=0\r\nm=audio -1 RTP/AVP 0\r\n", "bad m= port", 1),
        ("v=0\r\nm=audio 1/x RTP/AVP 0\r\n", "port count", 1),
        ("v=0\r\nm=audio 1\r\n", "bad m= line", 1),
        ("v=0\r\no=a b c\r\n", "bad o=", 1),
        ("v=0\r\nc=IN IP4\r\n", "bad c=", 1),
        ("v=0\r\nc=IN IP4 233.252.0.1/x\r\n", "bad c= address", 1),
        ("v=0\r\nc=IN IP6 ff15::1/1/2\r\n", "bad c= address", 1),
        ("v=0\r\nb=AS\r\n", "bad b=", 1),
        ("v=0\r\nt=0\r\n", "bad t=", 1),
    ],
)
def test_structural_errors_raise_with_the_line_offset(text: str, message: str, line: int) -> None:
    with pytest.raises(ParseError, match=message) as info:
        parse_sdp(text)
    lines = text.split("\n")
    assert info.value.offset == sum(len(x) + 1 for x in lines[:line])


def test_error_offsets_are_bytes_for_bytes_input() -> None:
    data = "v=0\r\ns=Grüße\r\nbad\r\n".encode()
    with pytest.raises(ParseError) as info:
        parse_sdp(data)
    assert info.value.offset == data.index(b"bad")


def test_non_utf8_sdp_parses_and_to_dict_is_json_safe() -> None:
    sdp = parse_sdp(b"v=0\r\ns=\xff\xfe\r\nm=audio 1 RTP/AVP 0\r\na=x:\xe9\r\n")
    json.dumps(sdp.to_dict(), ensure_ascii=False).encode("utf-8")


def test_to_dict_media_keys() -> None:
    d = parse_sdp(WEBRTC_OFFER).to_dict()
    media = d["media"][0]
    assert {
        "media",
        "port",
        "proto",
        "formats",
        "connection_address",
        "direction",
        "codecs",
        "rtpmap",
        "fmtp",
        "candidates",
    } <= set(media)
    assert media["connection_address"] == "0.0.0.0" and media["direction"] == "recvonly"
    assert media["rtpmap"]["111"] == {
        "payload_type": 111,
        "encoding": "opus",
        "clock_rate": 48000,
        "channels": 2,
    }
    assert media["candidates"][0]["raddr"] == "10.0.0.5"
    assert d["origin"]["username"] == "-" and d["connection"] is None
    json.dumps(d)


def test_to_text_writes_a_description_that_parses_back_the_same() -> None:
    for text in (RFC8866_EXAMPLE, WEBRTC_OFFER):
        sdp = parse_sdp(text)
        assert parse_sdp(sdp.to_text()) == sdp


def test_description_built_in_code() -> None:
    sdp = SessionDescription(
        session_name="siptool",
        connection=Connection("IN", "IP4", "192.0.2.10"),
        media=[
            MediaDescription(
                "audio",
                40000,
                None,
                "RTP/AVP",
                ["0", "101"],
                attributes=[("rtpmap", "101 telephone-event/8000"), ("sendrecv", None)],
            )
        ],
    )
    text = sdp.to_text()
    assert text == (
        "v=0\r\ns=siptool\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
        "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    )
    back = parse_sdp(sdp.to_bytes())
    assert back.media[0].codecs == ["PCMU/8000", "telephone-event/8000"]
    assert back.media[0].connection_address == "192.0.2.10"
