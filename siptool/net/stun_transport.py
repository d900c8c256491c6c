"""asyncio I/O for STUN: UDP endpoints shared by many transactions, TCP and TLS connections.

The engine (``siptool.stun.transaction``) decides what to send and when; this module moves the
bytes and fires its timers.  One ``UdpEndpoint`` is one local socket: any number of
transactions toward any number of servers run on it at once, each response routed to its
transaction by transaction id (so one socket can ask several servers and compare what each of
them saw, and a response can be awaited on a socket other than the one that sent the request,
as the RFC 5780 §4.6 binding-lifetime test needs).  Binding *requests* arriving on a socket are
kept in ``requests_seen``: that is how the RFC 5780 §4.5 hairpinning test sees its own request
come back.

The UDP socket is not connected, so an ICMP port-unreachable does not end a wait early; the
transaction's schedule (capped by ``--timeout``) does.  TCP and TLS carry one message after the
other, framed by the STUN header's length (RFC 8489 §6.2.2).

SERVER text (shared/cli-contract.md): ``host``, ``host:port``, ``[v6]:port`` or an RFC 7064
``stun:``/``stuns:`` URI.  ``?transport=udp|tcp`` on a ``stun:`` URI is accepted as well (RFC 7065
puts it on ``turn:`` URIs, and people copy it over).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from siptool.errors import LocalBindError, ParseError, TransportError
from siptool.net.tls import TlsOptions
from siptool.numbers import is_decimal
from siptool.stun.message import (
    HEADER_LENGTH,
    MAGIC_COOKIE,
    StunClass,
    StunMessage,
    format_address,
    parse_stun,
    stun_frame_length,
)
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
)

Address = tuple[str, int]

DEFAULT_PORT = {"udp": 3478, "tcp": 3478, "tls": 5349}  # RFC 8489 §18.1, RFC 7064 §3.2

# Used when no SERVER is given (README "stun-probe"); --server-list or SIPTOOL_STUN_SERVERS
# replace it.  Well-known public servers run by large operators, over UDP.
DEFAULT_SERVERS = (
    "stun:stun.l.google.com:19302",
    "stun:stun1.l.google.com:19302",
    "stun:stun.cloudflare.com:3478",
)


def split_server_list(text: str) -> list[str]:
    """A list given as text: commas and/or whitespace between servers."""
    return [item for item in text.replace(",", " ").split() if item]


def families_from_flags(only4: bool, only6: bool) -> tuple[int, ...]:
    """-4 / -6 as address families to try, in order."""
    if only4 and not only6:
        return (socket.AF_INET,)
    if only6 and not only4:
        return (socket.AF_INET6,)
    return (socket.AF_INET, socket.AF_INET6)


_COOKIE = MAGIC_COOKIE.to_bytes(4, "big")


# ------------------------------------------------------------------------------- SERVER text


@dataclass(frozen=True)
class StunServer:
    """One SERVER as the user gave it: host without brackets, port, transport."""

    text: str
    host: str
    port: int
    transport: str  # udp, tcp, tls

    @property
    def hostport(self) -> str:
        return format_address(self.host, self.port)


def parse_server(text: str, transport: str | None = None) -> StunServer:
    """Parse SERVER; ``transport`` is the --transport flag, which a URI's scheme overrides.

    ``ParseError`` names what is wrong.
    """
    raw = text.strip()
    if not raw:
        raise ParseError("empty STUN server")
    chosen = (transport or "udp").lower()
    rest = raw
    scheme = raw.split(":", 1)[0].lower() if ":" in raw else ""
    if scheme in ("stun", "stuns"):
        rest = raw.split(":", 1)[1]
        if rest.startswith("//"):
            raise ParseError(f"{raw!r}: a stun: URI has no '//' (RFC 7064: stun:host[:port])")
        rest, _, query = rest.partition("?")
        if scheme == "stuns":
            chosen = "tls"
        else:
            chosen = "udp" if transport is None or transport.lower() == "tls" else chosen
        for item in filter(None, query.split("&")):
            key, _, value = item.partition("=")
            if key.lower() != "transport" or value.lower() not in ("udp", "tcp"):
                raise ParseError(f"{raw!r}: unsupported URI parameter {item!r}")
            if scheme == "stun":
                chosen = value.lower()
    if chosen not in DEFAULT_PORT:
        raise ParseError(f"unsupported transport {chosen!r} (udp, tcp or tls)")
    port: int | None = None
    if rest.startswith("["):
        host, sep, tail = rest[1:].partition("]")
        if not sep:
            raise ParseError(f"{raw!r}: unclosed '[' in IPv6 address")
        if tail:
            if not tail.startswith(":"):
                raise ParseError(f"{raw!r}: junk after ']'")
            port = _port(tail[1:], raw)
    elif rest.count(":") > 1:
        host = rest  # a bare IPv6 address
    elif ":" in rest:
        host, _, port_text = rest.partition(":")
        port = _port(port_text, raw)
    else:
        host = rest
    if not host:
        raise ParseError(f"{raw!r}: no host")
    if ":" in host:
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise ParseError(f"{raw!r}: not an IPv6 address: {host!r}") from None
    return StunServer(raw, host, port or DEFAULT_PORT[chosen], chosen)


def _port(text: str, raw: str) -> int:
    if not is_decimal(text, 5) or not 0 < int(text) < 65536:
        raise ParseError(f"{raw!r}: bad port {text!r}")
    return int(text)


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


class StunLog:
    """-v: every message sent and received, decoded, with a timestamp, on stderr."""

    def __init__(self, enabled: bool, out: IO[str] | None = None) -> None:
        self.enabled = enabled
        self.out = out or sys.stderr
        self.start = time.monotonic()

    def __call__(
        self, direction: str, transport: str, local: Address, remote: Address, data: bytes
    ) -> None:
        if not self.enabled:
            return
        stamp = time.monotonic() - self.start
        arrow = "->" if direction == "send" else "<-"
        try:
            text = summarize(parse_stun(data))
        except ParseError as exc:
            text = f"not STUN ({exc}): {data[:64].hex()}"
        self.out.write(
            f"[{stamp:9.6f}] {direction} {transport.upper()} "
            f"{format_address(*local)} {arrow} {format_address(*remote)}\n{text}\n\n"
        )
        self.out.flush()

    def note(self, text: str) -> None:
        if self.enabled:
            self.out.write(f"[{time.monotonic() - self.start:9.6f}] {text}\n")
            self.out.flush()


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
    error: str | None = None  # "timeout" or a transport failure
    ignored: list[str] = field(default_factory=list)
    strays: list[Address] = field(default_factory=list)  # answers from addresses not accepted

    @property
    def ok(self) -> bool:
        return self.response is not None and self.response.msg_class is StunClass.SUCCESS_RESPONSE


@dataclass(frozen=True)
class Schedule:
    """RFC 8489 §6.2.1 parameters and the --timeout cap for one transaction."""

    cap: float | None = None
    rto: float = DEFAULT_RTO
    rc: int = DEFAULT_RC
    rm: float = DEFAULT_RM


_Item = tuple[bytes, Address, float] | TransportError


def _transaction_id(data: bytes) -> bytes | None:
    if len(data) < HEADER_LENGTH or data[0] >= 0x40:
        return None
    return data[8:HEADER_LENGTH] if data[4:8] == _COOKIE else data[4:HEADER_LENGTH]


class StunEndpoint:
    """A local socket or connection that transactions share; see the module docs."""

    transport_name = "udp"

    def __init__(self, log: StunLog | None = None) -> None:
        self.log = log or StunLog(False)
        self.local: Address = ("", 0)
        self._waiters: dict[bytes, asyncio.Queue[_Item]] = {}
        self.requests_seen: dict[bytes, tuple[Address, float]] = {}
        self.late: list[tuple[bytes, Address]] = []
        self.closed = False

    @property
    def reliable(self) -> bool:
        return self.transport_name != "udp"

    # -- receiving ---------------------------------------------------------------------

    def _on_message(self, data: bytes, source: Address) -> None:
        arrived = time.monotonic()
        self.log("recv", self.transport_name, self.local, source, data)
        tid = _transaction_id(data)
        if tid is None:
            return
        queue = self._waiters.get(tid)
        if queue is not None:
            queue.put_nowait((data, source, arrived))
            return
        if len(data) > 1 and data[0] == 0x00 and data[1] == 0x01:
            self.requests_seen[tid] = (source, arrived)  # a Binding request to us (hairpin)
        else:
            self.late.append((tid, source))

    def _fail_all(self, error: TransportError) -> None:
        for queue in self._waiters.values():
            queue.put_nowait(error)

    def expect(self, tid: bytes) -> asyncio.Queue[_Item]:
        queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._waiters[tid] = queue
        return queue

    def forget(self, tid: bytes) -> None:
        self._waiters.pop(tid, None)

    # -- sending -----------------------------------------------------------------------

    def send(self, data: bytes, destination: Address) -> None:
        raise NotImplementedError

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
        queue = inbox.expect(tid)
        exchange = Exchange(destination, tid)
        try:
            data, deadline = tx.start(time.monotonic())
            try:
                self.send(data, destination)
            except TransportError as exc:
                exchange.error = exc.message
                return exchange
            while True:
                try:
                    item = await asyncio.wait_for(
                        queue.get(), max(0.0, deadline - time.monotonic())
                    )
                except TimeoutError:
                    event = tx.on_timer(time.monotonic())
                    if isinstance(event, Retransmit):
                        deadline = event.next_deadline
                        try:
                            self.send(event.data, destination)
                        except TransportError as exc:
                            exchange.error = exc.message
                            return exchange
                    elif isinstance(event, TimedOut):
                        exchange.sends, exchange.elapsed = event.sends, event.elapsed
                        exchange.error = "timeout"
                        return exchange
                    elif event.next_deadline is not None:
                        deadline = event.next_deadline
                    continue
                if isinstance(item, TransportError):
                    exchange.sends = tx.sends
                    exchange.error = item.message
                    return exchange
                data, source, arrived = item
                outcome = tx.on_datagram(data, source, arrived)
                if isinstance(outcome, Ignored):
                    exchange.ignored.append(f"{format_address(*source)}: {outcome.reason}")
                    if outcome.reason == UNEXPECTED_SOURCE:
                        exchange.strays.append(source)
                    self.log.note(f"ignored from {format_address(*source)}: {outcome.reason}")
                    continue
                assert isinstance(outcome, Response)
                exchange.response = outcome.message
                exchange.source = outcome.source
                exchange.rtt = outcome.rtt
                exchange.retransmitted = outcome.retransmitted
                exchange.sends = outcome.sends
                exchange.elapsed = outcome.elapsed
                return exchange
        finally:
            inbox.forget(tid)

    def close(self) -> None:
        self.closed = True


# --------------------------------------------------------------------------------------- UDP


class _DatagramProtocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: UdpEndpoint) -> None:
        self.endpoint = endpoint

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        host = str(addr[0]).split("%", 1)[0]
        self.endpoint._on_message(data, (host, int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        # Unconnected sockets see few of these; a late ICMP error must not end other waits.
        # A connected one (the hairpin probe) learns from ICMP port-unreachable that its
        # destination did not take the packet.
        self.endpoint.log.note(f"udp error on {format_address(*self.endpoint.local)}: {exc}")
        if isinstance(exc, ConnectionRefusedError):
            self.endpoint.refused.set()


class UdpEndpoint(StunEndpoint):
    """One unconnected UDP socket."""

    transport_name = "udp"

    def __init__(self, log: StunLog | None = None) -> None:
        super().__init__(log)
        self._transport: asyncio.DatagramTransport | None = None
        self.refused = asyncio.Event()

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
        bind_to = (
            local_address or ("::" if family == socket.AF_INET6 else "0.0.0.0"),
            local_port or 0,
        )
        try:
            if family == socket.AF_INET6:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(bind_to)
        except OSError as exc:
            sock.close()
            raise LocalBindError(
                f"cannot bind {format_address(*bind_to)}: {exc.strerror or exc}"
            ) from None
        if connect_to is not None:
            try:
                sock.connect(connect_to)
            except OSError as exc:
                sock.close()
                raise TransportError(
                    f"cannot connect to {format_address(*connect_to)}: {exc.strerror or exc}"
                ) from None
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _DatagramProtocol(endpoint), sock=sock
        )
        endpoint._transport = transport
        name = transport.get_extra_info("sockname")
        endpoint.local = (str(name[0]), int(name[1]))
        return endpoint

    def send(self, data: bytes, destination: Address) -> None:
        if self._transport is None or self._transport.is_closing():
            raise TransportError(f"udp socket {format_address(*self.local)} is closed")
        self.log("send", "udp", self.local, destination, data)
        self._transport.sendto(data, destination)

    def close(self) -> None:
        super().close()
        if self._transport is not None:
            self._transport.close()


def source_address_toward(destination: Address) -> str | None:
    """The local IP the kernel would use toward ``destination`` (a connected UDP socket
    sends nothing).  For a wildcard-bound socket this is the address a server sees when there
    is no NAT."""
    family = socket.AF_INET6 if ":" in destination[0] else socket.AF_INET
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
                size = stun_frame_length(self.buffer)
            except ParseError as exc:
                self.endpoint._fail_all(
                    TransportError(f"{self.endpoint.name}: unframeable stream: {exc}")
                )
                self.buffer = b""
                return
            if size is None or len(self.buffer) < size:
                return
            message, self.buffer = self.buffer[:size], self.buffer[size:]
            self.endpoint._on_message(message, self.endpoint.remote)

    def connection_lost(self, exc: Exception | None) -> None:
        reason = "closed by the server" if exc is None else str(exc)
        self.endpoint._fail_all(TransportError(f"{self.endpoint.name}: {reason}"))


class StreamEndpoint(StunEndpoint):
    """One TCP or TLS connection to one server (RFC 8489 §6.2.2)."""

    def __init__(self, transport_name: str, remote: Address, log: StunLog | None = None) -> None:
        super().__init__(log)
        self.transport_name = transport_name
        self.remote = remote
        self._transport: asyncio.Transport | None = None
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
        local_address: str | None = None,
        local_port: int | None = None,
        timeout: float = 5.0,
        log: StunLog | None = None,
    ) -> StreamEndpoint:
        endpoint = cls(transport_name, remote, log)
        loop = asyncio.get_running_loop()
        local = None
        if local_address or local_port:
            wildcard = "::" if ":" in remote[0] else "0.0.0.0"
            local = (local_address or wildcard, local_port or 0)
        context = (tls or TlsOptions()).context() if transport_name == "tls" else None
        started = time.monotonic()
        try:
            transport, _ = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _StreamProtocol(endpoint),
                    remote[0],
                    remote[1],
                    ssl=context,
                    server_hostname=(server_name or remote[0]) if context else None,
                    local_addr=local,
                ),
                timeout,
            )
        except TimeoutError:
            raise TransportError(f"{endpoint.name}: connect timed out") from None
        except ssl.SSLCertVerificationError as exc:
            raise TransportError(
                f"{endpoint.name}: certificate verification failed: {exc.verify_message}"
                " (use --ca-file, or --insecure to skip verification)"
            ) from None
        except ssl.SSLError as exc:
            raise TransportError(f"{endpoint.name}: TLS: {exc.reason or exc}") from None
        except OSError as exc:
            if local is not None and exc.errno in (98, 99, 13):
                raise LocalBindError(
                    f"cannot bind {format_address(*local)}: {exc.strerror}"
                ) from None
            import os

            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise TransportError(f"{endpoint.name}: {reason}") from None
        endpoint.connect_time = time.monotonic() - started
        endpoint._transport = transport
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
        self._transport.write(data)

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
    local_address: str | None,
    local_port: int | None,
    timeout: float,
    log: StunLog,
) -> StunEndpoint:
    """The endpoint to reach ``server`` at ``address``: the shared UDP socket of that address
    family (``udp(family)`` gives it), or a new TCP/TLS connection."""
    if server.transport == "udp":
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        endpoint: StunEndpoint = await udp(family)
        return endpoint
    return await StreamEndpoint.open(
        server.transport,
        address,
        server_name=server.host,
        tls=tls,
        local_address=local_address,
        local_port=local_port,
        timeout=timeout,
        log=log,
    )


__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_SERVERS",
    "Exchange",
    "LocalBindError",
    "Schedule",
    "StreamEndpoint",
    "StunEndpoint",
    "StunLog",
    "StunServer",
    "TlsOptions",
    "UdpEndpoint",
    "families_from_flags",
    "open_endpoint_for",
    "parse_server",
    "resolve_server",
    "source_address_toward",
    "split_server_list",
    "summarize",
]
