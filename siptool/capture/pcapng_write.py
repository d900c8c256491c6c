"""A pcapng writer: what siptool captured, saved in the format tshark and Wireshark read.

The file is one section (draft-ietf-opsawg-pcapng §4.1, Section Header Block), one Interface
Description Block per (link type, interface name) pair the caller announces (§4.2), and one
Enhanced Packet Block per packet (§4.3).  Every block is the general block structure of §3.1:
type, total length, body padded to 32 bits, the total length again.  Options follow §3.5: code,
length, value padded to 32 bits, ended by ``opt_endofopt``.

Pure engine code: it writes to the binary stream it is given and reads no clock.  Each block
is built whole and handed to ``stream.write`` in one call, so a reader of a file that is still
being written sees whole blocks once the caller flushes.

Decisions:

- Timestamps are nanoseconds (``if_tsresol`` = 9, §4.2): the kernel gives receive times in
  nanoseconds (SO_TIMESTAMPNS), and a writer that kept microseconds would lose what a reader
  of the live capture saw.
- One IDB per (link type, name), asked for once with ``interface`` and reused: a capture on
  Linux's ``any`` names the real interface of each packet, as tcpdump's pcapng does, and an
  Ethernet and a cooked interface need separate IDBs since the link type is per IDB.
- A packet longer than its interface's snaplen is cut to it, the original length kept in the
  EPB (§4.3: the captured length never exceeds the snaplen when one is given).
- Flushing is the caller's choice: the live capture flushes after every packet so that Ctrl-C
  loses nothing; a bulk writer (``--pcap-out``) may let the stream buffer.
- Little-endian, whatever the host: the byte-order magic says which (§4.1), and every reader
  takes both.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from siptool import __version__
from siptool.capture.pcap import (
    PCAPNG_BYTE_ORDER_MAGIC,
    PCAPNG_EPB,
    PCAPNG_IDB,
    PCAPNG_OPT_IF_TSRESOL,
    PCAPNG_SHB,
)

__all__ = ["NANOSECOND_RESOLUTION", "PcapngWriter"]

_UNKNOWN_SECTION_LENGTH = -1  # §4.1: the section length is not given

_OPT_ENDOFOPT = 0
_OPT_SHB_USERAPPL = 4  # §4.1
_OPT_IF_NAME = 2  # §4.2
NANOSECOND_RESOLUTION = 9  # if_tsresol: 10^-9 s ticks

_HEAD = struct.Struct("<II")
_TRAILER = struct.Struct("<I")
_SHB_FIELDS = struct.Struct("<IHHq")
_IDB_FIELDS = struct.Struct("<HHI")
_EPB_FIELDS = struct.Struct("<IIIII")
_OPTION = struct.Struct("<HH")
_END_OF_OPTIONS = _OPTION.pack(_OPT_ENDOFOPT, 0)
_MAX_U32 = 0xFFFFFFFF
_MAX_U64 = 0xFFFFFFFFFFFFFFFF


def _padding(size: int) -> bytes:
    return b"\0" * (-size & 3)


def _option(code: int, value: bytes) -> bytes:
    """One option (§3.5): code, length, the value padded to 32 bits."""
    return _OPTION.pack(code, len(value)) + value + _padding(len(value))


def _block(block_type: int, body: bytes) -> bytes:
    """The general block structure (§3.1) around ``body`` (already padded to 32 bits)."""
    total = 12 + len(body)
    return _HEAD.pack(block_type, total) + body + _TRAILER.pack(total)


class PcapngWriter:
    """Writes one pcapng section to ``stream``: the SHB at once, an IDB per ``interface``
    call, an EPB per ``packet`` call.

    ``stream`` is any binary file object; the writer never flushes or closes it."""

    __slots__ = ("_interfaces", "_snaplens", "_stream")

    def __init__(self, stream: BinaryIO, *, application: str | None = None) -> None:
        self._stream = stream
        self._interfaces: dict[tuple[int, str], int] = {}
        self._snaplens: list[int] = []
        userappl = application if application is not None else f"siptool {__version__}"
        body = _SHB_FIELDS.pack(PCAPNG_BYTE_ORDER_MAGIC, 1, 0, _UNKNOWN_SECTION_LENGTH)
        body += _option(_OPT_SHB_USERAPPL, userappl.encode("utf-8")) + _END_OF_OPTIONS
        stream.write(_block(PCAPNG_SHB, body))

    def interface(self, linktype: int, name: str, snaplen: int = 262144) -> int:
        """The interface id of (``linktype``, ``name``), writing its IDB the first time.

        ``snaplen`` 0 means no limit (§4.2).  A later call for the same pair returns the same
        id whatever its snaplen: the first IDB is the one packets refer to."""
        key = (linktype, name)
        found = self._interfaces.get(key)
        if found is not None:
            return found
        if not 0 <= linktype <= 0xFFFF or not 0 <= snaplen <= _MAX_U32:
            raise ValueError(f"link type {linktype} or snaplen {snaplen} out of range")
        body = _IDB_FIELDS.pack(linktype, 0, snaplen)
        body += _option(_OPT_IF_NAME, name.encode("utf-8"))
        body += _option(PCAPNG_OPT_IF_TSRESOL, bytes((NANOSECOND_RESOLUTION,)))
        body += _END_OF_OPTIONS
        self._stream.write(_block(PCAPNG_IDB, body))
        number = len(self._snaplens)
        self._interfaces[key] = number
        self._snaplens.append(snaplen)
        return number

    def packet(
        self,
        interface_id: int,
        time_ns: int,
        data: bytes,
        original_length: int | None = None,
    ) -> None:
        """One EPB: ``data`` as captured on interface ``interface_id`` at ``time_ns``
        nanoseconds since the epoch; ``original_length`` is its length on the wire (default:
        ``len(data)``, never less than what is written)."""
        if not 0 <= interface_id < len(self._snaplens):
            raise ValueError(f"unknown interface {interface_id}: call interface() first")
        if not 0 <= time_ns <= _MAX_U64:
            raise ValueError(f"time {time_ns} ns is not an unsigned 64-bit timestamp")
        whole = len(data)
        original = whole if original_length is None else max(whole, original_length)
        snaplen = self._snaplens[interface_id]
        if snaplen and whole > snaplen:
            data = data[:snaplen]
        caplen = len(data)
        if original > _MAX_U32:
            raise ValueError(f"original length {original} does not fit in 32 bits")
        fields = _EPB_FIELDS.pack(interface_id, time_ns >> 32, time_ns & _MAX_U32, caplen, original)
        self._stream.write(_block(PCAPNG_EPB, fields + data + _padding(caplen)))
