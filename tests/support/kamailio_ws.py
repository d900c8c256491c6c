"""A real Kamailio speaking SIP over WebSocket (RFC 7118) for the ws/wss tests: its websocket
and xhttp modules take the upgrade on a TCP socket (ws) and a TLS one (wss, a test CA's
certificate), in front of an in-memory registrar with digest auth that answers OPTIONS and
relays to registered contacts over UDP.  The routing is tests/fixtures/kamailio-websocket.cfg.
Nothing here imports pytest."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
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
    # Extra SIP-over-TLS listeners, each a [server:IP:PORT] profile of tls.cfg: profile -> port.
    tls: dict[str, int] = field(default_factory=dict)

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


def start_kamailio_ws(
    directory: Path, *, password: str = PASSWORD, tls: Sequence[str] = ()
) -> KamailioWs:
    """Kamailio on 127.0.0.1: SIP over UDP, ws over TCP and wss over TLS at free ports.

    ``tls`` adds a TLS listener per profile: ``"TLSv1.3"`` negotiates TLS 1.3 (Kamailio 5.6's
    tls module has no method of TLS 1.3 only, so it is ``TLSv1.2+``, which OpenSSL 3 takes to
    1.3 with a client that offers it; the suite is the client's choice), anything else is an
    OpenSSL cipher string spoken only over TLS 1.2.
    The wss listener's default profile negotiates TLS 1.2 or 1.3."""
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
    profiles = {name: free_port("tcp", host) for name in tls}
    with tls_cfg.open("a") as cfg:
        for name, port in profiles.items():
            method = "TLSv1.2+\n" if name == "TLSv1.3" else f"TLSv1.2\ncipher_list = {name}\n"
            cfg.write(
                f"[server:{host}:{port}]\nmethod = {method}"
                "verify_certificate = no\nrequire_certificate = no\n"
                f"private_key = {ca.server_key}\ncertificate = {ca.server_cert}\n"
            )
    rundir = directory / "run"
    rundir.mkdir(exist_ok=True)
    argv = [binary, "-f", str(WEBSOCKET_CFG), "-DD", "-E", "-Y", str(rundir)]
    argv += ["-P", str(rundir / "kamailio.pid"), "-m", "32", "-M", "4", "-w", str(rundir)]
    argv += ["-A", f'AUTH_PASSWORD="{password}"', "-A", f'ALLOWED_ORIGIN="{ALLOWED_ORIGIN}"']
    argv += ["-A", f'TLS_CONFIG="{tls_cfg}"']
    argv += ["-l", f"udp:{host}:{udp}", "-l", f"tcp:{host}:{ws}", "-l", f"tls:{host}:{wss}"]
    for port in profiles.values():
        argv += ["-l", f"tls:{host}:{port}"]
    server = Server(argv, log=directory / "kamailio.log")
    server.wait_until(lambda: _options_answered(host, udp), what="(answering OPTIONS)")
    ports = (ws, wss, *profiles.values())
    server.wait_until(lambda: all(_listening(host, p) for p in ports), what="(ws, wss, tls)")
    return KamailioWs(server, host, udp, ws, wss, ca, profiles)
