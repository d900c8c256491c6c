"""A hostile peer's answer that siptool cannot take (headers over the stream framer's limit,
a datagram that does not parse) is never "no answer before the timeout" in silence: when it
plainly answers the request (its top Via branch and CSeq method) the check fails at once
naming the message and its size; otherwise the timeout names it.  UDP has no limit of its
own below the datagram size: a 60 KB answer is taken.  The peers are small Python responders
on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from siptool.net.sip_transport import MAX_HEADER_BYTES
from siptool.sip.message import SipMessage, parse_message

Answer = Callable[[SipMessage], bytes]


def response(request: SipMessage, *, pad: int = 0, branch: str | None = None) -> bytes:
    """A 200 OK to ``request`` with ``pad`` bytes of extra headers (lines of 100 bytes)."""
    vias = request.header_values("Via")
    if branch is not None:
        vias = [vias[0].replace("branch=", f"branch={branch}"), *vias[1:]]
    lines = ["SIP/2.0 200 OK", *(f"Via: {v}" for v in vias)]
    lines += [f"{n}: {request.header(n)}" for n in ("From", "To", "Call-ID", "CSeq")]
    lines += [f"X-Pad-{i:05d}: {'p' * 86}" for i in range(pad // 100)]
    lines += ["Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode()


def siptool(*args: str, timeout: float = 30) -> tuple[float, int, dict[str, Any], str]:
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "siptool", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "SIPTOOL_PASSWORD": "secret"},
    )
    assert "Traceback" not in result.stderr, result.stderr
    return time.monotonic() - start, result.returncode, json.loads(result.stdout), result.stderr


def _serve_udp(sock: socket.socket, answer: Answer, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            data, peer = sock.recvfrom(65535)
        except TimeoutError:
            continue
        except OSError:
            return
        sock.sendto(answer(parse_message(data)), peer)


def _serve_tcp(sock: socket.socket, answer: Answer, stop: threading.Event) -> None:
    conns = []
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except TimeoutError:
            continue
        except OSError:
            break
        conns.append(conn)
        conn.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65535)
            if not chunk:
                break
            data += chunk
        if data:
            conn.sendall(answer(parse_message(data)))  # and keep the connection open
    for conn in conns:
        conn.close()


@pytest.fixture
def hostile() -> Iterator[Callable[[str, Answer], int]]:
    """``hostile(transport, answer)`` starts a responder on loopback and returns its port."""
    stop = threading.Event()
    started: list[tuple[threading.Thread, socket.socket]] = []

    def start(transport: str, answer: Answer) -> int:
        kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
        sock = socket.socket(socket.AF_INET, kind)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.2)
        if transport == "tcp":
            sock.listen()
        serve = _serve_udp if transport == "udp" else _serve_tcp
        thread = threading.Thread(target=serve, args=(sock, answer, stop), daemon=True)
        thread.start()
        started.append((thread, sock))
        return int(sock.getsockname()[1])

    try:
        yield start
    finally:
        stop.set()
        for thread, sock in started:
            thread.join(5)
            sock.close()


def _target(port: int, transport: str) -> str:
    return f"sip:127.0.0.1:{port}" + (";transport=tcp" if transport == "tcp" else "")


def test_oversized_answer_over_tcp_fails_at_once_naming_its_size(hostile: Any) -> None:
    pad = MAX_HEADER_BYTES + 6000
    port = hostile("tcp", lambda r: response(r, pad=pad))
    wall, code, doc, stderr = siptool(
        "options-ping", "--json", "--timeout", "5", _target(port, "tcp")
    )
    assert code == 1 and doc["ok"] is False
    target = doc["targets"][0]
    assert target["alive"] is False and target["stats"]["received"] == 0
    error = target["replies"][0]["error"]
    assert "200 OK (OPTIONS)" in error and "was dropped" in error, error
    size = int(error.split(" of ", 1)[1].split(" bytes", 1)[0])
    assert pad < size < pad + 2000, error
    assert f"limit of {MAX_HEADER_BYTES} bytes" in error
    assert "no answer before the timeout" not in error
    assert wall < 3, wall  # at once, not at --timeout 5
    assert "was dropped" in stderr
    assert [e["code"] for e in target["errors"]] == ["dropped_message"], target["errors"]


def test_oversized_answer_that_is_not_ours_is_named_at_the_timeout(hostile: Any) -> None:
    """An oversized 200 with another branch cannot be taken for the answer; the timeout
    still says a message was dropped and how large it was."""
    port = hostile("tcp", lambda r: response(r, pad=MAX_HEADER_BYTES + 100, branch="z9hG4bKother"))
    wall, code, doc, _ = siptool("options-ping", "--json", "--timeout", "1", _target(port, "tcp"))
    assert code == 1
    error = doc["targets"][0]["replies"][0]["error"]
    assert error.startswith("no answer before the timeout; a 200 OK (OPTIONS) of "), error
    assert "was dropped" in error and f"limit of {MAX_HEADER_BYTES} bytes" in error
    assert wall >= 1


def test_headers_that_never_end_are_named_with_a_lower_bound(hostile: Any) -> None:
    """No empty line at all after 70 KB of headers: the size is "more than" what came."""
    port = hostile("tcp", lambda r: response(r, pad=70000).replace(b"\r\n\r\n", b"\r\nX: y\r\n"))
    _, code, doc, _ = siptool("options-ping", "--json", "--timeout", "3", _target(port, "tcp"))
    assert code == 1
    error = doc["targets"][0]["replies"][0]["error"]
    assert "200 OK (OPTIONS) of more than " in error and "do not end within" in error, error


def test_sixty_kilobyte_answer_over_udp_is_taken(hostile: Any) -> None:
    """A datagram is read whole (up to 65,535 bytes): no header limit cuts a UDP answer."""
    port = hostile("udp", lambda r: response(r, pad=60000))
    _, code, doc, _ = siptool("options-ping", "--json", "--timeout", "3", _target(port, "udp"))
    assert code == 0, doc["errors"]
    assert doc["targets"][0]["replies"][0]["status"] == 200


def test_unparseable_answer_over_udp_fails_at_once_naming_it(hostile: Any) -> None:
    """A 200 whose header section does not parse, with our branch: the answer came and cannot
    be read; retransmitting the OPTIONS would only bring it again."""

    def broken(request: SipMessage) -> bytes:
        return response(request, pad=30000).replace(b"Content-Length: 0", b"no colon here")

    port = hostile("udp", broken)
    wall, code, doc, _ = siptool("options-ping", "--json", "--timeout", "5", _target(port, "udp"))
    assert code == 1
    error = doc["targets"][0]["replies"][0]["error"]
    assert "200 OK (OPTIONS)" in error and "was dropped: it does not parse" in error, error
    size = int(error.split(" of ", 1)[1].split(" bytes", 1)[0])
    assert 30000 < size < 32000
    assert wall < 3, wall


def test_register_and_invite_test_name_an_oversized_answer(hostile: Any) -> None:
    port = hostile("tcp", lambda r: response(r, pad=MAX_HEADER_BYTES + 100))
    target = _target(port, "tcp")
    _, code, doc, _ = siptool("register", "--json", "--user", "alice", "--timeout", "5", target)
    assert code == 1
    assert any(
        e["code"] == "dropped_message"
        and "200 OK (REGISTER)" in e["message"]
        and "was dropped" in e["message"]
        for e in doc["errors"]
    ), doc["errors"]
    wall, code, doc, _ = siptool("invite-test", "--json", "--timeout", "5", target)
    assert code == 1 and wall < 3
    assert doc["errors"][0]["code"] == "dropped_message", doc["errors"]
    assert "200 OK (INVITE)" in doc["errors"][0]["message"]
    assert any("could not be read" in w for w in doc["warnings"])
