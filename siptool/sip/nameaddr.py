"""name-addr / addr-spec values with header parameters, and Via values (RFC 3261 §20, §25.1).

``parse_name_addr`` handles the value of From, To, Contact, Route, Record-Route, Reply-To,
Refer-To, P-Asserted-Identity ...: one element, the caller splits comma lists.

* ``"Display \\"Name\\"" <sip:u@h;uri-param>;header-param=x`` : the quoted display name is
  un-quoted with its backslash escapes resolved (§25.1 quoted-pair); everything after ``>`` is
  a header parameter.
* ``Bob Smith <sip:...>``: an unquoted display name is a run of tokens; internal whitespace
  collapses to one space.  No whitespace is needed before ``<`` (RFC 4475 §3.1.1.6).
* ``sip:u@h;tag=x``: with no angle brackets every ``;`` parameter belongs to the header, not
  the URI (RFC 3261 §20.10, §20.20, §20.39).
* ``*``: the wildcard Contact of a REGISTER (§10.2.2) gives a NameAddr with ``is_star`` True,
  ``display_name`` None, no parameters and a placeholder ``uri`` whose ``str()`` is ``"*"``
  (scheme ``""``, opaque ``"*"``).

Header parameter names are lower-cased (case-insensitive, §7.3.1); values keep their spelling
and a quoted value keeps its quotes (``+sip.instance="<urn:uuid:...>"``), so that it can be
written back unchanged.  A parameter without ``=`` has the value None.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from siptool.addr import format_address
from siptool.errors import ParseError
from siptool.numbers import is_decimal
from siptool.sip.uri import Uri, parse_port, parse_uri

__all__ = [
    "NameAddr",
    "Via",
    "format_params",
    "parse_name_addr",
    "parse_params",
    "parse_via",
    "quote_string",
    "read_quoted",
    "unquote_string",
]

_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
# One ";name[=value]" with the LWS RFC 3261 §25.1 allows around SEMI and EQUAL.  A value is a
# quoted-string (with quoted-pairs) or a run of characters that cannot end or split a value;
# that is more lenient than token / host, so real-world oddities stay readable.
_PARAM_RE = re.compile(
    r'[ \t]*;[ \t]*([^ \t;=",<>]+)[ \t]*(?:=[ \t]*("(?:[^"\\]|\\.)*"|[^ \t;",<>]+))?[ \t]*',
    re.DOTALL,
)
# RFC 3261 §25.1: sent-protocol = protocol-name SLASH protocol-version SLASH transport, with
# SWS around each slash (RFC 4475 §3.1.1.1), then LWS, then sent-by = host [ COLON port ].
_VIA_RE = re.compile(
    rf"[ \t]*({_TOKEN})[ \t]*/[ \t]*({_TOKEN})[ \t]*/[ \t]*({_TOKEN})[ \t]+"
    r"(\[[^\]]*\]|[^ \t;:\[\]]+)(?:[ \t]*:[ \t]*([^ \t;]*))?"
)
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9_\-.]+\Z")
_DISPLAY_TOKENS_RE = re.compile(r"[^\"<>;,]*\Z")


@dataclass(slots=True)
class NameAddr:
    """A name-addr or addr-spec with its header parameters."""

    display_name: str | None
    uri: Uri
    params: dict[str, str | None] = field(default_factory=dict)
    is_star: bool = False

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def __str__(self) -> str:
        return self.to_text()

    def to_text(self) -> str:
        """The value rebuilt in name-addr form (always with angle brackets)."""
        if self.is_star:
            return "*"
        head = f"<{self.uri}>"
        if self.display_name is not None:
            head = f"{quote_string(self.display_name)} {head}"
        return head + format_params(self.params)

    def to_dict(self) -> dict[str, Any]:
        return {"uri": str(self.uri), "display_name": self.display_name, "tag": self.tag}


@dataclass(slots=True)
class Via:
    """One via-parm.  ``host`` holds an IPv6 address without its brackets."""

    protocol: str  # "SIP/2.0"
    transport: str  # upper-case: "UDP", "TCP", "TLS", "SCTP", "WS", "WSS", ...
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        """The value of ``rport`` (RFC 3581 §4), None when absent or empty."""
        return self._number("rport")

    @property
    def rport_requested(self) -> bool:
        """True when ``rport`` is present at all, with or without a value (RFC 3581 §3)."""
        return "rport" in self.params

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def ttl(self) -> int | None:
        return self._number("ttl")

    def _number(self, name: str) -> int | None:
        """A numeric parameter's value (the parser checked its digits), None when absent or
        empty."""
        value = self.params.get(name)
        return int(value) if value else None

    @property
    def sent_by(self) -> str:
        """``host[:port]`` with an IPv6 host in brackets."""
        return format_address(self.host, self.port)

    def __str__(self) -> str:
        return self.to_text()

    def to_text(self) -> str:
        return f"{self.protocol}/{self.transport} {self.sent_by}{format_params(self.params)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "transport": self.transport,
            "host": self.host,
            "port": self.port,
            "branch": self.branch,
            "received": self.received,
            "rport": self.rport,
            "rport_requested": self.rport_requested,
        }


def quote_string(text: str) -> str:
    """``text`` as a quoted-string, escaping ``"`` and ``\\`` (RFC 3261 §25.1)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unquote_string(text: str) -> str:
    """The content of a quoted-string with its quoted-pairs resolved; other text unchanged."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        value, end = read_quoted(text, 0, 0)
        if end == len(text):
            return value
    return text


def format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def parse_params(text: str, start: int = 0, base: int = 0) -> dict[str, str | None]:
    """``*( SEMI generic-param )`` from ``text[start:]``; only LWS may follow the last one.

    ``base`` is added to offsets in errors (the position of ``text`` in a larger value).
    """
    params: dict[str, str | None] = {}
    n = len(text)
    pos = start
    while pos < n and text[pos] in " \t":
        pos += 1
    while pos < n:
        m = _PARAM_RE.match(text, pos)
        if m is None:
            if text[pos] == ";" or text[pos:].lstrip(" \t").startswith(";"):
                raise ParseError("empty or malformed parameter", offset=base + pos)
            raise ParseError(f"expected ';' before {text[pos : pos + 20]!r}", offset=base + pos)
        params.setdefault(m.group(1).lower(), m.group(2))
        pos = m.end()
    return params


def read_quoted(text: str, pos: int, base: int = 0) -> tuple[str, int]:
    """(content, index after the closing quote) of the quoted-string starting at ``pos``."""
    end = text.find('"', pos + 1)
    backslash = text.find("\\", pos + 1)
    if end >= 0 and (backslash < 0 or backslash > end):
        return text[pos + 1 : end], end + 1
    out: list[str] = []
    i = pos + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 >= n:
                break
            out.append(text[i + 1])
            i += 2
        elif ch == '"':
            return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    raise ParseError("unterminated quoted string", offset=base + pos)


def parse_name_addr(text: str) -> NameAddr:
    """Parse one name-addr or addr-spec with header parameters (see the module docstring)."""
    n = len(text)
    pos = 0
    while pos < n and text[pos] in " \t":
        pos += 1
    if pos == n:
        raise ParseError("empty address", offset=pos)
    if text[pos] == "*" and not text[pos + 1 :].strip(" \t"):
        return NameAddr(None, Uri(scheme="", opaque="*", text="*"), {}, is_star=True)
    display: str | None = None
    if text[pos] == '"':
        display, pos = read_quoted(text, pos, 0)
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos >= n or text[pos] != "<":
            raise ParseError("expected '<' after the display name", offset=pos)
        lt = pos
    else:
        lt = text.find("<", pos)
        if lt >= 0:
            raw_display = text[pos:lt]
            if not _DISPLAY_TOKENS_RE.match(raw_display):
                raise ParseError("bad characters in display name", offset=pos)
            display = " ".join(raw_display.split()) or None
    if lt >= 0:
        gt = text.find(">", lt + 1)
        if gt < 0:
            raise ParseError("unterminated '<'", offset=lt)
        uri = _uri_at(text, lt + 1, gt)
        params = parse_params(text, gt + 1)
    else:
        # addr-spec: the URI ends at the first ";" and its parameters are header parameters
        # (RFC 3261 §20.10).  Such a URI cannot contain ",", "?" or ";" itself.
        semi = text.find(";", pos)
        end = n if semi < 0 else semi
        uri = _uri_at(text, pos, end)
        params = {} if semi < 0 else parse_params(text, semi)
    return NameAddr(display, uri, params)


def _uri_at(text: str, start: int, end: int) -> Uri:
    try:
        return parse_uri(text[start:end])
    except ParseError as exc:
        raise ParseError(exc.message, offset=start + (exc.offset or 0)) from None


def parse_via(text: str) -> Via:
    """Parse one via-parm (the message splits a Via header at its commas)."""
    m = _VIA_RE.match(text)
    if m is None:
        raise ParseError(f"bad Via {text.strip()[:60]!r}", offset=0)
    name, version, transport, host, port_text = m.groups()
    if host[0] == "[":
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ParseError(
                f"bad IPv6 reference {f'[{host}]'!r} in Via", offset=m.start(4)
            ) from None
    elif not _HOSTNAME_RE.match(host):
        raise ParseError(f"bad host {host!r} in Via", offset=m.start(4))
    port = None if port_text is None else parse_port(port_text, m.start(5))
    params = parse_params(text, m.end())
    # RFC 3581 §4 (rport) and RFC 3261 §25.1 (ttl) have numeric values; check them here so
    # that the properties never raise.
    rport = params.get("rport")
    if rport is not None:
        parse_port(rport, m.end())
    ttl = params.get("ttl")
    if ttl is not None and not (is_decimal(ttl, 3) and int(ttl) <= 255):
        raise ParseError(f"bad ttl {ttl!r} in Via", offset=m.end())
    protocol = f"{name.upper()}/{version}"
    return Via(protocol, transport.upper(), host, port, params)
