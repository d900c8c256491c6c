"""RTCP compound packets read for what the far end says about a stream (RFC 3550 §6, RFC 3611).

``parse_compound(buf, p, end)`` walks one UDP payload of RTCP packets (RFC 3550 §6.1: each
with its own version, count, type and length in 32-bit words minus one) and returns what a
media analysis needs: the sender info of each SR (§6.4.1), every report block of SRs and RRs
(fraction lost, cumulative lost, extended highest sequence number, interarrival jitter, LSR,
DLSR), the SSRCs a BYE names (§6.6), and the block types of XR packets (RFC 3611 §4).
``RtcpSummary`` is what a stream gathers from them, the round-trip time included.

Decisions:
- A length that lies (a packet running past the datagram, fewer than 4 bytes left over, a
  report count that does not fit the packet, an XR block past its packet) is a problem of
  its kind; the walk stops at a packet that runs past the datagram, and keeps what came
  before.  Nothing here raises.
- The round-trip time is RFC 3550 §6.4.1's A - LSR - DLSR with the capture's clock: A is the
  time the RR was captured and LSR is replaced by the capture time of the SR whose NTP
  timestamp's middle 32 bits equal it (Wireshark does the same).  Captured beside the SR's
  sender this is the sender's round trip; elsewhere it is the round trip between the capture
  point and the reporter.  An SR that was not captured gives no round trip.
- Types 205-207 (RTPFB, PSFB, XR: RFC 4585, RFC 3611) are known; any other type inside a
  compound is counted as a problem and skipped by its length.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

__all__ = [
    "RTCP_TYPES",
    "XR_BLOCK_TYPES",
    "RtcpCompound",
    "RtcpProblem",
    "RtcpReportBlock",
    "RtcpSenderInfo",
    "RtcpSummary",
    "parse_compound",
]

SR, RR, SDES, BYE, APP, RTPFB, PSFB, XR = range(200, 208)
RTCP_TYPES = {
    SR: "SR",
    RR: "RR",
    SDES: "SDES",
    BYE: "BYE",
    APP: "APP",
    RTPFB: "RTPFB",
    PSFB: "PSFB",
    XR: "XR",
}
# RFC 3611 §4.1-4.7, and the blocks registered since (IANA "RTCP XR Block Type").
XR_BLOCK_TYPES = {
    1: "loss-rle",
    2: "duplicate-rle",
    3: "packet-receipt-times",
    4: "receiver-reference-time",
    5: "dlrr",
    6: "statistics-summary",
    7: "voip-metrics",
}
# XR blocks whose first word after the header is the SSRC of the media source they describe.
_XR_SOURCE_BLOCKS = frozenset((1, 2, 3, 6, 7))

_SENDER_INFO = struct.Struct("!IIIIII")  # SSRC, NTP msw, NTP lsw, RTP ts, packets, octets
_REPORT_BLOCK = struct.Struct("!IB3sIIII")  # SSRC, fraction, cumulative, highest, jitter, ...
_NTP_TO_UNIX = 2208988800  # seconds from 1900 to 1970 (RFC 868)


class RtcpProblem(enum.Enum):
    """What can be wrong with an RTCP compound; the value is the line a person reads."""

    VERSION = "RTCP packet with a version other than 2 inside a compound"
    LENGTH = "RTCP packet length runs past the datagram"
    TRAILING = "RTCP compound ends with bytes that are not a packet"
    REPORT_COUNT = "RTCP report count does not fit the packet's length"
    XR_BLOCK = "RTCP XR block runs past its packet"
    UNKNOWN_TYPE = "RTCP packet of an unknown type inside a compound"


@dataclass(frozen=True, slots=True)
class RtcpSenderInfo:
    """RFC 3550 §6.4.1 sender info of one SR."""

    ssrc: int
    ntp_time: float  # the NTP timestamp as Unix seconds
    ntp_middle: int  # its middle 32 bits: what a receiver's LSR names (§6.4.1)
    rtp_timestamp: int
    packets: int
    octets: int


@dataclass(frozen=True, slots=True)
class RtcpReportBlock:
    """One RFC 3550 §6.4.1 report block: what ``reporter`` received from ``ssrc``."""

    reporter: int
    ssrc: int
    fraction_lost: float  # 0..1 (the 8-bit fixed-point fraction / 256)
    cumulative_lost: int  # signed 24 bits: duplicates can make it negative
    highest_seq: int  # extended highest sequence number received
    jitter: int  # interarrival jitter in timestamp units
    lsr: int  # middle 32 bits of the last SR's NTP timestamp, 0 if none
    dlsr: float  # seconds since that SR (units of 1/65536 s on the wire)


@dataclass(slots=True)
class RtcpCompound:
    """What one compound packet holds; ``types`` counts its packets by type name."""

    senders: list[RtcpSenderInfo] = field(default_factory=list)
    reports: list[RtcpReportBlock] = field(default_factory=list)
    byes: list[int] = field(default_factory=list)
    xr: list[tuple[int, int | None, str]] = field(default_factory=list)  # reporter, source, type
    types: dict[str, int] = field(default_factory=dict)
    problems: list[RtcpProblem] = field(default_factory=list)
    first_ssrc: int | None = None  # the SSRC of the first packet's sender, when it has one


def parse_compound(buf: bytes, p: int, end: int) -> RtcpCompound:
    """The RTCP packets of ``buf[p:end]``; see the module docstring."""
    out = RtcpCompound()
    pos = p
    while pos < end:
        if end - pos < 4:
            out.problems.append(RtcpProblem.TRAILING)
            break
        first, kind = buf[pos], buf[pos + 1]
        if first >> 6 != 2:
            out.problems.append(RtcpProblem.VERSION)
            break
        stop = pos + ((((buf[pos + 2] << 8) | buf[pos + 3]) + 1) << 2)
        if stop > end:
            out.problems.append(RtcpProblem.LENGTH)
            break
        if out.first_ssrc is None and stop - pos >= 8:
            out.first_ssrc = int.from_bytes(buf[pos + 4 : pos + 8], "big")
        _packet(out, buf, pos, stop, first & 31, kind)
        pos = stop
    return out


def _packet(out: RtcpCompound, buf: bytes, pos: int, stop: int, count: int, kind: int) -> None:
    name = RTCP_TYPES.get(kind)
    if name is None:
        out.problems.append(RtcpProblem.UNKNOWN_TYPE)
        return
    out.types[name] = out.types.get(name, 0) + 1
    if kind in (SR, RR):
        _reports(out, buf, pos, stop, count, kind == SR)
    elif kind == BYE:
        for at in range(pos + 4, min(stop, pos + 4 + 4 * count), 4):
            if at + 4 <= stop:
                out.byes.append(int.from_bytes(buf[at : at + 4], "big"))
    elif kind == XR:
        _xr(out, buf, pos, stop)


def _reports(out: RtcpCompound, buf: bytes, pos: int, stop: int, count: int, sr: bool) -> None:
    blocks = pos + (28 if sr else 8)
    if blocks > stop or blocks + 24 * count > stop:
        out.problems.append(RtcpProblem.REPORT_COUNT)
        if blocks > stop:
            return
        count = (stop - blocks) // 24
    reporter = int.from_bytes(buf[pos + 4 : pos + 8], "big")
    if sr:
        ssrc, msw, lsw, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(buf, pos + 4)
        ntp = msw - _NTP_TO_UNIX + lsw / 4294967296.0
        middle = ((msw & 0xFFFF) << 16) | (lsw >> 16)
        out.senders.append(RtcpSenderInfo(ssrc, ntp, middle, rtp_ts, packets, octets))
    for at in range(blocks, blocks + 24 * count, 24):
        ssrc, fraction, cumulative, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(buf, at)
        lost = int.from_bytes(cumulative, "big", signed=True)
        block = RtcpReportBlock(
            reporter, ssrc, fraction / 256.0, lost, highest, jitter, lsr, dlsr / 65536.0
        )
        out.reports.append(block)


def _xr(out: RtcpCompound, buf: bytes, pos: int, stop: int) -> None:
    if stop - pos < 8:
        out.problems.append(RtcpProblem.XR_BLOCK)
        return
    reporter = int.from_bytes(buf[pos + 4 : pos + 8], "big")
    at = pos + 8
    while at < stop:
        if stop - at < 4:
            out.problems.append(RtcpProblem.XR_BLOCK)
            return
        block_type = buf[at]
        block_end = at + 4 + 4 * ((buf[at + 2] << 8) | buf[at + 3])
        if block_end > stop:
            out.problems.append(RtcpProblem.XR_BLOCK)
            return
        source = None
        if block_type in _XR_SOURCE_BLOCKS and block_end - at >= 8:
            source = int.from_bytes(buf[at + 4 : at + 8], "big")
        name = XR_BLOCK_TYPES.get(block_type, f"type-{block_type}")
        out.xr.append((reporter, source, name))
        at = block_end


class RtcpSummary:
    """What RTCP said about one stream: its sender's SRs, and the far end's reports on it."""

    __slots__ = (
        "_sr_times",
        "bye",
        "cumulative_lost",
        "fraction_lost",
        "highest_seq",
        "jitter",
        "receiver_reports",
        "rtt_max_ms",
        "rtt_ms",
        "sender_octets",
        "sender_packets",
        "sender_reports",
        "xr_blocks",
    )

    def __init__(self) -> None:
        self.sender_reports = 0
        self.sender_packets: int | None = None
        self.sender_octets: int | None = None
        self.receiver_reports = 0
        self.fraction_lost: float | None = None
        self.cumulative_lost: int | None = None
        self.highest_seq: int | None = None
        self.jitter: int | None = None  # timestamp units, as reported
        self.rtt_ms: float | None = None
        self.rtt_max_ms: float | None = None
        self.xr_blocks: dict[str, int] = {}
        self.bye = False
        self._sr_times: dict[int, float] = {}  # NTP middle 32 bits -> capture time

    def sender(self, info: RtcpSenderInfo, time: float | None) -> None:
        self.sender_reports += 1
        self.sender_packets = info.packets
        self.sender_octets = info.octets
        if time is not None:
            if len(self._sr_times) >= 64:  # a receiver's LSR names one of the last few SRs
                del self._sr_times[next(iter(self._sr_times))]
            self._sr_times[info.ntp_middle] = time

    def report(self, block: RtcpReportBlock, time: float | None) -> None:
        self.receiver_reports += 1
        self.fraction_lost = block.fraction_lost
        self.cumulative_lost = block.cumulative_lost
        self.highest_seq = block.highest_seq
        self.jitter = block.jitter
        sent = self._sr_times.get(block.lsr) if block.lsr and time is not None else None
        if sent is not None and time is not None:
            rtt = max(0.0, (time - sent - block.dlsr) * 1000.0)
            self.rtt_ms = rtt
            if self.rtt_max_ms is None or rtt > self.rtt_max_ms:
                self.rtt_max_ms = rtt

    def to_dict(self, clock_rate: int | None) -> dict[str, object]:
        jitter_ms = None
        if self.jitter is not None and clock_rate:
            jitter_ms = round(self.jitter * 1000.0 / clock_rate, 3)
        return {
            "sender_reports": self.sender_reports,
            "sender_packets": self.sender_packets,
            "sender_octets": self.sender_octets,
            "receiver_reports": self.receiver_reports,
            "fraction_lost": self.fraction_lost,
            "cumulative_lost": self.cumulative_lost,
            "highest_seq": self.highest_seq,
            "jitter_ms": jitter_ms,
            "rtt_ms": None if self.rtt_ms is None else round(self.rtt_ms, 3),
            "rtt_max_ms": None if self.rtt_max_ms is None else round(self.rtt_max_ms, 3),
            "xr_blocks": dict(sorted(self.xr_blocks.items())),
            "bye": self.bye,
        }
