"""What the user typed as TARGET, turned into a SIP URI and the facts RFC 3263 starts from.

TARGET is a SIP or SIPS URI (``sip:alice@example.com;transport=tcp``), or ``host``,
``host:port``, ``[v6addr]:port`` (shared/cli-contract.md).  A bare host becomes ``sip:host``.

Decisions:

- WebSocket (RFC 7118): ``;transport=ws`` in a sip: URI is WS, in a sips: URI WSS (§5.2.2
  defines only "ws" for URIs; a SIPS URI reached over WebSocket is reached over WSS, as over
  TLS).  ``;transport=wss``, which JsSIP and Kamailio write too, is WSS in either scheme.
- The default ports of WS and WSS are HTTP's and HTTPS's, 80 and 443 (RFC 7118 §5.2.5, the
  WebSocket URI's defaults of RFC 6455 §3).
"""

from __future__ import annotations

from dataclasses import dataclass

from siptool.addr import is_ip_address
from siptool.errors import ParseError
from siptool.sip.uri import Uri, parse_uri

__all__ = [
    "DEFAULT_PORT",
    "TRANSPORTS",
    "WEBSOCKET_TRANSPORTS",
    "Target",
    "parse_target",
    "redact_password",
]

TRANSPORTS = ("udp", "tcp", "tls", "ws", "wss")
DEFAULT_PORT = {"udp": 5060, "tcp": 5060, "tls": 5061, "ws": 80, "wss": 443}
# The transports whose flows are WebSocket connections (RFC 7118).
WEBSOCKET_TRANSPORTS = frozenset({"ws", "wss"})


@dataclass(frozen=True)
class Target:
    uri: Uri
    host: str  # without brackets
    port: int | None  # explicit port, else None (RFC 3263 §4.2 then looks up SRV)
    transport: str | None  # explicit: URI ;transport= or sips: win over the --transport flag
    secure: bool  # sips: (RFC 3261 §26.2.2): TLS on every hop

    @property
    def is_numeric(self) -> bool:
        return is_ip_address(self.host)

    def __str__(self) -> str:
        return str(self.uri)


def parse_target(text: str, transport: str | None = None) -> Target:
    """Parse TARGET; ``transport`` is the --transport flag.  ``ParseError`` when unusable."""
    raw = text.strip()
    if not raw:
        raise ParseError("empty target")
    if ":" in raw and raw.split(":", 1)[0].lower() in ("sip", "sips"):
        uri = parse_uri(raw)
    else:
        if raw.count(":") > 1 and not raw.startswith("[") and "@" not in raw:
            # A bare IPv6 address without brackets and port.
            if not is_ip_address(raw):
                raise ParseError(f"not a host, host:port or SIP URI: {redact_password(raw)!r}")
            raw = f"[{raw}]"
        uri = parse_uri(f"sip:{raw}")
    if uri.scheme not in ("sip", "sips"):
        raise ParseError(f"not a SIP or SIPS URI: {redact_password(raw)!r}")
    if uri.password is not None:
        # RFC 3261 §19.1.1 allows user:password@ and says it SHOULD NOT be used: on a command
        # line the password is visible to every user (ps, /proc) and would be echoed in text,
        # JSON and -v output.  Refuse it and say where a password belongs.
        raise ParseError(
            "the URI carries a password (user:password@), which other users can read in the "
            "process list: remove it and give the password with --password-file or "
            "SIPTOOL_PASSWORD"
        )
    secure = uri.scheme == "sips"
    param = uri.params.get("transport")
    chosen = (param or "").lower() or None
    if chosen is None and transport:
        chosen = transport.lower()
    if secure:
        # RFC 3261 §26.2.2: a SIPS URI is reached over TLS, whatever else is asked for; over
        # WebSocket that is WSS (RFC 7118 §5.2, module notes).
        chosen = "wss" if chosen in WEBSOCKET_TRANSPORTS else "tls"
    if chosen is not None and chosen not in TRANSPORTS:
        raise ParseError(f"unsupported transport {chosen!r} (udp, tcp, tls, ws or wss)")
    return Target(uri=uri, host=uri.host, port=uri.port, transport=chosen, secure=secure)


def redact_password(text: str) -> str:
    """``text`` (a TARGET as typed) with the password of a ``user:password@`` userinfo shown
    as ``***``.  As in ``parse_uri``, the first "@" ends the userinfo (RFC 3261 §25.1)."""
    scheme, colon, rest = text.partition(":")
    if colon and scheme.lower() in ("sip", "sips"):
        prefix = scheme + colon
    else:
        prefix, rest = "", text
    userinfo, at, host = rest.partition("@")
    user, colon, _ = userinfo.partition(":")
    if not at or not colon:
        return text
    return f"{prefix}{user}:***@{host}"
