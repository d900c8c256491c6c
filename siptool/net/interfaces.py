"""This host's addresses, for ice-gather's host candidates (RFC 8445 §5.1.1.1): every interface
that is up, its IPv4 address (SIOCGIFADDR, netdevice(7)) and its IPv6 addresses
(/proc/net/if_inet6), Linux's own interfaces with the standard library alone.

Decisions:

* Loopback addresses are left out unless asked for (``loopback=True``): RFC 8445 §5.1.1.1
  says they MUST NOT be included, except that a test on loopback has nothing else.
* IPv6 link-local addresses (fe80::/10) are left out: RFC 8445 §5.1.1.1 says they SHOULD NOT
  be included (they need a scope and only reach the link); deprecated and temporary ones too
  (RFC 8445 §5.1.1.1 on privacy addresses is left to the user: siptool reports the stable
  ones).
* Interfaces are in the kernel's index order, addresses within one as listed, so two runs
  give the same candidates in the same order.
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
from dataclasses import dataclass

__all__ = ["HostAddress", "host_addresses"]

_SIOCGIFFLAGS = 0x8913
_SIOCGIFADDR = 0x8915
_IFF_UP = 0x1
_IFA_F_DEPRECATED = 0x20
_IFA_F_TEMPORARY = 0x01
_IF_INET6 = "/proc/net/if_inet6"


@dataclass(frozen=True)
class HostAddress:
    interface: str
    address: str
    family: int


def _ioctl(name: str, request: int) -> bytes | None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        packed = struct.pack("256s", name.encode()[:15])
        return fcntl.ioctl(probe.fileno(), request, packed)
    except OSError:
        return None
    finally:
        probe.close()


def _is_up(name: str) -> bool:
    answer = _ioctl(name, _SIOCGIFFLAGS)
    return answer is not None and bool(struct.unpack_from("H", answer, 16)[0] & _IFF_UP)


def _ipv4(name: str) -> str | None:
    answer = _ioctl(name, _SIOCGIFADDR)
    return None if answer is None else socket.inet_ntoa(answer[20:24])


def _ipv6_by_interface() -> dict[str, list[str]]:
    """/proc/net/if_inet6: address, index, prefix length, scope, flags, name per line."""
    found: dict[str, list[str]] = {}
    try:
        with open(_IF_INET6, encoding="ascii") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        if len(fields) != 6:
            continue
        hex_address, _, _, _, flags, name = fields
        try:
            address = ipaddress.IPv6Address(bytes.fromhex(hex_address))
            flag_bits = int(flags, 16)
        except ValueError:
            continue
        if flag_bits & (_IFA_F_DEPRECATED | _IFA_F_TEMPORARY):
            continue
        found.setdefault(name, []).append(str(address))
    return found


def host_addresses(*, loopback: bool = False, families: tuple[int, ...] = ()) -> list[HostAddress]:
    """The addresses of the interfaces that are up (see the module docstring); only
    ``families`` when given."""
    want = set(families) or {socket.AF_INET, socket.AF_INET6}
    v6 = _ipv6_by_interface()
    out: list[HostAddress] = []
    for _, name in socket.if_nameindex():
        if not _is_up(name):
            continue
        candidates: list[tuple[int, str]] = []
        ip4 = _ipv4(name)
        if ip4 is not None:
            candidates.append((socket.AF_INET, ip4))
        candidates += [(socket.AF_INET6, a) for a in v6.get(name, [])]
        for family, text in candidates:
            ip = ipaddress.ip_address(text)
            if family not in want or ip.is_unspecified:
                continue
            if ip.is_loopback and not loopback:
                continue
            if ip.version == 6 and ip.is_link_local:
                continue
            out.append(HostAddress(name, text, family))
    return out
