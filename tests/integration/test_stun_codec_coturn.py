"""The STUN codec against real servers: coturn (RFC 5389/5780, and its RFC 3489 mode) and
stund (Vovida 0.97, RFC 3489 with the draft XOR-MAPPED-ADDRESS), each started here on
127.0.0.1 + 127.0.0.2 at free UDP ports and stopped by PID.

Our requests go out over plain UDP sockets; what comes back must parse, echo our transaction id
and map our socket's own address.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from siptool.stun.message import StunClass, StunMessage, binding_request, parse_stun
from tests.peers import require_tool, unavailable

pytestmark = pytest.mark.peer

PRIMARY = "127.0.0.1"
ALTERNATE = "127.0.0.2"


@dataclass
class Server:
    name: str
    pid: int
    port: int
    alt_port: int
    log: Path

    @property
    def primary(self) -> tuple[str, int]:
        return PRIMARY, self.port


def _bindable(ip: str, port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind((ip, port))
        except OSError:
            return False
    return True


def _require_alternate_loopback() -> None:
    if not _bindable(ALTERNATE, 0, socket.SOCK_DGRAM):
        unavailable(f"cannot bind {ALTERNATE} (Linux routes all of 127/8 to lo; this host not)")


def _free_port_pair() -> tuple[int, int]:
    """Two adjacent ports free for UDP and TCP on both loopback addresses."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((PRIMARY, 0))
            port = probe.getsockname()[1]
        if port >= 65535:
            continue
        if all(
            _bindable(ip, p, kind)
            for ip in (PRIMARY, ALTERNATE)
            for p in (port, port + 1)
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM)
        ):
            return port, port + 1
    raise RuntimeError("no two adjacent free ports on loopback")


def _address(pair: tuple[str, int]) -> str:
    return f"{pair[0]}:{pair[1]}"


def _udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((PRIMARY, 0))
    return sock


def _exchange(
    sock: socket.socket,
    wire: bytes,
    destination: tuple[str, int],
    transaction_id: bytes,
    *,
    receiver: socket.socket | None = None,
    timeout: float = 3.0,
) -> tuple[StunMessage, tuple[str, int]]:
    """Send (resending every 0.5 s) until the response with our id arrives, within timeout."""
    receiver = receiver or sock
    receiver.settimeout(0.5)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.sendto(wire, destination)
        try:
            data, source = receiver.recvfrom(4096)
        except TimeoutError:
            continue
        message = parse_stun(data)
        if message.transaction_id == transaction_id:
            return message, source
    raise AssertionError(f"no response from {destination} within {timeout} s")


def _wait_until_answering(process: subprocess.Popen[bytes], server: Server) -> None:
    deadline = time.monotonic() + 15
    with _udp_socket() as sock:
        sock.settimeout(0.2)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = server.log.read_text(errors="replace")[-2000:]
                pytest.fail(f"{server.name} exited with {process.returncode}:\n{tail}")
            tid, wire = binding_request()
            sock.sendto(wire, server.primary)
            with contextlib.suppress(TimeoutError, ConnectionRefusedError):
                data, _ = sock.recvfrom(4096)
                if parse_stun(data).transaction_id == tid:
                    return
    pytest.fail(f"{server.name} did not answer a Binding request within 15 s")


@contextlib.contextmanager
def _running(name: str, argv: list[str], log: Path, port: int, alt_port: int) -> Iterator[Server]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(name, process.pid, port, alt_port, log)
    try:
        _wait_until_answering(process, server)
        yield server
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


@pytest.fixture(scope="module")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    binary = require_tool("turnserver", "coturn")
    _require_alternate_loopback()
    work = tmp_path_factory.mktemp("coturn")
    port, alt_port = _free_port_pair()
    argv = [
        binary,
        "-n",  # no configuration file
        "--stun-only",
        "--no-tls",
        "--no-dtls",
        "--no-cli",
        "--listening-ip",
        PRIMARY,
        "--listening-ip",
        ALTERNATE,
        "--listening-port",
        str(port),
        "--alt-listening-port",
        str(alt_port),
        "--log-file",
        "stdout",
        "--simple-log",
        "--pidfile",
        str(work / "turnserver.pid"),
        "--userdb",
        str(work / "turndb"),
    ]
    with _running("coturn", argv, work / "coturn.log", port, alt_port) as server:
        yield server


@pytest.fixture(scope="module")
def stund(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    binary = require_tool("stund", "stun-server")
    _require_alternate_loopback()
    work = tmp_path_factory.mktemp("stund")
    port, alt_port = _free_port_pair()
    argv = [binary, "-h", PRIMARY, "-a", ALTERNATE, "-p", str(port), "-o", str(alt_port)]
    with _running("stund", argv, work / "stund.log", port, alt_port) as server:
        yield server


# ------------------------------------------------------------------------------------ coturn


def test_coturn_binding_response_echoes_id_and_maps_our_socket(coturn: Server) -> None:
    with _udp_socket() as sock:
        tid, wire = binding_request()
        response, source = _exchange(sock, wire, coturn.primary, tid)
        own = _address(sock.getsockname())
    assert source == coturn.primary
    assert response.msg_class is StunClass.SUCCESS_RESPONSE
    assert response.method_name == "binding"
    assert response.legacy is False
    assert response.transaction_id == tid
    assert response.xor_mapped_address == own
    assert response.attribute("XOR-MAPPED-ADDRESS") is not None
    assert response.software is not None and response.software.startswith("Coturn")
    assert response.fingerprint_ok in (None, True)


def test_coturn_rfc5780_other_address_and_response_origin(coturn: Server) -> None:
    with _udp_socket() as sock:
        tid, wire = binding_request()
        response, _ = _exchange(sock, wire, coturn.primary, tid)
    assert response.response_origin == f"{PRIMARY}:{coturn.port}"
    assert response.other_address == f"{ALTERNATE}:{coturn.alt_port}"


def test_coturn_fingerprint_is_verified_when_requested(coturn: Server) -> None:
    with _udp_socket() as sock:
        tid, wire = binding_request(fingerprint=True, software="siptool-test")
        response, _ = _exchange(sock, wire, coturn.primary, tid)
    assert response.attribute("FINGERPRINT") is not None
    assert response.fingerprint_ok is True


@pytest.mark.parametrize(
    ("change_ip", "change_port", "expected_ip", "alt_port"),
    [
        (True, True, ALTERNATE, True),
        (False, True, PRIMARY, True),
        (True, False, ALTERNATE, False),
    ],
)
def test_coturn_change_request_is_answered_from_the_other_address(
    coturn: Server, change_ip: bool, change_port: bool, expected_ip: str, alt_port: bool
) -> None:
    expected = (expected_ip, coturn.alt_port if alt_port else coturn.port)
    with _udp_socket() as sock:
        tid, wire = binding_request(change_ip=change_ip, change_port=change_port)
        response, source = _exchange(sock, wire, coturn.primary, tid)
        own = _address(sock.getsockname())
    assert source == expected
    assert response.response_origin == _address(expected)
    assert response.xor_mapped_address == own


def test_coturn_response_port_sends_the_answer_to_that_port(coturn: Server) -> None:
    with _udp_socket() as sock, _udp_socket() as receiver:
        tid, wire = binding_request(response_port=receiver.getsockname()[1])
        response, _ = _exchange(sock, wire, coturn.primary, tid, receiver=receiver)
        own = _address(sock.getsockname())
    assert response.xor_mapped_address == own


def test_coturn_answers_a_legacy_rfc3489_request_in_kind(coturn: Server) -> None:
    with _udp_socket() as sock:
        tid, wire = binding_request(legacy=True)
        response, _ = _exchange(sock, wire, coturn.primary, tid)
        own = _address(sock.getsockname())
    assert response.legacy is True
    assert response.transaction_id == tid and len(tid) == 16
    assert response.mapped_address == own
    assert response.source_address == f"{PRIMARY}:{coturn.port}"
    assert response.changed_address == f"{ALTERNATE}:{coturn.alt_port}"
    assert response.software is not None and not response.software.endswith("\0")


# ------------------------------------------------------------------------------------- stund


def test_stund_answers_a_modern_request_with_classic_and_xor_addresses(stund: Server) -> None:
    with _udp_socket() as sock:
        tid, wire = binding_request()
        response, source = _exchange(sock, wire, stund.primary, tid)
        own = _address(sock.getsockname())
    assert source == stund.primary
    assert response.msg_class is StunClass.SUCCESS_RESPONSE
    assert response.transaction_id == tid
    assert response.xor_mapped_address == own
    assert response.mapped_address == own
    assert response.source_address == f"{PRIMARY}:{stund.port}"
    assert response.changed_address == f"{ALTERNATE}:{stund.alt_port}"
    assert response.software == "Vovida.org 0.97"


def test_stund_legacy_reply_xor_address_decodes_with_the_id_prefix(stund: Server) -> None:
    with _udp_socket() as sock:
        tid, wire = binding_request(legacy=True)
        response, _ = _exchange(sock, wire, stund.primary, tid)
        own = _address(sock.getsockname())
    assert response.legacy is True
    assert response.transaction_id == tid
    assert response.mapped_address == own
    # stund XORs with the first 4 bytes of a 16-byte id, which is where the cookie would be.
    assert response.xor_mapped_address == own


@pytest.mark.parametrize("legacy", [False, True])
def test_stund_change_request_is_answered_from_the_alternate_address(
    stund: Server, legacy: bool
) -> None:
    with _udp_socket() as sock:
        tid, wire = binding_request(change_ip=True, change_port=True, legacy=legacy)
        response, source = _exchange(sock, wire, stund.primary, tid)
        own = _address(sock.getsockname())
    assert source == (ALTERNATE, stund.alt_port)
    assert response.source_address == f"{ALTERNATE}:{stund.alt_port}"
    assert response.mapped_address == own
