"""A real Kamailio speaking SIP over WebSocket (RFC 7118) for the ws/wss tests: its websocket
and xhttp modules take the upgrade on a TCP socket (ws) and a TLS one (wss, a test CA's
certificate), in front of an in-memory registrar with digest auth that answers OPTIONS and
relays to registered contacts over UDP.  The routing is tests/fixtures/kamailio-websocket.cfg.
Nothing here imports pytest."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from tests.support.kamailio import PASSWORD, TestCA, _options_answered, make_test_ca
from tests.support.paths import FIXTURES
from tests.support.peers import require_tool, unavailable
from tests.support.servers import Server, free_port

WEBSOCKET_CFG = FIXTURES / "kamailio-websocket.cfg"
ALLOWED_ORIGIN = "https://siptool.test"
MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")


@dataclass
class KamailioWs:
    server: Server
    host: str
    udp: int
    ws: int
    wss: int
    ca: TestCA

    def uri(self, transport: str = "ws", user: str | None = None) -> str:
        """``sip:[user@]127.0.0.1:PORT;transport=ws|wss`` (``udp``: the SIP socket)."""
        port = {"udp": self.udp, "ws": self.ws, "wss": self.wss}[transport]
        userpart = f"{user}@" if user else ""
        params = "" if transport == "udp" else f";transport={transport}"
        return f"sip:{userpart}{self.host}:{port}{params}"

    def stop(self) -> None:
        self.server.stop()


def _listening(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=0.3):
        return True


def _require_websocket_module() -> None:
    found = any((d / "websocket.so").exists() for d in (MODULES, Path("/usr/lib/kamailio/modules")))
    if not found:
        unavailable("Kamailio's websocket module not installed (kamailio-websocket-modules)")


def start_kamailio_ws(directory: Path, *, password: str = PASSWORD) -> KamailioWs:
    """Kamailio on 127.0.0.1: SIP over UDP, ws over TCP and wss over TLS at free ports."""
    binary = require_tool("kamailio", "kamailio")
    _require_websocket_module()
    host = "127.0.0.1"
    udp, ws, wss = free_port("udp", host), free_port("tcp", host), free_port("tcp", host)
    ca = make_test_ca(directory)
    tls_cfg = directory / "tls.cfg"
    tls_cfg.write_text(
        "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\n"
        "require_certificate = no\n"
        f"private_key = {ca.server_key}\ncertificate = {ca.server_cert}\n"
        "[client:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n"
    )
    rundir = directory / "run"
    rundir.mkdir(exist_ok=True)
    argv = [binary, "-f", str(WEBSOCKET_CFG), "-DD", "-E", "-Y", str(rundir)]
    argv += ["-P", str(rundir / "kamailio.pid"), "-m", "32", "-M", "4", "-w", str(rundir)]
    argv += ["-A", f'AUTH_PASSWORD="{password}"', "-A", f'ALLOWED_ORIGIN="{ALLOWED_ORIGIN}"']
    argv += ["-A", f'TLS_CONFIG="{tls_cfg}"']
    argv += ["-l", f"udp:{host}:{udp}", "-l", f"tcp:{host}:{ws}", "-l", f"tls:{host}:{wss}"]
    server = Server(argv, log=directory / "kamailio.log")
    server.wait_until(lambda: _options_answered(host, udp), what="(answering OPTIONS)")
    server.wait_until(lambda: _listening(host, ws) and _listening(host, wss), what="(ws, wss)")
    return KamailioWs(server, host, udp, ws, wss, ca)
