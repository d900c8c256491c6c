"""Registration-state documents (RFC 3680): the reg package, which tells a watcher which
contacts are bound to an address-of-record.

``parse_reginfo(body)`` gives a ``RegInfo``: ``version`` and ``state`` (full or partial,
RFC 3680 §5), and each ``<registration>`` (aor, id, state init|active|terminated) with its
``<contact>``s (id, state active|terminated, event, expires, uri, display name; §5).

Decisions:

* Required by RFC 3680 §5 and refused when missing: ``version`` and ``state`` on
  ``<reginfo>``; ``aor``, ``id`` and ``state`` on ``<registration>``; ``id``, ``state`` and
  ``event`` on ``<contact>``, and its ``<uri>``.  States outside the RFC's are refused.
* The contact ``event`` is kept as written, not checked against RFC 3680's list (registered,
  created, refreshed, shortened, expired, deactivated, probation, unregistered, rejected):
  Kamailio's pua_reginfo writes "unknown" for a usrloc change it does not name
  (usrloc_cb.c), and a watcher still wants the rest of the document.
* ``expires`` and ``duration-registered`` are seconds; a negative ``expires`` (pua_reginfo
  computes ``expires - now`` and can go below zero for a contact about to be removed) reads
  as 0, a non-number is refused.
* ``<unknown-param>``s, and the ``received``, ``path`` and ``user_agent`` attributes
  pua_reginfo adds, are skipped.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, TypeVar

from siptool.numbers import is_decimal
from siptool.sip.xmlbody import (
    DocumentState,
    XmlElement,
    fail,
    parse_xml,
    read_version_state,
    require_root,
)

__all__ = [
    "MEDIA_TYPE",
    "REGINFO_NS",
    "ContactState",
    "RegContact",
    "RegInfo",
    "RegState",
    "Registration",
    "parse_reginfo",
]

REGINFO_NS = "urn:ietf:params:xml:ns:reginfo"
MEDIA_TYPE = "application/reginfo+xml"
_WHAT = f"{MEDIA_TYPE} body"
_SUMMARY_CONTACTS = 3


class RegState(enum.StrEnum):
    """RFC 3680 §5 registration states."""

    INIT = "init"
    ACTIVE = "active"
    TERMINATED = "terminated"


class ContactState(enum.StrEnum):
    """RFC 3680 §5 contact states."""

    ACTIVE = "active"
    TERMINATED = "terminated"


_E = TypeVar("_E", RegState, ContactState)


@dataclass(frozen=True, slots=True)
class RegContact:
    id: str
    state: ContactState
    event: str
    expires: int | None
    uri: str
    display_name: str | None
    duration_registered: int | None
    q: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state.value,
            "event": self.event,
            "expires": self.expires,
            "uri": self.uri,
            "display_name": self.display_name,
            "duration_registered": self.duration_registered,
            "q": self.q,
        }


@dataclass(frozen=True, slots=True)
class Registration:
    aor: str
    id: str
    state: RegState
    contacts: tuple[RegContact, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "aor": self.aor,
            "id": self.id,
            "state": self.state.value,
            "contacts": [c.to_dict() for c in self.contacts],
        }

    def summary(self) -> str:
        active = [c for c in self.contacts if c.state is ContactState.ACTIVE]
        head = f"{self.aor} {self.state.value}"
        if not self.contacts:
            return head
        noun = "contact" if len(active) == 1 else "contacts"
        shown = [f"{c.uri} ({c.event})" for c in active[:_SUMMARY_CONTACTS]]
        if len(active) > len(shown):
            shown.append(f"{len(active) - len(shown)} more")
        listed = f": {', '.join(shown)}" if shown else ""
        return f"{head}, {len(active)} active {noun}{listed}"


@dataclass(frozen=True, slots=True)
class RegInfo:
    version: int
    state: DocumentState
    registrations: tuple[Registration, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "state": self.state.value,
            "registrations": [r.to_dict() for r in self.registrations],
        }

    def summary(self) -> str:
        """``sip:joe@example.com active, 1 active contact: sip:joe@pc34 (registered)``."""
        if not self.registrations:
            return "no registrations"
        return "; ".join(r.summary() for r in self.registrations)


def parse_reginfo(body: bytes) -> RegInfo:
    """The reginfo document ``body`` (RFC 3680 §5); ParseError when it is not one."""
    root = parse_xml(body, _WHAT)
    require_root(root, "reginfo", REGINFO_NS, _WHAT)
    version, state = read_version_state(root, _WHAT)
    return RegInfo(
        version=version,
        state=state,
        registrations=tuple(_registration(r) for r in root.findall("registration", REGINFO_NS)),
    )


def _required(element: XmlElement, name: str) -> str:
    value = element.attr(name)
    if value is None or not value.strip():
        fail(_WHAT, f"<{element.name}> without its {name} attribute (RFC 3680 §5)", element)
    return value.strip()


def _enum(element: XmlElement, kind: type[_E]) -> _E:
    value = _required(element, "state")
    try:
        return kind(value.lower())
    except ValueError:
        names = ", ".join(s.value for s in kind)
        fail(_WHAT, f"<{element.name}> state {value[:20]!r} is not one of {names}", element)


def _registration(element: XmlElement) -> Registration:
    return Registration(
        aor=_required(element, "aor"),
        id=_required(element, "id"),
        state=_enum(element, RegState),
        contacts=tuple(_contact(c) for c in element.findall("contact", REGINFO_NS)),
    )


def _contact(element: XmlElement) -> RegContact:
    uri = element.find("uri", REGINFO_NS)
    if uri is None or not uri.text:
        fail(_WHAT, "<contact> without its <uri> (RFC 3680 §5)", element)
    display = element.find("display-name", REGINFO_NS)
    q = element.attr("q")
    return RegContact(
        id=_required(element, "id"),
        state=_enum(element, ContactState),
        event=_required(element, "event"),
        expires=_seconds(element, "expires"),
        uri=uri.text,
        display_name=None if display is None else display.text or None,
        duration_registered=_seconds(element, "duration-registered"),
        q=None if q is None else q.strip() or None,
    )


def _seconds(element: XmlElement, name: str) -> int | None:
    value = element.attr(name)
    if value is None:
        return None
    value = value.strip()
    negative = value.startswith("-")
    digits = value[1:] if negative else value
    if not is_decimal(digits, 20):
        fail(_WHAT, f"{name} {value[:20]!r} is not a number of seconds", element)
    return 0 if negative else int(digits)
