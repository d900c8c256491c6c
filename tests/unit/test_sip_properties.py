"""Property tests: well-formed messages round-trip byte for byte; any input fails only with
``ParseError`` (never IndexError, ValueError, UnicodeDecodeError ...)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siptool.errors import ParseError
from siptool.sip.headers import COMPACT_FORMS, canonical_name
from siptool.sip.message import SipMessage, parse_message
from siptool.sip.nameaddr import parse_name_addr, parse_via
from siptool.sip.sdp import parse_sdp
from siptool.sip.uri import parse_uri
from tests.unit.test_sip_message import ESC01, NOREASON, OPTIONS, SEMIURI, WSINV

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
tokens = st.text(TOKEN_ALPHABET, min_size=1, max_size=12)
hosts = st.one_of(
    st.from_regex(r"[a-z][a-z0-9\-]{0,10}(\.[a-z][a-z0-9\-]{0,10}){0,3}", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
)
sip_uris = st.builds(
    lambda scheme, user, host, port, params: (
        f"{scheme}:{user + '@' if user else ''}{host}{'' if port is None else f':{port}'}"
        + "".join(f";{p}" for p in params)
    ),
    st.sampled_from(["sip", "sips", "SIP"]),
    st.one_of(st.none(), st.text("abcdefxyz0123456789-_.!~*'()&=+$,;?/%", min_size=1, max_size=10)),
    hosts,
    st.one_of(st.none(), st.integers(0, 65535)),
    st.lists(st.one_of(tokens, st.tuples(tokens, tokens).map("=".join)), max_size=3),
)

KNOWN_NAMES = [
    "Via",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Contact",
    "Max-Forwards",
    "Route",
    "Record-Route",
    "WWW-Authenticate",
    "Subject",
    "User-Agent",
    "P-Asserted-Identity",
    "X-Custom",
    "RAck",
]
COMPACT_NOT_LENGTH = [c for c in COMPACT_FORMS if c != "l"]


@st.composite
def header_names(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 2))
    if kind == 0:
        name = draw(st.sampled_from(KNOWN_NAMES))
    elif kind == 1:
        name = draw(st.sampled_from(COMPACT_NOT_LENGTH))
    else:
        name = "X-" + draw(tokens)
    # header names are case-insensitive on the wire (RFC 3261 §7.3.1)
    return draw(st.sampled_from([name, name.lower(), name.upper()]))


value_text = st.text(
    st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=30
)
eols = st.sampled_from([b"\r\n", b"\n"])


@st.composite
def header_lines(draw: st.DrawFn) -> tuple[str, bytes, str]:
    """(name on the wire, the header's wire bytes incl. its line endings, expected value)."""
    name = draw(header_names())
    sep = draw(st.sampled_from([": ", ":", " : ", ":\t"]))
    first = draw(value_text).strip(" \t")
    pieces = [first]
    wire = f"{name}{sep}{first}".encode()
    for _ in range(draw(st.integers(0, 2))):  # RFC 3261 §7.3.1 folding
        indent = draw(st.sampled_from([" ", "\t", "   "]))
        more = draw(value_text).strip(" \t")
        wire += draw(eols) + f"{indent}{more}".encode()
        if more:
            pieces.append(more)
    return name, wire + draw(eols), " ".join(p for p in pieces if p)


@st.composite
def messages(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, str]], bytes]:
    if draw(st.booleans()):
        method = draw(
            st.one_of(st.sampled_from(["INVITE", "ACK", "OPTIONS", "BYE", "REGISTER"]), tokens)
        )
        start = f"{method} {draw(sip_uris)} SIP/2.0"
    else:
        reason = draw(value_text).strip()
        start = f"SIP/2.0 {draw(st.integers(100, 699))} {reason}".rstrip()
    data = start.encode() + draw(eols)
    expected: list[tuple[str, str]] = []
    for name, wire, value in draw(st.lists(header_lines(), max_size=8)):
        data += wire
        expected.append((canonical_name(name), value))
    body = draw(st.binary(max_size=60))
    length_name = draw(st.sampled_from(["Content-Length", "l", "content-length", None]))
    if length_name is not None:
        data += f"{length_name}: {len(body)}".encode() + draw(eols)
        expected.append(("Content-Length", str(len(body))))
    data += draw(eols) + body
    return data, expected, body


@SETTINGS
@given(messages())
def test_well_formed_messages_round_trip_byte_for_byte(
    case: tuple[bytes, list[tuple[str, str]], bytes],
) -> None:
    data, expected, body = case
    m = parse_message(data)
    assert m.serialize() == data
    assert [(h.name, h.value) for h in m.headers] == expected
    assert m.body == body and m.trailing == 0 and not m.body_truncated


@SETTINGS
@given(sip_uris)
def test_generated_sip_uris_parse_and_rebuild(text: str) -> None:
    uri = parse_uri(text)
    assert str(uri) == text
    again = parse_uri(uri.to_text())
    assert again == uri


def exercise(m: SipMessage) -> None:
    """Touch every lazily parsed view: each may raise ParseError, nothing else."""
    for attr in (
        "uri",
        "cseq",
        "from_",
        "to",
        "vias",
        "top_via",
        "contacts",
        "max_forwards",
        "sdp",
    ):
        with contextlib.suppress(ParseError):
            getattr(m, attr)
    for name in ("Route", "Record-Route", "P-Asserted-Identity"):
        with contextlib.suppress(ParseError):
            m.name_addrs(name)
    for h in m.headers:
        m.header_values(h.name)
    _ = (m.call_id, m.content_type, m.is_request)
    d: dict[str, Any] = m.to_dict()  # never raises
    json.dumps(d, ensure_ascii=False).encode("utf-8")
    m.serialize()


def parse_or_parse_error(data: bytes) -> None:
    try:
        m = parse_message(data)
    except ParseError:
        return
    exercise(m)


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_parse_error(data: bytes) -> None:
    parse_or_parse_error(data)


@FUZZ
@given(st.binary(max_size=200))
def test_arbitrary_bytes_after_a_valid_start_line(data: bytes) -> None:
    parse_or_parse_error(b"INVITE sip:a@b SIP/2.0\r\n" + data)
    parse_or_parse_error(b"SIP/2.0 200 OK\r\nContent-Type: application/sdp\r\n" + data)


VALID = [WSINV, ESC01, SEMIURI, NOREASON, OPTIONS]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.integers(0, 3))
        pos = draw(st.integers(0, len(data)))
        if op == 0 and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif op == 1:
            data[pos : pos + draw(st.integers(1, 20))] = b""
        elif op == 2:
            data[pos:pos] = draw(
                st.sampled_from(
                    [
                        b"\r\n",
                        b"\n",
                        b" ",
                        b";",
                        b",",
                        b"<",
                        b">",
                        b'"',
                        b"[",
                        b":",
                        b"=",
                        b"\\",
                        b"%",
                        b"\xff",
                        b"\x00",
                    ]
                )
            )
        else:
            del data[pos:]
    return bytes(data)


@FUZZ
@given(mutated())
def test_mutated_valid_messages_raise_only_parse_error(data: bytes) -> None:
    parse_or_parse_error(data)


structured_text = st.lists(
    st.sampled_from(
        [*'sip:@;=<>"\\, \t*[]:/?&%.-_abcXYZ0123456789\x00é\udcff', "SIP/2.0/UDP ", "tag", "rport"]
    ),
    max_size=40,
).map("".join)


@FUZZ
@given(st.one_of(st.text(max_size=80), structured_text))
def test_value_parsers_raise_only_parse_error(text: str) -> None:
    for parser in (parse_uri, parse_name_addr, parse_via):
        try:
            result = parser(text)
        except ParseError:
            continue
        str(result)
        if hasattr(result, "to_dict"):
            result.to_dict()
        if hasattr(result, "rport"):
            _ = (result.rport, result.ttl)  # validated by parse_via: must not raise


sdp_lines = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "v=0",
                "o=- 1 1 IN IP4 192.0.2.1",
                "s=-",
                "c=IN IP4 192.0.2.1/5/2",
                "t=0 0",
                "m=audio 49170 RTP/AVP 0 8 101",
                "a=rtpmap:101 telephone-event/8000",
                "a=candidate:1 1 UDP 1 10.0.0.1 9 typ host raddr 1 rport 2",
                "a=sendonly",
                "b=AS:1",
                "",
            ]
        ),
        st.text(max_size=30).map(lambda t: t.replace("\n", "")),
        st.tuples(st.sampled_from("vocbtmarzxy"), st.text(max_size=20)).map(
            lambda p: f"{p[0]}={p[1]}"
        ),
    ),
    max_size=12,
)


@FUZZ
@given(st.one_of(st.binary(max_size=200), sdp_lines.map(lambda ls: "\r\n".join(ls))))
def test_sdp_parser_raises_only_parse_error(data: bytes | str) -> None:
    try:
        sdp = parse_sdp(data)
    except ParseError:
        return
    json.dumps(sdp.to_dict(), ensure_ascii=False).encode("utf-8")
    parse_sdp(sdp.to_text())  # what it writes, it reads back
