"""--pcap-out: every datagram and segment siptool sends and receives, saved as pcapng while the
run goes on, so that a ticket carries exactly what happened on the wire.

``recording(path)`` opens the file and makes a ``PcapTap`` current for the run (a
``ContextVar``: the transports find it without a new parameter, and every task created inside
inherits it).  A transport asks ``current_tap()`` once when it opens a socket and keeps the
answer, so without --pcap-out a packet costs one ``None`` check.  UDP transports call
``PcapTap.udp`` for each datagram; TCP and TLS connections are opened through
``PcapTap.connect_stream`` (the twin of ``net.connect.connect_stream``), which puts a recording
transport between asyncio's socket transport and the protocol above it.

The packets are built by ``capture.synth`` from the socket's own addresses (real IPv4/IPv6,
UDP and TCP headers and checksums), stamped with ``time.time_ns()`` when the bytes were handed
to the socket or taken from it, and written by ``capture.pcapng_write`` as LINKTYPE_RAW (101):
one interface for both families, which tshark and ``siptool decode`` read.

Decisions:

- Each packet is flushed as it is written: a run that is killed leaves a readable file up to
  its last packet.  The file is closed however the run ends (Ctrl-C included); a TCP
  connection still open then gets our FIN, as the kernel sends one when the process exits.
- TCP is synthetic around the real bytes: SYN stamped when the connect began, SYN-ACK and ACK
  when it completed, data segments with consistent sequence and acknowledgment numbers per
  direction (RFC 9293 §3.4) in the order the bytes moved, a FIN when a side closed (the
  peer's at its EOF, ours at close), an RST for a reset.  Retransmissions, window updates and
  bare ACKs are the kernel's and are not seen.  A connect that fails leaves nothing (its
  local port was never known).
- TLS is recorded as it travels: the connection is opened as plain TCP through the recording
  transport, and TLS is started on top of it (``loop.start_tls``, RFC 8446 records from the
  first ClientHello), so the file holds the ciphertext and never decrypted SIP.
- A UDP socket bound to the wildcard address does not know which of our addresses a datagram
  left from or arrived at; its owner passes the address the kernel would use toward the peer
  (``stun_transport.source_address_toward``).
- The file cannot be opened: ``InputError`` (exit 3) naming it and the OS's reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import ssl
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from siptool.addr import Address
from siptool.errors import InputError
from siptool.net.connect import os_reason

# The pcapng writer and packet builders of capture/ are imported by the tap itself, when a
# run has --pcap-out: every transport imports this module for ``current_tap``, and a run
# without --pcap-out need not pay for them (30 ms of a one-target ping).
if TYPE_CHECKING:
    from siptool.capture.synth import TcpConversation

__all__ = ["PcapTap", "current_tap", "recording"]

_P = TypeVar("_P", bound=asyncio.Protocol)

_CURRENT: ContextVar[PcapTap | None] = ContextVar("siptool_pcap_tap", default=None)


@functools.lru_cache(maxsize=4096)
def _address_bytes(address: str) -> bytes:
    from siptool.capture.synth import ip_bytes

    return ip_bytes(address)


def current_tap() -> PcapTap | None:
    """The tap of the running --pcap-out recording, or None."""
    return _CURRENT.get()


@contextlib.contextmanager
def recording(path: str) -> Iterator[None]:
    """Record every packet of the run inside the ``with`` in ``path`` (pcapng)."""
    # The writer's modules before the file: it is never seen empty for the time they take.
    import siptool.capture.pcapng_write
    import siptool.capture.synth  # noqa: F401

    try:
        stream = open(path, "wb")  # noqa: SIM115 -- closed by the tap below
    except OSError as exc:
        raise InputError(f"cannot write --pcap-out {path}: {os_reason(exc)}") from None
    tap = PcapTap(stream)
    token = _CURRENT.set(tap)
    try:
        yield
    finally:
        _CURRENT.reset(token)
        tap.close()


class PcapTap:
    """The pcapng file of one run: one raw-IP interface, a packet per call."""

    def __init__(self, stream: BinaryIO) -> None:
        from siptool.capture.layers import LINKTYPE_RAW
        from siptool.capture.pcapng_write import PcapngWriter
        from siptool.capture.synth import TcpConversation, udp_packet

        self._udp_packet = udp_packet
        self._conversation = TcpConversation
        self._stream = stream
        self._writer = PcapngWriter(stream)
        self._interface = self._writer.interface(LINKTYPE_RAW, "siptool")
        self._ident = 0  # the IPv4 identification of the next UDP datagram
        self._open: set[TcpConversation] = set()
        self.closed = False
        stream.flush()

    def write(self, packets: list[bytes], time_ns: int | None = None) -> None:
        """``packets`` (IP packets) stamped ``time_ns`` (now by default), flushed."""
        if self.closed or not packets:
            return
        stamp = time.time_ns() if time_ns is None else time_ns
        for packet in packets:
            self._writer.packet(self._interface, stamp, packet)
        self._stream.flush()

    def udp(self, local: Address, remote: Address, data: bytes, outgoing: bool) -> None:
        """One datagram between our ``local`` and the peer's ``remote`` address."""
        mine, theirs = _address_bytes(local[0]), _address_bytes(remote[0])
        self._ident = (self._ident + 1) & 0xFFFF
        if outgoing:
            packet = self._udp_packet(mine, local[1], theirs, remote[1], data, self._ident)
        else:
            packet = self._udp_packet(theirs, remote[1], mine, local[1], data, self._ident)
        self.write([packet])

    def tcp(self, local: Address, remote: Address, started_ns: int) -> TcpConversation:
        """A connection just established: its handshake written, its conversation kept."""
        conversation = self._conversation(
            (_address_bytes(local[0]), local[1]),
            (_address_bytes(remote[0]), remote[1]),
            random.getrandbits(32),
            random.getrandbits(32),
        )
        self.write([conversation.syn()], started_ns)
        self.write(conversation.established())
        self._open.add(conversation)
        return conversation

    def ended(self, conversation: TcpConversation) -> None:
        self._open.discard(conversation)

    async def connect_stream(
        self,
        protocol_factory: Callable[[], _P],
        remote: Address,
        *,
        context: ssl.SSLContext | None,
        server_name: str | None,
        local: Address | None,
        timeout: float,
    ) -> tuple[asyncio.Transport, _P]:
        """``net.connect.connect_stream``, recorded: TCP through ``_TappedTransport``, and TLS
        (with ``context``) started on top of it.  Raises what asyncio raises."""
        loop = asyncio.get_running_loop()
        started = time.time_ns()

        async def connect() -> tuple[asyncio.Transport, _P]:
            app = protocol_factory()
            _, tap_protocol = await loop.create_connection(
                lambda: _TapProtocol(self, started, None if context else app),
                remote[0],
                remote[1],
                local_addr=local,
            )
            wrapper = tap_protocol.wrapper
            assert wrapper is not None
            if context is None:
                return wrapper, app
            hostname = server_name or remote[0]
            secure = await loop.start_tls(wrapper, app, context, server_hostname=hostname)
            assert isinstance(secure, asyncio.Transport)
            return secure, app

        return await asyncio.wait_for(connect(), timeout)

    def close(self) -> None:
        if self.closed:
            return
        for conversation in list(self._open):
            self.write(conversation.fin(True))
        self._open.clear()
        self.closed = True
        self._stream.close()


def _feed(protocol: asyncio.BaseProtocol, data: bytes) -> None:
    """Hand ``data`` to a protocol, through its buffers when it is a BufferedProtocol (as
    asyncio's SSL protocol is)."""
    if isinstance(protocol, asyncio.BufferedProtocol):
        view = memoryview(data)
        while view:
            buffer = memoryview(protocol.get_buffer(len(view)))
            size = min(len(buffer), len(view))
            if size == 0:
                raise RuntimeError("get_buffer() returned an empty buffer")
            buffer[:size] = view[:size]
            protocol.buffer_updated(size)
            view = view[size:]
    elif isinstance(protocol, asyncio.Protocol):
        protocol.data_received(data)


class _TapProtocol(asyncio.Protocol):
    """Under the socket transport: records what arrives, hands it to the protocol above."""

    def __init__(self, tap: PcapTap, started_ns: int, app: asyncio.Protocol | None) -> None:
        self.tap = tap
        self.started_ns = started_ns
        self.inner: asyncio.BaseProtocol | None = app
        self.wrapper: _TappedTransport | None = None
        self.conversation: TcpConversation | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        local = transport.get_extra_info("sockname")
        remote = transport.get_extra_info("peername")
        self.conversation = self.tap.tcp(
            (str(local[0]), int(local[1])), (str(remote[0]), int(remote[1])), self.started_ns
        )
        self.wrapper = _TappedTransport(transport, self)
        if self.inner is not None:
            self.inner.connection_made(self.wrapper)

    def record(self, outgoing: bool, data: bytes) -> None:
        if self.conversation is not None and data:
            self.tap.write(self.conversation.data(outgoing, bytes(data)))

    def closing(self, outgoing: bool, reset: bool = False) -> None:
        conversation = self.conversation
        if conversation is not None:
            end = conversation.reset if reset else conversation.fin
            self.tap.write(end(outgoing))

    def data_received(self, data: bytes) -> None:
        self.record(False, data)
        if self.inner is not None:
            _feed(self.inner, data)

    def eof_received(self) -> bool | None:
        self.closing(False)
        if isinstance(self.inner, asyncio.Protocol):
            return self.inner.eof_received()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        # Our socket is closed now: a FIN from us unless the peer reset the connection.
        if isinstance(exc, ConnectionResetError):
            self.closing(False, reset=True)
        else:
            self.closing(True)
        if self.conversation is not None:
            self.tap.ended(self.conversation)
        if self.inner is not None:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()


class _TappedTransport(asyncio.Transport):
    """Above the socket transport: records what is written, passes everything through."""

    # loop.start_tls() takes a transport only with this flag (asyncio's socket transports
    # set it): TLS runs on top of this one, so the ciphertext is what gets recorded.
    _start_tls_compatible = True

    def __init__(self, raw: asyncio.Transport, tap: _TapProtocol) -> None:
        super().__init__()
        self._raw = raw
        self._tap = tap

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._raw.is_closing():
            self._tap.record(True, bytes(data))
        self._raw.write(data)

    def write_eof(self) -> None:
        self._tap.closing(True)
        self._raw.write_eof()

    def can_write_eof(self) -> bool:
        return self._raw.can_write_eof()

    def close(self) -> None:
        self._raw.close()

    def abort(self) -> None:
        self._raw.abort()

    def _force_close(self, exc: BaseException | None) -> None:
        # asyncio's SSL protocol ends a failed connection this way.
        force = getattr(self._raw, "_force_close", None)
        if force is not None:
            force(exc)
        else:
            self._raw.abort()

    def is_closing(self) -> bool:
        return self._raw.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._raw.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._tap.inner = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        inner = self._tap.inner
        assert inner is not None
        return inner

    def pause_reading(self) -> None:
        self._raw.pause_reading()

    def resume_reading(self) -> None:
        self._raw.resume_reading()

    def is_reading(self) -> bool:
        return self._raw.is_reading()

    def get_write_buffer_size(self) -> int:
        return self._raw.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._raw.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._raw.set_write_buffer_limits(high, low)
