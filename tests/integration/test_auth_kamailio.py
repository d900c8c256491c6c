"""Digest authentication against a real registrar: Kamailio 5.x with
tests/fixtures/capture-recipes/kamailio-registrar.cfg (in-memory usrloc, one shared password),
started here on 127.0.0.1 at a free UDP port and stopped by PID.

REGISTERs go out over a plain UDP socket; ``AuthState`` / ``DigestSession`` answer the 401.
Kamailio's auth module checks our response, so a 200 proves the digest (qop=auth with nc and
cnonce, and the RFC 2069 form when the challenge has no qop) matches an independent
implementation; a wrong password must get a second 401 that ``AuthState`` calls
"wrong_credentials".
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from siptool.errors import ParseError
from siptool.sip.auth import AuthState, DigestCredentials, parse_challenge
from siptool.sip.message import SipMessage, parse_message
from tests.conftest import FIXTURES
from tests.peers import require_tool

pytestmark = pytest.mark.peer

HOST = "127.0.0.1"
CONFIG = FIXTURES / "capture-recipes" / "kamailio-registrar.cfg"
PASSWORD = "s3cret-for-tests"


@dataclass
class Registrar:
    pid: int
    port: int
    log: Path
    qop: bool

    @property
    def address(self) -> tuple[str, int]:
        return HOST, self.port


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
    return port


def _options(sock: socket.socket, port: int) -> bytes:
    local_port = sock.getsockname()[1]
    return (
        f"OPTIONS sip:ping@{HOST}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:{local_port};branch=z9hG4bK{secrets.token_hex(6)}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@{HOST}>;tag={secrets.token_hex(4)}\r\n"
        f"To: <sip:ping@{HOST}>\r\n"
        f"Call-ID: {secrets.token_hex(8)}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def _wait_until_answering(process: subprocess.Popen[bytes], log: Path, port: int) -> None:
    deadline = time.monotonic() + 15
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(0.2)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:]
                pytest.fail(f"kamailio exited with {process.returncode}:\n{tail}")
            sock.sendto(_options(sock, port), (HOST, port))
            with contextlib.suppress(TimeoutError, ConnectionRefusedError):
                data, _ = sock.recvfrom(65535)
                if parse_message(data).status == 200:
                    return
    pytest.fail("kamailio did not answer OPTIONS within 15 s")


@pytest.fixture(scope="module", params=[True, False], ids=["qop-auth", "no-qop"])
def registrar(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registrar]:
    binary = require_tool("kamailio", "kamailio")
    if not CONFIG.exists():
        pytest.fail(f"{CONFIG} is missing")
    qop: bool = request.param
    work = tmp_path_factory.mktemp("kamailio")
    port = _free_udp_port()
    log = work / "kamailio.log"
    argv = [
        binary,
        "-f",
        str(CONFIG),
        "-DD",  # stay in the foreground: the PID we hold is the main process
        "-E",
        "-Y",
        str(work),
        "-P",
        str(work / "kamailio.pid"),
        "-m",
        "32",
        "-M",
        "4",
        "-l",
        f"udp:{HOST}:{port}",
        "-A",
        f'AUTH_PASSWORD="{PASSWORD}"',
        "-A",
        f'AUTH_QOP="{1 if qop else 0}"',
    ]
    with log.open("wb") as out:
        # Its own process group: Kamailio's children are found by that group id at teardown.
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_until_answering(process, log, port)
        yield Registrar(process.pid, port, log, qop)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the main process; then SIGKILL whatever is left of its process group.

    Under load, children that got the main process's SIGTERM have been seen to hang on a
    shared-memory lock after the main process exited, orphaned; the group (created for this
    process alone by start_new_session) catches them.
    """
    group = process.pid  # start_new_session: the main process leads its own group
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)


class Client:
    """One UDP socket sending REGISTERs for one AOR, CSeq counting up (RFC 3261 §10.2.4)."""

    def __init__(self, registrar: Registrar, user: str) -> None:
        self.registrar = registrar
        self.user = user
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.local_port: int = self.sock.getsockname()[1]
        self.call_id = secrets.token_hex(8)
        self.tag = secrets.token_hex(4)
        self.cseq = 0

    def close(self) -> None:
        self.sock.close()

    def register(self, expires: int = 60) -> SipMessage:
        self.cseq += 1
        port = self.registrar.port
        request = SipMessage.request("REGISTER", f"sip:{HOST}:{port}")
        # RFC 3261 §22.2: the retry is a new request (new branch, CSeq + 1), same Call-ID.
        request.add_header(
            "Via",
            f"SIP/2.0/UDP {HOST}:{self.local_port};branch=z9hG4bK{secrets.token_hex(8)};rport",
        )
        request.add_header("Max-Forwards", "70")
        request.add_header("From", f"<sip:{self.user}@{HOST}>;tag={self.tag}")
        request.add_header("To", f"<sip:{self.user}@{HOST}>")
        request.add_header("Call-ID", self.call_id)
        request.add_header("CSeq", f"{self.cseq} REGISTER")
        request.add_header("Contact", f"<sip:{self.user}@{HOST}:{self.local_port}>")
        request.add_header("Expires", str(expires))
        request.add_header("Content-Length", "0")
        return request

    def exchange(self, request: SipMessage, timeout: float = 5.0) -> SipMessage:
        """Send (resending every 0.5 s, RFC 3261 §17.1.2.2 style) until our final response."""
        wire = request.serialize()
        self.sock.settimeout(0.5)
        deadline = time.monotonic() + timeout
        cseq = request.cseq
        assert cseq is not None
        while time.monotonic() < deadline:
            self.sock.sendto(wire, self.registrar.address)
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            try:
                response = parse_message(data)
            except ParseError:
                continue
            got = response.cseq
            if got is not None and got.seq == cseq.seq and (response.status or 0) >= 200:
                return response
        raise AssertionError(f"no final response to CSeq {cseq} within {timeout} s")


@pytest.fixture
def client(registrar: Registrar) -> Iterator[Client]:
    c = Client(registrar, f"u{secrets.token_hex(3)}")
    yield c
    c.close()


def test_first_register_is_challenged_as_configured(client: Client, registrar: Registrar) -> None:
    response = client.exchange(client.register())
    assert response.status == 401
    value = response.header("WWW-Authenticate")
    assert value is not None
    challenge = parse_challenge(value)
    assert challenge.realm == HOST  # the config challenges for the To domain
    assert challenge.qop_options == (("auth",) if registrar.qop else ())


def test_register_with_digest_gets_200_and_binding(client: Client, registrar: Registrar) -> None:
    state = AuthState(DigestCredentials(client.user, PASSWORD))
    response = client.exchange(client.register())
    assert response.status == 401
    assert state.on_challenge(response) == "retry"
    retry = client.register()
    state.apply(retry)
    response = client.exchange(retry)
    assert response.status == 200, f"{response.status} {response.reason}"
    assert any(f":{client.local_port}" in str(c.uri) for c in response.contacts)
    report = state.report().to_dict()
    assert report == {
        "scheme": "Digest",
        "algorithm": "MD5",
        "qop": "auth" if registrar.qop else None,
        "rounds": 1,
    }


def test_reused_nonce_with_next_nc_is_accepted(client: Client, registrar: Registrar) -> None:
    state = AuthState(DigestCredentials(client.user, PASSWORD))
    state.on_challenge(client.exchange(client.register()))
    first = client.register()
    state.apply(first)
    assert client.exchange(first).status == 200
    # A refresh answering the cached challenge pre-emptively (nc=00000002 with qop).
    state.restart()
    refresh = client.register()
    state.apply(refresh)
    authorization = refresh.header("Authorization") or ""
    if registrar.qop:
        assert "nc=00000002" in authorization
    response = client.exchange(refresh)
    assert response.status == 200, f"{response.status} {response.reason}"


def test_wrong_password_is_reported_not_looped(client: Client) -> None:
    state = AuthState(DigestCredentials(client.user, "not-the-password"))
    assert state.on_challenge(client.exchange(client.register())) == "retry"
    retry = client.register()
    state.apply(retry)
    response = client.exchange(retry)
    assert response.status == 401
    assert state.on_challenge(response) == "wrong_credentials"
    assert state.report().rounds == 1
