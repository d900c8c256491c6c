"""The UAC side of a dialog (RFC 3261 §12, §13), pure: ACK for a 2xx, BYE, responses to the
requests the far end sends inside the dialog.

``Dialog.from_response(invite, response)`` builds the dialog state of §12.1.2 from the INVITE
we sent and a 2xx (or a tagged 1xx) it got: Call-ID, local and remote tags and URIs, the remote
target (the response's Contact) and the route set (its Record-Route, reversed).  Requests built
from it follow §12.2.1.1: with a loose router first in the route set (``;lr``) the Request-URI
is the remote target and the route set goes into Route; with a strict router first the
Request-URI is that router and the remote target goes to the end of Route.

Nothing here sends anything: the caller picks the next hop with ``next_hop()`` and gives each
request a fresh Via (a new branch: an ACK for a 2xx is its own transaction, §13.2.2.4).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from siptool.errors import ParseError
from siptool.sip.builders import USER_AGENT, RequestKnobs, assemble_request, closing_headers
from siptool.sip.message import Header, SipMessage
from siptool.sip.nameaddr import parse_name_addr
from siptool.sip.uri import Uri, parse_uri

__all__ = ["Dialog", "DialogError", "build_response"]

# RFC 3261 §19.1.1 Table 1: parameters allowed in a Route/Record-Route URI but not in a
# Request-URI, stripped (with the URI's headers) when a strict router's URI becomes the
# Request-URI (§12.2.1.1).
_NOT_IN_REQUEST_URI = ("method", "lr")


class DialogError(ParseError):
    """A response that cannot establish a dialog (no To tag, malformed Contact ...)."""

    code = "dialog_error"


@dataclass
class Dialog:
    """RFC 3261 §12.1.2 UAC dialog state.  ``route_set`` holds name-addr texts in the order
    the requests carry them (the response's Record-Route reversed)."""

    call_id: str
    local_tag: str
    remote_tag: str
    local: str  # From header value of our requests (with our tag)
    remote: str  # To header value of our requests (with the remote tag)
    remote_target: str  # URI from the response's Contact
    route_set: list[str] = field(default_factory=list)
    local_seq: int = 1
    warnings: list[str] = field(default_factory=list)
    # --user-agent on the requests of the dialog (its -H headers were the INVITE's alone).
    user_agent: str = USER_AGENT

    @classmethod
    def from_response(cls, invite: SipMessage, response: SipMessage) -> Dialog:
        """The dialog a 2xx to ``invite`` creates (RFC 3261 §12.1.2)."""
        try:
            to = response.to
            from_ = invite.from_
            cseq = invite.cseq
        except ParseError as exc:
            raise DialogError(f"cannot build the dialog: {exc.message}") from None
        call_id = invite.call_id
        if to is None or to.tag is None:
            raise DialogError(f"{response.status} without a To tag: no dialog (RFC 3261 §12.1)")
        if from_ is None or from_.tag is None or call_id is None or cseq is None:
            raise DialogError("the INVITE lacks From tag, Call-ID or CSeq")
        warnings: list[str] = []
        try:
            contacts = response.contacts
        except ParseError as exc:
            contacts = []
            warnings.append(f"the {response.status}'s Contact is malformed: {exc.message}")
        if contacts and not contacts[0].is_star:
            remote_target = str(contacts[0].uri)
        else:
            # §12.1.2 requires the Contact; without it the Request-URI is the best guess.
            if not warnings:
                warnings.append(f"the {response.status} has no Contact (RFC 3261 §13.3.1.4)")
            remote_target = invite.request_uri or ""
        try:
            record_route = [str(n) for n in response.name_addrs("Record-Route")]
        except ParseError as exc:
            raise DialogError(f"malformed Record-Route: {exc.message}") from None
        return cls(
            call_id=call_id,
            local_tag=from_.tag,
            remote_tag=to.tag,
            local=invite.header("From") or "",
            remote=response.header("To") or "",
            remote_target=remote_target,
            route_set=list(reversed(record_route)),
            local_seq=cseq.seq,
            warnings=warnings,
        )

    # -- routing (§12.2.1.1) ----------------------------------------------------------------

    def _route_uris(self) -> list[Uri]:
        return [parse_name_addr(r).uri for r in self.route_set]

    @property
    def strict_routing(self) -> bool:
        """True when the first route is a strict router (no ``;lr``, RFC 2543 style)."""
        if not self.route_set:
            return False
        return "lr" not in self._route_uris()[0].params

    def request_uri_and_routes(self) -> tuple[str, list[str]]:
        """(Request-URI, Route values) for a request in this dialog (§12.2.1.1)."""
        if not self.route_set:
            return self.remote_target, []
        if not self.strict_routing:
            return self.remote_target, list(self.route_set)
        first = self._route_uris()[0]
        params = {k: v for k, v in first.params.items() if k not in _NOT_IN_REQUEST_URI}
        request_uri = replace(first, params=params, headers={}).to_text()
        return request_uri, [*self.route_set[1:], f"<{self.remote_target}>"]

    def next_hop(self) -> Uri:
        """Where a request in this dialog goes first: the first route, else the remote
        target (RFC 3261 §8.1.2 with the Route set of §12.2.1.1)."""
        if self.route_set:
            return self._route_uris()[0]
        return parse_uri(self.remote_target)

    # -- requests -------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        via: str,
        seq: int,
        *,
        contact: str | None = None,
        extra: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> SipMessage:
        request_uri, routes = self.request_uri_and_routes()
        return assemble_request(
            method,
            request_uri,
            via=via,
            from_=self.local,
            to=self.remote,
            call_id=self.call_id,
            seq=seq,
            routes=routes,
            contact=contact,
            extra=extra,
            body=body,
            content_type=content_type,
            knobs=RequestKnobs(user_agent=self.user_agent),
        )

    def ack(self, invite: SipMessage, via: str) -> SipMessage:
        """The ACK for a 2xx to ``invite`` (RFC 3261 §13.2.2.4): built like any in-dialog
        request but with the INVITE's CSeq number, and the INVITE's credentials."""
        cseq = invite.cseq
        if cseq is None:
            raise ValueError("the INVITE has no CSeq")
        credentials = [
            (h.name, h.value)
            for name in ("Authorization", "Proxy-Authorization")
            for h in invite.header_fields(name)
        ]
        return self._request("ACK", via, cseq.seq, extra=credentials)

    def request(
        self,
        method: str,
        via: str,
        *,
        contact: str | None = None,
        extra: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> SipMessage:
        """A new in-dialog request (BYE, re-INVITE ...): CSeq one above the last (§12.2.1.1)."""
        self.local_seq += 1
        return self._request(
            method,
            via,
            self.local_seq,
            contact=contact,
            extra=extra,
            body=body,
            content_type=content_type,
        )

    def matches(self, request: SipMessage) -> bool:
        """True when ``request`` from the far end belongs to this dialog (§12.2.2: Call-ID,
        its To tag is our local tag, its From tag the remote tag)."""
        try:
            to, from_ = request.to, request.from_
        except ParseError:
            return False
        return (
            request.call_id == self.call_id
            and to is not None
            and to.tag == self.local_tag
            and from_ is not None
            and from_.tag == self.remote_tag
        )


def build_response(
    request: SipMessage,
    status: int,
    reason: str,
    *,
    to_tag: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
    server: str = USER_AGENT,
) -> SipMessage:
    """A response to ``request`` (RFC 3261 §8.2.6.2): Via, From, Call-ID, CSeq copied, To
    copied with ``to_tag`` added when it has none; ``server`` names us (--user-agent)."""
    headers = [Header("Via", h.value) for h in request.header_fields("Via")]
    for name in ("From", "To", "Call-ID", "CSeq"):
        value = request.header(name)
        if value is None:
            continue
        if name == "To" and to_tag is not None and _tag_of(value) is None:
            value = f"{value};tag={to_tag}"
        headers.append(Header(name, value))
    headers += closing_headers("Server", extra, body, content_type, server)
    return SipMessage.response(status, reason, headers, body)


def _tag_of(value: str) -> str | None:
    try:
        return parse_name_addr(value).tag
    except ParseError:
        return None
