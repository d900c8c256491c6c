"""A hostile SIP user agent for the tests: answers over UDP on loopback with whatever the test
scripts, so siptool can be tried as an attacker would (control sequences in reason phrases and
headers, numbers written with non-ASCII digits, oversized answers).

It is a real socket peer in a thread of the test process, started on a free port and stopped
by the test; it answers every request of a transaction once, copying Via, From, To, Call-ID
and CSeq as RFC 3261 §8.2.6.2 says, and never sends anything unasked.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

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


def response(request: bytes, status: int, reason: str, extra: list[str], body: bytes) -> bytes:
    """A response to ``request`` with the given status line, extra headers and body."""
    _, headers = _headers(request)
    to = headers.get("to", [""])[0]
    if status > 100 and ";tag=" not in to:
        to += ";tag=hostile1"
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
    received: list[bytes] = field(default_factory=list)

    def uri(self, user: str = "hostile") -> str:
        return f"sip:{user}@{self.host}:{self.port}"


@contextmanager
def hostile_uas(
    script: Script, *, on_request: Callable[[bytes], None] | None = None
) -> Iterator[HostileUas]:
    """Serve ``script`` on a free UDP port of 127.0.0.1 until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    peer = HostileUas("127.0.0.1", sock.getsockname()[1])
    stop = threading.Event()
    answered: set[tuple[str, str]] = set()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, addr = sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            peer.received.append(data)
            if on_request is not None:
                on_request(data)
            start, headers = _headers(data)
            method = start.split(" ", 1)[0]
            if method == "ACK" or method.startswith("SIP/"):
                continue
            key = (headers.get("call-id", [""])[0], headers.get("cseq", [""])[0])
            if key in answered:  # a retransmission: the answers already went
                continue
            answered.add(key)
            for status, reason, extra, body in script.get(method, []):
                if method == "INVITE" and not any(h.startswith("Contact:") for h in extra):
                    # RFC 3261 §12.1.1: the dialog's remote target, so ACK and BYE come here.
                    extra = [*extra, f"Contact: <sip:hostile@{peer.host}:{peer.port}>"]
                sock.sendto(response(data, status, reason, extra, body), addr)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        stop.set()
        thread.join(timeout=2)
        sock.close()
