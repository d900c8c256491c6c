"""SIP over WebSocket (RFC 7118): the HTTP upgrade asking for the ``sip`` subprotocol, one SIP
message per WebSocket message, ping keep-alive, and a server that refuses or closes named.

RFC 6455 itself (the upgrade's key and accept, framing, masking, close and ping frames) is the
``websockets`` package's sans-I/O ``ClientProtocol``; this module drives it over a stream
connection opened as TCP and TLS flows are (``net.connect.connect_stream``, or the --pcap-out
tap's twin), so --pcap-out records the TCP (or TLS) bytes of the WebSocket connection, and WSS
is verified, --insecure, --ca-file and --tls-keylog as TLS is.  ``websockets`` is imported
when a ws/wss flow is opened: ``siptool --help`` never loads it.

Decisions:

- websockets' sans-I/O layer, not its asyncio client: the connection stays the one the tap
  records and the flow's errors name; websockets still does every byte of RFC 6455.
- The upgrade asks for ``Sec-WebSocket-Protocol: sip`` (RFC 7118 §4.1) at --ws-path, with
  --origin as the Origin header when given (a browser always sends one, RFC 6454).  An answer
  other than 101 is "WebSocket upgrade refused: 403 Forbidden"; a 101 without the ``sip``
  subprotocol is refused too (§4.1: the client MUST then not send SIP), as is any other
  handshake a WebSocket client must refuse (a wrong Sec-WebSocket-Accept).
- One SIP message per WebSocket message (§5.1): ours go as one text frame each (§4.2: UTF-8
  messages as text; one that is not UTF-8, a binary body, as one binary frame).  Received
  text and binary messages are both read; a message fragmented into frames (RFC 6455 §5.4:
  any intermediary may) is reassembled.  A WebSocket message that does not hold a whole SIP
  message (its headers do not end, or its body is shorter than its Content-Length) breaks
  §5.1 and is dropped and named; the next message is read on its own.
- A WebSocket message larger than ``MAX_WS_MESSAGE`` (the stream framer's header limit: no
  SIP message siptool takes is larger) is refused by websockets, which closes the connection
  with 1009 (RFC 6455 §7.4.1): the flow's error names the limit and the close.
- Keep-alive (RFC 7118 §6): a ping every ``PING_INTERVAL`` seconds; a ping still unanswered
  when the next one is due ends the flow.  The server's pings are answered by websockets.
- The server's close frame ends the flow at once with its code and reason ("server closed the
  WebSocket: 1008 policy violation (reason)"): the transaction waiting learns why.  Our close
  sends 1000 and then closes the TCP connection without waiting for the server's (a run
  ends when its work does; RFC 6455 §7.1.1 lets a client close first).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from siptool.addr import Address, format_address, format_host
from siptool.errors import TransportError
from siptool.sip.framing import content_length, find_header_end

if TYPE_CHECKING:
    from websockets.client import ClientProtocol
    from websockets.frames import Frame
    from websockets.http11 import Response

__all__ = ["MAX_WS_MESSAGE", "PING_INTERVAL", "WsOptions", "WsStream", "open_websocket"]

SUBPROTOCOL = "sip"  # RFC 7118 §4.1
MAX_WS_MESSAGE = 65536
PING_INTERVAL = 20.0  # seconds, websockets' own default


class SipFlow(Protocol):
    """What a WebSocket connection needs of its flow (``net.sip_transport.SipFlow``)."""

    transport_name: str
    remote: Address

    def deliver(self, data: bytes, source: Address | None = None) -> None: ...

    def drop(self, head: bytes | bytearray, why: str, size: int | None) -> None: ...

    def fail(self, error: TransportError) -> None: ...


@dataclass(frozen=True)
class WsOptions:
    """--ws-path and --origin."""

    path: str = "/"
    origin: str | None = None


Connect = Callable[..., Awaitable[tuple[asyncio.Transport, "WsStream"]]]


async def open_websocket(
    flow: SipFlow,
    connect: Connect,
    *,
    secure: bool,
    server_name: str | None,
    ws: WsOptions,
    **stream: Any,
) -> WsStream:
    """Connect (``connect``: ``connect_stream`` or the tap's, given ``stream``'s arguments)
    and upgrade; the open ``WsStream``.  Raises what ``connect`` raises, ``TransportError``
    for an upgrade that fails, ``TimeoutError`` past ``stream['timeout']`` in all."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + stream["timeout"]
    protocol = _client_protocol(flow.remote, server_name, secure, ws)
    transport, ws_stream = await connect(
        lambda: WsStream(flow, protocol), flow.remote, server_name=server_name, **stream
    )
    if ws_stream.transport is None:
        # TLS started over the --pcap-out tap (loop.start_tls) makes no connection_made call.
        ws_stream.connection_made(transport)
    try:
        await asyncio.wait_for(asyncio.shield(ws_stream.opened), deadline - loop.time())
    except BaseException:
        ws_stream.abort()
        raise
    return ws_stream


def _client_protocol(
    remote: Address, server_name: str | None, secure: bool, ws: WsOptions
) -> ClientProtocol:
    from websockets.client import ClientProtocol
    from websockets.typing import Origin, Subprotocol
    from websockets.uri import parse_uri

    host = format_host(server_name or remote[0])
    scheme = "wss" if secure else "ws"
    uri = parse_uri(f"{scheme}://{host}:{remote[1]}{ws.path}")
    return ClientProtocol(
        uri,
        origin=None if ws.origin is None else Origin(ws.origin),
        subprotocols=[Subprotocol(SUBPROTOCOL)],
        max_size=MAX_WS_MESSAGE,
    )


class WsStream(asyncio.Protocol):
    """The asyncio protocol of a WebSocket connection, and the flow's writer: ``write`` sends
    one SIP message as one frame, each complete message received goes to ``flow.deliver``."""

    def __init__(self, flow: SipFlow, protocol: ClientProtocol) -> None:
        self.flow = flow
        self.ws = protocol
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._parts: list[bytes] = []  # the frames of a fragmented message so far
        self._ended = False  # the flow was told how the connection ended
        self._closing = False  # we closed it
        self._ping: asyncio.TimerHandle | None = None
        self._unanswered = False

    @property
    def where(self) -> str:
        return f"{self.flow.transport_name} to {format_address(*self.flow.remote)}"

    # -- the writer SipFlow uses ------------------------------------------------------------

    def write(self, data: bytes) -> None:
        from websockets.protocol import State

        if self.ws.state is not State.OPEN:
            raise TransportError(f"{self.where}: the WebSocket is closed")
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            self.ws.send_binary(data)
        else:
            self.ws.send_text(data)
        self._flush()

    def is_closing(self) -> bool:
        return self._closing or self._ended or self.transport is None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default if self.transport is None else self.transport.get_extra_info(name, default)

    def close(self) -> None:
        from websockets.frames import CloseCode
        from websockets.protocol import State

        self._closing = True
        self._stop_pings()
        if self.ws.state is State.OPEN:
            self.ws.send_close(CloseCode.NORMAL_CLOSURE)
            self._flush()
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self._closing = True
        self._stop_pings()
        if self.transport is not None:
            self.transport.abort()

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.ws.send_request(self.ws.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        self.ws.receive_data(data)
        self._events()

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self._events()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_pings()
        self.transport = None
        if self._closing:
            return
        why = "the connection closed without a WebSocket close" if exc is None else str(exc)
        if not self.opened.done():
            why = "the connection closed before the WebSocket upgrade was answered"
        self._end(TransportError(f"{self.where}: {why}"))

    # -- what websockets makes of the bytes -------------------------------------------------

    def _events(self) -> None:
        from websockets.frames import Frame
        from websockets.http11 import Response

        for event in self.ws.events_received():
            if isinstance(event, Response):
                self._answered(event)
            elif isinstance(event, Frame):
                self._frame(event)
        self._flush()
        if self.ws.parser_exc is not None and not self._ended:
            self._failed(self.ws.parser_exc)

    def _answered(self, response: Response) -> None:
        """The upgrade's answer (RFC 6455 §4.2.2, RFC 7118 §4.1)."""
        from websockets.exceptions import InvalidStatus

        failure = self.ws.handshake_exc
        if isinstance(failure, InvalidStatus) or response.status_code != 101:
            why = f"WebSocket upgrade refused: {response.status_code} {response.reason_phrase}"
        elif failure is not None:
            why = f"WebSocket upgrade failed: {failure}"
        elif self.ws.subprotocol != SUBPROTOCOL:
            why = (
                "WebSocket upgrade answered without the sip subprotocol (RFC 7118 §4.1): "
                "no SIP over WebSocket there"
            )
        else:
            self.opened.set_result(None)
            self._arm_ping()
            return
        self._end(TransportError(f"{self.where}: {why}"))

    def _frame(self, frame: Frame) -> None:
        from websockets.frames import Opcode

        if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            self._parts.append(bytes(frame.data))
            if frame.fin:
                message, self._parts = b"".join(self._parts), []
                self._message(message)
        elif frame.opcode is Opcode.PONG:
            self._unanswered = False
        elif frame.opcode is Opcode.CLOSE:
            self._end(TransportError(f"{self.where}: server closed the WebSocket: {self._code()}"))

    def _message(self, data: bytes) -> None:
        """One WebSocket message: one SIP message (RFC 7118 §5.1), or dropped and named."""
        why = _not_one_message(data)
        if why is None:
            self.flow.deliver(data)
        else:
            self.flow.drop(data[:MAX_WS_MESSAGE], why, len(data))

    def _failed(self, exc: Exception) -> None:
        """websockets failed the connection (RFC 6455 §7.1.7) for what the server sent."""
        from websockets.exceptions import PayloadTooBig

        if isinstance(exc, PayloadTooBig):
            why = (
                f"a WebSocket message larger than siptool's limit of {MAX_WS_MESSAGE} bytes: "
                "siptool closed the WebSocket with 1009 message too big"
            )
        else:
            why = f"siptool closed the WebSocket: {exc}"
        self._end(TransportError(f"{self.where}: {why}"))

    def _code(self) -> str:
        """The server's close code and reason, as "1008 policy violation (reason)"."""
        from websockets.frames import CLOSE_CODE_EXPLANATIONS

        close = self.ws.close_rcvd
        if close is None:
            return "no close code"
        text = f"{int(close.code)} {CLOSE_CODE_EXPLANATIONS.get(close.code, 'unknown code')}"
        reason = close.reason.replace("\r", " ").replace("\n", " ")[:120]
        return f"{text} ({reason})" if reason else text

    def _end(self, error: TransportError) -> None:
        """The connection is over: the upgrade's waiter, or the flow, learns why (once)."""
        if self._ended:
            return
        self._ended = True
        self._stop_pings()
        if not self.opened.done():
            self.opened.set_exception(error)
        else:
            self.flow.fail(error)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _flush(self) -> None:
        """Write what websockets has to send; its end-of-stream mark closes our side."""
        transport = self.transport
        for data in self.ws.data_to_send():
            if transport is None or transport.is_closing():
                return
            if data:
                transport.write(data)
            elif transport.can_write_eof():
                transport.write_eof()
            else:
                transport.close()

    # -- keep-alive (RFC 7118 §6) -----------------------------------------------------------

    def _arm_ping(self) -> None:
        loop = asyncio.get_running_loop()
        self._ping = loop.call_later(PING_INTERVAL, self._send_ping)

    def _send_ping(self) -> None:
        from websockets.protocol import State

        if self._unanswered:
            self._end(TransportError(f"{self.where}: no pong {PING_INTERVAL:g} s after a ping"))
            return
        if self.ws.state is State.OPEN:
            self._unanswered = True
            with contextlib.suppress(Exception):
                self.ws.send_ping(b"siptool")
                self._flush()
            self._arm_ping()

    def _stop_pings(self) -> None:
        if self._ping is not None:
            self._ping.cancel()
            self._ping = None


def _not_one_message(data: bytes) -> str | None:
    """Why a WebSocket message is not one whole SIP message (RFC 7118 §5.1), or None; keep-alive
    CRLFs (RFC 5626 §3.5.1) are left to the flow."""
    if not data.strip(b"\r\n"):
        return None
    end = find_header_end(data, 0)
    if end < 0:
        return (
            "its headers do not end within its WebSocket message (RFC 7118 §5.1: one whole "
            "SIP message per WebSocket message)"
        )
    length, _ = content_length(data, 0, end)
    body = len(data) - end
    if length is not None and body < length:
        return (
            f"its body ends after {body} of its Content-Length {length} bytes, with its "
            "WebSocket message (RFC 7118 §5.1: one whole SIP message per WebSocket message)"
        )
    return None
