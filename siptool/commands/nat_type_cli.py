"""From click's keyword arguments to a NatResult on screen and an exit code."""

from __future__ import annotations

import asyncio
import sys
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
    )
    from siptool.render.nat_type import NatRenderer

    renderer = NatRenderer(
        mode="json" if kw["as_json"] else "text", quiet=kw["quiet"], color=not kw["no_color"]
    )
    result = asyncio.run(run_nat_type(server, settings))
    return renderer.finish(result)
