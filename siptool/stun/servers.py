"""STUN servers as the user names them: SERVER text, server lists, the default servers.

Pure: parsing only; ``siptool.net.stun_transport`` resolves and reaches them.

SERVER text (shared/cli-contract.md): ``host``, ``host:port``, ``[v6]:port`` or an RFC 7064
``stun:``/``stuns:`` URI; for turn-probe an RFC 7065 ``turn:``/``turns:`` URI instead
(``parse_server(text, transport, turn=True)``).

Decisions:

* ``?transport=udp|tcp`` on a ``stun:`` URI is accepted as well (RFC 7065 puts it on ``turn:``
  URIs, and people copy it over); any other URI parameter is an error.
* The scheme wins over the --transport flag: ``stuns:`` is TLS (RFC 7064 §3.2), ``stun:`` is
  UDP unless ``?transport=`` or a --transport of tcp says otherwise (--transport tls with a
  ``stun:`` URI is UDP: the URI asked for plain STUN).
* ``turn:`` and ``turns:`` follow the same rules (RFC 7065 §3: ``?transport=udp|tcp``);
  ``turns:...?transport=udp`` is DTLS, which siptool does not speak: named as such.  A
  ``stun:`` URI given to turn-probe (or a ``turn:`` one to stun-probe) is an error naming the
  scheme wanted.
* A missing port is the transport's default: 3478 for UDP and TCP, 5349 for TLS (RFC 8489
  §18.1, RFC 7064 §3.2).
* Without a SERVER, three well-known public servers run by large operators are asked (README
  "stun-probe"); --server-list or SIPTOOL_STUN_SERVERS replace them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from siptool.addr import format_address, port_number, split_host_port
from siptool.errors import ParseError

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_SERVERS",
    "STUN_SCHEMES",
    "TURN_SCHEMES",
    "StunServer",
    "parse_server",
    "split_server_list",
]

DEFAULT_PORT = {"udp": 3478, "tcp": 3478, "tls": 5349}  # RFC 8489 §18.1, RFC 7064 §3.2

STUN_SCHEMES = ("stun", "stuns")  # RFC 7064
TURN_SCHEMES = ("turn", "turns")  # RFC 7065

DEFAULT_SERVERS = (
    "stun:stun.l.google.com:19302",
    "stun:stun1.l.google.com:19302",
    "stun:stun.cloudflare.com:3478",
)


@dataclass(frozen=True)
class StunServer:
    """One SERVER as the user gave it: host without brackets, port, transport."""

    text: str
    host: str
    port: int
    transport: str  # udp, tcp, tls

    @property
    def hostport(self) -> str:
        return format_address(self.host, self.port)


def split_server_list(text: str) -> list[str]:
    """A list given as text: commas and/or whitespace between servers."""
    return [item for item in text.replace(",", " ").split() if item]


def parse_server(text: str, transport: str | None = None, *, turn: bool = False) -> StunServer:
    """Parse SERVER; ``transport`` is the --transport flag, which a URI's scheme overrides.
    ``turn``: a TURN server (``turn:``/``turns:`` URIs instead of ``stun:``/``stuns:``).

    ``ParseError`` names what is wrong.
    """
    raw = text.strip()
    kind, schemes, others = ("TURN", TURN_SCHEMES, STUN_SCHEMES)
    if not turn:
        kind, schemes, others = ("STUN", STUN_SCHEMES, TURN_SCHEMES)
    if not raw:
        raise ParseError(f"empty {kind} server")
    chosen = (transport or "udp").lower()
    rest = raw
    scheme = raw.split(":", 1)[0].lower() if ":" in raw else ""
    if scheme in others:
        wanted = f"{schemes[0]}: or {schemes[1]}: URI, or host[:port]"
        raise ParseError(f"{raw!r}: a {kind} server is a {wanted}")
    if scheme in schemes:
        rest, chosen = _uri_transport(raw, scheme, transport, chosen)
    if chosen not in DEFAULT_PORT:
        raise ParseError(f"unsupported transport {chosen!r} (udp, tcp or tls)")
    try:
        host, port_text = split_host_port(rest)
    except ValueError as exc:
        raise ParseError(f"{raw!r}: {exc}") from None
    port = None if port_text is None else _port(port_text, raw)
    if not host:
        raise ParseError(f"{raw!r}: no host")
    if ":" in host:
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise ParseError(f"{raw!r}: not an IPv6 address: {host!r}") from None
    return StunServer(raw, host, port or DEFAULT_PORT[chosen], chosen)


def _uri_transport(raw: str, scheme: str, transport: str | None, chosen: str) -> tuple[str, str]:
    """A ``stun:``/``stuns:``/``turn:``/``turns:`` URI: the host[:port] part and the transport
    it asks for."""
    rest = raw.split(":", 1)[1]
    if rest.startswith("//"):
        raise ParseError(
            f"{raw!r}: a {scheme}: URI has no '//' (RFC 7064, RFC 7065: {scheme}:host[:port])"
        )
    rest, _, query = rest.partition("?")
    secure = scheme.endswith("s")
    if secure:
        chosen = "tls"
    else:
        chosen = "udp" if transport is None or transport.lower() == "tls" else chosen
    for item in filter(None, query.split("&")):
        key, _, value = item.partition("=")
        if key.lower() != "transport" or value.lower() not in ("udp", "tcp"):
            raise ParseError(f"{raw!r}: unsupported URI parameter {item!r}")
        if not secure:
            chosen = value.lower()
        elif scheme == "turns" and value.lower() == "udp":
            raise ParseError(f"{raw!r}: turns: over UDP is DTLS, which siptool does not support")
    return rest, chosen


def _port(text: str, raw: str) -> int:
    port = port_number(text)
    if port is None:
        raise ParseError(f"{raw!r}: bad port {text!r}")
    return port
