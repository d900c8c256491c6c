"""RFC 3263 server location: NAPTR, then SRV, then A/AAAA, and the ordered list to fail over on.

The decision logic (which records to ask for, in which order, what to do when none exist) is
written against a small ``Lookup`` interface so it can be read beside the RFC; ``DnsLookup``
answers it with dnspython's asyncio resolver, and ``resolve_target`` wires the two.  Every step
is recorded in ``Resolution.path`` for ``--resolve-only`` and ``-v``.

Numeric addresses and names in /etc/hosts skip DNS altogether (RFC 3263 §4.2 for numeric
hosts; /etc/hosts because that is what every other tool on the machine honours).

Decisions:

- WebSocket (RFC 7118 §5.2.5): a target whose transport is ws or wss is looked up by A/AAAA only,
  at its port or else 80/443.  RFC 7118 registers the NAPTR services SIP+D2W and SIPS+D2W but
  no SRV name of its own, and a WebSocket server is reached at a path DNS does not carry (the
  clients RFC 7118 was written for cannot query NAPTR or SRV at all).  For the same reason a
  target without a transport never becomes ws or wss through NAPTR.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from siptool.addr import (
    ALL_FAMILIES,
    format_address,
    in_families,
    is_ip_address,
    port_number,
    split_host_port,
)
from siptool.errors import ResolveError
from siptool.sip.target import DEFAULT_PORT, WEBSOCKET_TRANSPORTS, Target

# RFC 3263 §4.1 / RFC 3261 §26: the NAPTR services siptool can use, and their transports.
NAPTR_SERVICES = {"SIP+D2U": "udp", "SIP+D2T": "tcp", "SIPS+D2T": "tls"}
SRV_PREFIX = {"udp": "_sip._udp.", "tcp": "_sip._tcp.", "tls": "_sips._tcp."}

_R = TypeVar("_R")


@dataclass(frozen=True)
class NaptrRecord:
    order: int
    preference: int
    flags: str
    service: str
    replacement: str


@dataclass(frozen=True)
class SrvRecord:
    priority: int
    weight: int
    port: int
    target: str


class Lookup(Protocol):
    async def naptr(self, name: str) -> list[NaptrRecord]: ...

    async def srv(self, name: str) -> list[SrvRecord]: ...

    async def addresses(self, name: str, family: int) -> list[str]: ...


@dataclass(frozen=True)
class Candidate:
    """One place to send the request to, in failover order."""

    transport: str
    address: str  # IP literal, IPv6 without brackets
    port: int
    hostname: str  # the name the address came from (TLS server name, SRV target)

    @property
    def hostport(self) -> str:
        return format_address(self.address, self.port)

    def to_dict(self) -> dict[str, str]:
        return {"transport": self.transport, "address": self.hostport, "hostname": self.hostname}


@dataclass
class Resolution:
    target: Target
    candidates: list[Candidate] = field(default_factory=list)
    path: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "target": str(self.target),
            "path": self.path,
            "candidates": [c.to_dict() for c in self.candidates],
        }


def order_srv(records: Sequence[SrvRecord], rng: random.Random | None = None) -> list[SrvRecord]:
    """RFC 2782 ordering: ascending priority; within one priority, a weighted random order in
    which weight-0 records are tried last but still tried."""
    rng = rng or random.Random()
    out: list[SrvRecord] = []
    for priority in sorted({r.priority for r in records}):
        pool = [r for r in records if r.priority == priority]
        pool.sort(key=lambda r: r.weight == 0, reverse=True)  # RFC 2782: zeros first in list
        while pool:
            total = sum(r.weight for r in pool)
            pick = rng.randint(0, total) if total else 0
            running = 0
            for i, r in enumerate(pool):
                running += r.weight
                if running >= pick:
                    out.append(pool.pop(i))
                    break
    return out


def read_hosts_file(path: str = "/etc/hosts") -> dict[str, list[str]]:
    """name (lower case) -> addresses, in file order."""
    table: dict[str, list[str]] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                fields = line.split("#", 1)[0].split()
                if len(fields) < 2 or not is_ip_address(fields[0].split("%")[0]):
                    continue
                for name in fields[1:]:
                    table.setdefault(name.lower().rstrip("."), []).append(fields[0])
    except OSError:
        pass
    return table


class Resolver:
    """RFC 3263 §4 for one target.  ``families`` from -4/-6 (both by default, IPv6 first only
    when the name has only AAAA records: A is asked first, as most SIP deployments expect)."""

    def __init__(
        self,
        lookup: Lookup,
        *,
        families: Sequence[int] = ALL_FAMILIES,
        hosts: dict[str, list[str]] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.lookup = lookup
        self.families = tuple(families)
        self.hosts = read_hosts_file() if hosts is None else hosts
        self.rng = rng

    async def resolve(self, target: Target) -> Resolution:
        result = Resolution(target)
        host = target.host
        default_transport = "tls" if target.secure else "udp"

        # RFC 3263 §4.1/§4.2: a numeric host, or an explicit port, means no NAPTR and no SRV.
        if target.is_numeric:
            transport = target.transport or default_transport
            port = target.port or DEFAULT_PORT[transport]
            if not in_families(host, self.families):
                raise ResolveError(f"{host} is not of the address family asked for (-4/-6)")
            numeric = format_address(host, port)
            result.path.append(f"numeric host {numeric} over {transport}: no DNS")
            result.candidates.append(Candidate(transport, host, port, host))
            return result

        hosts_entry = self.hosts.get(host.lower().rstrip("."))
        if hosts_entry:
            transport = target.transport or default_transport
            port = target.port or DEFAULT_PORT[transport]
            usable = [a for a in hosts_entry if in_families(a, self.families)]
            result.path.append(f"/etc/hosts {host} -> {', '.join(hosts_entry)}: no DNS")
            result.candidates += [Candidate(transport, a, port, host) for a in usable]
            if not result.candidates:
                raise ResolveError(f"{host} in /etc/hosts has no address of the family asked for")
            return result

        if target.port is not None:
            transport = target.transport or default_transport
            await self._addresses(result, host, target.port, transport, host)
        elif target.transport in WEBSOCKET_TRANSPORTS:
            # RFC 7118 §5.2.5: no SRV for WebSocket (module notes): A/AAAA at 80 or 443.
            result.path.append(f"{target.transport}: no NAPTR or SRV for WebSocket")
            port = DEFAULT_PORT[target.transport]
            await self._addresses(result, host, port, target.transport, host)
        elif target.transport is not None:
            # §4.1: transport known, look up SRV for it; §4.2: no SRV -> A/AAAA, default port.
            if not await self._srv(result, SRV_PREFIX[target.transport] + host, target.transport):
                await self._addresses(
                    result, host, DEFAULT_PORT[target.transport], target.transport, host
                )
        elif not await self._naptr(result, target):
            found = False
            # §4.1: no NAPTR -> SRV for each transport the client supports (sips: TLS only).
            for transport in ("tls",) if target.secure else ("udp", "tcp", "tls"):
                if await self._srv(result, SRV_PREFIX[transport] + host, transport):
                    found = True
            if not found:
                await self._addresses(
                    result, host, DEFAULT_PORT[default_transport], default_transport, host
                )
        if not result.candidates:
            raise ResolveError(f"cannot resolve {host}: " + "; ".join(result.path))
        return result

    async def _ask(
        self, result: Resolution, kind: str, name: str, query: Awaitable[list[_R]]
    ) -> list[_R] | None:
        """The records ``query`` finds, or None when the lookup failed: the failure is
        recorded in the path and the resolution goes on with the next step (one failing
        lookup, a server that REFUSES AAAA, must not lose what the others find)."""
        try:
            return await query
        except ResolveError as exc:
            result.path.append(f"{kind} {name}: {exc.message}")
            return None

    async def _records(
        self, result: Resolution, kind: str, name: str, query: Awaitable[list[_R]]
    ) -> list[_R]:
        """The records ``query`` finds; none, with the reason in the path, when there are none
        or the lookup failed."""
        records = await self._ask(result, kind, name, query)
        if records == []:
            result.path.append(f"{kind} {name}: none")
        return records or []

    async def _naptr(self, result: Resolution, target: Target) -> bool:
        records = await self._records(result, "NAPTR", target.host, self.lookup.naptr(target.host))
        usable = [
            r
            for r in records
            if r.flags.lower() == "s"
            and r.service.upper() in NAPTR_SERVICES
            and (not target.secure or r.service.upper().startswith("SIPS"))
        ]
        if records and not usable:
            result.path.append(f"NAPTR {target.host}: no usable SIP service")
        found = False
        # RFC 3403: lower order first, then lower preference.
        for r in sorted(usable, key=lambda r: (r.order, r.preference)):
            transport = NAPTR_SERVICES[r.service.upper()]
            result.path.append(
                f"NAPTR {target.host} -> {r.order} {r.preference} {r.service} {r.replacement}"
            )
            if await self._srv(result, r.replacement, transport):
                found = True
        return found

    async def _srv(self, result: Resolution, name: str, transport: str) -> bool:
        records = await self._records(result, "SRV", name, self.lookup.srv(name))
        # RFC 2782: a single record with target "." means the service is decidedly absent.
        if len(records) == 1 and records[0].target in (".", ""):
            result.path.append(f"SRV {name}: service not offered (target '.')")
            return False
        found = False
        for r in order_srv(records, self.rng):
            result.path.append(f"SRV {name} -> {r.priority} {r.weight} {r.port} {r.target}")
            if await self._addresses(result, r.target, r.port, transport, r.target):
                found = True
        return found

    async def _addresses(
        self, result: Resolution, name: str, port: int, transport: str, hostname: str
    ) -> bool:
        found = False
        for family in self.families:
            kind = "A" if family == socket.AF_INET else "AAAA"
            addresses = await self._ask(result, kind, name, self.lookup.addresses(name, family))
            if addresses is None:
                continue
            result.path.append(f"{kind} {name} -> {', '.join(addresses) or 'none'}")
            for address in addresses:
                candidate = Candidate(transport, address, port, hostname.rstrip("."))
                if candidate not in result.candidates:
                    result.candidates.append(candidate)
                    found = True
        return found


class DnsLookup:
    """``Lookup`` over dnspython's asyncio resolver.  ``server`` is ``ip`` or ``ip:port``
    (``[v6]:port``) for --dns-server; otherwise /etc/resolv.conf."""

    def __init__(self, server: str | None = None, timeout: float = 5.0) -> None:
        import dns.asyncresolver

        if server:
            resolver = dns.asyncresolver.Resolver(configure=False)
            address, port = parse_dns_server(server)
            resolver.nameservers = [address]
            resolver.port = port
        else:
            resolver = dns.asyncresolver.Resolver()
        resolver.lifetime = timeout
        self.resolver = resolver

    async def _query(self, name: str, rdtype: str) -> list[Any]:
        import dns.exception
        import dns.resolver

        try:
            answer = await self.resolver.resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.resolver.NoNameservers as exc:
            raise ResolveError(f"no name server answered ({exc})") from None
        except dns.exception.Timeout:
            raise ResolveError("DNS timeout") from None
        except dns.exception.DNSException as exc:
            raise ResolveError(str(exc)) from None
        return list(answer)

    async def naptr(self, name: str) -> list[NaptrRecord]:
        return [
            NaptrRecord(
                r.order,
                r.preference,
                r.flags.decode(),
                r.service.decode(),
                r.replacement.to_text(),
            )
            for r in await self._query(name, "NAPTR")
        ]

    async def srv(self, name: str) -> list[SrvRecord]:
        return [
            SrvRecord(r.priority, r.weight, r.port, r.target.to_text())
            for r in await self._query(name, "SRV")
        ]

    async def addresses(self, name: str, family: int) -> list[str]:
        rdtype = "A" if family == socket.AF_INET else "AAAA"
        return [r.to_text() for r in await self._query(name, rdtype)]


def parse_dns_server(text: str) -> tuple[str, int]:
    """``ip``, ``ip:port``, ``v6`` or ``[v6]:port`` (default port 53); ValueError naming the
    problem otherwise (the --dns-server flag turns it into a usage error)."""
    try:
        address, port_text = split_host_port(text)
    except ValueError:
        raise ValueError(f"bad DNS server {text!r} (use ip, ip:port or [v6]:port)") from None
    if not is_ip_address(address):
        raise ValueError(f"DNS server {address!r} is not an IP address")
    if not port_text:
        return address, 53
    port = port_number(port_text)
    if port is None:
        raise ValueError(f"bad DNS server port {port_text!r}")
    return address, port


async def resolve_target(
    target: Target,
    *,
    dns_server: str | None = None,
    families: Sequence[int] = ALL_FAMILIES,
    timeout: float = 5.0,
) -> Resolution:
    """Resolve with the system's resolver (or ``dns_server``); ``ResolveError`` on failure."""
    if target.is_numeric:
        return await Resolver(_NoLookup(), families=families, hosts={}).resolve(target)
    return await Resolver(DnsLookup(dns_server, timeout), families=families).resolve(target)


class _NoLookup:
    async def naptr(self, name: str) -> list[NaptrRecord]:
        return []

    async def srv(self, name: str) -> list[SrvRecord]:
        return []

    async def addresses(self, name: str, family: int) -> list[str]:
        return []
