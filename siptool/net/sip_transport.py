"""asyncio transports for SIP over UDP, TCP, TLS and WebSocket: one socket per flow, for send
and receive.

Sending and receiving on the same socket is what makes replies come back through a NAT (RFC
3581) and what lets the server's view of us (Via received/rport) describe that very socket.
UDP sockets are connected to the peer so that an ICMP port-unreachable ends the wait at once
instead of at the timeout.  Stream transports frame messages by Content-Length (RFC 3261 §18.3)
with ``siptool.sip.framing``; a WebSocket flow (RFC 7118, ``net.ws_transport``) carries one
message per WebSocket message instead.

Received messages land in ``SipFlow.inbox`` as ``Received`` items; a transport failure lands
there as a ``TransportError`` so that a waiting transaction wakes up with the reason.  A message
from the peer that siptool cannot take lands there as a ``Dropped`` item, never in silence:
headers larger than ``MAX_HEADER_BYTES`` on a stream, a framing error, a message that does not
parse.  What could still be read of it (status, top Via branch, CSeq method) comes along, so
that the transaction it answers can be told at once instead of timing out.

Decisions:

- UDP needs no size limit of its own: a datagram is at most 65,535 bytes and is read whole, so
  only the stream framer's header limit can make an otherwise good answer unreadable.
- The stream protocol keeps a copy of the bytes the framer holds while they may still be a
  header section (at most ``MAX_HEADER_BYTES`` and one chunk), so that an oversized message
  can be named; in a long body it keeps nothing.  Linear: each byte is copied once.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from siptool.addr import family_of, format_address
from siptool.errors import ParseError, TransportError
from siptool.net.connect import (
    bind_address,
    bind_failure,
    certificate_failure,
    connect_stream,
    os_reason,
)
from siptool.net.pcap_tap import PcapTap, current_tap
from siptool.net.tls import TlsOptions, TlsPeer, tls_peer
from siptool.net.wirelog import TimedLog
from siptool.sip.framing import FramingError, SipStreamFramer, content_length, find_header_end
from siptool.sip.message import SipMessage, parse_message
from siptool.sip.target import WEBSOCKET_TRANSPORTS

if TYPE_CHECKING:
    from siptool.net.ws_transport import WsOptions


@dataclass
class Received:
    message: SipMessage
    data: bytes
    time: float  # time.monotonic() when it arrived
    source: str  # "ip:port"
    address: tuple[str, int] | None = None  # the source as an address (where a reply goes)


# The stream framer's limits on a header section and a body (RFC 3261 §18.3, TCP/TLS).
MAX_HEADER_BYTES = 65536
MAX_BODY_BYTES = 16 << 20


@dataclass(frozen=True)
class Dropped:
    """A message from the peer that was dropped, with what could be read of it."""

    source: str  # "ip:port"
    time: float  # time.monotonic() when it was dropped
    why: str  # "its headers are larger than ...", "it does not parse: ..."
    size: int | None = None  # bytes of the message (or of its headers), when known
    at_least: bool = False  # ``size`` is a lower bound (the headers never ended)
    status: int | None = None
    reason: str | None = None
    branch: str | None = None
    cseq_method: str | None = None

    @property
    def final(self) -> bool:
        return self.status is not None and self.status >= 200

    def describe(self) -> str:
        """One clause for an error message: what, how large, from where, why dropped."""
        what = "a message"
        if self.status is not None:
            what = f"a {self.status} {self.reason or ''}".rstrip()
            if self.cseq_method:
                what += f" ({self.cseq_method})"
        if self.size is not None:
            what += f" of {'more than ' if self.at_least else ''}{self.size} bytes"
        return f"{what} from {self.source} was dropped: {self.why}"


def peek_response(head: bytes | bytearray) -> tuple[int | None, str | None, str | None, str | None]:
    """(status, reason, top Via branch, CSeq method) read leniently from the beginning of a
    message that could not be parsed or framed; None for what is not there."""
    status = reason = branch = method = None
    lines = bytes(head).split(b"\n")
    first = lines[0].rstrip(b"\r").decode("latin-1")
    parts = first.split(" ", 2)
    if len(parts) >= 2 and parts[0].upper() == "SIP/2.0":
        code = parts[1]
        if len(code) == 3 and code.isascii() and code.isdigit():
            status = int(code)
            reason = parts[2][:60] if len(parts) > 2 else ""
    for raw in lines[1:]:
        line = raw.rstrip(b"\r")
        if not line:
            break  # the end of the headers
        name, colon, value = line.partition(b":")
        if not colon:
            continue
        key = name.strip().lower()
        if branch is None and key in (b"via", b"v"):
            top = value.split(b",", 1)[0]
            for param in top.split(b";")[1:]:
                pname, _, pvalue = param.partition(b"=")
                if pname.strip().lower() == b"branch" and pvalue.strip():
                    branch = pvalue.strip().decode("latin-1")
                    break
            else:
                branch = ""  # the top Via has no branch: later Vias are not ours to read
        elif method is None and key == b"cseq":
            words = value.split()
            if len(words) == 2:
                method = words[1].decode("latin-1")
        if branch is not None and method is not None:
            break
    return status, reason, branch or None, method


class WireLog(TimedLog):
    """-v: every message sent and received, with a timestamp, on stderr (like sipexer)."""

    def describe(self, data: bytes) -> str:
        return data.decode("utf-8", "replace").replace("\r\n", "\n").rstrip("\n")


class _StreamWriter(Protocol):
    """What a stream flow writes through: an asyncio transport, or a WebSocket (one message
    a frame)."""

    def write(self, data: bytes) -> None: ...

    def is_closing(self) -> bool: ...

    def close(self) -> None: ...

    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


class SipFlow:
    """One connection (or connected UDP socket) to one peer."""

    def __init__(self, transport_name: str, remote: tuple[str, int], log: WireLog) -> None:
        self.transport_name = transport_name
        self.remote = remote
        self.log = log
        self.inbox: asyncio.Queue[Received | TransportError | Dropped] = asyncio.Queue()
        self.local: tuple[str, int] = ("", 0)
        self.malformed = 0
        self.tls: TlsPeer | None = None  # what TLS (tls, wss) negotiated
        self._writer: _StreamWriter | _UdpSocket | None = None
        # When set (a SipClient), arrivals go straight to it instead of ``inbox``.
        self.on_item: Callable[[Received | TransportError | Dropped], None] | None = None

    @property
    def reliable(self) -> bool:
        return self.transport_name != "udp"

    @property
    def local_text(self) -> str:
        return format_address(self.local[0], self.local[1])

    @property
    def remote_text(self) -> str:
        return format_address(self.remote[0], self.remote[1])

    def send(self, data: bytes, to: tuple[str, int] | None = None) -> None:
        """Send ``data`` to the peer, or (``to``: the source of a request we answer, RFC 3261
        §18.2.2) to that address over a UDP flow that accepts any source."""
        transport = self._writer
        if transport is None or transport.is_closing():
            raise TransportError(
                f"{self.transport_name} connection to {self.remote_text} is closed"
            )
        if isinstance(transport, _UdpSocket):
            where = to if to is not None and not transport.connected else self.remote
            self.log("send", self.transport_name, self.local, where, data)
            transport.sendto(data, where)
        else:
            self.log("send", self.transport_name, self.local, self.remote, data)
            transport.write(data)

    def deliver(self, data: bytes, source: tuple[str, int] | None = None) -> None:
        src = self.remote if source is None else source
        src_text = format_address(src[0], src[1])
        self.log("recv", self.transport_name, self.local, src, data)
        if not data.strip(b"\r\n"):
            return  # RFC 5626 §3.5.1 keep-alive CRLFs
        try:
            message = parse_message(data)
        except ParseError as exc:
            self.drop(data[:MAX_HEADER_BYTES], f"it does not parse ({exc})", len(data), src_text)
            return
        self._put(Received(message, data, time.monotonic(), src_text, src))

    def drop(
        self,
        head: bytes | bytearray,
        why: str,
        size: int | None,
        source: str | None = None,
        *,
        at_least: bool = False,
    ) -> None:
        """Report a message from the peer that cannot be taken; ``head`` is its beginning."""
        self.malformed += 1
        status, reason, branch, method = peek_response(head) if head else (None,) * 4
        self._put(
            Dropped(
                source or self.remote_text,
                time.monotonic(),
                why,
                size,
                at_least,
                status,
                reason,
                branch,
                method,
            )
        )

    def fail(self, error: TransportError) -> None:
        self._put(error)

    def _put(self, item: Received | TransportError | Dropped) -> None:
        if self.on_item is not None:
            self.on_item(item)
        else:
            self.inbox.put_nowait(item)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _routed_local(
    family: int, remote: tuple[str, int], local: tuple[str, int] | None
) -> tuple[str, int]:
    """Where an unconnected socket binds: --local-address, else the address the kernel routes
    from toward ``remote`` (learnt from a connected probe: Via and Contact need a real one,
    not the wildcard), at --local-port or any port."""
    host = None if local is None else local[0]
    port = 0 if local is None else local[1]
    if not host or host in ("0.0.0.0", "::"):
        probe = socket.socket(family, socket.SOCK_DGRAM)
        try:
            probe.connect(remote)
            host = probe.getsockname()[0]
        finally:
            probe.close()
    return host, port


class _UdpSocket:
    """A connected UDP socket read with ``loop.add_reader``: the handful of transport methods
    SipFlow uses, without building an asyncio datagram transport per target (a fleet ping
    opens a thousand of them)."""

    def __init__(
        self,
        sock: socket.socket,
        flow: SipFlow,
        tap: PcapTap | None = None,
        *,
        connected: bool = True,
    ) -> None:
        self.sock = sock
        self.connected = connected
        self.flow = flow
        self.closed = False
        self.tap = tap  # --pcap-out
        name = sock.getsockname()
        self.local: tuple[str, int] = (name[0], name[1])
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
                self.flow.fail(self._failure(exc))
                return
            if self.tap is not None:
                self.tap.udp(self.local, addr, data, False)
            self.flow.deliver(data, (addr[0], addr[1]))

    def sendto(self, data: bytes, to: tuple[str, int]) -> None:
        try:
            if self.connected:
                self.sock.send(data)
            else:
                self.sock.sendto(data, to)
            if self.tap is not None:
                self.tap.udp(self.local, to, data, True)
        except (BlockingIOError, InterruptedError):
            # A full socket buffer drops the datagram, as the network may: the transaction
            # retransmits (RFC 3261 §17.1.2.2).
            pass
        except OSError as exc:
            self.loop.call_soon(self.flow.fail, self._failure(exc))

    def _failure(self, exc: OSError) -> TransportError:
        reason = os_reason(exc)
        if isinstance(exc, ConnectionRefusedError):
            reason = "connection refused (ICMP port unreachable)"
        return TransportError(f"udp to {self.flow.remote_text}: {reason}")

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str) -> Any:
        return self.local if name == "sockname" else None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()


class _StreamProtocol(asyncio.Protocol):
    def __init__(self, flow: SipFlow) -> None:
        self.flow = flow
        self.framer = SipStreamFramer(
            max_header_bytes=MAX_HEADER_BYTES, max_body_bytes=MAX_BODY_BYTES
        )
        # The last bytes of the stream, as long as the framer holds them and they may be a
        # header section (module docstring): where a dropped message can be read from.
        self._tail = bytearray()

    def data_received(self, data: bytes) -> None:
        framer, tail = self.framer, self._tail
        tail += data
        for item in framer.feed(data):
            if isinstance(item, bytes):
                self.flow.deliver(item)
            else:
                self._dropped(item)
        held = framer.buffered
        if held > MAX_HEADER_BYTES + 1:
            tail.clear()  # inside a body: its headers were fine
        elif len(tail) > held:
            del tail[: len(tail) - held]

    def _dropped(self, error: FramingError) -> None:
        """A framing problem: a message too large for the limits is reported as dropped;
        garbage between messages and a missing Content-Length (the framer still hands on the
        headers) are only counted."""
        tail = self._tail
        start = error.offset - (self.framer.stream_offset - len(tail))
        if start < 0:
            self.flow.malformed += 1
            return
        seen = len(tail) - start
        end = find_header_end(tail, start)
        end = end - start if end >= 0 else -1
        head = tail[start : start + max(end, 0) + MAX_HEADER_BYTES]
        if seen > MAX_HEADER_BYTES and (end < 0 or end > MAX_HEADER_BYTES):
            if end < 0:
                why = f"its headers do not end within siptool's limit of {MAX_HEADER_BYTES} bytes"
                self.flow.drop(head, why, seen, at_least=True)
            else:
                body = content_length(head, 0, end)[0] or 0
                why = (
                    f"its headers ({end} bytes) exceed siptool's limit of {MAX_HEADER_BYTES} bytes"
                )
                self.flow.drop(head[:end], why, end + body)
            return
        length = content_length(head, 0, end)[0] if end > 0 else None
        if length is not None and length > MAX_BODY_BYTES:
            why = f"its body is larger than siptool's limit of {MAX_BODY_BYTES} bytes"
            self.flow.drop(head[:end], why, end + length)
            return
        self.flow.malformed += 1

    def connection_lost(self, exc: Exception | None) -> None:
        reason = "closed by the peer" if exc is None else str(exc)
        self.flow.fail(
            TransportError(f"{self.flow.transport_name} to {self.flow.remote_text}: {reason}")
        )


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
    accept_any_source: bool = False,
    ws: WsOptions | None = None,
) -> SipFlow:
    """Open a flow to ``remote`` (an IP literal and port); ``TransportError`` on failure.

    ``accept_any_source`` (as the STUN transport names it): over UDP, take requests from any
    address on our port, not only from ``remote`` (a subscriber's NOTIFYs and a listener's
    MESSAGEs may come from another
    socket of the server's, RFC 3261 §18.2.1 does not tie them to the one we sent to); the
    socket is then not connected, so an ICMP unreachable is not seen and the timeout says it.

    ``ws`` (--ws-path, --origin) for the "ws" and "wss" transports: a WebSocket connection
    upgraded for SIP (RFC 7118, ``net.ws_transport``), over TCP or TLS as ``tls`` says."""
    flow = SipFlow(transport, remote, log or WireLog(False))
    family = family_of(remote[0])
    tap = current_tap()  # --pcap-out
    local = bind_address(local_address, local_port, family)
    try:
        if transport == "udp":
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                if accept_any_source:
                    sock.bind(_routed_local(family, remote, local))
                else:
                    if local is not None:
                        sock.bind(local)
                    sock.connect(remote)
            except OSError:
                sock.close()
                raise
            flow._writer = _UdpSocket(sock, flow, tap, connected=not accept_any_source)
        elif transport in WEBSOCKET_TRANSPORTS:
            flow._writer = await _open_websocket(
                flow, transport, local, server_name, tls, connect_timeout, ws
            )
        else:
            ssl_context = None
            if transport == "tls":
                ssl_context = (tls or TlsOptions()).context()
            connect = connect_stream if tap is None else tap.connect_stream
            stream, _ = await connect(
                lambda: _StreamProtocol(flow),
                remote,
                context=ssl_context,
                server_name=server_name,
                local=local,
                timeout=connect_timeout,
            )
            flow._writer = stream
    except TimeoutError:
        raise TransportError(f"{transport} connect to {flow.remote_text}: timed out") from None
    except ssl.SSLCertVerificationError as exc:
        secure = "wss" if transport == "wss" else "tls"
        raise certificate_failure(f"{secure} to {flow.remote_text}", exc) from None
    except ssl.SSLError as exc:
        secure = "wss" if transport == "wss" else "tls"
        raise TransportError(f"{secure} to {flow.remote_text}: {exc.reason or exc}") from None
    except OSError as exc:
        raise (
            bind_failure(exc, local)
            or TransportError(f"{transport} to {flow.remote_text}: {os_reason(exc)}")
        ) from None
    sockname = flow._writer.get_extra_info("sockname")
    flow.local = (sockname[0], sockname[1])
    flow.tls = tls_peer(flow._writer.get_extra_info("ssl_object"))
    return flow


async def _open_websocket(
    flow: SipFlow,
    transport: str,
    local: tuple[str, int] | None,
    server_name: str | None,
    tls: TlsOptions | None,
    timeout: float,
    ws: WsOptions | None,
) -> _StreamWriter:
    """A WebSocket flow's connection (RFC 7118): TCP, or TLS for wss, through the --pcap-out
    tap when there is one, then the upgrade (``net.ws_transport``, imported only here)."""
    from siptool.net.ws_transport import WsOptions, open_websocket

    secure = transport == "wss"
    tap = current_tap()
    return await open_websocket(
        flow,
        connect_stream if tap is None else tap.connect_stream,
        secure=secure,
        server_name=server_name,
        ws=ws or WsOptions(),
        context=(tls or TlsOptions()).context() if secure else None,
        local=local,
        timeout=timeout,
    )
