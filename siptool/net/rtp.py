"""RTP for the media check of a test call (RFC 3550, RFC 3551 PCMU/PCMA at 8000 Hz).

``RtpSession.open`` binds the UDP socket whose port the SDP offer announces, before the INVITE
goes out.  Once the call is answered, ``start`` sends one 20 ms packet of silence every 20 ms
to the answer's media address; everything that arrives on the socket is counted per SSRC.  A
peer that echoes (SIPp ``-rtp_echo``) sends our own packets back, so loss is measured against
what we sent; a peer that talks sends its own stream, whose loss is measured from its sequence
numbers (RFC 3550 §6.4.1, A.3).  Interarrival jitter is the RFC 3550 §6.4.1 estimator (A.8).

The header codec and the statistics are pure functions and classes; only ``RtpSession``
touches asyncio.  Sending stops at ``stop()`` or after the ``duration`` given to ``start``,
whichever comes first, so a forgotten session cannot run on.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import secrets
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from siptool.addr import family_of, format_address
from siptool.errors import LocalBindError
from siptool.net.pcap_tap import current_tap

__all__ = [
    "PACKET_INTERVAL",
    "SAMPLES_PER_PACKET",
    "JitterEstimator",
    "RtpHeader",
    "RtpSession",
    "RtpStats",
    "RtpVerdict",
    "build_packet",
    "parse_header",
]

CLOCK_RATE = 8000  # RFC 3551 §4.5.14: PCMU and PCMA
PACKET_INTERVAL = 0.020  # 20 ms, RFC 3551 §4.2 default packetisation
SAMPLES_PER_PACKET = int(CLOCK_RATE * PACKET_INTERVAL)  # 160
# Silence: G.711 mu-law encodes zero as 0xFF, A-law as 0xD5.
SILENCE = {0: 0xFF, 8: 0xD5}

_HEADER = struct.Struct("!BBHII")


@dataclass(frozen=True, slots=True)
class RtpHeader:
    payload_type: int
    marker: bool
    seq: int
    timestamp: int
    ssrc: int


def build_packet(
    seq: int, timestamp: int, ssrc: int, payload_type: int, payload: bytes, marker: bool = False
) -> bytes:
    """RFC 3550 §5.1 fixed header (V=2, no padding, no extension, no CSRC) + payload."""
    first = 0x80  # V=2
    second = (0x80 if marker else 0) | (payload_type & 0x7F)
    return (
        _HEADER.pack(first, second, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc & 0xFFFFFFFF)
        + payload
    )


def parse_header(data: bytes) -> RtpHeader | None:
    """The fixed header, or None when ``data`` is not RTP version 2 (or is RTCP, RFC 5761)."""
    if len(data) < _HEADER.size:
        return None
    first, second, seq, timestamp, ssrc = _HEADER.unpack_from(data)
    if first >> 6 != 2:
        return None
    payload_type = second & 0x7F
    if 72 <= payload_type <= 76:
        return None  # RFC 5761 §4: RTCP SR/RR/SDES/BYE/APP multiplexed on the port
    csrc = first & 0x0F
    if len(data) < _HEADER.size + 4 * csrc:
        return None
    return RtpHeader(payload_type, bool(second & 0x80), seq, timestamp, ssrc)


class JitterEstimator:
    """RFC 3550 §6.4.1 interarrival jitter, computed as in its Appendix A.8."""

    def __init__(self, clock_rate: int = CLOCK_RATE) -> None:
        self.clock_rate = clock_rate
        self.jitter = 0.0  # in timestamp units
        self._transit: float | None = None

    def update(self, arrival: float, timestamp: int) -> None:
        """``arrival`` in seconds (any epoch), ``timestamp`` the packet's RTP timestamp."""
        transit = arrival * self.clock_rate - timestamp
        if self._transit is not None:
            d = abs(transit - self._transit)
            self.jitter += (d - self.jitter) / 16.0
        self._transit = transit

    @property
    def jitter_ms(self) -> float:
        return self.jitter * 1000.0 / self.clock_rate


@dataclass
class StreamStats:
    """One SSRC seen on the socket."""

    ssrc: int
    source: str
    received: int = 0
    seqs: set[int] = field(default_factory=set)
    first_seq: int | None = None
    cycles: int = 0
    max_seq: int = 0
    jitter: JitterEstimator = field(default_factory=JitterEstimator)

    def add(self, header: RtpHeader, arrival: float) -> None:
        self.received += 1
        if self.first_seq is None:
            self.first_seq = header.seq
            self.max_seq = header.seq
        else:
            # RFC 3550 A.1: a sequence number a little "below" zero after the maximum wraps.
            delta = (header.seq - self.max_seq) & 0xFFFF
            if 0 < delta < 0x8000:
                if header.seq < self.max_seq:
                    self.cycles += 0x10000
                self.max_seq = header.seq
        self.seqs.add(self.cycles + header.seq)
        self.jitter.update(arrival, header.timestamp)

    @property
    def expected(self) -> int:
        """RFC 3550 A.3: extended highest sequence number minus the first, plus one."""
        if self.first_seq is None:
            return 0
        return self.cycles + self.max_seq - self.first_seq + 1


class RtpVerdict(enum.StrEnum):
    """What came back of the audio we sent; the value is the JSON ``rtp.verdict``."""

    OK = "ok"
    NO_MEDIA_SENT = "no media sent"
    ONE_WAY = "one-way: nothing came back"


@dataclass
class RtpStats:
    """The ``rtp`` key of invite-test."""

    sent: int = 0
    received: int = 0
    loss_pct: float | None = None
    jitter_ms: float | None = None
    echoed: bool = False  # the packets that came back were our own (an echo peer)
    source: str | None = None  # where they came from
    remote: str | None = None  # where we sent to
    other_ssrcs: int = 0
    verdict: RtpVerdict = RtpVerdict.NO_MEDIA_SENT

    def to_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "received": self.received,
            "loss_pct": self.loss_pct,
            "jitter_ms": self.jitter_ms,
            "verdict": self.verdict.value,
            "echoed": self.echoed,
            "source": self.source,
            "remote": self.remote,
        }


def summarize(sent: int, own_ssrc: int, streams: dict[int, StreamStats]) -> RtpStats:
    """Pick the stream that answers ours and say what it means."""
    stats = RtpStats(sent=sent)
    own = streams.get(own_ssrc)
    others = [s for k, s in streams.items() if k != own_ssrc]
    primary = own if own is not None else max(others, key=lambda s: s.received, default=None)
    stats.other_ssrcs = len(others) - (0 if own is not None or primary is None else 1)
    if primary is not None:
        stats.received = primary.received
        stats.source = primary.source
        stats.echoed = primary is own
        stats.jitter_ms = round(primary.jitter.jitter_ms, 3)
        if primary is own:
            expected = sent
            unique = len(primary.seqs)
        else:
            expected = primary.expected
            unique = len(primary.seqs)
        if expected > 0:
            stats.loss_pct = round(max(0.0, 100.0 * (expected - unique) / expected), 1)
    elif sent:
        stats.loss_pct = 100.0
    if sent == 0:
        stats.verdict = RtpVerdict.NO_MEDIA_SENT
    elif stats.received == 0:
        stats.verdict = RtpVerdict.ONE_WAY
    else:
        stats.verdict = RtpVerdict.OK
    return stats


def _bound(family: int, host: str, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, session: RtpSession) -> None:
        self.session = session

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        session = self.session
        if session.tap is not None:
            session.tap.udp(session.local, addr, data, False)
        session._received(data, addr, time.monotonic())

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable for what we sent: the count of what came back says enough.
        self.session.send_errors += 1


class RtpSession:
    """One RTP socket: bound before the offer, sending after the answer."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.local: tuple[str, int] = sock.getsockname()[:2]
        self.ssrc = secrets.randbits(32)
        self.sent = 0
        self.send_errors = 0
        self.remote: tuple[str, int] | None = None
        self.streams: dict[int, StreamStats] = {}
        self.non_rtp = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._task: asyncio.Task[None] | None = None
        self.tap = current_tap()  # --pcap-out

    @classmethod
    async def open(cls, host: str, port: int = 0) -> RtpSession:
        """Bind a UDP socket on ``host``; an even port when ``port`` is 0 (RFC 3550 §11).
        ``LocalBindError`` when it cannot be bound."""
        family = family_of(host)
        odd: list[socket.socket] = []  # held open while looking, so they are not handed back
        try:
            sock = _bound(family, host, port)
            while port == 0 and sock.getsockname()[1] % 2 and len(odd) < 20:
                odd.append(sock)
                sock = _bound(family, host, 0)
        except OSError as exc:
            raise LocalBindError(
                f"cannot bind the RTP port {format_address(host, port)}: {exc.strerror}"
            ) from None
        finally:
            for extra in odd:
                extra.close()
        sock.setblocking(False)
        session = cls(sock)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(session), sock=sock)
        session._transport = transport
        return session

    @property
    def port(self) -> int:
        return self.local[1]

    def start(self, remote: tuple[str, int], duration: float, payload_type: int = 0) -> None:
        """Send 20 ms packets of silence to ``remote`` for at most ``duration`` seconds."""
        if self._task is not None:
            raise RuntimeError("RTP already started")
        self.remote = remote
        self._task = asyncio.get_running_loop().create_task(
            self._send_loop(remote, duration, payload_type)
        )

    async def _send_loop(self, remote: tuple[str, int], duration: float, pt: int) -> None:
        transport = self._transport
        assert transport is not None
        loop = asyncio.get_running_loop()
        payload = bytes([SILENCE.get(pt, 0xFF)]) * SAMPLES_PER_PACKET
        seq0 = secrets.randbits(16)
        ts0 = secrets.randbits(32)
        start = loop.time()
        count = max(1, int(duration / PACKET_INTERVAL))
        for n in range(count):
            packet = build_packet(
                seq0 + n, ts0 + n * SAMPLES_PER_PACKET, self.ssrc, pt, payload, marker=n == 0
            )
            try:
                transport.sendto(packet, remote)
            except OSError:
                self.send_errors += 1
            else:
                self.sent += 1
                if self.tap is not None:
                    self.tap.udp(self.local, remote, packet, True)
            # Paced from the start time, so a late wake-up does not stretch the stream.
            delay = start + (n + 1) * PACKET_INTERVAL - loop.time()
            await asyncio.sleep(max(0.0, delay))

    def _received(self, data: bytes, addr: tuple[str, int], arrival: float) -> None:
        header = parse_header(data)
        if header is None:
            self.non_rtp += 1
            return
        stream = self.streams.get(header.ssrc)
        if stream is None:
            stream = StreamStats(header.ssrc, format_address(addr[0], addr[1]))
            self.streams[header.ssrc] = stream
        stream.add(header, arrival)

    async def stop(self, grace: float = 0.0) -> None:
        """Stop sending, then listen ``grace`` seconds more for packets still on the way."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if grace > 0 and self.sent:
            await asyncio.sleep(grace)

    def stats(self) -> RtpStats:
        stats = summarize(self.sent, self.ssrc, self.streams)
        if self.remote is not None:
            stats.remote = format_address(self.remote[0], self.remote[1])
        return stats

    def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._transport is not None:
            self._transport.close()
        else:
            self._sock.close()
