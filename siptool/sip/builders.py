"""Building the requests siptool sends (RFC 3261 §8.1.1), pure: identifiers come from the
caller or from ``secrets``, nothing here touches the network.

Decisions:

* A branch is the magic cookie and 96 random bits (RFC 3261 §8.1.1.7 wants it unique over space
  and time; 96 bits make a collision as unlikely as a STUN transaction id's, RFC 8489 §5).
* Every message is written in one order: the six mandatory headers as RFC 3261's examples
  send them (Via, Max-Forwards, From, To, Call-ID, CSeq), Route, Contact, the caller's extra
  headers, User-Agent (Server in a response), Content-Type, Content-Length.
* Content-Length is always present, 0 included: it is mandatory on streams (RFC 3261 §18.3)
  and harmless on UDP.
"""

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
# RFC 3261 §8.1.1.6: a UAC SHOULD start Max-Forwards at 70.
MAX_FORWARDS = 70


def new_tag() -> str:
    return secrets.token_hex(6)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(10)}@{format_host(host)}"


def new_branch() -> str:
    """A fresh Via branch: the magic cookie plus 96 random bits (unique over space and time,
    RFC 3261 §8.1.1.7)."""
    return BRANCH_COOKIE + secrets.token_hex(12)


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
    max_forwards: int = MAX_FORWARDS,
) -> SipMessage:
    """A request outside a dialog, from our endpoint, the URIs and tags: ``assemble_request``
    with a fresh branch unless ``branch`` is given."""
    return assemble_request(
        method,
        request_uri,
        via=local.via(branch or new_branch()),
        from_=f"<{from_uri}>;tag={from_tag}",
        to=f"<{to_uri}>" + (f";tag={to_tag}" if to_tag else ""),
        call_id=call_id,
        seq=cseq,
        contact=contact,
        extra=extra,
        body=body,
        content_type=content_type,
        max_forwards=str(max_forwards),
    )


def assemble_request(
    method: str,
    request_uri: str,
    *,
    via: str,
    from_: str,
    to: str,
    call_id: str,
    seq: int,
    routes: Iterable[str] = (),
    contact: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
    max_forwards: str = str(MAX_FORWARDS),
) -> SipMessage:
    """A request from its header values: the six mandatory headers (``mandatory_headers``),
    Route, Contact, then ``closing_headers`` with User-Agent."""
    headers = mandatory_headers(
        method,
        via=via,
        max_forwards=max_forwards,
        from_=from_,
        to=to,
        call_id=call_id,
        seq=seq,
    )
    headers += [Header("Route", route) for route in routes]
    if contact is not None:
        headers.append(Header("Contact", contact))
    headers += closing_headers("User-Agent", extra, body, content_type)
    return SipMessage.request(method, request_uri, headers, body)


def mandatory_headers(
    method: str, *, via: str, max_forwards: str, from_: str, to: str, call_id: str, seq: int
) -> list[Header]:
    """The six headers every request carries (``siptool.sip.headers.MANDATORY_REQUEST_HEADERS``,
    RFC 3261 §8.1.1), in the order of RFC 3261's examples: Via first, CSeq last."""
    return [
        Header("Via", via),
        Header("Max-Forwards", max_forwards),
        Header("From", from_),
        Header("To", to),
        Header("Call-ID", call_id),
        Header("CSeq", f"{seq} {method}"),
    ]


def closing_headers(
    agent: str, extra: Iterable[tuple[str, str]], body: bytes, content_type: str | None
) -> list[Header]:
    """What ends every message siptool builds: the extra headers, ``agent`` (User-Agent or
    Server) naming siptool, Content-Type when there is a body, and Content-Length last."""
    headers = [Header(name, value) for name, value in extra]
    headers.append(Header(agent, USER_AGENT))
    if body:
        headers.append(Header("Content-Type", content_type or "application/sdp"))
    headers.append(Header("Content-Length", str(len(body))))
    return headers
