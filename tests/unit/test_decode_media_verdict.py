"""decode --rtp's per-call verdict from SDP offer/answer and the streams seen."""

from __future__ import annotations

from dataclasses import dataclass

from siptool.commands.decode_media import CallMedia, MediaVerdict
from siptool.sip.message import parse_message

CALLER = "203.0.113.10:5060"
CALLEE = "198.51.100.20:5060"


@dataclass
class Stream:
    src: str
    dst: str
    packets: int = 50
    payload_type: int | None = 0
    last_time: float | None = None


def message(start: str, cseq: str, sdp: str | None = None, call_id: str = "c1") -> bytes:
    body = sdp or ""
    head = [
        start,
        "Via: SIP/2.0/UDP x;branch=z9hG4bK1",
        "From: <sip:a@x>;tag=1",
        "To: <sip:b@y>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq}",
    ]
    if sdp:
        head.append("Content-Type: application/sdp")
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n" + body).encode()


def sdp(address: str, port: int, direction: str = "sendrecv", formats: str = "0 101") -> str:
    return (
        f"v=0\r\no=- 1 1 IN IP4 {address}\r\ns=-\r\nc=IN IP4 {address}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP {formats}\r\na=rtpmap:101 telephone-event/8000\r\n"
        f"a={direction}\r\n"
    )


def call(
    offer: str, answer: str, streams: list[Stream], *, caller: str = CALLER, callee: str = CALLEE
) -> MediaVerdict:
    media = CallMedia()
    media.sdp(parse_message(message("INVITE sip:b@y SIP/2.0", "1 INVITE", offer)), caller)
    media.sdp(parse_message(message("SIP/2.0 200 OK", "1 INVITE", answer)), callee)
    [verdict] = media.verdicts(streams)
    return verdict


A_MEDIA = "203.0.113.10:4000"
B_MEDIA = "198.51.100.20:5000"
OFFER = sdp("203.0.113.10", 4000)
ANSWER = sdp("198.51.100.20", 5000)


def test_both_ways_when_each_side_sends_to_the_others_announced_address() -> None:
    v = call(OFFER, ANSWER, [Stream(A_MEDIA, B_MEDIA), Stream(B_MEDIA, A_MEDIA)])
    assert v.verdict == "both-ways" and v.reasons == []
    assert v.streams == [f"{A_MEDIA} -> {B_MEDIA}", f"{B_MEDIA} -> {A_MEDIA}"]


def test_one_way_names_the_side_that_never_sent() -> None:
    v = call(OFFER, ANSWER, [Stream(A_MEDIA, B_MEDIA)])
    assert v.verdict == "one-way"
    assert v.reasons[0] == f"the callee never sent RTP to the caller's announced {A_MEDIA}"


def test_none_when_nothing_flowed() -> None:
    v = call(OFFER, ANSWER, [Stream("192.0.2.99:7000", "192.0.2.98:7002")])
    assert v.verdict == "none" and v.streams == []


def test_a_sendonly_offer_is_a_hold_the_silent_side_respects() -> None:
    v = call(sdp("203.0.113.10", 4000, "sendonly"), sdp("198.51.100.20", 5000, "recvonly"),
             [Stream(A_MEDIA, B_MEDIA)])  # fmt: skip
    assert v.verdict == "held"
    assert any("callee is not to send" in r for r in v.reasons)
    broken = call(sdp("203.0.113.10", 4000, "inactive"), sdp("198.51.100.20", 5000, "inactive"),
                  [Stream(B_MEDIA, A_MEDIA)])  # fmt: skip
    assert broken.verdict == "held"
    assert "hold not respected: the callee still sends RTP" in broken.reasons


def test_a_private_sdp_address_from_a_public_signalling_source_is_the_nat_case() -> None:
    v = call(sdp("10.1.2.3", 4000), ANSWER, [Stream("203.0.113.10:31000", "198.51.100.20:5000")])
    assert v.verdict == "one-way"
    assert v.reasons[0] == "the callee never sent RTP to the caller's announced 10.1.2.3:4000"
    assert any("private 10.1.2.3 while its signalling came from public 203.0.113.10" in r
               for r in v.reasons)  # fmt: skip


def test_rtp_from_another_source_than_announced_is_named() -> None:
    v = call(OFFER, ANSWER, [Stream("203.0.113.10:31000", B_MEDIA), Stream(B_MEDIA, A_MEDIA)])
    assert v.verdict == "both-ways"
    assert v.reasons == [
        f"the caller's RTP comes from 203.0.113.10:31000, not from its announced {A_MEDIA}: "
        "a NAT or a latching SBC rewrote the source"
    ]


def test_media_sent_where_nothing_was_announced_is_named() -> None:
    v = call(OFFER, ANSWER, [Stream(A_MEDIA, "198.51.100.77:9000"), Stream(B_MEDIA, A_MEDIA)])
    assert v.verdict == "one-way"
    assert any(f"sends RTP from {A_MEDIA} to 198.51.100.77:9000" in r for r in v.reasons)


def test_a_payload_type_outside_the_answer_is_named_but_events_are_not() -> None:
    v = call(sdp("203.0.113.10", 4000, formats="0 8 101"), sdp("198.51.100.20", 5000),
             [Stream(A_MEDIA, B_MEDIA, payload_type=8), Stream(B_MEDIA, A_MEDIA),
              Stream(B_MEDIA, A_MEDIA, payload_type=101)])  # fmt: skip
    assert v.reasons == [
        "the caller sends payload type 8 (PCMA), which the answer did not include (0, 101)"
    ]


def test_a_reinvite_adds_addresses_and_its_direction_is_the_one_in_force() -> None:
    media = CallMedia()
    media.sdp(parse_message(message("INVITE sip:b@y SIP/2.0", "1 INVITE", OFFER)), CALLER)
    media.sdp(parse_message(message("SIP/2.0 200 OK", "1 INVITE", ANSWER)), CALLEE)
    moved = sdp("203.0.113.10", 4100, "sendonly")
    media.sdp(parse_message(message("INVITE sip:b@y SIP/2.0", "2 INVITE", moved)), CALLER)
    media.sdp(
        parse_message(
            message("SIP/2.0 200 OK", "2 INVITE", sdp("198.51.100.20", 5000, "recvonly"))
        ),
        CALLEE,
    )
    [v] = media.verdicts([Stream(A_MEDIA, B_MEDIA), Stream(B_MEDIA, A_MEDIA)])
    assert v.verdict == "held"
    assert "hold not respected: the callee still sends RTP" in v.reasons


def test_an_sdp_that_does_not_parse_announces_nothing() -> None:
    media = CallMedia()
    bad = message("INVITE sip:b@y SIP/2.0", "1 INVITE", "v=0\r\nm=audio x\r\n")
    assert media.sdp(parse_message(bad), CALLER) == []
    assert media.verdicts([]) == []


def test_the_sides_come_from_the_dialog_tags_not_the_addresses_a_proxy_forwards_from() -> None:
    proxy = "192.0.2.5:5060"
    media = CallMedia()
    invite = message("INVITE sip:b@y SIP/2.0", "1 INVITE", OFFER)
    ok = message("SIP/2.0 200 OK", "1 INVITE", ANSWER).replace(
        b"To: <sip:b@y>", b"To: <sip:b@y>;tag=9"
    )
    for sender in (CALLER, proxy):  # each message seen on both hops
        media.sdp(parse_message(invite), sender)
    for sender in (CALLEE, proxy):
        media.sdp(parse_message(ok), sender)
    # A re-INVITE from the callee (its tag in From) puts the caller on hold.
    reinvite = (
        message("INVITE sip:a@x SIP/2.0", "1 INVITE", sdp("198.51.100.20", 5000, "sendonly"))
        .replace(b"From: <sip:a@x>;tag=1", b"From: <sip:b@y>;tag=9")
        .replace(b"To: <sip:b@y>", b"To: <sip:a@x>;tag=1")
    )
    media.sdp(parse_message(reinvite), proxy)
    [v] = media.verdicts([Stream(B_MEDIA, A_MEDIA)])
    assert v.verdict == "held"
    assert any(r.startswith("the caller is not to send") for r in v.reasons)


def test_media_sent_before_the_hold_does_not_count_against_it() -> None:
    def held(callee_last: float) -> MediaVerdict:
        media = CallMedia()
        media.sdp(parse_message(message("INVITE sip:b@y SIP/2.0", "1 INVITE", OFFER)), CALLER, 1.0)
        media.sdp(parse_message(message("SIP/2.0 200 OK", "1 INVITE", ANSWER)), CALLEE, 1.1)
        hold = sdp("203.0.113.10", 4000, "sendonly")
        media.sdp(parse_message(message("INVITE sip:b@y SIP/2.0", "2 INVITE", hold)), CALLER, 9.0)
        unheld = sdp("198.51.100.20", 5000, "recvonly")
        media.sdp(parse_message(message("SIP/2.0 200 OK", "2 INVITE", unheld)), CALLEE, 9.1)
        streams = [
            Stream(A_MEDIA, B_MEDIA, last_time=20.0),
            Stream(B_MEDIA, A_MEDIA, last_time=callee_last),
        ]
        [v] = media.verdicts(streams)
        return v

    assert held(8.5).verdict == "held"
    assert not any("not respected" in r for r in held(8.5).reasons)  # it stopped in time
    assert "hold not respected: the callee still sends RTP" in held(12.0).reasons


def test_early_media_in_a_183_and_an_update_announce_like_the_answer() -> None:
    media = CallMedia()
    media.sdp(parse_message(message("INVITE sip:b@y SIP/2.0", "1 INVITE", OFFER)), CALLER)
    # RFC 3262/3311: the answer comes early in a 183; the 200 then carries no SDP.
    early = message("SIP/2.0 183 Session Progress", "1 INVITE", ANSWER)
    media.sdp(parse_message(early), CALLEE)
    media.sdp(parse_message(message("SIP/2.0 200 OK", "1 INVITE")), CALLEE)
    # The callee moves its media with an UPDATE (its tag in From).
    moved = (
        message("UPDATE sip:a@x SIP/2.0", "2 UPDATE", sdp("198.51.100.20", 5100))
        .replace(b"From: <sip:a@x>;tag=1", b"From: <sip:b@y>;tag=9")
        .replace(b"To: <sip:b@y>", b"To: <sip:a@x>;tag=1")
    )
    media.sdp(parse_message(moved), CALLEE)
    streams = [
        Stream(B_MEDIA, A_MEDIA),  # early media, before the UPDATE
        Stream(A_MEDIA, B_MEDIA),
        Stream(A_MEDIA, "198.51.100.20:5100"),  # after it, to the new port
    ]
    [v] = media.verdicts(streams)
    assert (v.verdict, v.reasons) == ("both-ways", [])
    assert len(v.streams) == 3


def test_an_ipv6_sdp_address_meets_the_capture_s_spelling_of_it() -> None:
    def six(address: str, port: int) -> str:
        return (
            f"v=0\r\no=- 1 1 IN IP6 {address}\r\ns=-\r\nc=IN IP6 {address}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\n"
        )

    # The capture writes ends as capture.layers.endpoint does: compressed, lower case.
    v = call(six("2001:DB8:0:0::A", 4000), six("2001:db8::0:b", 5000),
             [Stream("[2001:db8::a]:4000", "[2001:db8::b]:5000"),
              Stream("[2001:db8::b]:5000", "[2001:db8::a]:4000")])  # fmt: skip
    assert (v.verdict, v.reasons) == ("both-ways", [])
