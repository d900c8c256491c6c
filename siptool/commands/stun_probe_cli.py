"""From click's keyword arguments to a ProbeResult on screen and an exit code."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from siptool.commands.stun_probe import (
    DEFAULT_SERVERS,
    ProbeSettings,
    run_probe,
    split_server_list,
)
from siptool.errors import ParseError
from siptool.net.stun_transport import StunServer, TlsOptions, parse_server

EXIT_USAGE = 2


def families_from_flags(only4: bool, only6: bool) -> tuple[int, ...]:
    import socket

    if only4 and not only6:
        return (socket.AF_INET,)
    if only6 and not only4:
        return (socket.AF_INET6,)
    return (socket.AF_INET, socket.AF_INET6)


def parse_servers(texts: list[str], transport: str | None) -> list[StunServer]:
    """``ValueError`` naming the bad SERVER."""
    servers = []
    for text in texts:
        try:
            servers.append(parse_server(text, transport))
        except ParseError as exc:
            raise ValueError(f"bad SERVER {text!r}: {exc.message}") from None
    return servers


def main(kw: dict[str, Any]) -> int:
    texts = list(kw["servers"])
    used_default = False
    if not texts:
        texts = split_server_list(kw["server_list"]) if kw["server_list"] else []
        if not texts:
            texts = list(DEFAULT_SERVERS)
        used_default = True
    try:
        servers = parse_servers(texts, kw["transport"])
    except ValueError as exc:
        sys.stderr.write(f"siptool stun-probe: {exc}\n")
        return EXIT_USAGE
    if kw["local_port"] and any(s.transport != "udp" for s in servers) and len(servers) > 1:
        sys.stderr.write("siptool stun-probe: --local-port with TCP/TLS: give one server\n")
        return EXIT_USAGE
    settings = ProbeSettings(
        timeout=kw["timeout"],
        families=families_from_flags(kw["family4"], kw["family6"]),
        local_address=kw["local_address"],
        local_port=kw["local_port"],
        verbose=kw["verbose"],
        count=kw["count"],
        interval=kw["interval"],
        tls=TlsOptions(insecure=kw["insecure"], ca_file=kw["ca_file"]),
        software=kw["software"],
    )
    from siptool.render.stun_probe import ProbeRenderer

    renderer = ProbeRenderer(
        mode="nagios" if kw["nagios"] else "json" if kw["as_json"] else "text",
        quiet=kw["quiet"],
        color=not kw["no_color"],
        warning_ms=kw["warning"],
        critical_ms=kw["critical"],
    )
    result = asyncio.run(run_probe(servers, settings))
    result.used_default_list = used_default
    return renderer.finish(result)
