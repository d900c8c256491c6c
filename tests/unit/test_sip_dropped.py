"""Messages the SIP transport must drop are reported, with what can still be read of them:
``peek_response`` on heads of broken messages, and the stream protocol's copy of the bytes the
framer holds, whatever the chunking."""

from __future__ import annotations

import asyncio

import pytest

from siptool.net.sip_transport import (
    MAX_HEADER_BYTES,
    Dropped,
    Received,
    SipFlow,
    WireLog,
    _StreamProtocol,
    peek_response,
)

HEAD = (
    b"SIP/2.0 200 OK\r\n"
    b"v: SIP/2.0/TCP 127.0.0.1:5070;rport;Branch=z9hG4bKabc, "
    b"SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKno\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKlater\r\n"
    b"CSeq: 7 OPTIONS\r\n"
)


def test_peek_reads_status_top_branch_and_cseq_method() -> None:
    assert peek_response(HEAD + b"X-Pad: " + b"a" * 100) == (200, "OK", "z9hG4bKabc", "OPTIONS")


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"\x00\xffgarbage\r\n\r\n",
        b"SIP/2.0 2OO OK\r\n",  # letters for digits
        b"SIP/2.0 \xb2\xb2\xb2 OK\r\n",
        b"INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n",
    ],
)
def test_peek_never_raises_and_finds_no_status_in_non_responses(head: bytes) -> None:
    status, _, _, _ = peek_response(head)
    assert status is None


def test_peek_takes_no_branch_from_a_later_via_when_the_top_one_has_none() -> None:
    head = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\nVia: SIP/2.0/UDP g;branch=z9hG4bKg\r\n"
    assert peek_response(head)[2] is None


def test_peek_stops_at_the_end_of_the_headers() -> None:
    head = b"SIP/2.0 486 Busy\r\n\r\nCSeq: 1 INVITE\r\n"
    assert peek_response(head) == (486, "Busy", None, None)


def _message(pad: int, body: bytes = b"") -> bytes:
    lines = [HEAD.rstrip(b"\r\n")]
    lines += [b"X-Pad-%05d: %s" % (i, b"p" * 86) for i in range(pad // 100)]
    lines += [b"Content-Length: %d" % len(body), b"", b""]
    return b"\r\n".join(lines) + body


def _items(chunks: list[bytes]) -> list[Received | Dropped]:
    async def run() -> list[Received | Dropped]:
        flow = SipFlow("tcp", ("127.0.0.1", 5060), WireLog(False))
        protocol = _StreamProtocol(flow)
        for chunk in chunks:
            protocol.data_received(chunk)
        out: list[Received | Dropped] = []
        while not flow.inbox.empty():
            item = flow.inbox.get_nowait()
            assert isinstance(item, Received | Dropped)
            out.append(item)
        return out

    return asyncio.run(run())


def _chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("chunk", [1, 1000, 65536, 1 << 20])
def test_oversized_message_is_reported_with_its_size_whatever_the_chunking(chunk: int) -> None:
    small = _message(0)
    # No body: the framer resynchronises on the next start line at the beginning of a line.
    big = _message(MAX_HEADER_BYTES + 5000)
    stream = small + big + small
    if chunk == 1:
        # Byte by byte, a message whose headers have not ended yet when the next one comes.
        stream = small + big[:70000] + b"\r\n" + small
    items = _items(_chunked(stream, chunk))
    kinds = [type(i).__name__ for i in items]
    assert kinds == ["Received", "Dropped", "Received"], kinds
    dropped = items[1]
    assert isinstance(dropped, Dropped)
    assert (dropped.status, dropped.branch, dropped.cseq_method) == (200, "z9hG4bKabc", "OPTIONS")
    if chunk == 1:
        # Dropped as soon as the limit was passed: a lower bound.
        assert dropped.at_least and dropped.size == MAX_HEADER_BYTES + 1
    elif chunk >= len(big):
        assert not dropped.at_least and dropped.size == len(big)
    assert "was dropped" in dropped.describe()


def test_body_larger_than_the_limit_is_reported() -> None:
    header = _message(0).replace(b"Content-Length: 0", b"Content-Length: 99999999")
    items = _items([header, b"x" * 1000])
    assert len(items) == 1 and isinstance(items[0], Dropped)
    assert items[0].size == len(header) + 99999999
    assert "body is larger" in items[0].why


def test_a_long_body_is_not_copied_and_the_next_message_still_arrives() -> None:
    body = b"b" * (MAX_HEADER_BYTES * 3)
    message = _message(0, body=body)
    items = _items([*_chunked(message + _message(0), 4096)])
    assert [type(i).__name__ for i in items] == ["Received", "Received"]
    first = items[0]
    assert isinstance(first, Received) and first.message.body == body
