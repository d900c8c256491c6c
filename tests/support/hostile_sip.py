"""A hostile SIP peer for the tests: answers over UDP or TCP on loopback with whatever the test
scripts, so siptool can be tried as an attacker would (control sequences in reason phrases and
headers, numbers written with non-ASCII digits, oversized or unparseable answers, answers that
come late, a BYE never answered).

It is a real socket peer in a thread of the test process, started on a free port and stopped
by the test.  ``hostile_peer`` sends what an ``Answer`` makes of each request (and when);
``hostile_uas`` plays a ``Script``: it answers every request of a transaction once, copying
Via, From, To, Call-ID and CSeq as RFC 3261 §8.2.6.2 says, and never sends anything unasked.
The requests are read as raw header lines, never by siptool's own parser.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from tests.support.responders import Address, serving, udp_responder

# method -> list of (status, reason, extra header lines, body) sent in order for each request.
Script = dict[str, list[tuple[int, str, list[str], bytes]]]


def _headers(request: bytes) -> tuple[str, dict[str, list[str]]]:
    head = request.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    lines = head.split("\r\n")
    seen: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        seen.setdefault(name.strip().lower(), []).append(value.strip())
    return lines[0], seen


def response(
    request: bytes,
    status: int,
    reason: str,
    extra: Iterable[str] = (),
    body: bytes = b"",
    *,
    tag: str = "hostile1",
) -> bytes:
    """A response to ``request`` with the given status line, extra headers and body; the To
    gets ``tag`` unless it has one (or the status is 100)."""
    _, headers = _headers(request)
    to = headers.get("to", [""])[0]
    if status > 100 and ";tag=" not in to:
        to += f";tag={tag}"
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {v}" for v in headers.get("via", [])]
    lines += [
        f"From: {headers.get('from', [''])[0]}",
        f"To: {to}",
        f"Call-ID: {headers.get('call-id', [''])[0]}",
        f"CSeq: {headers.get('cseq', [''])[0]}",
        *extra,
        f"Content-Length: {len(body)}",
    ]
    return "\r\n".join(lines).encode("utf-8") + b"\r\n\r\n" + body


@dataclass
class HostileUas:
    host: str
    port: int
    transport: str = "udp"
    received: list[bytes] = field(default_factory=list)

    def uri(self, user: str | None = "hostile") -> str:
        userpart = f"{user}@" if user else ""
        params = ";transport=tcp" if self.transport == "tcp" else ""
        return f"sip:{userpart}{self.host}:{self.port}{params}"


# (a request, the peer) -> what to send back: (seconds to wait, bytes) each, in order.
Answer = Callable[[bytes, HostileUas], Iterable[tuple[float, bytes]]]


@contextlib.contextmanager
def hostile_peer(answer: Answer, *, transport: str = "udp") -> Iterator[HostileUas]:
    """Serve ``answer`` on a free port of 127.0.0.1 until the block ends.  UDP: every datagram
    is answered (retransmissions too) to its source.  TCP: each connection's first message (up
    to the end of its headers) is answered, and the connection kept open until the end."""
    if transport == "udp":
        timers: list[threading.Timer] = []

        def handle(sock: socket.socket, data: bytes, source: Address) -> None:
            peer.received.append(data)
            for delay, reply in answer(data, peer):
                if delay > 0:
                    timer = threading.Timer(delay, _send_quietly, (sock, reply, source))
                    timers.append(timer)
                    timer.start()
                else:
                    sock.sendto(reply, source)

        with udp_responder(handle) as sock:
            peer = HostileUas("127.0.0.1", sock.getsockname()[1])
            try:
                yield peer
            finally:
                for timer in timers:
                    timer.cancel()
        return
    with _tcp_peer(answer) as peer:
        yield peer


def _send_quietly(sock: socket.socket, data: bytes, to: Address) -> None:
    with contextlib.suppress(OSError):  # the test is over, the socket closed
        sock.sendto(data, to)


@contextlib.contextmanager
def _tcp_peer(answer: Answer) -> Iterator[HostileUas]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(0.2)
    listener.listen()
    peer = HostileUas("127.0.0.1", listener.getsockname()[1], "tcp")
    stop = threading.Event()
    conns: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conns.append(conn)
            conn.settimeout(5)
            data = b""
            with contextlib.suppress(OSError):
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65535)
                    if not chunk:
                        break
                    data += chunk
                if data:
                    peer.received.append(data)
                    for _, reply in answer(data, peer):
                        conn.sendall(reply)  # and keep the connection open

    try:
        with listener, serving(serve, stop):
            yield peer
    finally:
        for conn in conns:
            conn.close()


def scripted(
    script: Script,
    *,
    on_request: Callable[[bytes], None] | None = None,
    delays: Mapping[int, float] | None = None,
) -> Answer:
    """The ``Answer`` that plays ``script``: each transaction's request answered once (its
    retransmissions not again), ACKs and responses never; a response whose status is in
    ``delays`` goes that many seconds later."""
    answered: set[tuple[str, str]] = set()

    def answer(data: bytes, peer: HostileUas) -> list[tuple[float, bytes]]:
        if on_request is not None:
            on_request(data)
        start, headers = _headers(data)
        method = start.split(" ", 1)[0]
        if method == "ACK" or method.startswith("SIP/"):
            return []
        key = (headers.get("call-id", [""])[0], headers.get("cseq", [""])[0])
        if key in answered:  # a retransmission: the answers already went
            return []
        answered.add(key)
        replies = []
        for status, reason, extra, body in script.get(method, []):
            if method == "INVITE" and not any(h.startswith("Contact:") for h in extra):
                # RFC 3261 §12.1.1: the dialog's remote target, so ACK and BYE come here.
                extra = [*extra, f"Contact: <sip:hostile@{peer.host}:{peer.port}>"]
            delay = (delays or {}).get(status, 0.0)
            replies.append((delay, response(data, status, reason, extra, body)))
        return replies

    return answer


def hostile_uas(
    script: Script,
    *,
    on_request: Callable[[bytes], None] | None = None,
    delays: Mapping[int, float] | None = None,
) -> contextlib.AbstractContextManager[HostileUas]:
    """Serve ``script`` on a free UDP port of 127.0.0.1 until the block ends."""
    return hostile_peer(scripted(script, on_request=on_request, delays=delays))
