"""A hostile SIP-over-WebSocket server for the ws tests: the websockets package's threaded
server on loopback at a free port, answering each SIP request in one chosen bad way.  Nothing
here imports pytest.

Behaviours (``Behaviour``):
  binary        each answer (200 OK) in one binary frame (RFC 7118 §4.2 allows it)
  fragmented    each answer as one WebSocket message in three frames (RFC 6455 §5.4)
  split         each answer split over two WebSocket messages (RFC 7118 §5.1 forbids it)
  oversized     a 70,000-byte text message instead of an answer
  close         close 1008 "no SIP for you" in the middle of the transaction
  refuse        the upgrade refused with 403 Forbidden
  no_protocol   the upgrade accepted without the sip subprotocol
"""

from __future__ import annotations

import contextlib
import enum
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.support.hostile_sip import response
from tests.support.servers import free_port


class Behaviour(enum.Enum):
    BINARY = "binary"
    FRAGMENTED = "fragmented"
    SPLIT = "split"
    OVERSIZED = "oversized"
    CLOSE = "close"
    REFUSE = "refuse"
    NO_PROTOCOL = "no_protocol"


@dataclass
class HostileWs:
    host: str
    port: int
    behaviour: Behaviour
    requests: list[bytes] = field(default_factory=list)  # what siptool sent, in order
    opcodes: list[str] = field(default_factory=list)  # "text" / "binary", per request
    origins: list[str | None] = field(default_factory=list)  # the upgrades' Origin headers

    def uri(self, user: str = "hostile") -> str:
        return f"sip:{user}@{self.host}:{self.port};transport=ws"


def _answer(peer: HostileWs, connection: Any, request: bytes) -> None:
    ok = response(request, 200, "OK")
    kind = peer.behaviour
    if kind is Behaviour.BINARY:
        connection.send(ok)
    elif kind is Behaviour.FRAGMENTED:
        third = len(ok) // 3
        connection.send(
            [ok[:third].decode(), ok[third : 2 * third].decode(), ok[2 * third :].decode()]
        )
    elif kind is Behaviour.SPLIT:
        cut = ok.index(b"\r\n\r\n") - 10
        connection.send(ok[:cut].decode())
        connection.send(ok[cut:].decode())
    elif kind is Behaviour.OVERSIZED:
        connection.send("SIP/2.0 200 OK\r\n" + "X-Pad: " + "x" * 70_000 + "\r\n\r\n")
    elif kind is Behaviour.CLOSE:
        connection.close(1008, "no SIP for you")
    else:
        connection.send(ok.decode())


def _handler(peer: HostileWs) -> Any:
    def handle(connection: Any) -> None:
        with contextlib.suppress(Exception):
            for message in connection:
                data = message if isinstance(message, bytes) else message.encode()
                peer.requests.append(data)
                peer.opcodes.append("binary" if isinstance(message, bytes) else "text")
                if data.startswith(b"ACK "):
                    continue
                _answer(peer, connection, data)

    return handle


@contextlib.contextmanager
def hostile_ws(behaviour: Behaviour, host: str = "127.0.0.1") -> Iterator[HostileWs]:
    """The server, serving in a thread until the ``with`` ends."""
    from websockets.sync.server import serve

    peer = HostileWs(host, free_port("tcp", host), behaviour)

    def select(connection: Any, offered: Sequence[str]) -> str | None:
        if behaviour is Behaviour.NO_PROTOCOL:
            return None
        return "sip" if "sip" in offered else None

    def process_request(connection: Any, request: Any) -> Any:
        peer.origins.append(request.headers.get("Origin"))
        if behaviour is Behaviour.REFUSE:
            return connection.respond(403, "Forbidden\n")
        return None

    server = serve(
        _handler(peer),
        host,
        peer.port,
        subprotocols=["sip"],  # type: ignore[list-item]
        select_subprotocol=select,  # type: ignore[arg-type]
        process_request=process_request,
        compression=None,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        server.shutdown()
        thread.join(timeout=5)
