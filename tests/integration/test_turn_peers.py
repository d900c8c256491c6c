"""The coturn TURN servers the turn-probe tests run against (tests/support/turn_peers.py),
proved with coturn's own client, turnutils_uclient: an allocation is made and data goes
through the relay (RFC 8656) with long-term credentials (RFC 8489 §9.2) and with the TURN REST
secret, over UDP, TCP and DTLS, to an IPv6 relay and over a TCP relay (RFC 6062); wrong
credentials, the user quota (486) and a refused peer (403) fail as they should; and the relay
is freed on coturn's side when the client deallocates.

turnutils_uclient 4.6.1 cannot do TLS over TCP (it hangs in SSL_connect, coturn #376), so the
TLS listener is proved by a TLS handshake verified with the test CA and an Allocate over it
answered 401 with the realm.

Each uclient run takes 3-6 s (its own pacing), bounded at 15 s."""

from __future__ import annotations

import os
import socket
import ssl
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from siptool.stun.message import ERROR_CODE, REALM, StunClass, encode_message, parse_stun
from tests.support.kamailio import make_test_ca
from tests.support.turn_peers import (
    TurnServer,
    UclientRun,
    credentials_for,
    start_turn_server,
    uclient,
)

pytestmark = pytest.mark.peer

# uclient -y: two clients relaying to each other; -c: no RTCP allocations; 5 packets each.
PAIR = ("-y", "-c", "-n", "5")
# RFC 8656 §18: the Allocate method, REQUESTED-TRANSPORT and its UDP value (protocol 17).
ALLOCATE, REQUESTED_TRANSPORT, UDP = 0x003, 0x0019, 17


@pytest.fixture(scope="module")
def long_term(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TurnServer]:
    turn = start_turn_server(tmp_path_factory.mktemp("turn-lt"), tls=True, ipv6=True)
    try:
        yield turn
    finally:
        turn.stop()


@pytest.fixture(scope="module")
def rest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TurnServer]:
    turn = start_turn_server(tmp_path_factory.mktemp("turn-rest"), mode="rest-secret")
    try:
        yield turn
    finally:
        turn.stop()


def relayed_all(run: UclientRun, expected: int = 10) -> None:
    """Every packet of the pair came back through the relay."""
    assert run.returncode == 0, run.output[-2000:]
    assert (run.sent, run.received, run.lost_pct) == (expected, expected, 0.0), run.output[-2000:]


def test_long_term_credentials_allocate_and_relay_over_udp(long_term: TurnServer) -> None:
    since = long_term.mark()
    run = uclient(long_term, *credentials_for(long_term), *PAIR)
    relayed_all(run)
    assert long_term.count(r"ALLOCATE processed, success", since) >= 2
    assert long_term.count(r"incoming packet CHANNEL_BIND processed, success", since) > 0


@pytest.mark.parametrize(
    ("flags", "what"),
    [
        (("-t",), "TCP to the server"),
        (("-S",), "DTLS to the server"),
        (("-x",), "an IPv6 relay (REQUESTED-ADDRESS-FAMILY)"),
    ],
)
def test_relays_over_other_transports_and_families(
    long_term: TurnServer, flags: tuple[str, ...], what: str
) -> None:
    since = long_term.mark()
    run = uclient(long_term, *credentials_for(long_term), *PAIR, *flags)
    relayed_all(run)
    if "-x" in flags:
        long_term.wait_for_log(r"IPv6\. Local relay addr: ::1:", since=since)
    if "-S" in flags:
        long_term.wait_for_log(r"ALLOCATE processed, success", since=since)
        long_term.wait_for_log(r"method=DTLSv1\.2", since=since)


def test_tcp_relay_rfc6062_connect_and_connection_bind(long_term: TurnServer) -> None:
    since = long_term.mark()
    run = uclient(long_term, *credentials_for(long_term), "-T", "-n", "3")
    assert run.returncode == 0 and run.received == run.sent == 6, run.output[-2000:]
    long_term.wait_for_log(r"incoming packet CONNECT processed, success", since=since)
    long_term.wait_for_log(r"incoming packet CONNECTION_BIND processed, success", since=since)


def test_deallocation_is_seen_in_the_log(long_term: TurnServer) -> None:
    since = long_term.mark()
    run = uclient(long_term, *credentials_for(long_term), *PAIR)
    relayed_all(run)
    # uclient ends with Refresh(lifetime 0); coturn closes and deletes both sessions.
    long_term.wait_for_log(r"username=<alice>, lifetime=0", since=since)
    remote = long_term.wait_for_log(r"closed \(2nd stage\).* remote (127\.0\.0\.1:\d+),", 5, since)
    long_term.closed_session(remote.group(1), since=since)


def test_wrong_password_is_refused(long_term: TurnServer) -> None:
    since = long_term.mark()
    run = uclient(long_term, "-u", "alice", "-w", "not-the-secret", *PAIR)
    assert run.returncode != 0 and run.received in (None, 0)
    assert "Cannot complete Allocation" in run.output
    long_term.wait_for_log(r"user alice credentials are incorrect", since=since)


def test_rest_secret_allocates_and_relays(rest: TurnServer) -> None:
    since = rest.mark()
    run = uclient(rest, *credentials_for(rest), *PAIR)
    relayed_all(run)
    # The username is "EXPIRY:alice" (coturn's use-auth-secret).
    rest.wait_for_log(r"user <\d+:alice>: incoming packet ALLOCATE processed, success", 5, since)


def test_rest_wrong_secret_and_plain_password_are_refused(rest: TurnServer) -> None:
    for flags in (("-u", "alice", "-W", "wrong-secret"), ("-u", "alice", "-w", "secret")):
        run = uclient(rest, *flags, *PAIR)
        assert run.returncode != 0 and "Cannot complete Allocation" in run.output, flags


def test_rest_credentials_helper_matches_coturn(rest: TurnServer) -> None:
    """The helper's username/password (for siptool's --secret-file) is what coturn takes."""
    username, password = rest.rest_credentials("bob")
    run = uclient(rest, "-u", username, "-w", password, *PAIR)
    relayed_all(run)


def test_user_quota_one_refuses_a_second_allocation_486(tmp_path: Path) -> None:
    turn = start_turn_server(tmp_path, user_quota=1)
    try:
        run = uclient(turn, *credentials_for(turn), *PAIR)  # the pair is two allocations
        assert run.returncode != 0
        assert 486 in run.errors(), run.output
        turn.wait_for_log(r"ALLOCATE processed, error 486: Allocation Quota Reached")
    finally:
        turn.stop()


def test_a_peer_outside_allowed_peer_ip_is_refused_403(long_term: TurnServer) -> None:
    # 127.0.0.2 is loopback but not 127.0.0.1: denied; nothing leaves the host.
    since = long_term.mark()
    flags = ("-c", "-n", "2", "-e", "127.0.0.2", "-r", "9")
    run = uclient(long_term, *credentials_for(long_term), *flags)
    assert run.received in (None, 0), run.output
    long_term.wait_for_log(r"(CREATE_PERMISSION|CHANNEL_BIND) processed, error 403", 5, since)


def _tls_allocate(turn: TurnServer, ca: Path) -> bytes:
    context = ssl.create_default_context(cafile=str(ca))
    assert turn.tls_port is not None
    with (
        socket.create_connection((turn.host, turn.tls_port), timeout=3) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        attributes = [(REQUESTED_TRANSPORT, bytes((UDP, 0, 0, 0)))]
        tls.sendall(encode_message(StunClass.REQUEST, ALLOCATE, os.urandom(12), attributes))
        header = _read(tls, 20)
        (length,) = struct.unpack("!H", header[2:4])
        return header + _read(tls, length)


def _read(tls: ssl.SSLSocket, size: int) -> bytes:
    data = b""
    for _ in range(size + 1):  # bounded: at least a byte a read, or the end
        if len(data) == size:
            break
        chunk = tls.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def test_tls_listener_verifies_with_the_test_ca_and_challenges_allocate(
    long_term: TurnServer, tmp_path: Path
) -> None:
    assert long_term.ca is not None
    answer = parse_stun(_tls_allocate(long_term, long_term.ca))
    assert answer.msg_class is StunClass.ERROR_RESPONSE
    error, realm = answer.attribute(ERROR_CODE), answer.attribute(REALM)
    assert error is not None and realm is not None
    assert isinstance(error.value, dict) and error.value["code"] == 401
    assert realm.value == "siptool.test"
    other = make_test_ca(tmp_path)  # a CA that did not sign the server's certificate
    with pytest.raises(ssl.SSLCertVerificationError):
        _tls_allocate(long_term, other.ca_cert)


def test_uri_names_each_transport(long_term: TurnServer) -> None:
    port, tls_port = long_term.port, long_term.tls_port
    assert long_term.uri() == f"turn:127.0.0.1:{port}?transport=udp"
    assert long_term.uri("tcp") == f"turn:127.0.0.1:{port}?transport=tcp"
    assert long_term.uri("tls") == f"turns:127.0.0.1:{tls_port}?transport=tcp"
