"""Peers shared by the SIP integration tests: one Kamailio (UDP, TCP, TLS, IPv4 and IPv6) per
test module, and SIPp UASes per test, started on free loopback ports and stopped by PID."""

from __future__ import annotations

import errno
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.kamailio import Kamailio, start_kamailio
from tests.peers import require_tool
from tests.servers import Server, free_port

SCENARIOS = Path(__file__).resolve().parent.parent / "sipp"


@pytest.fixture(scope="module")
def kamailio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kamailio]:
    peer = start_kamailio(tmp_path_factory.mktemp("kamailio"), tls=True, ipv6=True)
    try:
        yield peer
    finally:
        peer.stop()


def _port_taken(kind: str, host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


@dataclass
class Sipp:
    server: Server
    host: str
    port: int
    media_port: int
    transport: str

    def uri(self, user: str = "callee") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        params = ";transport=tcp" if self.transport == "tcp" else ""
        return f"sip:{user}@{host}:{self.port}{params}"

    def finished(self, timeout: float = 10.0) -> int | None:
        """SIPp's exit status once its one call is over (0: every step of the scenario ran)."""
        try:
            return self.server.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None


@pytest.fixture
def sipp(tmp_path: Path) -> Iterator[Any]:
    """``sipp(scenario=None, ...)`` starts one SIPp UAS for one call; all stop at the end."""
    binary = require_tool("sipp", "sip-tester")
    started: list[Sipp] = []

    def start(
        scenario: str | None = None,
        *,
        host: str = "127.0.0.1",
        transport: str = "udp",
        rtp_echo: bool = False,
    ) -> Sipp:
        kind = "udp" if transport == "udp" else "tcp"
        port = free_port(kind, host)
        media_port = free_port("udp", host)
        work = tmp_path / f"sipp{len(started)}"
        work.mkdir()
        argv = [binary]
        argv += ["-sn", "uas"] if scenario is None else ["-sf", str(SCENARIOS / scenario)]
        argv += ["-i", host, "-p", str(port), "-mi", host, "-mp", str(media_port)]
        argv += ["-t", "u1" if transport == "udp" else "t1"]
        # One call, then exit; never more than a minute whatever happens.
        argv += ["-m", "1", "-nostdin", "-trace_err", "-timeout", "60s", "-timeout_error"]
        if rtp_echo:
            argv.append("-rtp_echo")
        server = Server(argv, log=work / "sipp.log", cwd=work)
        peer = Sipp(server, host, port, media_port, transport)
        started.append(peer)
        server.wait_until(lambda: _port_taken(kind, host, port), what="(listening)")
        return peer

    try:
        yield start
    finally:
        for peer in started:
            peer.server.stop()
