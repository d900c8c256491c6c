"""URIs (RFC 3261 §19.1, §25.1; RFC 3966; RFC 5118), name-addrs and Vias (RFC 3261 §20)."""

from __future__ import annotations

import pytest

from siptool.sip.nameaddr import NameAddr, Via, parse_name_addr, parse_via, quote_string
from siptool.sip.uri import Uri, parse_uri, unescape
from tests.support.asserts import parse_error

# -- URIs --------------------------------------------------------------------------------------


def test_full_sip_uri_parts() -> None:
    text = (
        "sips:alice:secret@atlanta.example.com:5061;transport=TCP;LR;maddr=239.255.255.1"
        "?subject=project%20x&priority=urgent"
    )
    uri = parse_uri(text)
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        "sips",
        "alice",
        "secret",
        "atlanta.example.com",
        5061,
    )
    assert uri.params == {"transport": "TCP", "lr": None, "maddr": "239.255.255.1"}
    assert uri.headers == {"subject": "project%20x", "priority": "urgent"}
    assert uri.transport == "tcp" and not uri.is_ipv6 and uri.is_sip
    assert str(uri) == text


def test_str_is_the_original_text_and_to_text_rebuilds() -> None:
    uri = parse_uri("  SIP:Bob@Example.COM;Transport=udp  ")
    assert str(uri) == "SIP:Bob@Example.COM;Transport=udp"
    assert uri.scheme == "sip" and uri.host == "Example.COM" and uri.params == {"transport": "udp"}
    uri.port = 5080
    assert uri.to_text() == "sip:Bob@Example.COM:5080;transport=udp"
    assert str(Uri("sip", host="2001:db8::1", port=5060)) == "sip:[2001:db8::1]:5060"


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("sip:[2001:db8::10]", "2001:db8::10", None),
        ("sip:[2001:db8::10]:5070", "2001:db8::10", 5070),
        ("sip:user@[2001:db8::10:5070]", "2001:db8::10:5070", None),  # RFC 5118 §4.8
        ("sip:user@[::ffff:192.0.2.128];transport=tcp", "::ffff:192.0.2.128", None),
        ("sip:[::1]:0", "::1", 0),
    ],
)
def test_ipv6_references_lose_their_brackets(text: str, host: str, port: int | None) -> None:
    uri = parse_uri(text)
    assert (uri.host, uri.port, uri.is_ipv6) == (host, port, True)


def test_user_part_may_contain_reserved_characters() -> None:
    # RFC 4475 §3.1.1.2 (intmeth) Request-URI
    uri = parse_uri(
        "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com"
    )
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert uri.host == "example.com" and uri.params == {}


def test_tel_uri_number_and_params() -> None:
    uri = parse_uri("tel:+1-201-555-0123;ext=42;Phone-Context=example.com")
    assert (uri.scheme, uri.user, uri.host) == ("tel", "+1-201-555-0123", "")
    assert uri.params == {"ext": "42", "phone-context": "example.com"}
    assert uri.to_text() == "tel:+1-201-555-0123;ext=42;phone-context=example.com"


def test_other_schemes_are_kept_opaque() -> None:
    uri = parse_uri("urn:service:sos")
    assert (uri.scheme, uri.opaque, str(uri)) == ("urn", "service:sos", "urn:service:sos")
    assert parse_uri("mailto:a@b.example").opaque == "a@b.example"


def test_unescape_resolves_percent_escapes_and_keeps_bad_ones() -> None:
    assert unescape("%75se%72") == "user"
    assert unescape("%Z%45%4") == "%ZE%4"
    assert unescape("caf%C3%A9") == "café"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sip:", "without a host"),
        ("sip:user@", "without a host"),
        ("sip:@host", "empty user"),
        ("sip:host:", "bad port"),
        ("sip:host:65536", "out of range"),
        ("sip:host:5o6o", "bad port"),
        ("sip:host:123456", "bad port"),
        ("sip:[2001:db8::1", "unbalanced"),
        ("sip:[2001:db8::1]x", "junk"),
        ("sip:[not-v6]", "bad IPv6"),
        ("sip:2001:db8::1", "bad port"),
        ("sip:ho st", "not allowed"),
        ("sip:host;;lr", "empty URI parameter"),
        ("sip:host;lr?", "empty URI header"),
        ("sip:ho$t", "bad host"),
        ("sip:<host>", "not allowed"),
        ("tel:", "without a number"),
        ("nocolon", "no scheme"),
        (":x", "no scheme"),
        ("1sip:x", "no scheme"),
        ("urn:", "empty"),
        ("", "no scheme"),
    ],
)
def test_junk_uris_are_parse_errors(text: str, message: str) -> None:
    parse_error(parse_uri, text, message)


def test_uri_error_offset_points_into_the_text() -> None:
    assert parse_error(parse_uri, "  sip:host:99999").offset == len("  sip:host:")


# -- name-addr ---------------------------------------------------------------------------------


def test_name_addr_with_quoted_display_name_and_params() -> None:
    na = parse_name_addr(
        '"Alice \\"A\\" \\\\ Smith" <sip:alice@example.com;transport=tcp> ;tag=88sja8x;expires=60'
    )
    assert na.display_name == 'Alice "A" \\ Smith'
    assert na.uri.params == {"transport": "tcp"}
    assert na.params == {"tag": "88sja8x", "expires": "60"}
    assert na.tag == "88sja8x" and not na.is_star


def test_unquoted_display_name_collapses_whitespace() -> None:
    na = parse_name_addr("  Bob   Smith\t<sip:bob@example.com>")
    assert na.display_name == "Bob Smith"
    assert parse_name_addr("<sip:bob@example.com>").display_name is None
    assert parse_name_addr('"" <sip:bob@example.com>').display_name == ""


def test_addr_spec_params_belong_to_the_header() -> None:
    # RFC 3261 §20.10: without <>, ";" parameters are header parameters.
    na = parse_name_addr("sip:alice@example.com;tag=1;transport=udp")
    assert na.uri.params == {} and na.params == {"tag": "1", "transport": "udp"}
    assert str(na.uri) == "sip:alice@example.com"


def test_quoted_param_values_keep_their_quotes() -> None:
    na = parse_name_addr('<sip:a@192.0.2.4>;+sip.instance="<urn:uuid:f81d4fae-7dec;x>";Q = 0.7')
    assert na.params == {"+sip.instance": '"<urn:uuid:f81d4fae-7dec;x>"', "q": "0.7"}


def test_name_addr_to_text_round_trips_through_the_parser() -> None:
    na = NameAddr('Al "x"', parse_uri("sip:al@example.com;lr"), {"tag": "9", "lr": None})
    text = na.to_text()
    assert text == '"Al \\"x\\"" <sip:al@example.com;lr>;tag=9;lr'
    assert parse_name_addr(text) == na
    assert quote_string("a\\b") == '"a\\\\b"'


def test_star_and_tel_name_addrs() -> None:
    assert parse_name_addr(" * ").is_star
    na = parse_name_addr("<tel:+358-555-1234567;postd=pp22>")
    assert na.uri.scheme == "tel" and na.uri.user == "+358-555-1234567"


@pytest.mark.parametrize(
    "text",
    [
        "",
        '"unterminated <sip:a@b>',
        '"name" sip:a@b',
        "<sip:a@b",
        "<sip:a@b>;",
        "<sip:a@b>;;tag=1",
        "<sip:a@b> junk",
        "<sip:a@b>;tag=",
        'Bad"Name <sip:a@b>',
        "<>",
        "<sip:>",
        "sip:a@b;tag=1 extra",
        "**",
    ],
)
def test_malformed_name_addrs_are_parse_errors(text: str) -> None:
    parse_error(parse_name_addr, text)


def test_name_addr_error_offset_is_inside_the_value() -> None:
    error = parse_error(parse_name_addr, "Bob <sip:bob@host:99999>")
    assert error.offset == len("Bob <sip:bob@host:")


# -- Via ---------------------------------------------------------------------------------------


def test_via_fields_and_properties() -> None:
    via = parse_via(
        "SIP/2.0/udp pc33.example.com:5066;branch=z9hG4bK776asdhds;received=192.0.2.1"
        ";rport=60000;maddr=224.2.0.1;ttl=16"
    )
    assert (via.protocol, via.transport, via.host, via.port) == (
        "SIP/2.0",
        "UDP",
        "pc33.example.com",
        5066,
    )
    assert via.branch == "z9hG4bK776asdhds" and via.received == "192.0.2.1"
    assert via.rport == 60000 and via.rport_requested
    assert via.maddr == "224.2.0.1" and via.ttl == 16
    assert via.sent_by == "pc33.example.com:5066"


def test_via_with_whitespace_everywhere_rfc4475() -> None:
    via = parse_via("SIP  /    2.0   / UDP  192.168.255.111   ; branch= z9hG4bK30239")
    assert (via.transport, via.host, via.branch) == ("UDP", "192.168.255.111", "z9hG4bK30239")
    via = parse_via("SIP/2.0/TCP host.example.com : 5070 ;rport")
    assert via.port == 5070 and via.rport is None and via.rport_requested


def test_via_ipv6_sent_by_and_received() -> None:
    via = parse_via("SIP/2.0/WSS [2001:db8::9:1]:443;received=2001:db8::9:255;branch=z9hG4bKas3")
    assert (via.transport, via.host, via.port) == ("WSS", "2001:db8::9:1", 443)
    assert via.received == "2001:db8::9:255"
    assert str(via) == "SIP/2.0/WSS [2001:db8::9:1]:443;received=2001:db8::9:255;branch=z9hG4bKas3"
    assert parse_via(str(via)) == via


def test_via_to_dict_shape() -> None:
    assert Via("SIP/2.0", "TCP", "h", 1, {"branch": "b", "rport": "2"}).to_dict() == {
        "transport": "TCP",
        "host": "h",
        "port": 1,
        "branch": "b",
        "received": None,
        "rport": 2,
        "rport_requested": True,
    }


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SIP/2.0 host",
        "SIP/2.0/UDP",
        "SIP/2.0/UDP ",
        "SIP/2.0/UDP host:",
        "SIP/2.0/UDP host:70000",
        "SIP/2.0/UDP [::1",
        "SIP/2.0/UDP [zz::1]",
        "SIP/2.0/UDP 192.0.2.15;;,;,,",  # RFC 4475 §3.1.2.1 (badinv01)
        "SIP/2.0/UDP host;rport=abc",
        "SIP/2.0/UDP host;ttl=256",
        "SIP/2.0/UDP host junk",
        "SIP/2.0/UDP ho$t",
        "SIP/2.0/UDP 2001:db8::1",
    ],
)
def test_malformed_vias_are_parse_errors(text: str) -> None:
    parse_error(parse_via, text)
