"""SIP header names and multi-value splitting (RFC 3261 §7.3, §20).

Three jobs, all pure and cheap enough for the hot path of ``parse_message``:

* ``canonical_name`` maps any wire spelling of a header name to one canonical long form:
  compact forms (RFC 3261 §7.3.3 and the later registrations in the IANA "Header Fields"
  registry) expand to their long names, known long names get their registered spelling
  ("cseq" -> "CSeq", "www-authenticate" -> "WWW-Authenticate") and unknown names keep the
  spelling they had on the wire.  Header field names are case-insensitive (RFC 3261 §7.3.1).
* ``header_key`` is the lookup key for a name: the lower-cased canonical form, so that
  ``"v"``, ``"VIA"`` and ``"Via"`` all find the same header.
* ``split_comma_list`` splits a header value whose grammar is ``x *(COMMA x)`` into its
  elements, never inside a quoted-string or a ``<...>`` URI (RFC 3261 §7.3.1: "it MUST be
  possible to combine the multiple header field rows into one").  ``COMMA_LIST_HEADERS``
  names the headers with that grammar; headers whose values contain commas for other reasons
  (Date, WWW-Authenticate, Authorization, Proxy-Authenticate, ...) are not in it.
"""

from __future__ import annotations

__all__ = [
    "COMMA_LIST_HEADERS",
    "COMPACT_FORMS",
    "KNOWN_HEADERS",
    "MANDATORY_REQUEST_HEADERS",
    "canonical_name",
    "compact_form",
    "header_key",
    "is_comma_list",
    "is_valid_header_name",
    "split_comma_list",
]

# RFC 3261 §8.1.1: "A valid SIP request formulated by a UAC MUST, at a minimum, contain the
# following header fields: To, From, CSeq, Call-ID, Max-Forwards, and Via" (in that order).
MANDATORY_REQUEST_HEADERS = ("To", "From", "CSeq", "Call-ID", "Max-Forwards", "Via")

# RFC 3261 §7.3.3 plus the compact forms registered later (RFC 3265 o/u, RFC 3515 r,
# RFC 3892 b, RFC 3841 a/j/d, RFC 4028 x, RFC 4474 y/n).  Keys are lower-case: compact forms
# are case-insensitive like every header name ("L: 0" is Content-Length, RFC 4475 §3.1.1.4).
COMPACT_FORMS: dict[str, str] = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

_COMPACT_OF: dict[str, str] = {long: short for short, long in COMPACT_FORMS.items()}

# Registered spellings (IANA SIP "Header Fields" registry and widely deployed extensions).
# Only the spelling matters here; the set is also what lookups treat as "known".
KNOWN_HEADERS: tuple[str, ...] = (
    "Accept",
    "Accept-Contact",
    "Accept-Encoding",
    "Accept-Language",
    "Accept-Resource-Priority",
    "Additional-Identity",
    "Alert-Info",
    "AlertMsg-Error",
    "Allow",
    "Allow-Events",
    "Answer-Mode",
    "Attestation-Info",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Cellular-Network-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-ID",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Diversion",
    "Encryption",
    "Error-Info",
    "Event",
    "Expires",
    "Feature-Caps",
    "Flow-Timer",
    "From",
    "Geolocation",
    "Geolocation-Error",
    "Geolocation-Routing",
    "Hide",
    "History-Info",
    "Identity",
    "Identity-Info",
    "Info-Package",
    "In-Reply-To",
    "Join",
    "Max-Breadth",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Min-SE",
    "Organization",
    "Origination-Id",
    "P-Access-Network-Info",
    "P-Answer-State",
    "P-Asserted-Identity",
    "P-Asserted-Service",
    "P-Associated-URI",
    "P-Called-Party-ID",
    "P-Charge-Info",
    "P-Charging-Function-Addresses",
    "P-Charging-Vector",
    "P-DCS-Billing-Info",
    "P-DCS-LAES",
    "P-DCS-OSPS",
    "P-DCS-Redirect",
    "P-DCS-Trace-Party-ID",
    "P-Early-Media",
    "P-Media-Authorization",
    "P-Preferred-Identity",
    "P-Preferred-Service",
    "P-Private-Network-Indication",
    "P-Profile-Key",
    "P-Refused-URI-List",
    "P-Served-User",
    "P-User-Database",
    "P-Visited-Network-ID",
    "Path",
    "Permission-Missing",
    "Policy-Contact",
    "Policy-ID",
    "Priority",
    "Priority-Share",
    "Priv-Answer-Mode",
    "Privacy",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "RAck",
    "Reason",
    "Reason-Phrase",
    "Record-Route",
    "Recv-Info",
    "Refer-Events-At",
    "Refer-Sub",
    "Refer-To",
    "Referred-By",
    "Reject-Contact",
    "Relayed-Charge",
    "Remote-Party-ID",
    "Replaces",
    "Reply-To",
    "Request-Disposition",
    "Require",
    "Resource-Priority",
    "Resource-Share",
    "Response-Key",
    "Response-Source",
    "Restoration-Info",
    "Retry-After",
    "Route",
    "RSeq",
    "Security-Client",
    "Security-Server",
    "Security-Verify",
    "Server",
    "Service-Interact-Info",
    "Service-Route",
    "Session-Expires",
    "Session-ID",
    "SIP-ETag",
    "SIP-If-Match",
    "Subject",
    "Subscription-State",
    "Supported",
    "Suppress-If-Match",
    "Target-Dialog",
    "Timestamp",
    "To",
    "Trigger-Consent",
    "Unsupported",
    "User-Agent",
    "User-to-User",
    "Via",
    "Warning",
    "WWW-Authenticate",
)

_CANONICAL_BY_LOWER: dict[str, str] = {name.lower(): name for name in KNOWN_HEADERS}
for _short, _long in COMPACT_FORMS.items():
    _CANONICAL_BY_LOWER[_short] = _long

# Headers whose ABNF is a comma-separated list (RFC 3261 §20 and the defining RFCs).  Not
# here on purpose: Date (rfc1123-date has a comma), the authentication headers (a comma
# separates their parameters, not values), Subject/User-Agent/Server/Organization (free text),
# From/To/Refer-To/Referred-By/Reply-To (exactly one name-addr), Call-ID, CSeq.
COMMA_LIST_HEADERS: frozenset[str] = frozenset(
    {
        "Accept",
        "Accept-Contact",
        "Accept-Encoding",
        "Accept-Language",
        "Accept-Resource-Priority",
        "Alert-Info",
        "Allow",
        "Allow-Events",
        "Call-Info",
        "Contact",
        "Content-Encoding",
        "Content-Language",
        "Diversion",
        "Error-Info",
        "Feature-Caps",
        "Geolocation",
        "History-Info",
        "In-Reply-To",
        "P-Asserted-Identity",
        "P-Associated-URI",
        "P-Early-Media",
        "P-Preferred-Identity",
        "P-Visited-Network-ID",
        "Path",
        "Permission-Missing",
        "Proxy-Require",
        "Reason",
        "Record-Route",
        "Recv-Info",
        "Reject-Contact",
        "Remote-Party-ID",
        "Request-Disposition",
        "Require",
        "Resource-Priority",
        "Route",
        "Security-Client",
        "Security-Server",
        "Security-Verify",
        "Service-Route",
        "Supported",
        "Trigger-Consent",
        "Unsupported",
        "Via",
        "Warning",
    }
)
_COMMA_LIST_KEYS: frozenset[str] = frozenset(name.lower() for name in COMMA_LIST_HEADERS)

# RFC 3261 §25.1: header-name = token.
_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")

# Wire spelling -> canonical name, for names already validated.  Bounded so that a fuzzer or
# a hostile capture with millions of distinct header names cannot grow it without limit.
_CANONICAL_CACHE: dict[str, str] = {}
_KEY_CACHE: dict[str, str] = {}
_CACHE_LIMIT = 4096


def is_valid_header_name(name: str) -> bool:
    """True when ``name`` is a non-empty RFC 3261 token."""
    return bool(name) and all(ch in _TOKEN_CHARS for ch in name)


def canonical_name(name: str) -> str:
    """The canonical long form of a header name; unknown names are returned unchanged."""
    cached = _CANONICAL_CACHE.get(name)
    if cached is not None:
        return cached
    canon = _CANONICAL_BY_LOWER.get(name.lower(), name)
    if len(_CANONICAL_CACHE) < _CACHE_LIMIT:
        _CANONICAL_CACHE[name] = canon
    return canon


def header_key(name: str) -> str:
    """Case-insensitive lookup key: the lower-cased canonical name ("v" -> "via")."""
    key = _KEY_CACHE.get(name)
    if key is not None:
        return key
    key = canonical_name(name.strip()).lower()
    if len(_KEY_CACHE) < _CACHE_LIMIT:
        _KEY_CACHE[name] = key
    return key


def compact_form(name: str) -> str | None:
    """The compact form of a header name ("Via" -> "v"), or None when it has none."""
    return _COMPACT_OF.get(canonical_name(name))


def is_comma_list(name: str) -> bool:
    """True when the header's grammar is a comma-separated list of values."""
    return header_key(name) in _COMMA_LIST_KEYS


def split_comma_list(value: str) -> list[str]:
    """Split ``value`` at the commas that separate list elements.

    Commas inside a quoted-string (with its backslash escapes, RFC 3261 §25.1) or between
    ``<`` and ``>`` do not split.  Elements are stripped of surrounding whitespace and empty
    elements are dropped (``"a,,b"`` -> ``["a", "b"]``; RFC 7230-style tolerance of empty list
    elements, which RFC 4475 §3.1.2.1 shows real messages contain).  An unterminated quote or
    ``<`` swallows the rest of the value into the last element rather than failing: the
    element parsers report that error with a precise message.
    """
    if "," not in value:
        stripped = value.strip(" \t")
        return [stripped] if stripped else []
    if '"' not in value and "<" not in value:
        parts = value.split(",")
    else:
        parts = []
        start = 0
        in_quotes = False
        in_angle = False
        i = 0
        n = len(value)
        while i < n:
            ch = value[i]
            if in_quotes:
                if ch == "\\":
                    i += 1
                elif ch == '"':
                    in_quotes = False
            elif ch == '"':
                in_quotes = True
            elif in_angle:
                if ch == ">":
                    in_angle = False
            elif ch == "<":
                in_angle = True
            elif ch == ",":
                parts.append(value[start:i])
                start = i + 1
            i += 1
        parts.append(value[start:])
    out: list[str] = []
    for part in parts:
        part = part.strip(" \t")
        if part:
            out.append(part)
    return out
