"""XML bodies read safely: the one parser every XML event package uses (PIDF, dialog-info,
reginfo).

A NOTIFY body comes from a peer siptool is testing, so it is hostile input until proven
otherwise.  ``parse_xml`` reads it with expat (the standard library's own parser) into a small
typed tree of ``XmlElement``s, each remembering its namespace, local name, line, column and
byte offset, so that the package parsers can say *where* a document is wrong, not only that it
is.

Decisions:

* A body over ``MAX_BODY_BYTES`` (256 KiB) is refused before parsing.  Real NOTIFY bodies are a
  few KiB (Kamailio's aggregated PIDF for a dozen devices is under 20 KiB); a UDP datagram
  cannot exceed 64 KiB, and RFC 3261 §18.1.1 sends anything over ~1300 bytes by TCP anyway.
  The text packages (message-summary, sipfrag) use the same cap through ``check_body_size``.
* A DOCTYPE is refused outright, with the line and column.  None of the event-package formats
  (RFC 3863, RFC 4235, RFC 3680, RFC 3858) use a DTD, and a DOCTYPE's internal subset is where
  entity declarations live: refusing it blocks "billion laughs" expansion and external entities
  (CVE-class XXE) before expat reads a single declaration.  Entity and notation declaration
  handlers refuse too, in depth; parameter entities are never parsed.
* Nesting deeper than ``MAX_DEPTH`` (64) is refused: the formats nest six levels at most, and a
  256 KiB body of ``<a><a><a>...`` would otherwise build a tree 80 000 levels deep.
* Namespaces are processed (Namespaces in XML 1.0): lookups go by namespace URI and local name,
  so ``<impp:presence xmlns:impp="urn:ietf:params:xml:ns:pidf">`` (RFC 3863 §3.4) and
  ``<presence xmlns="urn:ietf:params:xml:ns:pidf">`` (Kamailio, Asterisk) read the same.  An
  undeclared prefix is the parse error it is under that specification.
* ASCII whitespace before the XML declaration is skipped: some servers emit a blank line before
  ``<?xml``, which expat rejects ("XML declaration not at start of entity").
* Columns in messages are 1-based (expat's are 0-based); offsets are bytes into the body given.
* An element's ``text`` is its own character data, stripped (not its descendants'), which is
  what every leaf this package reads (``<basic>``, ``<note>``, ``<uri>``, ``<state>``) holds.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import NoReturn
from xml.parsers import expat
from xml.sax.saxutils import escape, quoteattr

from siptool.errors import ParseError, UsageError
from siptool.numbers import is_decimal

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_DEPTH",
    "XML_NS",
    "DocumentState",
    "XmlElement",
    "check_body_size",
    "check_xml_text",
    "fail",
    "parse_xml",
    "read_version_state",
    "require_root",
    "xml_attr",
    "xml_text",
]

MAX_BODY_BYTES = 256 * 1024
MAX_DEPTH = 64
XML_NS = "http://www.w3.org/XML/1998/namespace"  # xml:lang lives here (Namespaces in XML §3)

# XML 1.0 §2.2 Char: what a document may carry at all (no NUL, no C0 controls but TAB CR LF).
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_LEADING_SPACE = b" \t\r\n"
# expat reports handler exceptions as themselves; these are what it and the codecs raise.
_EXPAT_FAILURES = (expat.ExpatError, LookupError, ValueError, UnicodeError)


class DocumentState(enum.StrEnum):
    """The ``state`` attribute of dialog-info (RFC 4235 §4.1) and reginfo (RFC 3680 §5):
    the whole state, or only what changed since the previous version."""

    FULL = "full"
    PARTIAL = "partial"


@dataclass(slots=True, eq=False)
class XmlElement:
    """One element: ``namespace`` None when it is in no namespace; ``attrs`` keyed by local
    name for unqualified attributes and ``{namespace}local`` for qualified ones."""

    namespace: str | None
    name: str
    attrs: dict[str, str]
    line: int
    column: int  # 1-based
    offset: int
    children: list[XmlElement] = field(default_factory=list)
    chunks: list[str] = field(default_factory=list, repr=False)

    @property
    def text(self) -> str:
        return "".join(self.chunks).strip()

    @property
    def lang(self) -> str | None:
        return self.attrs.get("{" + XML_NS + "}lang")

    def attr(self, name: str) -> str | None:
        return self.attrs.get(name)

    def is_(self, name: str, ns: str | tuple[str, ...]) -> bool:
        spaces = (ns,) if isinstance(ns, str) else ns
        return self.name == name and self.namespace in spaces

    def findall(self, name: str, ns: str | tuple[str, ...]) -> list[XmlElement]:
        """The children called ``name`` in namespace ``ns`` (or any of several)."""
        return [child for child in self.children if child.is_(name, ns)]

    def find(self, name: str, ns: str | tuple[str, ...]) -> XmlElement | None:
        for child in self.children:
            if child.is_(name, ns):
                return child
        return None

    def where(self) -> str:
        return f"line {self.line}, column {self.column}"


def check_body_size(body: bytes, what: str) -> None:
    """ParseError when ``body`` is over the cap every event-package parser shares."""
    if len(body) > MAX_BODY_BYTES:
        raise ParseError(
            f"bad {what}: {len(body)} bytes, over the {MAX_BODY_BYTES // 1024} KiB a body may have"
        )


def fail(what: str, reason: str, element: XmlElement | None = None) -> NoReturn:
    """Raise the ParseError of a document that parsed but is not what its format says."""
    if element is None:
        raise ParseError(f"bad {what}: {reason}")
    raise ParseError(f"bad {what}: {reason} at {element.where()}", offset=element.offset)


class _TreeBuilder:
    """expat's callbacks, building ``XmlElement``s on a stack."""

    def __init__(self, parser: expat.XMLParserType, what: str, skipped: bytes) -> None:
        self.parser = parser
        self.what = what
        self.skipped = len(skipped)
        self.lines = skipped.count(b"\n")  # so that lines count from the body's first
        self.stack: list[XmlElement] = []
        self.root: XmlElement | None = None

    def _position(self) -> tuple[int, int, int]:
        p = self.parser
        return (
            p.CurrentLineNumber + self.lines,
            p.CurrentColumnNumber + 1,
            p.CurrentByteIndex + self.skipped,
        )

    def refuse(self, what_it_is: str) -> NoReturn:
        line, column, offset = self._position()
        raise ParseError(
            f"bad {self.what}: {what_it_is} is refused (no event-package format uses one, and "
            f"entity declarations are how entity-expansion attacks work) at line {line}, "
            f"column {column}",
            offset=offset,
        )

    def start(self, qname: str, attrs: dict[str, str]) -> None:
        if len(self.stack) >= MAX_DEPTH:
            line, column, offset = self._position()
            raise ParseError(
                f"bad {self.what}: elements nested over {MAX_DEPTH} deep at line {line}, "
                f"column {column}",
                offset=offset,
            )
        namespace, name = _split(qname)
        plain = {}
        for key, value in attrs.items():
            ans, aname = _split(key)
            plain[aname if ans is None else "{" + ans + "}" + aname] = value
        element = XmlElement(namespace, name, plain, *self._position())
        if self.stack:
            self.stack[-1].children.append(element)
        else:
            self.root = element
        self.stack.append(element)

    def end(self, qname: str) -> None:
        self.stack.pop()

    def data(self, text: str) -> None:
        if self.stack:
            self.stack[-1].chunks.append(text)


def _split(qname: str) -> tuple[str | None, str]:
    # namespace_separator=" ": "uri local" (a local name never holds a space, a URI may).
    namespace, sep, name = qname.rpartition(" ")
    return (namespace if sep else None), name


def _parser_for(what: str, skipped: bytes) -> tuple[expat.XMLParserType, _TreeBuilder]:
    parser = expat.ParserCreate(namespace_separator=" ")
    builder = _TreeBuilder(parser, what, skipped)
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = lambda *_: builder.refuse("a DOCTYPE")
    parser.EntityDeclHandler = lambda *_: builder.refuse("an entity declaration")
    parser.UnparsedEntityDeclHandler = lambda *_: builder.refuse("an entity declaration")
    parser.NotationDeclHandler = lambda *_: builder.refuse("a notation declaration")
    parser.ExternalEntityRefHandler = lambda *_: builder.refuse("an external entity")
    return parser, builder


def parse_xml(body: bytes, what: str) -> XmlElement:
    """The root element of the XML document ``body``; ``what`` names the body in errors
    ("application/pidf+xml body").  Raises ParseError and nothing else."""
    check_body_size(body, what)
    stripped = body.lstrip(_LEADING_SPACE)
    parser, builder = _parser_for(what, body[: len(body) - len(stripped)])
    try:
        parser.Parse(stripped, True)
    except ParseError:
        raise
    except expat.ExpatError as exc:
        reason = expat.ErrorString(exc.code) or "not well-formed"
        raise ParseError(
            f"bad {what}: {reason} at line {exc.lineno + builder.lines}, column {exc.offset + 1}",
            offset=max(parser.ErrorByteIndex, 0) + builder.skipped,
        ) from None
    except _EXPAT_FAILURES as exc:  # an encoding Python has no codec for, and its like
        raise ParseError(f"bad {what}: {exc}") from None
    if builder.root is None:
        raise ParseError(f"bad {what}: no XML element")
    return builder.root


def require_root(root: XmlElement, name: str, ns: str, what: str) -> None:
    """ParseError unless the document element is ``name`` in namespace ``ns``."""
    if root.name != name:
        fail(what, f"the document element is <{root.name}>, expected <{name}>", root)
    if root.namespace != ns:
        got = "no namespace" if root.namespace is None else f"namespace {root.namespace!r}"
        fail(what, f"<{name}> is in {got}, expected {ns!r}", root)


def read_version_state(root: XmlElement, what: str) -> tuple[int, DocumentState]:
    """The required ``version`` (unsignedInt) and ``state`` (full|partial) attributes of a
    dialog-info or reginfo document (RFC 4235 §4.1, RFC 3680 §5)."""
    version = root.attr("version")
    if version is None:
        fail(what, f"<{root.name}> without its version attribute", root)
    version = version.strip()
    # Surrounding whitespace is tolerated: Kamailio's presence_dialoginfo writes the version
    # over an 11-character placeholder (notify_body.c) and a hand-edited body may keep spaces.
    if not is_decimal(version, 10) or int(version) > 0xFFFFFFFF:
        fail(what, f"version {version[:20]!r} is not a 32-bit unsigned number", root)
    state = root.attr("state")
    if state is None:
        fail(what, f"<{root.name}> without its state attribute", root)
    try:
        return int(version), DocumentState(state.strip().lower())
    except ValueError:
        fail(what, f"state {state[:20]!r} is neither full nor partial", root)


def xml_text(text: str, what: str) -> str:
    """``text`` escaped for element content; UsageError when XML cannot carry it at all."""
    check_xml_text(text, what)
    return escape(text)


def xml_attr(text: str, what: str) -> str:
    """``text`` as a quoted attribute value (quotes included), escaped."""
    check_xml_text(text, what)
    return quoteattr(text)


def check_xml_text(text: str, what: str) -> None:
    """UsageError naming the first character XML 1.0 §2.2 forbids (a NUL, a C0 control)."""
    bad = _NOT_XML_CHAR.search(text)
    if bad is not None:
        raise UsageError(
            f"the {what} contains U+{ord(bad.group()):04X}, which an XML document cannot carry"
        )
