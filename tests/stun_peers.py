"""Real STUN servers for the tests: coturn (STUN only, RFC 5389/5780) and stund (Vovida 0.97,
RFC 3489), each started on two addresses so that CHANGE-REQUEST and OTHER-ADDRESS work, at free
ports, waited for by a real Binding request, and stopped by PID.

``start_coturn`` also runs inside a network namespace: pass ``netns`` and the addresses there
(the NAT testbed in tests/nat uses it on 198.51.100.2 and 198.51.100.3).

``hostile_stun_server`` is a responder run by the test itself that answers wrongly on purpose
(wrong transaction id, bad FINGERPRINT, 0.0.0.0:0 mapped, terminal escapes in SOFTWARE ...);
``closed_udp_port`` gives a port that answers ICMP port unreachable.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from siptool.errors import ParseError
from siptool.stun.message import (
    ERROR_CODE,
    OTHER_ADDRESS,
    SOFTWARE,
    XOR_MAPPED_ADDRESS,
    StunClass,
    StunMessage,
    binding_request,
    encode_address,
    encode_message,
    encode_xor_address,
    parse_stun,
)
from tests.peers import require_tool, unavailable
from tests.servers import Server

PRIMARY = "127.0.0.1"
ALTERNATE = "127.0.0.2"


@dataclass
class StunPeer:
    name: str
    server: Server
    primary_ip: str
    alternate_ip: str
    port: int
    alt_port: int
    tls_port: int | None = None
    ipv6: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def primary(self) -> str:
        return f"{self.primary_ip}:{self.port}"

    @property
    def other(self) -> str:
        return f"{self.alternate_ip}:{self.alt_port}"

    def stop(self) -> None:
        self.server.stop()


def _bindable(ip: str, port: int, kind: int) -> bool:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, kind) as probe:
        try:
            probe.bind((ip, port))
        except OSError:
            return False
    return True


def require_alternate_loopback() -> None:
    if not _bindable(ALTERNATE, 0, socket.SOCK_DGRAM):
        unavailable(f"cannot bind {ALTERNATE} (Linux routes all of 127/8 to lo; this host not)")


def free_port_run(ips: tuple[str, ...], count: int) -> int:
    """A port P such that P..P+count-1 are free for UDP and TCP on every one of ``ips``."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((PRIMARY, 0))
            port = int(probe.getsockname()[1])
        if port + count > 65535:
            continue
        if all(
            _bindable(ip, p, kind)
            for ip in ips
            for p in range(port, port + count)
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM)
        ):
            return port
    raise RuntimeError(f"no {count} adjacent free ports on {ips}")


def answers_binding(ip: str, port: int, timeout: float = 0.2) -> bool:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        tid, wire = binding_request()
        sock.sendto(wire, (ip, port))
        try:
            data, _ = sock.recvfrom(4096)
        except (TimeoutError, ConnectionRefusedError):
            return False
        return parse_stun(data).transaction_id == tid


def start_coturn(
    work: Path,
    *,
    primary: str = PRIMARY,
    alternate: str = ALTERNATE,
    ipv6: str | None = None,
    tls: tuple[Path, Path] | None = None,
    netns: str | None = None,
    port: int | None = None,
) -> StunPeer:
    """coturn as a STUN-only server on ``primary`` and ``alternate`` (and ``ipv6``), with
    --alt-listening-port; TLS on the next port when ``tls`` is (certificate, key)."""
    binary = require_tool("turnserver", "coturn")
    if port is None:
        ips = (primary, alternate) + ((ipv6,) if ipv6 else ())
        port = free_port_run(ips, 3)
    alt_port, tls_port = port + 1, port + 2
    argv = [
        binary,
        "-n",
        "--stun-only",
        "--no-dtls",
        "--no-cli",
        "--listening-ip",
        primary,
        "--listening-ip",
        alternate,
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
    if ipv6:
        argv += ["--listening-ip", ipv6]
    if tls:
        argv += [
            "--tls-listening-port",
            str(tls_port),
            "--alt-tls-listening-port",
            str(tls_port + 10),
            "--cert",
            str(tls[0]),
            "--pkey",
            str(tls[1]),
            "--no-tlsv1",
            "--no-tlsv1_1",
        ]
    else:
        argv.append("--no-tls")
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    server = Server(argv, log=work / "coturn.log")
    peer = StunPeer(
        "coturn", server, primary, alternate, port, alt_port, tls_port if tls else None, ipv6
    )
    if netns is None:
        try:
            server.wait_until(lambda: answers_binding(primary, port), what="(coturn)")
        except RuntimeError:
            server.stop()
            raise
    return peer


def start_stund(work: Path) -> StunPeer:
    binary = require_tool("stund", "stun-server")
    port = free_port_run((PRIMARY, ALTERNATE), 2)
    argv = [binary, "-h", PRIMARY, "-a", ALTERNATE, "-p", str(port), "-o", str(port + 1)]
    server = Server(argv, log=work / "stund.log")
    peer = StunPeer("stund", server, PRIMARY, ALTERNATE, port, port + 1)
    try:
        server.wait_until(lambda: answers_binding(PRIMARY, port), what="(stund)")
    except RuntimeError:
        server.stop()
        raise
    return peer


def wait_for(predicate: object, timeout: float = 15.0) -> bool:
    """Poll a zero-argument callable until true or ``timeout``; bounded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(0.05)
    return False


# ------------------------------------------------------------------------- hostile peers

# SOFTWARE / ERROR-CODE reason text that would clear the screen and retitle the terminal.
HOSTILE_TEXT = "evil\x1b[2J\x1b]0;owned\x07server\nSTUN OK - forged"


@contextlib.contextmanager
def hostile_stun_server(
    mode: str,
    *,
    mapped: tuple[str, int] | None = None,
    text: str = HOSTILE_TEXT,
    other: tuple[str, int] | None = None,
) -> Iterator[int]:
    """A STUN responder in a thread of the test process, on 127.0.0.1 at a free port, that
    answers every request (CHANGE-REQUEST or not) from its one socket, wrongly:

    * ``wrong-tid``: a success response with another transaction id;
    * ``bad-fingerprint``: the right response with its FINGERPRINT's last byte flipped;
    * ``not-stun``: bytes that are not STUN at all;
    * ``mapped``: a valid response whose XOR-MAPPED-ADDRESS is ``mapped`` (e.g. 0.0.0.0:0);
    * ``software``: a valid response whose SOFTWARE is ``text``;
    * ``error``: an error response 400 whose reason is ``text``;
    * ``oversized``: a valid response padded to about 60 KB by an unknown optional attribute.

    ``other`` is sent as OTHER-ADDRESS.  Yields the port; stops within 0.2 s at the end."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((PRIMARY, 0))
    sock.settimeout(0.1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    port = int(sock.getsockname()[1])
    stop = threading.Event()

    def answer(request: StunMessage, peer: tuple[str, int]) -> bytes:
        tid = request.transaction_id
        attributes = [(XOR_MAPPED_ADDRESS, encode_xor_address(*(mapped or peer), tid))]
        if other is not None:
            attributes.append((OTHER_ADDRESS, encode_address(*other)))
        if mode == "software":
            attributes.append((SOFTWARE, text.encode()))
        if mode == "oversized":
            attributes.append((0x8FF0, bytes(60000)))
        if mode == "error":
            reason = text.encode()
            return encode_message(
                StunClass.ERROR_RESPONSE,
                1,
                tid,
                [(ERROR_CODE, bytes((0, 0, 4, 0)) + reason)],
                fingerprint=True,
            )
        if mode == "wrong-tid":
            tid = bytes(b ^ 0xFF for b in tid)
            attributes[0] = (XOR_MAPPED_ADDRESS, encode_xor_address(*peer, tid))
        if mode == "not-stun":
            return b"\xff\xfe not a STUN message \x00" * 4
        reply = encode_message(StunClass.SUCCESS_RESPONSE, 1, tid, attributes, fingerprint=True)
        if mode == "bad-fingerprint":
            reply = reply[:-1] + bytes((reply[-1] ^ 0x01,))
        return reply

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                request = parse_stun(data)
            except ParseError:
                continue
            if request.msg_class is StunClass.REQUEST:
                with contextlib.suppress(OSError):
                    sock.sendto(answer(request, peer), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join(timeout=2)
        sock.close()


def closed_udp_port(host: str = PRIMARY) -> int:
    """A UDP port nobody listens on (the kernel answers ICMP port unreachable)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
