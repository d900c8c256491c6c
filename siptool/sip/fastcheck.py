"""Fast acceptance of the common, plainly well-formed header values, for validation only.

decode validates every message (the Request-URI, From, To, Via and Contact must parse,
RFC 3261 §8.1.1) even when it shows only a table: on a 34,500-message capture the parses of
values seen once (each call's tags, each request's branch) were more than half of decode's
time.  A value that fully matches one of these patterns is one the real parser accepts
(``sip.uri``, ``sip.nameaddr``), so validation can say "parses" without building the objects;
anything else, and every value a view actually shows, goes through the parser.

The patterns are a strict subset of the grammar the parsers accept, by construction:

- URI: ``sip:``/``sips:``, an optional user of unreserved and a few sub-delimiter
  characters (no ``:`` password, no ``%`` escape), a hostname or IPv4 address of the
  parser's host characters, a port of at most 5 digits below 60000, ``;name[=value]`` token
  parameters; no IPv6 reference, no ``?`` headers.
- name-addr: an optional quoted display name without escapes or an unquoted one of token
  characters and blanks, the URI in angle brackets, ``;name[=value]`` token parameters.
- via-parm: ``SIP/2.0/`` and a transport token, one space, a host as above with an optional
  port, token parameters, where ``rport`` and ``ttl`` (the parameters the parser checks, RFC
  3581 §4, RFC 3261 §25.1) are a port and a number up to 255 or have no value.

tests/unit/test_sip_fastcheck.py generates values from each pattern (hypothesis
``from_regex``) and checks that the parser accepts every one.
"""

from __future__ import annotations

import re

__all__ = ["plain_name_addr", "plain_uri", "plain_via_list"]

_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
_PORT = r"(?:[0-9]{1,4}|[1-5][0-9]{4})"
_HOST = r"[A-Za-z0-9_\-.]+"
_USER = r"[A-Za-z0-9\-_.!~*'()&=+$,/]+"
_URI_PARAM = r"[A-Za-z0-9\-_.!~*'()]+"
_URI = rf"sips?:(?:{_USER}@)?{_HOST}(?::{_PORT})?(?:;{_URI_PARAM}(?:={_URI_PARAM})?)*"
_PARAMS = rf"(?:;{_TOKEN}(?:={_TOKEN})?)*"
_DISPLAY = r'(?:"[^"\\\x00-\x1f]*"[ ]?|[A-Za-z0-9\-.!%*_+`\'~ ]*)'
_VIA_PARAM = (
    rf"(?:;(?:(?i:rport)(?:={_PORT})?|(?i:ttl)(?:=(?:1?[0-9]{{1,2}}|2[0-4][0-9]|25[0-5]))?"
    rf"|(?!(?i:rport|ttl)(?:[=;]|$)){_TOKEN}(?:={_TOKEN})?))*"
)
_VIA = rf"SIP/2\.0/{_TOKEN} {_HOST}(?::{_PORT})?{_VIA_PARAM}"

URI_RE = re.compile(_URI)
NAME_ADDR_RE = re.compile(rf"{_DISPLAY}<{_URI}>{_PARAMS}")
VIA_LIST_RE = re.compile(rf"{_VIA}(?:, ?{_VIA})*")


def plain_uri(value: str) -> bool:
    """Whether ``value`` is a URI ``parse_uri`` surely accepts."""
    return URI_RE.fullmatch(value) is not None


def plain_name_addr(value: str) -> bool:
    """Whether ``value`` is one name-addr ``parse_name_addr`` surely accepts."""
    return NAME_ADDR_RE.fullmatch(value) is not None


def plain_via_list(value: str) -> bool:
    """Whether ``value`` is a Via header value whose every via-parm ``parse_via`` accepts."""
    return VIA_LIST_RE.fullmatch(value) is not None
