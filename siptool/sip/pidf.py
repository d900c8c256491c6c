"""PIDF presence documents (RFC 3863), with the RFC 4479 / RFC 4480 parts phones show: read
from a NOTIFY of the presence package (RFC 3856), written for a PUBLISH (RFC 3903).

``parse_pidf(body)`` gives a ``Presence``: the entity, each ``<tuple>`` (id, ``<basic>`` open
or closed, contact, notes, timestamp), the notes of the document and of its ``<dm:person>``
(RFC 4479), and the person's ``<rpid:activities>`` (RFC 4480: on-the-phone, away,
busy, ...).  ``build_pidf`` writes the one-tuple document a PUBLISH carries.

Decisions:

* Required by RFC 3863 and refused when missing: the ``entity`` attribute, a tuple's ``id`` and
  its ``<status>`` (§4.1).  ``<basic>`` is optional inside ``<status>`` (a status may carry
  only extensions); its value is open or closed, read case-insensitively with surrounding
  whitespace ignored, and anything else is refused.
* The overall status is "open" when any tuple is open (RFC 3863 §4.1: each tuple is one
  way of reaching the presentity; one open way makes it reachable), "closed" when tuples
  say closed and none open, None when no tuple says either.
* Notes: the document's ``<note>``s, then each person's ``<dm:note>`` (a pidf ``<note>`` inside
  ``<dm:person>`` too, as some clients write it), duplicates dropped in order: Kamailio's
  dummy document (presence_xml ``force_dummy_presence``) says "Available" in both places.
* Activities are the local names of the children of ``<rpid:activities>`` except its
  ``<rpid:note>``; ``<rpid:other>text</rpid:other>`` gives its text.  An empty
  ``<rpid:activities/>`` (Kamailio's dummy again) is no activity.
* Extension elements (``<im:im>``, ``<dm:device>``, ``<rpid:mood>``, ...) are skipped, as
  RFC 3863 asks of a watcher that does not understand them.
* ``build_pidf`` puts the note inside the tuple (RFC 3863 allows it there): Kamailio's
  aggregation (presence_xml ``agregate_xmls``) merges documents tuple by tuple, so a note
  there follows its tuple's status.  Text XML cannot carry (a NUL, a C0 control) is a
  UsageError; everything else is escaped.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

from siptool.errors import UsageError
from siptool.sip.xmlbody import (
    XmlElement,
    fail,
    parse_xml,
    require_root,
    xml_attr,
    xml_text,
)

__all__ = [
    "DM_NS",
    "MEDIA_TYPE",
    "PIDF_NS",
    "RPID_NS",
    "Basic",
    "Presence",
    "PresenceTuple",
    "build_pidf",
    "parse_pidf",
]

PIDF_NS = "urn:ietf:params:xml:ns:pidf"
DM_NS = "urn:ietf:params:xml:ns:pidf:data-model"  # RFC 4479 §4
RPID_NS = "urn:ietf:params:xml:ns:pidf:rpid"  # RFC 4480 §5
MEDIA_TYPE = "application/pidf+xml"
_WHAT = f"{MEDIA_TYPE} body"
# XML 1.0 NCName, which is what a tuple id (xs:ID) must be; ASCII is all siptool writes.
_NCNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
_SUMMARY_NOTE = 80  # characters of a note shown in a one-line summary


class Basic(enum.StrEnum):
    """RFC 3863 §4.1 ``<basic>``."""

    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class PresenceTuple:
    id: str
    basic: Basic | None
    contact: str | None
    notes: tuple[str, ...]
    timestamp: str | None  # RFC 3339 text as written

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "basic": None if self.basic is None else self.basic.value,
            "contact": self.contact,
            "notes": list(self.notes),
            "timestamp": self.timestamp,
        }


@dataclass(frozen=True, slots=True)
class Presence:
    entity: str
    tuples: tuple[PresenceTuple, ...]
    notes: tuple[str, ...]
    activities: tuple[str, ...]

    @property
    def basic(self) -> Basic | None:
        """Open when any tuple is open (see the module docstring)."""
        states = {t.basic for t in self.tuples}
        if Basic.OPEN in states:
            return Basic.OPEN
        return Basic.CLOSED if Basic.CLOSED in states else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "basic": None if self.basic is None else self.basic.value,
            "tuples": [t.to_dict() for t in self.tuples],
            "notes": list(self.notes),
            "activities": list(self.activities),
        }

    def summary(self) -> str:
        """``open: on the phone``: the overall status and the first note or the activities."""
        status = "unknown" if self.basic is None else self.basic.value
        detail = self._detail()
        return f"{status}: {detail}" if detail else status

    def _detail(self) -> str:
        notes = self.notes or tuple(
            note for t in self.tuples if t.basic == self.basic for note in t.notes
        )
        if notes:
            text = " ".join(notes[0].split())
            return text if len(text) <= _SUMMARY_NOTE else text[: _SUMMARY_NOTE - 3] + "..."
        return ", ".join(a.replace("-", " ") for a in self.activities)


def parse_pidf(body: bytes) -> Presence:
    """The presence document ``body`` (RFC 3863); ParseError when it is not one."""
    root = parse_xml(body, _WHAT)
    require_root(root, "presence", PIDF_NS, _WHAT)
    entity = root.attr("entity")
    if entity is None or not entity.strip():
        fail(_WHAT, "<presence> without its entity attribute (RFC 3863 §4.1)", root)
    tuples = tuple(_tuple(t) for t in root.findall("tuple", PIDF_NS))
    persons = root.findall("person", DM_NS)
    notes = _notes(root.findall("note", PIDF_NS))
    for person in persons:
        notes += _notes(person.findall("note", (DM_NS, PIDF_NS)))
    return Presence(
        entity=entity.strip(),
        tuples=tuples,
        notes=tuple(dict.fromkeys(notes)),
        activities=tuple(a for p in persons for a in _activities(p)),
    )


def _tuple(element: XmlElement) -> PresenceTuple:
    tuple_id = element.attr("id")
    if tuple_id is None or not tuple_id.strip():
        fail(_WHAT, "<tuple> without its id attribute (RFC 3863 §4.1)", element)
    status = element.find("status", PIDF_NS)
    if status is None:
        fail(_WHAT, f"tuple {tuple_id!r} without its <status> (RFC 3863 §4.1)", element)
    return PresenceTuple(
        id=tuple_id.strip(),
        basic=_basic(status),
        contact=_text_or_none(element.find("contact", PIDF_NS)),
        notes=tuple(_notes(element.findall("note", PIDF_NS))),
        timestamp=_text_or_none(element.find("timestamp", PIDF_NS)),
    )


def _text_or_none(element: XmlElement | None) -> str | None:
    return None if element is None else element.text or None


def _basic(status: XmlElement) -> Basic | None:
    basic = status.find("basic", PIDF_NS)
    if basic is None:
        return None
    try:
        return Basic(basic.text.lower())
    except ValueError:
        fail(_WHAT, f"<basic> {basic.text[:20]!r} is neither open nor closed", basic)


def _notes(elements: list[XmlElement]) -> list[str]:
    return [e.text for e in elements if e.text]


def _activities(person: XmlElement) -> list[str]:
    found: list[str] = []
    for activities in person.findall("activities", RPID_NS):
        for child in activities.children:
            if child.name == "note":
                continue
            if child.name == "other":
                found.append(child.text or "other")
            else:
                found.append(child.name)
    return found


def build_pidf(
    entity: str,
    status: Basic,
    note: str | None = None,
    tuple_id: str = "siptool",
    *,
    contact: str | None = None,
) -> bytes:
    """The PIDF document of a PUBLISH (RFC 3903 §4, RFC 3863 §4): one tuple with its basic
    status, and the note and contact when given.  UsageError for text XML cannot carry or a
    tuple id that is not an XML name."""
    if not _NCNAME.match(tuple_id):
        raise UsageError(f"tuple id {tuple_id[:40]!r} is not an XML name (letters, digits, _.-)")
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<presence xmlns="{PIDF_NS}" entity={xml_attr(entity, "presence entity")}>',
        f'  <tuple id="{tuple_id}">',
        f"    <status><basic>{status.value}</basic></status>",
    ]
    if contact is not None:
        lines.append(f"    <contact>{xml_text(contact, 'contact')}</contact>")
    if note is not None:
        lines.append(f"    <note>{xml_text(note, 'note')}</note>")
    lines += ["  </tuple>", "</presence>", ""]
    return "\n".join(lines).encode("utf-8")
