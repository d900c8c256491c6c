"""The peers the tests share, as pytest fixtures (registered for the whole tree by
tests/conftest.py).  The long-lived servers start once per test session, whichever modules use
them: one Kamailio (UDP, TCP, TLS, IPv4 and IPv6), one coturn (127.0.0.1 + 127.0.0.2, ::1, TLS
with a test CA) and one stund.  SIPp and the hostile peers are one or more per test.  Each is
started on free loopback ports and stopped by PID (or its thread joined) when it is done."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from tests.support.hostile_sip import Answer, HostileUas, hostile_peer
from tests.support.kamailio import Kamailio, make_test_ca, start_kamailio
from tests.support.sipp import Sipp, start_sipp
from tests.support.stun_peers import StunPeer, require_alternate_loopback, start_coturn, start_stund


class _Stoppable(Protocol):
    def stop(self) -> None: ...


P = TypeVar("P", bound=_Stoppable)


def _until_the_end(peer: P) -> Iterator[P]:
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture(scope="session")
def kamailio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kamailio]:
    work = tmp_path_factory.mktemp("kamailio")
    yield from _until_the_end(start_kamailio(work, tls=True, ipv6=True))


@pytest.fixture(scope="session")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StunPeer]:
    """``extra["ca"]`` is the CA file that verifies its TLS certificate (for localhost)."""
    require_alternate_loopback()
    work = tmp_path_factory.mktemp("coturn")
    ca = make_test_ca(work)
    peer = start_coturn(work, ipv6="::1", tls=(ca.server_cert, ca.server_key))
    peer.extra["ca"] = str(ca.ca_cert)
    yield from _until_the_end(peer)


@pytest.fixture(scope="session")
def stund(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StunPeer]:
    require_alternate_loopback()
    yield from _until_the_end(start_stund(tmp_path_factory.mktemp("stund")))


@pytest.fixture
def sipp(tmp_path: Path) -> Iterator[Callable[..., Sipp]]:
    """``sipp(scenario=None, *, host, transport, rtp_echo)`` starts one SIPp UAS for one call;
    all stop at the end of the test."""
    started: list[Sipp] = []

    def start(scenario: str | None = None, **kw: Any) -> Sipp:
        work = tmp_path / f"sipp{len(started)}"
        work.mkdir()
        peer = start_sipp(work, scenario, **kw)
        started.append(peer)
        return peer

    try:
        yield start
    finally:
        for peer in started:
            peer.server.stop()


@pytest.fixture
def hostile_peers() -> Iterator[Callable[..., HostileUas]]:
    """``hostile_peers(answer, transport="udp")`` starts a hostile SIP peer (see
    tests/support/hostile_sip.py); all stop at the end of the test."""
    with contextlib.ExitStack() as stack:

        def start(answer: Answer, transport: str = "udp") -> HostileUas:
            return stack.enter_context(hostile_peer(answer, transport=transport))

        yield start
