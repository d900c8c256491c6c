"""Ctrl-C during `siptool register`: the binding the registrar may already hold is taken back
(REGISTER with the same Call-ID, the next CSeq and Expires: 0, RFC 3261 §10.2.2), answering a
digest challenge if one comes, within about a second; then "interrupted" and exit 130.

The registrar is a scripted peer on loopback that never answers the registration itself, so
the interruption always lands while a REGISTER is in flight."""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass

import pytest

from tests.support.hostile_sip import HostileUas, hostile_peer, response
from tests.support.run import spawn

REALM = "pbx.test"
NONCE = "4f1c0e2d"
PASSWORD = "interrupt-secret"


@dataclass
class Request:
    start: str
    headers: dict[str, list[str]]

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), [""])[0]

    @property
    def cseq(self) -> str:
        return self.header("cseq")

    @property
    def unregisters(self) -> bool:
        return self.header("expires") == "0" and ";expires=0" in self.header("contact")


def parse(data: bytes) -> Request:
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace").split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return Request(head[0], headers)


class Registrar:
    """Answers nothing to a registration; 401 to one without credentials when ``challenge``;
    200 to the REGISTER that removes a binding unless ``answer_removal`` is False."""

    def __init__(self, *, challenge: bool, answer_removal: bool = True) -> None:
        self.challenge = challenge
        self.answer_removal = answer_removal
        self.requests: list[Request] = []
        self.lock = threading.Lock()

    def __call__(self, data: bytes, peer: HostileUas) -> list[tuple[float, bytes]]:
        request = parse(data)
        if not request.start.startswith("REGISTER "):
            return []
        with self.lock:
            self.requests.append(request)
        if self.challenge and not request.header("authorization"):
            www = f'WWW-Authenticate: Digest realm="{REALM}", nonce="{NONCE}", qop="auth"'
            return [(0.0, response(data, 401, "Unauthorized", [www]))]
        if request.unregisters and self.answer_removal:
            return [(0.0, response(data, 200, "OK"))]
        return []

    def wait_for(self, count: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len({r.cseq for r in self.requests}) >= count:
                    return
            time.sleep(0.02)
        pytest.fail(f"siptool sent fewer than {count} REGISTERs: {self.requests}")


@dataclass
class Interrupted:
    code: int
    stderr: str
    stdout: str
    seconds: float  # from SIGINT to exit


def interrupt(registrar: Registrar, *args: str, after: int) -> Interrupted:
    """Run ``siptool register ARGS`` against ``registrar``; SIGINT it once ``after``
    REGISTERs (told apart by CSeq) have arrived."""
    with hostile_peer(registrar) as peer:
        argv = ["register", "--timeout", "30", "--user", "alice", *args, peer.uri("alice")]
        process = spawn(*argv, env={"SIPTOOL_PASSWORD": PASSWORD})
        try:
            registrar.wait_for(after)
            time.sleep(0.1)  # the request is in flight, its answer awaited
            sent = time.monotonic()
            process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=20)
            seconds = time.monotonic() - sent
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert "Traceback" not in stderr, stderr
    return Interrupted(process.returncode, stderr, stdout, seconds)


def _removals(registrar: Registrar) -> list[Request]:
    return [r for r in registrar.requests if r.unregisters]


def test_ctrl_c_while_registering_removes_our_binding_then_exits_130() -> None:
    registrar = Registrar(challenge=False)
    run = interrupt(registrar, after=1)
    assert run.code == 130, run.stderr
    assert run.stderr == "siptool register: interrupted\n"
    assert run.stdout == ""
    first = registrar.requests[0]
    removals = _removals(registrar)
    assert removals, registrar.requests
    removal = removals[0]
    # RFC 3261 §10.2.4 / §10.3 step 7: same Call-ID, a higher CSeq, the same Contact URI.
    assert removal.header("call-id") == first.header("call-id")
    assert first.cseq == "1 REGISTER" and removal.cseq == "2 REGISTER"
    assert removal.header("contact").split(";")[0] == first.header("contact").split(";")[0]
    assert ";expires=300" in first.header("contact")
    assert run.seconds < 3, run.seconds


def test_ctrl_c_after_a_challenge_removes_the_binding_with_credentials() -> None:
    registrar = Registrar(challenge=True)
    # CSeq 1 is challenged, CSeq 2 (with credentials) is never answered.
    run = interrupt(registrar, after=2)
    assert run.code == 130 and run.stderr == "siptool register: interrupted\n"
    removal = _removals(registrar)[0]
    assert removal.cseq == "3 REGISTER"
    authorization = removal.header("authorization")
    assert f'realm="{REALM}"' in authorization and f'nonce="{NONCE}"' in authorization
    assert "nc=00000002" in authorization  # the cached challenge answered once more
    assert PASSWORD not in authorization


def test_ctrl_c_with_a_silent_registrar_still_exits_within_the_bound() -> None:
    registrar = Registrar(challenge=False, answer_removal=False)
    run = interrupt(registrar, after=1)
    assert run.code == 130 and run.stderr == "siptool register: interrupted\n"
    assert _removals(registrar), registrar.requests  # it was tried
    assert 0.9 < run.seconds < 3, run.seconds  # waited for its answer about a second, no more


@pytest.mark.parametrize("mode", ["--query", "--unregister", "--unregister-all"])
def test_ctrl_c_when_nothing_was_bound_sends_nothing_more(mode: str) -> None:
    registrar = Registrar(challenge=False, answer_removal=False)
    run = interrupt(registrar, mode, after=1)
    assert run.code == 130 and run.stderr == "siptool register: interrupted\n"
    assert {r.cseq for r in registrar.requests} == {"1 REGISTER"}  # retransmissions only
