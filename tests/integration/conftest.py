"""Peers shared by the SIP integration tests: one Kamailio (UDP, TCP, TLS, IPv4 and IPv6) per
test module, started on free loopback ports and stopped by PID."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.kamailio import Kamailio, start_kamailio


@pytest.fixture(scope="module")
def kamailio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kamailio]:
    peer = start_kamailio(tmp_path_factory.mktemp("kamailio"), tls=True, ipv6=True)
    try:
        yield peer
    finally:
        peer.stop()
