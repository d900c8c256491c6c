"""A real DNS server for the resolution tests: dnsmasq on loopback at a free port, serving only
the records a test gives it (authoritative for .test), started and stopped by the test."""

from __future__ import annotations

import asyncio
from pathlib import Path

from siptool.net.resolver import resolve_target
from siptool.sip.target import parse_target
from tests.peers import require_tool
from tests.servers import Server, free_port


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

    try:
        server.wait_until(answers, what="(answering DNS)")
    except BaseException:
        server.stop()
        raise
    return server, address
