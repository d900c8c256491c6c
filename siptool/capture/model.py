"""What the capture layer hands to the decode command: candidate messages and problems, and
what it hands a media analysis (``MediaSink``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "EARLIEST_TIME",
    "LATEST_TIME",
    "MediaSink",
    "Problem",
    "RawMessage",
    "TlsSession",
    "UndecodedStream",
    "WebSocketStream",
    "time_in_range",
]

# Epoch seconds that are a date: datetime's years 1 to 9999 (MINYEAR, MAXYEAR), in UTC.  The
# last second of 9999 is the bound, not the end of it: a float just below 253402300800 rounds
# to that instant when made a datetime, which is the year 10000.
EARLIEST_TIME = -62135596800.0
LATEST_TIME = 253402300799.0


def time_in_range(seconds: float) -> bool:
    """Whether ``seconds`` since the epoch can be shown as a date (and NaN cannot).

    A capture's clock says what its writer put there: pcapng's ``if_tsoffset`` is any signed
    64-bit count of seconds and ``if_tsresol`` any power of 10 or 2 (draft-ietf-opsawg-pcapng
    §4.2), so a damaged interface block can put a packet ten thousand years away.
    """
    return EARLIEST_TIME <= seconds <= LATEST_TIME


@dataclass(slots=True)
class RawMessage:
    """The bytes of exactly one SIP or STUN message, and where they came from.

    ``frame`` (1-based, tshark's frame.number), ``time`` (epoch seconds), ``src``/``dst``
    (``"ip:port"``, IPv6 in brackets) and ``transport`` (``"udp"``/``"tcp"``, ``"ws"`` for SIP
    read from WebSocket frames) are ``None`` for input that is not a capture.  ``frame`` and
    ``time`` are those of the packet that completed the message.  ``offset`` is the byte
    offset in the input where the message starts, or where the record of the packet that
    carried its first byte starts.  ``hex_block`` is True when the bytes were decoded from a
    hex dump: ``offset`` is then where the block starts in the text, and an offset inside
    ``data`` is not one in the input.  ``note`` is a finding about the way the message came,
    ``(code, text)``, for ``--lint`` (a WebSocket upgrade that did not name the ``sip``
    subprotocol).
    """

    protocol: str
    data: bytes
    frame: int | None
    time: float | None
    src: str | None
    dst: str | None
    transport: str | None
    offset: int
    hex_block: bool = False
    note: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class UndecodedStream:
    """A TCP direction decode could not read: ``protocol`` "tls" (``sni``: the server name
    its ClientHello asked for) or "tcp" (neither SIP, STUN nor TLS), and its size."""

    protocol: str
    src: str
    dst: str
    bytes: int
    sni: str | None

    def to_dict(self) -> dict[str, object]:
        return {
            "protocol": self.protocol,
            "transport": "tcp",
            "src": self.src,
            "dst": self.dst,
            "bytes": self.bytes,
            "sni": self.sni,
        }


@dataclass(slots=True)
class WebSocketStream:
    """One direction of a TCP connection read as SIP over WebSocket (RFC 7118), for decode's
    summary: ``role`` "client" (its GET was captured), "server" (its 101) or None (the capture
    began after the upgrade); ``subprotocols`` its ``Sec-WebSocket-Protocol`` values (None
    without the upgrade); the SIP messages and faults found; its close frame, if any (RFC 6455
    §5.5.1: the packet, status code and reason)."""

    src: str
    dst: str
    role: str | None
    subprotocols: tuple[str, ...] | None
    messages: int = 0
    problems: int = 0
    close_frame: int | None = None
    close_code: int | None = None
    close_reason: str | None = None
    secure: bool = False  # inside TLS (wss), decrypted with decode's --tls-keylog

    def to_dict(self) -> dict[str, object]:
        close = None
        if self.close_frame is not None:
            close = {
                "frame": self.close_frame,
                "code": self.close_code,
                "reason": self.close_reason,
            }
        return {
            "src": self.src,
            "dst": self.dst,
            "transport": "wss" if self.secure else "ws",
            "role": self.role,
            "subprotocols": None if self.subprotocols is None else list(self.subprotocols),
            "messages": self.messages,
            "problems": self.problems,
            "close": close,
        }


@dataclass(slots=True)
class TlsSession:
    """One TLS connection in a capture, for decode's summary: who, which version and suite
    its ServerHello chose, whether decode decrypted it (``--tls-keylog``, ``capture.tls_decrypt``)
    and, when not, why (no key log, no key for its client random, a suite decode does not
    decrypt, the handshake not captured)."""

    client: str
    server: str
    sni: str | None = None
    version: str | None = None  # "TLS 1.2", "TLS 1.3"
    cipher_suite: str | None = None  # the IANA name, or "0xC0FF"
    decrypted: bool = False
    reason: str | None = None
    records: int = 0  # application data records decrypted, both directions

    def to_dict(self) -> dict[str, object]:
        return {
            "client": self.client,
            "server": self.server,
            "sni": self.sni,
            "version": self.version,
            "cipher_suite": self.cipher_suite,
            "decrypted": self.decrypted,
            "reason": self.reason,
            "records": self.records,
        }


@dataclass(slots=True)
class Problem:
    """Something in the input that could not be turned into a message; one line for a person.

    ``where`` locates it (``"packet 57"``, ``"byte 1234"``, ``"packet 57, byte 1234"``).
    ``fatal`` means nothing after it could be read.
    """

    where: str
    message: str
    fatal: bool = False

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class MediaSink(Protocol):
    """Where ``PacketExtractor(media=...)`` sends each UDP payload that is neither SIP nor STUN
    (``siptool.media.rtp.RtpTracker`` is one).

    ``key`` is the source address, the destination address (4 or 16 bytes each) and the source
    and destination ports (2 bytes each, network order); the payload is ``buf[p:end]``, left
    in place so that a packet that is not media costs no copy.  ``time`` is the capture time
    (None for a hex dump), ``frame`` the packet's 1-based number.  True when the sink took
    the datagram as media.
    """

    def datagram(
        self, key: bytes, buf: bytes, p: int, end: int, time: float | None, frame: int
    ) -> bool: ...
