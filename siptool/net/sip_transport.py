"""asyncio transports for SIP over UDP, TCP and TLS: one socket per flow, for send and receive.

Sending and receiving on the same socket is what makes replies come back through a NAT (RFC
3581) and what lets the server's view of us (Via received/rport) describe that very socket.
UDP sockets are connected to the peer so that an ICMP port-unreachable ends the wait at once
instead of at the timeout.  Stream transports frame messages by Content-Length (RFC 3261 §18.3)
with ``siptool.sip.framing``.

Received messages land in ``SipFlow.inbox`` as ``Received`` items; a transport failure lands
there as a ``TransportError`` so that a waiting transaction wakes up with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from siptool.errors import LocalBindError, ParseError, TransportError
from siptool.net.tls import TlsOptions
from siptool.sip.framing import SipStreamFramer
from siptool.sip.message import SipMessage, parse_message
from siptool.sip.target import hostport
from siptool.terminal import terminal_safe


@dataclass
class Received:
    message: SipMessage
    data: bytes
    time: float  # time.monotonic() when it arrived
    source: str  # "ip:port"


class WireLog:
    """-v: every message sent and received, with a timestamp, on stderr (like sipexer)."""

    def __init__(self, enabled: bool, out: IO[str] | None = None) -> None:
        self.enabled = enabled
        self.out = out or sys.stderr
        self.start = time.monotonic()

    def __call__(
        self, direction: str, transport: str, local: str, remote: str, data: bytes
    ) -> None:
        if not self.enabled:
            return
        stamp = time.monotonic() - self.start
        arrow = f"{local} -> {remote}" if direction == "send" else f"{local} <- {remote}"
        # A peer's bytes go to the user's terminal: controls shown as \xNN (siptool.terminal).
        text = terminal_safe(data.decode("utf-8", "replace").replace("\r\n", "\n").rstrip("\n"))
        self.out.write(f"[{stamp:9.6f}] {direction} {transport.upper()} {arrow}\n{text}\n\n")
        self.out.flush()


class SipFlow:
    """One connection (or connected UDP socket) to one peer."""

    def __init__(self, transport_name: str, remote: tuple[str, int], log: WireLog) -> None:
        self.transport_name = transport_name
        self.remote = remote
        self.log = log
        self.inbox: asyncio.Queue[Received | TransportError] = asyncio.Queue()
        self.local: tuple[str, int] = ("", 0)
        self.malformed = 0
        self._writer: asyncio.BaseTransport | _UdpSocket | None = None
        # When set (a SipClient), arrivals go straight to it instead of ``inbox``.
        self.on_item: Callable[[Received | TransportError], None] | None = None

    @property
    def reliable(self) -> bool:
        return self.transport_name != "udp"

    @property
    def local_text(self) -> str:
        return hostport(self.local[0], self.local[1])

    @property
    def remote_text(self) -> str:
        return hostport(self.remote[0], self.remote[1])

    def send(self, data: bytes) -> None:
        transport = self._writer
        if transport is None or transport.is_closing():
            raise TransportError(
                f"{self.transport_name} connection to {self.remote_text} is closed"
            )
        self.log("send", self.transport_name, self.local_text, self.remote_text, data)
        if isinstance(transport, _UdpSocket):
            transport.sendto(data)
        else:
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(data)

    def deliver(self, data: bytes, source: tuple[str, int] | None = None) -> None:
        src = self.remote if source is None else source
        src_text = hostport(src[0], src[1])
        self.log("recv", self.transport_name, self.local_text, src_text, data)
        if not data.strip(b"\r\n"):
            return  # RFC 5626 §3.5.1 keep-alive CRLFs
        try:
            message = parse_message(data)
        except ParseError:
            self.malformed += 1
            return
        self._put(Received(message, data, time.monotonic(), src_text))

    def fail(self, error: TransportError) -> None:
        self._put(error)

    def _put(self, item: Received | TransportError) -> None:
        if self.on_item is not None:
            self.on_item(item)
        else:
            self.inbox.put_nowait(item)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class _UdpSocket:
    """A connected UDP socket read with ``loop.add_reader``: the handful of transport methods
    SipFlow uses, without building an asyncio datagram transport per target (a fleet ping
    opens a thousand of them)."""

    def __init__(self, sock: socket.socket, flow: SipFlow) -> None:
        self.sock = sock
        self.flow = flow
        self.closed = False
        self.loop = asyncio.get_running_loop()
        sock.setblocking(False)
        self.loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        for _ in range(64):  # bounded: let other flows run too
            try:
                data, addr = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # ICMP port/host unreachable on a connected UDP socket (Linux reports it on
                # the next receive): the peer is not there, no need to wait for the timeout.
                reason = "connection refused (ICMP port unreachable)"
                if not isinstance(exc, ConnectionRefusedError):
                    reason = os.strerror(exc.errno) if exc.errno else str(exc)
                self.flow.fail(TransportError(f"udp to {self.flow.remote_text}: {reason}"))
                return
            self.flow.deliver(data, (addr[0], addr[1]))

    def sendto(self, data: bytes) -> None:
        try:
            self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            # A full socket buffer drops the datagram, as the network may: the transaction
            # retransmits (RFC 3261 §17.1.2.2).
            pass
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            if isinstance(exc, ConnectionRefusedError):
                reason = "connection refused (ICMP port unreachable)"
            self.loop.call_soon(
                self.flow.fail, TransportError(f"udp to {self.flow.remote_text}: {reason}")
            )

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str) -> Any:
        return self.sock.getsockname() if name == "sockname" else None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()


class _StreamProtocol(asyncio.Protocol):
    def __init__(self, flow: SipFlow) -> None:
        self.flow = flow
        self.framer = SipStreamFramer()

    def data_received(self, data: bytes) -> None:
        for item in self.framer.feed(data):
            if isinstance(item, bytes):
                self.flow.deliver(item)
            else:
                self.flow.malformed += 1

    def connection_lost(self, exc: Exception | None) -> None:
        reason = "closed by the peer" if exc is None else str(exc)
        self.flow.fail(
            TransportError(f"{self.flow.transport_name} to {self.flow.remote_text}: {reason}")
        )


def _family(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


async def open_flow(
    transport: str,
    remote: tuple[str, int],
    *,
    local_address: str | None = None,
    local_port: int | None = None,
    server_name: str | None = None,
    tls: TlsOptions | None = None,
    connect_timeout: float = 5.0,
    log: WireLog | None = None,
) -> SipFlow:
    """Open a flow to ``remote`` (an IP literal and port); ``TransportError`` on failure."""
    loop = asyncio.get_running_loop()
    flow = SipFlow(transport, remote, log or WireLog(False))
    family = _family(remote[0])
    local = None
    if local_address or local_port:
        local = (
            local_address or ("::" if family == socket.AF_INET6 else "0.0.0.0"),
            local_port or 0,
        )
    try:
        if transport == "udp":
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                if local is not None:
                    sock.bind(local)
                sock.connect(remote)
            except OSError:
                sock.close()
                raise
            flow._writer = _UdpSocket(sock, flow)
        else:
            ssl_context = None
            if transport == "tls":
                ssl_context = (tls or TlsOptions()).context()
            stream, _ = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _StreamProtocol(flow),
                    remote[0],
                    remote[1],
                    ssl=ssl_context,
                    server_hostname=(server_name or remote[0]) if ssl_context else None,
                    local_addr=local,
                ),
                timeout=connect_timeout,
            )
            flow._writer = stream
    except TimeoutError:
        raise TransportError(f"{transport} connect to {flow.remote_text}: timed out") from None
    except ssl.SSLCertVerificationError as exc:
        raise TransportError(
            f"tls to {flow.remote_text}: certificate verification failed: {exc.verify_message}"
            " (use --ca-file, or --insecure to skip verification)"
        ) from None
    except ssl.SSLError as exc:
        raise TransportError(f"tls to {flow.remote_text}: {exc.reason or exc}") from None
    except OSError as exc:
        if local is not None and exc.errno in (98, 99, 13):  # EADDRINUSE, EADDRNOTAVAIL, EACCES
            raise LocalBindError(f"cannot bind {hostport(*local)}: {exc.strerror}") from None
        # asyncio puts "Connect call failed (addr)" in strerror; the errno says it better.
        reason = os.strerror(exc.errno) if exc.errno else exc.strerror or str(exc)
        raise TransportError(f"{transport} to {flow.remote_text}: {reason}") from None
    sockname = flow._writer.get_extra_info("sockname")
    flow.local = (sockname[0], sockname[1])
    return flow


async def next_message(flow: SipFlow, deadline: float) -> Received | None:
    """The next message before ``deadline`` (monotonic), None at the deadline.
    Raises the ``TransportError`` the flow reported."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return None
    with contextlib.suppress(TimeoutError):
        item = await asyncio.wait_for(flow.inbox.get(), remaining)
        if isinstance(item, TransportError):
            raise item
        return item
    return None
