"""SDP session descriptions (RFC 8866), with the RTP views a SIP tool needs.

``parse_sdp`` is strict about structure and lenient about attribute values:

* ``ParseError`` (with the byte offset of the line, or the character offset for ``str``
  input) for a line not of the form ``<letter>=<value>`` (RFC 8866 §5: no whitespace around
  ``=``), a description not starting with ``v=``, a second ``v=``, a bad ``v=``, ``o=``,
  ``c=``, ``b=`` or ``t=`` line, and an ``m=`` line with a bad port or too few fields.
* Attribute values that cannot be interpreted (an ``a=rtpmap`` without a numeric payload
  type, an ``a=candidate`` with too few fields, ``a=ptime:abc`` ...) are kept in
  ``attributes`` but left out of the typed views, and described in ``problems`` for the
  linter: one odd attribute should not hide the rest of the description.
* LF and CRLF line endings are accepted; empty lines are skipped (a trailing one is normal
  in a SIP body; others are reported in ``problems``).  Unknown line types are kept in
  ``other_lines`` in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from siptool.errors import ParseError
from siptool.numbers import decimal_or_none

__all__ = [
    "DIRECTIONS",
    "STATIC_PAYLOAD_TYPES",
    "Bandwidth",
    "Connection",
    "IceCandidate",
    "MediaDescription",
    "Origin",
    "RtpMap",
    "SessionDescription",
    "Timing",
    "parse_sdp",
]

# RFC 3551 §6, Table 4 and 5: static payload types, as "encoding/clock[/channels]".
STATIC_PAYLOAD_TYPES: dict[str, str] = {
    "0": "PCMU/8000",
    "3": "GSM/8000",
    "4": "G723/8000",
    "5": "DVI4/8000",
    "6": "DVI4/16000",
    "7": "LPC/8000",
    "8": "PCMA/8000",
    "9": "G722/8000",
    "10": "L16/44100/2",
    "11": "L16/44100",
    "12": "QCELP/8000",
    "13": "CN/8000",
    "14": "MPA/90000",
    "15": "G728/8000",
    "16": "DVI4/11025",
    "17": "DVI4/22050",
    "18": "G729/8000",
    "25": "CelB/90000",
    "26": "JPEG/90000",
    "28": "nv/90000",
    "31": "H261/90000",
    "32": "MPV/90000",
    "33": "MP2T/90000",
    "34": "H263/90000",
}

# RFC 8866 §6.7: media direction attributes.
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


def _clean(text: str) -> str:
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _int(text: str) -> int | None:
    """A non-negative decimal integer, or None (ASCII digits only, bounded length)."""
    return decimal_or_none(text)


@dataclass(slots=True)
class Origin:
    """``o=`` (RFC 8866 §5.2).  The ids stay text: real ones overflow or are not numeric."""

    username: str
    session_id: str
    session_version: str
    nettype: str
    addrtype: str
    address: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "username": _clean(self.username),
            "session_id": _clean(self.session_id),
            "session_version": _clean(self.session_version),
            "nettype": _clean(self.nettype),
            "addrtype": _clean(self.addrtype),
            "address": _clean(self.address),
        }


@dataclass(slots=True)
class Connection:
    """``c=`` (RFC 8866 §5.7); ``ttl`` and ``count`` come from ``addr/ttl/count`` forms."""

    nettype: str
    addrtype: str
    address: str
    ttl: int | None = None
    count: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "nettype": _clean(self.nettype),
            "addrtype": _clean(self.addrtype),
            "address": _clean(self.address),
            "ttl": self.ttl,
            "count": self.count,
        }


@dataclass(slots=True)
class Bandwidth:
    """``b=<bwtype>:<bandwidth>`` (RFC 8866 §5.8), bandwidth in kbit/s for CT and AS."""

    bwtype: str
    bandwidth: int


@dataclass(slots=True)
class Timing:
    """``t=<start> <stop>`` with the ``r=`` lines that follow it (RFC 8866 §5.9, §5.10)."""

    start: int
    stop: int
    repeats: list[str] = field(default_factory=list)


@dataclass(slots=True)
class RtpMap:
    """``a=rtpmap:<pt> <encoding>/<clock>[/<channels>]`` (RFC 8866 §6.6).  ``clock_rate`` is
    None when missing (RFC 4475 §3.1.1.1 has ``a=rtpmap:31 LPC``)."""

    payload_type: int
    encoding: str
    clock_rate: int | None
    channels: int | None = None

    def __str__(self) -> str:
        out = self.encoding
        if self.clock_rate is not None:
            out += f"/{self.clock_rate}"
            if self.channels is not None:
                out += f"/{self.channels}"
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "payload_type": self.payload_type,
            "encoding": _clean(self.encoding),
            "clock_rate": self.clock_rate,
            "channels": self.channels,
        }


@dataclass(slots=True)
class IceCandidate:
    """``a=candidate`` (RFC 8839 §5.1)."""

    foundation: str
    component: int
    transport: str
    priority: int
    address: str
    port: int
    type: str
    raddr: str | None = None
    rport: int | None = None
    extensions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "foundation": _clean(self.foundation),
            "component": self.component,
            "transport": _clean(self.transport),
            "priority": self.priority,
            "address": _clean(self.address),
            "port": self.port,
            "type": _clean(self.type),
            "raddr": None if self.raddr is None else _clean(self.raddr),
            "rport": self.rport,
            "extensions": {_clean(k): _clean(v) for k, v in self.extensions.items()},
        }


class _Attributes:
    """What a session and a media description share: their ``a=`` lines, in order
    (RFC 8866 §5.13), as (name, value) with None for a flag attribute."""

    __slots__ = ()
    attributes: list[tuple[str, str | None]]

    def attribute(self, name: str) -> str | None:
        """Value of the first ``a=name`` (None also for a flag attribute)."""
        for key, value in self.attributes:
            if key == name:
                return value
        return None

    def has_attribute(self, name: str) -> bool:
        return any(key == name for key, _ in self.attributes)

    def direction_attribute(self) -> str | None:
        """The direction attribute at this level (RFC 8866 §6.7), or None."""
        for key, _ in self.attributes:
            if key in DIRECTIONS:
                return key
        return None

    def _attributes_dict(self) -> list[list[str | None]]:
        return [[_clean(k), None if v is None else _clean(v)] for k, v in self.attributes]


@dataclass(slots=True)
class MediaDescription(_Attributes):
    """One ``m=`` section.  ``direction`` is resolved: media-level attribute, else the
    session-level one, else "sendrecv" (RFC 8866 §6.7)."""

    media: str
    port: int
    port_count: int | None
    proto: str
    formats: list[str]
    connection: Connection | None = None
    bandwidths: list[Bandwidth] = field(default_factory=list)
    information: str | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    rtpmap: dict[str, RtpMap] = field(default_factory=dict)
    fmtp: dict[str, str] = field(default_factory=dict)
    candidates: list[IceCandidate] = field(default_factory=list)
    ptime: int | None = None
    direction: str = "sendrecv"
    other_lines: list[tuple[str, str]] = field(default_factory=list)
    # The session-level c=, for ``connection_address`` (RFC 8866 §5.7: c= at session level
    # applies to every media without its own).
    session_connection: Connection | None = field(default=None, repr=False, compare=False)

    @property
    def connection_address(self) -> str | None:
        conn = self.connection or self.session_connection
        return None if conn is None else conn.address

    @property
    def codecs(self) -> list[str]:
        """``"PCMU/8000"``-style names in format order: a=rtpmap, else the RFC 3551 static
        payload type for RTP profiles, else the format itself."""
        rtp = "RTP" in self.proto.upper()
        out: list[str] = []
        for fmt in self.formats:
            mapping = self.rtpmap.get(fmt)
            if mapping is not None:
                out.append(str(mapping))
            elif rtp and fmt in STATIC_PAYLOAD_TYPES:
                out.append(STATIC_PAYLOAD_TYPES[fmt])
            else:
                out.append(fmt)
        return out

    def to_dict(self) -> dict[str, Any]:
        addr = self.connection_address
        return {
            "media": _clean(self.media),
            "port": self.port,
            "port_count": self.port_count,
            "proto": _clean(self.proto),
            "formats": [_clean(f) for f in self.formats],
            "connection_address": None if addr is None else _clean(addr),
            "direction": self.direction,
            "codecs": [_clean(c) for c in self.codecs],
            "rtpmap": {_clean(k): v.to_dict() for k, v in self.rtpmap.items()},
            "fmtp": {_clean(k): _clean(v) for k, v in self.fmtp.items()},
            "ptime": self.ptime,
            "candidates": [c.to_dict() for c in self.candidates],
            "attributes": self._attributes_dict(),
        }

    def to_lines(self) -> list[str]:
        out = [f"m={self.media} {self.port}"]
        if self.port_count is not None:
            out[0] += f"/{self.port_count}"
        out[0] += " " + " ".join([self.proto, *self.formats])
        if self.information is not None:
            out.append(f"i={self.information}")
        if self.connection is not None:
            out.append(_connection_line(self.connection))
        out += [f"b={b.bwtype}:{b.bandwidth}" for b in self.bandwidths]
        out += [f"{t}={v}" for t, v in self.other_lines]
        out += [f"a={k}" if v is None else f"a={k}:{v}" for k, v in self.attributes]
        return out


@dataclass(slots=True)
class SessionDescription(_Attributes):
    version: int = 0
    origin: Origin | None = None
    session_name: str | None = None
    information: str | None = None
    connection: Connection | None = None
    bandwidths: list[Bandwidth] = field(default_factory=list)
    times: list[Timing] = field(default_factory=list)
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    other_lines: list[tuple[str, str]] = field(default_factory=list)  # u= e= p= z= k= unknown
    problems: list[str] = field(default_factory=list)  # attribute values not understood

    @property
    def direction(self) -> str | None:
        """The session-level direction attribute, or None."""
        return self.direction_attribute()

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "origin": None if self.origin is None else self.origin.to_dict(),
            "session_name": None if self.session_name is None else _clean(self.session_name),
            "connection": None if self.connection is None else self.connection.to_dict(),
            "bandwidths": [
                {"type": _clean(b.bwtype), "bandwidth": b.bandwidth} for b in self.bandwidths
            ],
            "times": [{"start": t.start, "stop": t.stop} for t in self.times],
            "attributes": self._attributes_dict(),
            "media": [m.to_dict() for m in self.media],
            "problems": [_clean(p) for p in self.problems],
        }

    def to_text(self, eol: str = "\r\n") -> str:
        """The description in RFC 8866 §5 line order.  ``a=`` lines come from ``attributes``
        (rtpmap, fmtp, candidates ... are views of them and are not written separately)."""
        out = [f"v={self.version}"]
        if self.origin is not None:
            o = self.origin
            fields = (o.username, o.session_id, o.session_version, o.nettype, o.addrtype, o.address)
            out.append("o=" + " ".join(fields))
        out.append(f"s={self.session_name if self.session_name is not None else '-'}")
        if self.information is not None:
            out.append(f"i={self.information}")
        out += [f"{t}={v}" for t, v in self.other_lines if t in "uep"]
        if self.connection is not None:
            out.append(_connection_line(self.connection))
        out += [f"b={b.bwtype}:{b.bandwidth}" for b in self.bandwidths]
        for t in self.times or [Timing(0, 0)]:
            out.append(f"t={t.start} {t.stop}")
            out += [f"r={r}" for r in t.repeats]
        out += [f"{t}={v}" for t, v in self.other_lines if t not in "uep"]
        out += [f"a={k}" if v is None else f"a={k}:{v}" for k, v in self.attributes]
        for m in self.media:
            out += m.to_lines()
        return eol.join(out) + eol

    def to_bytes(self, eol: str = "\r\n") -> bytes:
        return self.to_text(eol).encode("utf-8", "surrogateescape")


def _connection_line(c: Connection) -> str:
    addr = c.address
    if c.ttl is not None:
        addr += f"/{c.ttl}"
    if c.count is not None:
        addr += f"/{c.count}"
    return f"c={c.nettype} {c.addrtype} {addr}"


def _parse_connection(value: str, offset: int) -> Connection:
    # RFC 8866 §5.7: c=<nettype> <addrtype> <connection-address>; multicast IP4 addresses
    # carry /ttl[/count], IP6 ones /count.
    parts = value.split()
    if len(parts) != 3:
        raise ParseError(f"bad c= line {value[:60]!r}", offset=offset)
    nettype, addrtype, address = parts
    ttl = count = None
    if "/" in address:
        pieces = address.split("/")
        address = pieces[0]
        numbers = [_int(p) for p in pieces[1:]]
        if not address or len(numbers) > 2 or any(x is None for x in numbers):
            raise ParseError(f"bad c= address {parts[2][:60]!r}", offset=offset)
        if addrtype.upper() == "IP6":
            if len(numbers) != 1:
                raise ParseError(f"bad c= address {parts[2][:60]!r}", offset=offset)
            count = numbers[0]
        else:
            ttl = numbers[0]
            count = numbers[1] if len(numbers) == 2 else None
    return Connection(nettype, addrtype, address, ttl, count)


def _parse_media(value: str, offset: int) -> MediaDescription:
    # RFC 8866 §5.14: m=<media> <port>[/<number of ports>] <proto> <fmt> ...
    parts = value.split()
    if len(parts) < 3:
        raise ParseError(f"bad m= line {value[:60]!r}", offset=offset)
    port_text, slash, count_text = parts[1].partition("/")
    port = _int(port_text)
    if port is None or port > 65535:
        raise ParseError(f"bad m= port {parts[1][:20]!r}", offset=offset)
    count: int | None = None
    if slash:
        count = _int(count_text)
        if count is None:
            raise ParseError(f"bad m= port count {parts[1][:20]!r}", offset=offset)
    return MediaDescription(parts[0], port, count, parts[2], parts[3:])


def _parse_rtpmap(value: str) -> tuple[str, RtpMap] | None:
    pt_text, _, rest = value.partition(" ")
    pt = _int(pt_text)
    rest = rest.strip()
    if pt is None or pt > 127 or not rest:
        return None
    pieces = rest.split("/")
    if len(pieces) > 3 or not pieces[0]:
        return None
    clock = channels = None
    if len(pieces) > 1:
        clock = _int(pieces[1])
        if clock is None:
            return None
    if len(pieces) > 2:
        channels = _int(pieces[2])
        if channels is None:
            return None
    return pt_text, RtpMap(pt, pieces[0], clock, channels)


def _parse_candidate(value: str) -> IceCandidate | None:
    # RFC 8839 §5.1: foundation SP component-id SP transport SP priority SP
    # connection-address SP port SP "typ" SP cand-type [raddr] [rport] *(SP ext-name SP ext-value)
    parts = value.split()
    if len(parts) < 8 or parts[6] != "typ":
        return None
    component = _int(parts[1])
    priority = _int(parts[3])
    port = _int(parts[5])
    if component is None or priority is None or port is None or port > 65535:
        return None
    cand = IceCandidate(parts[0], component, parts[2], priority, parts[4], port, parts[7])
    rest = parts[8:]
    if len(rest) % 2:
        return None
    for i in range(0, len(rest), 2):
        key, val = rest[i], rest[i + 1]
        if key == "raddr" and cand.raddr is None:
            cand.raddr = val
        elif key == "rport" and cand.rport is None:
            cand.rport = _int(val)
            if cand.rport is None:
                return None
        else:
            cand.extensions.setdefault(key, val)
    return cand


def parse_sdp(data: bytes | str) -> SessionDescription:
    """Parse an SDP session description (see the module docstring for the rules)."""
    if isinstance(data, str):
        is_bytes = False
        text = data
    else:
        is_bytes = True
        text = bytes(data).decode("utf-8", "surrogateescape")
    lines = text.split("\n")
    sdp = SessionDescription()
    media: MediaDescription | None = None
    attrs = sdp.attributes
    pos = 0
    seen_version = False
    empty_at: int | None = None

    # Byte offsets for bytes input.  Equal to character offsets for ASCII text; otherwise
    # counted incrementally (offsets are asked for in increasing order) to stay linear.
    mark = [0, 0]  # [character offset, byte offset]
    exact = not is_bytes or text.isascii()

    def where(char_pos: int) -> int:
        if exact:
            return char_pos
        if char_pos < mark[0]:
            mark[0] = mark[1] = 0
        mark[1] += len(text[mark[0] : char_pos].encode("utf-8", "surrogateescape"))
        mark[0] = char_pos
        return mark[1]

    for line in lines:
        line_pos = pos
        pos += len(line) + 1
        if line.endswith("\r"):
            line = line[:-1]
        if not line:
            if empty_at is None:
                empty_at = line_pos
            continue
        if empty_at is not None:
            # RFC 8866 §5 has no empty lines; one at the very end is normal in a SIP body.
            sdp.problems.append(f"byte {where(empty_at)}: empty line")
            empty_at = None
        kind = line[0]
        if len(line) < 2 or line[1] != "=" or not (kind.isascii() and kind.isalpha()):
            raise ParseError(
                f"SDP line not of the form x=value: {line[:40]!r}", offset=where(line_pos)
            )
        value = line[2:]
        if not seen_version:
            if kind != "v":
                raise ParseError("SDP does not start with v=", offset=where(line_pos))
            version = _int(value.strip())
            if version is None:
                raise ParseError(f"bad v= {value[:20]!r}", offset=where(line_pos))
            sdp.version = version
            seen_version = True
            continue
        if kind == "a":
            name, colon, attr_value = value.partition(":")
            attr: tuple[str, str | None] = (name, attr_value if colon else None)
            attrs.append(attr)
            if media is not None:
                _media_attribute(media, name, attr_value if colon else None, sdp, where(line_pos))
        elif kind == "m":
            media = _parse_media(value, where(line_pos))
            media.session_connection = sdp.connection
            sdp.media.append(media)
            attrs = media.attributes
        elif kind == "c":
            conn = _parse_connection(value, where(line_pos))
            if media is None:
                sdp.connection = conn
            else:
                media.connection = conn
        elif kind == "b":
            bwtype, colon, amount = value.partition(":")
            bandwidth = _int(amount.strip())
            if not colon or not bwtype or bandwidth is None:
                raise ParseError(f"bad b= line {value[:40]!r}", offset=where(line_pos))
            (sdp.bandwidths if media is None else media.bandwidths).append(
                Bandwidth(bwtype, bandwidth)
            )
        elif kind == "o" and media is None:
            parts = value.split()
            if len(parts) != 6:
                raise ParseError(f"bad o= line {value[:60]!r}", offset=where(line_pos))
            sdp.origin = Origin(*parts)
        elif kind == "s" and media is None:
            sdp.session_name = value
        elif kind == "i":
            if media is None:
                sdp.information = value
            else:
                media.information = value
        elif kind == "t" and media is None:
            parts = value.split()
            start = _int(parts[0]) if len(parts) == 2 else None
            stop = _int(parts[1]) if len(parts) == 2 else None
            if start is None or stop is None:
                raise ParseError(f"bad t= line {value[:40]!r}", offset=where(line_pos))
            sdp.times.append(Timing(start, stop))
        elif kind == "r" and media is None and sdp.times:
            sdp.times[-1].repeats.append(value)
        elif kind == "v":
            raise ParseError("second v= line", offset=where(line_pos))
        elif media is None:
            sdp.other_lines.append((kind, value))
        else:
            media.other_lines.append((kind, value))

    if not seen_version:
        raise ParseError("SDP without v= line", offset=0)
    session_direction = sdp.direction or "sendrecv"
    for m in sdp.media:
        m.direction = m.direction_attribute() or session_direction
    return sdp


def _media_attribute(
    media: MediaDescription, name: str, value: str | None, sdp: SessionDescription, offset: int
) -> None:
    if name == "rtpmap":
        parsed = _parse_rtpmap(value or "")
        if parsed is None:
            sdp.problems.append(f"byte {offset}: bad a=rtpmap {value!r}")
        else:
            media.rtpmap.setdefault(parsed[0], parsed[1])
    elif name == "fmtp":
        fmt, _, params = (value or "").partition(" ")
        if not fmt:
            sdp.problems.append(f"byte {offset}: bad a=fmtp {value!r}")
        else:
            media.fmtp.setdefault(fmt, params.strip())
    elif name == "candidate":
        cand = _parse_candidate(value or "")
        if cand is None:
            sdp.problems.append(f"byte {offset}: bad a=candidate {value!r}")
        else:
            media.candidates.append(cand)
    elif name == "ptime":
        ptime = _int((value or "").strip())
        if ptime is None:
            sdp.problems.append(f"byte {offset}: bad a=ptime {value!r}")
        elif media.ptime is None:
            media.ptime = ptime
