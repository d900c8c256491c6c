"""baresip (Debian baresip 1.0) as the real user agent of the issue 11 tests: registered at a
registrar, auto-answering INVITEs with G.711 SDP, answering MESSAGE (RFC 3428) 200, and,
transferred by a REFER inside a call (RFC 3515), calling the Refer-To target and reporting
the outcome in message/sipfrag NOTIFYs.

Its configuration is tests/fixtures/baresip/config and accounts (templates filled here); it
runs in the foreground with ``-s`` (every SIP message it sends and receives traced on its
stdout), stopped by PID.  What it saw is read two ways: the SIP trace (``requests``,
``received_messages``) and the ctrl_tcp module's events (``events``, ``wait_event``:
CALL_ESTABLISHED, CALL_CLOSED, CALL_TRANSFER ... as JSON netstrings).

Decisions:
- Ready once its log says the registrar answered the REGISTER 200 (``{0/UDP/v4} 200 OK``,
  baresip's own line) and ctrl_tcp accepts a connection: both are facts the tests rely on.
- Its SIP port P is taken only when P+1 is free for TCP too: baresip 1.0 always adds a TLS
  transport at P+1 and fails to start when it cannot bind it.
- Received MESSAGEs come from the SIP trace, not from ctrl_tcp: baresip 1.0 reports an
  incoming MESSAGE to its UI modules only, and a UI on stdin (stdio) cannot run with stdin on
  /dev/null (epoll refuses it).
- ctrl_tcp is read on demand (a non-blocking drain of the socket in ``events``), no thread.
- The trace is parsed here, not with siptool's engine: the peer's record of what arrived must
  not depend on the code under test.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import string
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.paths import FIXTURES
from tests.support.peers import require_tool, unavailable
from tests.support.servers import Server, free_port
from tests.support.sipp import _port_taken

TEMPLATES = FIXTURES / "baresip"
MODULE_PATH = Path("/usr/lib/baresip/modules")
REQUIRED_MODULES = ("g711", "ausine", "aubridge", "account", "menu", "ctrl_tcp")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# One traced message: "#", "UDP 127.0.0.1:5060 -> 127.0.0.1:5062", the message, then the
# colour reset (baresip's SIP trace handler).
_TRACE = re.compile(r"\x1b\[36;1m#\n(\w+) (\S+) -> (\S+)\n(.*?)\x1b\[;m", re.S)
_REGISTERED = re.compile(r"\{\d+/\w+/v[46]\} 200 ")
_COMPACT = {"f": "from", "t": "to", "c": "content-type", "i": "call-id", "l": "content-length"}


@dataclass(frozen=True)
class TracedMessage:
    """A SIP message in baresip's trace: which way it went and over what, its first line,
    headers (lower-case names, compact forms expanded, every value of a repeated header) and
    body."""

    incoming: bool
    transport: str
    source: str
    destination: str
    start_line: str
    headers: dict[str, list[str]]
    body: str

    @property
    def method(self) -> str | None:
        first = self.start_line.split(" ", 1)[0]
        return None if first.startswith("SIP/") else first

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


def parse_traced(
    text: str, transport: str, source: str, destination: str, me: str
) -> TracedMessage:
    """One message of the trace (``me``: baresip's host:port, to tell incoming from outgoing)."""
    head, _, body = text.replace("\r\n", "\n").partition("\n\n")
    start, *lines = head.split("\n")
    headers: dict[str, list[str]] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            key = name.strip().lower()
            headers.setdefault(_COMPACT.get(key, key), []).append(value.strip())
    length = headers.get("content-length", ["0"])[0]
    body = body[: int(length)] if length.isdigit() else body
    return TracedMessage(destination == me, transport, source, destination, start, headers, body)


@dataclass
class Baresip:
    server: Server
    user: str
    aor: str
    host: str
    port: int
    ctrl_port: int
    config_dir: Path
    _ctrl: socket.socket | None = None
    _ctrl_buffer: bytes = b""
    _events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def uri(self) -> str:
        """The address of record it registered (sip:USER@registrar)."""
        return self.aor

    @property
    def hostport(self) -> str:
        """Where it listens for SIP (its Contact's host:port)."""
        return f"{self.host}:{self.port}"

    @property
    def log(self) -> str:
        """Its whole stdout and stderr so far, colour codes kept (the trace is delimited by
        them); ``text`` is the same without."""
        try:
            return self.server.log_path.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def text(self) -> str:
        return _ANSI.sub("", self.log)

    def traced(self) -> list[TracedMessage]:
        """Every SIP message it sent or received so far, in order."""
        return [
            parse_traced(m[3], m[0], m[1], m[2], self.hostport) for m in _TRACE.findall(self.log)
        ]

    def requests(self, method: str) -> list[TracedMessage]:
        """The ``method`` requests it received."""
        return [m for m in self.traced() if m.incoming and m.method == method]

    def received_messages(self) -> list[TracedMessage]:
        """The MESSAGE requests it received (from, to, content-type, body in each)."""
        return self.requests("MESSAGE")

    def answers(self, method: str) -> list[str]:
        """The status lines it sent to ``method`` requests, in order."""
        return [
            m.start_line
            for m in self.traced()
            if not m.incoming and m.method is None and (m.header("cseq") or "").endswith(method)
        ]

    def events(self) -> list[dict[str, Any]]:
        """Every ctrl_tcp event since it started being read (the connection is made once
        baresip is ready: its REGISTER events are not among them)."""
        if self._ctrl is not None:
            self._drain()
        return list(self._events)

    def wait_event(self, kind: str, timeout: float = 10.0, count: int = 1) -> dict[str, Any]:
        """The ``count``-th ctrl_tcp event of type ``kind`` (CALL_ESTABLISHED ...), waiting at
        most ``timeout`` seconds; AssertionError with the log tail if it does not come."""
        deadline = time.monotonic() + timeout
        while True:
            matching = [e for e in self.events() if e.get("type") == kind]
            if len(matching) >= count:
                return matching[count - 1]
            if time.monotonic() > deadline or self.server.process.poll() is not None:
                raise AssertionError(
                    f"no {kind} event #{count} in {timeout} s\n{self.text[-3000:]}"
                )
            time.sleep(0.05)

    def calls(self) -> list[dict[str, Any]]:
        """The call events (class "call": CALL_INCOMING, CALL_ESTABLISHED, CALL_CLOSED ...)."""
        return [e for e in self.events() if e.get("class") == "call"]

    def stop(self) -> None:
        """SIGTERM: baresip hangs up its calls and unregisters (at most 2 s given); then
        Server.stop's SIGTERM, which baresip takes as "exit now", and the group's SIGKILL."""
        if self._ctrl is not None:
            self._ctrl.close()
            self._ctrl = None
        if self.server.process.poll() is None:
            self.server.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.server.process.wait(timeout=2)
        self.server.stop()

    def connect_ctrl(self) -> bool:
        try:
            self._ctrl = socket.create_connection((self.host, self.ctrl_port), timeout=0.5)
        except OSError:
            return False
        self._ctrl.setblocking(False)
        return True

    def _drain(self) -> None:
        assert self._ctrl is not None
        for _ in range(1000):  # bounded: at most 4 MB read per call
            try:
                chunk = self._ctrl.recv(4096)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                self._ctrl.close()
                self._ctrl = None
                break
            self._ctrl_buffer += chunk
        self._parse_netstrings()

    def _parse_netstrings(self) -> None:
        """ctrl_tcp's framing: ``LENGTH:JSON,`` (netstrings)."""
        while True:
            length, colon, rest = self._ctrl_buffer.partition(b":")
            if not colon or not length.isdigit() or len(rest) < int(length) + 1:
                return
            payload, self._ctrl_buffer = rest[: int(length)], rest[int(length) + 1 :]
            document = json.loads(payload)
            if isinstance(document, dict):
                self._events.append(document)


def sip_port_pair(host: str = "127.0.0.1") -> int:
    """A port P free for UDP and TCP on ``host`` with P+1 free for TCP (baresip's TLS)."""
    for _ in range(50):
        port = free_port("udp", host, both=True)
        if port < 65535 and not _port_taken("tcp", host, port + 1):
            return port
    raise RuntimeError("no free SIP port pair for baresip")


def _registrar_hostport(registrar: str) -> str:
    """host:port of a registrar given as a SIP URI (sip:[user@]host:port[;params]) or
    host:port."""
    match = re.fullmatch(r"(?:sips?:)?(?:[^@]+@)?([^;>]+)(?:;.*)?", registrar.strip("<>"))
    if match is None:
        raise ValueError(f"not a registrar address: {registrar!r}")
    return match.group(1)


def write_config(
    directory: Path, *, host: str, port: int, ctrl_port: int, aor: str, password: str | None
) -> Path:
    """The config directory: config and accounts from the templates, an empty contacts."""
    directory.mkdir(parents=True, exist_ok=True)
    config = string.Template((TEMPLATES / "config").read_text()).substitute(
        sip_host=host, sip_port=port, ctrl_host=host, ctrl_port=ctrl_port, module_path=MODULE_PATH
    )
    auth = f"auth_pass={password};" if password is not None else ""
    accounts = string.Template((TEMPLATES / "accounts").read_text()).substitute(
        aor=aor, auth=auth, expires=300
    )
    (directory / "config").write_text(config)
    (directory / "accounts").write_text(accounts)
    (directory / "contacts").write_text("")
    return directory


def start_baresip(
    directory: Path, registrar: str, user: str, *, password: str | None = None
) -> Baresip:
    """baresip registering sip:USER@REGISTRAR (a URI or host:port; over UDP whatever its
    transport parameter; digest with ``password`` when challenged), its config and log in
    ``directory``; ready once registered and its ctrl_tcp port answers."""
    binary = require_tool("baresip", "baresip-core")
    missing = [m for m in REQUIRED_MODULES if not (MODULE_PATH / f"{m}.so").is_file()]
    if missing:
        unavailable(f"baresip modules {', '.join(missing)} missing (Debian package baresip-core)")
    host = "127.0.0.1"
    port, ctrl_port = sip_port_pair(host), free_port("tcp", host)
    aor = f"sip:{user}@{_registrar_hostport(registrar)}"
    config = write_config(
        directory / "baresip", host=host, port=port, ctrl_port=ctrl_port, aor=aor, password=password
    )
    server = Server([binary, "-f", str(config), "-s"], log=directory / "baresip.log", cwd=directory)
    agent = Baresip(server, user, aor, host, port, ctrl_port, config)
    server.wait_until(lambda: bool(_REGISTERED.search(agent.text)), what="(registered)")
    server.wait_until(agent.connect_ctrl, what="(ctrl_tcp)")
    return agent
