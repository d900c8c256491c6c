"""From input bytes to candidate SIP and STUN messages: ``iter_input``.

``iter_input(data, input_format="auto")`` yields ``RawMessage`` (exactly one message's bytes,
with where it came from) and ``Problem`` (one line about input that could not be used), in input
order; for captures, in the order in which the messages completed.  It raises only
``ParseError`` (from ``detect_format``, for input it cannot recognise, and for an unknown
``input_format``).

Captures go through ``PacketExtractor``: link layer, IPv4/IPv6 (extension headers skipped,
fragments reassembled, IP-in-IP unwrapped), UDP and TCP (reassembled per direction: SIP, STUN,
or SIP over WebSocket after its HTTP upgrade, ``capture.tcp`` and ``capture.websocket``).  A UDP
payload is STUN if ``looks_like_stun`` says so, on any port; SIP if it starts like a SIP start
line; CRLF keep-alives and everything else (RTP, DNS, ...) are skipped silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from siptool.capture.hexdump import HexBlock, parse_hex_dump
from siptool.capture.ipfrag import FragmentReassembler
from siptool.capture.keylog import KeyLog
from siptool.capture.layers import (
    IPPROTO_TCP,
    IPPROTO_UDP,
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_RAW,
    SUPPORTED_LINKTYPES,
    endpoint,
    ip_offset,
    ipv6_payload,
    ipv6_walk,
)
from siptool.capture.model import (
    MediaSink,
    Problem,
    RawMessage,
    TlsSession,
    UndecodedStream,
    WebSocketStream,
)
from siptool.capture.pcap import PCAP_MAGICS, PCAPNG_MAGIC, Buffer, iter_pcap, iter_pcapng
from siptool.capture.sniff import detect_format
from siptool.capture.stunsplit import split_stun
from siptool.capture.tcp import (
    STREAM_IGNORED,
    STREAM_STUN,
    STREAM_TLS,
    STREAM_TLS_SKIPPED,
    STREAM_UNDECIDED,
    STREAM_WS,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
    TcpDirection,
)
from siptool.capture.textsplit import split_sip_text
from siptool.capture.tls_decrypt import TlsContext
from siptool.errors import ParseError
from siptool.sip.framing import starts_like_sip
from siptool.stun.framing import announced_size, has_magic_cookie, is_stun_header, looks_like_stun

# The package (``siptool.capture``) exports these with the model and ``detect_format``.
__all__ = ["INPUT_FORMATS", "PacketExtractor", "iter_capture", "iter_input"]

INPUT_FORMATS = ("auto", "sip", "stun", "hex", "pcap", "pcapng")

_IPPROTO_IPIP = 4
_IPPROTO_IPV6 = 41
_MAX_TUNNEL_DEPTH = 4
_TCP_OPEN_CLOSE = TCP_SYN | TCP_FIN | TCP_RST
_CRLF = b"\r\n"
_SNAPLEN_LABELS = {STREAM_STUN: "STUN over TCP", STREAM_WS: "SIP over WebSocket", STREAM_TLS: "TLS"}

# Where a transport header is: protocol, buffer, start, end, bytes the snaplen cut, addresses.
_Layer4 = tuple[int, bytes, int, int, int, bytes]
# An IP fragment: reassembly key, offset of its data in the datagram, more fragments follow.
_Fragment = tuple[bytes, int, bool]
# The captured packet a layer belongs to: frame number, capture time, byte offset of its
# record in the input, original length on the wire.
_Packet = tuple[int, float | None, int, int]


class PacketExtractor:
    """Turns captured packets into ``RawMessage``/``Problem`` items appended to ``out``.

    Call ``packet`` for each packet in capture order, take the items from ``out`` (and clear
    it) whenever convenient, and call ``finish`` at the end to flush TCP streams and report
    incomplete fragmented datagrams.

    With a ``media`` sink (``capture.model.MediaSink``, e.g. ``media.rtp.RtpTracker``), every
    UDP payload that is neither SIP nor STUN nor a keep-alive goes to ``media.datagram`` in
    place, on every path (snaplen-cut ones too: an RTP header is worth reading without its
    payload).  Only a first byte of 0x40 or more can be RTP/RTCP (version 2 is 0x80-0xBF, RFC
    7983 §7; 0x40-0x7F and 0xC0-0xFF are wrong versions a media analysis may count), and none
    of 0x80 or more starts a SIP start line, so RTP costs no SIP check.  Without a sink such
    payloads are skipped as before.

    TLS directions are read by ``capture.tls_decrypt`` (every connection in ``tls_sessions``);
    with a ``keylog`` (decode's --tls-keylog) the SIP inside them is found too.
    """

    __slots__ = (
        "_bad_links",
        "_frags",
        "_media",
        "_names",
        "_streams",
        "_tls",
        "out",
    )

    def __init__(self, media: MediaSink | None = None, keylog: KeyLog | None = None) -> None:
        self.out: list[RawMessage | Problem] = []
        self._media = media
        self._names: dict[bytes, tuple[str, str]] = {}
        self._frags = FragmentReassembler()
        self._streams: dict[bytes, TcpDirection] = {}
        self._bad_links: set[int] = set()
        self._tls = TlsContext(keylog)

    def _endpoints(self, key: bytes) -> tuple[str, str]:
        """("src ip:port", "dst ip:port") for key = src address + dst address + the 4 port bytes."""
        names = self._names.get(key)
        if names is None:
            half = (len(key) - 4) >> 1
            names = (
                endpoint(key[:half], (key[-4] << 8) | key[-3]),
                endpoint(key[half:-4], (key[-2] << 8) | key[-1]),
            )
            if len(self._names) > 65536:
                self._names.clear()
            self._names[key] = names
        return names

    def packet(
        self,
        frame: int,
        time: float | None,
        linktype: int,
        start: int,
        end: int,
        origlen: int,
        record: int,
        buf: bytes,
    ) -> None:
        """One captured packet: the link-layer frame is ``buf[start:end]``.

        The arguments before ``buf`` are a ``PacketRecord`` in order, so a reader's record
        can be passed as ``packet(*record, buf)``.  ``record`` is the byte offset of the
        packet's record in the input, carried into ``RawMessage.offset``.
        """
        if (
            linktype == LINKTYPE_ETHERNET
            and end - start >= 42
            and buf[start + 12] == 8
            and (buf[start + 13] == 0)
        ):
            ip = start + 14
            vihl = buf[ip]
            if vihl == 0x45:
                # Fast path: Ethernet, IPv4 without options, UDP, not a fragment, not cut.
                total = (buf[ip + 2] << 8) | buf[ip + 3]
                ip_end = ip + total
                if (
                    buf[ip + 9] == IPPROTO_UDP
                    and not (buf[ip + 6] & 0x3F or buf[ip + 7])
                    and ip_end <= end
                    and total >= 28
                ):
                    udp_end = ip + 20 + ((buf[ip + 24] << 8) | buf[ip + 25])
                    if udp_end > ip_end or udp_end < ip + 28:
                        udp_end = ip_end
                    p = ip + 28
                    if p < udp_end:
                        first = buf[p]
                        if first >= 0x40:
                            # A SIP start line begins with a letter; RTP's first byte is 0x80-0xBF.
                            if first < 0x80 and starts_like_sip(buf, p, udp_end):
                                src, dst = self._endpoints(buf[ip + 12 : ip + 24])
                                self.out.append(
                                    RawMessage(
                                        "sip", buf[p:udp_end], frame, time, src, dst, "udp", record
                                    )
                                )
                            elif self._media is not None:
                                key = buf[ip + 12 : ip + 24]
                                self._media.datagram(key, buf, p, udp_end, time, frame)
                        else:
                            pkt = (frame, time, record, origlen)
                            self._udp_payload_key(buf, buf[ip + 12 : ip + 24], p, udp_end, 0, pkt)
                    return
        elif linktype not in SUPPORTED_LINKTYPES:
            if linktype not in self._bad_links:
                self._bad_links.add(linktype)
                self.out.append(Problem(f"packet {frame}", f"unsupported link type {linktype}"))
            return
        ip = ip_offset(linktype, buf, start, end)
        if ip >= 0:
            self._ip(buf, ip, end, (frame, time, record, origlen), 0)

    def _ip(self, buf: bytes, ip: int, end: int, pkt: _Packet, depth: int) -> None:
        version = buf[ip] >> 4
        if version == 4:
            found = _ipv4(buf, ip, end)
        elif version == 6:
            found = _ipv6(buf, ip, end)
        else:
            return
        if found is None:
            return
        l4, fragment = found
        if fragment is not None:
            reassembled = self._reassemble(l4, fragment, version, ip, pkt)
            if reassembled is None:
                return
            l4 = reassembled
        self._transport(l4, pkt, depth)

    def _reassemble(
        self, l4: _Layer4, fragment: _Fragment, version: int, ip: int, pkt: _Packet
    ) -> _Layer4 | None:
        """An IP fragment to the reassembler; where the transport header of its datagram is
        once the datagram is whole.  A fragment the snaplen cut loses its datagram."""
        proto, buf, start, end, missing, addresses = l4
        frame, time, record, _ = pkt
        if missing:
            self._cut_fragment(frame, end - ip, missing)
            return None
        key, offset, more = fragment
        done = self._frags.add(key, offset, more, buf[start:end], proto, frame, record, time)
        if done is None:
            return None
        payload, proto, _ = done
        start = 0
        if version == 6:
            # Extension headers may follow the Fragment header (RFC 8200 §4.5).
            proto, start, again = ipv6_walk(payload, proto, 0, len(payload))
            if proto < 0 or again >= 0:
                return None
        return proto, payload, start, len(payload), 0, addresses

    def _cut_fragment(self, frame: int, got: int, missing: int) -> None:
        self.out.append(
            Problem(
                f"packet {frame}",
                f"snaplen cut an IP fragment: {got} of {got + missing} bytes; its datagram is lost",
            )
        )

    def _transport(self, layer4: _Layer4, pkt: _Packet, depth: int) -> None:
        proto, buf, l4, end, missing, addresses = layer4
        if proto == IPPROTO_UDP:
            if end - l4 < 8:
                return
            udp_end = l4 + ((buf[l4 + 4] << 8) | buf[l4 + 5])
            cut = 0
            if udp_end < l4 + 8:
                udp_end = end
            elif udp_end > end:
                cut = min(udp_end - end, missing)
                udp_end = end
            key = addresses + buf[l4 : l4 + 4]
            self._udp_payload_key(buf, key, l4 + 8, udp_end, cut, pkt)
        elif proto == IPPROTO_TCP:
            if end - l4 < 20:
                return
            frame, time, record, origlen = pkt
            flags = buf[l4 + 13]
            p = l4 + ((buf[l4 + 12] >> 4) << 2)
            if p > end:
                missing = max(0, missing - (p - end))
                p = end
            if p >= end and not missing and not flags & _TCP_OPEN_CLOSE:
                return  # a bare ACK
            key = addresses + buf[l4 : l4 + 4]
            stream = self._streams.get(key)
            if stream is None:
                src, dst = self._endpoints(key)
                stream = self._streams[key] = TcpDirection(src, dst, self.out, self._tls)
            elif stream.mode >= STREAM_IGNORED and not flags & TCP_SYN:
                stream.skipped += end - p + missing  # not decoded: counted for the summary
                return
            seq = (buf[l4 + 4] << 24) | (buf[l4 + 5] << 16) | (buf[l4 + 6] << 8) | buf[l4 + 7]
            data = buf[p:end]
            if (
                missing
                and stream.mode < STREAM_IGNORED
                and (
                    stream.mode != STREAM_UNDECIDED or starts_like_sip(data) or is_stun_header(data)
                )
            ):
                protocol = _SNAPLEN_LABELS.get(stream.mode, "SIP over TCP")
                self.out.append(
                    Problem(
                        f"packet {frame}",
                        f"snaplen cut the packet: {origlen - missing} of {origlen} bytes;"
                        f" {protocol} {stream.src} -> {stream.dst} loses {missing} bytes",
                    )
                )
            stream.segment(seq, flags, data, missing, frame, time, record)
        elif proto in (_IPPROTO_IPIP, _IPPROTO_IPV6) and depth < _MAX_TUNNEL_DEPTH and l4 < end:
            self._ip(buf, l4, end, pkt, depth + 1)

    def _udp_payload_key(
        self, buf: bytes, key: bytes, p: int, end: int, cut: int, pkt: _Packet
    ) -> None:
        if p >= end:
            return
        first = buf[p]
        if first == 13 or first == 10:
            # RFC 5626 §3.5.1: CRLF keep-alives; a message after stray CRLFs is still found.
            while p < end and buf[p] in _CRLF:
                p += 1
            if p >= end:
                return
            first = buf[p]
        if first < 0x40:
            if end - p < 20 or not (has_magic_cookie(buf, p) or is_stun_header(buf, p)):
                return
            if cut:
                if announced_size(buf, p) > end - p:
                    self._cut_datagram(pkt, cut, "STUN", key)
                return
            data = buf[p:end]
            if not looks_like_stun(data):
                return
            protocol = "stun"
        elif first < 0x80 and starts_like_sip(buf, p, end):
            if cut:
                self._cut_datagram(pkt, cut, "SIP", key)
                return
            data = buf[p:end]
            protocol = "sip"
        else:
            if self._media is not None:
                self._media.datagram(key, buf, p, end, pkt[1], pkt[0])
            return
        frame, time, record, _ = pkt
        src, dst = self._endpoints(key)
        self.out.append(RawMessage(protocol, data, frame, time, src, dst, "udp", record))

    def _cut_datagram(self, pkt: _Packet, cut: int, label: str, key: bytes) -> None:
        frame, _, _, origlen = pkt
        src, dst = self._endpoints(key)
        self.out.append(
            Problem(
                f"packet {frame}",
                f"snaplen cut the packet: {origlen - cut} of {origlen} bytes;"
                f" {label} over UDP {src} -> {dst} is incomplete",
            )
        )

    def undecoded(self) -> list[UndecodedStream]:
        """The TCP directions that carried neither SIP nor STUN: TLS (with its server name),
        or other bytes (HTTP, ...), with how many bytes each carried; for decode's summary."""
        out = []
        for stream in self._streams.values():
            if stream.mode in (STREAM_TLS, STREAM_TLS_SKIPPED):
                inner = stream.inner
                if not stream.tls_decrypted or (inner is not None and inner.mode == STREAM_IGNORED):
                    out.append(
                        UndecodedStream("tls", stream.src, stream.dst, stream.skipped, stream.sni)
                    )
            elif stream.mode == STREAM_IGNORED:
                out.append(UndecodedStream("tcp", stream.src, stream.dst, stream.skipped, None))
            elif stream.undecided:  # ended before 64 KiB showed what it was
                out.append(UndecodedStream("tcp", stream.src, stream.dst, stream.undecided, None))
        return out

    def websockets(self) -> list[WebSocketStream]:
        """The TCP directions read as SIP over WebSocket, each connection once (RFC 7118): its
        role, subprotocols, messages, faults and close frame; for decode's summary."""
        return [ws for stream in self._streams.values() for ws in stream.websockets]

    def tls_sessions(self) -> list[TlsSession]:
        """Every TLS connection seen: version, suite, decrypted or why not; for the summary."""
        return self._tls.sessions

    def finish(self) -> None:
        """End of input: flush every TCP direction, report incomplete fragmented datagrams."""
        for stream in self._streams.values():
            stream.finish()
        for dgram in self._frags.drain():
            head = dgram.head
            if head and dgram.proto == IPPROTO_UDP and len(head) > 8:
                if not (starts_like_sip(head, 8) or is_stun_header(head, 8)):
                    continue
                what = "SIP or STUN datagram"
            elif head and dgram.proto != IPPROTO_TCP:
                continue
            else:
                what = "datagram"
            total = f"{dgram.total}" if dgram.total >= 0 else "?"
            self.out.append(
                Problem(
                    f"packet {dgram.first_frame}",
                    f"incomplete fragmented {what}: {dgram.have} of {total} bytes captured",
                )
            )


def _ipv4(buf: bytes, ip: int, end: int) -> tuple[_Layer4, _Fragment | None] | None:
    """Where the IPv4 packet at ``ip`` carries its transport header, and its fragment fields
    (None for a whole datagram); None for a packet too damaged to read."""
    ihl = (buf[ip] & 15) << 2
    if ihl < 20 or ip + ihl > end:
        return None
    total = (buf[ip + 2] << 8) | buf[ip + 3]
    if total == 0:
        ip_end = end  # TCP segmentation offload: the length field is left at 0
    elif total < ihl:
        return None
    else:
        ip_end = ip + total
    missing = 0
    if ip_end > end:
        missing = ip_end - end
        ip_end = end
    proto = buf[ip + 9]
    addresses = buf[ip + 12 : ip + 20]
    l4 = (proto, buf, ip + ihl, ip_end, missing, addresses)
    fragment = (buf[ip + 6] << 8) | buf[ip + 7]
    if not fragment & 0x3FFF:
        return l4, None
    key = addresses + buf[ip + 4 : ip + 6] + bytes((proto,))
    return l4, (key, (fragment & 0x1FFF) << 3, bool(fragment & 0x2000))


def _ipv6(buf: bytes, ip: int, end: int) -> tuple[_Layer4, _Fragment | None] | None:
    """Like ``_ipv4``, past the extension headers (RFC 8200 §4)."""
    if ip + 40 > end:
        return None
    length = (buf[ip + 4] << 8) | buf[ip + 5]
    ip_end = ip + 40 + length if length else end  # 0: a jumbogram (RFC 2675)
    missing = 0
    if ip_end > end:
        missing = ip_end - end
        ip_end = end
    nh, pos, frag = ipv6_payload(buf, ip, ip_end)
    if nh < 0:
        return None
    addresses = buf[ip + 8 : ip + 40]
    l4 = (nh, buf, pos, ip_end, missing, addresses)
    if frag < 0:
        return l4, None
    field = (buf[frag + 2] << 8) | buf[frag + 3]
    return l4, (addresses + buf[frag + 4 : frag + 8], field & 0xFFF8, bool(field & 1))


def iter_capture(
    data: Buffer,
    input_format: str,
    release: Callable[[int], None] | None = None,
    extractor: PacketExtractor | None = None,
) -> Iterator[RawMessage | Problem]:
    """Messages in a pcap (``input_format="pcap"``) or pcapng file held in ``data``, found by
    ``extractor`` (a fresh one with a media sink, say; by default a plain one).

    ``data`` may be a file mapping (``capture.source``): each packet is then copied out of it
    (the extractor works on ``bytes``), and ``release`` is told every few thousand packets how
    far the walk has come, so that the pages behind it can be dropped.
    """
    records = iter_pcap(data) if input_format == "pcap" else iter_pcapng(data)
    if extractor is None:
        extractor = PacketExtractor()
    out = extractor.out
    packet = extractor.packet
    walked = data if isinstance(data, bytes) else None
    fatal: Problem | None = None
    count = 0
    for record in records:
        if isinstance(record, Problem):
            if record.fatal:
                fatal = record  # after what the streams still hold: a fatal problem comes last
                break
            yield from out
            out.clear()
            yield record
            continue
        if walked is not None:
            packet(*record, walked)
        else:
            frame, time, linktype, start, end, origlen, offset = record
            packet(frame, time, linktype, 0, end - start, origlen, offset, data[start:end])
            count += 1
            if release is not None and not count & 4095:
                release(offset)
        if out:
            yield from out
            out.clear()
    extractor.finish()
    yield from out
    out.clear()
    if fatal is not None:
        yield fatal


def iter_input(
    data: Buffer,
    *,
    input_format: str = "auto",
    release: Callable[[int], None] | None = None,
    extractor: PacketExtractor | None = None,
) -> Iterator[RawMessage | Problem]:
    """Candidate messages in ``data``; see the module docstring.  A mapping (``mmap``) is
    walked in place when it holds a capture and copied into ``bytes`` otherwise (the text
    splitters need ``bytes``' methods); ``release`` and ``extractor`` are ``iter_capture``'s
    (a hex dump of packets uses the extractor too)."""
    if input_format not in INPUT_FORMATS:
        raise ParseError(f"unknown input format {input_format!r}")
    head = data[:4]
    if input_format == "auto" and (head in PCAP_MAGICS or head == PCAPNG_MAGIC):
        input_format = "pcap" if head in PCAP_MAGICS else "pcapng"
    if input_format == "pcap" or input_format == "pcapng":
        return iter_capture(data, input_format, release, extractor)
    if not isinstance(data, bytes):
        data = bytes(data)
    if input_format == "auto":
        input_format = detect_format(data)  # not a capture: those were known by their magic
    if input_format == "stun":
        return split_stun(data)
    if input_format == "hex":
        return iter_hex(data, extractor)
    return split_sip_text(data)


def iter_hex(
    data: bytes, extractor: PacketExtractor | None = None
) -> Iterator[RawMessage | Problem]:
    """Hex dump text: each block is STUN, SIP text, or a packet (Ethernet, raw IP, Linux SLL),
    the packets found by ``extractor`` (by default a plain one)."""
    dump = parse_hex_dump(data)
    yield from dump.problems
    if not any(block.data for block in dump.blocks):
        yield Problem("byte 0", "no hex dump found in the input")
        return
    frame = 0
    found = 0
    for block in dump.blocks:
        payload = block.data
        if not payload:
            continue
        if is_stun_header(payload):
            for item in split_stun(payload):
                yield _relocate(item, block)
            continue
        if starts_like_sip(payload) or _is_text(payload):
            for item in split_sip_text(payload):
                yield _relocate(item, block)
            continue
        linktype = _guess_linktype(payload)
        if linktype < 0:
            yield Problem(
                f"byte {block.offset}",
                f"hex block of {len(payload)} bytes is neither STUN, SIP nor a packet",
            )
            continue
        if extractor is None:
            extractor = PacketExtractor()
        frame += 1
        extractor.packet(
            frame, None, linktype, 0, len(payload), len(payload), block.offset, payload
        )
        found += sum(isinstance(item, RawMessage) for item in extractor.out)
        yield from extractor.out
        extractor.out.clear()
    if extractor is not None and frame:
        extractor.finish()
        found += sum(isinstance(item, RawMessage) for item in extractor.out)
        yield from extractor.out
        if not found:
            yield Problem("hex dump", f"no SIP or STUN in its {frame} packets")


def _relocate(item: RawMessage | Problem, block: HexBlock) -> RawMessage | Problem:
    """Offsets inside a decoded hex block -> the block's position in the text."""
    if isinstance(item, RawMessage):
        item.offset = block.offset
        item.hex_block = True
        return item
    # Fatal for the block only: the blocks after it are still read.
    return Problem(f"byte {block.offset}", f"in hex block: {item.where}: {item.message}")


def _is_text(payload: bytes) -> bool:
    head = payload[:256]
    return all(32 <= c < 127 or c in b"\r\n\t" for c in head)


def _guess_linktype(payload: bytes) -> int:
    size = len(payload)
    if size >= 20 and payload[0] >> 4 == 4 and payload[0] & 15 >= 5:
        total = (payload[2] << 8) | payload[3]
        if total == size:
            return LINKTYPE_RAW
    if size >= 40 and payload[0] >> 4 == 6 and ((payload[4] << 8) | payload[5]) + 40 == size:
        return LINKTYPE_RAW
    if size >= 34:
        etype = (payload[12] << 8) | payload[13]
        if etype in (0x0800, 0x86DD, 0x8100, 0x88A8):
            return LINKTYPE_ETHERNET
    if size >= 36 and ((payload[14] << 8) | payload[15]) in (0x0800, 0x86DD) and payload[0] == 0:
        return LINKTYPE_LINUX_SLL
    return -1
