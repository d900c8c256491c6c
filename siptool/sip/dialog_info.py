"""Dialog-info documents (RFC 4235): the dialog package, which busy-lamp fields (BLF) watch.

``parse_dialog_info(body)`` gives a ``DialogInfo``: the entity, the document ``version`` and
``state`` (full or partial, RFC 4235 §4.1), and each ``<dialog>`` with its identifiers,
direction, state (trying, proceeding, early, confirmed, terminated; §3.7.1), the state's event
and code, and the local and remote participants (§4.1).  ``DialogInfo.blf`` is what
a lamp shows.

Decisions:

* Required by RFC 4235 §4.1 and refused when missing: ``version``, ``state`` and ``entity`` on
  ``<dialog-info>``, ``id`` on ``<dialog>``, and its ``<state>``.  The dialog state is read
  case-insensitively with whitespace ignored; a value outside the five states is refused.
  The state's ``event`` (cancelled, rejected, replaced, local-bye, remote-bye, error,
  timeout) is kept as written: it is informative and extensible in practice.
* The lamp (``Blf``): RINGING when a dialog is early with this entity the recipient (an
  incoming call that could be picked up), else BUSY when any dialog is trying, proceeding,
  early or confirmed (the entity is on a call or making one), else IDLE (no dialog, or every
  dialog terminated: Kamailio's presence_dialoginfo ``force_dummy_dialog`` sends exactly one
  terminated dialog for an idle entity).  An early dialog without a direction is BUSY.
* A partial document (state="partial") lists only what changed; ``merged`` applies it to the
  previous full state by dialog id, as RFC 4235 §4.1 describes, so that a watcher's lamp
  reflects every dialog and not just the last one reported.
* Kamailio's pua_dialoginfo writes ``<remote>`` before ``<local>`` and may put a ``display``
  attribute on ``<target>``: order is free and unknown attributes are ignored.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Any

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
    "DIALOG_INFO_NS",
    "MEDIA_TYPE",
    "Blf",
    "Dialog",
    "DialogInfo",
    "DialogState",
    "Direction",
    "Participant",
    "parse_dialog_info",
]

DIALOG_INFO_NS = "urn:ietf:params:xml:ns:dialog-info"
MEDIA_TYPE = "application/dialog-info+xml"
_WHAT = f"{MEDIA_TYPE} body"
_SUMMARY_DIALOGS = 3  # dialogs named in a one-line summary


class DialogState(enum.StrEnum):
    """RFC 4235 §3.7.1 (the FSM) and §4.1 (``<state>``)."""

    TRYING = "trying"
    PROCEEDING = "proceeding"
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class Direction(enum.StrEnum):
    INITIATOR = "initiator"
    RECIPIENT = "recipient"


class Blf(enum.StrEnum):
    """What a busy-lamp field shows for the entity (see the module docstring)."""

    IDLE = "idle"
    RINGING = "ringing"
    BUSY = "busy"


@dataclass(frozen=True, slots=True)
class Participant:
    """``<local>`` or ``<remote>`` (RFC 4235 §4.1): identity URI, its display name, and
    the target URI (the Contact)."""

    identity: str | None
    display_name: str | None
    target: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "display_name": self.display_name,
            "target": self.target,
        }


@dataclass(frozen=True, slots=True)
class Dialog:
    id: str
    call_id: str | None
    local_tag: str | None
    remote_tag: str | None
    direction: Direction | None
    state: DialogState
    event: str | None
    code: int | None
    duration: int | None
    local: Participant | None
    remote: Participant | None

    @property
    def active(self) -> bool:
        return self.state is not DialogState.TERMINATED

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "call_id": self.call_id,
            "local_tag": self.local_tag,
            "remote_tag": self.remote_tag,
            "direction": None if self.direction is None else self.direction.value,
            "state": self.state.value,
            "event": self.event,
            "code": self.code,
            "duration": self.duration,
            "local": None if self.local is None else self.local.to_dict(),
            "remote": None if self.remote is None else self.remote.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class DialogInfo:
    entity: str
    version: int
    state: DocumentState
    dialogs: tuple[Dialog, ...]

    @property
    def blf(self) -> Blf:
        if any(
            d.state is DialogState.EARLY and d.direction is Direction.RECIPIENT
            for d in self.dialogs
        ):
            return Blf.RINGING
        return Blf.BUSY if any(d.active for d in self.dialogs) else Blf.IDLE

    def merged(self, update: DialogInfo) -> DialogInfo:
        """This state with ``update`` applied: a full update replaces it, a partial one
        replaces or adds its dialogs by id (RFC 4235 §4.1)."""
        if update.state is DocumentState.FULL:
            return update
        dialogs = {d.id: d for d in self.dialogs}
        dialogs.update((d.id, d) for d in update.dialogs)
        return replace(update, state=self.state, dialogs=tuple(dialogs.values()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "version": self.version,
            "state": self.state.value,
            "blf": self.blf.value,
            "dialogs": [d.to_dict() for d in self.dialogs],
        }

    def summary(self) -> str:
        """``dialog 1234 confirmed (busy)``; ``no dialogs (idle)``."""
        if not self.dialogs:
            return f"no dialogs ({self.blf.value})"
        shown = [f"{d.id} {d.state.value}" for d in self.dialogs[:_SUMMARY_DIALOGS]]
        more = len(self.dialogs) - len(shown)
        if more:
            shown.append(f"{more} more")
        head = "dialog" if len(self.dialogs) == 1 else f"{len(self.dialogs)} dialogs:"
        return f"{head} {', '.join(shown)} ({self.blf.value})"


def parse_dialog_info(body: bytes) -> DialogInfo:
    """The dialog-info document ``body`` (RFC 4235 §4); ParseError when it is not one."""
    root = parse_xml(body, _WHAT)
    require_root(root, "dialog-info", DIALOG_INFO_NS, _WHAT)
    version, state = read_version_state(root, _WHAT)
    entity = root.attr("entity")
    if entity is None or not entity.strip():
        fail(_WHAT, "<dialog-info> without its entity attribute (RFC 4235 §4.1)", root)
    return DialogInfo(
        entity=entity.strip(),
        version=version,
        state=state,
        dialogs=tuple(_dialog(d) for d in root.findall("dialog", DIALOG_INFO_NS)),
    )


def _dialog(element: XmlElement) -> Dialog:
    dialog_id = _attr(element, "id")
    if dialog_id is None:
        fail(_WHAT, "<dialog> without its id attribute (RFC 4235 §4.1)", element)
    state = element.find("state", DIALOG_INFO_NS)
    if state is None:
        fail(_WHAT, f"dialog {dialog_id!r} without its <state>", element)
    return Dialog(
        id=dialog_id,
        call_id=_attr(element, "call-id"),
        local_tag=_attr(element, "local-tag"),
        remote_tag=_attr(element, "remote-tag"),
        direction=_direction(element),
        state=_state(state),
        event=_attr(state, "event"),
        code=_number(state, state.attr("code"), "code"),
        duration=_duration(element),
        local=_participant(element.find("local", DIALOG_INFO_NS)),
        remote=_participant(element.find("remote", DIALOG_INFO_NS)),
    )


def _attr(element: XmlElement, name: str) -> str | None:
    value = element.attr(name)
    return None if value is None else value.strip() or None


def _direction(element: XmlElement) -> Direction | None:
    value = _attr(element, "direction")
    if value is None:
        return None
    try:
        return Direction(value.lower())
    except ValueError:
        fail(_WHAT, f"direction {value[:20]!r} is neither initiator nor recipient", element)


def _state(element: XmlElement) -> DialogState:
    try:
        return DialogState(element.text.lower())
    except ValueError:
        names = ", ".join(s.value for s in DialogState)
        fail(_WHAT, f"dialog state {element.text[:20]!r} is not one of {names}", element)


def _number(element: XmlElement, value: str | None, what: str) -> int | None:
    if value is None:
        return None
    value = value.strip()
    if not is_decimal(value, 10):
        fail(_WHAT, f"{what} {value[:20]!r} is not a number", element)
    return int(value)


def _duration(element: XmlElement) -> int | None:
    duration = element.find("duration", DIALOG_INFO_NS)
    return None if duration is None else _number(duration, duration.text, "duration")


def _participant(element: XmlElement | None) -> Participant | None:
    if element is None:
        return None
    identity = element.find("identity", DIALOG_INFO_NS)
    target = element.find("target", DIALOG_INFO_NS)
    return Participant(
        identity=None if identity is None else identity.text or None,
        display_name=None if identity is None else _attr(identity, "display"),
        target=None if target is None else _attr(target, "uri"),
    )
