"""ICE candidates (RFC 8445) as ice-gather reports them, pure: their priority and foundation,
their SDP ``a=candidate`` lines (RFC 8839 §5.1), and the verdict on what the gathered set means
for calls from here.

Decisions:

* Priority is RFC 8445 §5.1.2.1's formula with its recommended type preferences (host 126,
  server reflexive 100, relayed 0).  The local preference ranks the host address's family as
  RFC 8421 §4 suggests for dual stack (IPv6 above IPv4: 65535 and 65534 less the address's
  index among its family), and for relayed candidates the transport to the TURN server, as
  the browsers do: UDP above TCP above TLS (a relay over TLS is the last resort, it adds a TCP
  and a TLS handshake and head-of-line blocking).  Component 1 (RTP) only: siptool gathers
  for one component.
* The foundation (§5.1.1.3) is the same for candidates of one type, base address, server and
  transport, and different otherwise: the CRC-32 of those, in decimal, as libwebrtc spells it.
* A relayed candidate's transport is the relay's (UDP, RFC 8656 §2): the transport to the TURN
  server is reported beside it (``relay_protocol``), not in the SDP line.
* The verdict reads the gathered set as a diagnostician would: no server-reflexive candidate
  means the STUN servers did not answer (UDP blocked?); two server-reflexive candidates of one
  base with different ports mean an address-dependent mapping (a symmetric NAT), where direct
  media to a peer behind a NAT will fail and only a relay works (RFC 8445 §2, RFC 4787 §4.1).
"""

from __future__ import annotations

import binascii
import enum
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from siptool.addr import family_of, format_address

__all__ = [
    "Candidate",
    "CandidateType",
    "IceVerdict",
    "Mapping",
    "foundation",
    "make_candidate",
    "mapping_behaviour",
    "priority",
    "verdict",
]

COMPONENT_RTP = 1


class CandidateType(enum.Enum):
    HOST = "host"
    SRFLX = "srflx"
    RELAY = "relay"


# RFC 8445 §5.1.2.2 recommended type preferences.
TYPE_PREFERENCE = {CandidateType.HOST: 126, CandidateType.SRFLX: 100, CandidateType.RELAY: 0}
# Relayed candidates by the transport to the TURN server (module docstring).
RELAY_PROTOCOL_RANK = {"udp": 0, "tcp": 1, "tls": 2}


def local_preference(address: str, index: int = 0, relay_protocol: str | None = None) -> int:
    """The local preference of a candidate on ``address`` (the ``index``-th of its family
    gathered), relayed over ``relay_protocol`` when relayed (module docstring)."""
    top = 65535 if family_of(address) == socket.AF_INET6 else 65534
    rank = 0 if relay_protocol is None else RELAY_PROTOCOL_RANK.get(relay_protocol, 3)
    return max(0, top - 2 * index - 256 * rank)


def priority(kind: CandidateType, local_pref: int, component: int = COMPONENT_RTP) -> int:
    """RFC 8445 §5.1.2.1: 2^24 * type preference + 2^8 * local preference + (256 - component)."""
    return (TYPE_PREFERENCE[kind] << 24) + (local_pref << 8) + (256 - component)


def foundation(kind: CandidateType, base: str, server: str | None, transport: str) -> str:
    """RFC 8445 §5.1.1.3: equal for equal (type, base IP, server IP, transport)."""
    key = f"{kind.value}|{base}|{server or ''}|{transport}".encode()
    return str(binascii.crc32(key))


@dataclass(frozen=True)
class Candidate:
    """One gathered candidate; ``related`` is the base (srflx) or the mapped address (relay)
    as ``ip:port``, ``server`` the STUN/TURN server that gave it."""

    kind: CandidateType
    transport: str  # of the candidate itself: "udp"
    ip: str
    port: int
    priority: int
    foundation: str
    related_ip: str | None = None
    related_port: int | None = None
    server: str | None = None
    relay_protocol: str | None = None  # relayed: udp, tcp or tls to the TURN server
    elapsed_ms: float | None = None

    @property
    def address(self) -> str:
        return format_address(self.ip, self.port)

    @property
    def related(self) -> str | None:
        if self.related_ip is None or self.related_port is None:
            return None
        return format_address(self.related_ip, self.related_port)

    def sdp(self) -> str:
        """The ``a=candidate`` line (RFC 8839 §5.1); raddr/rport for srflx and relay."""
        line = (
            f"a=candidate:{self.foundation} {COMPONENT_RTP} {self.transport} {self.priority} "
            f"{self.ip} {self.port} typ {self.kind.value}"
        )
        if self.related_ip is not None and self.related_port is not None:
            line += f" raddr {self.related_ip} rport {self.related_port}"
        return line

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind.value,
            "transport": self.transport,
            "address": self.address,
            "related": self.related,
            "priority": self.priority,
            "foundation": self.foundation,
            "server": self.server,
            "relay_protocol": self.relay_protocol,
            "elapsed_ms": self.elapsed_ms,
            "sdp": self.sdp(),
        }


def make_candidate(
    kind: CandidateType,
    ip: str,
    port: int,
    *,
    base: str,
    index: int = 0,
    related: tuple[str, int] | None = None,
    server: str | None = None,
    relay_protocol: str | None = None,
    elapsed_ms: float | None = None,
) -> Candidate:
    """A candidate with its priority and foundation computed (module docstring)."""
    pref = local_preference(base, index, relay_protocol if kind is CandidateType.RELAY else None)
    server_ip = None if server is None else server.rsplit(":", 1)[0]
    found = foundation(kind, base, server_ip, relay_protocol or "udp")
    return Candidate(
        kind=kind,
        transport="udp",
        ip=ip,
        port=port,
        priority=priority(kind, pref),
        foundation=found,
        related_ip=None if related is None else related[0],
        related_port=None if related is None else related[1],
        server=server,
        relay_protocol=relay_protocol,
        elapsed_ms=elapsed_ms,
    )


@dataclass(frozen=True)
class IceVerdict:
    """What the gathered set means (module docstring): the mapping seen, which relay
    transports work, and one sentence of consequence per finding."""

    mapping: str  # "none" (no NAT), "endpoint-independent", "address-dependent", "unknown"
    relays: dict[str, bool]  # transport to the TURN server -> a relayed candidate came
    findings: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"mapping": self.mapping, "relays": self.relays, "findings": self.findings}


@dataclass(frozen=True)
class Mapping:
    """What one STUN server saw of one base: ``mapped`` (ip, port) for ``base`` (ip, port).
    Kept even when equal to the base, which makes no server-reflexive candidate (RFC 8445
    §5.1.3 removes it as redundant) but shows there is no NAT."""

    base: tuple[str, int]
    server: str
    mapped: tuple[str, int]


def mapping_behaviour(mappings: Sequence[Mapping]) -> str:
    """ "none" (every mapping is its base), "address-dependent" (one base mapped to two
    addresses by two servers), "endpoint-independent" (one mapping seen by two servers), or
    "unknown" (nothing seen, or one server only)."""
    if not mappings:
        return "unknown"
    by_base: dict[tuple[str, int], set[tuple[str, int]]] = {}
    for m in mappings:
        by_base.setdefault(m.base, set()).add(m.mapped)
    if any(len(seen) > 1 for seen in by_base.values()):
        return "address-dependent"
    if all(m.mapped == m.base for m in mappings):
        return "none"
    servers = {m.server for m in mappings if m.mapped != m.base}
    return "endpoint-independent" if len(servers) > 1 else "unknown"


def verdict(
    candidates: Sequence[Candidate],
    mappings: Sequence[Mapping],
    stun_asked: int,
    turn_asked: dict[str, int],
) -> IceVerdict:
    """The verdict on ``candidates`` and the ``mappings`` the STUN servers reported, when
    ``stun_asked`` STUN servers and, per transport, ``turn_asked[transport]`` TURN servers
    were asked."""
    mapping = mapping_behaviour(mappings)
    relays = {
        transport: any(
            c.kind is CandidateType.RELAY and c.relay_protocol == transport for c in candidates
        )
        # In order of preference (RELAY_PROTOCOL_RANK): UDP, TCP, TLS.
        for transport in sorted(turn_asked, key=lambda t: (RELAY_PROTOCOL_RANK.get(t, 9), t))
        if turn_asked[transport]
    }
    findings: list[str] = []
    if stun_asked and not mappings:
        findings.append(
            "no STUN server answered: UDP may be blocked here, and only a relay over TCP or "
            "TLS can carry media"
        )
    working = [t for t, ok in relays.items() if ok]
    if mapping == "address-dependent":
        if working:
            findings.append(
                "address-dependent mapping (a symmetric NAT): direct media to peers behind a "
                f"NAT will fail; calls need the relay, which works over {', '.join(working)}"
            )
        else:
            findings.append(
                "address-dependent mapping and no working relay: calls to peers behind NAT "
                "will fail"
            )
    elif mapping == "none":
        findings.append("no NAT between here and the STUN servers: host candidates reach peers")
    elif mapping == "endpoint-independent":
        findings.append(
            "endpoint-independent mapping: server-reflexive candidates work for most peers"
        )
    for transport, ok in relays.items():
        if not ok:
            findings.append(f"no relay over {transport}: that TURN fallback is not available")
    if relays and not working and mapping != "address-dependent":
        findings.append("no working relay: peers behind symmetric NATs cannot be reached")
    return IceVerdict(mapping, relays, findings)
