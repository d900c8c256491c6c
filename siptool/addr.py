"""Addresses, whatever the protocol: ``ip:port`` text, address classes, address families.

Pure and cheap to import (``ipaddress`` and ``socket`` only for their constants): SIP, STUN,
the capture layer and the transports all show, compare and choose addresses the same way.

Decisions:

* ``ip:port`` with an IPv6 address in brackets (RFC 3986 §3.2.2, RFC 3261 §25.1 ``hostport``,
  RFC 5952 §6) is the one address form of every output (shared/cli-contract.md).  A host that
  already has its brackets keeps them: ``format_host("[::1]")`` is ``"[::1]"``.
* Private means what a NAT hides: RFC 1918, RFC 6598 (carrier-grade NAT), link-local (RFC 3927,
  RFC 4291) and RFC 4193 unique-local.  Listed explicitly because ``ipaddress``'s
  ``is_private`` also counts the documentation ranges (RFC 5737 TEST-NET), which the NAT
  testbeds use as "public".  Public is an address that is neither private nor loopback,
  unspecified or multicast.
* The address classes read leniently (``ip_of``): ``ip``, ``ip:port``, ``[v6]`` or
  ``[v6]:port``; anything else (a host name, junk) is of no class.  ``split_host_port`` is the
  strict reading of what a user typed.
* -4 / -6: one of them alone picks that family; both or neither mean IPv4 first, then IPv6.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Sequence
from typing import Any

from siptool.numbers import is_decimal

__all__ = [
    "ALL_FAMILIES",
    "Address",
    "IPAddress",
    "families_from_flags",
    "family_of",
    "format_address",
    "format_host",
    "in_families",
    "ip_of",
    "is_ip_address",
    "is_loopback_address",
    "is_private_address",
    "is_public_address",
    "normalize_address",
    "port_number",
    "split_address",
    "split_host_port",
    "wildcard_address",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Address = tuple[str, int]  # (IP without brackets, port), as sockets take and give it

ALL_FAMILIES: tuple[int, ...] = (socket.AF_INET, socket.AF_INET6)

_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
    )
)


# -- ip:port text -------------------------------------------------------------------------------


def format_host(host: str) -> str:
    """``host`` as it appears before a port, in a URI or a Via: IPv6 in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def format_address(host: str, port: int | None) -> str:
    """``"ip:port"``, IPv6 in brackets: ``"192.0.2.1:5060"``, ``"[2001:db8::1]:3478"``; the
    host alone when there is no port (a SIP URI or Via without one, RFC 3261 §25.1)."""
    host = format_host(host)
    return host if port is None else f"{host}:{port}"


def split_address(address: str) -> tuple[str, int]:
    """Inverse of ``format_address``: ``"[::1]:3478"`` -> ``("::1", 3478)``; ValueError when
    the port is not a number."""
    host, _, port = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def split_host_port(text: str) -> tuple[str, str | None]:
    """``host``, ``host:port``, ``[v6]``, ``[v6]:port`` or a bare IPv6 address as typed, split
    into the host (without brackets) and the port text (None when there is none; the port is
    not checked).  ValueError names what is wrong with the brackets."""
    if text.startswith("["):
        host, close, tail = text[1:].partition("]")
        if not close:
            raise ValueError("unclosed '[' in IPv6 address")
        if not tail:
            return host, None
        if not tail.startswith(":"):
            raise ValueError("junk after ']'")
        return host, tail[1:]
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, port
    return text, None  # a name, an IPv4 address, or a bare IPv6 address


def port_number(text: str) -> int | None:
    """A port a peer can be reached at, 1 to 65535 in ASCII digits; None otherwise."""
    if not is_decimal(text, 5) or not 0 < int(text) < 65536:
        return None
    return int(text)


def normalize_address(address: tuple[Any, ...]) -> Address:
    """``(host, port)`` in the form every comparison of addresses uses: the host in canonical
    form (RFC 5952 for IPv6), without brackets or a zone, and the port."""
    # recvfrom gives (host, port) for IPv4 and (host, port, flowinfo, scope_id) for IPv6.
    host, port = str(address[0]), int(address[1])
    host = host.strip("[]").split("%", 1)[0]
    try:
        host = ipaddress.ip_address(host).compressed
    except ValueError:
        host = host.lower()
    return host, port


# -- address classes ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _ip(host: str) -> IPAddress | None:
    # A thousand-target ping asks of the same few addresses thousands of times (our local
    # address, the server's): ipaddress parses each once.
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_ip_address(host: str) -> bool:
    """True for an IPv4 or IPv6 literal (without brackets), False for a name."""
    return _ip(host) is not None


def ip_of(text: str | None) -> IPAddress | None:
    """The IP address in ``ip``, ``ip:port``, ``[v6]`` or ``[v6]:port``; None for anything
    else (a name, junk, nothing)."""
    if not text:
        return None
    host = text
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host[1:]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return _ip(host)


def is_private_address(text: str | None) -> bool:
    """True for an address behind a NAT: RFC 1918, RFC 6598, link-local, unique-local."""
    ip = ip_of(text)
    return ip is not None and any(ip in net for net in _PRIVATE_NETWORKS)


def is_loopback_address(text: str | None) -> bool:
    """True for 127.0.0.0/8 and ::1 (RFC 1122 §3.2.1.3, RFC 4291 §2.5.3)."""
    ip = ip_of(text)
    return ip is not None and ip.is_loopback


def is_public_address(text: str | None) -> bool:
    """True for an address anyone on the internet can send to (see the module docs)."""
    ip = ip_of(text)
    if ip is None or ip.is_loopback or ip.is_unspecified or ip.is_multicast:
        return False
    return not any(ip in net for net in _PRIVATE_NETWORKS)


# -- address families ---------------------------------------------------------------------------


def families_from_flags(only4: bool, only6: bool) -> tuple[int, ...]:
    """-4 / -6 as the address families to try, in order."""
    if only4 and not only6:
        return (socket.AF_INET,)
    if only6 and not only4:
        return (socket.AF_INET6,)
    return ALL_FAMILIES


def family_of(ip: str) -> int:
    """``AF_INET6`` for an IPv6 literal, ``AF_INET`` for anything else."""
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def wildcard_address(family: int) -> str:
    """The address that binds every interface of ``family``."""
    return "::" if family == socket.AF_INET6 else "0.0.0.0"


def in_families(ip: str, families: Sequence[int]) -> bool:
    """True when ``ip`` is of one of ``families``."""
    return family_of(ip) in families
