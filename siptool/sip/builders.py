"""Building the requests siptool sends (RFC 3261 §8.1.1), pure: identifiers come from the
caller or from ``secrets``, nothing here touches the network."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from siptool import __version__
from siptool.addr import format_address, format_host
from siptool.sip.message import Header, SipMessage

USER_AGENT = f"siptool/{__version__}"
# RFC 3261 §8.1.1.7: every branch of an RFC 3261 client starts with the magic cookie.
BRANCH_COOKIE = "z9hG4bK"


def new_tag() -> str:
    return secrets.token_hex(6)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(10)}@{format_host(host)}"


def new_branch() -> str:
    return BRANCH_COOKIE + secrets.token_hex(10)


@dataclass(frozen=True)
class LocalEndpoint:
    """Our side of a flow as we announce it: Via sent-by and Contact (RFC 3261 §18.1.1)."""

    transport: str  # udp, tcp, tls
    host: str
    port: int

    @property
    def hostport(self) -> str:
        return format_address(self.host, self.port)

    def via(self, branch: str) -> str:
        # RFC 3581 §3: ";rport" asks the server to tell us the source port it saw.
        return f"SIP/2.0/{self.transport.upper()} {self.hostport};branch={branch};rport"

    def contact_uri(self, user: str = "siptool") -> str:
        scheme = "sips" if self.transport == "tls" else "sip"
        params = "" if self.transport == "udp" else f";transport={self.transport}"
        return f"{scheme}:{user}@{self.hostport}{params}"


def build_request(
    method: str,
    request_uri: str,
    *,
    local: LocalEndpoint,
    from_uri: str,
    from_tag: str,
    to_uri: str,
    call_id: str,
    cseq: int,
    branch: str | None = None,
    to_tag: str | None = None,
    contact: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
    max_forwards: int = 70,
) -> SipMessage:
    """A request with the six mandatory headers (RFC 3261 §8.1.1) in the usual order, then
    Contact, the extra headers, User-Agent, and Content-Length last (always present: it is
    mandatory on streams, RFC 3261 §18.3, and harmless on UDP)."""
    headers = [
        Header("Via", local.via(branch or new_branch())),
        Header("Max-Forwards", str(max_forwards)),
        Header("From", f"<{from_uri}>;tag={from_tag}"),
        Header("To", f"<{to_uri}>" + (f";tag={to_tag}" if to_tag else "")),
        Header("Call-ID", call_id),
        Header("CSeq", f"{cseq} {method}"),
    ]
    if contact is not None:
        headers.append(Header("Contact", contact))
    headers += [Header(name, value) for name, value in extra]
    headers.append(Header("User-Agent", USER_AGENT))
    if body:
        headers.append(Header("Content-Type", content_type or "application/sdp"))
    headers.append(Header("Content-Length", str(len(body))))
    return SipMessage.request(method, request_uri, headers, body)
