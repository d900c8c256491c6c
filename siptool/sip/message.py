"""SIP messages: parse and serialize (RFC 3261 §7, §18.3, §20, §25).

``parse_message(data)`` parses one message held in one buffer (a UDP datagram, or a chunk
already framed by ``siptool.sip.framing``).  It does eagerly only what is cheap: the start line,
the split into header fields with canonical names and folding collapsed, and the body framing.
Everything else (URIs, name-addrs, Vias, CSeq, SDP) is parsed on first access to the
corresponding property and cached on the header it came from, so that ``siptool decode`` pays
only for what it shows.

Decisions (each is a choice the RFC leaves to the implementation or a tolerance of real input):

* Bytes are decoded as UTF-8 with ``surrogateescape``: non-UTF-8 input still parses and
  ``serialize()`` gives back the exact bytes.  ``to_dict()`` replaces such bytes with U+FFFD.
* Line endings: CRLF (RFC 3261 §7) and bare LF (logs) are both accepted, mixed too; each
  header remembers its own ending (``Header.eol``) when it differs from the start line's.
* CR/LF before the start line are skipped (RFC 3261 §7.5) and not reproduced by ``serialize``.
* The request line may have extra SP between its elements and after the version (RFC 4475
  §3.1.2.9 and §3.1.2.10 show both; a lenient parser accepts them); a Request-URI containing
  whitespace is rejected (RFC 4475 §3.1.2.8).  Any ``SIP/<digits>.<digits>`` version parses, so
  that an unsupported version (RFC 4475 §3.1.2.16) reaches the linter rather than failing here.
* A missing empty line after the headers is accepted only when no body can follow
  (Content-Length absent or 0, the rest of the buffer being the headers): log excerpts often
  lose it.  ``header_terminated`` is then False.  With a positive Content-Length it is a
  ``ParseError``.
* Body framing for one buffer: with Content-Length the body is exactly that many bytes
  (``body_truncated`` when the buffer is shorter, ``trailing`` counts the bytes after it,
  RFC 3261 §18.3); without it the body is the rest of the buffer (allowed on UDP, §18.3).
* Several Content-Length headers: the first one frames the body (the linter flags the rest).
* ``serialize()`` does not append the ``trailing`` bytes: they are not part of this message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from siptool.errors import ParseError
from siptool.numbers import is_decimal
from siptool.sip.headers import (
    canonical_name,
    header_key,
    is_comma_list,
    is_valid_header_name,
    split_comma_list,
)
from siptool.sip.nameaddr import NameAddr, Via, parse_name_addr, parse_via
from siptool.sip.uri import Uri, parse_uri

if TYPE_CHECKING:
    from siptool.sip.sdp import SessionDescription

__all__ = ["CSeq", "Header", "SipMessage", "clean_text", "parse_cseq", "parse_message"]

CRLF = b"\r\n"

# RFC 3261 §25.1: Method = INVITEm / ... / extension-method; extension-method = token
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")
_VERSION_RE = re.compile(r"[Ss][Ii][Pp]/[0-9]+\.[0-9]+\Z")
_KNOWN_METHODS = frozenset(
    {
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "REGISTER",
        "OPTIONS",
        "PRACK",
        "SUBSCRIBE",
        "NOTIFY",
        "PUBLISH",
        "INFO",
        "REFER",
        "MESSAGE",
        "UPDATE",
    }
)

# Wire spelling (exactly as between line start and ":", trailing LWS included) -> canonical
# name, for spellings already validated as tokens.  Bounded like the caches in headers.py.
_WIRE_NAMES: dict[str, str] = {}
_WIRE_NAMES_LIMIT = 4096


@dataclass(slots=True)
class Header:
    """One header field.  ``name`` is canonical (see ``headers.canonical_name``)."""

    name: str
    value: str  # folding collapsed (RFC 3261 §7.3.1), outer whitespace stripped
    raw: bytes | None = None  # exact wire bytes incl. continuation lines, without final EOL
    # The line ending after ``raw`` when it differs from the message's ``line_ending``
    # (mixed CRLF / LF input, or b"" for an unterminated last line); None: the message's.
    eol: bytes | None = field(default=None, compare=False, repr=False)
    # (kind, value parsed, result or ParseError): lazily parsed value, see ``_parsed``.
    _cache: tuple[str, str, Any] | None = field(default=None, init=False, compare=False, repr=False)
    # header_key(name), computed once: every lookup scans the headers by it.
    key: str = field(default="", init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.key = header_key(self.name)


@dataclass(slots=True)
class CSeq:
    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


def parse_cseq(text: str) -> CSeq:
    """``CSeq: 1*DIGIT LWS Method`` (RFC 3261 §20.16).  Values of 2**31 and more parse; the
    linter reports them (RFC 4475 §3.1.2.4)."""
    parts = text.split()
    if len(parts) != 2:
        raise ParseError(f"bad CSeq {text[:60]!r}", offset=0)
    seq, method = parts
    if not is_decimal(seq, 30):
        raise ParseError(f"bad CSeq number {seq[:40]!r}", offset=0)
    if not _TOKEN_RE.match(method):
        raise ParseError(f"bad CSeq method {method[:40]!r}", offset=text.rfind(method))
    return CSeq(int(seq), method)


def _parse_name_addr_list(value: str) -> list[NameAddr]:
    return [parse_name_addr(item) for item in split_comma_list(value)]


def _parse_via_list(value: str) -> list[Via]:
    items = split_comma_list(value)
    if not items:
        raise ParseError("empty Via", offset=0)
    return [parse_via(item) for item in items]


# Parsed header values (and SDP bodies) shared between messages, keyed by (kind, value): the
# messages of one call repeat their From, To, Contact and (in responses) Via values, and often
# their SDP, so a capture parses each distinct value once (issue 10: half of decode's time
# went on these parses).
# The parsed views are read, never changed, by every caller; a view that someone needs to
# change must be copied first.  Bounded: emptied when full, which costs one re-parse each.
_SHARED: dict[tuple[str, str | bytes], Any] = {}
_SHARED_MAX = 4096


def _shared(kind: str, value: Any, parser: Any) -> Any:
    """``parser(value)`` or the ParseError it raised, parsed once per distinct value."""
    key = (kind, value)
    result = _SHARED.get(key, _SHARED)
    if result is _SHARED:
        try:
            result = parser(value)
        except ParseError as exc:
            result = exc
        if len(_SHARED) >= _SHARED_MAX:
            _SHARED.clear()
        _SHARED[key] = result
    return result


def _parsed(header: Header, kind: str, parser: Any) -> Any:
    """``parser(header.value)``, cached on the header until its value changes (and shared
    with other headers of the same value, ``_SHARED``)."""
    cache = header._cache
    value = header.value
    if cache is not None and cache[0] == kind and cache[1] is value:
        result = cache[2]
    else:
        result = _shared(kind, value, parser)
        header._cache = (kind, value, result)
    if isinstance(result, ParseError):
        # The offset inside the value is not a byte offset of the message: say it in words.
        at = "" if result.offset is None else f" (character {result.offset} of the value)"
        raise ParseError(f"{header.name}: {result.message}{at}")
    return result


def clean_text(text: str) -> str:
    """Text safe for JSON and for a strict UTF-8 stdout: undecodable bytes (the lone
    surrogates that ``surrogateescape`` left) become U+FFFD."""
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class SipMessage:
    """A SIP request or response.  Build one with keywords, or get one from ``parse_message``."""

    __slots__ = (
        "_sdp_cache",
        "_start_fields",
        "blank_line",
        "body",
        "body_offset",
        "body_truncated",
        "declared_length",
        "headers",
        "line_ending",
        "method",
        "reason",
        "request_uri",
        "start_line_raw",
        "status",
        "trailing",
        "version",
    )

    def __init__(
        self,
        *,
        method: str | None = None,
        request_uri: str | None = None,
        status: int | None = None,
        reason: str | None = None,
        version: str = "SIP/2.0",
        headers: list[Header] | None = None,
        body: bytes = b"",
        declared_length: int | None = None,
        body_truncated: bool = False,
        trailing: int = 0,
        line_ending: bytes = CRLF,
        blank_line: bytes = CRLF,
    ) -> None:
        self.method = method
        self.request_uri = request_uri
        self.status = status
        self.reason = reason
        self.version = version
        self.headers: list[Header] = [] if headers is None else headers
        self.body = body
        self.declared_length = declared_length
        self.body_truncated = body_truncated
        self.trailing = trailing
        self.line_ending = line_ending  # the start line's ending; the default for headers
        self.blank_line = blank_line  # the empty line ending the headers; b"" when missing
        self.start_line_raw: bytes | None = None  # exact start line as parsed
        self._start_fields: tuple[Any, ...] | None = None
        self._sdp_cache: tuple[bytes, str | None, Any] | None = None
        self.body_offset = 0  # where the body starts in the parsed buffer

    @classmethod
    def request(
        cls, method: str, request_uri: str, headers: list[Header] | None = None, body: bytes = b""
    ) -> SipMessage:
        return cls(method=method, request_uri=request_uri, headers=headers, body=body)

    @classmethod
    def response(
        cls, status: int, reason: str, headers: list[Header] | None = None, body: bytes = b""
    ) -> SipMessage:
        return cls(status=status, reason=reason, headers=headers, body=body)

    def __repr__(self) -> str:
        if self.is_request:
            return f"<SipMessage {self.method} {self.request_uri}>"
        return f"<SipMessage {self.status} {self.reason}>"

    # -- start line -------------------------------------------------------------------------

    @property
    def is_request(self) -> bool:
        return self.method is not None

    @property
    def header_terminated(self) -> bool:
        """False when the empty line ending the header section was missing."""
        return bool(self.blank_line)

    @property
    def uri(self) -> Uri | None:
        """The Request-URI parsed (requests only); ``ParseError`` if malformed."""
        if self.request_uri is None:
            return None
        # The calls of a capture repeat their Request-URIs.
        result = _shared("uri", self.request_uri, parse_uri)
        if isinstance(result, ParseError):
            at = "" if result.offset is None else f" (character {result.offset} of the URI)"
            raise ParseError(f"Request-URI: {result.message}{at}") from None
        return result  # type: ignore[no-any-return]

    def start_line(self) -> str:
        if self.method is not None:
            return f"{self.method} {self.request_uri} {self.version}"
        status = "" if self.status is None else f"{self.status:03d}"
        return f"{self.version} {status} {self.reason or ''}"

    # -- headers ----------------------------------------------------------------------------

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case, compact or long form), or None."""
        key = header_key(name)
        for h in self.headers:
            if h.key == key:
                return h.value
        return None

    def header_fields(self, name: str) -> list[Header]:
        """Every header field named ``name``, in wire order."""
        key = header_key(name)
        return [h for h in self.headers if h.key == key]

    def header_values(self, name: str) -> list[str]:
        """All values of header ``name`` across its lines, comma lists split (RFC 3261 §7.3.1)."""
        key = header_key(name)
        split = is_comma_list(key)
        out: list[str] = []
        for h in self.headers:
            if h.key == key:
                if split:
                    out += split_comma_list(h.value)
                else:
                    out.append(h.value)
        return out

    def add_header(self, name: str, value: str) -> Header:
        """Append a header (canonical name) and return it."""
        h = Header(canonical_name(name), value)
        self.headers.append(h)
        return h

    def set_header(self, name: str, value: str) -> Header:
        """Replace the first ``name`` header's value in place (dropping the others), or append."""
        key = header_key(name)
        found: Header | None = None
        kept: list[Header] = []
        for h in self.headers:
            if h.key == key:
                if found is not None:
                    continue
                found = h
                h.value = value
                h.raw = None
                h.eol = None
            kept.append(h)
        self.headers[:] = kept
        return found if found is not None else self.add_header(name, value)

    def remove_header(self, name: str) -> int:
        """Remove every ``name`` header; return how many were removed."""
        key = header_key(name)
        before = len(self.headers)
        self.headers[:] = [h for h in self.headers if h.key != key]
        return before - len(self.headers)

    def _first(self, key: str) -> Header | None:
        for h in self.headers:
            if h.key == key:
                return h
        return None

    # -- typed views (parsed on access, ParseError when malformed) ---------------------------

    @property
    def call_id(self) -> str | None:
        return self.header("Call-ID")

    @property
    def cseq(self) -> CSeq | None:
        h = self._first("cseq")
        return None if h is None else _parsed(h, "cseq", parse_cseq)

    @property
    def from_(self) -> NameAddr | None:
        h = self._first("from")
        return None if h is None else _parsed(h, "nameaddr", parse_name_addr)

    @property
    def to(self) -> NameAddr | None:
        h = self._first("to")
        return None if h is None else _parsed(h, "nameaddr", parse_name_addr)

    @property
    def vias(self) -> list[Via]:
        out: list[Via] = []
        for h in self.headers:
            if h.key == "via":
                out += _parsed(h, "vias", _parse_via_list)
        return out

    @property
    def top_via(self) -> Via | None:
        h = self._first("via")
        return None if h is None else _parsed(h, "vias", _parse_via_list)[0]

    @property
    def contacts(self) -> list[NameAddr]:
        """Every Contact, in order; ``Contact: *`` gives one NameAddr with ``is_star``."""
        return self.name_addrs("Contact")

    def name_addrs(self, name: str) -> list[NameAddr]:
        """Every name-addr of a name-addr list header (Contact, Route, Record-Route, Path ...)."""
        key = header_key(name)
        out: list[NameAddr] = []
        for h in self.headers:
            if h.key == key:
                out += _parsed(h, "nameaddrs", _parse_name_addr_list)
        return out

    @property
    def content_type(self) -> str | None:
        """The media type, lower-cased, without parameters ("application/sdp")."""
        value = self.header("Content-Type")
        if value is None:
            return None
        return value.partition(";")[0].strip(" \t").lower() or None

    @property
    def max_forwards(self) -> int | None:
        value = self.header("Max-Forwards")
        if value is None:
            return None
        if not is_decimal(value, 10):
            raise ParseError(f"bad Max-Forwards {value[:40]!r}", offset=0)
        return int(value)

    @property
    def sdp(self) -> SessionDescription | None:
        """The body parsed as SDP when Content-Type is application/sdp, else None."""
        ctype = self.content_type
        cache = self._sdp_cache
        if cache is not None and cache[0] is self.body and cache[1] == ctype:
            result = cache[2]
        else:
            result = None
            if ctype == "application/sdp" and self.body:
                from siptool.sip.sdp import parse_sdp  # only messages with SDP pay

                result = _shared("sdp", self.body, parse_sdp)
            self._sdp_cache = (self.body, ctype, result)
        if isinstance(result, ParseError):
            offset = None if result.offset is None else self.body_offset + result.offset
            raise ParseError(f"SDP: {result.message}", offset=offset)
        return result  # type: ignore[no-any-return]

    # -- output -----------------------------------------------------------------------------

    def serialize(self) -> bytes:
        """The message as bytes.  A parsed, unmodified message gives back its exact bytes."""
        eol = self.line_ending
        fields = (self.method, self.request_uri, self.status, self.reason, self.version)
        if self.start_line_raw is not None and fields == self._start_fields:
            start = self.start_line_raw
        else:
            start = self.start_line().encode("utf-8", "surrogateescape")
        parts = [start, eol]
        default_eol = eol or CRLF
        for h in self.headers:
            raw = h.raw
            if raw is None:
                raw = f"{h.name}: {h.value}".encode("utf-8", "surrogateescape")
            parts.append(raw)
            parts.append(default_eol if h.eol is None else h.eol)
        parts.append(self.blank_line)
        parts.append(self.body)
        return b"".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (the decode contract).  Never raises: a malformed From, To, Via,
        CSeq or SDP gives None for that key; call the property to get the error."""
        headers: list[list[str]] = []
        call_id: str | None = None
        cseq_h = from_h = to_h = None
        via_hs: list[Header] = []
        for h in self.headers:
            name = h.name
            headers.append([name, clean_text(h.value)])
            key = header_key(name)
            if key == "via":
                via_hs.append(h)
            elif key == "call-id":
                if call_id is None:
                    call_id = clean_text(h.value)
            elif key == "cseq":
                cseq_h = cseq_h or h
            elif key == "from":
                from_h = from_h or h
            elif key == "to":
                to_h = to_h or h
        cseq: dict[str, Any] | None = None
        if cseq_h is not None:
            try:
                c = _parsed(cseq_h, "cseq", parse_cseq)
                cseq = {"seq": c.seq, "method": clean_text(c.method)}
            except ParseError:
                pass
        vias: list[dict[str, Any]] | None = []
        try:
            for h in via_hs:
                for v in _parsed(h, "vias", _parse_via_list):
                    d = v.to_dict()
                    d["host"] = clean_text(d["host"])
                    for k in ("branch", "received"):
                        if d[k] is not None:
                            d[k] = clean_text(d[k])
                    vias.append(d)  # type: ignore[union-attr]
        except ParseError:
            vias = None
        try:
            sdp = self.sdp
            sdp_dict = None if sdp is None else sdp.to_dict()
        except ParseError:
            sdp_dict = None
        return {
            "kind": "request" if self.method is not None else "response",
            "method": self.method,
            "status": self.status,
            "reason": None if self.reason is None else clean_text(self.reason),
            "request_uri": None if self.request_uri is None else clean_text(self.request_uri),
            "call_id": call_id,
            "cseq": cseq,
            "from": _name_addr_dict(from_h),
            "to": _name_addr_dict(to_h),
            "via": vias,
            "headers": headers,
            "body": self.body.decode("utf-8", "replace"),
            "sdp": sdp_dict,
        }


def _name_addr_dict(h: Header | None) -> dict[str, Any] | None:
    if h is None:
        return None
    try:
        na: NameAddr = _parsed(h, "nameaddr", parse_name_addr)
    except ParseError:
        return None
    tag = na.tag
    return {
        "uri": clean_text(str(na.uri)),
        "display_name": None if na.display_name is None else clean_text(na.display_name),
        "tag": None if tag is None else clean_text(tag),
    }


# -- parsing ------------------------------------------------------------------------------------


def _parse_start_line(
    line: str, offset: int
) -> tuple[str | None, str | None, int | None, str | None, str]:
    """(method, request_uri, status, reason, version) of a Request-Line or Status-Line."""
    if line[:4].upper() == "SIP/":
        # RFC 3261 §7.2: Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF; an
        # empty Reason-Phrase is legal (RFC 4475 §3.1.1.13).
        parts = line.split(None, 2)
        version = parts[0]
        if not _VERSION_RE.match(version):
            raise ParseError(f"bad SIP version {version[:20]!r}", offset=offset)
        code = parts[1] if len(parts) > 1 else ""
        if len(code) != 3 or not is_decimal(code, 3):
            raise ParseError(f"bad status code {code[:20]!r}", offset=offset + line.find(code))
        reason = parts[2].rstrip() if len(parts) > 2 else ""
        return None, None, int(code), reason, version
    # RFC 3261 §7.1: Request-Line = Method SP Request-URI SP SIP-Version CRLF
    parts = line.split()
    if len(parts) != 3:
        if not parts:
            raise ParseError("empty start line", offset=offset)
        raise ParseError(f"not a SIP start line: {line[:60]!r}", offset=offset)
    method, uri, version = parts
    if method not in _KNOWN_METHODS and not _TOKEN_RE.match(method):
        raise ParseError(f"bad method {method[:20]!r}", offset=offset)
    if not _VERSION_RE.match(version):
        raise ParseError(f"bad SIP version {version[:20]!r}", offset=offset + line.rfind(version))
    return method, uri, None, None, version


def _split_lines(region: bytes) -> tuple[list[bytes], list[str], bytes | list[bytes]]:
    """Header lines of ``region`` as raw bytes and text (aligned), and their line endings:
    one bytes value when uniform, else one per line (b"" for an unterminated last line)."""
    text = region.decode("utf-8", "surrogateescape")
    # Decoding keeps every CR and LF byte as the same single character (no UTF-8 sequence
    # contains them, surrogateescape maps bad bytes one to one), so both splits align.
    if region.endswith(b"\r\n") and region.count(b"\n") == region.count(b"\r\n"):
        return region[:-2].split(b"\r\n"), text[:-2].split("\r\n"), CRLF
    if region.endswith(b"\n") and b"\r" not in region:
        return region[:-1].split(b"\n"), text[:-1].split("\n"), b"\n"
    raw = region.split(b"\n")
    txt = text.split("\n")
    terminated = region.endswith(b"\n")
    if terminated:
        raw.pop()
        txt.pop()
    eols: list[bytes] = []
    last = len(raw) - 1
    for k, line in enumerate(raw):
        if line.endswith(b"\r"):
            raw[k] = line[:-1]
            txt[k] = txt[k][:-1]
            eols.append(CRLF if terminated or k < last else b"\r")
        else:
            eols.append(b"\n" if terminated or k < last else b"")
    return raw, txt, eols


def _line_offset(base: int, raw: list[bytes], eols: bytes | list[bytes], index: int) -> int:
    if isinstance(eols, bytes):
        return base + sum(len(line) for line in raw[:index]) + index * len(eols)
    return base + sum(len(raw[k]) + len(eols[k]) for k in range(index))


def parse_message(data: bytes) -> SipMessage:
    """Parse one SIP message from ``data`` (see the module docstring for the rules).

    Raises ``ParseError`` (with the byte offset in ``data``) and nothing else.
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    n = len(data)
    pos = 0
    while pos < n and data[pos] in b"\r\n":
        pos += 1
    if pos == n:
        raise ParseError("empty message", offset=pos)
    nl = data.find(b"\n", pos)
    if nl < 0:
        line_end = n
        eol = b""
    elif nl > pos and data[nl - 1] == 13:
        line_end = nl - 1
        eol = CRLF
    else:
        line_end = nl
        eol = b"\n"
    start_raw = data[pos:line_end]
    method, request_uri, status, reason, version = _parse_start_line(
        start_raw.decode("utf-8", "surrogateescape"), pos
    )

    # The header section ends at the first empty line: CRLF CRLF, LF LF or a mix (logs).
    if nl < 0:
        region_start = region_end = body_start = n
        blank = b""
    else:
        region_start = nl + 1
        crlf = data.find(b"\n\r\n", nl)
        lf = data.find(b"\n\n", nl, n if crlf < 0 else crlf + 1)
        if lf >= 0 and (crlf < 0 or lf < crlf):
            region_end = lf + 1
            body_start = lf + 2
            blank = b"\n"
        elif crlf >= 0:
            region_end = crlf + 1
            body_start = crlf + 3
            blank = CRLF
        else:
            region_end = body_start = n
            blank = b""

    headers: list[Header] = []
    cl_header: Header | None = None
    cl_index = -1
    if region_end > region_start:
        raw_lines, text_lines, eols = _split_lines(data[region_start:region_end])
        per_line: list[bytes] | None = None
        eol_of: bytes | None = None
        if isinstance(eols, list):
            per_line = eols
        elif eols != eol:
            eol_of = eols
        wire = _WIRE_NAMES
        prev: Header | None = None
        idx = 0
        count = len(text_lines)
        while idx < count:
            line = text_lines[idx]
            if per_line is not None:
                eol_of = per_line[idx]
                if eol_of == eol:
                    eol_of = None
            if line[:1] in (" ", "\t"):
                # RFC 3261 §7.3.1: a line starting with whitespace continues the previous
                # header; the line break and the whitespace around it become one SP.  The
                # whole run is joined at once: a header folded thousands of times stays linear.
                if prev is None:
                    raise ParseError(
                        "continuation line before the first header",
                        offset=_line_offset(region_start, raw_lines, eols, idx),
                    )
                end = idx + 1
                while end < count and text_lines[end][:1] in (" ", "\t"):
                    end += 1
                pieces = [prev.value] if prev.value else []
                for more in text_lines[idx:end]:
                    more = more.strip(" \t")
                    if more:
                        pieces.append(more)
                prev.value = " ".join(pieces)
                if per_line is None:
                    prev.raw = eols.join([prev.raw or b"", *raw_lines[idx:end]])  # type: ignore[union-attr]
                else:
                    parts = [prev.raw or b""]
                    for k in range(idx, end):
                        parts += (per_line[k - 1], raw_lines[k])
                    prev.raw = b"".join(parts)
                    eol_of = per_line[end - 1]
                    if eol_of == eol:
                        eol_of = None
                prev.eol = eol_of
                idx = end
                continue
            colon = line.find(":")
            if colon < 0:
                raise ParseError(
                    f"header line without ':': {line[:40]!r}",
                    offset=_line_offset(region_start, raw_lines, eols, idx),
                )
            wire_name = line[:colon]
            name = wire.get(wire_name)
            if name is None:
                # RFC 3261 §7.3.1 / §25.1 HCOLON: whitespace may precede the colon.
                bare = wire_name.rstrip(" \t")
                if not is_valid_header_name(bare):
                    raise ParseError(
                        f"bad header name {bare[:40]!r}",
                        offset=_line_offset(region_start, raw_lines, eols, idx),
                    )
                name = canonical_name(bare)
                if len(wire) < _WIRE_NAMES_LIMIT:
                    wire[wire_name] = name
            prev = Header(name, line[colon + 1 :].strip(" \t"), raw_lines[idx], eol_of)
            headers.append(prev)
            if cl_header is None and name == "Content-Length":
                cl_header = prev
                cl_index = idx
            idx += 1
    else:
        raw_lines, eols = [], CRLF

    declared: int | None = None
    if cl_header is not None:
        value = cl_header.value
        digits = value.lstrip("0")
        if not (value.isascii() and value.isdigit()) or len(digits) > 18:
            raise ParseError(
                f"bad Content-Length {value[:40]!r}",
                offset=_line_offset(region_start, raw_lines, eols, cl_index),
            )
        declared = int(value)

    if not blank and declared:
        raise ParseError("header section not terminated by an empty line", offset=n)

    msg = SipMessage(
        method=method,
        request_uri=request_uri,
        status=status,
        reason=reason,
        version=version,
        headers=headers,
        declared_length=declared,
        line_ending=eol,
        blank_line=blank,
    )
    msg.start_line_raw = start_raw
    msg._start_fields = (method, request_uri, status, reason, version)
    msg.body_offset = body_start
    if declared is None:
        msg.body = data[body_start:]
    else:
        end = body_start + declared
        msg.body = data[body_start:end]
        if end > n:
            msg.body_truncated = True
        else:
            msg.trailing = n - end
    return msg
