"""From click's keyword arguments to a ProbeResult on screen and an exit code."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from siptool.commands.stun_probe import ProbeSettings, run_probe
from siptool.errors import ParseError
from siptool.net.stun_transport import (
    DEFAULT_SERVERS,
    StunServer,
    TlsOptions,
    families_from_flags,
    parse_server,
    split_server_list,
)

EXIT_USAGE = 2


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
    if kw["as_json"] and kw["jsonl"]:
        sys.stderr.write("siptool stun-probe: --json and --jsonl are exclusive\n")
        return EXIT_USAGE
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
        mode="nagios"
        if kw["nagios"]
        else "json"
        if kw["as_json"]
        else "jsonl"
        if kw["jsonl"]
        else "text",
        quiet=kw["quiet"],
        color=not kw["no_color"],
        warning_ms=kw["warning"],
        critical_ms=kw["critical"],
    )
    result = asyncio.run(run_probe(servers, settings, renderer.reply))
    result.used_default_list = used_default
    return renderer.finish(result)
