"""`siptool nat-type --engine pystun3` / `--compare`: pystun3's RFC 3489 classifier, run in a
child process under a watchdog (it can wait forever on some replies).

Decisions:

* pystun3 compares the mapped IP with the address its socket is bound to, so it is bound to the
  concrete local address toward the server (bound to 0.0.0.0 it could never answer "Open
  Internet").  It speaks IPv4 only.
* The child is killed when the watchdog passes, and when siptool is interrupted: no pystun3
  outlives the command.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any

from siptool.addr import format_address
from siptool.errors import TransportError
from siptool.net.stun_transport import resolve_server, source_address_toward
from siptool.stun.behavior import Classic
from siptool.stun.servers import StunServer

ENGINE = "pystun3"

# pystun3's labels (pystun3 2.0.0 stun/__init__.py) in RFC 3489 terms.
PYSTUN3_LABELS = {
    "Blocked": Classic.UDP_BLOCKED,
    "Open Internet": Classic.OPEN_INTERNET,
    "Full Cone": Classic.FULL_CONE,
    "Symmetric UDP Firewall": Classic.SYMMETRIC_UDP_FIREWALL,
    "Restric NAT": Classic.RESTRICTED_CONE,
    "Restric Port NAT": Classic.PORT_RESTRICTED_CONE,
    "Symmetric NAT": Classic.SYMMETRIC,
}

_PYSTUN3_SCRIPT = """
import json, socket, sys, time
import stun
host, port, source_ip = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)  # what stun.get_ip_info sets
s.bind((source_ip, 0))
started = time.monotonic()
nat_type, info = stun.get_nat_type(s, source_ip, s.getsockname()[1], stun_host=host, stun_port=port)
print(json.dumps({"nat_type": nat_type, "ip": info.get("ExternalIP"),
                  "port": info.get("ExternalPort"), "local": list(s.getsockname()),
                  "elapsed": time.monotonic() - started}))
"""


@dataclass
class EngineReport:
    """pystun3's verdict, as it gave it."""

    classic: Classic | None = None
    raw: str | None = None
    mapped: str | None = None
    local: str | None = None
    elapsed_ms: float | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": ENGINE,
            "classic": self.classic.value if self.classic is not None else None,
            "raw": self.raw,
            "mapped": self.mapped,
            "local": self.local,
            "elapsed_ms": self.elapsed_ms,
            "error": self.error,
        }


async def run_pystun3(
    server: StunServer, *, local_address: str | None, timeout: float, watchdog: float
) -> EngineReport:
    """pystun3's classifier in a child process, killed when ``watchdog`` seconds pass."""
    report = EngineReport()
    try:
        addresses = await resolve_server(server, (socket.AF_INET,), timeout)
    except TransportError as exc:
        report.error = exc.message
        return report
    host, port = addresses[0]
    source_ip = local_address or source_address_toward((host, port)) or "0.0.0.0"
    started = time.monotonic()
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _PYSTUN3_SCRIPT,
            host,
            str(port),
            source_ip,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
    except OSError as exc:
        report.error = f"cannot start pystun3: {exc}"
        return report
    output = await _communicate(process, watchdog)
    report.elapsed_ms = round((time.monotonic() - started) * 1000, 1)
    if output is None:
        report.error = f"pystun3 gave no verdict within the {watchdog:g} s watchdog"
        return report
    _read_verdict(report, process.returncode, *output)
    return report


async def _communicate(
    process: asyncio.subprocess.Process, watchdog: float
) -> tuple[bytes, bytes] | None:
    """The child's stdout and stderr, or None when the watchdog killed it.  Cancelled (Ctrl-C),
    it kills the child too."""
    try:
        return await asyncio.wait_for(process.communicate(), watchdog)
    except TimeoutError:
        return None
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def _read_verdict(report: EngineReport, returncode: int | None, out: bytes, err: bytes) -> None:
    if returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        report.error = "pystun3 failed: " + (lines[-1] if lines else f"exit {returncode}")
        return
    try:
        data = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        report.error = "pystun3 printed no verdict"
        return
    report.raw = str(data["nat_type"])
    report.classic = PYSTUN3_LABELS.get(report.raw, Classic.INCONCLUSIVE)
    if data.get("ip") is not None and data.get("port") is not None:
        report.mapped = format_address(str(data["ip"]), int(data["port"]))
    report.local = format_address(str(data["local"][0]), int(data["local"][1]))
