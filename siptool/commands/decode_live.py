"""`siptool decode -i IFACE`: a live capture as decode's input (net/sniffer.py).

Decisions:

- The ports captured by default are the SIP and STUN ones (RFC 3261 §19.1.2: 5060, 5061 for
  TLS; RFC 8489 §18.1 and RFC 7064: 3478, 5349); ``--port`` (repeatable, ``N`` or ``LOW-HIGH``)
  replaces them.  With ``--rtp`` and no ``--port`` every UDP and TCP port is captured: the
  media ports are only known from the SDP, and a port range cannot be guessed for a user.
- Stopping: after ``--count`` packets, after ``--duration`` seconds, or at Ctrl-C.  Ctrl-C is
  the normal end of an open-ended capture: what the TCP streams still hold is decoded, the
  summary is printed and decode exits as for a file (0 clean, 1 something invalid).
- A call's ladder (--flow) is printed once the call has ended and 4 s have passed
  (``CallFlows.ended``); a live capture may fall silent after the BYE, so the capture wakes
  its caller (``on_idle``) every second even when no packet comes.
- ``--write FILE`` saves every captured packet as pcapng while it is decoded, flushed per
  packet, so an interrupted capture keeps each packet it decoded; a file that cannot be
  created is exit 3 before a packet is read, and none is created when the capture cannot
  start.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from siptool.errors import InputError
from siptool.numbers import decimal_or_none
from siptool.sip.target import DEFAULT_PORT as SIP_PORTS
from siptool.stun.servers import DEFAULT_PORT as STUN_PORTS

if TYPE_CHECKING:
    from siptool.capture import Problem, RawMessage
    from siptool.capture.extract import PacketExtractor
    from siptool.net.sniffer import CapturedPacket, Sniffer

__all__ = ["DEFAULT_PORTS", "LiveCapture", "live_input", "parse_ports"]

DEFAULT_PORTS = tuple(
    sorted({*(SIP_PORTS[t] for t in ("udp", "tcp", "tls")), *STUN_PORTS.values()})
)


def parse_ports(texts: tuple[str, ...]) -> tuple[int, ...]:
    """``("5060", "10000-20000")`` -> the ports; ValueError names a bad one."""
    out: set[int] = set()
    for text in texts:
        low, dash, high = text.partition("-")
        first = decimal_or_none(low, 5)
        last = decimal_or_none(high, 5) if dash else first
        if first is None or last is None:
            raise ValueError(f"bad port {text!r}: a number or a range LOW-HIGH")
        if not 1 <= first <= last <= 65535:
            raise ValueError(f"bad port {text!r}: ports are 1 to 65535, LOW before HIGH")
        out.update(range(first, last + 1))
    return tuple(sorted(out))


@dataclass
class LiveCapture:
    """The open capture: its name for messages, the messages, and the sniffer (drops)."""

    name: str
    items: Generator[RawMessage | Problem, None, None]
    sniffer: Sniffer
    ports: str  # what is captured, for a person: "UDP and TCP ports 3478, 5060-5061"


@contextmanager
def live_input(
    interface: str,
    ports: tuple[int, ...],
    *,
    count: int | None,
    duration: float | None,
    write: str | None,
    extractor: PacketExtractor | None = None,
    on_idle: Callable[[], None] | None = None,
) -> Iterator[LiveCapture]:
    """Capture on ``interface``; InputError (exit 3) when it cannot start.  ``on_idle`` is
    called about once a second while the capture runs."""
    from siptool.net.sniffer import Sniffer, decode_packets, tee_pcapng

    with ExitStack() as stack:
        # The capture first: a missing interface or privilege leaves no empty --write file.
        sniffer = stack.enter_context(Sniffer(interface, ports))
        saved = None
        if write is not None:
            try:
                saved = stack.enter_context(open(write, "wb"))
            except OSError as exc:
                raise InputError(f"cannot write {write}: {exc.strerror or exc}") from None
        packets = _ticking(sniffer, count, duration, on_idle)
        if saved is not None:
            packets = tee_pcapng(packets, saved)
        items = decode_packets(packets, extractor)
        try:
            yield LiveCapture(f"live capture on {interface}", items, sniffer, _shown(ports))
        finally:
            items.close()


_TICK = 1.0  # seconds between two on_idle calls


def _ticking(
    sniffer: Sniffer,
    count: int | None,
    duration: float | None,
    on_idle: Callable[[], None] | None,
) -> Iterator[CapturedPacket]:
    """``sniffer.packets(count, duration)``, calling ``on_idle`` about every ``_TICK`` s."""
    if on_idle is None:
        yield from sniffer.packets(count, duration)
        return
    deadline = None if duration is None else time.monotonic() + duration
    left = count
    while True:
        wait = _TICK if deadline is None else min(_TICK, deadline - time.monotonic())
        if wait <= 0:
            return
        for packet in sniffer.packets(left, wait):
            yield packet
            if left is not None:
                left -= 1
        if left == 0:
            return
        on_idle()


def _shown(ports: tuple[int, ...]) -> str:
    from siptool.net.sniffer import port_ranges

    if not ports:
        return "every UDP and TCP port"
    ranges = [str(a) if a == b else f"{a}-{b}" for a, b in port_ranges(ports)]
    return "UDP and TCP port" + ("s " if len(ports) > 1 else " ") + ", ".join(ranges)
