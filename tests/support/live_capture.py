"""Live-capture test helpers: tcpdump recording beside siptool, and the traffic to record
(options-ping against Kamailio over UDP, TCP and IPv6, then a SIPp call)."""

from __future__ import annotations

import signal
import struct
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from siptool.capture import Problem
from siptool.capture.pcap import iter_pcap
from tests.support.kamailio import Kamailio
from tests.support.peers import require_tool
from tests.support.run import siptool
from tests.support.servers import Server, free_port
from tests.support.sipp import Sipp


def bpf_expression(ports: Sequence[int]) -> str:
    return " or ".join(f"udp port {p} or tcp port {p}" for p in ports)


@contextmanager
def tcpdump(
    interface: str, ports: Sequence[int], path: Path, *extra: str
) -> Iterator[Callable[[int], list[tuple[int, bytes]]]]:
    """tcpdump writing ``path`` (nanosecond pcap, unbuffered); yields ``wait(n)``: the (time in
    ns, frame) of its packets once it has written at least ``n`` (or after 10 s)."""
    binary = require_tool("tcpdump")
    argv = [binary, "-Z", "root", "-i", interface, *extra, "-n", "-U", "-s0"]
    argv += ["--time-stamp-precision=nano", "-w", str(path), bpf_expression(ports)]
    server = Server(argv, log=path.with_suffix(".log"))
    server.wait_until(lambda: "listening on" in server.log(), timeout=10, what="(listening)")

    def wait(count: int) -> list[tuple[int, bytes]]:
        deadline = time.monotonic() + 10
        while True:
            frames = pcap_frames(path)
            if len(frames) >= count or time.monotonic() > deadline:
                return frames
            time.sleep(0.05)

    try:
        yield wait
    finally:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGINT)
            with suppress(subprocess.TimeoutExpired):
                server.process.wait(timeout=5)
        server.stop()


def pcap_frames(path: Path) -> list[tuple[int, bytes]]:
    """(seconds * 10^9 + nanoseconds, frame) of each whole record of a nanosecond pcap."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    frames = []
    for record in iter_pcap(data):
        if isinstance(record, Problem):
            break  # a record tcpdump is still writing
        _, _, _, start, end, _, offset = record
        seconds, nanoseconds = struct.unpack_from("<II", data, offset)
        frames.append((seconds * 1_000_000_000 + nanoseconds, data[start:end]))
    return frames


def sipp_call(uas: Sipp, work: Path) -> None:
    """SIPp's built-in uac: one call to ``uas`` from 127.0.0.1 at a free port."""
    binary = require_tool("sipp", "sip-tester")
    port, media = free_port("udp"), free_port("udp")
    argv = [binary, "-sn", "uac", "-i", "127.0.0.1", "-p", str(port), "-mp", str(media)]
    argv += ["-m", "1", "-nostdin", "-timeout", "20s", "-timeout_error"]
    argv.append(f"{uas.host}:{uas.port}")
    done = subprocess.run(argv, cwd=work, capture_output=True, text=True, timeout=40)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert uas.finished() == 0, uas.server.log()


def traffic(kamailio: Kamailio, uas: Sipp, work: Path) -> None:
    """options-ping over UDP, TCP and IPv6, then a SIPp call."""
    for uri in (kamailio.uri("udp"), kamailio.uri("tcp"), kamailio.uri("udp", v6=True)):
        result = siptool("options-ping", "-n", "2", "-i", "0.05", uri)
        assert result.returncode == 0, result.stdout + result.stderr
    sipp_call(uas, work)


def closed_connections(path: Path) -> int:
    """The TCP connections the capture at ``path`` has seen closed: a FIN each way, or a RST
    (Kamailio, and a WebSocket client after a protocol error, reset rather than finish).
    Ethernet + IPv4 without options on loopback: the ports at 34 and 36, the flags at 47."""
    fins: dict[frozenset[bytes], set[bytes]] = {}
    reset: set[frozenset[bytes]] = set()
    for _, frame in pcap_frames(path):
        if len(frame) > 47 and frame[23] == 6:
            src, dst, flags = frame[34:36], frame[36:38], frame[47]
            connection = frozenset((src, dst))
            if flags & 0x04:
                reset.add(connection)
            if flags & 0x01:
                fins.setdefault(connection, set()).add(src)
    return len(reset | {c for c, ends in fins.items() if len(ends) == 2})


def wait_until_closed(path: Path, count: int, timeout: float = 15) -> None:
    """Until ``count`` connections are closed in the capture, so that nothing is still on its
    way when tcpdump stops; AssertionError when they are not within ``timeout``."""
    deadline = time.monotonic() + timeout
    while closed_connections(path) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    closed = closed_connections(path)
    assert closed >= count, f"{path}: {closed} of {count} connections closed"
