"""TCP stream reassembly for captures, one direction of one connection at a time.

Each direction delivers its bytes in sequence order to a framer: SIP (``SipStreamFramer``,
RFC 3261 §18.3), STUN (RFC 8489 §6.2.2: messages back to back, framed by their length field;
TURN ChannelData (RFC 8656 §12.5) is skipped; ``siptool.stun.framing`` tells them apart) or SIP
over WebSocket (RFC 7118; ``capture.websocket``: after the HTTP/1.1 upgrade of RFC 6455 §4,
each data message one SIP message).  The protocol is decided by the first bytes of the
direction; a direction whose capture begins mid-stream is WebSocket if its first bytes are a
data frame carrying a SIP start line, and is otherwise searched for the first start line that
begins a line; one that never shows SIP or STUN within 64 KiB is ignored (TLS, other HTTP).
Only a direction that begins with ``GET `` or ``HTTP/1.`` is read as a handshake, and only one
that shows no SIP start line first: SIP and STUN streams cost no WebSocket check.

A direction whose first bytes are a TLS record goes to a ``capture.tls_decrypt.TlsReader``,
which reads the handshake and, with the session's keys in decode's --tls-keylog, decrypts the
records; the plaintext goes through a second ``TcpDirection`` (``secure``) that finds SIP (marked
``tls``) or SIP over WebSocket (``wss``) in it as in plain TCP.  Without keys the direction is
only counted, and named in the summary.

Sequence handling: out-of-order segments wait; retransmissions and overlaps are trimmed to the
new bytes; data without a SYN starts at the first data segment seen; a hole that is never filled
(lost in the capture, or more than 1 MiB of segments waiting behind it) is skipped and reported,
and the framer resynchronises at the next start line.  Messages complete at the packet that
delivered their last byte, as tshark reports them.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from siptool.capture.model import Problem, RawMessage, WebSocketStream
from siptool.capture.tls_decrypt import TlsContext, TlsReader
from siptool.capture.tlsrecord import client_hello_sni, is_tls_record, record_length
from siptool.capture.websocket import (
    Upgrade,
    WebSocketClose,
    WebSocketFramer,
    is_http_start,
    sip_frame_at,
    upgrade_head,
)
from siptool.numbers import signed32
from siptool.sip.framing import (
    FramingError,
    SipStreamFramer,
    StreamBuffer,
    find_start_line,
    starts_like_sip,
)
from siptool.stun.framing import (
    announced_size,
    channel_data_size,
    has_magic_cookie,
    is_channel_data_byte,
    is_stun_byte,
)

__all__ = [
    "STREAM_IGNORED",
    "STREAM_SIP",
    "STREAM_STUN",
    "STREAM_TLS",
    "STREAM_TLS_SKIPPED",
    "STREAM_UNDECIDED",
    "STREAM_WS",
    "StunStreamFramer",
    "TcpDirection",
]

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04

_MOD = 1 << 32
_MAX_WAITING_BYTES = 1 << 20
_MAX_WAITING_SEGMENTS = 1024
_MAX_PROBE = 65536

# What a direction carries; decided by its first bytes.
STREAM_UNDECIDED = 0
STREAM_SIP = 1
STREAM_STUN = 2
STREAM_WS = 3  # SIP over WebSocket (capture.websocket)
STREAM_TLS = 4  # TLS, its records read (capture.tls_decrypt)
# Not decoded from here on (extract.py compares with >=).
STREAM_IGNORED = 5
STREAM_TLS_SKIPPED = 6  # TLS without keys: counted and named in the summary

_LABELS = {
    STREAM_SIP: "SIP over TCP",
    STREAM_STUN: "STUN over TCP",
    STREAM_WS: "SIP over WebSocket",
}
_SECURE_LABELS = {STREAM_SIP: "SIP over TLS", STREAM_WS: "SIP over WSS"}
_Item = tuple[int, bytes] | FramingError | WebSocketClose
_WS_DATA = b"\x01\x02\x81\x82"  # a data frame's first byte: text or binary, final or not


class StunStreamFramer(StreamBuffer):
    """STUN messages from a byte stream, framed by the 20-byte header's length field.

    Same shape as ``SipStreamFramer``: ``feed_with_offsets``, ``lose``, ``close``.  After bytes
    that are neither STUN nor ChannelData the stream cannot be framed any more and the rest is
    dropped (one ``FramingError``).
    """

    __slots__ = ("_broken",)

    def __init__(self) -> None:
        super().__init__()
        self._broken = False

    def feed_with_offsets(
        self, data: bytes | bytearray | memoryview
    ) -> list[tuple[int, bytes] | FramingError]:
        out: list[tuple[int, bytes] | FramingError] = []
        if self._broken:
            self._base += len(data)
            return out
        buf = self._buf
        buf += data
        while len(buf) >= 4:
            first = buf[0]
            if is_stun_byte(first):
                if len(buf) < 8:
                    break
                total = announced_size(buf)
                if not has_magic_cookie(buf) or total % 4:
                    out.append(
                        FramingError(self._base, "not a STUN message; rest of the stream skipped")
                    )
                    self._broken = True
                    self._base += len(buf)
                    buf.clear()
                    break
                if len(buf) < total:
                    break
                out.append((self._base, bytes(buf[:total])))
            elif is_channel_data_byte(first):
                total = channel_data_size(buf)
                if len(buf) < total:
                    break
            else:
                out.append(
                    FramingError(
                        self._base, "neither STUN nor ChannelData; rest of the stream skipped"
                    )
                )
                self._broken = True
                self._base += len(buf)
                buf.clear()
                break
            del buf[:total]
            self._base += total
        return out

    def lose(self, nbytes: int) -> list[FramingError]:
        out = (
            []
            if self._broken
            else [FramingError(self._base, f"{nbytes} bytes missing from the stream")]
        )
        # Without framing there is no way to find the next message boundary.
        self._broken = True
        self._base += len(self._buf) + nbytes
        self._buf.clear()
        return out

    def close(self) -> list[FramingError]:
        out: list[FramingError] = []
        if self._buf and not self._broken:
            out.append(FramingError(self._base, f"incomplete STUN message: {len(self._buf)} bytes"))
        self._base += len(self._buf)
        self._buf.clear()
        return out


class TcpDirection:
    """One direction of one TCP connection; appends what it finds to ``out``."""

    __slots__ = (
        "_frame",
        "_framer",
        "_framer_origin",
        "_inner",
        "_marks",
        "_note",
        "_probe",
        "_probe_origin",
        "_probe_scan",
        "_time",
        "_tls",
        "_tls_context",
        "_ws",
        "closed",
        "delivered",
        "dst",
        "fin_seq",
        "isn",
        "mode",
        "next_seq",
        "out",
        "secure",
        "skipped",
        "sni",
        "src",
        "waiting",
        "waiting_bytes",
        "websockets",
    )

    @property
    def undecided(self) -> int:
        """Bytes still waiting for the direction's protocol to be known (keep-alive CRLFs,
        RFC 5626 §3.5.1, are not counted: they are skipped before the decision)."""
        return len(self._probe) if self.mode == STREAM_UNDECIDED else 0

    def __init__(
        self,
        src: str,
        dst: str,
        out: list[RawMessage | Problem],
        tls: TlsContext | None = None,
        *,
        secure: bool = False,
        websockets: list[WebSocketStream] | None = None,
    ) -> None:
        self.src = src
        self.dst = dst
        self.out = out
        self._tls_context = tls  # None: TLS directions are only named (no reader)
        self.secure = secure  # the plaintext of a TLS direction (no TLS inside it)
        # Every WebSocket connection seen on these addresses and ports (a new connection on
        # the same ones resets the rest), for decode's summary.
        self.websockets: list[WebSocketStream] = [] if websockets is None else websockets
        self._reset()

    def _reset(self) -> None:
        self.isn = -1
        self.next_seq = -1
        self.fin_seq = -1
        self.closed = False
        self.delivered = 0  # stream bytes delivered or given up as lost
        # segments ahead of next_seq: seq -> (data, missing, record offset, frame)
        self.waiting: dict[int, tuple[bytes, int, int, int]] = {}
        self.waiting_bytes = 0
        self.mode = STREAM_UNDECIDED
        self.skipped = 0  # bytes of an ignored or TLS direction after its decision
        self.sni: str | None = None  # a TLS direction's ClientHello server name
        self._framer: SipStreamFramer | StunStreamFramer | WebSocketFramer | None = None
        self._ws: WebSocketStream | None = None
        self._note: tuple[str, str] | None = None  # for each message of a WebSocket direction
        self._framer_origin = 0
        self._probe = bytearray()
        self._probe_origin = 0
        self._probe_scan = 0  # where the search for a start line in the probe resumes
        self._marks: list[tuple[int, int, int]] = []  # (stream position, record offset, frame)
        self._frame = 0
        self._time: float | None = None
        self._tls: TlsReader | None = None
        self._inner: TcpDirection | None = None  # a TLS direction's plaintext

    @property
    def tls_decrypted(self) -> bool:
        """Whether some of this TLS direction's connection was decrypted."""
        reader = self._tls
        return reader is not None and reader.conn is not None and reader.conn.session.decrypted

    @property
    def inner(self) -> TcpDirection | None:
        """A decrypted TLS direction's plaintext direction."""
        return self._inner

    # -- sequence space ---------------------------------------------------------------------

    def segment(
        self,
        seq: int,
        flags: int,
        data: bytes,
        missing: int,
        frame: int,
        time: float | None,
        record: int,
    ) -> None:
        """One captured segment: ``data`` then ``missing`` bytes that the snaplen cut off."""
        self._frame = frame
        self._time = time
        if flags & TCP_SYN:
            if seq != self.isn:
                if self.delivered or self.waiting or self.closed:
                    # A new connection on the same addresses and ports.
                    self._close()
                    self._reset()
                    self._frame = frame
                    self._time = time
                self.isn = seq
                self.next_seq = (seq + 1) % _MOD
            elif self.closed:
                return  # a retransmitted SYN of a finished connection
            seq = (seq + 1) % _MOD
        elif self.closed:
            return
        if flags & TCP_RST:
            self._close()
            return
        size = len(data) + missing
        if size:
            if self.next_seq < 0:
                self.next_seq = seq
            delta = signed32(seq - self.next_seq)
            if delta <= 0:
                before = self.next_seq
                self._take(-delta, data, missing, record, frame)
                # Every waiting segment lies beyond next_seq; only an advance can reach one
                # (a storm of retransmissions must not sort the waiting set each time).
                if self.waiting and self.next_seq != before:
                    self._drain()
            else:
                held = self.waiting.get(seq)
                if held is None or len(held[0]) + held[1] < size:
                    if held is not None:
                        self.waiting_bytes -= len(held[0])
                    self.waiting[seq] = (data, missing, record, frame)
                    self.waiting_bytes += len(data)
                    if (
                        self.waiting_bytes > _MAX_WAITING_BYTES
                        or len(self.waiting) > _MAX_WAITING_SEGMENTS
                    ):
                        # Down to half the bounds at once: a lossy capture then sorts the
                        # waiting set once per many segments, not once per segment.
                        self._drain(_MAX_WAITING_SEGMENTS // 2, _MAX_WAITING_BYTES // 2)
        if flags & TCP_FIN:
            self.fin_seq = (seq + size) % _MOD
        if self.fin_seq >= 0 and self.next_seq == self.fin_seq and not self.waiting:
            self._close()

    def _take(self, cut: int, data: bytes, missing: int, record: int, frame: int) -> None:
        """Deliver a segment that starts ``cut`` bytes before ``next_seq``."""
        if cut >= len(data) + missing:
            return  # a pure retransmission
        if cut < len(data):
            chunk = data[cut:] if cut else data
            self.next_seq = (self.next_seq + len(chunk)) % _MOD
            self._deliver(chunk, record, frame)
            cut = 0
        else:
            cut -= len(data)
        lost = missing - cut
        if lost:
            self.next_seq = (self.next_seq + lost) % _MOD
            self._lose(lost, frame)

    def _drain(self, keep_segments: int = -1, keep_bytes: int = -1) -> None:
        """Deliver the waiting segments that ``next_seq`` has reached, in sequence order.

        While more than ``keep_segments`` segments or ``keep_bytes`` bytes wait (either
        non-negative), a hole before the next waiting segment is given up as lost instead of
        ending the delivery; ``_drain(0, 0)`` delivers everything.
        """
        waiting = self.waiting
        origin = self.next_seq
        for seq in sorted(waiting, key=lambda s: signed32(s - origin)):
            delta = signed32(seq - self.next_seq)
            if delta > 0:
                if not (0 <= keep_segments < len(waiting) or 0 <= keep_bytes < self.waiting_bytes):
                    break
                self._lose(delta, waiting[seq][3])
                self.next_seq = seq
                delta = 0
            data, missing, record, frame = waiting.pop(seq)
            self.waiting_bytes -= len(data)
            self._take(-delta, data, missing, record, frame)

    def finish(self) -> None:
        """End of the capture: skip holes, deliver what waits, report unfinished messages."""
        if self.closed:
            return
        if self.waiting:
            self._drain(0, 0)
        self._close()

    def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.waiting.clear()
        self.waiting_bytes = 0
        if self._framer is not None:
            self._emit(self._framer.close())
        if self._tls is not None:
            self._tls.close()
        if self._inner is not None:
            self._inner._close()

    # -- bytes in order ---------------------------------------------------------------------

    def _lose(self, nbytes: int, frame: int) -> None:
        self._marks.append((self.delivered, -1, frame))
        self.delivered += nbytes
        if self.mode == STREAM_UNDECIDED:
            self._probe.clear()
            self._probe_origin = self.delivered
            self._probe_scan = 0
        elif self._framer is not None:
            self._emit(self._framer.lose(nbytes))
        elif self.mode == STREAM_TLS and self._tls is not None:
            self._tls.lose(nbytes)
            self.mode = STREAM_TLS_SKIPPED

    def plain(self, chunk: bytes, record: int, frame: int, time: float | None) -> None:
        """Decrypted bytes of a TLS direction, in order, from the packet ``frame``."""
        self._frame = frame
        self._time = time
        self._deliver(chunk, record, frame)

    def _deliver(self, chunk: bytes, record: int, frame: int) -> None:
        marks = self._marks
        marks.append((self.delivered, record, frame))
        self.delivered += len(chunk)
        mode = self.mode
        if mode in (STREAM_SIP, STREAM_STUN, STREAM_WS):
            assert self._framer is not None
            framer = self._framer
            self._emit(framer.feed_with_offsets(chunk))
            # Forget positions the framer no longer holds.
            keep_from = self._framer_origin + framer.stream_offset - framer.buffered
            if len(marks) > 1 and marks[1][0] <= keep_from:
                index = bisect_right(marks, (keep_from, 1 << 62, 0)) - 1
                del marks[:index]
        elif mode == STREAM_TLS:
            assert self._tls is not None
            self.skipped += len(chunk)
            self._tls.tag = (record, self._frame, self._time)
            self._tls.feed(chunk)
            if self._tls.done:
                self.mode = STREAM_TLS_SKIPPED
        elif mode == STREAM_UNDECIDED:
            self._probe += chunk
            self._decide()

    def _decide(self) -> None:
        probe = self._probe
        skip = 0
        while skip < len(probe) and probe[skip] in b"\r\n":
            skip += 1
        if skip:
            del probe[:skip]
            self._probe_origin += skip
            self._probe_scan = max(0, self._probe_scan - skip)
        if not probe:
            return
        first = probe[0]
        start = -1
        if not self.secure and is_tls_record(probe):
            # A TLS record: wait for the whole first one (a ClientHello names the server).
            if len(probe) < record_length(probe) and len(probe) < _MAX_PROBE:
                return
            self._start_tls()
            return
        if is_stun_byte(first):
            if len(probe) < 8:
                return
            if has_magic_cookie(probe):
                self._start(STREAM_STUN, 0)
                return
        head = bytes(probe[:4096])
        if starts_like_sip(head):
            start = 0
        elif self._websocket(first):
            return
        elif (65 <= first <= 90 or 97 <= first <= 122) and b"\n" not in head and len(probe) < 256:
            return  # a first line still arriving
        if start < 0:
            start = find_start_line(probe, self._probe_scan)
            if start < 0:
                if len(probe) > _MAX_PROBE:
                    self.mode = STREAM_IGNORED
                    self.skipped = len(probe)
                    self._probe = bytearray()
                else:
                    self._probe_scan = probe.rfind(b"\n") + 1
                return
        self._start(STREAM_SIP, start)

    def _websocket(self, first: int) -> bool:
        """True when the direction is SIP over WebSocket (and is started) or may still prove
        to be (and waits for more bytes); False sends it on to the search for a start line.

        Only an opening handshake (``GET `` or ``HTTP/1.``, read once it is whole) or a data
        frame at the very first byte (a capture begun after the upgrade) is looked at.
        """
        probe = self._probe
        if first in _WS_DATA:
            found = sip_frame_at(probe)
            if found is None and len(probe) < _MAX_PROBE:
                return True
            if found:
                self._start_websocket(None)
            return bool(found)
        if self._probe_scan or first not in b"GH" or not is_http_start(probe):
            return False  # a scan for start lines has begun: the head was read already
        upgrade = upgrade_head(probe)
        if upgrade is None:
            return True
        if not upgrade.websocket:
            return False
        self._start_websocket(upgrade)
        return True

    def _start_websocket(self, upgrade: Upgrade | None) -> None:
        if upgrade is None:
            info = WebSocketStream(self.src, self.dst, None, None, secure=self.secure)
        else:
            role = "client" if upgrade.client else "server"
            info = WebSocketStream(
                self.src, self.dst, role, upgrade.subprotocols, secure=self.secure
            )
            if not upgrade.sip:
                self._note = (
                    "websocket-subprotocol",
                    "the WebSocket upgrade names no sip subprotocol (RFC 7118 §4.1:"
                    " Sec-WebSocket-Protocol: sip); read as SIP because its frames hold SIP",
                )
        self._ws = info
        self.websockets.append(info)
        masked = None if upgrade is None else upgrade.client
        self._start(STREAM_WS, 0 if upgrade is None else upgrade.size, masked)

    def _start_tls(self) -> None:
        probe = self._probe
        self._probe = bytearray()
        self.sni = client_hello_sni(probe)
        self.skipped = len(probe)
        context = self._tls_context
        if context is None:
            self.mode = STREAM_TLS_SKIPPED
            return
        inner = self._inner = TcpDirection(
            self.src, self.dst, self.out, secure=True, websockets=self.websockets
        )

        def on_plain(data: bytes) -> None:
            inner.plain(data, *reader.tag)

        def on_problem(text: str) -> None:
            self.out.append(
                Problem(f"packet {self._frame}", f"TLS {self.src} -> {self.dst}: {text}")
            )

        reader = self._tls = TlsReader(context, self.src, self.dst, self.sni, on_plain, on_problem)
        self.mode = STREAM_TLS
        reader.tag = (self._marks[-1][1] if self._marks else 0, self._frame, self._time)
        reader.feed(bytes(probe))
        if reader.done:
            self.mode = STREAM_TLS_SKIPPED

    def _start(self, mode: int, start: int, masked: bool | None = None) -> None:
        self.mode = mode
        if mode == STREAM_WS:
            self._framer = WebSocketFramer(masked=masked)
        else:
            self._framer = SipStreamFramer() if mode == STREAM_SIP else StunStreamFramer()
        self._framer_origin = self._probe_origin + start
        probe = self._probe
        self._probe = bytearray()
        self._emit(self._framer.feed_with_offsets(probe[start:]))

    def _locate(self, stream_offset: int) -> tuple[int, int]:
        """(record offset, frame) of the packet that carried the byte at a framer offset."""
        position = self._framer_origin + stream_offset
        marks = self._marks
        index = bisect_right(marks, (position, 1 << 62, 0)) - 1
        while index >= 0 and marks[index][1] < 0:
            index -= 1
        if index < 0:
            return (marks[0][1], marks[0][2]) if marks else (0, self._frame)
        return marks[index][1], marks[index][2]

    def _emit(self, items: Sequence[_Item]) -> None:
        mode = self.mode
        ws = self._ws if mode == STREAM_WS else None
        for item in items:
            if isinstance(item, tuple):
                record, _ = self._locate(item[0])
                raw = RawMessage(
                    "stun" if mode == STREAM_STUN else "sip",
                    item[1],
                    self._frame,
                    self._time,
                    self.src,
                    self.dst,
                    ("tcp" if ws is None else "ws")
                    if not self.secure
                    else ("tls" if ws is None else "wss"),
                    record,
                )
                if ws is not None:
                    ws.messages += 1
                    raw.note = self._note
                self.out.append(raw)
                continue
            _, frame = self._locate(item.offset)
            if isinstance(item, WebSocketClose):
                if ws is not None and ws.close_frame is None:
                    ws.close_frame, ws.close_code, ws.close_reason = frame, item.code, item.reason
                continue
            where = f"{(_SECURE_LABELS if self.secure else _LABELS)[mode]} {self.src} -> {self.dst}"
            if ws is not None:
                ws.problems += 1
                where += f", stream byte {self._framer_origin + item.offset}"
            self.out.append(Problem(f"packet {frame}", f"{where}: {item.message}"))
