"""TURN (RFC 8656) for a client that tests a relay, sans I/O.

Pure: no sockets, no clock (times come in as integers of nanoseconds).  What a TURN client
sends (the attributes of Allocate, Refresh, CreatePermission and ChannelBind; Send
indications; ChannelData), what it reads from the answers (the allocation, Data
indications, ChannelData), the error codes named with what to do, and the relay test: the
probe payloads and the figures (loss, round trip, RFC 3550 jitter) computed from them.
Credentials are ``siptool.stun.turn_auth``'s; the STUN codec ``siptool.stun.message``'s.

The flow (RFC 8656 §7-12): Allocate (REQUESTED-TRANSPORT) gives the relayed transport
address(es) (XOR-RELAYED-ADDRESS) and a lifetime; CreatePermission installs a permission per
peer IP (§9: ports do not count) for 300 s; Send indications carry data to a peer and Data
indications bring it back; ChannelBind binds a channel number 0x4000-0x4FFF to a peer for
600 s, after which ChannelData (a 4-byte header instead of a 36-byte STUN one) does the same;
Refresh with LIFETIME 0 frees the allocation.

TCP relaying (RFC 6062): Allocate with REQUESTED-TRANSPORT 6 over a TCP or TLS control
connection (§4.1) gives a relayed TCP address; Connect (§4.3) with XOR-PEER-ADDRESS has the
server connect to the peer and answers with a CONNECTION-ID; a peer that connects to the
relayed address is announced by a ConnectionAttempt indication (§4.4) with a CONNECTION-ID and
XOR-PEER-ADDRESS.  Either way the client opens a new data connection to the server and sends
ConnectionBind (§4.3, §4.4) with that CONNECTION-ID; after its success response the data
connection carries the peer's bytes, raw.

Decisions:

* A probe payload is ``PROBE_MAGIC``, the test (indication or channel), the sequence number
  and a send time (ns), padded with zeros to ``--size``: a peer that echoes it sends it back
  unchanged; siptool's own peer writes its own send time over the client's, so that the
  client measures the one-way transit back (the clocks are the same process's).
* Jitter is RFC 3550 §6.4.1's interarrival jitter (J += (|D| - J) / 16, in arrival order) on
  the transit times ``arrival - send time`` of the payloads: one-way when both ends share a
  clock (siptool's own peer), the round trip's when the echo keeps the client's time.
* ChannelData over UDP need not be padded (RFC 8656 §12.5), so bytes after the announced
  length are ignored; a length longer than the datagram (a lying length) is a ``ParseError``
  and the frame is dropped, as is a channel number outside 0x4000-0x4FFF (§12.4).
* A Data indication without XOR-PEER-ADDRESS or DATA is a ``ParseError`` (§11.4: discarded).
* --dual-relay sends ADDITIONAL-ADDRESS-FAMILY twice: under RFC 8656's number 0x8000 and
  under 0x8032, the number coturn 4.6 uses.  Both are comprehension-optional, so a server
  ignores the one it does not know.
* XOR-PEER-ADDRESS in CreatePermission carries port 0: permissions are by IP only (§9).
* On a TCP relay's data connection the probes are a byte stream: ``ProbeStream`` cuts it
  back into payloads of the one --size both ends use (TCP keeps the order and the bytes, so
  no other framing is needed), and a chunk that is no probe of ours is counted, not read.
* A Connect success or ConnectionAttempt without CONNECTION-ID (or, for ConnectionAttempt,
  XOR-PEER-ADDRESS) is a ``ParseError``: RFC 6062 §6.2.1 requires them.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

from siptool.addr import split_address
from siptool.errors import ParseError
from siptool.stun.framing import channel_data_size, padded
from siptool.stun.message import (
    ADDITIONAL_ADDRESS_FAMILY,
    ADDITIONAL_ADDRESS_FAMILY_OLD,
    ADDRESS_ERROR_CODE,
    CHANNEL_NUMBER,
    CONNECTION_ID,
    DATA,
    LIFETIME,
    REQUESTED_ADDRESS_FAMILY,
    REQUESTED_TRANSPORT,
    XOR_PEER_ADDRESS,
    XOR_RELAYED_ADDRESS,
    StunMessage,
    encode_address_family,
    encode_xor_address,
)

__all__ = [
    "CHANNEL_FIRST",
    "CHANNEL_LAST",
    "CHANNEL_LIFETIME",
    "DEFAULT_LIFETIME",
    "PERMISSION_LIFETIME",
    "PROBE_HEADER",
    "TRANSPORT_TCP",
    "TRANSPORT_UDP",
    "TURN_ERRORS",
    "Allocation",
    "Probe",
    "ProbeStream",
    "RelayFigures",
    "RelayTally",
    "allocate_attributes",
    "channel_bind_attributes",
    "connect_attributes",
    "connection_bind_attributes",
    "encode_channel_data",
    "error_for",
    "parse_channel_data",
    "permission_attributes",
    "probe_payload",
    "read_allocation",
    "read_connection_attempt",
    "read_connection_id",
    "read_data_indication",
    "read_probe",
    "refresh_attributes",
    "restamp",
    "send_attributes",
    "stream_channel_data",
]

TRANSPORT_UDP = 17  # RFC 8656 §18.7: IANA protocol numbers
TRANSPORT_TCP = 6  # RFC 6062 §6.1
CHANNEL_FIRST, CHANNEL_LAST = 0x4000, 0x4FFF  # RFC 8656 §12
DEFAULT_LIFETIME = 600  # RFC 8656 §3.2: an allocation lives 10 minutes unless refreshed
PERMISSION_LIFETIME = 300  # §9
CHANNEL_LIFETIME = 600  # §12
_CHANNEL_HEADER = 4

# ERROR-CODE -> (JSON error code, what it means and what to do).  RFC 8656 §6.3, §7.2, §19;
# RFC 8489 §14.8; RFC 6062 §6.3.
TURN_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "the server found the request malformed"),
    401: ("auth_required", "credentials needed or refused"),
    403: (
        "forbidden",
        "the server's policy forbids it (a user or peer address not allowed: allowed-peer-ip / "
        "denied-peer-ip, or relaying to itself)",
    ),
    420: ("unknown_attribute", "the server does not understand a comprehension-required attribute"),
    437: (
        "allocation_mismatch",
        "an allocation already exists for this client address and port (or none does, for a "
        "Refresh): wait for it to expire, or use another --local-port",
    ),
    438: ("stale_nonce", "the nonce expired"),
    440: (
        "address_family",
        "the server cannot relay that address family: drop --ipv6-relay/--dual-relay, or "
        "enable IPv6 relaying on the server",
    ),
    441: ("wrong_credentials", "the credentials differ from the ones that made the allocation"),
    442: (
        "unsupported_transport",
        "the server does not relay that transport (REQUESTED-TRANSPORT); for "
        "--peer-transport tcp it needs RFC 6062 support",
    ),
    443: ("address_family", "the peer's address family differs from the relayed address's"),
    446: ("connection_exists", "a connection to that peer already exists (RFC 6062)"),
    447: ("connection_failed", "the server could not connect to the peer (RFC 6062)"),
    486: (
        "quota",
        "this user has as many allocations as the server allows; free some (they expire "
        "after their lifetime) or raise the server's user-quota",
    ),
    500: ("server_error", "the server failed"),
    508: (
        "capacity",
        "the server has no relay port left; widen its min-port/max-port range or try later",
    ),
}


def error_for(status: int | None, reason: str, what: str) -> tuple[str, str]:
    """The JSON error code and message for an error response to ``what`` ("Allocate")."""
    if status is None:
        return "error_response", f"{what}: an error response without ERROR-CODE"
    code, meaning = TURN_ERRORS.get(status, ("error_response", ""))
    tail = f": {meaning}" if meaning else ""
    return code, f"{what}: {status} {reason}{tail}"


# ------------------------------------------------------------------------------- requests


def allocate_attributes(
    *, tcp: bool = False, lifetime: int | None = None, ipv6: bool = False, dual: bool = False
) -> list[tuple[int, bytes]]:
    """Allocate (RFC 8656 §7.1): REQUESTED-TRANSPORT, LIFETIME, and REQUESTED-ADDRESS-FAMILY
    IPv6 (``ipv6``) or ADDITIONAL-ADDRESS-FAMILY IPv6 for an IPv4 and an IPv6 relay
    (``dual``; §7.1 forbids sending both)."""
    protocol = TRANSPORT_TCP if tcp else TRANSPORT_UDP
    out = [(REQUESTED_TRANSPORT, bytes((protocol, 0, 0, 0)))]
    if lifetime is not None:
        out.append((LIFETIME, lifetime.to_bytes(4, "big")))
    if ipv6:
        out.append((REQUESTED_ADDRESS_FAMILY, encode_address_family(True)))
    elif dual:
        out.append((ADDITIONAL_ADDRESS_FAMILY, encode_address_family(True)))
        out.append((ADDITIONAL_ADDRESS_FAMILY_OLD, encode_address_family(True)))
    return out


def refresh_attributes(lifetime: int | None) -> list[tuple[int, bytes]]:
    """Refresh (§8): LIFETIME (0 frees the allocation); none asks for the default."""
    return [] if lifetime is None else [(LIFETIME, lifetime.to_bytes(4, "big"))]


def permission_attributes(peer_ips: list[str], tid: bytes) -> list[tuple[int, bytes]]:
    """CreatePermission (§10): one XOR-PEER-ADDRESS per IP, port 0 (see the module docs)."""
    return [(XOR_PEER_ADDRESS, encode_xor_address(ip, 0, tid)) for ip in peer_ips]


def channel_bind_attributes(channel: int, peer: str, tid: bytes) -> list[tuple[int, bytes]]:
    """ChannelBind (§12.1): CHANNEL-NUMBER and the peer's XOR-PEER-ADDRESS ("ip:port")."""
    if not CHANNEL_FIRST <= channel <= CHANNEL_LAST:
        raise ValueError(f"channel 0x{channel:04X} is outside 0x4000-0x4FFF")
    ip, port = split_address(peer)
    return [
        (CHANNEL_NUMBER, channel.to_bytes(2, "big") + b"\0\0"),
        (XOR_PEER_ADDRESS, encode_xor_address(ip, port, tid)),
    ]


def send_attributes(peer: str, data: bytes, tid: bytes) -> list[tuple[int, bytes]]:
    """A Send indication (§11.1): XOR-PEER-ADDRESS and DATA."""
    ip, port = split_address(peer)
    return [(XOR_PEER_ADDRESS, encode_xor_address(ip, port, tid)), (DATA, data)]


def connect_attributes(peer: str, tid: bytes) -> list[tuple[int, bytes]]:
    """Connect (RFC 6062 §4.3): the peer's XOR-PEER-ADDRESS ("ip:port")."""
    ip, port = split_address(peer)
    return [(XOR_PEER_ADDRESS, encode_xor_address(ip, port, tid))]


def connection_bind_attributes(connection_id: int) -> list[tuple[int, bytes]]:
    """ConnectionBind (RFC 6062 §4.3, §4.4): the CONNECTION-ID of the peer's connection."""
    return [(CONNECTION_ID, connection_id.to_bytes(4, "big"))]


# -------------------------------------------------------------------------------- answers


@dataclass
class Allocation:
    """What an Allocate success response says (§7.3)."""

    relayed: list[str]
    mapped: str | None
    lifetime: int | None
    software: str | None
    address_errors: list[str] = field(default_factory=list)  # ADDRESS-ERROR-CODE (dual)


def read_allocation(message: StunMessage) -> Allocation:
    """The allocation; ``ParseError`` when XOR-RELAYED-ADDRESS is missing (§7.3 requires it)."""
    relayed = [
        a.value
        for a in message.attributes
        if a.type == XOR_RELAYED_ADDRESS and isinstance(a.value, str)
    ]
    if not relayed:
        raise ParseError("the Allocate success response has no XOR-RELAYED-ADDRESS (RFC 8656 §7.3)")
    errors = []
    for attribute in message.attributes:
        if attribute.type == ADDRESS_ERROR_CODE and isinstance(attribute.value, dict):
            v = attribute.value
            errors.append(f"{v.get('family')}: {v.get('code')} {v.get('reason')}")
    return Allocation(
        relayed=relayed,
        mapped=message.xor_mapped_address,
        lifetime=read_lifetime(message),
        software=message.software,
        address_errors=errors,
    )


def read_lifetime(message: StunMessage) -> int | None:
    attribute = message.attribute(LIFETIME)
    return attribute.value if attribute is not None and isinstance(attribute.value, int) else None


def read_data_indication(message: StunMessage) -> tuple[str, bytes]:
    """A Data indication's peer ("ip:port") and data; ``ParseError`` without either (§11.4)."""
    peer = message.attribute(XOR_PEER_ADDRESS)
    data = message.attribute(DATA)
    if peer is None or not isinstance(peer.value, str) or data is None:
        raise ParseError("Data indication without XOR-PEER-ADDRESS or DATA (RFC 8656 §11.4)")
    return peer.value, data.raw


def read_connection_id(message: StunMessage) -> int:
    """The CONNECTION-ID of a Connect success response; ``ParseError`` without it."""
    attribute = message.attribute(CONNECTION_ID)
    if attribute is None or not isinstance(attribute.value, int):
        raise ParseError(f"{message.method_name} without CONNECTION-ID (RFC 6062 §6.2.1)")
    return attribute.value


def read_connection_attempt(message: StunMessage) -> tuple[int, str]:
    """A ConnectionAttempt indication's CONNECTION-ID and peer ("ip:port"); ``ParseError``
    without either (RFC 6062 §4.4)."""
    peer = message.attribute(XOR_PEER_ADDRESS)
    if peer is None or not isinstance(peer.value, str):
        raise ParseError("ConnectionAttempt without XOR-PEER-ADDRESS (RFC 6062 §4.4)")
    return read_connection_id(message), peer.value


def encode_channel_data(channel: int, data: bytes, *, stream: bool = False) -> bytes:
    """A ChannelData message (§12.4); on a stream (TCP/TLS) padded to 4 bytes (§12.5)."""
    if not CHANNEL_FIRST <= channel <= CHANNEL_LAST:
        raise ValueError(f"channel 0x{channel:04X} is outside 0x4000-0x4FFF")
    if len(data) > 0xFFFF:
        raise ValueError(f"ChannelData of {len(data)} bytes does not fit the 16-bit length")
    frame = struct.pack("!HH", channel, len(data)) + data
    return frame + bytes(padded(len(data)) - len(data)) if stream else frame


def parse_channel_data(buf: bytes) -> tuple[int, bytes]:
    """(channel, data) of one ChannelData message; ``ParseError`` for a short header, a
    length longer than what is there, or a channel number outside the range."""
    if len(buf) < _CHANNEL_HEADER:
        raise ParseError(f"ChannelData of {len(buf)} bytes: shorter than its header", offset=0)
    channel, length = struct.unpack_from("!HH", buf)
    if not CHANNEL_FIRST <= channel <= CHANNEL_LAST:
        raise ParseError(f"ChannelData on channel 0x{channel:04X}, outside 0x4000-0x4FFF", offset=0)
    if _CHANNEL_HEADER + length > len(buf):
        raise ParseError(
            f"ChannelData length {length} is longer than the {len(buf) - 4} bytes after its header",
            offset=2,
        )
    return channel, bytes(buf[_CHANNEL_HEADER : _CHANNEL_HEADER + length])


def stream_channel_data(buf: bytes | bytearray) -> int | None:
    """Size on a stream of the ChannelData frame starting ``buf`` once all of it is there
    (§12.5: padded to 4); None while it is incomplete."""
    if len(buf) < _CHANNEL_HEADER:
        return None
    size = channel_data_size(buf)
    return size if len(buf) >= size else None


# ----------------------------------------------------------------------------- the probes

PROBE_MAGIC = b"\xf5TRN"  # a first byte neither STUN nor ChannelData (RFC 7983)
_PROBE = struct.Struct("!4sB3xIq")  # magic, test, 3 reserved, sequence, send time (ns)
PROBE_HEADER = _PROBE.size  # 20: the least --size


@dataclass(frozen=True)
class Probe:
    test: int
    seq: int
    stamp_ns: int


def probe_payload(test: int, seq: int, stamp_ns: int, size: int) -> bytes:
    """A payload of ``size`` bytes (at least ``PROBE_HEADER``) for test ``test``."""
    header = _PROBE.pack(PROBE_MAGIC, test, seq, stamp_ns)
    return header + bytes(max(0, size - len(header)))


def read_probe(data: bytes) -> Probe | None:
    """The probe in ``data``; None when it is not one of ours."""
    if len(data) < PROBE_HEADER or not data.startswith(PROBE_MAGIC):
        return None
    _, test, seq, stamp = _PROBE.unpack_from(data)
    return Probe(test, seq, stamp)


class ProbeStream:
    """Probes of ``size`` bytes cut back out of a byte stream (see the module docs)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.buffer = bytearray()
        self.strangers = 0  # chunks of ``size`` bytes that were not our probes

    def feed(self, data: bytes) -> list[bytes]:
        """The complete payloads ``data`` finished, in order."""
        self.buffer += data
        out = []
        while len(self.buffer) >= self.size:
            chunk = bytes(self.buffer[: self.size])
            del self.buffer[: self.size]
            if read_probe(chunk) is None:
                self.strangers += 1
                continue
            out.append(chunk)
        return out


def restamp(data: bytes, stamp_ns: int) -> bytes:
    """The probe with ``stamp_ns`` as its send time (the echoing peer's)."""
    return data[:12] + struct.pack("!q", stamp_ns) + data[PROBE_HEADER:]


# ---------------------------------------------------------------------------- the figures


@dataclass(frozen=True)
class RelayFigures:
    """One test's figures, as the JSON's ``relay_tests.indication``/``channel``."""

    sent: int
    received: int
    peer_received: int | None
    rtt_min_ms: float | None
    rtt_avg_ms: float | None
    rtt_max_ms: float | None
    jitter_ms: float | None
    jitter_to_peer_ms: float | None
    duplicates: int = 0

    @property
    def loss_pct(self) -> float | None:
        if not self.sent:
            return None
        return round(100.0 * (self.sent - self.received) / self.sent, 1)

    def to_dict(self) -> dict[str, object]:
        return {
            "sent": self.sent,
            "received": self.received,
            "loss_pct": self.loss_pct,
            "rtt_min_ms": self.rtt_min_ms,
            "rtt_avg_ms": self.rtt_avg_ms,
            "rtt_max_ms": self.rtt_max_ms,
            "jitter_ms": self.jitter_ms,
            "peer_received": self.peer_received,
            "jitter_to_peer_ms": self.jitter_to_peer_ms,
            "duplicates": self.duplicates,
        }


class _Jitter:
    """RFC 3550 §6.4.1 interarrival jitter, in nanoseconds."""

    def __init__(self) -> None:
        self.value = 0.0
        self.last: int | None = None
        self.count = 0

    def add(self, transit_ns: int) -> None:
        if self.last is not None:
            self.value += (abs(transit_ns - self.last) - self.value) / 16
        self.last = transit_ns
        self.count += 1

    def ms(self) -> float | None:
        return round(self.value / 1e6, 3) if self.count > 1 else None


class RelayTally:
    """One test's sends and arrivals; ``figures()`` sums them up."""

    def __init__(self, expected: int, *, own_peer: bool) -> None:
        self.expected = expected  # probes that will be sent
        self.own_peer = own_peer  # siptool's own peer socket: it sees what reaches it
        self.sent_at: dict[int, int] = {}
        self.rtts_ns: dict[int, int] = {}
        self.peer_seen: set[int] = set()
        self.duplicates = 0
        self._back = _Jitter()
        self._out = _Jitter()

    def sent(self, seq: int, at_ns: int) -> None:
        self.sent_at[seq] = at_ns

    def at_peer(self, probe: Probe, arrived_ns: int) -> None:
        """The probe reached siptool's own peer (one-way, the same clock)."""
        if probe.seq in self.peer_seen or probe.seq not in self.sent_at:
            return
        self.peer_seen.add(probe.seq)
        self._out.add(arrived_ns - probe.stamp_ns)

    def echoed(self, probe: Probe, arrived_ns: int) -> bool:
        """The echo came back to the client; False for a duplicate or a stranger."""
        sent = self.sent_at.get(probe.seq)
        if sent is None:
            return False
        if probe.seq in self.rtts_ns:
            self.duplicates += 1
            return False
        self.rtts_ns[probe.seq] = arrived_ns - sent
        self._back.add(arrived_ns - probe.stamp_ns)
        return True

    @property
    def complete(self) -> bool:
        """Every probe expected came back (those not yet sent count as missing)."""
        return len(self.rtts_ns) >= self.expected

    def figures(self) -> RelayFigures:
        rtts = [r / 1e6 for r in self.rtts_ns.values()]
        return RelayFigures(
            sent=len(self.sent_at),
            received=len(self.rtts_ns),
            peer_received=len(self.peer_seen) if self.own_peer else None,
            rtt_min_ms=round(min(rtts), 3) if rtts else None,
            rtt_avg_ms=round(math.fsum(rtts) / len(rtts), 3) if rtts else None,
            rtt_max_ms=round(max(rtts), 3) if rtts else None,
            jitter_ms=self._back.ms(),
            jitter_to_peer_ms=self._out.ms(),
            duplicates=self.duplicates,
        )
