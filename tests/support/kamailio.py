"""A real Kamailio for the SIP integration tests: in-memory registrar with digest auth, OPTIONS
answered, INVITEs record-routed to registered contacts; UDP, TCP and TLS on loopback at free
ports, IPv4 and IPv6.

The routing logic is tests/fixtures/capture-recipes/kamailio-registrar.cfg (the same config the
fixture captures were made with); this module wraps it with the listen sockets and, for TLS, a
test CA and server certificate made with openssl for the occasion.  Nothing here imports
pytest: the benchmarks start the same Kamailio.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.paths import FIXTURES
from tests.support.peers import require_tool
from tests.support.servers import Server, free_port

REGISTRAR_CFG = FIXTURES / "capture-recipes" / "kamailio-registrar.cfg"
PASSWORD = "secret"


@dataclass
class TestCA:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def make_test_ca(
    directory: Path,
    *,
    names: tuple[str, ...] = ("localhost",),
    ips: tuple[str, ...] = ("127.0.0.1", "::1"),
) -> TestCA:
    """A throw-away CA and a server certificate it signed, valid for ``names`` and ``ips``."""
    openssl = require_tool("openssl", "openssl")
    ca_key, ca_cert = directory / "ca.key", directory / "ca.pem"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    ext = directory / "san.ext"
    san = ",".join([*(f"DNS:{n}" for n in names), *(f"IP:{i}" for i in ips)])
    ext.write_text(
        f"subjectAltName={san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=siptool test CA",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca_cert),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        f"/CN={names[0]}",
        "-keyout",
        str(key),
        "-out",
        str(csr),
    )
    run(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca_cert),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        str(ext),
        "-out",
        str(cert),
    )
    return TestCA(ca_cert, cert, key)


@dataclass
class Kamailio:
    server: Server
    host: str
    udp: int
    tcp: int
    tls: int | None
    ca: TestCA | None
    host6: str | None = None
    ports6: dict[str, int] = field(default_factory=dict)

    def uri(self, transport: str = "udp", user: str | None = None, v6: bool = False) -> str:
        host = f"[{self.host6}]" if v6 else self.host
        port = (self.ports6 if v6 else {"udp": self.udp, "tcp": self.tcp, "tls": self.tls})[
            transport
        ]
        userpart = f"{user}@" if user else ""
        scheme = "sips" if transport == "tls" else "sip"
        params = "" if transport in ("udp", "tls") else f";transport={transport}"
        return f"{scheme}:{userpart}{host}:{port}{params}"

    def stop(self) -> None:
        self.server.stop()


def _options_answered(host: str, port: int) -> bool:
    bracketed = f"[{host}]" if ":" in host else host
    request = (
        f"OPTIONS sip:ping@{bracketed}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {bracketed}:9;branch=z9hG4bKready{time.monotonic_ns()};rport\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:ready@siptool.test>;tag=r\r\n"
        "To: <sip:ping@siptool.test>\r\n"
        f"Call-ID: ready-{time.monotonic_ns()}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        s.sendto(request, (host, port))
        try:
            return s.recv(4096).startswith(b"SIP/2.0 200")
        except (TimeoutError, ConnectionRefusedError):
            return False


def start_kamailio(
    directory: Path,
    *,
    tls: bool = False,
    ipv6: bool = False,
    password: str = PASSWORD,
    qop: bool = True,
) -> Kamailio:
    """Kamailio on 127.0.0.1 at a free port for UDP and TCP, with TLS (``tls``) and the same
    on ::1 (``ipv6``); every user's password is ``password``, the
    challenge carries qop=auth unless ``qop`` is false (RFC 2069 digest)."""
    binary = require_tool("kamailio", "kamailio")
    host = "127.0.0.1"
    udp = free_port("udp", host, both=True)
    tcp = udp
    listen = ["-l", f"udp:{host}:{udp}", "-l", f"tcp:{host}:{tcp}"]
    ports6: dict[str, int] = {}
    if ipv6:
        p6 = free_port("udp", "::1", both=True)
        ports6 = {"udp": p6, "tcp": p6}
        listen += ["-l", f"udp:[::1]:{p6}", "-l", f"tcp:[::1]:{p6}"]
    config = REGISTRAR_CFG
    ca = None
    tls_port = None
    if tls:
        ca = make_test_ca(directory)
        tls_port = free_port("tcp", host)
        listen += ["-l", f"tls:{host}:{tls_port}"]
        tls_cfg = directory / "tls.cfg"
        # TLSv1.2+ : Kamailio 5.6 with OpenSSL 3 negotiates 1.3 when the client offers it.
        tls_cfg.write_text(
            "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\n"
            "require_certificate = no\n"
            f"private_key = {ca.server_key}\ncertificate = {ca.server_cert}\n"
            "[client:default]\nmethod = TLSv1.2+\n"
            "verify_certificate = no\nrequire_certificate = no\n"
        )
        if ipv6:
            ports6["tls"] = free_port("tcp", "::1")
            listen += ["-l", f"tls:[::1]:{ports6['tls']}"]
        config = directory / "kamailio-tls.cfg"
        config.write_text(
            "#!KAMAILIO\n"
            "enable_tls=yes\n"
            'loadmodule "tls.so"\n'
            f'modparam("tls", "config", "{tls_cfg}")\n'
            f'include_file "{REGISTRAR_CFG}"\n'
        )
    rundir = directory / "run"
    rundir.mkdir(exist_ok=True)
    server = Server(
        [
            binary,
            "-f",
            str(config),
            "-DD",  # stay in the foreground: the PID we hold is the main process
            "-E",
            "-Y",
            str(rundir),
            "-P",
            str(rundir / "kamailio.pid"),
            "-m",
            "32",
            "-M",
            "4",
            "-w",
            str(rundir),
            "-A",
            f'AUTH_PASSWORD="{password}"',
            "-A",
            f'AUTH_QOP="{1 if qop else 0}"',
            *listen,
        ],
        log=directory / "kamailio.log",
    )
    server.wait_until(lambda: _options_answered(host, udp), what="(answering OPTIONS)")
    if ipv6:
        server.wait_until(lambda: _options_answered("::1", ports6["udp"]), what="(IPv6)")
    return Kamailio(server, host, udp, tcp, tls_port, ca, "::1" if ipv6 else None, ports6)
