"""RTP streams in a capture, with the figures ``tshark -q -z rtp,streams`` gives (RFC 3550).

``RtpTracker`` is fed every UDP payload that is neither SIP nor STUN (``PacketExtractor``'s
media hook) through ``datagram(key, buf, p, end, time, frame)``: ``key`` is the source address,
the destination address and the two ports as the extractor builds them, ``buf[p:end]`` the UDP
payload.  It returns True for a datagram it took as RTP or RTCP.  ``announce()`` (or
``announce_sdp()`` with a parsed SDP body) tells it what an SDP offer or answer announced, so
that a stream has its codec and its call.  ``streams()`` gives one ``RtpStream`` per (source
ip:port, destination ip:port, SSRC), in order of first packet; ``RtpStream.to_dict()`` is the
``rtp_streams`` entry of ``decode --rtp --json``.  The payloads of a telephone-event payload
type go to the stream's ``dtmf`` (``media/dtmf.py``, RFC 4733).

Which UDP payloads are RTP (RFC 3550 §5.1, RFC 7983 §7): version 2, a payload type outside
72-76 (RFC 5761 §4: those are RTCP's SR..APP with the marker bit set), and a header that fits
(12 bytes + 4 per CSRC, the extension's length inside the payload).  The flow must have been
announced (its destination or source address:port named by an SDP, or that port + 1 for
RTCP), or pass a heuristic like Wireshark's ``rtp_udp``: an even destination port (RFC 3550
§11), to which this adds that both ports are 1024 or above (Wireshark's port-based dissectors
claim DNS, NTP and the like before its heuristic runs) and that the payload type is a static
one of RFC 3551 or a dynamic one (96-127).  RTCP: version 2 and a type 200-207 (SR, RR, SDES,
BYE, APP, RTPFB, PSFB, XR), on an announced flow, or (Wireshark's ``rtcp_udp``) to an odd port
with a first packet whose length fits a datagram that is a whole number of words.

The figures are Wireshark's (``ui/tap-rtp-analysis.c`` ``rtppacket_analyse`` and
``ui/rtp_stream.c``, as tshark 4.0 computes them: checked against tshark 4.0.17 on captures
with loss, delay variation and reordering), because that is what users compare with:

- The first packet of a stream only starts it: no delta, no jitter.
- A packet is "in time sequence" when its timestamp is not before the first packet's.  A late
  packet sent after the first is in time sequence, and a regular packet, in tshark 4.0.
- Only packets in time sequence get a delta and a jitter, and move the reference they are
  measured from.  Delta = arrival - the last such packet's arrival.  Jitter, for a payload
  type with a clock: nominal = (timestamp - first timestamp) / (clock rate // 1000) ms (the
  clock divided as integers, as Wireshark does: 44100 Hz counts as 44 kHz), D = |delta -
  (nominal - the last such nominal)|, J = (15 J + D) / 16 (RFC 3550 §6.4.1 and A.8).
- Max delta, max jitter and mean jitter leave out the packets that are not "regular": marker
  bit set (a talkspurt starts, the timestamp jumps: RFC 3551 §4.1), comfort noise (payload
  types 13 and 19) and the packet right after comfort noise, and packets not in time
  sequence.  Telephone-events (RFC 4733) and payload types with no known clock have no jitter
  but their deltas count.
- Mean jitter (of J) and mean delta are Wireshark's running means: at the Nth packet of a
  stream, when it is regular, mean = (mean x (N-2) + value) / (N-1); the irregular packets
  still count in N.
- Expected = last sequence number + 65536 x wraps - first sequence number + 1, where a wrap is
  counted when a sequence number below the first one arrives in time sequence (and 65535 -> 0
  when the first was 0); lost = expected - packets.  So lost is negative when duplicates
  outnumber the losses (as RFC 3550 A.3's cumulative lost may be), and a reordered last packet
  shows in it, as in tshark.  ``sequence_errors`` counts the packets Wireshark marks as a
  wrong sequence (its "Problems?" column).
- ``duplicates`` and ``out_of_order`` are this module's own (tshark has no such columns),
  from RFC 3550 A.1 extended sequence numbers: a packet behind the highest sequence number
  is out of order when its number was skipped before (a late packet) and a duplicate when it
  was received before; gaps are remembered as ranges, the last 256 of them.
- SSRC: printed as tshark prints it, ``0x%08X``.  A new SSRC on the same 5-tuple is a new
  stream; ``ssrc_changes`` counts how often the 5-tuple's packets switched to this stream from
  another SSRC.

Hot path: a packet of a known stream that continues it plainly (first byte 0x80, the same
payload type without marker, the next sequence number, a timestamp that goes forward, a
capture time) is handled in ``datagram`` itself on offsets into ``buf``, with no object made
but the header's integers; everything else goes through ``_slow``, which is the full
definition (the unit tests check that both agree).

Decisions:
- The one place the definitions differ from tshark 4.0: timestamps are unwrapped (RFC 3550
  A.1 style) before they are compared with the first one.  tshark 4.0 compares the raw 32-bit
  values, so once a stream's timestamp wraps (hours into a call, or at once for a first
  timestamp near 2^32) it takes every later packet as out of time sequence and its delta
  and jitter stop; here they go on.
- Bad media input never raises: truncated headers, extension lengths past the packet,
  padding longer than the payload, another version on an announced flow and RTCP whose
  lengths lie are counted per stream (``problems``) and per kind (``RtpTracker.problems``).
  A header that does not fit is not analysed (Wireshark stops there too); bad padding is.
- Packets without a capture time (hex dumps) are counted, but give no delta or jitter.
- At most 50,000 streams and 50,000 flows are tracked; later ones are counted as a problem, so
  a flood of random UDP cannot grow memory without bound.
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from collections.abc import Mapping
from typing import TYPE_CHECKING

from siptool.capture.layers import endpoint
from siptool.media.codecs import (
    COMFORT_NOISE,
    STATIC_CODECS,
    TELEPHONE_EVENT,
    analysis_clock,
    codec_clock,
    codec_name,
    payload_types_of,
)
from siptool.media.dtmf import TelephoneEvents
from siptool.media.rtcp import RtcpCompound, RtcpProblem, RtcpSummary, parse_compound
from siptool.numbers import decimal_or_none, signed32

if TYPE_CHECKING:
    from siptool.sip.sdp import SessionDescription

__all__ = ["MediaProblem", "RtpStream", "RtpTracker"]

_HEADER = struct.Struct("!HHII")  # V/P/X/CC and M/PT, sequence, timestamp, SSRC
_unpack_header = _HEADER.unpack_from
_U32 = 0xFFFFFFFF
_HALF32 = 0x80000000
_MAX_STREAMS = 50_000
_MAX_FLOWS = 50_000
_MAX_IGNORED = 65_536
_MAX_GAPS = 256


class MediaProblem(enum.Enum):
    """Bad media input, by kind; the value is the line a person reads."""

    TRUNCATED = "truncated RTP header"
    EXTENSION = "RTP header extension runs past the packet"
    PADDING = "RTP padding longer than the payload"
    VERSION = "RTP/RTCP version other than 2 on an announced media flow"
    # RTCP_ + the name of each RtcpProblem, with its text
    RTCP_VERSION = RtcpProblem.VERSION.value
    RTCP_LENGTH = RtcpProblem.LENGTH.value
    RTCP_TRAILING = RtcpProblem.TRAILING.value
    RTCP_REPORT_COUNT = RtcpProblem.REPORT_COUNT.value
    RTCP_XR_BLOCK = RtcpProblem.XR_BLOCK.value
    RTCP_UNKNOWN_TYPE = RtcpProblem.UNKNOWN_TYPE.value
    TOO_MANY = "too many RTP streams or flows: later ones not tracked"


class _Announcement:
    """What one SDP said about one address:port: its payload types and its call."""

    __slots__ = ("call_id", "payload_types")

    def __init__(self, payload_types: Mapping[int, tuple[str, int]], call_id: str | None):
        self.payload_types = dict(payload_types)
        self.call_id = call_id


class _Flow:
    """One 5-tuple (one direction); ``stream`` is the stream of its last RTP packet.
    ``announced``: an SDP named its destination or source when it was first seen."""

    __slots__ = ("announced", "dst", "dst_ep", "src", "src_ep", "stream", "streams")

    def __init__(self, key: bytes, announced: bool) -> None:
        half = (len(key) - 4) >> 1
        sport, dport = (key[-4] << 8) | key[-3], (key[-2] << 8) | key[-1]
        self.src_ep = (key[:half], sport)
        self.dst_ep = (key[half:-4], dport)
        self.src = endpoint(key[:half], sport)
        self.dst = endpoint(key[half:-4], dport)
        self.announced = announced
        self.stream: RtpStream = _NO_STREAM
        self.streams: dict[int, RtpStream] = {}


class RtpStream:
    """One RTP stream: (source, destination, SSRC) and its figures; see the module docstring.

    Times are epoch seconds (``first_time``, ``last_time``) and milliseconds (the deltas and
    jitters).  The attributes without a leading underscore are the figures; the rest is the
    state of the analysis.
    """

    __slots__ = (
        "_clock_k",
        "_first_ext_seq",
        "_forgotten",
        "_gaps",
        "_is_event",
        "_pt_map",
        "call_id",
        "clock_rate",
        "codec",
        "cycles",
        "delta_sum",
        "dst",
        "dst_ep",
        "dtmf",
        "duplicates",
        "expect",
        "ext",
        "ext_seq",
        "fast_word",
        "first_ext",
        "first_frame",
        "first_time",
        "jitter",
        "jitter_sum",
        "last_time",
        "lastnom_ext",
        "lastnom_k",
        "marker_bits",
        "max_delta",
        "max_delta_frame",
        "max_jitter",
        "out_of_order",
        "packets",
        "payload_type",
        "payload_types",
        "problems",
        "rtcp",
        "seq_num",
        "seq_stop",
        "sequence_errors",
        "src",
        "src_ep",
        "ssrc",
        "ssrc_changes",
        "start_seq",
        "stop_seq",
        "time",
        "timed",
        "under",
    )

    def __init__(self, ssrc: int, flow: _Flow | None, ann: _Announcement | None) -> None:
        self.ssrc = ssrc
        self.src = flow.src if flow is not None else ""
        self.dst = flow.dst if flow is not None else ""
        self.src_ep = flow.src_ep if flow is not None else (b"", 0)
        self.dst_ep = flow.dst_ep if flow is not None else (b"", 0)
        self.call_id = ann.call_id if ann is not None else None
        self._pt_map = ann.payload_types if ann is not None else None
        self.payload_type = -1
        self.payload_types: set[int] = set()
        self.codec: str | None = None
        self.clock_rate: int | None = None
        self._clock_k = 0
        self.fast_word = -1  # the first two header bytes the fast path takes; -1: none
        self.expect = -1  # the sequence number the fast path takes; -1: none
        self.packets = 0
        self.marker_bits = 0
        self.ssrc_changes = 0
        self.sequence_errors = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.problems: dict[MediaProblem, int] = {}
        self.rtcp: RtcpSummary | None = None
        self.dtmf: TelephoneEvents | None = None  # RFC 4733 events, when it carried any
        self._is_event = False
        self.first_time: float | None = None
        self.last_time: float | None = None
        self.first_frame = 0
        self.max_delta_frame = 0
        self.timed = False

    # -- the figures -------------------------------------------------------------------------

    @property
    def expected(self) -> int:
        if not self.packets:
            return 0
        stop = self.stop_seq if self.expect == -1 else self.expect - 1  # see _arm
        return stop + self.cycles * 65536 - self.start_seq + 1

    @property
    def mean_jitter(self) -> float:
        return self.jitter_sum / (self.packets - 1) if self.packets > 1 else 0.0

    @property
    def mean_delta(self) -> float:
        return self.delta_sum / (self.packets - 1) if self.packets > 1 else 0.0

    @property
    def lost(self) -> int:
        return self.expected - self.packets

    def to_dict(self) -> dict[str, object]:
        """The contract keys of ``rtp_streams`` (docs/cli-contract), then the extra ones."""
        timed = self.timed and self.packets > 1
        jittered = timed and any(analysis_clock(pt, self._pt_map) for pt in self.payload_types)
        rtcp = None if self.rtcp is None else self.rtcp.to_dict(self.clock_rate)
        return {
            "ssrc": f"0x{self.ssrc:08X}",
            "src": self.src,
            "dst": self.dst,
            "payload_type": self.payload_type,
            "codec": self.codec,
            "call_id": self.call_id,
            "packets": self.packets,
            "expected": self.expected,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "out_of_order": self.out_of_order,
            "max_delta_ms": round(self.max_delta, 3) if timed else None,
            "jitter_mean_ms": round(self.mean_jitter, 3) if jittered else None,
            "jitter_max_ms": round(self.max_jitter, 3) if jittered else None,
            "first_time": self.first_time,
            "last_time": self.last_time,
            "rtcp": rtcp,
            "mos_estimate": None,
            "payload_types": sorted(self.payload_types),
            "clock_rate": self.clock_rate,
            "mean_delta_ms": round(self.mean_delta, 3) if timed else None,
            "marker_bits": self.marker_bits,
            "ssrc_changes": self.ssrc_changes,
            "sequence_errors": self.sequence_errors,
            "first_frame": self.first_frame,
            "problems": {k.value: n for k, n in self.problems.items()},
            "dtmf": [] if self.dtmf is None else [e.to_dict() for e in self.dtmf.events()],
        }

    # -- the analysis (the slow path: every case) --------------------------------------------

    def start(self, seq: int, ts: int, b1: int, time: float | None, frame: int) -> None:
        """The first packet: Wireshark's ``first_packet`` branch."""
        self.start_seq = self.stop_seq = self.seq_num = seq
        self.cycles = 0
        self.under = False
        self.ext = self.first_ext = self.lastnom_ext = ts + (1 << 32)
        self.lastnom_k = 0  # Wireshark's lastnominaltime starts at 0: the first timestamp
        self.ext_seq = self._first_ext_seq = seq + 65536
        self._gaps: list[list[int]] | None = None
        self._forgotten = 0
        self.timed = time is not None
        self.time = 0.0 if time is None else time
        self.first_time = self.last_time = time
        self.first_frame = frame
        self.jitter = self.max_jitter = self.jitter_sum = 0.0
        self.max_delta = self.delta_sum = 0.0
        self.packets = 1
        self._payload(b1 & 0x7F)
        if b1 & 0x80:
            self.marker_bits += 1
        self._arm(b1, True)

    def packet(self, seq: int, ts: int, b1: int, time: float | None, frame: int) -> None:
        """A later packet: Wireshark's ``rtppacket_analyse``, and the order of RFC 3550 A.1."""
        self.settle()
        ext = self.ext + signed32(ts - self.ext)
        self.ext = ext
        in_time = ext >= self.first_ext
        self._cycles(seq, in_time)
        self._sequence(seq, in_time)
        self._order(seq)
        pt = b1 & 0x7F
        follows_cn = self.payload_type in COMFORT_NOISE
        if pt != self.payload_type:
            self._payload(pt)
        marker = b1 & 0x80
        if marker:
            self.marker_bits += 1
        if time is not None and self.timed and in_time:
            regular = not marker and pt not in COMFORT_NOISE and not follows_cn
            self._timing(ext, time, frame, regular)
            self.time = time
        else:  # Wireshark computes no delta or jitter for it, and it is not regular
            self.delta_sum = _running(self.delta_sum, 0.0, self.packets, False)
            self.jitter_sum = _running(self.jitter_sum, 0.0, self.packets, False)
        if time is not None:
            self.last_time = time
        self.stop_seq = seq
        self.packets += 1
        self._arm(b1, in_time)

    def settle(self) -> None:
        """Bring back the fields the fast path leaves implied (see ``_arm``)."""
        if self.expect != -1:
            seq = self.expect - 1
            self.seq_num = self.stop_seq = seq
            self.ext_seq = (self.ext_seq & ~0xFFFF) | seq
            self.time = self.last_time  # type: ignore[assignment]
            if self._clock_k:
                self.lastnom_ext, self.lastnom_k = self.ext, self._clock_k

    def _cycles(self, seq: int, in_time: bool) -> None:
        if not in_time:
            return
        if not self.under and (seq < self.start_seq or (seq == 0 and self.stop_seq == 65535)):
            self.cycles += 1
            self.under = True
        elif self.under and seq > self.start_seq:
            self.under = False

    def _sequence(self, seq: int, in_time: bool) -> None:
        last = self.seq_num
        if in_time and (last + 1 == seq or (last == 65535 and seq == 0)):
            self.seq_num = seq
        elif in_time and (last + 1 < seq or last - seq > 0xFF00):
            self.seq_num = seq
            self.sequence_errors += 1
        elif last + 1 > seq:
            self.sequence_errors += 1

    def _order(self, seq: int) -> None:
        """Duplicates and late packets against the RFC 3550 A.1 extended highest number."""
        top = self.ext_seq
        forward = (seq - top) & 0xFFFF
        if forward == 0:
            self.duplicates += 1
        elif forward < 0x8000:
            if forward > 1:
                gaps = self._gaps
                if gaps is None:
                    gaps = self._gaps = []
                gaps.append([top + 1, top + forward - 1])
                if len(gaps) > _MAX_GAPS:
                    self._forgotten = gaps.pop(0)[1]
            self.ext_seq = top + forward
        else:
            self._late(top + forward - 65536)

    def _late(self, e: int) -> None:
        if e < self._first_ext_seq or e <= self._forgotten:
            self.out_of_order += 1  # before what is remembered: it cannot have been seen
            return
        for i, gap in enumerate(self._gaps or ()):
            lo, hi = gap
            if lo <= e <= hi:
                assert self._gaps is not None
                if lo == hi:
                    del self._gaps[i]
                elif e == lo:
                    gap[0] = e + 1
                elif e == hi:
                    gap[1] = e - 1
                else:
                    gap[1] = e - 1
                    self._gaps.insert(i + 1, [e + 1, hi])
                self.out_of_order += 1
                return
        self.duplicates += 1

    def _payload(self, pt: int) -> None:
        self.payload_type = pt
        self.payload_types.add(pt)
        self.codec = codec_name(pt, self._pt_map)
        self._is_event = self.codec is not None and self.codec.lower() == TELEPHONE_EVENT
        if self._is_event and self.dtmf is None:
            self.dtmf = TelephoneEvents(codec_clock(pt, self._pt_map) or 8000)
        self._clock_k = analysis_clock(pt, self._pt_map) // 1000
        self.clock_rate = codec_clock(pt, self._pt_map)

    def _timing(self, ext: int, time: float, frame: int, regular: bool) -> None:
        delta = (time - self.time) * 1000.0
        k = self._clock_k
        if k:
            self.jitter = (15.0 * self.jitter + abs(delta - self._nominal_step(ext, k))) * 0.0625
            self.lastnom_ext, self.lastnom_k = ext, k
        if regular and delta > self.max_delta:
            self.max_delta = delta
            self.max_delta_frame = frame
        self.delta_sum = _running(self.delta_sum, delta, self.packets, regular)
        if regular and k and self.jitter > self.max_jitter:
            self.max_jitter = self.jitter
        self.jitter_sum = _running(self.jitter_sum, self.jitter, self.packets, regular and k > 0)

    def _nominal_step(self, ext: int, k: int) -> float:
        """Wireshark's nominal time minus the last one, in ms: each is (timestamp - first
        timestamp) / its packet's clock.  With one clock that is (ext - last ext) / k, which
        the fast path computes too."""
        last_k = self.lastnom_k
        if last_k == k or last_k == 0:
            return (ext - self.lastnom_ext) / k
        first = self.first_ext
        return (ext - first) / k - (self.lastnom_ext - first) / last_k

    def _arm(self, b1: int, in_time: bool) -> None:
        """Let ``RtpTracker.datagram`` take the next packet itself when it can only continue
        this one plainly.  Armed (``expect`` = next sequence number), the last packet was in
        time sequence and advanced the sequence, so the fast path keeps only ``ext``,
        ``last_time`` and ``expect``: ``time``, ``lastnom_ext``, ``seq_num``, ``stop_seq`` and
        ``ext_seq`` follow from them (``settle``).  ``seq_stop`` is the one next number that
        must not be taken fast: the one that ends a wrap's ``under`` state."""
        pt = b1 & 0x7F
        plain = (
            not b1 & 0x80
            and pt not in COMFORT_NOISE
            and self.timed
            and in_time
            and not self._is_event
        )
        self.fast_word = 0x8000 | pt if plain else -1
        seq = self.seq_num
        hi = self.start_seq if self.under else 65535
        lo = 0 if self.under else self.start_seq + 1
        synced = (self.ext_seq & 0xFFFF) == seq and self.stop_seq == seq
        self.seq_stop = self.start_seq + 1 if self.under else -1
        self.expect = seq + 1 if plain and synced and lo <= seq + 1 <= hi else -1

    def problem(self, kind: MediaProblem) -> None:
        self.problems[kind] = self.problems.get(kind, 0) + 1

    def rtcp_summary(self) -> RtcpSummary:
        if self.rtcp is None:
            self.rtcp = RtcpSummary()
        return self.rtcp


_NO_STREAM = RtpStream(-1, None, None)  # a flow's stream before its first RTP packet


class RtpTracker:
    """RTP/RTCP streams of a capture; see the module docstring.  Implements ``MediaSink``."""

    __slots__ = (
        "_announced",
        "_by_ssrc",
        "_first_places",
        "_flows",
        "_ignored",
        "_problems",
        "_streams",
        "rtcp_packets",
    )

    def __init__(self) -> None:
        self._flows: dict[bytes, _Flow] = {}
        self._ignored: dict[bytes, None] = {}
        self._announced: dict[tuple[bytes, int], _Announcement] = {}
        self._streams: list[RtpStream] = []
        self._by_ssrc: dict[int, list[RtpStream]] = {}
        self._problems: dict[MediaProblem, int] = {}
        self._first_places: dict[MediaProblem, str] = {}
        self.rtcp_packets = 0

    def datagram(
        self, key: bytes, buf: bytes, p: int, end: int, time: float | None, frame: int
    ) -> bool:
        """One UDP payload ``buf[p:end]`` of the 5-tuple ``key``; True if taken as RTP/RTCP."""
        flow = self._flows.get(key)
        if flow is None:
            if key in self._ignored:
                return False
            return self._new_flow(key, buf, p, end, time, frame)
        if end - p >= 12 and time is not None:
            word, seq, ts, ssrc = _unpack_header(buf, p)
            st = flow.stream
            if seq == st.expect and word == st.fast_word and ssrc == st.ssrc and seq != st.seq_stop:
                ext = st.ext
                d = (ts - ext) & _U32
                if d < _HALF32:
                    delta = (time - st.last_time) * 1000.0  # type: ignore[operator]
                    k = st._clock_k
                    if k:
                        diff = delta - d / k
                        jitter = (15.0 * st.jitter + (diff if diff >= 0.0 else -diff)) * 0.0625
                        st.jitter = jitter
                        if jitter > st.max_jitter:
                            st.max_jitter = jitter
                        st.jitter_sum += jitter
                    if delta > st.max_delta:
                        st.max_delta = delta
                        st.max_delta_frame = frame
                    st.delta_sum += delta
                    st.ext = ext + d
                    st.expect = seq + 1
                    st.packets += 1
                    st.last_time = time
                    return True
        return self._slow(flow, buf, p, end, time, frame)

    # -- the general path --------------------------------------------------------------------

    def _slow(
        self, flow: _Flow, buf: bytes, p: int, end: int, time: float | None, frame: int
    ) -> bool:
        size = end - p
        if size < 1:
            return False
        first = buf[p]
        if first >> 6 != 2:
            if flow.announced and not 0x40 <= first <= 0x4F:  # RFC 7983 §7: TURN ChannelData
                self._problem(flow.stream, MediaProblem.VERSION, frame, flow)
            return False
        if size >= 2 and 200 <= buf[p + 1] <= 207:
            self._rtcp(flow, buf, p, end, time, frame)
            return True
        if size < 12:
            self._problem(flow.stream, MediaProblem.TRUNCATED, frame, flow)
            return True
        word, seq, ts, ssrc = _unpack_header(buf, p)
        b0, b1 = word >> 8, word & 0xFF
        if 72 <= b1 <= 76:
            return False  # RFC 5761 §4: not an RTP payload type
        st = flow.stream
        if ssrc != st.ssrc:
            found = self._stream(flow, ssrc, frame)
            if found is None:
                return True
            st = found
        kind = _header_problem(buf, p, end, b0)
        if kind is not None:
            self._problem(st, kind, frame, flow)
            if kind is not MediaProblem.PADDING:
                return True
        if st.packets:
            st.packet(seq, ts, b1, time, frame)
        else:
            st.start(seq, ts, b1, time, frame)
        if st._is_event and st.dtmf is not None:
            st.dtmf.add(buf, *_payload_bounds(buf, p, end, b0), ts, time)
        return True

    def _stream(self, flow: _Flow, ssrc: int, frame: int) -> RtpStream | None:
        """The flow's stream of ``ssrc`` (made on its first packet), now the flow's current."""
        st = flow.streams.get(ssrc)
        if st is None:
            if len(self._streams) >= _MAX_STREAMS:
                self._problem(None, MediaProblem.TOO_MANY, frame, flow)
                return None
            st = RtpStream(ssrc, flow, self._announcement(flow.dst_ep, flow.src_ep))
            flow.streams[ssrc] = st
            self._streams.append(st)
            self._by_ssrc.setdefault(ssrc, []).append(st)
        if flow.stream is not _NO_STREAM:
            st.ssrc_changes += 1
        flow.stream = st
        return st

    def _new_flow(
        self, key: bytes, buf: bytes, p: int, end: int, time: float | None, frame: int
    ) -> bool:
        half = (len(key) - 4) >> 1
        sport, dport = (key[-4] << 8) | key[-3], (key[-2] << 8) | key[-1]
        announced = self._announcement((key[half:-4], dport), (key[:half], sport)) is not None
        if not announced:
            if sport < 1024 or dport < 1024:
                if len(self._ignored) >= _MAX_IGNORED:
                    self._ignored.clear()
                self._ignored[key] = None
                return False
            if not _looks_like_media(buf, p, end, dport):
                return False
        if len(self._flows) >= _MAX_FLOWS:
            self._problem(None, MediaProblem.TOO_MANY, frame, None)
            self._ignored[key] = None
            return False
        flow = self._flows[key] = _Flow(key, announced)
        return self._slow(flow, buf, p, end, time, frame)

    # -- RTCP --------------------------------------------------------------------------------

    def _rtcp(
        self, flow: _Flow, buf: bytes, p: int, end: int, time: float | None, frame: int
    ) -> None:
        self.rtcp_packets += 1
        found = parse_compound(buf, p, end)
        near, far = flow.src_ep, flow.dst_ep
        first = self._reported(found.first_ssrc, near, far, sender=True)
        for problem in found.problems:
            self._problem(first, MediaProblem[f"RTCP_{problem.name}"], frame, flow)
        for info in found.senders:
            st = self._reported(info.ssrc, near, far, sender=True)
            if st is not None:
                st.rtcp_summary().sender(info, time)
        for block in found.reports:
            st = self._reported(block.ssrc, near, far, sender=False)
            if st is not None:
                st.rtcp_summary().report(block, time)
        self._rtcp_rest(found, near, far)

    def _rtcp_rest(
        self, found: RtcpCompound, near: tuple[bytes, int], far: tuple[bytes, int]
    ) -> None:
        for ssrc in found.byes:
            st = self._reported(ssrc, near, far, sender=True)
            if st is not None:
                st.rtcp_summary().bye = True
        for reporter, source, name in found.xr:
            if source is not None:
                st = self._reported(source, near, far, sender=False)
            else:
                st = self._reported(reporter, near, far, sender=True)
            if st is not None:
                blocks = st.rtcp_summary().xr_blocks
                blocks[name] = blocks.get(name, 0) + 1

    def _reported(
        self,
        ssrc: int | None,
        near: tuple[bytes, int],
        far: tuple[bytes, int],
        *,
        sender: bool,
    ) -> RtpStream | None:
        """The stream an RTCP packet from ``near`` to ``far`` speaks of: one that ``near``
        sends (``sender``) or receives, with that SSRC; the RTCP port is the RTP port or the
        next one (RFC 3550 §11, RFC 5761).  Among several (SIPp gives every call one SSRC),
        the one on the same address and port wins, then the one on the same address."""
        if ssrc is None:
            return None
        candidates = self._by_ssrc.get(ssrc)
        if not candidates:
            return None
        best, score = None, 0
        for st in candidates:
            ep = st.src_ep if sender else st.dst_ep
            if ep[0] != near[0]:
                continue
            here = 2 if ep[1] in (near[1], near[1] - 1) else 1
            if here > score:
                best, score = st, here
        if best is None and len(candidates) == 1:
            best = candidates[0]
        return best

    # -- what the signalling said ------------------------------------------------------------

    def announce(
        self,
        address: str,
        port: int,
        payload_types: Mapping[int, tuple[str, int]],
        call_id: str | None,
        *,
        rtcp_port: int | None = None,
    ) -> bool:
        """An SDP offer or answer announced media at ``address``:``port`` (its ``c=`` and
        ``m=``), with ``payload_types`` ``{pt: (encoding, clock rate)}`` (rtpmap, else static)
        and RTCP at ``rtcp_port`` (RFC 3605 ``a=rtcp``; default ``port`` + 1).  RTP to or from
        there is then taken without the heuristic, with those codecs and that call.  A later
        announcement of the same address:port replaces it for the streams that follow.
        False (and nothing remembered) for an address that is not an IP address, an
        unspecified one (``0.0.0.0``, a hold of RFC 2543 style) or port 0 (a rejected m=)."""
        try:
            ip = ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            return False
        if ip.is_unspecified or not 0 < port <= 65535:
            return False
        packed = ip.packed
        ann = self._announced.get((packed, port))
        if ann is not None and ann.call_id == call_id:
            # A re-INVITE of the same call: the streams that started under it see the change.
            ann.payload_types.update(payload_types)
        else:
            ann = _Announcement(payload_types, call_id)
        rtcp = rtcp_port if rtcp_port is not None and 0 < rtcp_port <= 65535 else port + 1
        for p in (port, rtcp) if rtcp <= 65535 else (port,):
            self._announced[(packed, p)] = ann
        self._ignored.clear()  # a flow once not media may be now
        return True

    def announce_sdp(self, sdp: SessionDescription, call_id: str | None) -> int:
        """``announce`` every RTP ``m=`` line of a parsed SDP body; how many were taken."""
        taken = 0
        for media in sdp.media:
            address = media.connection_address
            if address is None or "RTP" not in media.proto.upper():
                continue
            rtcp = media.attribute("rtcp")
            rtcp_port = None if rtcp is None else decimal_or_none(rtcp.split(" ", 1)[0], 5)
            if media.has_attribute("rtcp-mux"):
                rtcp_port = media.port
            types = payload_types_of(media)
            taken += self.announce(address, media.port, types, call_id, rtcp_port=rtcp_port)
        return taken

    # -- results -----------------------------------------------------------------------------

    def streams(self) -> list[RtpStream]:
        """Every stream, in order of its first packet (its state settled: see ``_arm``)."""
        for st in self._streams:
            st.settle()
        return list(self._streams)

    def problems(self) -> dict[str, int]:
        """Bad media input over the whole capture: one count per kind (for one line each)."""
        return {k.value: n for k, n in self._problems.items()}

    def problem_places(self) -> dict[str, str]:
        """Per kind of bad media, where it was first seen ("packet 12, a:1 -> b:2")."""
        return {k.value: where for k, where in self._first_places.items()}

    def _announcement(self, dst: tuple[bytes, int], src: tuple[bytes, int]) -> _Announcement | None:
        """What was announced for a flow: its destination's SDP (whose payload type numbers
        the sender uses, RFC 3264 §5.1), else its source's (symmetric RTP, RFC 4961)."""
        return self._announced.get(dst) or self._announced.get(src)

    def _problem(
        self, st: RtpStream | None, kind: MediaProblem, frame: int, flow: _Flow | None
    ) -> None:
        count = self._problems.get(kind, 0)
        if not count:  # where it was first seen, for the one line a person reads
            where = f"packet {frame}"
            if flow is not None:
                where += f", {flow.src} -> {flow.dst}"
            self._first_places[kind] = where
        self._problems[kind] = count + 1
        if st is not None and st is not _NO_STREAM:
            st.problem(kind)


def _running(total: float, value: float, before: int, counted: bool) -> float:
    """Wireshark's running mean, kept as a sum.  At a packet with ``before`` packets before it
    Wireshark does mean = (mean x (before - 1) + value) / before when the packet counts and
    keeps the mean when it does not; with total = mean x (packets - 1) kept after each
    packet, that is total + value, or total x before / (before - 1)."""
    if counted:
        return total + value
    return total * before / (before - 1) if before > 1 else total


def _header_problem(buf: bytes, p: int, end: int, b0: int) -> MediaProblem | None:
    """What is wrong with the RTP header at ``buf[p]`` (RFC 3550 §5.1, §5.3.1), or None."""
    size = end - p
    header = 12 + 4 * (b0 & 15)
    if header > size:
        return MediaProblem.TRUNCATED
    if b0 & 0x10:
        if header + 4 > size:
            return MediaProblem.TRUNCATED
        header += 4 + 4 * ((buf[p + header + 2] << 8) | buf[p + header + 3])
        if header > size:
            return MediaProblem.EXTENSION
    if b0 & 0x20:
        pad = buf[end - 1]
        if pad == 0 or header + pad > size:
            return MediaProblem.PADDING
    return None


def _payload_bounds(buf: bytes, p: int, end: int, b0: int) -> tuple[int, int]:
    """Where the payload of a well-formed RTP packet is: past the CSRCs and the extension,
    before the padding (RFC 3550 §5.1, §5.3.1)."""
    start = p + 12 + 4 * (b0 & 15)
    if b0 & 0x10:
        start += 4 + 4 * ((buf[start + 2] << 8) | buf[start + 3])
    stop = end - buf[end - 1] if b0 & 0x20 else end
    return start, max(start, stop)


def _looks_like_media(buf: bytes, p: int, end: int, dport: int) -> bool:
    """Wireshark's ``rtp_udp``/``rtcp_udp`` heuristics, narrowed; see the module docstring."""
    size = end - p
    if size < 8 or buf[p] >> 6 != 2:
        return False
    kind = buf[p + 1]
    if 200 <= kind <= 207:
        first = (((buf[p + 2] << 8) | buf[p + 3]) + 1) << 2
        return dport & 1 == 1 and size & 3 == 0 and first <= size
    pt = kind & 0x7F
    if dport & 1 or size < 12 or not (pt in STATIC_CODECS or 96 <= pt <= 127):
        return False
    return _header_problem(buf, p, end, buf[p]) is None
