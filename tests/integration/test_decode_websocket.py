"""`siptool decode` on SIP over WebSocket captured by tcpdump, side by side with tshark.

The peers are the ``websockets`` library as client and server on loopback (until Kamailio's
websocket module is set up for these tests): the client sends the requests SIPp sent in
tests/fixtures/captures/sip-call-sipp-uac-uas.pcap (INVITE, ACK, BYE), the server answers each
with SIPp's responses of the same CSeq, as masked client frames and unmasked server frames.
Variants add a fragmented message each way, a message over 64 KiB (a 64-bit length, its frame
split across TCP segments), two frames in one segment (TCP_CORK on the server's socket),
permessage-deflate (RFC 7692), ping and close, an upgrade without the ``sip`` subprotocol,
and a hostile server (a raw socket after a real handshake) whose frames are faulty.

tshark (tests/support/tshark_reference.py) is told the port is HTTP (``-d tcp.port==P,http``);
its websocket dissector hands ``sip`` subprotocol payloads to the SIP dissector.  Every message
is compared by (frame, position in frame): method or status, Call-ID, CSeq, From and To tags,
top Via branch, src and dst; siptool's transport is ``ws`` where tshark's last layer is TCP.

Exceptions, named where they apply (``TSHARK_MISSES``):

- tshark 4.0 shows no SIP for a fragmented WebSocket message (it dissects each fragment and
  never the reassembled message): those messages are checked against the text that was sent.
- tshark hands nothing to SIP when the upgrade named no ``sip`` subprotocol: siptool decodes
  them anyway, with a lint note (as sngrep does).

Run as a script (``python -m tests.integration.test_decode_websocket OUT.pcap``) it records
the session tests/fixtures/websocket/sip-ws-websockets.pcap was made from.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from siptool.capture import RawMessage, iter_input
from tests.support.hostile_sip import response
from tests.support.live_capture import tcpdump, wait_until_closed
from tests.support.paths import CAPTURES, FIXTURES
from tests.support.peers import require_root
from tests.support.run import siptool
from tests.support.servers import free_port
from tests.support.tshark_reference import SIP_FIELDS, tshark_messages

pytestmark = pytest.mark.peer

SIPP_CALL = CAPTURES / "sip-call-sipp-uac-uas.pcap"
# The plain captures' SIP fields (no SDP ports: the replayed bodies are not compared), with
# where each message went.
COMPARED = (*(f for f in SIP_FIELDS if f != "sdp_media_ports"), "src", "dst")
TSHARK_MISSES = {
    "fragmented": "tshark 4.0 does not reassemble a fragmented WebSocket message",
    "no-subprotocol": "tshark decodes WebSocket payloads as SIP only for the sip subprotocol",
}
BIG_BODY = 70000  # past loopback's MSS (65483): the frame spans two segments


def sipp_call() -> tuple[list[bytes], list[bytes]]:
    """SIPp's requests and responses, in the order sent."""
    found = [m for m in iter_input(SIPP_CALL.read_bytes()) if isinstance(m, RawMessage)]
    requests = [m.data for m in found if not m.data.startswith(b"SIP/2.0")]
    responses = [m.data for m in found if m.data.startswith(b"SIP/2.0")]
    return requests, responses


def cseq(message: bytes) -> bytes:
    match = re.search(rb"\r\nCSeq:\s*([^\r\n]+)", message)
    assert match, message[:80]
    return match.group(1).strip()


def big_message(template: bytes) -> bytes:
    """A MESSAGE in the BYE's dialog with a body over 64 KiB."""
    head = template.split(b"\r\n\r\n", 1)[0].decode()
    lines = [
        line for line in head.split("\r\n")[1:] if not line.lower().startswith(("cseq", "content-"))
    ]
    body = ("x" * 79 + "\n") * (BIG_BODY // 80)
    start = "MESSAGE sip:service@127.0.0.1:5070 SIP/2.0"
    tail = ["CSeq: 3 MESSAGE", "Content-Type: text/plain", f"Content-Length: {len(body)}"]
    text = "\r\n".join([start, *lines, *tail, "", body])
    return text.encode()


@dataclass
class Scenario:
    name: str
    subprotocol: bool = True
    compression: bool = False
    fragmented: bool = False  # the ACK from the client, the INVITE's 200 from the server
    big: bool = False
    cork: bool = False  # the INVITE's 180 and 200 in one TCP segment
    sent_fragmented: list[bytes] = field(default_factory=list)


SCENARIOS = [
    Scenario("plain"),
    Scenario("fragmented", fragmented=True),
    Scenario("big-and-corked", big=True, cork=True),
    Scenario("deflate", compression=True),
    Scenario("no-subprotocol", subprotocol=False),
]


def _chunks(text: str) -> list[str]:
    return [text[:100], text[100:250], text[250:]]


async def _serve(ws: Any, scenario: Scenario, responses: list[bytes]) -> None:
    async for incoming in ws:
        request = incoming.encode() if isinstance(incoming, str) else incoming
        if request.startswith(b"ACK"):
            continue
        answers = [r for r in responses if cseq(r) == cseq(request)]
        if request.startswith(b"MESSAGE"):
            answers = [response(request, 200, "OK")]
        sock = ws.transport.get_extra_info("socket")
        if scenario.cork:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        for answer in answers:
            text = answer.decode()
            if scenario.fragmented and text.startswith("SIP/2.0 200") and b"INVITE" in cseq(answer):
                scenario.sent_fragmented.append(answer)
                await ws.send(_chunks(text))
            else:
                await ws.send(text)
        if scenario.cork:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)


async def session(port: int, scenario: Scenario) -> None:
    """One call over WebSocket between the ``websockets`` client and server on loopback."""
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    requests, responses = sipp_call()
    if scenario.big:
        requests.append(big_message(requests[-1]))
    protocols = ["sip"] if scenario.subprotocol else None
    compression = "deflate" if scenario.compression else None

    async def handler(ws: Any) -> None:
        await _serve(ws, scenario, responses)

    async with serve(handler, "127.0.0.1", port, subprotocols=protocols, compression=compression):
        uri = f"ws://127.0.0.1:{port}/"
        async with connect(uri, subprotocols=protocols, compression=compression) as ws:
            for request in requests:
                text = request.decode()
                if scenario.fragmented and text.startswith("ACK"):
                    scenario.sent_fragmented.append(request)
                    await ws.send(_chunks(text))
                else:
                    await ws.send(text)
                expected = 0 if text.startswith("ACK") else 1
                expected += text.startswith("INVITE")
                for _ in range(expected):
                    await asyncio.wait_for(ws.recv(), 5)
            await ws.ping()
            await ws.close(1000, "call over")


def record(path: Path, scenario: Scenario) -> int:
    """tcpdump on loopback around one session; the server's port."""
    require_root()
    port = free_port("tcp")
    with tcpdump("lo", [port], path):
        asyncio.run(asyncio.wait_for(session(port, scenario), 30))
        wait_until_closed(path, 1)
    return port


def decode_jsonl(path: Path, *extra: str) -> tuple[int, list[dict[str, Any]], dict[str, Any], str]:
    done = siptool("decode", "--jsonl", *extra, str(path), timeout=120)
    objects = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    *messages, summary = objects
    return done.returncode, messages, summary["summary"], done.stderr


def by_position(messages: list[dict[str, Any]]) -> Iterator[tuple[tuple[int, int], dict[str, Any]]]:
    seen: dict[int, int] = {}
    for m in messages:
        position = seen.get(m["frame"], 0)
        seen[m["frame"]] = position + 1
        yield (m["frame"], position), m


def first_line(message: dict[str, Any]) -> str:
    if message["kind"] == "request":
        return f"{message['method']} {message['request_uri']} SIP/2.0"
    return f"SIP/2.0 {message['status']} {message['reason']}"


def view(message: dict[str, Any]) -> dict[str, Any]:
    cseq_ = message.get("cseq") or {}
    return {
        "method": message["method"] if message["kind"] == "request" else None,
        "status": message["status"],
        "call_id": message["call_id"],
        "cseq_seq": cseq_.get("seq"),
        "cseq_method": cseq_.get("method"),
        "from_tag": (message.get("from") or {}).get("tag"),
        "to_tag": (message.get("to") or {}).get("tag"),
        "via_branch": (message.get("via") or [{}])[0].get("branch"),
        "src": message["src"],
        "dst": message["dst"],
    }


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_decode_agrees_with_tshark_on_a_real_websocket_session(
    tmp_path: Path, scenario: Scenario
) -> None:
    path = tmp_path / f"{scenario.name}.pcap"
    port = record(path, scenario)
    code, messages, summary, stderr = decode_jsonl(path, "--lint")
    assert code == 0, stderr
    assert messages and {m["transport"] for m in messages} == {"ws"}
    expected = 6 + (2 if scenario.big else 0)
    assert summary["sip"] == expected and summary["invalid"] == 0
    streams = summary["websocket"]
    assert sorted(s["role"] for s in streams) == ["client", "server"]
    assert {(s["close"] or {}).get("code") for s in streams} == {1000}
    theirs = {
        (t["frame"], t["position"]): t for t in tshark_messages(path, [f"tcp.port=={port},http"])
    }
    ours = dict(by_position(messages))
    missed = {k for k in ours if k not in theirs}
    assert not {k for k in theirs if k not in ours}, "tshark finds a message siptool does not"
    for key in sorted(set(ours) & set(theirs)):
        mine, t = view(ours[key]), theirs[key]
        assert t["transport"] == "tcp"
        assert {f: mine[f] for f in COMPARED} == {f: t[f] for f in COMPARED}, key
    notes = [w["code"] for m in messages for w in m["lint"] or []]
    if scenario.name == "no-subprotocol":
        assert not theirs, TSHARK_MISSES["no-subprotocol"]
        assert notes.count("websocket-subprotocol") == len(messages)
        return
    assert "websocket-subprotocol" not in notes
    if scenario.fragmented:
        # TSHARK_MISSES["fragmented"]: these two are checked against what was sent.
        got = [m for k, m in ours.items() if k in missed]
        sent = sorted(t.split(b"\r\n", 1)[0].decode() for t in scenario.sent_fragmented)
        assert sorted(first_line(m) for m in got) == sent and len(sent) == 2
    else:
        assert not missed, f"siptool finds messages tshark does not: {sorted(missed)}"
    if scenario.big:
        big = [m for m in messages if m["method"] == "MESSAGE"]
        assert len(big) == 1 and len(big[0]["body"]) >= BIG_BODY - 80


FIXTURE = FIXTURES / "websocket" / "sip-ws-websockets.pcap"


def test_the_committed_fixture_agrees_with_tshark() -> None:
    """The fixture the unit tests read (made by ``main`` below): corked frames, a fragmented
    ACK and a fragmented 200 (TSHARK_MISSES["fragmented"]), ping, pong and close."""
    code, messages, summary, stderr = decode_jsonl(FIXTURE)
    assert code == 0, stderr
    server = next(s for s in summary["websocket"] if s["role"] == "server")
    port = server["src"].rsplit(":", 1)[1]
    theirs = {
        (t["frame"], t["position"]): t for t in tshark_messages(FIXTURE, [f"tcp.port=={port},http"])
    }
    ours = dict(by_position(messages))
    assert set(theirs) < set(ours) and len(ours) - len(theirs) == 2
    for key, t in theirs.items():
        assert {f: view(ours[key])[f] for f in COMPARED} == {f: t[f] for f in COMPARED}, key
    missed = sorted(first_line(m) for k, m in ours.items() if k not in theirs)
    assert missed == ["ACK sip:service@127.0.0.1:5070 SIP/2.0", "SIP/2.0 200 OK"]


# -- a hostile server --------------------------------------------------------------------------

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3


def _frame(payload: bytes, opcode: int = 1, *, key: bytes | None = None, length: int = -1) -> bytes:
    from siptool.capture.websocket import unmask

    size = len(payload) if length < 0 else length
    head = bytes([0x80 | opcode])
    mask = 0x80 if key else 0
    if size > 0xFFFF:
        head += bytes([mask | 127]) + size.to_bytes(8, "big")
    elif size > 125:
        head += bytes([mask | 126]) + size.to_bytes(2, "big")
    else:
        head += bytes([mask | size])
    return head + key + unmask(payload, key) if key else head + payload


def hostile_frames(invite: bytes) -> tuple[bytes, list[str]]:
    """What the hostile server sends after the INVITE, and the faults decode must name."""
    ringing = response(invite, 180, "Ringing")
    ok = response(invite, 200, "OK")
    data = (
        _frame(ringing, 2)  # SIP in a binary frame: allowed (RFC 7118 §5)
        + _frame(b"hello, this is not SIP")
        + _frame(ok, key=b"\x01\x02\x03\x04")  # a server must not mask
        + _frame(b"junk", length=1 << 40)  # a length that lies
        + _frame(ok)
        + _frame((1011).to_bytes(2, "big") + b"server melted", 8)  # mid-transaction
        + _frame(ok)[:60]  # cut by the end of the connection
    )
    faults = [
        "text message of 22 bytes is not SIP",
        "server frame masked",
        f"frame announces {1 << 40} bytes, more than the 16 MiB cap",
        "frame cut short: 60 of",
    ]
    return data, faults


def _hostile_server(listener: socket.socket, invite_seen: list[bytes], data: bytes) -> None:
    import base64
    import hashlib

    conn, _ = listener.accept()
    with conn:
        conn.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            assert chunk, "the client closed during the handshake"
            head += chunk
        key = re.search(rb"Sec-WebSocket-Key:\s*(\S+)", head, re.IGNORECASE)
        assert key
        accept = base64.b64encode(hashlib.sha1(key.group(1) + _GUID.encode()).digest())
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\nSec-WebSocket-Protocol: sip\r\n\r\n"
        )
        invite_seen.append(conn.recv(65536))
        conn.sendall(data)


async def hostile_session(port: int, listener: socket.socket, invite: bytes) -> None:
    import threading

    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    data, _ = hostile_frames(invite)
    seen: list[bytes] = []
    thread = threading.Thread(target=_hostile_server, args=(listener, seen, data), daemon=True)
    thread.start()
    async with connect(f"ws://127.0.0.1:{port}/", subprotocols=["sip"], compression=None) as ws:
        await ws.send(invite.decode())
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            for _ in range(10):
                await asyncio.wait_for(ws.recv(), 5)
    thread.join(10)
    assert seen, "the hostile server never read the INVITE"


def test_a_hostile_server_s_faults_are_each_named_and_the_rest_decoded(tmp_path: Path) -> None:
    require_root()
    invite = sipp_call()[0][0]
    path = tmp_path / "hostile.pcap"
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    with listener, tcpdump("lo", [port], path):
        asyncio.run(asyncio.wait_for(hostile_session(port, listener, invite), 30))
        wait_until_closed(path, 1)
    code, messages, summary, stderr = decode_jsonl(path)
    assert code == 1 and "Traceback" not in stderr
    assert [first_line(m) for m in messages] == [
        "INVITE sip:service@127.0.0.1:5070 SIP/2.0",
        "SIP/2.0 180 Ringing",
        "SIP/2.0 200 OK",
        "SIP/2.0 200 OK",
    ]
    lines = stderr.strip().splitlines()
    _, faults = hostile_frames(invite)
    assert len(lines) == len(faults) == summary["invalid"], stderr
    for line, fault in zip(lines, faults, strict=True):
        assert re.search(r": packet \d+: SIP over WebSocket .* stream byte \d+: ", line), line
        assert fault in line, (fault, line)
    server = next(s for s in summary["websocket"] if s["role"] == "server")
    assert server["close"]["code"] == 1011 and server["close"]["reason"] == "server melted"
    assert server["problems"] == len(faults) and server["messages"] == 3
    # tshark's view of the same bytes: every message it finds, siptool finds in that frame.
    theirs = tshark_messages(path, [f"tcp.port=={port},http"])
    assert theirs, "tshark finds no SIP in the hostile session"
    ours = {(m["frame"], first_line(m)) for m in messages}
    for t in theirs:
        line = f"{t['method']} " if t["method"] else f"SIP/2.0 {t['status']}"
        assert any(f == t["frame"] and text.startswith(line) for f, text in ours), t


def main() -> None:
    """Record the fixture session: ``python -m tests.integration.test_decode_websocket OUT``."""
    record(Path(sys.argv[1]), Scenario("fixture", fragmented=True, cork=True))


if __name__ == "__main__":
    main()
