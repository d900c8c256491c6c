"""pcap and pcapng readers over one bytes object holding the whole file.

Both yield ``PacketRecord`` tuples ``(frame, time, linktype, start, end, origlen, offset)``:
the 1-based packet number, epoch seconds (``None`` when the format has none: pcapng Simple
Packet Blocks), the link type, the captured packet as ``data[start:end]`` (no copy is made),
the original length on the wire, and the byte offset of the record (or block) in the file.
Damage is reported as ``Problem`` values in the same stream; a ``Problem`` with ``fatal`` set is
the last item.

pcap: all four magics (µs and ns resolution, either byte order) plus the "modified" pcap of
Kuznetzov's patches (0xa1b2cd34, 24-byte record headers).  The FCS length bits of the link-type
field are honoured.

pcapng: sections in either byte order, several interfaces per section (link type, snaplen,
``if_tsresol``, ``if_tsoffset``, ``if_fcslen`` from each IDB), Enhanced, Simple and the
obsolete Packet blocks; other block types are skipped (Custom and systemd Journal Export blocks
still take a frame number, as in Wireshark, so that numbers agree with tshark's).  Garbage
between blocks is reported and skipped up to the next plausible block, found by one forward scan
(damage is crossed in linear time).  A packet time that is no date (``time_in_range``; a damaged
``if_tsresol`` or ``if_tsoffset``) is kept as it is and reported once per interface.
"""

from __future__ import annotations

import mmap
import re
import struct
from collections.abc import Callable, Iterator

from siptool.capture.model import Problem, time_in_range

__all__ = [
    "PCAPNG_BYTE_ORDER_MAGIC",
    "PCAPNG_EPB",
    "PCAPNG_IDB",
    "PCAPNG_MAGIC",
    "PCAPNG_OPT_IF_TSRESOL",
    "PCAPNG_SHB",
    "PCAP_MAGICS",
    "Buffer",
    "PacketRecord",
    "iter_pcap",
    "iter_pcapng",
]

PacketRecord = tuple[int, float | None, int, int, int, int, int]
# What the readers walk: the file's bytes, or a read-only mapping of it (capture.source).
Buffer = bytes | mmap.mmap

# magic as the first 4 bytes of the file -> (byte order, fraction scale, record header size)
PCAP_MAGICS: dict[bytes, tuple[str, float, int]] = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6, 16),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6, 16),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9, 16),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9, 16),
    b"\x34\xcd\xb2\xa1": ("<", 1e-6, 24),
    b"\xa1\xb2\xcd\x34": (">", 1e-6, 24),
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"

# A record longer than this is damage, not a packet (Wireshark's own ceiling is 256 KiB for
# most link types; D-Bus and USB can reach 128 MiB, which is not what siptool reads).
_MAX_RECORD = 16 << 20

# pcapng block types and the options siptool reads (draft-ietf-opsawg-pcapng §4, §11); the
# public ones are the writer's too (capture/pcapng_write.py).
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D  # §4.1, in the writer's byte order
PCAPNG_IDB = 1
_PB = 2
_SPB = 3
_NRB = 4
_ISB = 5
PCAPNG_EPB = 6
# Blocks that carry no packet but that Wireshark counts as frames (custom, systemd journal).
_FRAME_BLOCKS = (0x0BAD, 0x40000BAD, 9)
_KNOWN_BLOCKS = (PCAPNG_IDB, _PB, _SPB, _NRB, _ISB, PCAPNG_EPB, 0x0A, 0x0BAD, 0x40000BAD, 9)

PCAPNG_OPT_IF_TSRESOL = 9
_OPT_IF_FCSLEN = 13
_OPT_IF_TSOFFSET = 14


def _where(frame: int, offset: int) -> str:
    return f"packet {frame}, byte {offset}"


def iter_pcap(data: Buffer) -> Iterator[PacketRecord | Problem]:
    """Records of a pcap file; see the module docstring."""
    size = len(data)
    if size < 24:
        yield Problem("byte 0", f"truncated pcap file header: {size} of 24 bytes", fatal=True)
        return
    magic = data[:4]
    if magic not in PCAP_MAGICS:
        yield Problem("byte 0", f"not a pcap file (magic {magic.hex()})", fatal=True)
        return
    order, scale, header_size = PCAP_MAGICS[magic]
    _, _, _, _, snaplen, network = struct.unpack_from(order + "HHiIII", data, 4)
    linktype = network & 0xFFFF
    # LINKTYPE_ field: bit 26 says the FCS length (in 16-bit words) is in bits 28-31.
    fcs = ((network >> 28) & 0xF) * 2 if network & 0x04000000 else 0
    unpack = struct.Struct(order + "IIII").unpack_from
    # Longer than both Wireshark's standard maximum and the snaplen: damage, not a packet.
    limit = min(_MAX_RECORD, max(262144, snaplen))
    offset = 24
    frame = 0
    last_sec = -1
    while offset < size:
        left = size - offset
        if left < header_size:
            yield Problem(
                _where(frame + 1, offset),
                f"truncated record header: {left} of {header_size} bytes",
                fatal=True,
            )
            return
        sec, frac, caplen, origlen = unpack(data, offset)
        start = offset + header_size
        end = start + caplen
        if caplen > limit:
            found = _pcap_resync(data, offset + 1, unpack, header_size, last_sec, scale, order)
            if found < 0:
                yield Problem(
                    _where(frame + 1, offset),
                    f"corrupt record header (captured length {caplen}); nothing more can be read",
                    fatal=True,
                )
                return
            yield Problem(
                _where(frame + 1, offset),
                f"corrupt record header (captured length {caplen}); skipped {found - offset} bytes",
            )
            offset = found
            continue
        if end > size:
            yield Problem(
                _where(frame + 1, offset),
                f"truncated record: {size - start} of {caplen} bytes",
                fatal=True,
            )
            return
        frame += 1
        last_sec = sec
        if fcs and caplen == origlen and caplen >= fcs:
            yield frame, sec + frac * scale, linktype, start, end - fcs, origlen - fcs, offset
        else:
            yield frame, sec + frac * scale, linktype, start, end, origlen, offset
        offset = end


def _pcap_resync(
    data: Buffer,
    offset: int,
    unpack: Callable[[Buffer, int], tuple[int, ...]],
    header_size: int,
    last_sec: int,
    scale: float,
    order: str,
) -> int:
    """Next offset where two consecutive plausible record headers start (or the file ends)."""
    size = len(data)
    frac_limit = 1_000_000 if scale > 1e-7 else 1_000_000_000

    def plausible(pos: int) -> int:
        if size - pos < header_size:
            return -1
        sec, frac, caplen, origlen = unpack(data, pos)
        if frac >= frac_limit or caplen > origlen or caplen > _MAX_RECORD or caplen == 0:
            return -1
        if last_sec >= 0 and abs(sec - last_sec) > 86400:
            return -1
        end = pos + header_size + caplen
        return end if end <= size else -1

    for match in _record_starts(order, scale).finditer(data, offset, size - header_size + 1):
        pos = match.start()
        end = plausible(pos)
        if end < 0:
            continue
        if end == size or plausible(end) >= 0:
            return pos
    return -1


def _record_starts(order: str, scale: float) -> re.Pattern[bytes]:
    """Offsets whose bytes may begin a record header: a cheap superset of the resync's
    ``plausible``, found by one scan in C, so that megabytes of damage are not walked a byte at
    a time in Python.

    In a record header (draft-ietf-opsawg-pcap §5) bytes 4-7 hold the fraction of the second,
    below 10^6 (0x000F4240) or 10^9 (0x3B9ACA00): its top byte is 0 and the next at most 0x0F,
    or its top byte is at most 0x3B.  Bytes 8-11 hold the captured length, at most 16 MiB
    (0x01000000): its top byte is 0 or 1.
    """
    micro = scale > 1e-7
    pattern = _RECORD_STARTS.get((order, micro))
    if pattern is None:
        if order == ">":
            frac = rb"\x00[\x00-\x0f].." if micro else rb"[\x00-\x3b]..."
            caplen = rb"[\x00\x01]"
        else:
            frac = rb"..[\x00-\x0f]\x00" if micro else rb"...[\x00-\x3b]"
            caplen = rb"...[\x00\x01]"
        pattern = re.compile(rb"(?=.{4}" + frac + caplen + rb")", re.DOTALL)
        _RECORD_STARTS[(order, micro)] = pattern
    return pattern


_RECORD_STARTS: dict[tuple[str, bool], re.Pattern[bytes]] = {}


class _Interface:
    __slots__ = ("bad_time", "fcs", "linktype", "snaplen", "tsoffset", "units")

    def __init__(self, linktype: int, snaplen: int, units: int, tsoffset: int, fcs: int) -> None:
        self.linktype = linktype
        self.snaplen = snaplen
        self.units = units
        self.tsoffset = tsoffset
        self.fcs = fcs
        self.bad_time = False  # a time out of the range of dates was reported


def _parse_idb(data: Buffer, offset: int, length: int, order: str) -> _Interface:
    linktype, _, snaplen = struct.unpack_from(order + "HHI", data, offset + 8)
    units = 1_000_000
    tsoffset = 0
    fcs = 0
    pos = offset + 16
    end = offset + length - 4
    while pos + 4 <= end:
        code, olen = struct.unpack_from(order + "HH", data, pos)
        value = pos + 4
        if code == 0 or value + olen > end:
            break
        if code == PCAPNG_OPT_IF_TSRESOL and olen >= 1:
            resol = data[value]
            units = 2 ** (resol & 0x7F) if resol & 0x80 else 10 ** min(resol, 30)
        elif code == _OPT_IF_TSOFFSET and olen >= 8:
            (tsoffset,) = struct.unpack_from(order + "q", data, value)
        elif code == _OPT_IF_FCSLEN and olen >= 1:
            fcs = data[value]
        pos = value + ((olen + 3) & ~3)
    return _Interface(linktype, snaplen, units, tsoffset, fcs)


def _section_order(data: Buffer, offset: int) -> str | None:
    """The byte order of the Section Header Block at ``offset`` from its byte-order magic
    (pcapng §4.1): ``"<"``, ``">"``, or None when the magic is neither."""
    bom = data[offset + 8 : offset + 12]
    for order in "<>":
        if bom == struct.pack(order + "I", PCAPNG_BYTE_ORDER_MAGIC):
            return order
    return None


def _block_ok(data: Buffer, offset: int, order: str) -> bool:
    """A plausible block starts at ``offset``: known type, sane length, trailer equal."""
    size = len(data)
    if size - offset < 12:
        return False
    btype = struct.unpack_from(order + "I", data, offset)[0]
    if btype == PCAPNG_SHB:
        section = _section_order(data, offset)
        if section is None:
            return False
        order = section
    elif btype not in _KNOWN_BLOCKS:
        return False
    length = struct.unpack_from(order + "I", data, offset + 4)[0]
    if length < 12 or length % 4 or offset + length > size:
        return False
    return bool(struct.unpack_from(order + "I", data, offset + length - 4)[0] == length)


def _block_starts(order: str) -> re.Pattern[bytes]:
    """Every offset (overlapping ones too: a zero-width match) where a known block type is."""
    types = (struct.pack(order + "I", t) for t in (*_KNOWN_BLOCKS, PCAPNG_SHB))
    return re.compile(b"(?=" + b"|".join(re.escape(t) for t in types) + b")")


_BLOCK_STARTS = {order: _block_starts(order) for order in "<>"}


def _pcapng_resync(data: Buffer, offset: int, order: str) -> int:
    """The next offset from ``offset`` where a plausible block starts, or -1.

    One scan for all the block types at once (a regular expression in C), each candidate checked
    in constant time: damage full of block-type words is crossed in linear time.
    """
    for match in _BLOCK_STARTS[order].finditer(data, offset):
        hit = match.start()
        if _block_ok(data, hit, order):
            return hit
    return -1


def iter_pcapng(data: Buffer) -> Iterator[PacketRecord | Problem]:
    """Records of a pcapng file; see the module docstring."""
    size = len(data)
    offset = 0
    frame = 0
    order = "<"
    interfaces: list[_Interface] = []
    u32 = struct.Struct("<I").unpack_from
    epb = struct.Struct("<IIIII").unpack_from
    seen_shb = False
    if not size:
        yield Problem("byte 0", "empty pcapng file", fatal=True)
    while offset < size:
        left = size - offset
        if left < 12:
            yield Problem(
                f"byte {offset}", f"truncated block header: {left} of 12 bytes", fatal=True
            )
            return
        btype = u32(data, offset)[0]
        if btype == PCAPNG_SHB:
            section = _section_order(data, offset)
            if section is None:
                bom = data[offset + 8 : offset + 12]
                yield Problem(
                    f"byte {offset}", f"bad section header byte-order magic {bom.hex()}", fatal=True
                )
                return
            order = section
            u32 = struct.Struct(order + "I").unpack_from
            epb = struct.Struct(order + "IIIII").unpack_from
            interfaces = []
            seen_shb = True
        elif not seen_shb:
            yield Problem("byte 0", "not a pcapng file (no section header block)", fatal=True)
            return
        length = u32(data, offset + 4)[0]
        packet_block = btype in (PCAPNG_EPB, _SPB, _PB)
        fits = offset + length <= size
        known = btype == PCAPNG_SHB or btype in _KNOWN_BLOCKS
        if (
            length < 12
            or length % 4
            or (fits and u32(data, offset + length - 4)[0] != length)
            or (not fits and not known)
        ):
            found = _pcapng_resync(data, offset + 1, order)
            if found < 0:
                yield Problem(
                    f"byte {offset}",
                    f"garbage instead of a block (type 0x{btype:08x}, length {length});"
                    " nothing more can be read",
                    fatal=True,
                )
                return
            yield Problem(
                f"byte {offset}",
                f"garbage between blocks: skipped {found - offset} bytes",
            )
            offset = found
            continue
        if not fits:
            where = _where(frame + 1, offset) if packet_block else f"byte {offset}"
            yield Problem(where, f"truncated block: {left} of {length} bytes", fatal=True)
            return
        if btype in (PCAPNG_EPB, _PB):
            frame += 1
            if length < 32:
                yield Problem(_where(frame, offset), f"packet block too short: {length} bytes")
                offset += length
                continue
            if btype == PCAPNG_EPB:
                iface, hi, lo, caplen, origlen = epb(data, offset + 8)
            else:
                iface_and_drops, hi, lo, caplen, origlen = epb(data, offset + 8)
                iface = iface_and_drops >> 16 if order == ">" else iface_and_drops & 0xFFFF
            start = offset + 28
            if start + caplen > offset + length - 4:
                yield Problem(
                    _where(frame, offset),
                    f"captured length {caplen} does not fit in a block of {length} bytes",
                )
                offset += length
                continue
            if iface >= len(interfaces):
                yield Problem(_where(frame, offset), f"unknown interface {iface}")
                offset += length
                continue
            itf = interfaces[iface]
            time = ((hi << 32) | lo) / itf.units + itf.tsoffset
            if not itf.bad_time and not time_in_range(time):
                # Kept as it is (views show it as seconds); said once per interface, since
                # if_tsresol or if_tsoffset put every packet of the interface there.
                itf.bad_time = True
                yield Problem(
                    _where(frame, offset),
                    f"timestamp out of range: {time:.17g} seconds since the epoch is no date"
                    f" in years 1-9999 (interface {iface}: {itf.units:.3g} ticks/s,"
                    f" if_tsoffset {itf.tsoffset} s); shown as seconds, not reported again"
                    " for this interface",
                )
            end = start + caplen
            if itf.fcs and caplen == origlen and caplen >= itf.fcs:
                end -= itf.fcs
                origlen -= itf.fcs
            yield frame, time, itf.linktype, start, end, origlen, offset
        elif btype == _SPB:
            frame += 1
            if not interfaces:
                yield Problem(_where(frame, offset), "simple packet block before any interface")
                offset += length
                continue
            itf = interfaces[0]
            origlen = u32(data, offset + 8)[0]
            caplen = min(origlen, length - 16)
            if itf.snaplen:
                caplen = min(caplen, itf.snaplen)
            start = offset + 12
            yield frame, None, itf.linktype, start, start + caplen, origlen, offset
        elif btype in _FRAME_BLOCKS:
            frame += 1  # tshark numbers custom and systemd-journal blocks as frames too
        elif btype == PCAPNG_IDB:
            if length < 20:
                yield Problem(f"byte {offset}", f"interface block too short: {length} bytes")
            else:
                interfaces.append(_parse_idb(data, offset, length, order))
        offset += length
