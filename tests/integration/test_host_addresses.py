"""net/interfaces.py against iproute2: the host addresses ice-gather offers are the ones `ip`
lists for the interfaces that are up (link-local, deprecated and temporary IPv6 left out, and
loopback only when asked for)."""

from __future__ import annotations

import json
import subprocess

from siptool.net.interfaces import host_addresses
from tests.support.peers import require_tool


def _ip_addresses(loopback: bool) -> list[tuple[str, str]]:
    ip = require_tool("ip", "iproute2")
    shown = json.loads(
        subprocess.run(
            [ip, "-j", "addr", "show", "up"], check=True, capture_output=True, text=True
        ).stdout
    )
    out: list[tuple[str, str]] = []
    for link in shown:
        for info in link.get("addr_info", []):
            if info.get("scope") == "link" or info.get("deprecated") or info.get("temporary"):
                continue
            if info.get("family") == "inet6" and info.get("tentative"):
                continue
            if link["ifname"] == "lo" and not loopback:
                continue
            # IPv4: SIOCGIFADDR gives an interface's first address only.
            out.append((link["ifname"], info["local"]))
    return out


def _first_ipv4_only(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: set[str] = set()
    kept = []
    for name, address in pairs:
        if ":" not in address:
            if name in seen:
                continue
            seen.add(name)
        kept.append((name, address))
    return kept


def test_host_addresses_are_what_iproute2_lists() -> None:
    for loopback in (False, True):
        ours = sorted((h.interface, h.address) for h in host_addresses(loopback=loopback))
        theirs = sorted(_first_ipv4_only(_ip_addresses(loopback)))
        assert ours == theirs
