"""Real STUN servers for the tests: coturn (STUN only, RFC 5389/5780) and stund (Vovida 0.97,
RFC 3489), each started on two addresses so that CHANGE-REQUEST and OTHER-ADDRESS work, at free
ports, waited for by a real Binding request, and stopped by PID.

``start_coturn`` also runs inside a network namespace: pass ``netns`` and the addresses there
(the NAT testbed in tests/nat uses it on 198.51.100.2 and 198.51.100.3).

``stun_responder`` is a STUN server run by the test itself; ``hostile_stun_server`` one that
answers wrongly on purpose (wrong transaction id, bad FINGERPRINT, 0.0.0.0:0 mapped, terminal
escapes in SOFTWARE ...).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

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
from tests.support.peers import require_tool, unavailable
from tests.support.responders import Address, udp_responder
from tests.support.servers import Server

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
    def address(self) -> Address:
        """The primary address, for a socket."""
        return self.primary_ip, self.port

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
    log: Path | None = None,
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
    server = Server(argv, log=log or work / "coturn.log")
    peer = StunPeer(
        "coturn", server, primary, alternate, port, alt_port, tls_port if tls else None, ipv6
    )
    if netns is None:
        server.wait_until(lambda: answers_binding(primary, port), what="(coturn)")
    return peer


def start_stund(work: Path) -> StunPeer:
    binary = require_tool("stund", "stun-server")
    port = free_port_run((PRIMARY, ALTERNATE), 2)
    argv = [binary, "-h", PRIMARY, "-a", ALTERNATE, "-p", str(port), "-o", str(port + 1)]
    server = Server(argv, log=work / "stund.log")
    peer = StunPeer("stund", server, PRIMARY, ALTERNATE, port, port + 1)
    server.wait_until(lambda: answers_binding(PRIMARY, port), what="(stund)")
    return peer


# ------------------------------------------------------------------------- hostile peers

# SOFTWARE / ERROR-CODE reason text that would clear the screen and retitle the terminal.
HOSTILE_TEXT = "evil\x1b[2J\x1b]0;owned\x07server\nSTUN OK - forged"


# (the request, where it came from) -> the reply, and the socket to send it from (None: the
# server's own); None: no reply.
StunAnswer = Callable[[StunMessage, Address], tuple[bytes, socket.socket | None] | None]


@contextlib.contextmanager
def stun_responder(answer: StunAnswer) -> Iterator[int]:
    """A STUN server in a thread of the test process on 127.0.0.1 at a free port: every
    request (CHANGE-REQUEST or not) that parses goes to ``answer``.  Yields the port."""

    def handle(sock: socket.socket, data: bytes, peer: Address) -> None:
        request = parse_stun(data)
        if request.msg_class is not StunClass.REQUEST:
            return
        reply = answer(request, peer)
        if reply is not None:
            wire, sender = reply
            (sender or sock).sendto(wire, peer)

    with udp_responder(handle, PRIMARY) as sock:
        yield int(sock.getsockname()[1])


def hostile_stun_server(
    mode: str,
    *,
    mapped: tuple[str, int] | None = None,
    text: str = HOSTILE_TEXT,
    other: tuple[str, int] | None = None,
) -> contextlib.AbstractContextManager[int]:
    """A ``stun_responder`` that answers every request from its one socket, wrongly:

    * ``wrong-tid``: a success response with another transaction id;
    * ``bad-fingerprint``: the right response with its FINGERPRINT's last byte flipped;
    * ``not-stun``: bytes that are not STUN at all;
    * ``mapped``: a valid response whose XOR-MAPPED-ADDRESS is ``mapped`` (e.g. 0.0.0.0:0);
    * ``software``: a valid response whose SOFTWARE is ``text``;
    * ``error``: an error response 400 whose reason is ``text``;
    * ``oversized``: a valid response padded to about 60 KB by an unknown optional attribute.

    ``other`` is sent as OTHER-ADDRESS.  Yields the port; stops within 0.2 s at the end."""

    def answer(request: StunMessage, peer: Address) -> tuple[bytes, None]:
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
            error = encode_message(
                StunClass.ERROR_RESPONSE,
                1,
                tid,
                [(ERROR_CODE, bytes((0, 0, 4, 0)) + reason)],
                fingerprint=True,
            )
            return error, None
        if mode == "wrong-tid":
            tid = bytes(b ^ 0xFF for b in tid)
            attributes[0] = (XOR_MAPPED_ADDRESS, encode_xor_address(*peer, tid))
        if mode == "not-stun":
            return b"\xff\xfe not a STUN message \x00" * 4, None
        reply = encode_message(StunClass.SUCCESS_RESPONSE, 1, tid, attributes, fingerprint=True)
        if mode == "bad-fingerprint":
            reply = reply[:-1] + bytes((reply[-1] ^ 0x01,))
        return reply, None

    return stun_responder(answer)
