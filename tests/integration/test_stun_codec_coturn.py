"""The STUN codec against real servers: coturn (RFC 5389/5780, and its RFC 3489 mode) and
stund (Vovida 0.97, RFC 3489 with the draft XOR-MAPPED-ADDRESS), each on 127.0.0.1 + 127.0.0.2
at free UDP ports (the session's servers, tests/support/fixtures.py).

Our requests go out over plain UDP sockets; what comes back must parse, echo our transaction id
and map our socket's own address.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

import pytest

from siptool.stun.message import StunClass, StunMessage, binding_request, parse_stun
from tests.support.responders import Address
from tests.support.stun_peers import ALTERNATE, PRIMARY, StunPeer

pytestmark = pytest.mark.peer


def _address(pair: Address) -> str:
    return f"{pair[0]}:{pair[1]}"


def _udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((PRIMARY, 0))
    return sock


def _exchange(
    sock: socket.socket,
    wire: bytes,
    destination: Address,
    transaction_id: bytes,
    *,
    receiver: socket.socket | None = None,
    timeout: float = 3.0,
) -> tuple[StunMessage, Address]:
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


@dataclass
class Asked:
    tid: bytes
    response: StunMessage
    source: Address
    own: str  # the address of the socket that asked


def ask(server: StunPeer, **request: bool | str) -> Asked:
    """One Binding request (``binding_request(**request)``) from a fresh socket."""
    with _udp_socket() as sock:
        tid, wire = binding_request(**request)  # type: ignore[arg-type]
        response, source = _exchange(sock, wire, server.address, tid)
        return Asked(tid, response, source, _address(sock.getsockname()))


# ------------------------------------------------------------------------------------ coturn


def test_coturn_binding_response_echoes_id_and_maps_our_socket(coturn: StunPeer) -> None:
    asked = ask(coturn)
    response = asked.response
    assert asked.source == coturn.address
    assert response.msg_class is StunClass.SUCCESS_RESPONSE
    assert response.method_name == "binding"
    assert response.legacy is False
    assert response.transaction_id == asked.tid
    assert response.xor_mapped_address == asked.own
    assert response.attribute("XOR-MAPPED-ADDRESS") is not None
    assert response.software is not None and response.software.startswith("Coturn")
    assert response.fingerprint_ok in (None, True)


def test_coturn_rfc5780_other_address_and_response_origin(coturn: StunPeer) -> None:
    response = ask(coturn).response
    assert response.response_origin == f"{PRIMARY}:{coturn.port}"
    assert response.other_address == f"{ALTERNATE}:{coturn.alt_port}"


def test_coturn_fingerprint_is_verified_when_requested(coturn: StunPeer) -> None:
    response = ask(coturn, fingerprint=True, software="siptool-test").response
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
    coturn: StunPeer, change_ip: bool, change_port: bool, expected_ip: str, alt_port: bool
) -> None:
    expected = (expected_ip, coturn.alt_port if alt_port else coturn.port)
    asked = ask(coturn, change_ip=change_ip, change_port=change_port)
    assert asked.source == expected
    assert asked.response.response_origin == _address(expected)
    assert asked.response.xor_mapped_address == asked.own


def test_coturn_response_port_sends_the_answer_to_that_port(coturn: StunPeer) -> None:
    with _udp_socket() as sock, _udp_socket() as receiver:
        tid, wire = binding_request(response_port=receiver.getsockname()[1])
        response, _ = _exchange(sock, wire, coturn.address, tid, receiver=receiver)
        own = _address(sock.getsockname())
    assert response.xor_mapped_address == own


def test_coturn_answers_a_legacy_rfc3489_request_in_kind(coturn: StunPeer) -> None:
    asked = ask(coturn, legacy=True)
    response = asked.response
    assert response.legacy is True
    assert response.transaction_id == asked.tid and len(asked.tid) == 16
    assert response.mapped_address == asked.own
    assert response.source_address == f"{PRIMARY}:{coturn.port}"
    assert response.changed_address == f"{ALTERNATE}:{coturn.alt_port}"
    assert response.software is not None and not response.software.endswith("\0")


# ------------------------------------------------------------------------------------- stund


def test_stund_answers_a_modern_request_with_classic_and_xor_addresses(stund: StunPeer) -> None:
    asked = ask(stund)
    response = asked.response
    assert asked.source == stund.address
    assert response.msg_class is StunClass.SUCCESS_RESPONSE
    assert response.transaction_id == asked.tid
    assert response.xor_mapped_address == asked.own
    assert response.mapped_address == asked.own
    assert response.source_address == f"{PRIMARY}:{stund.port}"
    assert response.changed_address == f"{ALTERNATE}:{stund.alt_port}"
    assert response.software == "Vovida.org 0.97"


def test_stund_legacy_reply_xor_address_decodes_with_the_id_prefix(stund: StunPeer) -> None:
    asked = ask(stund, legacy=True)
    response = asked.response
    assert response.legacy is True
    assert response.transaction_id == asked.tid
    assert response.mapped_address == asked.own
    # stund XORs with the first 4 bytes of a 16-byte id, which is where the cookie would be.
    assert response.xor_mapped_address == asked.own


@pytest.mark.parametrize("legacy", [False, True])
def test_stund_change_request_is_answered_from_the_alternate_address(
    stund: StunPeer, legacy: bool
) -> None:
    asked = ask(stund, change_ip=True, change_port=True, legacy=legacy)
    assert asked.source == (ALTERNATE, stund.alt_port)
    assert asked.response.source_address == f"{ALTERNATE}:{stund.alt_port}"
    assert asked.response.mapped_address == asked.own
