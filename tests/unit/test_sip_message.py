"""SIP message parsing and serialization (RFC 3261 §7, §18.3, §20; RFC 4475 torture tests)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from siptool.errors import ParseError
from siptool.sip.headers import (
    COMPACT_FORMS,
    canonical_name,
    compact_form,
    header_key,
    split_comma_list,
)
from siptool.sip.message import CSeq, Header, SipMessage, parse_cseq, parse_message
from siptool.sip.uri import unescape

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "captures"

SDP_150 = (
    b"v=0\r\n"
    b"o=mhandley 29739 7272939 IN IP4 192.0.2.3\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.4\r\n"
    b"t=0 0\r\n"
    b"m=audio 49217 RTP/AVP 0 12\r\n"
    b"m=video 3227 RTP/AVP 31\r\n"
    b"a=rtpmap:31 LPC\r\n"
)

# RFC 4475 §3.1.1.1 "A Short Tortuous INVITE" (wsinv)
WSINV = (
    b"INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\r\n"
    b"TO :\r\n"
    b" sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\r\n"
    b'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>\r\n'
    b"  ;\r\n"
    b"  tag = 98asjd8\r\n"
    b"MaX-fOrWaRdS: 0068\r\n"
    b"Call-ID: wsinv.ndaksdj@192.0.2.1\r\n"
    b"Content-Length   : 150\r\n"
    b"cseq: 0009\r\n"
    b"  INVITE\r\n"
    b"Via  : SIP  /   2.0\r\n"
    b" /UDP\r\n"
    b"    192.0.2.2;rport;branch=390skdjuw\r\n"
    b"s :\r\n"
    b"NewFangledHeader:   newfangled value\r\n"
    b" continued newfangled value\r\n"
    b"UnknownHeaderWithUnusualValue: ;;,,;;,;\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Route:\r\n"
    b" <sip:services.example.com;lr;unknownwith=value;unknown-no-value>\r\n"
    b"v:  SIP  / 2.0  / TCP     spindle.example.com   ;\r\n"
    b"  branch  =   z9hG4bK9ikj8  ,\r\n"
    b" SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n"
    b" z9hG4bK30239\r\n"
    b'm:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =\r\n'
    b"      newvalue ;\r\n"
    b"  secondparam ; q = 0.33\r\n"
    b"\r\n" + SDP_150
)

# RFC 4475 §3.1.1.3 "Valid Use of the % Escaping Mechanism" (esc01)
ESC01 = (
    b"INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0\r\n"
    b"To: sip:%75se%72@example.com\r\n"
    b"From: <sip:I%20have%20spaces@example.net>;tag=938\r\n"
    b"Max-Forwards: 87\r\n"
    b"i: esc01.239409asdfakjkn23onasd0-3234\r\n"
    b"CSeq: 234234 INVITE\r\n"
    b"Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw\r\n"
    b"C: application/sdp\r\n"
    b"Contact:\r\n"
    b"  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>\r\n"
    b"Content-Length: 150\r\n"
    b"\r\n" + SDP_150
)

# RFC 4475 §3.1.1.5 "Use of % When It Is Not an Escape" (esc02)
ESC02 = (
    b"RE%47IST%45R sip:registrar.example.com SIP/2.0\r\n"
    b'To: "%Z%45" <sip:resource@example.com>\r\n'
    b'From: "%Z%45" <sip:resource@example.com>;tag=f232jadfj23\r\n'
    b"Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf\r\n"
    b"Via: SIP/2.0/TCP host.example.com;branch=z9hG4bK209%fzsnel234\r\n"
    b"CSeq: 29344 RE%47IST%45R\r\n"
    b"Max-Forwards: 70\r\n"
    b"Contact: <sip:alias1@host1.example.com>\r\n"
    b"C%6Fntact: <sip:alias2@host2.example.com>\r\n"
    b"Contact: <sip:alias3@host3.example.com>\r\n"
    b"l: 0\r\n"
    b"\r\n"
)

# RFC 4475 §3.1.1.8 "Extra Trailing Octets in a UDP Datagram" (dblreq)
DBLREQ = (
    b"REGISTER sip:example.com SIP/2.0\r\n"
    b"To: sip:j.user@example.com\r\n"
    b"From: sip:j.user@example.com;tag=43251j3j324\r\n"
    b"Max-Forwards: 8\r\n"
    b"I: dblreq.0ha0isndaksdj99sdfafnl3lk233412\r\n"
    b"Contact: sip:j.user@host.example.com\r\n"
    b"CSeq: 8 REGISTER\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)
DBLREQ_EXTRA = (
    b"INVITE sip:joe@example.com SIP/2.0\r\n"
    b"t: sip:joe@example.com\r\n"
    b"From: sip:caller@example.net;tag=141334\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

# RFC 4475 §3.1.1.9 "Semicolon-Separated Parameters in URI User Part" (semiuri)
SEMIURI = (
    b"OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0\r\n"
    b"To: sip:j_user@example.com\r\n"
    b"From: sip:caller@example.org;tag=33242\r\n"
    b"Max-Forwards: 3\r\n"
    b"Call-ID: semiuri.0ha0isndaksdj\r\n"
    b"CSeq: 8 OPTIONS\r\n"
    b"Accept: application/sdp, application/pkcs7-mime,\r\n"
    b"        multipart/mixed, multipart/signed,\r\n"
    b"        message/sip, message/sipfrag\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw\r\n"
    b"l: 0\r\n"
    b"\r\n"
)

# RFC 4475 §3.1.1.10 "Varied and Unknown Transport Types" (transports)
TRANSPORTS = (
    b"OPTIONS sip:user@example.com SIP/2.0\r\n"
    b"To: sip:user@example.com\r\n"
    b"From: <sip:caller@example.com>;tag=323\r\n"
    b"Max-Forwards: 70\r\n"
    b"Call-ID:  transports.kijh4akdnaqjkwendsasfdj\r\n"
    b"Accept: application/sdp\r\n"
    b"CSeq: 60 OPTIONS\r\n"
    b"Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw\r\n"
    b"Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf\r\n"
    b"Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj\r\n"
    b"Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en\r\n"
    b"Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee\r\n"
    b"l: 0\r\n"
    b"\r\n"
)

# RFC 4475 §3.1.1.12 "Unusual Reason Phrase" (unreason), shortened
UNREASON = (
    "SIP/2.0 200 = 2**3 * 5**2 но сто девяносто девять - простое\r\n"
    "Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923\r\n"
    "Call-ID: unreason.1234ksdfak3j2erwedfsASdf\r\n"
    "CSeq: 35 INVITE\r\n"
    "From: sip:user@example.com;tag=11141343\r\n"
    "To: sip:user@example.edu;tag=2229\r\n"
    "Content-Length: 0\r\n"
    "\r\n"
).encode()

# RFC 4475 §3.1.1.13 "Empty Reason Phrase" (noreason)
NOREASON = (
    b"SIP/2.0 100 \r\n"
    b"Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe\r\n"
    b"Call-ID: noreason.asndj203insdf99223ndf\r\n"
    b"CSeq: 35 INVITE\r\n"
    b"From: <sip:user@example.com>;tag=39ansfi3\r\n"
    b"To: <sip:user@example.edu>;tag=902jndnke3\r\n"
    b"Content-Length: 0\r\n"
    b"Contact: <sip:user@host105.example.com>\r\n"
    b"\r\n"
)

OPTIONS = (
    b"OPTIONS sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK776;rport=5070;received=2001:db8::9\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice, the first" <sip:alice@example.com>;tag=1928301774\r\n'
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: a84b4c76e66710@pc33.example.com\r\n"
    b"CSeq: 63104 OPTIONS\r\n"
    b'Contact: "Al, B" <sip:alice@pc33.example.com;x=a,b>, <sip:alice@[2001:db8::2]:5062>\r\n'
    b"Accept: application/sdp\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


def raises_when_read(message: SipMessage, name: str, match: str) -> None:
    """A bad header fails only where it is used: reading ``name`` raises a ParseError."""
    with pytest.raises(ParseError, match=match):
        getattr(message, name)


def replace_line(message: bytes, old: bytes, new: bytes) -> bytes:
    assert old in message
    return message.replace(old, new, 1)


# -- RFC 4475 valid messages -------------------------------------------------------------------


def test_tortuous_invite_headers_are_canonical_and_folding_collapses_to_one_space() -> None:
    m = parse_message(WSINV)
    assert [h.name for h in m.headers] == [
        "To",
        "From",
        "Max-Forwards",
        "Call-ID",
        "Content-Length",
        "CSeq",
        "Via",
        "Subject",
        "NewFangledHeader",
        "UnknownHeaderWithUnusualValue",
        "Content-Type",
        "Route",
        "Via",
        "Contact",
    ]
    assert m.header("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.header("cseq") == "0009 INVITE"
    assert m.header("s") == ""
    assert m.headers[0].value == "sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n"
    assert (
        m.headers[0].raw == b"TO :\r\n sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n"
    )


def test_tortuous_invite_typed_views() -> None:
    m = parse_message(WSINV)
    assert m.method == "INVITE"
    assert m.request_uri == "sip:vivekg@chair-dnrc.example.com;unknownparam"
    assert m.cseq == CSeq(9, "INVITE")
    assert m.max_forwards == 68
    assert m.call_id == "wsinv.ndaksdj@192.0.2.1"
    assert m.from_ is not None and m.from_.display_name == 'J Rosenberg \\"'
    assert m.from_.tag == "98asjd8"
    assert m.to is not None and m.to.display_name is None and m.to.tag == "1918181833n"
    assert [(v.transport, v.host, v.branch) for v in m.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert m.vias[0].rport_requested and m.vias[0].rport is None
    (contact,) = m.contacts
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    (route,) = m.name_addrs("Route")
    assert route.uri.params == {"lr": None, "unknownwith": "value", "unknown-no-value": None}
    assert m.content_type == "application/sdp"
    assert m.sdp is not None and [md.media for md in m.sdp.media] == ["audio", "video"]
    assert m.declared_length == 150 and m.body == SDP_150
    assert not m.body_truncated and m.trailing == 0


def test_tortuous_invite_serializes_byte_identical() -> None:
    assert parse_message(WSINV).serialize() == WSINV


def test_percent_escapes_stay_as_written_and_unescape_on_request() -> None:
    m = parse_message(ESC01)
    uri = m.uri
    assert uri is not None and uri.user == "sips%3Auser%40example.com"
    assert unescape(uri.user or "") == "sips:user@example.com"
    assert m.to is not None and unescape(m.to.uri.user or "") == "user"
    assert m.from_ is not None and unescape(m.from_.uri.user or "") == "I have spaces"
    assert m.call_id == "esc01.239409asdfakjkn23onasd0-3234"  # compact "i"
    assert m.content_type == "application/sdp"  # compact "C", upper case
    (contact,) = m.contacts
    assert contact.uri.params == {"%6c%72": None, "n%61me": "v%61lue%25%34%31"}
    assert m.serialize() == ESC01


def test_percent_that_is_not_an_escape_is_kept_in_method_and_header_name() -> None:
    m = parse_message(ESC02)
    assert m.method == "RE%47IST%45R"
    assert m.cseq == CSeq(29344, "RE%47IST%45R")
    assert m.headers[7].name == "C%6Fntact"  # unknown header: wire spelling kept
    assert [str(c.uri) for c in m.contacts] == [
        "sip:alias1@host1.example.com",
        "sip:alias3@host3.example.com",
    ]
    assert m.to is not None and m.to.display_name == "%Z%45"
    assert m.vias[0].branch == "z9hG4bK209%fzsnel234"


def test_escaped_nulls_and_upper_case_compact_content_length() -> None:
    data = (
        b"REGISTER sip:example.com SIP/2.0\r\n"
        b"To: sip:null-%00-null@example.com\r\n"
        b"From: sip:null-%00-null@example.com;tag=839923423\r\n"
        b"Max-Forwards: 70\r\n"
        b"Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd\r\n"
        b"CSeq: 14398234 REGISTER\r\n"
        b"Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw\r\n"
        b"Contact: <sip:%00@host5.example.com>\r\n"
        b"Contact: <sip:%00%00@host5.example.com>\r\n"
        b"L:0\r\n"
        b"\r\n"
    )
    m = parse_message(data)
    assert m.headers[-1].name == "Content-Length" and m.declared_length == 0
    assert [unescape(c.uri.user or "") for c in m.contacts] == ["\0", "\0\0"]
    assert m.serialize() == data


def test_no_lws_between_display_name_and_angle_bracket() -> None:
    m = parse_message(
        b"OPTIONS sip:user@example.com SIP/2.0\r\n"
        b"To: sip:user@example.com\r\n"
        b"From: caller<sip:caller@example.com>;tag=323\r\n"
        b"l: 0\r\n\r\n"
    )
    assert m.from_ is not None and m.from_.display_name == "caller" and m.from_.tag == "323"


def test_many_via_spellings_all_count_as_via() -> None:
    names = [b"Via", b"v", b"V", b"ViA", b"VIA", b"via", b"V :", b"v  :", b"Via  :"]
    lines = b"".join(
        name + (b" " if name.endswith(b":") else b": ") + b"SIP/2.0/TCP sip%d.example.com\r\n" % i
        for i, name in enumerate(names)
    )
    data = b"INVITE sip:user@example.com SIP/2.0\r\n" + lines + b"l: 0\r\n\r\n"
    m = parse_message(data)
    assert [h.name for h in m.headers[:-1]] == ["Via"] * len(names)
    assert [v.host for v in m.vias] == [f"sip{i}.example.com" for i in range(len(names))]
    assert len(m.header_values("v")) == len(names)
    assert m.serialize() == data


def test_extra_octets_after_content_length_are_counted_not_parsed() -> None:
    m = parse_message(DBLREQ + DBLREQ_EXTRA)
    assert m.method == "REGISTER" and m.body == b"" and m.declared_length == 0
    assert m.trailing == len(DBLREQ_EXTRA)
    assert m.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"  # compact "I"
    assert m.serialize() == DBLREQ


def test_semicolons_in_uri_user_part_and_folded_accept_list() -> None:
    m = parse_message(SEMIURI)
    uri = m.uri
    assert uri is not None
    assert (uri.user, uri.host, uri.params) == ("user;par=u%40example.net", "example.com", {})
    assert m.header_values("Accept") == [
        "application/sdp",
        "application/pkcs7-mime",
        "multipart/mixed",
        "multipart/signed",
        "message/sip",
        "message/sipfrag",
    ]
    assert m.serialize() == SEMIURI


def test_unknown_transports_in_via_are_kept_upper_case() -> None:
    m = parse_message(TRANSPORTS)
    assert [v.transport for v in m.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert m.call_id == "transports.kijh4akdnaqjkwendsasfdj"


def test_utf8_reason_phrase_and_empty_reason_phrase() -> None:
    m = parse_message(UNREASON)
    assert m.status == 200 and m.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"
    assert m.serialize() == UNREASON
    m = parse_message(NOREASON)
    assert (m.status, m.reason, m.is_request) == (100, "", False)
    assert m.serialize() == NOREASON


def test_request_line_with_extra_spaces_is_accepted_and_round_trips() -> None:
    # RFC 4475 §3.1.2.9 (lwsstart) and §3.1.2.10 (trws): a lenient parser may accept these.
    for line in (
        b"INVITE  sip:user@example.com  SIP/2.0",
        b"OPTIONS sip:user@example.com SIP/2.0  ",
    ):
        data = line + b"\r\nTo: sip:user@example.com\r\nl: 0\r\n\r\n"
        m = parse_message(data)
        assert m.request_uri == "sip:user@example.com" and m.version == "SIP/2.0"
        assert m.serialize() == data


def test_unsupported_version_parses_for_the_linter() -> None:
    m = parse_message(b"OPTIONS sip:t.example.com SIP/7.0\r\nl: 0\r\n\r\n")
    assert m.version == "SIP/7.0"


def test_escaped_headers_in_request_uri() -> None:
    m = parse_message(b"INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0\r\n\r\n")
    assert m.uri is not None and m.uri.headers == {"Route": "%3Csip:example.com%3E"}


# -- RFC 4475 invalid messages -----------------------------------------------------------------


def test_extraneous_separators_make_via_and_contact_errors_not_message_errors() -> None:
    # RFC 4475 §3.1.2.1 (badinv01): the message parses; the properties report the errors.
    data = replace_line(DBLREQ, b"branch=z9hG4bKkdjuw23492", b";;,;,,")
    data = replace_line(
        data, b"Contact: sip:j.user@host.example.com", b'Contact: "Joe" <sip:joe@example.org>;;;;'
    )
    m = parse_message(data)
    raises_when_read(m, "vias", "Via")
    raises_when_read(m, "contacts", "Contact")
    d = m.to_dict()
    assert d["via"] is None and d["from"] is not None


def test_content_length_larger_than_datagram_marks_body_truncated() -> None:
    data = WSINV.replace(b"Content-Length   : 150", b"Content-Length   : 9999")
    m = parse_message(data)
    assert m.body_truncated and m.body == SDP_150 and m.declared_length == 9999


@pytest.mark.parametrize("value", [b"-999", b"12abc", b"", b"0x10", b"\xd9\xa3"])
def test_non_numeric_content_length_is_a_parse_error_at_its_line(value: bytes) -> None:
    data = (
        b"INVITE sip:user@example.com SIP/2.0\r\nTo: sip:x@y\r\nContent-Length: "
        + value
        + b"\r\n\r\n"
    )
    with pytest.raises(ParseError) as info:
        parse_message(data)
    assert info.value.offset == data.index(b"Content-Length")


def test_unterminated_quote_in_display_name_fails_only_that_header() -> None:
    # RFC 4475 §3.1.2.6 (quotbal)
    data = (
        b"INVITE sip:user@example.com SIP/2.0\r\n"
        b'To: "Mr. J. User <sip:j.user@example.com>\r\n'
        b"l: 0\r\n\r\n"
    )
    m = parse_message(data)
    raises_when_read(m, "to", "unterminated")
    assert m.to_dict()["to"] is None


def test_angle_brackets_around_request_uri_fail_when_the_uri_is_used() -> None:
    # RFC 4475 §3.1.2.7 (ltgtruri)
    m = parse_message(b"INVITE <sip:user@example.com> SIP/2.0\r\nl: 0\r\n\r\n")
    assert m.request_uri == "<sip:user@example.com>"
    raises_when_read(m, "uri", "Request-URI")


@pytest.mark.parametrize(
    "start_line",
    [
        b"INVITE sip:user@example.com; lr SIP/2.0",  # RFC 4475 §3.1.2.8 (lwsruri)
        b"SIP/2.0 4294967301 better not break the receiver",  # RFC 4475 §3.1.2.19 (bigcode)
        b"SIP/2.0 20 OK",
        b"SIP/2.0",
        b"HTTP/1.1 200 OK",
        b"INVITE sip:user@example.com HTTP/1.1",
        b"INV\x01TE sip:user@example.com SIP/2.0",
        b"INVITE sip:user@example.com",
    ],
)
def test_bad_start_lines_are_parse_errors(start_line: bytes) -> None:
    with pytest.raises(ParseError):
        parse_message(start_line + b"\r\nl: 0\r\n\r\n")


def test_header_line_without_colon_reports_its_offset() -> None:
    data = b"OPTIONS sip:a@b SIP/2.0\r\nTo: sip:a@b\r\nthis is not a header\r\n\r\n"
    with pytest.raises(ParseError) as info:
        parse_message(data)
    assert info.value.offset == data.index(b"this is")


def test_continuation_before_the_first_header_is_an_error() -> None:
    with pytest.raises(ParseError, match="continuation"):
        parse_message(b"OPTIONS sip:a@b SIP/2.0\r\n  folded\r\nTo: sip:a@b\r\n\r\n")


def test_bad_header_name_is_an_error() -> None:
    with pytest.raises(ParseError, match="header name"):
        parse_message(b"OPTIONS sip:a@b SIP/2.0\r\nBad Name: x\r\n\r\n")


@pytest.mark.parametrize("data", [b"", b"\r\n\r\n", b"\n"])
def test_empty_input_is_an_error(data: bytes) -> None:
    with pytest.raises(ParseError):
        parse_message(data)


# -- framing of one buffer ---------------------------------------------------------------------


def test_missing_empty_line_is_accepted_when_no_body_follows() -> None:
    for data in (
        b"OPTIONS sip:a@b SIP/2.0\r\nTo: sip:a@b\r\nContent-Length: 0\r\n",
        b"OPTIONS sip:a@b SIP/2.0\r\nTo: sip:a@b",
        b"OPTIONS sip:a@b SIP/2.0\r\n",
        b"OPTIONS sip:a@b SIP/2.0",
    ):
        m = parse_message(data)
        assert not m.header_terminated and m.body == b""
        assert m.serialize() == data


def test_missing_empty_line_with_a_positive_content_length_is_an_error() -> None:
    with pytest.raises(ParseError, match="not terminated"):
        parse_message(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 4\r\nX: abcd")


def test_without_content_length_the_body_is_the_rest_of_the_buffer() -> None:
    m = parse_message(b"MESSAGE sip:a@b SIP/2.0\r\nc: text/plain\r\n\r\nhello\r\n")
    assert m.body == b"hello\r\n" and m.declared_length is None and m.trailing == 0


def test_leading_crlf_keepalives_are_skipped() -> None:
    m = parse_message(b"\r\n\r\n" + OPTIONS)
    assert m.method == "OPTIONS" and m.serialize() == OPTIONS


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_lf_and_crlf_line_endings_round_trip(eol: bytes) -> None:
    data = WSINV.replace(b"\r\n", eol)
    m = parse_message(data)
    assert m.line_ending == eol and m.declared_length == 150
    assert m.header("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.serialize() == data


def test_mixed_line_endings_round_trip() -> None:
    data = (
        b"OPTIONS sip:a@b SIP/2.0\n"
        b"To: sip:a@b\r\n"
        b"Subject: one\n"
        b"  two\r\n"
        b"From: sip:c@d;tag=1\n"
        b"\r\n"
        b"body"
    )
    m = parse_message(data)
    assert m.header("Subject") == "one two" and m.body == b"body"
    assert m.serialize() == data


def test_non_utf8_bytes_round_trip_and_json_gets_replacement_characters() -> None:
    data = (
        b"MESSAGE sip:a@b SIP/2.0\r\n"
        b"Subject: caf\xe9 \xff\r\n"
        b'From: "J\xf6rg" <sip:j@b>;tag=9\r\n'
        b"Content-Length: 2\r\n\r\n\xff\xfe"
    )
    m = parse_message(data)
    assert m.serialize() == data
    d = m.to_dict()
    text = json.dumps(d, ensure_ascii=False)
    text.encode("utf-8")  # no lone surrogates left
    assert d["from"]["display_name"] == "J\ufffdrg"
    assert d["body"] == "\ufffd\ufffd"


def test_duplicate_content_length_uses_the_first() -> None:
    m = parse_message(b"MESSAGE sip:a@b SIP/2.0\r\nl: 2\r\nContent-Length: 4\r\n\r\nabcd")
    assert m.declared_length == 2 and m.body == b"ab" and m.trailing == 2


# -- header names and lists --------------------------------------------------------------------


@pytest.mark.parametrize("compact", sorted(COMPACT_FORMS))
def test_every_compact_form_expands_to_its_long_name(compact: str) -> None:
    data = f"OPTIONS sip:a@b SIP/2.0\r\n{compact.upper()}: 0\r\n\r\n".encode()
    m = parse_message(data)
    assert m.headers[0].name == COMPACT_FORMS[compact]
    assert m.header(compact) == "0" and m.header(COMPACT_FORMS[compact].upper()) == "0"
    assert compact_form(COMPACT_FORMS[compact]) == compact


@pytest.mark.parametrize(
    "canonical",
    [
        "CSeq",
        "Call-ID",
        "WWW-Authenticate",
        "Record-Route",
        "Max-Forwards",
        "MIME-Version",
        "RSeq",
        "RAck",
        "P-Asserted-Identity",
        "Content-Length",
        "SIP-ETag",
        "User-to-User",
    ],
)
def test_known_names_get_their_registered_spelling_in_any_case(canonical: str) -> None:
    for spelling in (canonical.lower(), canonical.upper(), canonical.swapcase()):
        assert canonical_name(spelling) == canonical
        assert header_key(spelling) == canonical.lower()


def test_unknown_names_keep_wire_spelling_but_match_case_insensitively() -> None:
    m = parse_message(b"OPTIONS sip:a@b SIP/2.0\r\nX-My-HEADER: 1\r\nx-my-header: 2\r\n\r\n")
    assert [h.name for h in m.headers] == ["X-My-HEADER", "x-my-header"]
    assert m.header("X-MY-header") == "1"
    assert m.header_values("x-my-header") == ["1", "2"]


def test_comma_lists_split_outside_quotes_and_angle_brackets_only() -> None:
    m = parse_message(OPTIONS)
    assert m.header_values("Contact") == [
        '"Al, B" <sip:alice@pc33.example.com;x=a,b>',
        "<sip:alice@[2001:db8::2]:5062>",
    ]
    assert [c.uri.host for c in m.contacts] == ["pc33.example.com", "2001:db8::2"]
    assert m.from_ is not None and m.from_.display_name == "Alice, the first"


def test_headers_whose_grammar_is_not_a_list_are_not_split() -> None:
    auth = 'Digest realm="a, b", nonce="x", qop="auth,auth-int"'
    data = (
        "SIP/2.0 401 Unauthorized\r\n"
        f"WWW-Authenticate: {auth}\r\n"
        "Date: Sat, 13 Nov 2010 23:29:00 GMT\r\n"
        "Subject: hello, world\r\n"
        "Allow: INVITE, ACK,BYE\r\n"
        "Allow: OPTIONS\r\n"
        "Supported: ,timer,,100rel,\r\n"
        "\r\n"
    ).encode()
    m = parse_message(data)
    assert m.header_values("www-authenticate") == [auth]
    assert m.header_values("Date") == ["Sat, 13 Nov 2010 23:29:00 GMT"]
    assert m.header_values("s") == ["hello, world"]
    assert m.header_values("Allow") == ["INVITE", "ACK", "BYE", "OPTIONS"]
    assert m.header_values("k") == ["timer", "100rel"]


def test_split_comma_list_keeps_escaped_quotes_inside_quoted_strings() -> None:
    assert split_comma_list('"a \\", b" <sip:x>, <sip:y;p="1,2">') == [
        '"a \\", b" <sip:x>',
        '<sip:y;p="1,2">',
    ]


def test_star_contact_is_flagged() -> None:
    m = parse_message(b"REGISTER sip:r SIP/2.0\r\nContact: *\r\nExpires: 0\r\n\r\n")
    (star,) = m.contacts
    assert star.is_star and str(star.uri) == "*" and star.display_name is None


# -- typed views -------------------------------------------------------------------------------


def test_ipv6_via_with_rport_value_and_received() -> None:
    m = parse_message(OPTIONS)
    via = m.top_via
    assert via is not None
    assert (via.host, via.port, via.rport, via.rport_requested) == ("2001:db8::1", 5060, 5070, True)
    assert via.received == "2001:db8::9" and via.sent_by == "[2001:db8::1]:5060"


def test_cseq_grammar() -> None:
    assert parse_cseq(" 36893488147419103232  REGISTER ") == CSeq(36893488147419103232, "REGISTER")
    for bad in ("", "1", "INVITE 1", "1 INVITE x", "-1 INVITE", "1 INV\u00e9TE"):
        with pytest.raises(ParseError):
            parse_cseq(bad)


def test_max_forwards_malformed_raises() -> None:
    m = parse_message(b"OPTIONS sip:a@b SIP/2.0\r\nMax-Forwards: seventy\r\n\r\n")
    raises_when_read(m, "max_forwards", "Max-Forwards")


def test_absent_headers_give_none_and_empty_lists() -> None:
    m = parse_message(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n")
    assert (m.call_id, m.cseq, m.from_, m.to, m.content_type, m.max_forwards, m.sdp) == (None,) * 7
    assert m.vias == [] and m.contacts == [] and m.top_via is None


def test_malformed_sdp_raises_from_the_property_and_is_none_in_to_dict() -> None:
    data = b"INVITE sip:a@b SIP/2.0\r\nContent-Type: application/sdp\r\n\r\nnot sdp"
    m = parse_message(data)
    raises_when_read(m, "sdp", "SDP")
    assert m.to_dict()["sdp"] is None


def test_sdp_is_only_parsed_for_application_sdp() -> None:
    m = parse_message(b"MESSAGE sip:a@b SIP/2.0\r\nContent-Type: text/plain\r\n\r\nv=0\r\n")
    assert m.sdp is None


def test_parsed_values_follow_header_changes() -> None:
    m = parse_message(OPTIONS)
    assert m.to is not None and m.to.tag is None
    m.headers[3].value = "<sip:bob@example.com>;tag=abc"
    assert m.to is not None and m.to.tag == "abc"


# -- serialization and building ----------------------------------------------------------------


def test_changed_header_is_written_from_name_and_value() -> None:
    m = parse_message(OPTIONS)
    m.set_header("Max-Forwards", "69")
    assert b"\r\nMax-Forwards: 69\r\n" in m.serialize()
    m.status, m.method = None, None
    m.status, m.reason = 200, "OK"
    assert m.serialize().startswith(b"SIP/2.0 200 OK\r\n")


def test_message_built_in_code_serializes_and_parses_back() -> None:
    m = SipMessage.request("OPTIONS", "sip:bob@example.com")
    m.add_header("v", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport")
    m.add_header("call-id", "abc@192.0.2.1")
    m.headers.append(Header("CSeq", "1 OPTIONS"))
    m.add_header("Content-Length", "0")
    data = m.serialize()
    assert data == (
        b"OPTIONS sip:bob@example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport\r\n"
        b"Call-ID: abc@192.0.2.1\r\n"
        b"CSeq: 1 OPTIONS\r\n"
        b"Content-Length: 0\r\n"
        b"\r\n"
    )
    back = parse_message(data)
    assert back.vias[0].rport_requested and back.cseq == CSeq(1, "OPTIONS")
    assert m.remove_header("Call-ID") == 1 and m.call_id is None


def test_to_dict_has_every_contract_key_with_null_for_absent_values() -> None:
    d = parse_message(NOREASON).to_dict()
    assert set(d) == {
        "kind",
        "method",
        "status",
        "reason",
        "request_uri",
        "call_id",
        "cseq",
        "from",
        "to",
        "via",
        "headers",
        "body",
        "sdp",
    }
    assert d["kind"] == "response" and d["method"] is None and d["request_uri"] is None
    assert d["cseq"] == {"seq": 35, "method": "INVITE"}
    assert d["from"] == {"uri": "sip:user@example.com", "display_name": None, "tag": "39ansfi3"}
    assert d["via"][0]["branch"] == "z9hG4bK2398ndaoe"
    assert set(d["via"][0]) >= {"transport", "host", "port", "branch", "received", "rport"}
    assert d["headers"][0] == ["Via", "SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe"]
    assert d["body"] == "" and d["sdp"] is None
    json.dumps(d)


def test_to_dict_of_invite_carries_sdp() -> None:
    d = parse_message(WSINV).to_dict()
    assert d["kind"] == "request" and d["sdp"]["media"][0]["codecs"] == ["PCMU/8000", "QCELP/8000"]


# -- real captures -----------------------------------------------------------------------------


def _payloads(path: Path) -> list[bytes]:
    """Non-empty UDP/TCP payloads of an Ethernet/IPv4 pcap or pcapng (test helper)."""
    data = path.read_bytes()
    frames: list[bytes] = []
    if data[:4] == b"\n\r\r\n":
        pos = 0
        while pos + 12 <= len(data):
            btype, blen = struct.unpack_from("<II", data, pos)
            if btype == 6:
                caplen = struct.unpack_from("<I", data, pos + 20)[0]
                frames.append(data[pos + 28 : pos + 28 + caplen])
            pos += blen
    else:
        pos = 24
        while pos + 16 <= len(data):
            caplen = struct.unpack_from("<I", data, pos + 8)[0]
            frames.append(data[pos + 16 : pos + 16 + caplen])
            pos += 16 + caplen
    out = []
    for frame in frames:
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        proto = ip[9]
        l4 = ip[ihl:]
        payload = l4[8:] if proto == 17 else l4[(l4[12] >> 4) * 4 :] if proto == 6 else b""
        if payload:
            out.append(payload)
    return out


@pytest.mark.parametrize(
    "name",
    ["sip-call-sipp-uac-uas.pcap", "sip-options-tcp.pcap", "sip-register-digest-auth.pcapng"],
)
def test_real_capture_messages_parse_and_round_trip(name: str) -> None:
    payloads = _payloads(FIXTURES / name)
    assert payloads
    for payload in payloads:
        m = parse_message(payload)
        assert m.serialize() == payload
        assert m.trailing == 0 and not m.body_truncated
        d = m.to_dict()
        assert d["call_id"] and d["cseq"] and d["from"]["tag"] and d["via"][0]["branch"]
        if m.content_type == "application/sdp":
            assert d["sdp"]["media"][0]["codecs"] == ["PCMU/8000"]


def test_sdp_error_offset_is_a_byte_offset_in_the_message() -> None:
    data = b"INVITE sip:a@b SIP/2.0\r\nContent-Type: application/sdp\r\n\r\nv=0\r\nbad line\r\n"
    with pytest.raises(ParseError) as info:
        _ = parse_message(data).sdp
    assert info.value.offset == data.index(b"bad line")


def test_header_value_errors_name_the_header_and_the_position_in_words() -> None:
    m = parse_message(b"OPTIONS sip:a@b SIP/2.0\r\nFrom: Bob <sip:bob@host:99999>\r\n\r\n")
    with pytest.raises(ParseError) as info:
        _ = m.from_
    assert info.value.offset is None
    assert str(info.value) == "From: port 99999 out of range (character 18 of the value)"


def test_equal_header_values_of_different_messages_are_parsed_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import siptool.sip.message as message_module
    from tests.support.spy import record_calls

    monkeypatch.setattr(message_module, "_SHARED", {})
    calls = record_calls(monkeypatch, message_module, "parse_name_addr", lambda v: v)
    one = (
        b"OPTIONS sip:b@h SIP/2.0\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: %d\r\n\r\n"
    )
    first, second = parse_message(one % 1), parse_message(one % 2)
    assert first.from_ is second.from_ and first.to is second.to  # shared, not re-parsed
    assert calls == ["<sip:a@h>;tag=1", "<sip:b@h>"]
    broken = b"OPTIONS sip:b@h SIP/2.0\r\nFrom: <sip:a@h\r\nCall-ID: x\r\n\r\n"
    for _ in range(2):  # a value that fails fails each time, with its message
        with pytest.raises(ParseError, match="From: unterminated"):
            _ = parse_message(broken).from_
    assert calls.count("<sip:a@h") == 1
