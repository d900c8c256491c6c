"""Message summaries (RFC 3842 §5, ``application/simple-message-summary``): the
message-waiting indication (MWI) a voicemail server sends.

``parse_message_summary(body)`` gives a ``MessageSummary``: Messages-Waiting yes or no, the
Message-Account, and per message-context-class (voice-message, fax-message, pager-message,
multimedia-message, text-message, none: RFC 3458) the new and old counts and the
optional urgent ones, ``Voice-Message: 2/8 (0/2)``.

Decisions (real servers are looser than the RFC 3842 §5 grammar, so the reader is too):

* Names are matched case-insensitively, whitespace around the colon, the slash and the
  parentheses is ignored, and CRLF, LF or CR end lines (Asterisk, FreeSWITCH and Kamailio's
  presence_mwi, which relays what the PUBLISH carried, all differ in these).
* A missing Messages-Waiting line is a ParseError: it is the one line the format requires,
  and a body without it is not a message summary.  It need not come first.  Its value must
  be yes or no.
* A line of a known context class whose value is not ``new/old [(urgent-new/urgent-old)]`` is
  a ParseError; so is a line without a colon before the first empty line.  A line of another
  name whose value has the counts' shape is read as an extension class; any other line is
  counted in ``other_lines`` and otherwise ignored.
* After the first empty line come the optional message headers (RFC 3842 §5
  opt-msg-headers); they are counted in ``optional_headers``, not interpreted.
* Bytes that are not UTF-8 become U+FFFD: the format is ASCII, and JSON must stay valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from siptool.errors import ParseError
from siptool.sip.xmlbody import check_body_size

__all__ = [
    "CONTEXT_CLASSES",
    "MEDIA_TYPE",
    "MessageCounts",
    "MessageSummary",
    "parse_message_summary",
]

MEDIA_TYPE = "application/simple-message-summary"
_WHAT = f"{MEDIA_TYPE} body"
# RFC 3458 message-context-class values, as RFC 3842 §5 uses them.
CONTEXT_CLASSES = frozenset(
    {
        "voice-message",
        "fax-message",
        "pager-message",
        "multimedia-message",
        "text-message",
        "none",
    }
)
_LINE_BREAK = re.compile(r"\r\n|\n|\r")
_COUNTS = re.compile(
    r"[ \t]*([0-9]{1,9})[ \t]*/[ \t]*([0-9]{1,9})[ \t]*"
    r"(?:\([ \t]*([0-9]{1,9})[ \t]*/[ \t]*([0-9]{1,9})[ \t]*\)[ \t]*)?\Z"
)
_NAME = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")  # RFC 3261 §25.1 token


@dataclass(frozen=True, slots=True)
class MessageCounts:
    context_class: str  # lower-case: "voice-message"
    new: int
    old: int
    urgent_new: int | None
    urgent_old: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "context_class": self.context_class,
            "new": self.new,
            "old": self.old,
            "urgent_new": self.urgent_new,
            "urgent_old": self.urgent_old,
        }

    def summary(self) -> str:
        """``2 new (1 urgent), 8 old voice messages``."""
        urgent = f" ({self.urgent_new} urgent)" if self.urgent_new else ""
        kind = self.context_class.removesuffix("-message")
        noun = "messages" if kind == "none" else f"{kind} messages"
        return f"{self.new} new{urgent}, {self.old} old {noun}"


@dataclass(frozen=True, slots=True)
class MessageSummary:
    waiting: bool
    account: str | None
    messages: tuple[MessageCounts, ...]
    optional_headers: int
    other_lines: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "waiting": self.waiting,
            "account": self.account,
            "messages": [m.to_dict() for m in self.messages],
            "optional_headers": self.optional_headers,
            "other_lines": self.other_lines,
        }

    def summary(self) -> str:
        """``2 new, 8 old voice messages (waiting)``."""
        state = "waiting" if self.waiting else "not waiting"
        if not self.messages:
            return "messages waiting" if self.waiting else "no messages waiting"
        return f"{'; '.join(m.summary() for m in self.messages)} ({state})"


def parse_message_summary(body: bytes) -> MessageSummary:
    """The message summary ``body`` (RFC 3842 §5); ParseError when it is not one."""
    check_body_size(body, _WHAT)
    lines = _LINE_BREAK.split(body.decode("utf-8", "replace"))
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    end = start
    while end < len(lines) and lines[end].strip():
        end += 1
    reader = _Reader()
    for number in range(start, end):
        reader.line(lines[number], number + 1)
    if reader.waiting is None:
        raise ParseError(f"bad {_WHAT}: no Messages-Waiting line (RFC 3842 §5 requires one)")
    return MessageSummary(
        waiting=reader.waiting,
        account=reader.account,
        messages=tuple(reader.messages),
        optional_headers=sum(1 for line in lines[end:] if ":" in line and line[:1] not in " \t"),
        other_lines=reader.other,
    )


class _Reader:
    """The summary lines, one at a time."""

    def __init__(self) -> None:
        self.waiting: bool | None = None
        self.account: str | None = None
        self.messages: list[MessageCounts] = []
        self.other = 0

    def line(self, line: str, number: int) -> None:
        name, colon, value = line.partition(":")
        name = name.strip(" \t").lower()
        value = value.strip(" \t")
        if not colon or not _NAME.match(name):
            raise ParseError(f"bad {_WHAT}: line {number} is not 'Name: value': {line[:40]!r}")
        if name == "messages-waiting":
            self._waiting(value, number)
        elif name == "message-account":
            if self.account is None:
                self.account = value or None
        else:
            self._counts(name, value, number)

    def _waiting(self, value: str, number: int) -> None:
        flag = value.lower()
        if flag not in ("yes", "no"):
            raise ParseError(
                f"bad {_WHAT}: Messages-Waiting {value[:20]!r} on line {number} is neither "
                "yes nor no"
            )
        if self.waiting is None:
            self.waiting = flag == "yes"

    def _counts(self, name: str, value: str, number: int) -> None:
        match = _COUNTS.match(value)
        if match is None:
            if name in CONTEXT_CLASSES:
                raise ParseError(
                    f"bad {_WHAT}: {name} {value[:30]!r} on line {number} is not "
                    "new/old (urgent-new/urgent-old)"
                )
            self.other += 1
            return
        new, old, urgent_new, urgent_old = match.groups()
        self.messages.append(
            MessageCounts(
                context_class=name,
                new=int(new),
                old=int(old),
                urgent_new=None if urgent_new is None else int(urgent_new),
                urgent_old=None if urgent_old is None else int(urgent_old),
            )
        )
