"""SIP, SIPS and tel URIs (RFC 3261 §19.1, §25.1; RFC 3966; IPv6 references per RFC 5118).

``parse_uri`` splits a URI into its parts without un-escaping them: ``user``, ``password`` and
parameter values keep their ``%HH`` escapes as written, because a diagnostic tool must be able
to show exactly what was sent (RFC 3261 §19.1.4 compares URIs after un-escaping; use
``unescape`` for that).  Parameter names are lower-cased (they are case-insensitive, §19.1.4);
the first occurrence of a repeated parameter wins.  ``str(uri)`` is the text that was parsed;
``uri.to_text()`` rebuilds it from the fields (use it after changing a parsed URI, or for one
built in code).

Other schemes (``urn:``, ``mailto:``, ``http:`` ...) are kept as ``scheme`` plus ``opaque``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from siptool.addr import format_address
from siptool.errors import ParseError
from siptool.numbers import is_decimal

__all__ = [
    "Uri",
    "parse_port",
    "parse_uri",
    "unescape",
]

# RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*\Z")
# No SP, HT, CR, LF, other controls, quote or angle brackets anywhere in a URI (RFC 3261
# §25.1: none of them is in any URI production; RFC 4475 §3.1.2.8 is the classic example).
_BAD_CHAR_RE = re.compile(r'[\x00-\x20\x7f"<>]')
# RFC 3261 §25.1: hostname = *( domainlabel "." ) toplabel [ "." ]; IPv4address is a subset.
# "_" is not in the grammar but is common in real hostnames, so it is tolerated.
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9_\-.]+\Z")
_HEX = "0123456789abcdefABCDEF"


@dataclass(slots=True)
class Uri:
    """A parsed URI.  ``host`` holds an IPv6 address without its brackets."""

    scheme: str
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    opaque: str | None = None  # everything after "scheme:" for schemes other than sip/sips/tel
    text: str = field(default="", compare=False, repr=False)  # the text parsed, "" if built

    def __str__(self) -> str:
        return self.text or self.to_text()

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.host

    @property
    def is_sip(self) -> bool:
        return self.scheme in ("sip", "sips")

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter, lower-cased, or None."""
        value = self.params.get("transport")
        return value.lower() if value else None

    @property
    def hostport(self) -> str:
        """``host[:port]`` with an IPv6 host in brackets."""
        return format_address(self.host, self.port)

    def to_text(self) -> str:
        """The URI rebuilt from its fields."""
        if self.scheme in ("sip", "sips"):
            out = [self.scheme, ":"]
            if self.user is not None:
                out.append(self.user)
                if self.password is not None:
                    out += [":", self.password]
                out.append("@")
            out.append(self.hostport)
        elif self.scheme == "tel":
            out = ["tel:", self.user or ""]
        else:
            return f"{self.scheme}:{self.opaque or ''}"
        for name, value in self.params.items():
            out += [";", name] if value is None else [";", name, "=", value]
        if self.headers:
            out += ["?", "&".join(f"{k}={v}" for k, v in self.headers.items())]
        return "".join(out)


def unescape(text: str) -> str:
    """Resolve ``%HH`` escapes (RFC 3261 §19.1.2); malformed escapes are left as they are."""
    if "%" not in text:
        return text
    out = bytearray()
    raw = text.encode("utf-8", "surrogateescape")
    i = 0
    n = len(raw)
    while i < n:
        b = raw[i]
        if b == 0x25 and i + 2 < n and chr(raw[i + 1]) in _HEX and chr(raw[i + 2]) in _HEX:
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(b)
            i += 1
    return out.decode("utf-8", "surrogateescape")


def parse_port(text: str, offset: int = 0) -> int:
    """A port number 0..65535 written as 1 to 5 ASCII digits."""
    if not is_decimal(text, 5):
        raise ParseError(f"bad port {text!r}", offset=offset)
    port = int(text)
    if port > 65535:
        raise ParseError(f"port {port} out of range", offset=offset)
    return port


def parse_uri(text: str) -> Uri:
    """Parse a URI; surrounding whitespace is ignored.  ``ParseError.offset`` indexes ``text``."""
    lead = len(text) - len(text.lstrip(" \t"))
    s = text.strip(" \t")
    colon = s.find(":")
    if colon <= 0 or not _SCHEME_RE.match(s, 0, colon):
        raise ParseError(f"not a URI (no scheme): {s[:40]!r}", offset=lead)
    bad = _BAD_CHAR_RE.search(s)
    if bad is not None:
        raise ParseError(
            f"character {bad.group()!r} not allowed in a URI", offset=lead + bad.start()
        )
    scheme = s[:colon].lower()
    start = colon + 1
    if scheme == "sip" or scheme == "sips":
        return _parse_sip(s, scheme, start, lead)
    if scheme == "tel":
        return _parse_tel(s, start, lead)
    if start == len(s):
        raise ParseError(f"empty {scheme}: URI", offset=lead + start)
    return Uri(scheme=scheme, opaque=s[start:], text=s)


def _parse_sip(s: str, scheme: str, start: int, lead: int) -> Uri:
    # RFC 3261 §25.1: SIP-URI = "sip:" [ userinfo ] hostport uri-parameters [ headers ].
    # The user part may itself contain ";", "?" and ":" (RFC 4475 §3.1.1.2, §3.1.1.9), but not
    # "@", and nothing after the host may contain "@"; so the first "@" ends the userinfo.
    user: str | None = None
    password: str | None = None
    at = s.find("@", start)
    if at >= 0:
        user = s[start:at]
        colon = user.find(":")
        if colon >= 0:
            password = user[colon + 1 :]
            user = user[:colon]
        if not user:
            raise ParseError("empty user part before '@'", offset=lead + start)
        start = at + 1
    n = len(s)
    port: int | None = None
    if start < n and s[start] == "[":
        close = s.find("]", start)
        if close < 0:
            raise ParseError("unbalanced '[' in IPv6 reference", offset=lead + start)
        host = s[start + 1 : close]
        _check_ipv6(host, lead + start + 1)
        pos = close + 1
        end = _end_of_hostport(s, pos)
        if pos < end:
            if s[pos] != ":":
                raise ParseError("junk after IPv6 reference", offset=lead + pos)
            port = parse_port(s[pos + 1 : end], lead + pos + 1)
    else:
        end = _end_of_hostport(s, start)
        hostport = s[start:end]
        colon = hostport.find(":")
        if colon >= 0:
            host = hostport[:colon]
            port = parse_port(hostport[colon + 1 :], lead + start + colon + 1)
        else:
            host = hostport
        if not host:
            raise ParseError(f"{scheme}: URI without a host", offset=lead + start)
        if not _HOSTNAME_RE.match(host):
            raise ParseError(f"bad host {host!r}", offset=lead + start)
    params: dict[str, str | None] = {}
    headers: dict[str, str] = {}
    pos = end
    if pos < n and s[pos] == ";":
        q = s.find("?", pos)
        pend = n if q < 0 else q
        _parse_params(s, pos + 1, pend, params, lead)
        pos = pend
    if pos < n:  # s[pos] == "?"
        _parse_headers(s, pos + 1, headers, lead)
    return Uri(
        scheme=scheme,
        user=user,
        password=password,
        host=host,
        port=port,
        params=params,
        headers=headers,
        text=s,
    )


def _end_of_hostport(s: str, pos: int) -> int:
    semi = s.find(";", pos)
    q = s.find("?", pos)
    if semi < 0:
        return len(s) if q < 0 else q
    return semi if q < 0 or semi < q else q


def _check_ipv6(host: str, offset: int) -> None:
    if ":" not in host:
        raise ParseError(f"bad IPv6 reference {f'[{host}]'!r}", offset=offset)
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        raise ParseError(f"bad IPv6 reference {f'[{host}]'!r}", offset=offset) from None


def _parse_params(s: str, start: int, end: int, params: dict[str, str | None], lead: int) -> None:
    # RFC 3261 §25.1: uri-parameters = *( ";" uri-parameter ), uri-parameter = pname ["=" pvalue]
    pos = start
    for item in s[start:end].split(";"):
        name, eq, value = item.partition("=")
        if not name:
            raise ParseError("empty URI parameter", offset=lead + pos)
        key = name.lower()
        if key not in params:
            params[key] = value if eq else None
        pos += len(item) + 1


def _parse_headers(s: str, start: int, headers: dict[str, str], lead: int) -> None:
    # RFC 3261 §19.1.1: headers = "?" header *( "&" header ), header = hname "=" hvalue
    pos = start
    for item in s[start:].split("&"):
        name, _, value = item.partition("=")
        if not name:
            raise ParseError("empty URI header name", offset=lead + pos)
        headers.setdefault(name, value)
        pos += len(item) + 1


def _parse_tel(s: str, start: int, lead: int) -> Uri:
    # RFC 3966 §3: telephone-subscriber = global-number / local-number, then ;params.
    semi = s.find(";", start)
    number = s[start:] if semi < 0 else s[start:semi]
    if not number:
        raise ParseError("tel: URI without a number", offset=lead + start)
    params: dict[str, str | None] = {}
    if semi >= 0:
        _parse_params(s, semi + 1, len(s), params, lead)
    return Uri(scheme="tel", user=number, params=params, text=s)
