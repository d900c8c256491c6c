"""SIP message fragments (RFC 3420, ``message/sipfrag``): what the NOTIFYs of a REFER carry
to say how the transfer is going (RFC 3515 §2.4.5: "SIP/2.0 100 Trying", then the final
response the transfer target gave, "SIP/2.0 200 OK" or "SIP/2.0 486 Busy Here").

``parse_sipfrag(body)`` gives a ``SipFrag``: the status and reason of a status-line fragment,
or the method and Request-URI of a request-line one, and the headers (and body length) that
follow.

Decisions:

* The fragment is read by ``siptool.sip.message.parse_message``, the one SIP message parser:
  it already accepts a last line without CRLF (RFC 3420 fragments often end right after the
  reason phrase), a header section with no empty line after it when no body follows, bare
  LF line ends, and it knows the start-line grammar (RFC 3261 §7.1, §7.2).
* RFC 3420 makes the start line optional: a fragment of headers alone is read behind a
  placeholder status line, so the same header rules apply, and comes back with neither
  status nor method.  A first line is a start line when it begins "SIP/" or ends in
  "SIP/<digits>.<digits>" after two other words; otherwise it must be a header.
* A status code outside 100-699 (RFC 3261 §7.2, §21) is refused: the REFER outcome is read
  from its class.
* ``summary()`` speaks of the transfer, since REFER (RFC 3515) is where NOTIFYs carry this
  type: "transfer target answered 200 OK", "transfer failed: 486 Busy Here".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from siptool.errors import ParseError
from siptool.sip.message import SipMessage, clean_text, parse_message
from siptool.sip.xmlbody import check_body_size

__all__ = ["MEDIA_TYPE", "SipFrag", "parse_sipfrag"]

MEDIA_TYPE = "message/sipfrag"
_WHAT = f"{MEDIA_TYPE} body"
_PLACEHOLDER = b"SIP/2.0 200 placeholder\r\n"
_REQUEST_LINE = re.compile(rb"\S+[ \t]+\S+[ \t]+[Ss][Ii][Pp]/[0-9]+\.[0-9]+[ \t]*\Z")


@dataclass(frozen=True, slots=True)
class SipFrag:
    status: int | None
    reason: str | None
    method: str | None
    request_uri: str | None
    headers: tuple[tuple[str, str], ...]  # (canonical name, value), in order
    body_length: int

    @property
    def is_final(self) -> bool:
        """True for a final response (2xx-6xx): the last NOTIFY of a REFER (RFC 3515)."""
        return self.status is not None and self.status >= 200

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "method": self.method,
            "request_uri": self.request_uri,
            "headers": [{"name": n, "value": v} for n, v in self.headers],
            "body_length": self.body_length,
        }

    def summary(self) -> str:
        if self.status is None:
            if self.method is not None:
                return f"sipfrag {self.method} {self.request_uri}"
            return f"sipfrag of {len(self.headers)} headers"
        line = f"{self.status} {self.reason}".rstrip()
        if self.status < 200:
            return f"transfer in progress: {line}"
        if self.status < 300:
            return f"transfer target answered {line}"
        return f"transfer failed: {line}"


def _first_line(body: bytes) -> bytes:
    return body.lstrip(b"\r\n").split(b"\n", 1)[0].rstrip(b"\r")


def _has_start_line(first: bytes) -> bool:
    return first[:4].upper() == b"SIP/" or _REQUEST_LINE.match(first) is not None


def parse_sipfrag(body: bytes) -> SipFrag:
    """The fragment ``body`` (RFC 3420); ParseError when it is not one."""
    check_body_size(body, _WHAT)
    if not body.strip():
        raise ParseError(f"bad {_WHAT}: the fragment is empty")
    first = _first_line(body)
    with_start = _has_start_line(first)
    if not with_start and b":" not in first:
        text = clean_text(first[:40].decode("utf-8", "surrogateescape"))
        raise ParseError(f"bad {_WHAT}: {text!r} is neither a SIP start line nor a header")
    data = body if with_start else _PLACEHOLDER + body.lstrip(b"\r\n")
    try:
        message = parse_message(data)
    except ParseError as exc:
        offset = exc.offset
        if offset is not None and not with_start:
            offset = max(offset - len(_PLACEHOLDER), 0)
        raise ParseError(f"bad {_WHAT}: {clean_text(exc.message)}", offset=offset) from None
    if message.body_truncated:
        raise ParseError(f"bad {_WHAT}: the fragment's Content-Length is more than its body")
    return _frag(message, with_start)


def _frag(message: SipMessage, with_start: bool) -> SipFrag:
    status = message.status if with_start else None
    if status is not None and not 100 <= status <= 699:
        raise ParseError(f"bad {_WHAT}: status code {status} is outside 100-699")
    uri = message.request_uri
    return SipFrag(
        status=status,
        reason=None if status is None else clean_text(message.reason or ""),
        method=message.method,
        request_uri=None if uri is None else clean_text(uri),
        headers=tuple((clean_text(h.name), clean_text(h.value)) for h in message.headers),
        body_length=len(message.body),
    )
