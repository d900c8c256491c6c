"""A real DNS server for the resolution tests: dnsmasq on loopback at a free port, serving only
the records a test gives it (authoritative for .test), started and stopped by the test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

from siptool.net.resolver import resolve_target
from siptool.sip.target import parse_target
from tests.support.peers import require_tool
from tests.support.servers import Server, free_port


def start_dnsmasq(directory: Path, records: list[str], probe_name: str) -> tuple[Server, str]:
    """(server, "127.0.0.1:PORT"); ready once ``probe_name`` (an A record given) resolves."""
    dnsmasq = require_tool("dnsmasq", "dnsmasq")
    port = free_port("udp", both=True)
    server = Server(
        [
            dnsmasq,
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            f"--port={port}",
            f"--pid-file={directory / 'dnsmasq.pid'}",
            "--log-facility=-",
            # Authoritative for .test: names without a record get NXDOMAIN/NODATA, not REFUSED.
            "--local=/test/",
            *records,
        ],
        log=directory / "dnsmasq.log",
    )
    address = f"127.0.0.1:{port}"

    def answers() -> bool:
        target = parse_target(f"{probe_name}:1")
        try:
            result = asyncio.run(resolve_target(target, dns_server=address, timeout=0.5))
        except Exception:
            return False
        return bool(result.candidates)

    server.wait_until(answers, what="(answering DNS)")
    return server, address


@contextlib.contextmanager
def dnsmasq(directory: Path, records: list[str], probe_name: str) -> Iterator[str]:
    """``start_dnsmasq`` for the block: yields "127.0.0.1:PORT", stops it at the end."""
    server, address = start_dnsmasq(directory, records, probe_name)
    try:
        yield address
    finally:
        server.stop()


def srv_zone(domain: str, targets: list[tuple[str, int]]) -> list[str]:
    """Records for ``sip:DOMAIN`` over UDP: one SRV target per (name, port), in failover order
    (priorities 10, 20, ...), each name.DOMAIN an A record of 127.0.0.1 (RFC 3263 §4.4)."""
    srv = [
        f"--srv-host=_sip._udp.{domain},{name}.{domain},{port},{10 * (i + 1)},0"
        for i, (name, port) in enumerate(targets)
    ]
    return srv + [f"--host-record={name}.{domain},127.0.0.1" for name, _ in targets]
