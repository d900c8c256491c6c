"""-H, --from, --to, --user-agent and --proxy as the builders apply them (sip/builders.py)."""

from __future__ import annotations

import pytest

from siptool.errors import UsageError
from siptool.sip.builders import (
    LocalEndpoint,
    RequestKnobs,
    build_request,
    protected_header,
    proxy_route,
)
from siptool.sip.message import parse_message

LOCAL = LocalEndpoint("udp", "192.0.2.10", 5062)


def _request(knobs: RequestKnobs) -> list[tuple[str, str]]:
    msg = build_request(
        "OPTIONS",
        "sip:+15551234@carrier.example",
        local=LOCAL,
        from_uri="sip:siptool@192.0.2.10",
        from_tag="abc",
        to_uri="sip:+15551234@carrier.example",
        call_id="c1@192.0.2.10",
        cseq=1,
        contact="<sip:siptool@192.0.2.10:5062>",
        extra=[("Accept", "application/sdp")],
        knobs=knobs,
    )
    # What goes on the wire reads back as the same headers.
    again = parse_message(msg.serialize())
    return [(h.name, h.value) for h in again.headers]


def test_a_user_header_replaces_the_one_siptool_would_send_in_its_place() -> None:
    headers = _request(RequestKnobs(headers=(("Max-Forwards", "1"), ("accept", "text/plain"))))
    names = [n for n, _ in headers]
    assert dict(headers)["Max-Forwards"] == "1"
    assert names.index("Max-Forwards") == 1  # where RFC 3261's order puts it
    assert [v for n, v in headers if n == "Accept"] == ["text/plain"]


def test_a_new_user_header_goes_before_user_agent_in_the_order_given() -> None:
    headers = _request(RequestKnobs(headers=(("X-A", "1"), ("X-B", "2")), user_agent="probe/1"))
    names = [n for n, _ in headers]
    assert names[names.index("X-A") : names.index("X-A") + 3] == ["X-A", "X-B", "User-Agent"]
    assert dict(headers)["User-Agent"] == "probe/1"


def test_from_and_to_take_the_users_name_addr_and_keep_siptools_tag() -> None:
    headers = dict(
        _request(RequestKnobs(from_='"Bob" <sip:bob@example.com>', to="<sip:alice@example.com>"))
    )
    assert headers["From"] == '"Bob" <sip:bob@example.com>;tag=abc'
    assert headers["To"] == "<sip:alice@example.com>"


def test_proxy_is_a_preloaded_loose_route_and_the_request_uri_stays_the_target() -> None:
    route = proxy_route("sip", "127.0.0.1:5070", "tcp")
    assert route == "<sip:127.0.0.1:5070;transport=tcp;lr>"
    msg = parse_message(
        build_request(
            "MESSAGE",
            "sip:+15551234@carrier.example",
            local=LOCAL,
            from_uri="sip:a@b",
            from_tag="t",
            to_uri="sip:+15551234@carrier.example",
            call_id="c",
            cseq=1,
            knobs=RequestKnobs(route=route),
        ).serialize()
    )
    assert msg.request_uri == "sip:+15551234@carrier.example"
    assert msg.header_values("Route") == [route]


@pytest.mark.parametrize("name", ["Via", "v", "CSeq", "call-id", "i", "Content-Length", "l"])
def test_headers_that_carry_the_transaction_or_framing_are_protected(name: str) -> None:
    assert protected_header(name) is not None


def test_cli_refuses_bad_user_headers_with_one_line_each() -> None:
    from siptool.cli.options import SipFlags

    for headers, words in [
        (("NoColon",), "expected 'Name: value'"),
        (("Bad Name: x",), "expected 'Name: value'"),
        (("X-A: one\r\nVia: two",), "line break"),
        (("CSeq: 9 OPTIONS",), "siptool sets CSeq itself"),
        (("f: <sip:x@y>",), "use --from"),
    ]:
        with pytest.raises(UsageError, match=words):
            SipFlags(headers=headers).knobs()
    with pytest.raises(UsageError, match="chooses the tag"):
        SipFlags(from_uri="<sip:a@b>;tag=1").knobs()
    with pytest.raises(UsageError, match="bad --proxy"):
        SipFlags(proxy="sip:").knobs()
