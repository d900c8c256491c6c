"""SIP start-line recognition and stream framing by Content-Length (RFC 3261 §18.3)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siptool.sip.framing import (
    REQUEST,
    RESPONSE,
    FramingError,
    SipStreamFramer,
    content_length,
    find_header_end,
    find_start_line,
    start_line_kind,
    starts_like_sip,
)

OPTIONS = (
    b"OPTIONS sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK1\r\n"
    b"Call-ID: one@example.com\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Content-Length: 0\r\n\r\n"
)
INVITE = (
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"Call-ID: two@example.com\r\n"
    b"Content-Type: application/sdp\r\n"
    b"l: 13\r\n\r\n"
    b"v=0\r\ns=-\r\nt=0"
)
RESPONSE_200 = b"SIP/2.0 200 OK\r\nCall-ID: three@example.com\r\ncontent-LENGTH:   5  \r\n\r\nhello"


def kind(line: bytes) -> int:
    return start_line_kind(line, 0, len(line))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"INVITE sip:bob@example.com SIP/2.0", REQUEST),
        (b"INVITE sip:bob@example.com SIP/2.0\r\n", REQUEST),
        (b"FOO-BAR sip:x SIP/2.0", REQUEST),  # extension method: any token
        (b"OPTIONS sip:x sip/2.0", REQUEST),  # RFC 3261 §7.1: the version is case-insensitive
        (b"SIP/2.0 200 OK", RESPONSE),
        (b"SIP/2.0 486 Busy Here\n", RESPONSE),
        (b"SIP/2.0 200", RESPONSE),
        (b"SIP/2.0 2000 OK", 0),
        (b"SIP/2.0 OK", 0),
        (b"GET / HTTP/1.1", 0),
        (b"INVITE sip:bob SIP/3.0", 0),
        (b"Via: SIP/2.0/UDP host", 0),
        (b"INV\x01TE sip:bob SIP/2.0", 0),
        (b"", 0),
    ],
)
def test_start_line_kind_recognises_requests_and_responses_only(line: bytes, expected: int) -> None:
    assert kind(line) == expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (OPTIONS, True),
        (RESPONSE_200, True),
        (b"SIP/2.0 99 broken status\r\n\r\n", True),  # malformed, still meant to be SIP
        (b"INVITE garbage without version\r\n\r\n", True),  # known method + SP
        (b"FOO sip:x SIP/2.0\r\n\r\n", True),
        (b"FOO garbage\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\n\r\n", False),
        (b"\x80\x00\x12\x34" + b"\0" * 20, False),  # RTP
        (b"\r\n\r\n", False),
        (b"SIP/2.0", False),
    ],
)
def test_starts_like_sip_accepts_malformed_sip_and_rejects_other_protocols(
    payload: bytes, expected: bool
) -> None:
    assert starts_like_sip(payload) is expected


def test_starts_like_sip_respects_the_bounds_inside_a_bigger_buffer() -> None:
    buf = b"x:y " + OPTIONS + b"yyyy"
    assert starts_like_sip(buf, 4, 4 + len(OPTIONS))
    assert not starts_like_sip(buf, 0, len(buf))
    # The request line must end before `end`: cut inside the method, nothing is recognised.
    assert not starts_like_sip(buf, 4, 8)


def test_find_start_line_only_matches_at_the_beginning_of_a_line() -> None:
    text = b"junk SIP/2.0 200 OK\r\nmore junk\r\nSIP/2.0 200 OK\r\n"
    assert find_start_line(text) == text.index(b"SIP/2.0 200 OK\r\n", 10)
    assert find_start_line(b"no newline: SIP/2.0 200 OK") == -1


@pytest.mark.parametrize(
    ("text", "end"),
    [
        (b"A sip:x SIP/2.0\r\nX: y\r\n\r\nbody", 25),
        (b"A sip:x SIP/2.0\nX: y\n\nbody", 22),
        (b"A sip:x SIP/2.0\r\nX: y\n\nbody", 23),
        (b"A sip:x SIP/2.0\r\n\r\n", 19),
        (b"A sip:x SIP/2.0\r\nX: y\r\n", -1),
    ],
)
def test_find_header_end_accepts_crlf_and_bare_lf(text: bytes, end: int) -> None:
    assert find_header_end(text, text.index(b"\n")) == end


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (OPTIONS, (0, None)),
        (INVITE, (13, None)),
        (RESPONSE_200, (5, None)),
        (b"SIP/2.0 200 OK\r\nL : 7\r\n\r\n", (7, None)),
        (b"SIP/2.0 200 OK\r\nLength: 7\r\n\r\n", (None, None)),
        (b"SIP/2.0 200 OK\r\nContent-Length: -1\r\n\r\n", (None, "invalid Content-Length '-1'")),
        (b"SIP/2.0 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", (1, None)),
    ],
)
def test_content_length_reads_long_and_compact_forms(
    headers: bytes, expected: tuple[int | None, str | None]
) -> None:
    assert content_length(headers, 0, len(headers)) == expected


def messages(items: list[bytes | FramingError]) -> list[bytes]:
    return [item for item in items if isinstance(item, bytes)]


def errors(items: list[bytes | FramingError]) -> list[str]:
    return [item.message for item in items if isinstance(item, FramingError)]


def test_framer_splits_several_messages_from_one_chunk() -> None:
    framer = SipStreamFramer()
    assert framer.feed(OPTIONS + INVITE + RESPONSE_200) == [OPTIONS, INVITE, RESPONSE_200]
    assert framer.buffered == 0
    assert framer.close() == []


def test_framer_joins_one_message_fed_byte_by_byte() -> None:
    framer = SipStreamFramer()
    out: list[bytes | FramingError] = []
    for index in range(len(INVITE)):
        out += framer.feed(INVITE[index : index + 1])
        if index < len(INVITE) - 1:
            assert out == []
    assert out == [INVITE]


def test_framer_skips_crlf_keepalives_between_messages() -> None:
    framer = SipStreamFramer()
    # RFC 5626 §3.5.1: a "ping" is CRLF CRLF, a "pong" is CRLF.
    items = framer.feed(b"\r\n\r\n" + OPTIONS + b"\r\n" + RESPONSE_200 + b"\r\n\r\n")
    assert items == [OPTIONS, RESPONSE_200]
    assert framer.close() == []


def test_framer_reports_garbage_once_and_resynchronises_at_the_next_start_line() -> None:
    framer = SipStreamFramer()
    items = framer.feed(b"this is not SIP\r\nnor is this\r\n" + OPTIONS)
    assert errors(items) == ["not a SIP start line: 'this is not SIP'"]
    assert messages(items) == [OPTIONS]


def test_framer_reports_binary_garbage_without_waiting_for_a_line_end() -> None:
    framer = SipStreamFramer()
    items = framer.feed(b"\x16\x03\x01\x02\x00")
    assert errors(items) == ["not a SIP start line: '.....'"]


def test_framer_without_content_length_emits_the_headers_reports_and_resyncs() -> None:
    framer = SipStreamFramer()
    no_length = b"MESSAGE sip:bob@example.com SIP/2.0\r\nCall-ID: x\r\n\r\n"
    items = framer.feed(no_length + b"some body text\r\n" + OPTIONS)
    assert errors(items) == ["Content-Length missing"]
    assert messages(items) == [no_length, OPTIONS]


def test_framer_with_invalid_content_length_reports_it() -> None:
    framer = SipStreamFramer()
    bad = b"SIP/2.0 200 OK\r\nContent-Length: abc\r\n\r\n"
    items = framer.feed(bad + OPTIONS)
    assert errors(items) == ["invalid Content-Length 'abc'"]
    assert messages(items) == [bad, OPTIONS]


def test_framer_offsets_count_every_byte_fed() -> None:
    framer = SipStreamFramer()
    items = framer.feed_with_offsets(b"\r\n" + OPTIONS + INVITE)
    assert items == [(2, OPTIONS), (2 + len(OPTIONS), INVITE)]
    assert framer.stream_offset == 2 + len(OPTIONS) + len(INVITE)


def test_framer_lose_drops_the_unfinished_message_and_resyncs() -> None:
    framer = SipStreamFramer()
    assert framer.feed(INVITE[:50]) == []
    lost = framer.lose(100)
    assert [e.message for e in lost] == [
        "100 bytes missing from the stream; dropped 50 bytes of an unfinished message"
    ]
    # The rest of the lost message arrives: skipped silently up to the next start line.
    assert framer.feed(b"tail of a body\r\n" + OPTIONS) == [OPTIONS]
    assert framer.stream_offset == 50 + 100 + 16 + len(OPTIONS)


def test_framer_close_reports_an_incomplete_body_and_incomplete_headers() -> None:
    framer = SipStreamFramer()
    framer.feed(INVITE[:-3])
    assert [e.message for e in framer.close()] == [
        f"incomplete message: {len(INVITE) - 3} of {len(INVITE)} bytes"
    ]
    framer.feed(OPTIONS[:40])
    assert [e.message for e in framer.close()] == [
        "incomplete message: headers not finished after 40 bytes"
    ]
    assert framer.close() == []


def test_framer_gives_up_on_headers_that_never_end() -> None:
    framer = SipStreamFramer(max_header_bytes=200)
    items = framer.feed(b"OPTIONS sip:x SIP/2.0\r\n" + b"X-Long: y\r\n" * 30)
    assert errors(items) == ["no end of headers within 200 bytes"]
    assert messages(framer.feed(b"\r\n" + OPTIONS)) == [OPTIONS]


def test_framer_finds_the_message_after_headers_that_never_ended_in_later_chunks() -> None:
    # The search for the end of the headers resumed from where the dropped bytes had been.
    long_headers = b"OPTIONS sip:x SIP/2.0\r\n" + b"X-Long: yyyyyyyy\r\n" * 30
    assert len(OPTIONS) < 190
    framer = SipStreamFramer(max_header_bytes=200)
    items = framer.feed(long_headers[:195]) + framer.feed(long_headers[195:])
    items += framer.feed(OPTIONS) + framer.close()
    assert errors(items) == ["no end of headers within 200 bytes"]
    assert messages(items) == [OPTIONS]


@pytest.mark.parametrize("cut", [0, 100, 150, 400])
def test_framer_limit_on_headers_does_not_depend_on_chunking(cut: int) -> None:
    stream = b"OPTIONS sip:x SIP/2.0\r\n" + b"X-Long: yyyyyyyy\r\n" * 30 + b"\r\n" + OPTIONS
    framer = SipStreamFramer(max_header_bytes=200)
    items = framer.feed(stream[:cut]) + framer.feed(stream[cut:]) + framer.close()
    assert errors(items) == ["no end of headers within 200 bytes"]
    assert messages(items) == [OPTIONS]


def test_framer_refuses_a_huge_content_length() -> None:
    framer = SipStreamFramer(max_body_bytes=1000)
    items = framer.feed(b"SIP/2.0 200 OK\r\nContent-Length: 5000\r\n\r\n" + OPTIONS)
    assert errors(items) == ["Content-Length 5000 is larger than 1000; skipping"]


def test_framer_accepts_bare_lf_line_ends() -> None:
    framer = SipStreamFramer()
    message = b"SIP/2.0 200 OK\nCall-ID: lf\nContent-Length: 2\n\nok"
    assert framer.feed(message + message) == [message, message]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=400), max_size=12))
def test_framer_result_does_not_depend_on_chunking(cuts: list[int]) -> None:
    stream = b"\r\n\r\n" + OPTIONS + INVITE + b"\r\n" + RESPONSE_200 + b"garbage\r\n" + OPTIONS
    whole = SipStreamFramer().feed(stream)
    points = sorted({min(cut, len(stream)) for cut in cuts})
    framer = SipStreamFramer()
    pieces: list[bytes | FramingError] = []
    previous = 0
    for point in [*points, len(stream)]:
        pieces += framer.feed(stream[previous:point])
        previous = point
    assert messages(pieces) == messages(whole) == [OPTIONS, INVITE, RESPONSE_200, OPTIONS]
    assert errors(pieces) == errors(whole)
