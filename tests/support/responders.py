"""Peers run by the test itself: a socket on loopback at a free port, served by a thread of
the test process, stopped (thread joined, socket closed) when the block ends.

They answer as the test scripts them, which real servers will not: wrongly on purpose, from
the wrong address, late or never.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

from siptool.errors import ParseError

Address = tuple[str, int]
# (the responder's socket, the datagram, where it came from)
Handler = Callable[[socket.socket, bytes, Address], None]


@contextlib.contextmanager
def serving(target: Callable[[], None], stop: threading.Event) -> Iterator[None]:
    """Run ``target`` in a daemon thread for the block; at the end set ``stop`` and join it."""
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


@contextlib.contextmanager
def udp_responder(handle: Handler, host: str = "127.0.0.1") -> Iterator[socket.socket]:
    """A UDP socket on ``host`` at a free port whose every datagram goes to ``handle``.  A
    message ``handle`` cannot parse (ParseError) or a reply that cannot be sent (OSError) is
    dropped; the socket is closed within 0.1 s of the end of the block."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.settimeout(0.1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)  # 60 KB answers
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, source = sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            with contextlib.suppress(ParseError, OSError):
                handle(sock, data, source)

    with sock, serving(serve, stop):
        yield sock


def closed_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port nobody listens on (the kernel answers ICMP port unreachable)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def idle_udp_socket(host: str = "127.0.0.1") -> Iterator[socket.socket]:
    """A bound UDP socket nobody reads: a server that is down without the kernel saying so
    (no ICMP error either), or a local port already in use."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        yield sock
