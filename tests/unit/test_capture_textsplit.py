"""SIP text input: one or many messages, CRLF or bare LF, blank lines, junk between messages."""

from __future__ import annotations

from siptool.capture import Problem, RawMessage, iter_input
from siptool.capture.textsplit import split_sip_text

REGISTER = (
    b"REGISTER sip:example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
    b"Call-ID: reg@x\r\n"
    b"CSeq: 1 REGISTER\r\n"
    b"Content-Length: 0\r\n\r\n"
)
INVITE = (
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"Call-ID: inv@x\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 22\r\n\r\n"
    b"v=0\r\ns=-\r\nt=0 0\r\nm=x\r\n"
)
RINGING = b"SIP/2.0 180 Ringing\r\nCall-ID: inv@x\r\nContent-Length: 0\r\n\r\n"


def split(text: bytes) -> list[RawMessage | Problem]:
    return list(split_sip_text(text))


def datas(items: list[RawMessage | Problem]) -> list[bytes]:
    return [item.data for item in items if isinstance(item, RawMessage)]


def lf(message: bytes) -> bytes:
    return message.replace(b"\r\n", b"\n")


def test_one_message_round_trips_exactly() -> None:
    items = split(INVITE)
    assert items == [RawMessage("sip", INVITE, None, None, None, None, None, 0)]


def test_back_to_back_messages_are_split_by_content_length() -> None:
    text = REGISTER + INVITE + RINGING
    items = split(text)
    assert datas(items) == [REGISTER, INVITE, RINGING]
    assert [m.offset for m in items if isinstance(m, RawMessage)] == [
        0,
        len(REGISTER),
        len(REGISTER) + len(INVITE),
    ]


def test_blank_lines_and_surrounding_whitespace_are_ignored() -> None:
    text = b"\n\n  \r\n" + REGISTER + b"\r\n\r\n\n" + INVITE + b"\n\n" + RINGING + b"\n  \n"
    assert datas(split(text)) == [REGISTER, INVITE, RINGING]


def test_bare_lf_messages_with_a_content_length_counting_crs_are_split_at_blank_lines() -> None:
    # Logs lose the CRs, so Content-Length 22 now overshoots the 18-byte LF body.
    text = lf(INVITE) + b"\n" + lf(RINGING) + b"\n" + lf(REGISTER)
    items = split(text)
    assert [i for i in items if isinstance(i, Problem)] == []
    assert datas(items) == [lf(INVITE), lf(RINGING), lf(REGISTER)]


def test_bare_lf_with_a_correct_content_length() -> None:
    body = b"v=0\ns=-\n"
    message = b"INVITE sip:b@x SIP/2.0\nCall-ID: a\nContent-Length: 8\n\n" + body
    assert datas(split(message + message)) == [message, message]


def test_message_without_content_length_runs_to_the_next_message_after_a_blank_line() -> None:
    no_length = b"MESSAGE sip:b@x SIP/2.0\r\nCall-ID: m\r\n\r\nHello\r\nSIP/2.0 in a body line\r\n"
    text = no_length + b"\r\n" + RINGING
    assert datas(split(text)) == [no_length, RINGING]


def test_body_containing_a_status_line_after_a_blank_line_is_kept_when_content_length_fits() -> (
    None
):
    sipfrag = b"SIP/2.0 200 OK\r\n"
    notify = (
        b"NOTIFY sip:a@x SIP/2.0\r\nCall-ID: n\r\nContent-Type: message/sipfrag\r\n"
        + f"Content-Length: {len(sipfrag)}\r\n\r\n".encode()
        + sipfrag
    )
    assert datas(split(notify + REGISTER)) == [notify, REGISTER]


def test_junk_between_messages_is_reported_with_its_offset_and_skipped() -> None:
    junk = b"2024-05-01 12:00:00 received from 192.0.2.1:\r\n"
    text = REGISTER + b"\r\n" + junk + INVITE
    items = split(text)
    problem = items[1]
    assert isinstance(problem, Problem)
    assert problem.where == f"byte {len(REGISTER) + 2}"
    quoted = "'2024-05-01 12:00:00 received from 192.0....'"
    assert problem.message == f"not a SIP start line: {quoted} ({len(junk)} bytes skipped)"
    assert datas(items) == [REGISTER, INVITE]


def test_text_that_is_not_sip_at_all_is_one_problem() -> None:
    items = split(b"hello\nworld\n")
    assert len(items) == 1 and isinstance(items[0], Problem)


def test_a_message_missing_its_blank_line_before_the_next_one() -> None:
    first = b"OPTIONS sip:a@x SIP/2.0\r\nCall-ID: x\r\n"
    assert datas(split(first + RINGING)) == [first, RINGING]


def test_runs_of_messages_without_blank_lines_around_normal_ones() -> None:
    # The empty line searched for once serves every message before it, and only those.
    bare = [f"OPTIONS sip:a@x SIP/2.0\r\nCall-ID: bare-{i}\r\n".encode() for i in range(50)]
    text = b"".join(bare) + INVITE + b"".join(bare[:3]) + RINGING + lf(REGISTER)
    assert datas(split(text)) == [*bare, INVITE, *bare[:3], RINGING, lf(REGISTER)]


def test_last_message_without_the_final_blank_line() -> None:
    text = REGISTER + b"SIP/2.0 200 OK\r\nCall-ID: reg@x\r\n"
    assert datas(split(text)) == [REGISTER, b"SIP/2.0 200 OK\r\nCall-ID: reg@x"]


def test_utf8_bom_is_ignored() -> None:
    assert datas(split(b"\xef\xbb\xbf" + REGISTER)) == [REGISTER]


def test_iter_input_detects_sip_text() -> None:
    assert datas(list(iter_input(b"\r\n" + REGISTER + RINGING))) == [REGISTER, RINGING]
