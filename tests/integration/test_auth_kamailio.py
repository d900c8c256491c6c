"""Digest authentication against a real registrar: Kamailio 5.x with
tests/fixtures/capture-recipes/kamailio-registrar.cfg (in-memory usrloc, one shared password),
on 127.0.0.1 at a free UDP port: the session's (tests/support/fixtures.py), and one started here
whose challenge has no qop.

REGISTERs go out over a plain UDP socket; ``AuthState`` / ``DigestSession`` answer the 401.
Kamailio's auth module checks our response, so a 200 proves the digest (qop=auth with nc and
cnonce, and the RFC 2069 form when the challenge has no qop) matches an independent
implementation; a wrong password must get a second 401 that ``AuthState`` calls
"wrong_credentials".
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from siptool.errors import ParseError
from siptool.sip.auth import AuthState, DigestCredentials, parse_challenge
from siptool.sip.message import SipMessage, parse_message
from tests.support.kamailio import PASSWORD, Kamailio, start_kamailio

pytestmark = pytest.mark.peer

HOST = "127.0.0.1"


@dataclass
class Registrar:
    kamailio: Kamailio
    qop: bool

    @property
    def port(self) -> int:
        return self.kamailio.udp

    @property
    def address(self) -> tuple[str, int]:
        return HOST, self.port


@pytest.fixture(scope="module", params=[True, False], ids=["qop-auth", "no-qop"])
def registrar(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registrar]:
    """The session's Kamailio challenges with qop=auth; one without qop is started here."""
    if request.param:
        yield Registrar(request.getfixturevalue("kamailio"), qop=True)
        return
    kamailio = start_kamailio(tmp_path_factory.mktemp("kamailio"), qop=False)
    try:
        yield Registrar(kamailio, qop=False)
    finally:
        kamailio.stop()


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
