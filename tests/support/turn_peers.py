"""coturn as a real TURN server for the tests (RFC 8656 relays, RFC 8489 §9.2 long-term
credentials, the TURN REST API's shared secret as coturn's ``use-auth-secret``).

``start_turn_server`` starts ``turnserver`` on 127.0.0.1 at free ports, relaying from
127.0.0.1 only, to peers on 127.0.0.1 only: every other peer address is denied, so a test can
never make coturn send anything off loopback (and a peer it refuses, 403 to CreatePermission,
is one line of the test away: 127.0.0.2).  It is ready when it answers a Binding request, and
is stopped by PID.  ``netns``/``host`` run it inside a namespace of the issue 4 NAT testbeds.

What a test can read back: ``uri(transport)`` for siptool, ``rest_credentials`` for coturn's
own client, and coturn's log (``-v``: one line per session created, refreshed, closed and
deleted, with the client's address), which is how a test sees an allocation freed on the
server's side (``wait_for_log``/``deleted_sessions``).

Decisions:
- ``allow-loopback-peers`` is needed: coturn refuses 127.x and ::1 peers by default (403).
  ``allowed-peer-ip`` is checked before ``denied-peer-ip``, so "deny 0.0.0.0-255.255.255.255
  and all of IPv6, allow 127.0.0.1" leaves exactly 127.0.0.1 (and ::1 with ``ipv6``).
- ``-v`` (moderate verbosity): without it coturn 4.6.1 logs no session at all; the log goes
  to stdout (``--log-file stdout``), which the Server writes to ``work/turnserver.log``.
- A small relay port range of its own (``relay_ports``): a test sees which ports were used,
  and a range of one or two ports provokes 508 Insufficient Capacity (RFC 8656 §6.2).
- TLS (and DTLS on the same port number over UDP) with a throw-away CA from
  tests/support/kamailio.make_test_ca for "localhost", 127.0.0.1 and ::1; TLS 1.0/1.1 off.
- ``--no-rfc5780``: one listening address, no alternate ports to collide with other peers.
- The REST password is computed here from the RFC-free but de facto scheme (username
  "EXPIRY:USER", password base64(HMAC-SHA1(secret, username))), independently of siptool's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.kamailio import make_test_ca
from tests.support.paths import ROOT
from tests.support.peers import require_tool
from tests.support.servers import Server
from tests.support.stun_peers import answers_binding, free_port_run

LOOPBACK = "127.0.0.1"
LOOPBACK6 = "::1"
REALM = "siptool.test"
USERS = {"alice": "secret"}
SECRET = "siptool-rest-secret"
ALL_IPV4 = "0.0.0.0-255.255.255.255"
ALL_IPV6 = "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
MODES = ("long-term", "rest-secret")


@dataclass
class TurnServer:
    """A running coturn; ``stop()`` kills it by PID."""

    server: Server
    host: str
    port: int
    mode: str
    realm: str
    users: dict[str, str]
    secret: str | None
    relay_range: tuple[int, int]
    tls_port: int | None = None
    ca: Path | None = None
    ipv6: bool = False
    netns: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def log(self) -> Path:
        return self.server.log_path

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def uri(self, transport: str = "udp") -> str:
        """The RFC 7065 URI for ``transport`` udp, tcp or tls."""
        if transport == "tls":
            return f"turns:{self.host}:{self.tls_port}?transport=tcp"
        return f"turn:{self.host}:{self.port}?transport={transport}"

    def rest_credentials(self, user: str = "alice", ttl: int = 600) -> tuple[str, str]:
        """(username, password) of the TURN REST scheme for this server's secret."""
        if self.secret is None:
            raise ValueError("not a rest-secret server")
        return rest_credentials(self.secret, user, ttl)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def mark(self) -> int:
        """Where the log ends now: ``since`` for the searches that must see only what a test
        did after it."""
        return len(self.log_text())

    def wait_for_log(self, pattern: str, timeout: float = 5.0, since: int = 0) -> re.Match[str]:
        """The first match of ``pattern`` in the log after ``since``, waited for (bounded);
        AssertionError with the log's tail if it never comes."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            found = compiled.search(self.log_text(), since)
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                raise AssertionError(f"no {pattern!r} in coturn's log:\n{self.server.log()}")
            time.sleep(0.05)

    def closed_session(self, remote: str, timeout: float = 5.0, since: int = 0) -> str:
        """The id of the session of the client at ``remote`` ("ip:port") once coturn has
        closed and deleted it (its allocation freed), waited for; AssertionError if not."""
        line = rf"session (\d+): closed .* remote {re.escape(remote)},"
        session = self.wait_for_log(line, timeout, since).group(1)
        self.wait_for_log(rf"session {session}: delete: ", timeout, since)
        return session

    def count(self, pattern: str, since: int = 0) -> int:
        """How many times ``pattern`` occurs in the log after ``since``."""
        return len(re.findall(pattern, self.log_text()[since:]))

    def stop(self) -> None:
        self.server.stop()


def rest_credentials(secret: str, user: str = "alice", ttl: int = 600) -> tuple[str, str]:
    """The TURN REST API credentials coturn's use-auth-secret takes: "EXPIRY:USER" and
    base64(HMAC-SHA1(secret, username))."""
    username = f"{int(time.time()) + ttl}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


# ------------------------------------------------------------------------------ starting


def _auth_args(mode: str, users: dict[str, str], secret: str) -> list[str]:
    if mode == "long-term":
        argv = ["--lt-cred-mech"]
        for name, password in users.items():
            argv += ["--user", f"{name}:{password}"]
        return argv
    if mode == "rest-secret":
        return ["--use-auth-secret", "--static-auth-secret", secret]
    raise ValueError(f"mode must be one of {MODES}, not {mode!r}")


def _peer_args(host: str, ipv6: bool, allowed_peers: tuple[str, ...]) -> list[str]:
    """Every peer denied but ``allowed_peers`` (default: the server's own address)."""
    allowed = allowed_peers or ((host, LOOPBACK6) if ipv6 else (host,))
    argv = ["--allow-loopback-peers", "--denied-peer-ip", ALL_IPV4, "--denied-peer-ip", ALL_IPV6]
    for peer in allowed:
        argv += ["--allowed-peer-ip", peer]
    return argv


def _tls_args(work: Path, tls_port: int, host: str) -> tuple[list[str], Path]:
    ca_dir = work / "ca"
    ca_dir.mkdir(exist_ok=True)
    ca = make_test_ca(ca_dir, ips=(host, LOOPBACK6))
    argv = [
        "--tls-listening-port", str(tls_port),
        "--alt-tls-listening-port", str(tls_port),
        "--cert", str(ca.server_cert),
        "--pkey", str(ca.server_key),
        "--no-tlsv1", "--no-tlsv1_1",
    ]  # fmt: skip
    return argv, ca.ca_cert


def _base_args(work: Path, host: str, port: int, realm: str, relay: tuple[int, int]) -> list[str]:
    return [
        "-n", "-v", "--no-cli", "--no-rfc5780", "--fingerprint",
        "--listening-ip", host,
        "--listening-port", str(port),
        "--alt-listening-port", str(port),
        "--relay-ip", host,
        "--min-port", str(relay[0]),
        "--max-port", str(relay[1]),
        "--realm", realm,
        "--log-file", "stdout", "--simple-log",
        "--pidfile", str(work / "turnserver.pid"),
        "--userdb", str(work / "turndb"),
    ]  # fmt: skip


def _ready_check(host: str, port: int, netns: str | None) -> Callable[[], bool]:
    """A Binding request answered; inside ``netns`` through a Python started there."""
    if netns is None:
        return lambda: answers_binding(host, port)
    code = (
        "import sys; from tests.support.stun_peers import answers_binding as a; "
        f"sys.exit(0 if a({host!r}, {port}) else 1)"
    )
    argv = ["ip", "netns", "exec", netns, sys.executable, "-c", code]
    return lambda: subprocess.run(argv, cwd=ROOT, capture_output=True).returncode == 0


def _tls_ready(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=0.2):
        return True


def _ports(host: str, ipv6: bool, relay_ports: int, netns: str | None) -> tuple[int, int]:
    """(listening port, first relay port): the TLS port is the next one, the relays after
    it.  In a namespace of its own the standard 3478 is free."""
    if netns is not None:
        return 3478, 49152
    port = free_port_run((host, LOOPBACK6) if ipv6 else (host,), 2 + relay_ports)
    return port, port + 2


def start_turn_server(
    work: Path,
    *,
    mode: str = "long-term",
    users: dict[str, str] | None = None,
    secret: str = SECRET,
    user_quota: int | None = None,
    tls: bool = False,
    realm: str = REALM,
    ipv6: bool = False,
    host: str = LOOPBACK,
    relay_ports: int = 16,
    allowed_peers: tuple[str, ...] = (),
    netns: str | None = None,
    extra_args: tuple[str, ...] = (),
) -> TurnServer:
    """coturn as a TURN server (see the module docstring); ``users`` {name: password} for
    ``long-term``, ``secret`` for ``rest-secret``; ``user_quota`` concurrent allocations per
    user (486 beyond); ``ipv6`` also listens and relays on ::1 (IPv6 relays)."""
    binary = require_tool("turnserver", "coturn")
    users = dict(USERS if users is None else users)
    port, first_relay = _ports(host, ipv6, relay_ports, netns)
    relay = (first_relay, first_relay + relay_ports - 1)
    argv = [binary, *_base_args(work, host, port, realm, relay), *_auth_args(mode, users, secret)]
    argv += _peer_args(host, ipv6, allowed_peers)
    if ipv6:
        argv += ["--listening-ip", LOOPBACK6, "--relay-ip", LOOPBACK6]
    if user_quota is not None:
        argv += ["--user-quota", str(user_quota)]
    tls_port = port + 1 if tls else None
    ca: Path | None = None
    if tls_port is not None:
        tls_argv, ca = _tls_args(work, tls_port, host)
        argv += tls_argv
    else:
        argv += ["--no-tls", "--no-dtls"]
    argv += list(extra_args)
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    server = Server(argv, log=work / "turnserver.log")
    rest = secret if mode == "rest-secret" else None
    turn = TurnServer(server, host, port, mode, realm, users, rest, relay, tls_port, ca, ipv6)
    turn.netns = netns
    server.wait_until(_ready_check(host, port, netns), what="(coturn TURN)")
    if tls_port is not None and netns is None:
        server.wait_until(lambda: _tls_ready(host, tls_port), what="(coturn TLS)")
    return turn


# ------------------------------------------------------------------- coturn's own client


@dataclass
class UclientRun:
    """What ``turnutils_uclient`` printed: its totals and the errors it named."""

    returncode: int
    output: str
    seconds: float

    def _last(self, name: str) -> int | None:
        found = re.findall(rf"{name}=(\d+)", self.output)
        return int(found[-1]) if found else None

    @property
    def sent(self) -> int | None:
        return self._last("tot_send_msgs")

    @property
    def received(self) -> int | None:
        return self._last("tot_recv_msgs")

    @property
    def lost_pct(self) -> float | None:
        found = re.findall(r"Total lost packets \d+ \(([\d.]+)%\)", self.output)
        return float(found[-1]) if found else None

    def errors(self) -> list[int]:
        return [int(code) for code in re.findall(r"error (\d{3}) ", self.output)]


def credentials_for(turn: TurnServer, user: str = "alice") -> list[str]:
    """turnutils_uclient's flags for ``turn``'s credentials: -w PASSWORD or -W SECRET."""
    if turn.secret is not None:
        return ["-u", user, "-W", turn.secret]
    return ["-u", user, "-w", turn.users[user]]


def uclient(turn: TurnServer, *flags: str, timeout: float = 15.0) -> UclientRun:
    """``turnutils_uclient -p PORT FLAGS HOST`` against ``turn`` (credentials are in FLAGS:
    see ``credentials_for``), bounded by ``timeout``; a run killed by it has returncode
    -9 and what it printed so far.  -S takes the TLS port."""
    binary = require_tool("turnutils_uclient", "coturn")
    port = turn.tls_port if "-S" in flags and turn.tls_port else turn.port
    argv = [binary, "-p", str(port), *flags, turn.host]
    started = time.monotonic()
    with subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, errors="replace", start_new_session=True,
    ) as process:  # fmt: skip
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    return UclientRun(process.returncode, output, time.monotonic() - started)
