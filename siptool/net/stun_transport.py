"""asyncio I/O for STUN: UDP endpoints shared by many transactions, TCP and TLS connections.

The engine (``siptool.stun.transaction``) decides what to send and when; this module moves the
bytes and fires its timers.  One ``UdpEndpoint`` is one local socket: any number of
transactions toward any number of servers run on it at once, each response routed to its
transaction by transaction id (so one socket can ask several servers and compare what each of
them saw, and a response can be awaited on a socket other than the one that sent the request,
as the RFC 5780 §4.6 binding-lifetime test needs).  Binding *requests* arriving on a socket are
kept in ``requests_seen``: that is how the RFC 5780 §4.5 hairpinning test sees its own request
come back.

Decisions:

* ICMP errors end a wait at once, as they do for options-ping's connected sockets
  (``siptool.net.sip_transport``).  A STUN socket cannot be connected: stun-probe asks several
  servers from one socket to compare their mappings, and nat-type's CHANGE-REQUEST answers come
  from other addresses than the one asked (a connected socket never sees them).  So on Linux
  the socket sets ``IP_RECVERR``/``IPV6_RECVERR``: every ICMP error is queued with the request
  that caused it and the address of the host that sent it, and routed by the request's
  transaction id (or, when the ICMP quoted too little, by destination) to its exchange, which
  ends with ``Exchange.unreachable`` ("port unreachable") and ``unreachable_from``.  Elsewhere
  the schedule (capped by ``--timeout``) ends the wait.
* A datagram from an address a transaction waits on that is not that transaction's valid
  response (a wrong transaction id, a bad FINGERPRINT, not STUN at all) is routed to it and
  kept in ``Exchange.rejected``: a server that answers wrongly is not a silent one.  A response
  to one of our earlier transactions (a late answer after a retransmission) is not a rejection.
* Every transmission and every response is counted per transaction id (``sent``,
  ``responses``, late and duplicate responses included): nat-type measures the path's loss
  from them.
* TCP and TLS carry one message after the other, framed by the STUN header's length (RFC 8489
  §6.2.2); the length field bounds a message to 65,555 bytes, and siptool takes any message up
  to that size.  A frame still incomplete when the wait ends is named with its size ("incomplete
  STUN message from ...: 20 of 65555 bytes") instead of "timeout".
* ``-v`` output goes through ``siptool.terminal.terminal_safe``: a SOFTWARE or reason phrase
  with terminal control sequences is shown escaped.

SERVER text is parsed by ``siptool.stun.servers``; ``resolve_server`` looks the name up.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from siptool.addr import (
    Address,
    family_of,
    format_address,
    normalize_address,
    wildcard_address,
)
from siptool.errors import (
    LocalBindError,
    ParseError,
    TransportError,
)
from siptool.net.connect import (
    bind_address,
    bind_failure,
    certificate_failure,
    connect_stream,
    os_reason,
)
from siptool.net.pcap_tap import PcapTap, current_tap
from siptool.net.settings import LocalSettings
from siptool.net.tls import TlsOptions
from siptool.net.wirelog import TimedLog
from siptool.stun.framing import (
    HEADER_LENGTH,
    complete_frame_length,
    is_stun_byte,
    stun_frame_length,
    transaction_id,
)
from siptool.stun.message import StunClass, StunMessage, parse_stun
from siptool.stun.servers import StunServer
from siptool.stun.transaction import (
    DEFAULT_RC,
    DEFAULT_RM,
    DEFAULT_RTO,
    DEFAULT_TI,
    UNEXPECTED_SOURCE,
    Ignored,
    Response,
    Retransmit,
    StunClientTransaction,
    TimedOut,
    rejection,
)
from siptool.terminal import terminal_safe


async def resolve_server(
    server: StunServer, families: tuple[int, ...], timeout: float
) -> list[Address]:
    """The server's addresses (A/AAAA or a literal), in the order of ``families``.

    ``TransportError`` when there is none.  (RFC 8489 §8's SRV records are not looked up: a
    STUN server name in a SIP or WebRTC config is used with A/AAAA and an explicit port.)
    """
    loop = asyncio.get_running_loop()
    found: list[Address] = []
    for family in families:
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(server.host, server.port, family=family, type=socket.SOCK_DGRAM),
                timeout,
            )
        except (OSError, TimeoutError):
            continue
        for info in infos:
            address = (str(info[4][0]), int(info[4][1]))
            if address not in found:
                found.append(address)
    if not found:
        wanted = "/".join("IPv6" if f == socket.AF_INET6 else "IPv4" for f in families)
        raise TransportError(f"{server.host}: no {wanted} address")
    return found


# ---------------------------------------------------------------------------------- logging


def summarize(message: StunMessage) -> str:
    """One line per message for -v: class, method, id and the decoded attributes."""
    parts = [
        f"{message.method_name} {message.msg_class.label}"
        f"{' (RFC 3489)' if message.legacy else ''} id={message.transaction_id.hex()}"
    ]
    for attribute in message.attributes:
        parts.append(f"  {attribute.name}: {attribute.value}")
    return "\n".join(parts)


class StunLog(TimedLog):
    """-v: every message sent and received, decoded, with a timestamp, on stderr."""

    def describe(self, data: bytes) -> str:
        try:
            return summarize(parse_stun(data))
        except ParseError as exc:
            return f"not STUN ({exc}): {data[:64].hex()}"

    def note(self, text: str) -> None:
        if self.enabled:
            self.write(terminal_safe(text))


# -------------------------------------------------------------------------------- exchanges


@dataclass
class Exchange:
    """What one request got: a response (success or error class), or the reason it got none."""

    destination: Address
    transaction_id: bytes
    response: StunMessage | None = None
    source: Address | None = None
    rtt: float | None = None  # seconds, from the last transmission
    retransmitted: bool = False
    sends: int = 0
    elapsed: float = 0.0
    error: str | None = None  # "timeout", an ICMP error ("port unreachable") or a transport failure
    ignored: list[str] = field(default_factory=list)
    strays: list[Address] = field(default_factory=list)  # answers from addresses not accepted
    rejected: list[str] = field(default_factory=list)  # why answers from the peer were refused
    unreachable: str | None = None  # the ICMP error that ended the wait, "port unreachable"
    unreachable_from: str | None = None  # the IP of the host that sent it

    @property
    def ok(self) -> bool:
        return self.response is not None and self.response.msg_class is StunClass.SUCCESS_RESPONSE

    def answer(self, response: Response) -> None:
        """The response that ended the transaction."""
        self.response = response.message
        self.source = response.source
        self.rtt = response.rtt
        self.retransmitted = response.retransmitted
        self.sends = response.sends
        self.elapsed = response.elapsed

    def ignore(self, source: Address, event: Ignored) -> None:
        """A datagram routed to this exchange that is not its response (see the module docs)."""
        self.ignored.append(f"{format_address(*source)}: {event.reason}")
        if event.reason == UNEXPECTED_SOURCE:
            self.strays.append(source)
        refused = rejection(event)
        if refused is not None and refused not in self.rejected:
            self.rejected.append(refused)


@dataclass(frozen=True)
class Schedule:
    """RFC 8489 §6.2.1 parameters and the --timeout cap for one transaction."""

    cap: float | None = None
    rto: float = DEFAULT_RTO
    rc: int = DEFAULT_RC
    rm: float = DEFAULT_RM


@dataclass(frozen=True)
class Unreachable:
    """An ICMP error about a datagram we sent to ``destination``."""

    kind: str  # "port unreachable", "host unreachable", ...
    offender: str | None  # the IP of the host that sent the ICMP error
    destination: Address


_Item = tuple[bytes, Address, float] | TransportError | Unreachable


def _is_response(data: bytes) -> bool:
    # The class bit C1 (RFC 8489 §5): success and error responses.
    return len(data) >= 2 and is_stun_byte(data[0]) and bool(data[0] & 0x01)


class StunEndpoint:
    """A local socket or connection that transactions share; see the module docs."""

    transport_name = "udp"

    def __init__(self, log: StunLog | None = None) -> None:
        self.log = log or StunLog(False)
        self.local: Address = ("", 0)
        self._waiters: dict[bytes, asyncio.Queue[_Item]] = {}
        # tid -> (destination, addresses its response may come from), while it waits.
        self._routes: dict[bytes, tuple[Address, frozenset[Address]]] = {}
        self._ours: set[bytes] = set()  # every transaction id ever awaited here
        self.requests_seen: dict[bytes, tuple[Address, float]] = {}
        self.late: list[tuple[bytes, Address]] = []
        self.sent: Counter[bytes] = Counter()
        self.responses: Counter[bytes] = Counter()
        self.closed = False

    @property
    def reliable(self) -> bool:
        return self.transport_name != "udp"

    # -- receiving ---------------------------------------------------------------------

    def _on_message(self, data: bytes, source: Address) -> None:
        arrived = time.monotonic()
        self.log("recv", self.transport_name, self.local, source, data)
        tid = transaction_id(data)
        if tid is not None and (tid in self._waiters or tid in self._ours):
            if _is_response(data):
                self.responses[tid] += 1
            queue = self._waiters.get(tid)
            if queue is not None:
                queue.put_nowait((data, source, arrived))
            else:
                self.late.append((tid, source))
            return
        if tid is not None and data[0] == 0x00 and data[1] == 0x01:
            self.requests_seen[tid] = (source, arrived)  # a Binding request to us (hairpin)
            return
        # Not ours: a wrong transaction id or not STUN at all.  When it comes from where a
        # transaction waits for its answer, that transaction learns it was answered wrongly.
        sender = normalize_address(source)
        routed = False
        for waiting, (_, accepted) in list(self._routes.items()):
            if sender in accepted:
                self._waiters[waiting].put_nowait((data, source, arrived))
                routed = True
        if not routed and tid is not None:
            self.late.append((tid, source))

    def _on_unreachable(self, payload: bytes, item: Unreachable) -> None:
        """An ICMP error about ``payload`` (what the error quoted of the request we sent)."""
        tid = transaction_id(payload)
        if tid is not None and tid in self._waiters:
            self._waiters[tid].put_nowait(item)
            return
        # The ICMP quoted too little to name the transaction: every one toward that address.
        target = normalize_address(item.destination)
        for waiting, (destination, _) in list(self._routes.items()):
            if destination == target:
                self._waiters[waiting].put_nowait(item)

    def _fail_all(self, error: TransportError) -> None:
        for queue in self._waiters.values():
            queue.put_nowait(error)

    def expect(
        self, tid: bytes, destination: Address | None = None, accepted: list[Address] | None = None
    ) -> asyncio.Queue[_Item]:
        """Route messages with ``tid`` here; with ``destination``, also ICMP errors about it
        and wrong answers from it (and from ``accepted``)."""
        queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._waiters[tid] = queue
        self._ours.add(tid)
        if destination is not None:
            target = normalize_address(destination)
            sources = {target, *(normalize_address(a) for a in accepted or ())}
            self._routes[tid] = (target, frozenset(sources))
        return queue

    def forget(self, tid: bytes) -> None:
        self._waiters.pop(tid, None)
        self._routes.pop(tid, None)

    # -- sending -----------------------------------------------------------------------

    def send(self, data: bytes, destination: Address) -> None:
        raise NotImplementedError

    def _count_sent(self, data: bytes) -> None:
        tid = transaction_id(data)
        if tid is not None:
            self.sent[tid] += 1

    def pending_frame(self) -> tuple[int, int] | None:
        """(bytes received, bytes the header announces) of an incomplete stream frame."""
        return None

    async def request(
        self,
        destination: Address,
        wire: bytes,
        tid: bytes,
        schedule: Schedule | None = None,
        *,
        accept_from: list[Address] | None = None,
        accept_any_source: bool = False,
        receive_on: StunEndpoint | None = None,
    ) -> Exchange:
        """Run one transaction: send ``wire`` to ``destination`` and retransmit it on the
        RFC 8489 schedule until its response (which may arrive on ``receive_on``) or the end."""
        schedule = schedule or Schedule()
        tx = StunClientTransaction(
            wire,
            tid,
            destination,
            rto=schedule.rto,
            rc=schedule.rc,
            rm=schedule.rm,
            reliable=self.reliable,
            ti=DEFAULT_TI,  # RFC 8489 §6.2.2; --timeout caps it (deadline_cap)
            deadline_cap=schedule.cap,
            accept_from=accept_from,
            accept_any_source=accept_any_source,
        )
        inbox = receive_on or self
        if receive_on is None and not accept_any_source:
            queue = inbox.expect(tid, destination, accept_from)
        else:
            queue = inbox.expect(tid)
        exchange = Exchange(destination, tid)
        try:
            await self._wait(tx, queue, exchange)
        finally:
            inbox.forget(tid)
            if exchange.sends == 0:
                exchange.sends = tx.sends
        return exchange

    async def _wait(
        self, tx: StunClientTransaction, queue: asyncio.Queue[_Item], exchange: Exchange
    ) -> None:
        """Send the request, then wait and retransmit on the transaction's schedule until
        ``exchange`` holds the response, or why none came."""
        data, deadline = tx.start(time.monotonic())
        if not self._send_for(exchange, data):
            return
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                next_deadline = self._on_deadline(tx, exchange, deadline)
                if next_deadline is None:
                    return
                deadline = next_deadline
                continue
            if self._take(tx, exchange, item):
                return

    def _send_for(self, exchange: Exchange, data: bytes) -> bool:
        """Send ``data`` to the exchange's destination; False, with the error in ``exchange``,
        when the transport fails."""
        try:
            self.send(data, exchange.destination)
        except TransportError as exc:
            exchange.error = exc.message
            return False
        return True

    def _on_deadline(
        self, tx: StunClientTransaction, exchange: Exchange, deadline: float
    ) -> float | None:
        """The deadline passed: retransmit, and the next deadline; None when the exchange ended
        (timed out, or the retransmission failed)."""
        event = tx.on_timer(time.monotonic())
        if isinstance(event, Retransmit):
            return event.next_deadline if self._send_for(exchange, event.data) else None
        if isinstance(event, TimedOut):
            exchange.sends, exchange.elapsed = event.sends, event.elapsed
            exchange.error = "timeout"
            partial = self.pending_frame()
            if partial is not None:
                exchange.error = (
                    f"incomplete STUN message from {format_address(*exchange.destination)}: "
                    f"{partial[0]} of {partial[1]} bytes when the wait ended"
                )
            return None
        return deadline if event.next_deadline is None else event.next_deadline

    def _take(self, tx: StunClientTransaction, exchange: Exchange, item: _Item) -> bool:
        """What the endpoint routed to the exchange; True when it ends the exchange."""
        if isinstance(item, TransportError):
            exchange.sends = tx.sends
            exchange.error = item.message
            return True
        if isinstance(item, Unreachable):
            exchange.sends = tx.sends
            exchange.elapsed = time.monotonic() - tx.started
            exchange.error = exchange.unreachable = item.kind
            exchange.unreachable_from = item.offender
            return True
        data, source, arrived = item
        outcome = tx.on_datagram(data, source, arrived)
        if isinstance(outcome, Ignored):
            exchange.ignore(source, outcome)
            self.log.note(f"ignored from {format_address(*source)}: {outcome.reason}")
            return False
        exchange.answer(outcome)
        return True

    def close(self) -> None:
        self.closed = True


# --------------------------------------------------------------------------------------- UDP

# Linux <linux/in.h>, <linux/in6.h>, <linux/errqueue.h>; Python 3.11 lacks the constants.
_IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
_IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)
_SO_EE_ORIGIN_ICMP, _SO_EE_ORIGIN_ICMP6 = 2, 3
_EXTENDED_ERR = struct.Struct("=IBBBBII")  # ee_errno, origin, type, code, pad, info, data

# (origin, ICMP type, code) -> what it says; types not listed (time exceeded, packet too big,
# source quench) do not mean the destination refused the datagram.
_ICMP_KINDS = {
    (_SO_EE_ORIGIN_ICMP, 3, 0): "network unreachable",
    (_SO_EE_ORIGIN_ICMP, 3, 1): "host unreachable",
    (_SO_EE_ORIGIN_ICMP, 3, 2): "protocol unreachable",
    (_SO_EE_ORIGIN_ICMP, 3, 3): "port unreachable",
    (_SO_EE_ORIGIN_ICMP, 3, 9): "network administratively prohibited",
    (_SO_EE_ORIGIN_ICMP, 3, 10): "host administratively prohibited",
    (_SO_EE_ORIGIN_ICMP, 3, 13): "administratively prohibited",
    (_SO_EE_ORIGIN_ICMP6, 1, 0): "no route to destination",
    (_SO_EE_ORIGIN_ICMP6, 1, 1): "administratively prohibited",
    (_SO_EE_ORIGIN_ICMP6, 1, 3): "address unreachable",
    (_SO_EE_ORIGIN_ICMP6, 1, 4): "port unreachable",
}


def icmp_error(ancillary: bytes) -> tuple[str, str | None] | None:
    """(kind, offender IP) from an ``IP_RECVERR``/``IPV6_RECVERR`` control message (a
    ``struct sock_extended_err`` and the sender's ``sockaddr``); None when it is no
    unreachable error."""
    if len(ancillary) < _EXTENDED_ERR.size:
        return None
    _, origin, icmp_type, code, _, _, _ = _EXTENDED_ERR.unpack_from(ancillary)
    kind = _ICMP_KINDS.get((origin, icmp_type, code))
    if kind is None:
        return None
    offender: str | None = None
    raw = ancillary[_EXTENDED_ERR.size :]
    if len(raw) >= 8:
        family = int.from_bytes(raw[:2], sys.byteorder)
        if family == socket.AF_INET:
            offender = socket.inet_ntop(socket.AF_INET, raw[4:8])
        elif family == socket.AF_INET6 and len(raw) >= 24:
            offender = ipaddress.IPv6Address(raw[8:24]).compressed
    return kind, offender


class _DatagramProtocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: UdpEndpoint) -> None:
        self.endpoint = endpoint

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        host = str(addr[0]).split("%", 1)[0]
        source = (host, int(addr[1]))
        if self.endpoint.tap is not None:
            self.endpoint.tap.udp(self.endpoint.wire_local(source), source, data, False)
        self.endpoint._on_message(data, source)

    def error_received(self, exc: Exception) -> None:
        # With IP_RECVERR every ICMP error is queued: read the queue (which also stops the
        # socket from polling as readable forever) and route each to its exchange.  A
        # connected socket (the hairpin probe) also learns from ICMP port-unreachable that its
        # destination did not take the packet.
        self.endpoint.log.note(f"udp error on {format_address(*self.endpoint.local)}: {exc}")
        if isinstance(exc, ConnectionRefusedError) and self.endpoint.connected:
            self.endpoint.refused.set()
        self.endpoint._drain_errors()


def _socket_step(
    sock: socket.socket,
    step: Callable[[Address], None],
    what: str,
    address: Address,
    error: type[TransportError],
) -> None:
    """``step(address)`` (bind or connect ``sock``); when it fails the socket is closed and
    ``error`` says what could not be done."""
    try:
        step(address)
    except OSError as exc:
        sock.close()
        raise error(f"cannot {what} {format_address(*address)}: {exc.strerror or exc}") from None


class UdpEndpoint(StunEndpoint):
    """One UDP socket, unconnected unless opened with ``connect_to``."""

    transport_name = "udp"

    def __init__(self, log: StunLog | None = None) -> None:
        super().__init__(log)
        self._transport: asyncio.DatagramTransport | None = None
        self._sock: socket.socket | None = None
        self.refused = asyncio.Event()
        self.connected = False
        self.tap: PcapTap | None = current_tap()  # --pcap-out
        self._wire_locals: dict[str, Address] = {}

    @classmethod
    async def open(
        cls,
        family: int,
        *,
        local_address: str | None = None,
        local_port: int | None = None,
        log: StunLog | None = None,
        connect_to: Address | None = None,
    ) -> UdpEndpoint:
        """Bind a socket; ``LocalBindError`` when the address or port cannot be had.

        ``connect_to`` connects it, so that ICMP port-unreachable sets ``refused``; a
        destination that cannot be connected to (another address family, broadcast) is a
        ``TransportError``, not a bind failure."""
        endpoint = cls(log)
        loop = asyncio.get_running_loop()
        sock = socket.socket(family, socket.SOCK_DGRAM)
        bind_to = (local_address or wildcard_address(family), local_port or 0)
        if family == socket.AF_INET6:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        _socket_step(sock, sock.bind, "bind", bind_to, LocalBindError)
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError):
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVERR, 1)
                else:
                    sock.setsockopt(socket.IPPROTO_IP, _IP_RECVERR, 1)
        if connect_to is not None:
            _socket_step(sock, sock.connect, "connect to", connect_to, TransportError)
            endpoint.connected = True
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _DatagramProtocol(endpoint), sock=sock
        )
        endpoint._transport = transport
        endpoint._sock = sock
        name = transport.get_extra_info("sockname")
        endpoint.local = (str(name[0]), int(name[1]))
        return endpoint

    def _drain_errors(self) -> None:
        sock = self._sock
        if sock is None or self.closed or not hasattr(socket, "MSG_ERRQUEUE"):
            return
        for _ in range(64):  # bounded; the queue holds what the kernel kept
            try:
                payload, ancdata, _, address = sock.recvmsg(2048, 512, socket.MSG_ERRQUEUE)
            except OSError:
                return
            for level, kind, data in ancdata:
                if (level, kind) not in (
                    (socket.IPPROTO_IP, _IP_RECVERR),
                    (socket.IPPROTO_IPV6, _IPV6_RECVERR),
                ):
                    continue
                found = icmp_error(data)
                if found is None or not address:
                    continue
                destination = (str(address[0]).split("%", 1)[0], int(address[1]))
                self.log.note(
                    f"ICMP {found[0]} from {found[1] or '?'} about {format_address(*destination)}"
                )
                self._on_unreachable(payload, Unreachable(found[0], found[1], destination))

    def send(self, data: bytes, destination: Address) -> None:
        if self._transport is None or self._transport.is_closing():
            raise TransportError(f"udp socket {format_address(*self.local)} is closed")
        self.log("send", "udp", self.local, destination, data)
        self._count_sent(data)
        self._transport.sendto(data, destination)
        if self.tap is not None:
            self.tap.udp(self.wire_local(destination), destination, data, True)

    def wire_local(self, peer: Address) -> Address:
        """Our address in a datagram to or from ``peer``: the bound one, or for a wildcard
        bind the one the kernel uses toward ``peer`` (``pcap_tap``'s decisions)."""
        host = self.local[0]
        if host != wildcard_address(family_of(host)):
            return self.local
        found = self._wire_locals.get(peer[0])
        if found is None:
            found = (source_address_toward(peer) or host, self.local[1])
            self._wire_locals[peer[0]] = found
        return found

    def close(self) -> None:
        super().close()
        if self._transport is not None:
            self._transport.close()


def source_address_toward(destination: Address) -> str | None:
    """The local IP the kernel would use toward ``destination`` (a connected UDP socket
    sends nothing).  For a wildcard-bound socket this is the address a server sees when there
    is no NAT."""
    family = family_of(destination[0])
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(destination)
        except OSError:
            return None
        return str(probe.getsockname()[0]).split("%", 1)[0]


# ---------------------------------------------------------------------------------- TCP/TLS


class _StreamProtocol(asyncio.Protocol):
    def __init__(self, endpoint: StreamEndpoint) -> None:
        self.endpoint = endpoint
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            try:
                size = complete_frame_length(self.buffer)
            except ParseError as exc:
                self.endpoint._fail_all(
                    TransportError(f"{self.endpoint.name}: unframeable stream: {exc}")
                )
                self.buffer = b""
                return
            if size is None:
                return
            message, self.buffer = self.buffer[:size], self.buffer[size:]
            self.endpoint._on_message(message, self.endpoint.remote)

    def connection_lost(self, exc: Exception | None) -> None:
        reason = "closed by the server" if exc is None else str(exc)
        self.endpoint._fail_all(TransportError(f"{self.endpoint.name}: {reason}"))


class StreamEndpoint(StunEndpoint):
    """One TCP or TLS connection to one server (RFC 8489 §6.2.2).  ``protocol_class``
    frames the stream: a subclass that carries more than STUN (TURN's ChannelData) names
    its own."""

    protocol_class: type[_StreamProtocol] = _StreamProtocol

    def __init__(self, transport_name: str, remote: Address, log: StunLog | None = None) -> None:
        super().__init__(log)
        self.transport_name = transport_name
        self.remote = remote
        self._transport: asyncio.Transport | None = None
        self._protocol: _StreamProtocol | None = None
        self.connect_time: float | None = None
        self.tls_version: str | None = None

    @property
    def name(self) -> str:
        return f"{self.transport_name} to {format_address(*self.remote)}"

    @classmethod
    async def open(
        cls,
        transport_name: str,
        remote: Address,
        *,
        server_name: str | None = None,
        tls: TlsOptions | None = None,
        settings: LocalSettings | None = None,
        log: StunLog | None = None,
    ) -> StreamEndpoint:
        """Connect within ``settings.timeout``, from its local address and port if any."""
        settings = settings or LocalSettings()
        endpoint = cls(transport_name, remote, log)
        local = bind_address(settings.local_address, settings.local_port, family_of(remote[0]))
        context = (tls or TlsOptions()).context() if transport_name == "tls" else None
        started = time.monotonic()
        tap = current_tap()  # --pcap-out
        connect = connect_stream if tap is None else tap.connect_stream
        try:
            transport, protocol = await connect(
                lambda: cls.protocol_class(endpoint),
                remote,
                context=context,
                server_name=server_name,
                local=local,
                timeout=settings.timeout,
            )
        except TimeoutError:
            raise TransportError(f"{endpoint.name}: connect timed out") from None
        except ssl.SSLCertVerificationError as exc:
            raise certificate_failure(endpoint.name, exc) from None
        except ssl.SSLError as exc:
            raise TransportError(f"{endpoint.name}: TLS: {exc.reason or exc}") from None
        except OSError as exc:
            raise (
                bind_failure(exc, local) or TransportError(f"{endpoint.name}: {os_reason(exc)}")
            ) from None
        endpoint.connect_time = time.monotonic() - started
        endpoint._transport = transport
        endpoint._protocol = protocol
        name = transport.get_extra_info("sockname")
        endpoint.local = (str(name[0]), int(name[1]))
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            endpoint.tls_version = ssl_object.version()
        return endpoint

    def send(self, data: bytes, destination: Address) -> None:
        if self._transport is None or self._transport.is_closing():
            raise TransportError(f"{self.name}: connection is closed")
        self.log("send", self.transport_name, self.local, self.remote, data)
        self._count_sent(data)
        self._transport.write(data)

    def pending_frame(self) -> tuple[int, int] | None:
        protocol = self._protocol
        if protocol is None or not protocol.buffer:
            return None
        try:
            size = stun_frame_length(protocol.buffer)
        except ParseError:
            return None
        return len(protocol.buffer), size if size is not None else HEADER_LENGTH

    def close(self) -> None:
        super().close()
        if self._transport is not None:
            self._transport.close()


async def open_endpoint_for(
    server: StunServer,
    address: Address,
    *,
    udp: Callable[[int], Any],
    tls: TlsOptions,
    settings: LocalSettings,
    log: StunLog,
) -> StunEndpoint:
    """The endpoint to reach ``server`` at ``address``: the shared UDP socket of that address
    family (``udp(family)`` gives it), or a new TCP/TLS connection."""
    if server.transport == "udp":
        family = family_of(address[0])
        endpoint: StunEndpoint = await udp(family)
        return endpoint
    return await StreamEndpoint.open(
        server.transport, address, server_name=server.host, tls=tls, settings=settings, log=log
    )


__all__ = [
    "Exchange",
    "Schedule",
    "StreamEndpoint",
    "StunEndpoint",
    "StunLog",
    "UdpEndpoint",
    "Unreachable",
    "open_endpoint_for",
    "resolve_server",
    "source_address_toward",
    "summarize",
]
