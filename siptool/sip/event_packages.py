"""SIP event packages (RFC 6665): the table of the packages siptool knows, the Event and
Subscription-State headers, the NOTIFY body dispatch, and when to refresh.

``PACKAGES`` is the one home of which package carries which body: its name (the Event
header's event-type), the media type a subscriber puts in Accept, and the parser of that
type.  ``parse_notify_body(content_type, body)`` dispatches on the media type and returns a
value with ``to_dict()`` (the ``notifies[].parsed`` object of the JSON: snake_case keys, null
for what the body did not say, no key ever omitted) and ``summary()`` (one line for a
person), or None for a type siptool does not read or an empty body.

Decisions:

* The table: presence (RFC 3856, application/pidf+xml), dialog (RFC 4235,
  application/dialog-info+xml), message-summary (RFC 3842, application/simple-message-
  summary), reg (RFC 3680, application/reginfo+xml), refer (RFC 3515 §2.4.5,
  message/sipfrag) and presence.winfo (RFC 3857, application/watcherinfo+xml, whose body
  is not parsed: ``parse_notify_body`` returns None for it).
* Package names compare byte by byte (RFC 6665 §8.2.1 keeps RFC 3265 §7.2.1's rule for
  matching Event headers), so ``Event.package`` keeps its spelling; ``package()`` and
  ``accept_for()`` fall back to the lower-case spelling, since every registered name is
  lower case and a person typing ``--event Presence`` means presence.
* Media types are matched case-insensitively without their parameters (RFC 2045 §5.1):
  ``Application/PIDF+XML; charset=UTF-8`` is PIDF.  An empty or whitespace-only body is None:
  RFC 6665 lets a NOTIFY carry no state (Kamailio does, for a presentity nobody
  published unless ``force_dummy_presence`` is set).
* Subscription-State values compare case-insensitively (RFC 3261 §7.3.1: tokens, unless the
  grammar says otherwise); an unknown state is OTHER with its text kept (extension-substate,
  RFC 6665 §8.4).  Numbers are delta-seconds of at most ten digits.
* ``refresh_at``: RFC 6665 §4.1.2.2 has the subscriber refresh "before the expiration"
  without saying how long before.  siptool refreshes Timer F (64*T1 = 32 s, RFC 3261
  §17.1.2.2) before expiry, the longest a non-INVITE transaction may take, so that even a
  refresh retransmitted to its timeout ends before the subscription or publication
  (RFC 3903 §4.1) does; and at half the interval when that is shorter than twice Timer F,
  so that a 60 s subscription refreshes at 30 s, not at 28 s, and a 10 s one at 5 s.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from siptool.errors import ParseError
from siptool.numbers import is_decimal
from siptool.sip import dialog_info, message_summary, pidf, reginfo, sipfrag
from siptool.sip.nameaddr import parse_params
from siptool.sip.transaction import Timers

__all__ = [
    "PACKAGES",
    "REASONS",
    "WATCHERINFO_MEDIA_TYPE",
    "BodyParser",
    "Event",
    "EventPackage",
    "ParsedBody",
    "SubState",
    "SubscriptionState",
    "accept_for",
    "media_type",
    "package",
    "parse_event",
    "parse_notify_body",
    "parse_subscription_state",
    "refresh_at",
]

WATCHERINFO_MEDIA_TYPE = "application/watcherinfo+xml"  # RFC 3858 §4


class ParsedBody(Protocol):
    """What ``parse_notify_body`` returns: the JSON object and the one-line summary."""

    def to_dict(self) -> dict[str, Any]: ...

    def summary(self) -> str: ...


BodyParser = Callable[[bytes], ParsedBody]


@dataclass(frozen=True, slots=True)
class EventPackage:
    name: str  # the Event header's event-type
    accept: str  # the media type of its NOTIFY bodies (and PUBLISH bodies)
    parse: BodyParser | None  # None: siptool does not read this body
    rfc: str


PACKAGES: Mapping[str, EventPackage] = {
    p.name: p
    for p in (
        EventPackage("presence", pidf.MEDIA_TYPE, pidf.parse_pidf, "RFC 3856"),
        EventPackage("dialog", dialog_info.MEDIA_TYPE, dialog_info.parse_dialog_info, "RFC 4235"),
        EventPackage(
            "message-summary",
            message_summary.MEDIA_TYPE,
            message_summary.parse_message_summary,
            "RFC 3842",
        ),
        EventPackage("reg", reginfo.MEDIA_TYPE, reginfo.parse_reginfo, "RFC 3680"),
        EventPackage("refer", sipfrag.MEDIA_TYPE, sipfrag.parse_sipfrag, "RFC 3515"),
        EventPackage("presence.winfo", WATCHERINFO_MEDIA_TYPE, None, "RFC 3857"),
    )
}
_PARSERS: Mapping[str, BodyParser | None] = {p.accept: p.parse for p in PACKAGES.values()}


def package(name: str) -> EventPackage | None:
    """The package called ``name`` (see the module docstring for case), or None."""
    return PACKAGES.get(name) or PACKAGES.get(name.strip().lower())


def accept_for(name: str) -> str | None:
    """The Accept value of a SUBSCRIBE for the package ``name``; None for one siptool does not
    know (RFC 6665: without Accept, the package's default format applies)."""
    found = package(name)
    return None if found is None else found.accept


def media_type(content_type: str | None) -> str | None:
    """``type/subtype`` lower-cased without parameters, or None."""
    if content_type is None:
        return None
    return content_type.partition(";")[0].strip(" \t").lower() or None


def parse_notify_body(content_type: str | None, body: bytes) -> ParsedBody | None:
    """The NOTIFY (or PUBLISH) body parsed by its media type; None for an empty body or a type
    siptool does not read; ParseError, naming what is wrong, for a broken one."""
    if not body.strip():
        return None
    kind = media_type(content_type)
    parser = None if kind is None else _PARSERS.get(kind)
    return None if parser is None else parser(body)


# -- Event (RFC 6665 §8.2.1) ------------------------------------------------------------------

# token-nodot = 1*( alphanum / "-" / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" )
_TOKEN_NODOT = re.compile(r"[A-Za-z0-9\-!%*_+`'~]+\Z")
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")


@dataclass(frozen=True, slots=True)
class Event:
    package: str  # event-type: the package and its templates, "presence.winfo"
    id: str | None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def templates(self) -> tuple[str, ...]:
        """The event-templates after the package name (RFC 6665 §8.2.1): ("winfo",)."""
        return tuple(self.package.split(".")[1:])

    def to_dict(self) -> dict[str, Any]:
        return {"package": self.package, "id": self.id, "params": dict(self.params)}


def parse_event(value: str) -> Event:
    """``Event: event-type *( SEMI event-param )`` (RFC 6665 §8.2.1)."""
    text = value.strip(" \t")
    semi = text.find(";")
    event_type = (text if semi < 0 else text[:semi]).strip(" \t")
    if not event_type:
        raise ParseError("bad Event: no event type", offset=0)
    for part in event_type.split("."):
        if not _TOKEN_NODOT.match(part):
            raise ParseError(f"bad Event type {event_type[:40]!r}", offset=0)
    params = {} if semi < 0 else parse_params(text, semi)
    event_id = params.get("id")
    if "id" in params and (event_id is None or not _TOKEN.match(event_id)):
        raise ParseError(f"bad Event id {event_id!r}: id = token (RFC 6665 §8.2.1)", offset=semi)
    return Event(event_type, event_id, params)


# -- Subscription-State (RFC 6665 §4.1.3, §8.2.3) ---------------------------------------------


class SubState(enum.StrEnum):
    ACTIVE = "active"
    PENDING = "pending"
    TERMINATED = "terminated"
    OTHER = "other"  # an extension-substate: see SubscriptionState.state_text


# RFC 6665 §4.2.2 event-reason-values and what a subscriber is to do about each.
REASONS: Mapping[str, str] = {
    "deactivated": "the subscription ended; subscribe again at once",
    "probation": "the subscription ended; subscribe again after retry-after",
    "rejected": "the subscription was refused by policy; do not subscribe again",
    "timeout": "the subscription expired without a refresh",
    "giveup": "the notifier could not get authorization in time; retry after retry-after",
    "noresource": "the resource no longer exists; do not subscribe again",
    "invariant": "the resource has no state that changes; do not subscribe again",
}


@dataclass(frozen=True, slots=True)
class SubscriptionState:
    state: SubState
    state_text: str  # as written, lower-cased: the extension's name for OTHER
    expires: int | None
    reason: str | None
    retry_after: int | None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def meaning(self) -> str | None:
        """What RFC 6665 §4.2.2 makes of the reason, None when there is none or it is not
        one of the RFC's."""
        return None if self.reason is None else REASONS.get(self.reason)

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "state_text": self.state_text,
            "expires": self.expires,
            "reason": self.reason,
            "retry_after": self.retry_after,
            "params": dict(self.params),
        }


def parse_subscription_state(value: str) -> SubscriptionState:
    """``Subscription-State: substate-value *( SEMI subexp-params )`` (RFC 6665 §8.2.3)."""
    text = value.strip(" \t")
    semi = text.find(";")
    state_text = (text if semi < 0 else text[:semi]).strip(" \t").lower()
    if not _TOKEN.match(state_text):
        raise ParseError(f"bad Subscription-State {text[:40]!r}", offset=0)
    params = {} if semi < 0 else parse_params(text, semi)
    try:
        state = SubState(state_text)
    except ValueError:
        state = SubState.OTHER
    reason = params.get("reason")
    return SubscriptionState(
        state=state,
        state_text=state_text,
        expires=_delta_seconds(params, "expires"),
        reason=None if reason is None else reason.strip('"').lower() or None,
        retry_after=_delta_seconds(params, "retry-after"),
        params=params,
    )


def _delta_seconds(params: dict[str, str | None], name: str) -> int | None:
    if name not in params:
        return None
    value = params[name]
    if value is None or not is_decimal(value, 10):
        raise ParseError(f"bad Subscription-State {name} {value!r}: delta-seconds expected")
    return int(value)


def refresh_at(expires: float, now: float, timers: Timers | None = None) -> float:
    """When to refresh a subscription or publication that lasts ``expires`` seconds from
    ``now``: Timer F before it ends, or half-way for a short one (see the module docstring).
    ``expires`` of 0 or less is ``now``."""
    if expires <= 0:
        return now
    lead = min((timers or Timers()).f, expires / 2)
    return now + expires - lead
