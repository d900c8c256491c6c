"""From click's keyword arguments to a NatResult on screen and an exit code."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

from siptool.commands.nat_type import NatSettings, run_nat_type
from siptool.errors import ParseError
from siptool.net.stun_transport import (
    DEFAULT_SERVERS,
    families_from_flags,
    parse_server,
    split_server_list,
)

EXIT_USAGE = 2


def _usage(message: str) -> int:
    sys.stderr.write(f"siptool nat-type: {message}\n")
    return EXIT_USAGE


def command_started() -> float:
    """``time.monotonic()`` at the start of this process, so that ``--timeout`` bounds the
    whole command, interpreter start-up included.  Linux only (``/proc``); elsewhere, and in
    a process older than a few seconds (siptool called from inside a long-lived Python), now.
    """
    now = time.monotonic()
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            # Field 22 (starttime, clock ticks since boot) follows "pid (comm) state ...";
            # comm may hold spaces and parentheses, so count from the last ')'.
            fields = stat.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime", encoding="ascii") as uptime:
            up = float(uptime.read().split()[0])
        age = up - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return now
    return now - age if 0.0 <= age <= 5.0 else now


def main(kw: dict[str, Any]) -> int:
    text = kw["server"]
    if not text:
        listed = split_server_list(kw["server_list"]) if kw["server_list"] else []
        text = (listed or list(DEFAULT_SERVERS))[0]
    try:
        server = parse_server(text)
    except ParseError as exc:
        return _usage(f"bad SERVER {text!r}: {exc.message}")
    if server.transport != "udp":
        return _usage(f"{text}: NAT behaviour discovery runs over UDP (a stun: URI or host:port)")
    engine = kw["engine"].lower()
    if kw["compare"] and engine == "pystun3":
        return _usage("--compare runs pystun3 beside siptool's engine: drop --engine pystun3")
    settings = NatSettings(
        timeout=kw["timeout"],
        families=families_from_flags(kw["family4"], kw["family6"]),
        local_address=kw["local_address"],
        local_port=kw["local_port"],
        verbose=kw["verbose"],
        filter_wait=kw["filter_wait"],
        lifetime=kw["lifetime"],
        lifetime_max=kw["lifetime_max"],
        engine=engine,
        compare=kw["compare"],
        watchdog=kw["watchdog"],
        started=command_started(),
    )
    from siptool.render.nat_type import NatRenderer

    renderer = NatRenderer(
        mode="json" if kw["as_json"] else "text", quiet=kw["quiet"], color=not kw["no_color"]
    )
    result = asyncio.run(run_nat_type(server, settings))
    return renderer.finish(result)
