"""SIP over WebSocket in captures (RFC 7118, RFC 6455): the upgrade, the frames, the faults.

The framer is fed directly, then whole synthetic captures go through ``iter_input`` and the
decode command; tests/fixtures/websocket/ holds a real session (the ``websockets``
library, tcpdump on loopback), read here as decode reads it.
"""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest

from siptool.capture import Problem, RawMessage, iter_input
from siptool.capture.extract import PacketExtractor, iter_capture
from siptool.capture.websocket import (
    Upgrade,
    WebSocketClose,
    WebSocketFramer,
    is_http_start,
    sip_frame_at,
    unmask,
    upgrade_head,
)
from siptool.commands.decode import DecodedMessage, DecodeOptions, run_decode
from siptool.sip.framing import FramingError
from tests.support.captures import (
    ACK,
    SYN,
    ether,
    ipv4,
    pcap_file,
    problems,
    raw,
    sdp,
    sip_request,
    sip_response,
    tcp,
)
from tests.support.paths import FIXTURES

KEY = b"\x37\xfa\x21\x3d"
INVITE = sip_request("INVITE", "ws-1@example.com", sdp(4), cseq=1)
RINGING = sip_response(180, "ws-1@example.com", method="INVITE", cseq=1)
OK = sip_response(200, "ws-1@example.com", sdp(3), method="INVITE", cseq=1)
BYE = sip_request("BYE", "ws-1@example.com", cseq=2)

GET = (
    b"GET / HTTP/1.1\r\nHost: 192.0.2.2:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: sip\r\n\r\n"
)
SWITCHED = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: sip\r\n\r\n"
)
CLIENT, SERVER = ("192.0.2.1", 40000), ("192.0.2.2", 8080)


def frame(
    payload: bytes,
    opcode: int = 1,
    *,
    fin: bool = True,
    key: bytes | None = None,
    rsv: int = 0,
    length: int | None = None,
    form: int = 0,
) -> bytes:
    """One RFC 6455 frame; ``form`` 16 or 64 forces that length encoding, ``length`` lies."""
    size = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    mask = 0x80 if key is not None else 0
    if form == 64 or size > 0xFFFF:
        head += bytes([mask | 127]) + struct.pack("!Q", size)
    elif form == 16 or size > 125:
        head += bytes([mask | 126]) + struct.pack("!H", size)
    else:
        head += bytes([mask | size])
    if key is not None:
        return head + key + unmask(payload, key)
    return head + payload


def feed(framer: WebSocketFramer, data: bytes, step: int = 0) -> list[object]:
    out: list[object] = []
    if step:
        for i in range(0, len(data), step):
            out.extend(framer.feed_with_offsets(data[i : i + step]))
    else:
        out.extend(framer.feed_with_offsets(data))
    return out


def messages(items: Sequence[object]) -> list[bytes]:
    return [item[1] for item in items if isinstance(item, tuple)]


def errors(items: Sequence[object]) -> list[FramingError]:
    return [item for item in items if isinstance(item, FramingError)]


# -- the opening handshake ---------------------------------------------------------------------


def test_the_client_get_and_the_server_101_are_read() -> None:
    assert is_http_start(GET) and is_http_start(SWITCHED)
    assert not is_http_start(INVITE) and not is_http_start(b"\x16\x03\x01")
    client = upgrade_head(GET + b"\x81\x05")
    assert client == Upgrade(True, None, True, ("sip",), False, len(GET))
    server = upgrade_head(SWITCHED)
    assert server == Upgrade(False, 101, True, ("sip",), False, len(SWITCHED))
    assert client.sip and server.sip


def test_a_head_still_arriving_waits_and_one_too_long_is_no_upgrade() -> None:
    assert upgrade_head(GET[:-2]) is None
    long = b"GET / HTTP/1.1\r\nX: " + b"a" * 20000
    found = upgrade_head(long)
    assert found is not None and not found.websocket and found.size == -1


def test_subprotocols_extensions_and_refusals() -> None:
    offered = GET.replace(b"Protocol: sip", b"Protocol: chat, SIP").replace(
        b"\r\n\r\n",
        b"\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
    )
    up = upgrade_head(offered)
    assert up is not None and up.subprotocols == ("chat", "SIP") and up.sip and up.deflate
    refused = upgrade_head(b"HTTP/1.1 403 Forbidden\r\nUpgrade: websocket\r\n\r\n")
    assert refused is not None and refused.status == 403 and not refused.websocket
    plain = upgrade_head(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
    assert plain is not None and not plain.websocket and not plain.sip


# -- frames ------------------------------------------------------------------------------------


def test_unmask_is_its_own_inverse_and_matches_rfc_6455_example() -> None:
    # RFC 6455 §5.7: a masked "Hello" from client to server.
    wire = bytes.fromhex("818537fa213d7f9f4d5158")
    assert wire == frame(b"Hello", key=KEY)
    assert unmask(unmask(INVITE, KEY), KEY) == INVITE
    assert unmask(b"", KEY) == b""


@pytest.mark.parametrize("form", [0, 16, 64])
@pytest.mark.parametrize("key", [None, KEY])
def test_each_length_form_masked_or_not_gives_the_message(form: int, key: bytes | None) -> None:
    small = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"  # a 7-bit length
    payload = small if form == 0 else INVITE
    data = frame(payload, key=key, form=form)
    framer = WebSocketFramer(masked=None)
    assert feed(framer, data) == [(0, payload)]
    assert framer.close() == []


def test_several_frames_in_one_feed_and_one_frame_byte_by_byte() -> None:
    data = frame(INVITE, key=KEY) + frame(BYE, key=KEY) + frame(INVITE, 2, key=KEY)
    for step in (0, 1, 7):
        framer = WebSocketFramer(masked=True)
        items = feed(framer, data, step)
        assert messages(items) == [INVITE, BYE, INVITE]
        offsets = [item[0] for item in items if isinstance(item, tuple)]
        second = len(frame(INVITE, key=KEY))
        assert offsets == [0, second, second + len(frame(BYE, key=KEY))]


def test_a_fragmented_message_is_reassembled_with_control_frames_between() -> None:
    data = (
        frame(OK[:100], fin=False)
        + frame(b"", 9)  # ping
        + frame(OK[100:300], 0, fin=False)
        + frame(b"", 10)  # pong
        + frame(OK[300:], 0, fin=False)
        + frame(b"", 0)  # the empty final frame the websockets library sends
    )
    framer = WebSocketFramer(masked=False)
    items = feed(framer, data, 5)
    assert items == [(0, OK)]
    assert framer.frames == 6


def test_a_close_frame_is_handed_on_with_code_and_reason() -> None:
    close = frame(struct.pack("!H", 1001) + "going away ✓".encode(), 8, key=KEY)
    items = feed(WebSocketFramer(masked=True), frame(BYE, key=KEY) + close + frame(b"", 8, key=KEY))
    assert items[0] == (0, BYE)
    assert items[1] == WebSocketClose(len(frame(BYE, key=KEY)), 1001, "going away ✓")
    assert isinstance(items[2], WebSocketClose) and items[2].code is None


def test_keep_alives_are_skipped_and_leading_crlf_trimmed() -> None:
    items = feed(WebSocketFramer(), frame(b"\r\n\r\n") + frame(b"\r\n" + BYE))
    assert items == [(len(frame(b"\r\n\r\n")), BYE)]


def test_permessage_deflate_messages_are_inflated_across_messages() -> None:
    deflater = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    data = b""
    for message in (INVITE, BYE, INVITE):
        packed = deflater.compress(message) + deflater.flush(zlib.Z_SYNC_FLUSH)
        assert packed.endswith(b"\x00\x00\xff\xff")
        data += frame(packed[:-4], key=KEY, rsv=0x40)
    items = feed(WebSocketFramer(masked=True), data, 3)
    assert messages(items) == [INVITE, BYE, INVITE] and not errors(items)


# -- faults ------------------------------------------------------------------------------------


def test_a_missing_mask_is_named_once_and_decoded_anyway() -> None:
    items = feed(WebSocketFramer(masked=True), frame(INVITE) + frame(BYE))
    assert messages(items) == [INVITE, BYE]
    (fault,) = errors(items)
    assert fault.offset == 0 and "client frame not masked" in fault.message
    assert "RFC 6455 §5.1" in fault.message
    (server,) = errors(feed(WebSocketFramer(masked=False), frame(OK, key=KEY)))
    assert "server frame masked" in server.message


def test_a_text_message_that_is_not_sip_is_named_with_its_first_bytes() -> None:
    data = frame(b'{"jsonrpc": "2.0"}') + frame(b"\x00\x01binary", 2) + frame(BYE)
    items = feed(WebSocketFramer(), data)
    assert messages(items) == [BYE]
    text, binary = errors(items)
    assert text.offset == 0 and "text message of 18 bytes is not SIP" in text.message
    assert "jsonrpc" in text.message and "binary message of 8 bytes" in binary.message


def test_a_length_beyond_the_cap_is_named_and_the_next_sip_frame_found() -> None:
    lying = frame(b"garbage", length=(1 << 40))
    data = frame(INVITE) + lying + b"\x81\x02xx junk" + frame(BYE) + frame(OK)
    framer = WebSocketFramer(max_message=1 << 20)
    items = feed(framer, data, 11)
    assert messages(items) == [INVITE, BYE, OK]
    (fault,) = errors(items)
    assert fault.offset == len(frame(INVITE))
    assert f"announces {1 << 40} bytes, more than the 1 MiB cap" in fault.message


def test_a_frame_cut_at_the_end_is_named_and_frames_inside_it_still_found() -> None:
    framer = WebSocketFramer()
    items = feed(framer, frame(INVITE) + frame(b"x" * 40, length=5000) + frame(BYE))
    assert messages(items) == [INVITE]
    end = framer.close()
    assert messages(end) == [BYE]
    (cut,) = errors(end)
    assert cut.offset == len(frame(INVITE))
    assert f"frame cut short: {len(frame(b'x' * 40, length=5000)) + len(frame(BYE))}" in cut.message
    assert "of 5004 bytes at the end of the stream" in cut.message


def test_a_truncated_frame_header_and_an_unfinished_message_at_the_end() -> None:
    framer = WebSocketFramer()
    feed(framer, frame(OK[:50], fin=False) + b"\x80")
    header, unfinished = framer.close()
    assert isinstance(header, FramingError) and "frame header cut short: 1 bytes" in header.message
    assert isinstance(unfinished, FramingError) and unfinished.offset == 0
    assert "fragmented message unfinished at the end of the stream: 50 bytes in 1 frames" in (
        unfinished.message
    )


def test_fragment_order_faults() -> None:
    data = frame(b"orphan", 0) + frame(OK[:40], fin=False) + frame(BYE) + frame(b"x", 3)
    items = feed(WebSocketFramer(), data)
    assert messages(items) == [BYE]
    orphan, dropped, reserved = errors(items)
    assert "continuation frame without a message" in orphan.message
    assert "fragmented message of 40 bytes never finished" in dropped.message
    assert "reserved opcode 3" in reserved.message


def test_a_hole_drops_the_message_in_progress_and_resynchronises() -> None:
    framer = WebSocketFramer(masked=True)
    first = frame(INVITE, key=KEY)
    items = feed(framer, first[:100])
    (hole,) = framer.lose(len(first) - 100 + 3)
    assert "bytes missing with the message in progress" in hole.message
    items = feed(framer, frame(BYE, key=KEY)[3:] + frame(BYE, key=KEY))
    assert messages(items) == [BYE]
    assert framer.stream_offset == len(first) + 3 + 2 * len(frame(BYE, key=KEY)) - 3


def test_a_fragmented_message_over_the_cap_is_dropped_until_its_last_frame() -> None:
    framer = WebSocketFramer(max_message=1000)
    data = frame(b"INVITE " + b"a" * 600, fin=False) + frame(b"b" * 600, 0, fin=False)
    data += frame(b"c", 0) + frame(BYE)
    items = feed(framer, data)
    assert messages(items) == [BYE]
    (fault,) = errors(items)
    assert "grows past 1000 bytes" in fault.message


def test_sip_frame_at_tells_sip_frames_and_waits_for_bytes() -> None:
    assert sip_frame_at(frame(INVITE, key=KEY))
    assert sip_frame_at(frame(OK))
    assert sip_frame_at(frame(b"hello world, not SIP")) is False
    assert sip_frame_at(frame(INVITE)[:6]) is None
    assert sip_frame_at(frame(b"", 9)) is False


def test_random_garbage_never_raises() -> None:
    rng = random.Random(7)
    for _ in range(300):
        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        framer = WebSocketFramer(masked=rng.choice([None, True, False]), max_message=4096)
        feed(framer, blob, rng.randrange(0, 9))
        framer.lose(rng.randrange(5))
        feed(framer, blob[::-1])
        framer.close()


# -- whole captures ----------------------------------------------------------------------------


class Session:
    """A TCP connection in a synthetic capture: each ``send`` one segment, sequence numbers
    kept per direction."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.seq = {True: 1000, False: 5000}
        self.frames.append(self._packet(True, b"", SYN))
        self.frames.append(self._packet(False, b"", SYN | ACK))
        self.seq = {True: 1001, False: 5001}

    def _packet(self, client: bool, data: bytes, flags: int = 0x18) -> bytes:
        (src, sport), (dst, dport) = (CLIENT, SERVER) if client else (SERVER, CLIENT)
        return ether(ipv4(src, dst, 6, tcp(sport, dport, self.seq[client], data, flags=flags)))

    def send(self, client: bool, data: bytes) -> int:
        self.frames.append(self._packet(client, data))
        self.seq[client] += len(data)
        return len(self.frames)

    def pcap(self) -> bytes:
        return pcap_file(self.frames)


def decode(data: bytes) -> tuple[list[RawMessage], list[Problem], PacketExtractor]:
    extractor = PacketExtractor()
    items = list(iter_capture(data, "pcap", extractor=extractor))
    return raw(items), problems(items), extractor


def test_a_session_is_read_both_ways_and_marked_ws() -> None:
    s = Session()
    s.send(True, GET)
    s.send(False, SWITCHED)
    invite = frame(INVITE, key=KEY)
    s.send(True, invite[:50])  # a frame split across segments
    s.send(True, invite[50:])
    both = s.send(False, frame(RINGING) + frame(OK))  # two frames in one segment
    s.send(True, frame(BYE, key=KEY) + frame(struct.pack("!H", 1000), 8, key=KEY))
    found, faults, extractor = decode(s.pcap())
    assert faults == []
    assert [(m.frame, m.data, m.transport, m.src) for m in found] == [
        (6, INVITE, "ws", "192.0.2.1:40000"),
        (both, RINGING, "ws", "192.0.2.2:8080"),
        (both, OK, "ws", "192.0.2.2:8080"),
        (8, BYE, "ws", "192.0.2.1:40000"),
    ]
    assert all(m.note is None for m in found)
    client, server = extractor.websockets()
    assert (client.role, client.subprotocols, client.messages) == ("client", ("sip",), 2)
    assert (client.close_frame, client.close_code) == (8, 1000)
    assert (server.role, server.messages, server.close_frame) == ("server", 2, None)
    assert client.to_dict()["close"] == {"frame": 8, "code": 1000, "reason": ""}
    assert extractor.undecoded() == []


def test_the_message_offset_is_the_record_of_its_first_packet() -> None:
    s = Session()
    s.send(True, GET)
    s.send(False, SWITCHED)
    invite = frame(INVITE, key=KEY)
    s.send(True, invite[:30])
    s.send(True, invite[30:])
    data = s.pcap()
    (message,) = decode(data)[0]
    record = 24 + sum(16 + len(f) for f in s.frames[:4])
    assert message.offset == record and message.frame == 6


def test_an_upgrade_without_sip_is_decoded_with_a_note() -> None:
    s = Session()
    s.send(True, GET.replace(b"Sec-WebSocket-Protocol: sip\r\n", b""))
    s.send(False, SWITCHED.replace(b"Sec-WebSocket-Protocol: sip\r\n", b""))
    s.send(True, frame(INVITE, key=KEY))
    s.send(False, frame(OK))
    found, faults, extractor = decode(s.pcap())
    assert faults == [] and [m.data for m in found] == [INVITE, OK]
    assert all(m.note is not None and m.note[0] == "websocket-subprotocol" for m in found)
    assert [ws.subprotocols for ws in extractor.websockets()] == [(), ()]


def test_a_capture_begun_after_the_upgrade_is_found_by_its_frames() -> None:
    s = Session()
    s.send(True, frame(INVITE, key=KEY))
    s.send(False, frame(OK))
    found, faults, extractor = decode(s.pcap())
    assert faults == [] and [(m.data, m.transport) for m in found] == [(INVITE, "ws"), (OK, "ws")]
    assert [ws.role for ws in extractor.websockets()] == [None, None]


def test_faults_name_the_packet_and_the_stream_byte_and_the_rest_is_decoded() -> None:
    s = Session()
    s.send(True, GET)
    s.send(False, SWITCHED)
    unmasked = s.send(True, frame(INVITE))  # no mask from the client
    text = s.send(False, frame(b"hello, this is not SIP"))
    s.send(False, frame(OK))
    lying = s.send(False, frame(b"xx", length=1 << 30))
    s.send(False, frame(RINGING))
    s.send(True, frame(BYE, key=KEY)[:40])  # cut by the end of the capture
    found, faults, extractor = decode(s.pcap())
    assert [m.data for m in found] == [INVITE, OK, RINGING]
    where = [(p.where, p.message.split(": ", 1)[0]) for p in faults]
    second_client = len(GET) + len(frame(INVITE))
    server_bytes = len(SWITCHED) + len(frame(b"hello, this is not SIP")) + len(frame(OK))
    assert where == [
        (
            f"packet {unmasked}",
            f"SIP over WebSocket 192.0.2.1:40000 -> 192.0.2.2:8080, stream byte {len(GET)}",
        ),
        (
            f"packet {text}",
            f"SIP over WebSocket 192.0.2.2:8080 -> 192.0.2.1:40000, stream byte {len(SWITCHED)}",
        ),
        (
            f"packet {lying}",
            f"SIP over WebSocket 192.0.2.2:8080 -> 192.0.2.1:40000, stream byte {server_bytes}",
        ),
        (
            f"packet {unmasked + 5}",
            f"SIP over WebSocket 192.0.2.1:40000 -> 192.0.2.2:8080, stream byte {second_client}",
        ),
    ]
    assert "client frame not masked" in faults[0].message
    assert "frame cut short: 40 of" in faults[3].message
    assert [ws.problems for ws in extractor.websockets()] == [2, 2]


def test_http_that_is_not_websocket_stays_undecoded_and_sip_over_tcp_is_unchanged() -> None:
    s = Session()
    s.send(True, b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
    s.send(False, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    found, faults, extractor = decode(s.pcap())
    assert found == [] and faults == [] and extractor.websockets() == []
    assert sorted(u.protocol for u in extractor.undecoded()) == ["tcp", "tcp"]
    t = Session()
    t.send(True, INVITE)
    t.send(False, OK)
    assert [m.transport for m in decode(t.pcap())[0]] == ["tcp", "tcp"]


def test_decode_counts_ws_messages_shows_the_note_and_the_summary(tmp_path: Path) -> None:
    s = Session()
    s.send(True, GET.replace(b"Sec-WebSocket-Protocol: sip\r\n", b""))
    s.send(False, SWITCHED.replace(b"Sec-WebSocket-Protocol: sip\r\n", b""))
    s.send(True, frame(INVITE, key=KEY))
    s.send(False, frame(b"not SIP at all"))
    got: list[DecodedMessage] = []
    errors_seen: list[str] = []
    path = tmp_path / "ws.pcap"
    path.write_bytes(s.pcap())
    options = DecodeOptions(str(path), lint=True)
    result = run_decode(options, got.append, lambda e: errors_seen.append(e.message))
    assert [m.raw.transport for m in got] == ["ws"]
    assert got[0].to_dict()["transport"] == "ws"
    assert "websocket-subprotocol" in [w.code for w in got[0].lint or []]
    assert result.summary.sip == 1 and result.summary.invalid == 1
    assert len(errors_seen) == 1 and "text message of 14 bytes is not SIP" in errors_seen[0]
    summary = result.summary.to_dict()
    assert [w["role"] for w in summary["websocket"]] == ["client", "server"]


# -- a real session ----------------------------------------------------------------------------

REAL = FIXTURES / "websocket" / "sip-ws-websockets.pcap"


def test_the_real_websockets_session_decodes_clean() -> None:
    """Made by tests/integration/test_decode_websocket.py's peers (the ``websockets`` library
    as client and server, the SIPp call of sip-call-sipp-uac-uas.pcap replayed over it)."""
    items = list(iter_input(REAL.read_bytes()))
    assert problems(items) == []
    found = raw(items)
    assert found and {m.transport for m in found} == {"ws"}
    starts = [m.data.split(b" ", 2)[:2] for m in found]
    assert [b"INVITE", b"sip:service@127.0.0.1:5070"] in starts


def test_the_real_session_damaged_at_random_never_raises() -> None:
    """Bytes flipped, cut and repeated in the real capture: problems, never an exception."""
    data = REAL.read_bytes()
    rng = random.Random(13)
    for _ in range(200):
        damaged = bytearray(data)
        for _ in range(rng.randrange(1, 8)):
            damaged[rng.randrange(24, len(damaged))] = rng.randrange(256)
        cut = rng.randrange(24, len(damaged) + 1)
        items = list(iter_input(bytes(damaged[:cut])))
        assert all(isinstance(item, RawMessage | Problem) for item in items)
