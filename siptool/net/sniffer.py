"""Live capture on Linux: an AF_PACKET socket, filtered in the kernel, read like tcpdump.

``Sniffer(interface, ports)`` opens a packet socket (packet(7)) on one interface, or on all of
them with ``any``, and attaches a classic BPF program (SO_ATTACH_FILTER, filter(7)) that passes
only UDP and TCP to or from the given ports, IPv4 and IPv6.  ``packets(count, duration)``
yields each captured packet with the kernel's receive time in nanoseconds (SO_TIMESTAMPNS,
socket(7)); ``decode_packets`` feeds them to ``capture.extract.PacketExtractor`` the way
``iter_capture`` feeds a file's records, and ``tee_pcapng`` saves them as they pass
(``capture.pcapng_write``).

The link type follows the interface's ARPHRD type, as libpcap's does: Ethernet and Linux
loopback (whose frames carry a 14-byte Ethernet header of zeros) are read with SOCK_RAW as
LINKTYPE_ETHERNET; an interface without a link header (ARPHRD_NONE: tun, WireGuard) as
LINKTYPE_RAW; anything else, and ``any``, with SOCK_DGRAM in "cooked" mode, each packet given
the 16-byte LINKTYPE_LINUX_SLL header built from the sockaddr_ll the kernel returns, so that
every interface's packets share one link type.

Decisions:

- The filter (``port_filter``) is the one tcpdump compiles for ``udp port P or tcp port P``
  (``tcpdump -d``), extended to IP fragments, which tcpdump's filter drops (a big INVITE over
  UDP is fragmented on real networks, and tshark reassembles it).  A first fragment is judged
  by its ports (for IPv6, those after the Fragment header, RFC 8200 §4.5); a later fragment
  carries no ports, so the kernel passes every later UDP or TCP fragment and user space
  (``_FragmentGate``) keeps only those of a datagram whose first fragment passed.  Other IPv6
  extension headers are not walked (as tcpdump does not): such a packet is not captured.
  Ports are merged into ranges, tested against the source and then the destination port
  through one shared block (X holds where the transport header is), so a long port list
  stays within the kernel's 4096 instructions.  An empty port set passes every UDP and TCP
  packet.
- Kernel-side filtering, not user space: a busy interface's other traffic never reaches Python.
  The socket is opened with a filter that rejects everything, bound, drained, and only then
  given the real filter, so not one packet from before the filter was ready is delivered
  (libpcap does the same).  When the constructor returns, the capture is running.
- On ``lo`` the kernel hands every packet to packet sockets twice, once as it leaves
  (PACKET_OUTGOING) and once as it comes back in (PACKET_HOST); libpcap drops the outgoing
  copy on the loopback device, and so does the filter here (SKF_AD_PKTTYPE, and for ``any``
  SKF_AD_IFINDEX), so the count, the order and the times are those of ``tcpdump -i lo``.
- The original length comes from recvmsg with MSG_TRUNC (the filter passes whole packets, so
  the kernel reports each one's full length); the copy to user space stops at the snaplen.
- The socket is non-blocking and waited on with poll(2), whose timeout is what is left of
  ``duration``: ``packets`` stops by itself, and Ctrl-C (KeyboardInterrupt) simply propagates
  out of the wait.  The socket closes in ``close``/``__exit__``.
- Errors are one line and exit 3 (``InputError``): a missing interface, a missing privilege
  (root or CAP_NET_RAW), an interface that goes down or away during the capture.
- VLAN tags that the kernel strips into metadata are not put back into the frame (libpcap
  does, from PACKET_AUXDATA): a tagged frame is captured untagged.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import select
import socket
import struct
import time
from collections import deque
from collections.abc import Collection, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from siptool.capture.extract import PacketExtractor
from siptool.capture.layers import (
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    IPPROTO_FRAGMENT,
    IPPROTO_TCP,
    IPPROTO_UDP,
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_RAW,
)
from siptool.capture.model import Problem, RawMessage
from siptool.capture.pcapng_write import PcapngWriter
from siptool.errors import InputError, UsageError

__all__ = [
    "ANY",
    "DEFAULT_SNAPLEN",
    "CapturedPacket",
    "Sniffer",
    "decode_packets",
    "port_filter",
    "tee_pcapng",
]

ANY = "any"
DEFAULT_SNAPLEN = 262144  # tcpdump's and Wireshark's default
SLL_HEADER_SIZE = 16

# Linux ABI numbers the socket module does not export (asm-generic/socket.h, if_packet.h,
# if_ether.h, if_arp.h, sockios.h, filter.h).
_ETH_P_ALL = 0x0003
_SOL_PACKET = 263
_PACKET_STATISTICS = 6
_SO_ATTACH_FILTER = 26
_SO_RCVBUFFORCE = 33
_SO_TIMESTAMPNS = 35  # SO_TIMESTAMPNS_OLD: a native struct timespec
_SIOCGIFHWADDR = 0x8927
_ARPHRD_ETHER = 1
_ARPHRD_LOOPBACK = 772
_ARPHRD_NONE = 0xFFFE
_PACKET_OUTGOING = 4
_RECEIVE_BUFFER = 4 << 20

_TIMESPEC = struct.Struct("@ll")
_ANCILLARY_SIZE = socket.CMSG_SPACE(_TIMESPEC.size)
_SLL = struct.Struct("!HHH8sH")
_STATS = struct.Struct("@II")


@dataclass(frozen=True, slots=True)
class CapturedPacket:
    """One packet as the kernel delivered it: ``data`` is the link-layer frame (cut at the
    snaplen), ``original_length`` its length on the wire, ``interface`` the name of the
    interface it was seen on (the real one under ``any``)."""

    time_ns: int
    linktype: int
    data: bytes
    original_length: int
    interface: str

    @property
    def time(self) -> float:
        """Epoch seconds, as ``PacketRecord`` and ``RawMessage`` carry them."""
        return self.time_ns / 1e9


# -- the BPF program (filter(7); tcpdump -d shows the same instructions) -----------------------

_LD_W_ABS = 0x20
_LD_H_ABS = 0x28
_LD_B_ABS = 0x30
_LD_H_IND = 0x48
_LDX_IMM = 0x01
_LDX_B_MSH = 0xB1
_JA = 0x05
_JEQ = 0x15
_JGT = 0x25
_JGE = 0x35
_JSET = 0x45
_RET = 0x06
_SKF_AD_OFF = -0x1000 & 0xFFFFFFFF
_SKF_AD_PROTOCOL = _SKF_AD_OFF + 0
_SKF_AD_PKTTYPE = _SKF_AD_OFF + 4
_SKF_AD_IFINDEX = _SKF_AD_OFF + 8
_ACCEPT = 0xFFFFFFFF  # the whole packet: the kernel reports its length, recvmsg cuts the copy
_REJECT = 0
_BPF_MAXINSNS = 4096
_INSTRUCTION = struct.Struct("@HBBI")

Jump = int | str  # a relative offset, or a label


class _Assembler:
    """Classic BPF with labels: conditional jumps must land within 255 instructions (the
    program is laid out so that they do), ``ja`` anywhere ahead."""

    def __init__(self) -> None:
        self._code: list[tuple[int, Jump, Jump, int | str]] = []
        self._labels: dict[str, int] = {}

    def label(self, name: str) -> None:
        self._labels[name] = len(self._code)

    def op(self, code: int, k: int = 0, jt: Jump = 0, jf: Jump = 0) -> None:
        self._code.append((code, jt, jf, k))

    def ja(self, label: str) -> None:
        self._code.append((_JA, 0, 0, label))

    def assemble(self) -> list[tuple[int, int, int, int]]:
        program = []
        for pc, (code, jt, jf, k) in enumerate(self._code):
            program.append((code, self._offset(pc, jt), self._offset(pc, jf), self._k(pc, k)))
        return program

    def _offset(self, pc: int, jump: Jump) -> int:
        offset = jump if isinstance(jump, int) else self._labels[jump] - pc - 1
        if not 0 <= offset <= 255:
            raise AssertionError(f"BPF jump of {offset} at {pc}")  # a layout bug, not input
        return offset

    def _k(self, pc: int, k: int | str) -> int:
        return k if isinstance(k, int) else self._labels[k] - pc - 1


def port_ranges(ports: Iterable[int]) -> list[tuple[int, int]]:
    """``ports`` as sorted, merged inclusive ranges; ValueError for a number not a port."""
    ranges: list[tuple[int, int]] = []
    for port in sorted(set(ports)):
        if not 0 <= port <= 0xFFFF:
            raise ValueError(f"not a port: {port}")
        if ranges and ranges[-1][1] + 1 == port:
            ranges[-1] = (ranges[-1][0], port)
        else:
            ranges.append((port, port))
    return ranges


def _port_tests(asm: _Assembler, ranges: list[tuple[int, int]]) -> None:
    """With A holding a port: accept when it is in one of ``ranges``, else fall through.
    Every test is followed by its own ``ret`` so that no jump reaches far."""
    for low, high in ranges:
        if low == high:
            asm.op(_JEQ, low, 0, 1)
        else:
            asm.op(_JGE, low, 0, 2)
            asm.op(_JGT, high, 1, 0)
        asm.op(_RET, _ACCEPT)


def _drop_loopback_outgoing(asm: _Assembler, loopback: int | None, on_loopback: bool) -> None:
    """libpcap's rule: the outgoing copy of a packet on the loopback device is not captured."""
    if on_loopback:
        asm.op(_LD_W_ABS, _SKF_AD_PKTTYPE)
        asm.op(_JEQ, _PACKET_OUTGOING, "reject", "start")
    elif loopback is not None:
        asm.op(_LD_W_ABS, _SKF_AD_PKTTYPE)
        asm.op(_JEQ, _PACKET_OUTGOING, 0, "start")
        asm.op(_LD_W_ABS, _SKF_AD_IFINDEX)
        asm.op(_JEQ, loopback, "reject", "start")
    asm.label("start")


def _transport_is_udp_or_tcp(asm: _Assembler, then: str) -> None:
    """With A holding an IP protocol number: to ``then`` for UDP or TCP, else fall through."""
    asm.op(_JEQ, IPPROTO_UDP, then, 0)
    asm.op(_JEQ, IPPROTO_TCP, then, 0)


def _ipv6(asm: _Assembler, ip: int) -> None:
    """IPv6 at ``ip``: UDP or TCP right after the fixed header (X = 40), or after a Fragment
    header (X = 48) when it is the first fragment; a later fragment is accepted."""
    asm.label("ipv6")
    asm.op(_LD_B_ABS, ip + 6)  # Next Header
    _transport_is_udp_or_tcp(asm, "ipv6-transport")
    asm.op(_JEQ, IPPROTO_FRAGMENT, 0, "reject")
    asm.op(_LD_B_ABS, ip + 40)  # the Fragment header's Next Header
    _transport_is_udp_or_tcp(asm, "ipv6-fragment")
    asm.ja("reject")
    asm.label("ipv6-fragment")
    asm.op(_LD_H_ABS, ip + 42)  # fragment offset (13 bits), reserved, M
    asm.op(_JSET, 0xFFF8, "accept", 0)
    asm.op(_LDX_IMM, 48)
    asm.ja("ports")
    asm.label("ipv6-transport")
    asm.op(_LDX_IMM, 40)
    asm.ja("ports")


def _ipv4(asm: _Assembler, ip: int) -> None:
    """IPv4 at ``ip``: UDP or TCP after the options (X = 4 * IHL); a fragment other than the
    first is accepted."""
    asm.label("ipv4")
    asm.op(_LD_B_ABS, ip + 9)  # Protocol
    _transport_is_udp_or_tcp(asm, "ipv4-transport")
    asm.ja("reject")
    asm.label("ipv4-transport")
    asm.op(_LD_H_ABS, ip + 6)  # flags, fragment offset
    asm.op(_JSET, 0x1FFF, "accept", 0)
    asm.op(_LDX_B_MSH, ip)  # X = 4 * IHL
    asm.ja("ports")


def port_filter(
    ports: Collection[int],
    *,
    link_header: int,
    ethertype_in_frame: bool,
    loopback: int | None = None,
    on_loopback: bool = False,
) -> bytes:
    """The classic BPF program (an array of struct sock_filter) passing UDP and TCP to or from
    ``ports`` (every UDP and TCP packet when ``ports`` is empty), IPv4 and IPv6, fragments
    included; see the module docstring.

    ``link_header`` is where the IP header starts in what the filter sees (14 for Ethernet
    read with SOCK_RAW, 0 for raw IP or SOCK_DGRAM); the EtherType is read at byte 12 when
    ``ethertype_in_frame``, else from the packet's metadata (SKF_AD_PROTOCOL).  ``on_loopback``
    (capturing on lo itself) or ``loopback`` (lo's ifindex, capturing on ``any``) drops the
    outgoing copy of loopback packets.  ValueError when the ports need more ranges than the
    kernel's 4096 instructions hold."""
    ranges = port_ranges(ports)
    asm = _Assembler()
    _drop_loopback_outgoing(asm, loopback, on_loopback)
    if ethertype_in_frame:
        asm.op(_LD_H_ABS, 12)
    else:
        asm.op(_LD_W_ABS, _SKF_AD_PROTOCOL)
    asm.op(_JEQ, ETHERTYPE_IPV4, "ipv4", 0)
    asm.op(_JEQ, ETHERTYPE_IPV6, "ipv6", "reject")
    _ipv6(asm, link_header)
    _ipv4(asm, link_header)
    asm.label("accept")
    asm.op(_RET, _ACCEPT)
    asm.label("reject")
    asm.op(_RET, _REJECT)
    asm.label("ports")
    if ranges:
        asm.op(_LD_H_IND, link_header)  # source port
        _port_tests(asm, ranges)
        asm.op(_LD_H_IND, link_header + 2)  # destination port
        _port_tests(asm, ranges)
        asm.op(_RET, _REJECT)
    else:
        asm.op(_RET, _ACCEPT)
    program = asm.assemble()
    if len(program) > _BPF_MAXINSNS:
        raise ValueError(
            f"{len(ranges)} port ranges need {len(program)} filter instructions;"
            f" the kernel takes {_BPF_MAXINSNS}"
        )
    return b"".join(_INSTRUCTION.pack(*instruction) for instruction in program)


_REJECT_ALL = _INSTRUCTION.pack(_RET, 0, 0, _REJECT)


def _attach(sock: socket.socket, program: bytes) -> None:
    """SO_ATTACH_FILTER: struct sock_fprog {unsigned short len; struct sock_filter *filter}."""
    code = ctypes.create_string_buffer(program, len(program))
    fprog = struct.pack("@HP", len(program) // _INSTRUCTION.size, ctypes.addressof(code))
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)


# -- the socket --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Link:
    """How an interface is read: socket type, link type, where IP starts in the frame."""

    sock_type: int
    linktype: int
    header: int


_COOKED = _Link(socket.SOCK_DGRAM, LINKTYPE_LINUX_SLL, 0)


def _link_of(interface: str) -> _Link:
    """The interface's ARPHRD type (SIOCGIFHWADDR, netdevice(7)) as a way of reading it;
    InputError when there is no such interface."""
    if interface == ANY:
        return _COOKED
    try:
        socket.if_nametoindex(interface)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
            request = struct.pack("16s24x", interface.encode())
            answer = fcntl.ioctl(probe.fileno(), _SIOCGIFHWADDR, request)
    except (OSError, ValueError, UnicodeError):
        raise InputError(f"no such interface: {interface}") from None
    (hatype,) = struct.unpack_from("@H", answer, 16)
    if hatype in (_ARPHRD_ETHER, _ARPHRD_LOOPBACK):
        return _Link(socket.SOCK_RAW, LINKTYPE_ETHERNET, 14)
    if hatype == _ARPHRD_NONE:
        return _Link(socket.SOCK_RAW, LINKTYPE_RAW, 0)
    return _COOKED


def _packet_socket(interface: str, sock_type: int) -> socket.socket:
    """A packet socket that delivers nothing yet (its filter rejects everything)."""
    try:
        sock = socket.socket(socket.AF_PACKET, sock_type, socket.htons(_ETH_P_ALL))
    except PermissionError:
        raise InputError(
            f"capturing on {interface} needs root or the CAP_NET_RAW capability"
        ) from None
    except OSError as exc:
        raise InputError(f"cannot capture on {interface}: {exc.strerror or exc}") from None
    try:
        _attach(sock, _REJECT_ALL)
    except BaseException:
        sock.close()
        raise
    return sock


def _enlarge_receive_buffer(sock: socket.socket) -> None:
    """Room for bursts: 4 MiB (libpcap takes 2), beyond rmem_max when privileged."""
    for option in (_SO_RCVBUFFORCE, socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, _RECEIVE_BUFFER)
            return
        except OSError:
            continue


def _drain(sock: socket.socket) -> None:
    """Drop what was queued before the real filter: at most what the buffer holds."""
    for _ in range(1 << 16):
        try:
            sock.recv(1, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return


def _loopback_index() -> int | None:
    try:
        return socket.if_nametoindex("lo")
    except OSError:
        return None


def _fragment(data: bytes, ip: int) -> tuple[bytes, bool] | None:
    """For an IP fragment at ``ip``: its datagram's reassembly key and whether it is the
    first fragment (offset 0); None for a whole datagram."""
    if len(data) < ip + 20:
        return None
    version = data[ip] >> 4
    if version == 4:
        field = (data[ip + 6] << 8) | data[ip + 7]
        if not field & 0x3FFF:
            return None
        key = data[ip + 12 : ip + 20] + data[ip + 4 : ip + 6] + data[ip + 9 : ip + 10]
        return key, not field & 0x1FFF
    if version == 6 and data[ip + 6] == IPPROTO_FRAGMENT and len(data) >= ip + 48:
        field = (data[ip + 42] << 8) | data[ip + 43]
        return data[ip + 8 : ip + 40] + data[ip + 44 : ip + 48], not field & 0xFFF8
    return None


class _FragmentGate:
    """The fragments after the first one carry no ports, so the kernel filter passes every
    one of them; here only those of a datagram whose first fragment passed the filter go on.

    A later fragment that comes before its first one is held (at most ``_HELD`` of them, for
    ``_HOLD_NS`` of capture time) and goes on right after it; one whose first fragment never
    comes belongs to another port (or was lost) and is dropped.  A datagram is wanted for
    Linux's ipfrag_time (30 s), at most ``_WANTED`` of them at once."""

    __slots__ = ("_held", "_wanted")

    _WANTED = 1024
    _WANTED_NS = 30_000_000_000
    _HELD = 256
    _HOLD_NS = 2_000_000_000

    def __init__(self) -> None:
        self._wanted: dict[bytes, int] = {}  # key -> time of its first fragment, oldest first
        self._held: deque[tuple[bytes, CapturedPacket]] = deque()

    def admit(
        self, packet: CapturedPacket, key: bytes, first: bool, ready: deque[CapturedPacket]
    ) -> None:
        """Append to ``ready`` what may go on now that ``packet`` came."""
        self._expire(packet.time_ns)
        if first:
            self._wanted.pop(key, None)
            self._wanted[key] = packet.time_ns
            if len(self._wanted) > self._WANTED:
                del self._wanted[next(iter(self._wanted))]
            ready.append(packet)
            if any(held == key for held, _ in self._held):
                ready.extend(p for held, p in self._held if held == key)
                self._held = deque((k, p) for k, p in self._held if k != key)
        elif key in self._wanted:
            ready.append(packet)
        else:
            self._held.append((key, packet))
            if len(self._held) > self._HELD:
                self._held.popleft()

    def _expire(self, now: int) -> None:
        wanted = self._wanted
        while wanted:
            oldest = next(iter(wanted))
            if now - wanted[oldest] <= self._WANTED_NS:
                break
            del wanted[oldest]
        held = self._held
        while held and now - held[0][1].time_ns > self._HOLD_NS:
            held.popleft()


class Sniffer:
    """A live capture on ``interface`` (``any`` for all of them) of UDP and TCP to or from
    ``ports``; running once constructed.  See the module docstring.

    ``linktype`` is the link type of every packet it yields; ``snaplen`` the most bytes of a
    packet kept (link header included)."""

    def __init__(
        self, interface: str, ports: Collection[int], snaplen: int = DEFAULT_SNAPLEN
    ) -> None:
        link = _link_of(interface)
        if snaplen <= link.header + SLL_HEADER_SIZE:
            raise UsageError(f"snaplen {snaplen} is too small to hold a packet's headers")
        try:
            program = self._program(interface, link, ports)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        self.interface = interface
        self.linktype = link.linktype
        self.snaplen = snaplen
        self._cooked = link.sock_type == socket.SOCK_DGRAM
        self._sock = _packet_socket(interface, link.sock_type)
        try:
            self._start(program)
        except OSError as exc:
            self._sock.close()
            raise InputError(f"cannot capture on {interface}: {exc.strerror or exc}") from None
        except BaseException:
            self._sock.close()
            raise
        self._buffer = bytearray(snaplen)
        skip = SLL_HEADER_SIZE if self._cooked else 0
        self._into = [memoryview(self._buffer)[skip:]]
        self._poller = select.poll()
        self._poller.register(self._sock.fileno(), select.POLLIN)
        self._ip = link.header + (SLL_HEADER_SIZE if self._cooked else 0)
        self._gate = _FragmentGate()
        self._ready: deque[CapturedPacket] = deque()
        self._received = 0
        self._dropped = 0

    @staticmethod
    def _program(interface: str, link: _Link, ports: Collection[int]) -> bytes:
        on_loopback = interface == "lo"
        return port_filter(
            ports,
            link_header=link.header,
            ethertype_in_frame=link.linktype == LINKTYPE_ETHERNET,
            loopback=None if on_loopback or interface != ANY else _loopback_index(),
            on_loopback=on_loopback,
        )

    def _start(self, program: bytes) -> None:
        sock = self._sock
        if self.interface != ANY:
            sock.bind((self.interface, _ETH_P_ALL))
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        _enlarge_receive_buffer(sock)
        _drain(sock)
        _attach(sock, program)
        sock.setblocking(False)

    def __enter__(self) -> Sniffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop capturing; the socket is closed (twice is harmless)."""
        if self._sock.fileno() >= 0:
            self._count_drops()
            self._sock.close()

    def fileno(self) -> int:
        return self._sock.fileno()

    @property
    def dropped(self) -> int:
        """Packets the filter passed but the kernel dropped for want of buffer room."""
        if self._sock.fileno() >= 0:
            self._count_drops()
        return self._dropped

    def _count_drops(self) -> None:
        # PACKET_STATISTICS counts since the last read (packet(7)): summed here.
        raw = self._sock.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, _STATS.size)
        packets, drops = _STATS.unpack(raw)
        self._received += packets
        self._dropped += drops

    def packets(
        self, count: int | None = None, duration: float | None = None
    ) -> Iterator[CapturedPacket]:
        """Captured packets as they arrive, until ``count`` of them or ``duration`` seconds
        (from this call); without either, until the caller stops (Ctrl-C propagates)."""
        if count is not None and count <= 0:
            return
        deadline = None if duration is None else time.monotonic() + duration
        taken = 0
        while True:
            wait: float | None = None
            if deadline is not None:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    return
            ready = self._ready
            if not ready:
                packet = self._receive()
                if packet is None:
                    self._wait(wait)
                    continue
                fragment = _fragment(packet.data, self._ip)
                if fragment is None:
                    ready.append(packet)
                else:
                    self._gate.admit(packet, *fragment, ready)
                    continue
            yield ready.popleft()
            taken += 1
            if taken == count:
                return

    def _wait(self, seconds: float | None) -> None:
        self._poller.poll(None if seconds is None else max(1, int(seconds * 1000 + 0.999)))

    def _receive(self) -> CapturedPacket | None:
        try:
            size, ancillary, _, address = self._sock.recvmsg_into(
                self._into, _ANCILLARY_SIZE, socket.MSG_TRUNC
            )
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            raise InputError(self._stopped(exc)) from None
        stamp = None
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                seconds, nanoseconds = _TIMESPEC.unpack_from(value)
                stamp = seconds * 1_000_000_000 + nanoseconds
        if stamp is None:
            stamp = time.time_ns()  # not expected: SO_TIMESTAMPNS stamps every packet
        if not self._cooked:
            data = bytes(self._into[0][: min(size, len(self._into[0]))])
            return CapturedPacket(stamp, self.linktype, data, size, self.interface)
        name, protocol, pkttype, hatype, hwaddr = address
        _SLL.pack_into(self._buffer, 0, pkttype, hatype, len(hwaddr), hwaddr[:8], protocol)
        end = SLL_HEADER_SIZE + min(size, len(self._into[0]))
        return CapturedPacket(
            stamp,
            LINKTYPE_LINUX_SLL,
            bytes(self._buffer[:end]),
            SLL_HEADER_SIZE + size,
            name or self.interface,
        )

    def _stopped(self, exc: OSError) -> str:
        if exc.errno == errno.ENETDOWN:
            return f"capture on {self.interface} stopped: the interface went down"
        if exc.errno in (errno.ENXIO, errno.ENODEV):
            return f"capture on {self.interface} stopped: the interface went away"
        return f"capture on {self.interface} stopped: {exc.strerror or exc}"


# -- what the captured packets become ----------------------------------------------------------


def decode_packets(
    packets: Iterable[CapturedPacket], extractor: PacketExtractor | None = None
) -> Generator[RawMessage | Problem, None, None]:
    """The SIP and STUN messages (and problems) in ``packets``, as ``iter_capture`` finds them
    in a file: frames numbered from 1, each message's ``offset`` 0 (there is no file).
    ``extractor`` is a fresh ``PacketExtractor`` built by the caller (one with a media sink,
    say); by default a plain one.

    A KeyboardInterrupt raised by ``packets`` (Ctrl-C during the sniffer's wait), or thrown
    into this generator, ends the input: what the TCP streams still hold is yielded, then the
    KeyboardInterrupt is raised again."""
    if extractor is None:
        extractor = PacketExtractor()
    out = extractor.out
    interrupted = False
    frame = 0
    try:
        for packet in packets:
            frame += 1
            data = packet.data
            extractor.packet(
                frame, packet.time, packet.linktype, 0, len(data), packet.original_length, 0, data
            )
            if out:
                yield from out
                out.clear()
    except KeyboardInterrupt:
        interrupted = True
    extractor.finish()
    yield from out
    out.clear()
    if interrupted:
        raise KeyboardInterrupt


def tee_pcapng(
    packets: Iterable[CapturedPacket], stream: BinaryIO, snaplen: int = DEFAULT_SNAPLEN
) -> Iterator[CapturedPacket]:
    """``packets`` passed on unchanged, each first written to ``stream`` as pcapng (one IDB
    per link type and interface name) and flushed, so that an interrupted capture keeps every
    packet it yielded."""
    writer = PcapngWriter(stream)
    stream.flush()
    for packet in packets:
        interface = writer.interface(packet.linktype, packet.interface, snaplen)
        writer.packet(interface, packet.time_ns, packet.data, packet.original_length)
        stream.flush()
        yield packet
