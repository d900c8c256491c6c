"""SIPp as the called UAS of the invite-test tests: its built-in ``uas`` scenario or one of
tests/sipp/, one call, on loopback at free ports, stopped by PID."""

from __future__ import annotations

import errno
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.paths import SCENARIOS
from tests.support.peers import require_tool
from tests.support.servers import Server, free_port


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


def start_sipp(
    work: Path,
    scenario: str | None = None,
    *,
    host: str = "127.0.0.1",
    transport: str = "udp",
    rtp_echo: bool = False,
    calls: int = 1,
) -> Sipp:
    """One SIPp UAS for ``calls`` calls (one by default), run in ``work``; ready once it
    listens."""
    binary = require_tool("sipp", "sip-tester")
    kind = "udp" if transport == "udp" else "tcp"
    port = free_port(kind, host)
    media_port = free_port("udp", host)
    argv = [binary]
    argv += ["-sn", "uas"] if scenario is None else ["-sf", str(SCENARIOS / scenario)]
    argv += ["-i", host, "-p", str(port), "-mi", host, "-mp", str(media_port)]
    argv += ["-t", "u1" if transport == "udp" else "t1"]
    # One call (or ``calls``), then exit; never more than a minute whatever happens.
    argv += ["-m", str(calls), "-nostdin", "-trace_err", "-timeout", "60s", "-timeout_error"]
    if rtp_echo:
        argv.append("-rtp_echo")
    server = Server(argv, log=work / "sipp.log", cwd=work)
    server.wait_until(lambda: _port_taken(kind, host, port), what="(listening)")
    return Sipp(server, host, port, media_port, transport)
