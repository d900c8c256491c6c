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
* The user's say (``RequestKnobs``: -H, --from, --to, --user-agent, --proxy) is applied here,
  once, for every command.  A -H header replaces the header of its name siptool would have sent
  (so ``-H 'Max-Forwards: 1'`` or ``-H 'Contact: <sip:x@y>'`` mean what they say) and is added
  before User-Agent otherwise.  Headers that carry the transaction and the framing (Via,
  Call-ID, CSeq, Content-Length) and From/To (--from, --to) are not the user's to replace:
  ``protected_header`` names them for the CLI to refuse.
* --proxy (RFC 3261 §8.1.2 outbound proxy) becomes a preloaded loose Route, ``<proxy;lr>``
  (§16.12.1.1): the proxy routes on by the Request-URI, which stays the target.
* Over WebSocket (RFC 7118 §5) our Via sent-by and Contact host are a name under ``.invalid``
  (RFC 6761 §6.4), as a browser's are: the server reaches us over the connection, never at an
  address of ours, and takes our real one from received/rport.  The name is drawn from the
  socket's own address (a hash: the same for a flow's every request, so a REGISTER's refresh
  and removal name the binding it made, and telling nothing of the address).  The Contact's
  transport is "ws" for WS and WSS alike (§5.2.2 defines no other; the WSS examples of §8 do so).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from siptool import __version__
from siptool.addr import format_address, format_host
from siptool.sip.headers import header_key
from siptool.sip.message import Header, SipMessage

USER_AGENT = f"siptool/{__version__}"
# RFC 3261 §8.1.1.7: every branch of an RFC 3261 client starts with the magic cookie.
BRANCH_COOKIE = "z9hG4bK"
# RFC 3261 §8.1.1.6: a UAC SHOULD start Max-Forwards at 70.
MAX_FORWARDS = 70


# Headers a -H may not replace: the transaction's and the framing's (RFC 3261 §17.1.3 matches
# on Via and CSeq; §18.3 frames by Content-Length), and From/To, which --from/--to set.
_PROTECTED = {
    "via": "it carries the transaction (RFC 3261 §17.1.3)",
    "call-id": "it names the dialog and the transaction",
    "cseq": "it carries the transaction (RFC 3261 §17.1.3)",
    "content-length": "siptool frames the body itself (RFC 3261 §18.3)",
    "from": "use --from",
    "to": "use --to",
}


def protected_header(name: str) -> str | None:
    """Why a -H header named ``name`` is refused, or None when it may be sent."""
    return _PROTECTED.get(header_key(name))


@dataclass(frozen=True)
class RequestKnobs:
    """What the user says of every request siptool builds (shared/cli-contract.md): -H headers
    in order, --from and --to as name-addr texts (``<sip:a@b>`` or ``"Alice" <sip:a@b>``),
    --user-agent (also the Server of our responses), and --proxy's preloaded Route."""

    headers: tuple[tuple[str, str], ...] = ()
    from_: str | None = None
    to: str | None = None
    user_agent: str = USER_AGENT
    route: str | None = None  # "<sip:proxy:5060;transport=tcp;lr>" (RFC 3261 §8.1.2)

    @property
    def routes(self) -> list[str]:
        return [] if self.route is None else [self.route]


PLAIN = RequestKnobs()


def proxy_route(scheme: str, hostport: str, transport: str | None) -> str:
    """The loose Route (RFC 3261 §16.12.1.1 ``;lr``) that preloads an outbound proxy (§8.1.2)."""
    params = "" if transport is None else f";transport={transport}"
    return f"<{scheme}:{hostport}{params};lr>"


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

    transport: str  # udp, tcp, tls, ws, wss
    host: str
    port: int

    @property
    def websocket(self) -> bool:
        return self.transport in ("ws", "wss")

    @property
    def hostport(self) -> str:
        """What we announce as our address: ip:port, or over WebSocket a ``.invalid`` name
        (RFC 7118 §5, module notes)."""
        if self.websocket:
            return invalid_host(self.host, self.port)
        return format_address(self.host, self.port)

    def via(self, branch: str) -> str:
        # RFC 3581 §3: ";rport" asks the server to tell us the source port it saw.
        return f"SIP/2.0/{self.transport.upper()} {self.hostport};branch={branch};rport"

    def contact_uri(self, user: str = "siptool") -> str:
        scheme = "sips" if self.transport == "tls" else "sip"
        transport = "ws" if self.websocket else self.transport
        params = "" if transport == "udp" else f";transport={transport}"
        return f"{scheme}:{user}@{self.hostport}{params}"


def invalid_host(host: str, port: int) -> str:
    """The ``.invalid`` name (RFC 7118 §5, RFC 6761 §6.4) a WebSocket flow from ``host:port``
    announces: 12 hex digits of a hash of the address, the same for every request of the flow."""
    digest = hashlib.blake2s(format_address(host, port).encode(), digest_size=6).hexdigest()
    return f"{digest}.invalid"


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
    knobs: RequestKnobs = PLAIN,
) -> SipMessage:
    """A request outside a dialog, from our endpoint, the URIs and tags: ``assemble_request``
    with a fresh branch unless ``branch`` is given, --from/--to (``knobs``) over the URIs, and
    --proxy's Route."""
    from_ = knobs.from_ or f"<{from_uri}>"
    to = knobs.to or f"<{to_uri}>"
    return assemble_request(
        method,
        request_uri,
        via=local.via(branch or new_branch()),
        from_=f"{from_};tag={from_tag}",
        to=to + (f";tag={to_tag}" if to_tag else ""),
        call_id=call_id,
        seq=cseq,
        routes=knobs.routes,
        contact=contact,
        extra=extra,
        body=body,
        content_type=content_type,
        max_forwards=str(max_forwards),
        knobs=knobs,
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
    knobs: RequestKnobs = PLAIN,
) -> SipMessage:
    """A request from its header values: the six mandatory headers (``mandatory_headers``),
    Route, Contact, then ``closing_headers`` with User-Agent; ``knobs``' -H headers and
    --user-agent applied (``route`` is the caller's: in a dialog the route set replaces it)."""
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
    headers += closing_headers("User-Agent", extra, body, content_type, knobs.user_agent)
    return SipMessage.request(method, request_uri, with_user_headers(headers, knobs.headers), body)


def with_user_headers(headers: list[Header], user: Iterable[tuple[str, str]]) -> list[Header]:
    """``headers`` with each -H header in: replacing the first header of its name (the later
    ones of that name dropped), else just before User-Agent / Server (see the module notes)."""
    out = list(headers)
    for name, value in user:
        key = header_key(name)
        at = next((k for k, h in enumerate(out) if h.key == key), -1)
        if at >= 0:
            out[at] = Header(out[at].name, value)
            out[at + 1 :] = [h for h in out[at + 1 :] if h.key != key]
            continue
        agent = next((k for k, h in enumerate(out) if h.key in ("user-agent", "server")), len(out))
        out.insert(agent, Header(name, value))
    return out


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
    agent: str,
    extra: Iterable[tuple[str, str]],
    body: bytes,
    content_type: str | None,
    product: str = USER_AGENT,
) -> list[Header]:
    """What ends every message siptool builds: the extra headers, ``agent`` (User-Agent or
    Server) naming ``product`` (siptool, or --user-agent), Content-Type when there is a body,
    and Content-Length last."""
    headers = [Header(name, value) for name, value in extra]
    headers.append(Header(agent, product))
    if body:
        headers.append(Header("Content-Type", content_type or "application/sdp"))
    headers.append(Header("Content-Length", str(len(body))))
    return headers
