"""RFC 3261 §12-13 dialog state of invite-test: route set, ACK for 2xx, BYE, responses."""

from __future__ import annotations

import pytest

from siptool.sip.dialog import Dialog, DialogError, build_response
from siptool.sip.message import parse_message

INVITE = (
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKinv1;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice" <sip:alice@example.com>;tag=atag\r\n'
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: call-1@example.com\r\n"
    b"CSeq: 7 INVITE\r\n"
    b"Contact: <sip:alice@192.0.2.1:5060>\r\n"
    b'Proxy-Authorization: Digest username="alice", realm="r", nonce="n", '
    b'uri="sip:bob@example.com", response="00"\r\n'
    b"Content-Length: 0\r\n\r\n"
)


def ok(
    record_route: list[str], contact: str = "<sip:bob@198.51.100.7:5062;transport=udp>"
) -> bytes:
    rr = "".join(f"Record-Route: {r}\r\n" for r in record_route)
    return (
        "SIP/2.0 200 OK\r\n"
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKinv1;rport=5060\r\n"
        f"{rr}"
        'From: "Alice" <sip:alice@example.com>;tag=atag\r\n'
        "To: <sip:bob@example.com>;tag=btag\r\n"
        "Call-ID: call-1@example.com\r\n"
        "CSeq: 7 INVITE\r\n"
        f"Contact: {contact}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


VIA = "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnew;rport"


def dialog(record_route: list[str], **kw: str) -> Dialog:
    return Dialog.from_response(parse_message(INVITE), parse_message(ok(record_route, **kw)))


def test_dialog_state_from_the_2xx() -> None:
    d = dialog(["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"])
    assert (d.call_id, d.local_tag, d.remote_tag, d.local_seq) == (
        "call-1@example.com",
        "atag",
        "btag",
        7,
    )
    assert d.remote_target == "sip:bob@198.51.100.7:5062;transport=udp"
    # §12.1.2: the Record-Route of the response, reversed.
    assert d.route_set == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]


def test_ack_for_2xx_has_invite_cseq_new_branch_route_set_and_credentials() -> None:
    d = dialog(["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"])
    ack = d.ack(parse_message(INVITE), VIA)
    assert ack.method == "ACK"
    assert ack.request_uri == "sip:bob@198.51.100.7:5062;transport=udp"
    assert ack.header("CSeq") == "7 ACK"
    assert ack.top_via is not None and ack.top_via.branch == "z9hG4bKnew"
    assert ack.header_values("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert ack.to is not None and ack.to.tag == "btag"
    assert (
        ack.header(
            "Proxy-Authorization",
        )
        is not None
    )
    assert d.local_seq == 7  # an ACK does not use a new CSeq


def test_bye_increments_cseq_and_goes_to_the_remote_target() -> None:
    d = dialog([])
    bye = d.request("BYE", VIA)
    assert bye.header("CSeq") == "8 BYE"
    assert bye.request_uri == d.remote_target
    assert bye.header("Route") is None
    assert bye.header("Proxy-Authorization") is None
    assert str(d.next_hop()) == "sip:bob@198.51.100.7:5062;transport=udp"
    assert d.request("BYE", VIA).header("CSeq") == "9 BYE"


def test_loose_router_is_the_next_hop() -> None:
    d = dialog(["<sip:127.0.0.1:5070;lr=on>"])
    assert not d.strict_routing
    assert d.next_hop().port == 5070
    uri, routes = d.request_uri_and_routes()
    assert uri == d.remote_target and routes == ["<sip:127.0.0.1:5070;lr=on>"]


def test_strict_router_becomes_the_request_uri_and_the_target_goes_last() -> None:
    d = dialog(["<sip:p2.example.com>", "<sip:p1.example.com;maddr=10.0.0.1>"])
    assert d.strict_routing
    bye = d.request("BYE", VIA)
    assert bye.request_uri == "sip:p1.example.com;maddr=10.0.0.1"
    assert bye.header_values("Route") == [
        "<sip:p2.example.com>",
        "<sip:bob@198.51.100.7:5062;transport=udp>",
    ]


def test_in_dialog_request_matching() -> None:
    d = dialog([])
    bye = parse_message(
        b"BYE sip:alice@192.0.2.1:5060 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 198.51.100.7:5062;branch=z9hG4bKb\r\n"
        b"From: <sip:bob@example.com>;tag=btag\r\nTo: <sip:alice@example.com>;tag=atag\r\n"
        b"Call-ID: call-1@example.com\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
    )
    assert d.matches(bye)
    other = parse_message(bye.serialize().replace(b"tag=btag", b"tag=zzz"))
    assert not d.matches(other)


def test_response_copies_the_request_and_adds_a_to_tag_only_when_missing() -> None:
    request = parse_message(INVITE)
    response = build_response(request, 486, "Busy Here", to_tag="mine")
    assert response.status == 486
    assert response.to is not None and response.to.tag == "mine"
    assert response.header_values("Via") == [request.header("Via")]
    assert response.header("CSeq") == "7 INVITE"
    tagged = parse_message(ok([]))
    again = build_response(tagged, 200, "OK", to_tag="mine")
    assert again.to is not None and again.to.tag == "btag"


def test_a_2xx_without_to_tag_makes_no_dialog() -> None:
    untagged = ok([]).replace(b";tag=btag", b"")
    with pytest.raises(DialogError, match="To tag"):
        Dialog.from_response(parse_message(INVITE), parse_message(untagged))


def test_missing_contact_falls_back_to_the_request_uri_with_a_warning() -> None:
    data = b"".join(
        line + b"\r\n" for line in ok([]).split(b"\r\n") if not line.startswith(b"Contact")
    )
    d = Dialog.from_response(
        parse_message(INVITE), parse_message(data.rstrip(b"\r\n") + b"\r\n\r\n")
    )
    assert d.remote_target == "sip:bob@example.com"
    assert d.warnings and "no Contact" in d.warnings[0]
