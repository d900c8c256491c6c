"""A NAT testbed made of network namespaces: client -- router -- public.

    client ns            router ns                          public ns
    10.0.0.2/24  ----  10.0.0.1/24 | 198.51.100.1/24  ----  198.51.100.2/24, 198.51.100.3/24
                       (iptables: the variant's NAT)         coturn on .2 and .3, ports 3478/3479

The "public" side is TEST-NET-2 (RFC 5737), the private side RFC 1918; no namespace has a
route anywhere else, and nothing touches the host's own network.  The client routes only
198.51.100.0/24 via the router; the public side routes 10.0.0.0/24 back only in the routed
(no NAT) variant, as the internet would never route a private network.

Variants and the behaviour Linux netfilter gives them:

* ``routed``: no NAT                                  -> open-internet
* ``full-cone``: 1:1 SNAT + DNAT to 198.51.100.10      -> endpoint-independent both: full-cone
* ``masquerade``: MASQUERADE                          -> EIM + APDF: port-restricted-cone
* ``random-fully``: MASQUERADE --random-fully          -> address-and-port-dependent mapping
* ``blocked``: MASQUERADE, forwarded UDP dropped      -> udp-blocked

``Testbed.build`` undoes whatever it made when any step fails; ``Testbed.destroy`` deletes the
namespaces (which takes their veths with them) and stops coturn by PID, and is safe to call
twice.  Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.netns import NamespaceBed, add_namespace, delete_namespaces
from tests.support.paths import ROOT
from tests.support.peers import require_root, require_tool
from tests.support.run import SIPTOOL
from tests.support.servers import Server
from tests.support.stun_peers import start_coturn

CLIENT_IP = "10.0.0.2"
ROUTER_LAN = "10.0.0.1"
ROUTER_WAN = "198.51.100.1"
STATIC_PUBLIC = "198.51.100.10"
SERVER_IP = "198.51.100.2"
SERVER_ALT_IP = "198.51.100.3"
STUN_PORT = 3478
STUN_ALT_PORT = 3479

VARIANTS = ("routed", "full-cone", "masquerade", "random-fully", "blocked")

# (mapping, filtering, classic) that siptool must find on each variant.
EXPECTED: dict[str, tuple[str, str, str]] = {
    "routed": ("none", "none", "open-internet"),
    "full-cone": ("endpoint-independent", "endpoint-independent", "full-cone"),
    "masquerade": (
        "endpoint-independent",
        "address-and-port-dependent",
        "port-restricted-cone",
    ),
    "random-fully": ("address-and-port-dependent", "address-and-port-dependent", "symmetric"),
    "blocked": ("unknown", "unknown", "udp-blocked"),
}


def require_testbed_tools() -> None:
    """Skip on a laptop, fail under CI, without root, iproute2, iptables or coturn."""
    require_root()
    require_tool("ip", "iproute2")
    require_tool("iptables", "iptables")
    require_tool("turnserver", "coturn")


def nat_rules(variant: str) -> list[list[str]]:
    """The iptables commands (run in the router) that make ``variant``."""
    if variant == "routed":
        return []
    if variant == "full-cone":
        return [
            ["-t", "nat", "-A", "POSTROUTING", "-o", "r1", "-s", CLIENT_IP,
             "-j", "SNAT", "--to-source", STATIC_PUBLIC],
            ["-t", "nat", "-A", "PREROUTING", "-i", "r1", "-d", STATIC_PUBLIC,
             "-j", "DNAT", "--to-destination", CLIENT_IP],
        ]  # fmt: skip
    masquerade = ["-t", "nat", "-A", "POSTROUTING", "-o", "r1", "-s", "10.0.0.0/24",
                  "-j", "MASQUERADE"]  # fmt: skip
    if variant == "masquerade":
        return [masquerade]
    if variant == "random-fully":
        return [[*masquerade, "--random-fully"]]
    if variant == "blocked":
        return [masquerade, ["-A", "FORWARD", "-p", "udp", "-j", "DROP"]]
    raise ValueError(f"unknown variant {variant!r}")


@dataclass
class NatTestbed(NamespaceBed):
    variant: str
    work: Path
    tag: str = field(
        default_factory=lambda: f"{os.getpid() % 100000:05d}{time.time_ns() % 997:03d}"
    )
    namespaces: list[str] = field(default_factory=list)
    coturn: Server | None = None
    # The namespaces' names: siptool-c/-r/-p and the tag.
    client: str = field(init=False)
    router: str = field(init=False)
    public: str = field(init=False)

    def __post_init__(self) -> None:
        self.client, self.router, self.public = (f"siptool-{k}{self.tag}" for k in "crp")

    @property
    def server(self) -> str:
        return f"{SERVER_IP}:{STUN_PORT}"

    # -- building ----------------------------------------------------------------------

    def _build(self) -> None:
        for name in (self.client, self.router, self.public):
            add_namespace(name, self.namespaces)
        # veth pairs are created inside the router namespace, then one end moved: nothing is
        # ever made in the host's namespace.
        r = self.router
        self.ns(r, "ip", "link", "add", "r0", "type", "veth", "peer", "name", "c0")
        self.ns(r, "ip", "link", "set", "c0", "netns", self.client)
        self.ns(r, "ip", "link", "add", "r1", "type", "veth", "peer", "name", "p0")
        self.ns(r, "ip", "link", "set", "p0", "netns", self.public)
        self.ns(r, "ip", "addr", "add", f"{ROUTER_LAN}/24", "dev", "r0")
        self.ns(r, "ip", "addr", "add", f"{ROUTER_WAN}/24", "dev", "r1")
        self.ns(r, "ip", "link", "set", "r0", "up")
        self.ns(r, "ip", "link", "set", "r1", "up")
        self.ns(r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        c = self.client
        self.ns(c, "ip", "addr", "add", f"{CLIENT_IP}/24", "dev", "c0")
        self.ns(c, "ip", "link", "set", "c0", "up")
        self.ns(c, "ip", "route", "add", "198.51.100.0/24", "via", ROUTER_LAN)
        p = self.public
        self.ns(p, "ip", "addr", "add", f"{SERVER_IP}/24", "dev", "p0")
        self.ns(p, "ip", "addr", "add", f"{SERVER_ALT_IP}/24", "dev", "p0")
        self.ns(p, "ip", "link", "set", "p0", "up")
        if self.variant == "routed":
            self.ns(p, "ip", "route", "add", "10.0.0.0/24", "via", ROUTER_WAN)
        if self.variant == "full-cone":
            self.ns(r, "ip", "addr", "add", f"{STATIC_PUBLIC}/32", "dev", "r1")
        for rule in nat_rules(self.variant):
            self.ns(r, "iptables", "-w", *rule)
        self._start_coturn()

    def _start_coturn(self) -> None:
        self.coturn = start_coturn(
            self.work,
            primary=SERVER_IP,
            alternate=SERVER_ALT_IP,
            netns=self.public,
            port=STUN_PORT,
            log=self.work / f"coturn-{self.variant}.log",
        ).server
        probe = [*SIPTOOL, "stun-probe", "--json", "--timeout", "0.3", self.server]

        def answers() -> bool:
            result = self.ns(self.public, *probe, check=False)
            return result.returncode == 0

        self.coturn.wait_until(answers, timeout=15, what="(coturn in the public namespace)")

    # -- using -------------------------------------------------------------------------

    def in_client(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.client, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )

    def siptool(self, *args: str, timeout: float = 120) -> tuple[int, dict[str, object], float]:
        """``siptool ARGS --json`` in the client namespace: exit code, document, wall time."""
        started = time.monotonic()
        result = self.in_client(*SIPTOOL, *args, "--json", timeout=timeout)
        elapsed = time.monotonic() - started
        if "Traceback" in result.stderr:
            raise AssertionError(result.stderr)
        return result.returncode, json.loads(result.stdout), elapsed

    def set_loss(self, probability: float) -> None:
        """Drop forwarded UDP at random with ``probability`` in each direction, independently
        per packet (iptables' ``statistic`` match: this kernel has no netem).  0 removes it."""
        for device in ("r0", "r1"):
            rule = ["FORWARD", "-i", device, "-p", "udp", "-m", "statistic",
                    "--mode", "random", "--probability", "", "-j", "DROP"]  # fmt: skip
            while True:  # remove what an earlier call added (bounded: one rule per device)
                listed = self.ns(self.router, "iptables", "-w", "-S", "FORWARD", check=False)
                found = [
                    line.split()
                    for line in listed.stdout.splitlines()
                    if f"-i {device} " in line and "statistic" in line
                ]
                if not found:
                    break
                self.ns(self.router, "iptables", "-w", "-D", *found[0][1:])
            if probability > 0:
                rule[rule.index("")] = f"{probability:.4f}"
                self.ns(self.router, "iptables", "-w", "-I", *rule)

    def set_udp_timeout(self, seconds: int) -> None:
        """The router's conntrack timeout for UDP flows (the NAT binding lifetime)."""
        self.ns(self.router, "sysctl", "-qw", f"net.netfilter.nf_conntrack_udp_timeout={seconds}")

    # -- tearing down ------------------------------------------------------------------

    def destroy(self) -> None:
        if self.coturn is not None:
            self.coturn.stop()
            self.coturn = None
        delete_namespaces(self.namespaces)


@contextlib.contextmanager
def running_testbed(variant: str, work: Path) -> Iterator[NatTestbed]:
    bed = NatTestbed(variant, work).build()
    try:
        yield bed
    finally:
        bed.destroy()
