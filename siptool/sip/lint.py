"""RFC 3261 checks on one parsed message: what a SIP engineer would flag in a trace.

Pure: the only context is the message and, when it came from a capture, the addresses the
packet carried (``src``/``dst``), which the NAT checks need.  Each finding is a ``LintWarning``
with a stable ``code`` that scripts can match on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from siptool.addr import (
    is_private_address,
    is_public_address,
)
from siptool.errors import ParseError
from siptool.sip.builders import BRANCH_COOKIE
from siptool.sip.fastcheck import plain_name_addr, plain_uri, plain_via_list
from siptool.sip.headers import MANDATORY_REQUEST_HEADERS
from siptool.sip.message import CSeq, SipMessage
from siptool.sip.nameaddr import Via

__all__ = [
    "LintWarning",
    "lint_message",
    "lost_carriage_returns",
    "malformed_fields",
]

# RFC 3261 §8.1.1 for requests; §8.2.6.2 / §20: a response copies From, To, Call-ID, CSeq and
# Via from the request.  Max-Forwards (requests only) is checked on its own below so that it
# gets its own code.
_MANDATORY = tuple(name for name in MANDATORY_REQUEST_HEADERS if name != "Max-Forwards")
# Headers that may appear at most once (RFC 3261 §7.3: only the comma-list headers repeat).
_SINGLE = ("To", "From", "CSeq", "Call-ID", "Max-Forwards", "Content-Length", "Content-Type")


_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class LintWarning:
    """One finding: ``code`` is stable (for scripts), ``message`` is for a person."""

    code: str
    message: str
    severity: str = "warning"  # "error" when the message violates a MUST

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "severity": self.severity, "message": self.message}


def lint_message(
    msg: SipMessage, *, src: str | None = None, dst: str | None = None
) -> list[LintWarning]:
    """Every finding for ``msg``; ``src``/``dst`` are ``"ip:port"`` when known."""
    out: list[LintWarning] = []
    is_request = msg.method is not None

    if msg.version != "SIP/2.0":
        out.append(
            LintWarning("version", f"unsupported version {msg.version} (RFC 3261 §7.1)", "error")
        )

    present = {h.name for h in msg.headers}
    for name in _MANDATORY:
        if name not in present:
            out.append(
                LintWarning(
                    "missing-header",
                    f"mandatory header {name} is missing (RFC 3261 §8.1.1)",
                    "error",
                )
            )
    if is_request and "Max-Forwards" not in present:
        out.append(
            LintWarning(
                "max-forwards-missing",
                "request without Max-Forwards (RFC 3261 §8.1.1.6 makes it mandatory)",
                "error",
            )
        )
    for name in _SINGLE:
        count = sum(1 for h in msg.headers if h.name == name)
        if count > 1:
            out.append(
                LintWarning(
                    "duplicate-header", f"{name} appears {count} times (RFC 3261 §7.3)", "error"
                )
            )

    out.extend(_framing(msg))
    out.extend(_parsed_check(msg, "CSeq", "bad-cseq", lambda m: m.cseq, _cseq))
    out.extend(_parsed_check(msg, "Via", "bad-via", lambda m: m.top_via, _via))
    out.extend(_unparseable(msg))
    if is_request and msg.method == "INVITE" and "Contact" not in present:
        out.append(
            LintWarning("missing-contact", "INVITE without Contact (RFC 3261 §8.1.1.8)", "error")
        )
    if msg.body and "Content-Type" not in present:
        out.append(
            LintWarning(
                "missing-content-type", "body without Content-Type (RFC 3261 §20.15)", "error"
            )
        )
    out.extend(_nat(msg, src, dst))
    return out


def _framing(msg: SipMessage) -> list[LintWarning]:
    # RFC 3261 §18.3: Content-Length frames the body; on a stream it is mandatory.
    declared = msg.declared_length
    if declared is None:
        return []
    if msg.body_truncated and lost_carriage_returns(msg):
        return []
    if msg.body_truncated:
        return [
            LintWarning(
                "content-length",
                f"Content-Length {declared} but only {len(msg.body)} body bytes (RFC 3261 §18.3)",
                "error",
            )
        ]
    if msg.trailing:
        return [
            LintWarning(
                "content-length",
                f"Content-Length {declared} but {msg.trailing} more bytes follow the body "
                "(RFC 3261 §18.3)",
                "error",
            )
        ]
    return []


def lost_carriage_returns(msg: SipMessage) -> bool:
    """True when the body is short of Content-Length by exactly its bare LFs: the message was
    written with CRLF (RFC 3261 §7) and a log or a paste turned them into LF."""
    body = msg.body
    return (
        b"\r" not in body
        and msg.declared_length is not None
        and msg.declared_length == len(body) + body.count(b"\n")
    )


def _parsed_check(
    msg: SipMessage,
    name: str,
    code: str,
    view: Callable[[SipMessage], _V | None],
    check: Callable[[SipMessage, _V], list[LintWarning]],
) -> list[LintWarning]:
    """``check`` on one parsed view of ``msg``: an error ``code`` when it does not parse,
    nothing when the message lacks it."""
    try:
        value = view(msg)
    except ParseError as exc:
        return [LintWarning(code, f"unparseable {name}: {exc.message}", "error")]
    return [] if value is None else check(msg, value)


def _cseq(msg: SipMessage, cseq: CSeq) -> list[LintWarning]:
    out = []
    # RFC 3261 §8.1.1.5: the CSeq method MUST match the request method.
    if msg.method is not None and cseq.method != msg.method:
        out.append(
            LintWarning(
                "cseq-method",
                f"CSeq method {cseq.method} does not match request method {msg.method} "
                "(RFC 3261 §8.1.1.5)",
                "error",
            )
        )
    if cseq.seq >= 2**31:
        out.append(
            LintWarning(
                "cseq-range",
                f"CSeq number {cseq.seq} is not below 2**31 (RFC 3261 §8.1.1.5)",
                "error",
            )
        )
    return out


def _via(msg: SipMessage, top: Via) -> list[LintWarning]:
    if top.branch is None:
        return [
            LintWarning("branch", "top Via has no branch parameter (RFC 3261 §8.1.1.7)", "error")
        ]
    if not top.branch.startswith(BRANCH_COOKIE):
        return [
            LintWarning(
                "branch",
                f"top Via branch {top.branch!r} lacks the {BRANCH_COOKIE} magic cookie "
                "(RFC 3261 §8.1.1.7): the peer falls back to RFC 2543 transaction matching",
            )
        ]
    return []


def _plain_name_addr(key: str) -> Callable[[SipMessage], bool]:
    def plain(m: SipMessage) -> bool:
        fields = m.header_fields(key)
        return len(fields) == 1 and plain_name_addr(fields[0].value)

    return plain


def _plain_contacts(m: SipMessage) -> bool:
    return all(plain_name_addr(h.value) for h in m.header_fields("Contact"))


def _plain_vias(m: SipMessage) -> bool:
    fields = m.header_fields("Via")
    return bool(fields) and all(plain_via_list(h.value) for h in fields)


def _plain_request_uri(m: SipMessage) -> bool:
    return m.request_uri is None or plain_uri(m.request_uri)


def _never(m: SipMessage) -> bool:
    return False


# The parsed views decode shows of a message, in its order, with the lint code for one that does
# not parse (None for CSeq and Via: ``_cseq`` and ``_via`` check them with codes of their own),
# and a test that a value surely parses (sip.fastcheck) so that validating it builds nothing.
_VIEWS: tuple[
    tuple[str, str | None, Callable[[SipMessage], object], Callable[[SipMessage], bool]], ...
] = (
    ("Request-URI", "bad-request-uri", lambda m: m.uri, _plain_request_uri),
    ("From", "bad-from", lambda m: m.from_, _plain_name_addr("From")),
    ("To", "bad-to", lambda m: m.to, _plain_name_addr("To")),
    ("CSeq", None, lambda m: m.cseq, _never),
    ("Via", None, lambda m: m.vias, _plain_vias),
    ("Contact", "bad-contact", lambda m: m.contacts, _plain_contacts),
    ("SDP", "bad-sdp", lambda m: m.sdp, _never),
)


def _view_errors(msg: SipMessage) -> list[tuple[str, str | None, ParseError]]:
    """(view name, lint code, error) for each view of ``msg`` that does not parse."""
    out = []
    for name, code, view, plain in _VIEWS:
        if plain(msg):
            continue
        try:
            view(msg)
        except ParseError as exc:
            out.append((name, code, exc))
    return out


def malformed_fields(msg: SipMessage) -> list[str]:
    """What in a framed message does not parse: the Request-URI, the headers every message
    carries (RFC 3261 §8.1.1), Contact, the SDP body.  Empty for a message decoded cleanly."""
    out = []
    for name, _, exc in _view_errors(msg):
        message = exc.message
        # The views name their header already ("From: unterminated '<'"); SDP may not.
        out.append(message if message.startswith(name) else f"{name}: {message}")
    return out


def _unparseable(msg: SipMessage) -> list[LintWarning]:
    """Values decode shows as null because they do not parse (CSeq and Via have their own)."""
    return [
        LintWarning(code, f"unparseable {exc.message}", "error")
        for _, code, exc in _view_errors(msg)
        if code is not None
    ]


def _nat(msg: SipMessage, src: str | None, dst: str | None) -> list[LintWarning]:
    """A private address announced toward (or seen arriving from) a public peer cannot be
    reached: the classic cause of one-way audio and of calls dropped after 32 s."""
    if not (is_public_address(src) or is_public_address(dst)):
        return []
    peer = src if is_public_address(src) else dst
    out = []
    try:
        contacts = msg.contacts
    except ParseError:
        contacts = []
    for contact in contacts:
        host = contact.uri.host if contact.uri is not None else None
        if is_private_address(host):
            out.append(
                LintWarning(
                    "private-contact",
                    f"Contact carries private address {host} while the signalling peer {peer} "
                    "is public: the far end cannot reach it without NAT fix-up "
                    "(RFC 3581, RFC 5626)",
                )
            )
    try:
        sdp = msg.sdp
    except ParseError:
        sdp = None
    if sdp is not None:
        seen: set[str] = set()
        for media in sdp.media:
            address = media.connection_address
            if address and address not in seen and is_private_address(address):
                seen.add(address)
                out.append(
                    LintWarning(
                        "private-sdp",
                        f"SDP c= carries private address {address} while the signalling peer "
                        f"{peer} is public: expect one-way or no audio unless media is latched "
                        "or relayed",
                    )
                )
    return out
