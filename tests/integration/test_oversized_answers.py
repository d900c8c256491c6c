"""A hostile peer's answer that siptool cannot take (headers over the stream framer's limit,
a datagram that does not parse) is never "no answer before the timeout" in silence: when it
plainly answers the request (its top Via branch and CSeq method) the check fails at once
naming the message and its size; otherwise the timeout names it.  UDP has no limit of its
own below the datagram size: a 60 KB answer is taken.  The peers are small Python responders
on loopback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from siptool.net.sip_transport import MAX_HEADER_BYTES
from tests.support.hostile_sip import HostileUas, response
from tests.support.run import siptool as run_siptool

Answer = Callable[[bytes], bytes]


def ok(request: bytes, *, pad: int = 0, branch: str | None = None) -> bytes:
    """A 200 OK to ``request`` with ``pad`` bytes of extra headers (lines of 100 bytes); with
    ``branch``, its top Via's branch is not the request's."""
    if branch is not None:
        request = request.replace(b"branch=", f"branch={branch}".encode(), 1)
    pads = [f"X-Pad-{i:05d}: {'p' * 86}" for i in range(pad // 100)]
    return response(request, 200, "OK", pads)


def siptool(*args: str, timeout: float = 30) -> tuple[float, int, dict[str, Any], str]:
    result = run_siptool(*args, timeout=timeout, env={"SIPTOOL_PASSWORD": "secret"})
    return result.seconds, result.returncode, result.doc, result.stderr


@pytest.fixture
def hostile(hostile_peers: Callable[..., HostileUas]) -> Callable[[str, Answer], int]:
    """``hostile(transport, answer)`` starts a responder on loopback and returns its port; it
    answers every request (every datagram, each connection's first message) with
    ``answer(request)``."""

    def start(transport: str, answer: Answer) -> int:
        return hostile_peers(lambda request, _: [(0.0, answer(request))], transport).port

    return start


def _target(port: int, transport: str) -> str:
    return f"sip:127.0.0.1:{port}" + (";transport=tcp" if transport == "tcp" else "")


def test_oversized_answer_over_tcp_fails_at_once_naming_its_size(hostile: Any) -> None:
    pad = MAX_HEADER_BYTES + 6000
    port = hostile("tcp", lambda r: ok(r, pad=pad))
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
    port = hostile("tcp", lambda r: ok(r, pad=MAX_HEADER_BYTES + 100, branch="z9hG4bKother"))
    wall, code, doc, _ = siptool("options-ping", "--json", "--timeout", "1", _target(port, "tcp"))
    assert code == 1
    error = doc["targets"][0]["replies"][0]["error"]
    assert error.startswith("no answer before the timeout; a 200 OK (OPTIONS) of "), error
    assert "was dropped" in error and f"limit of {MAX_HEADER_BYTES} bytes" in error
    assert wall >= 1


def test_headers_that_never_end_are_named_with_a_lower_bound(hostile: Any) -> None:
    """No empty line at all after 70 KB of headers: the size is "more than" what came."""
    port = hostile("tcp", lambda r: ok(r, pad=70000).replace(b"\r\n\r\n", b"\r\nX: y\r\n"))
    _, code, doc, _ = siptool("options-ping", "--json", "--timeout", "3", _target(port, "tcp"))
    assert code == 1
    error = doc["targets"][0]["replies"][0]["error"]
    assert "200 OK (OPTIONS) of more than " in error and "do not end within" in error, error


def test_sixty_kilobyte_answer_over_udp_is_taken(hostile: Any) -> None:
    """A datagram is read whole (up to 65,535 bytes): no header limit cuts a UDP answer."""
    port = hostile("udp", lambda r: ok(r, pad=60000))
    _, code, doc, _ = siptool("options-ping", "--json", "--timeout", "3", _target(port, "udp"))
    assert code == 0, doc["errors"]
    assert doc["targets"][0]["replies"][0]["status"] == 200


def test_unparseable_answer_over_udp_fails_at_once_naming_it(hostile: Any) -> None:
    """A 200 whose header section does not parse, with our branch: the answer came and cannot
    be read; retransmitting the OPTIONS would only bring it again."""

    def broken(request: bytes) -> bytes:
        return ok(request, pad=30000).replace(b"Content-Length: 0", b"no colon here")

    port = hostile("udp", broken)
    wall, code, doc, _ = siptool("options-ping", "--json", "--timeout", "5", _target(port, "udp"))
    assert code == 1
    error = doc["targets"][0]["replies"][0]["error"]
    assert "200 OK (OPTIONS)" in error and "was dropped: it does not parse" in error, error
    size = int(error.split(" of ", 1)[1].split(" bytes", 1)[0])
    assert 30000 < size < 32000
    assert wall < 3, wall


def test_register_and_invite_test_name_an_oversized_answer(hostile: Any) -> None:
    port = hostile("tcp", lambda r: ok(r, pad=MAX_HEADER_BYTES + 100))
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
