"""RTP with real loss, delay variation and reordering: two network namespaces and a veth.

    sender ns  198.18.0.1/24  ms0 ====== mr0  198.18.0.2/24  receiver ns
               GStreamer RTP senders, a flood            tcpdump records here

The addresses are RFC 2544's benchmarking network; nothing is made in the host's namespace
(the veth pair is created inside the sender's and one end moved), so no test traffic can
leave.  This kernel has no netem, so the impairments are made of what it has:

- loss: iptables' ``statistic`` match drops a random share of the RTP on the sender's way out;
- delay variation: an HTB qdisc on ``ms0`` with a slow class (1:2) that a bounded flood of
  bursts to the discard port keeps busy; iptables ``CLASSIFY`` sends a random share of the RTP
  into that class (this kernel has no ``fw`` classifier, and HTB takes the class from the
  packet's priority, which CLASSIFY sets), so those packets wait behind the bursts' backlog
  while the rest pass at once.  A wait longer than the packet interval reorders them.

The RTP is third-party: GStreamer's ``audiotestsrc ! mulawenc ! rtppcmupay ! udpsink``, one
20 ms PCMU packet per buffer, paced by GStreamer's clock.

Decisions:
- One bed serves a module's tests (``running_media_bed``); each capture sets its impairments
  afresh (``impair``) and gets its own file.  ``MediaBed.destroy`` stops every process by PID
  (process group) and deletes the namespaces, which takes the veths and the rules with them;
  it is safe to call twice, and ``build`` undoes what it made when a step fails.
- Every wait is bounded: tcpdump's readiness by its "listening on" line, the senders by their
  exit (with a timeout), the end of the capture by the file no longer growing.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.netns import NamespaceBed, add_namespace, delete_namespaces
from tests.support.peers import require_root, require_tool
from tests.support.servers import Server

SENDER_IP = "198.18.0.1"
RECEIVER_IP = "198.18.0.2"
DISCARD_PORT = 9  # the flood's destination: nothing listens there
SLOW_RATE = "1mbit"  # the delaying class: 250-byte flood packets take 2 ms each

# The flood: ``bursts`` bursts of ``size`` packets of 222 payload bytes (250 on the wire),
# one every ``period`` seconds.  Run in the sender namespace; bounded by its count.
_FLOOD = """
import socket, sys, time
bursts, size, period = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload = bytes(222)
start = time.monotonic()
for i in range(bursts):
    for _ in range(size):
        s.sendto(payload, (sys.argv[4], int(sys.argv[5])))
    time.sleep(max(0.0, start + (i + 1) * period - time.monotonic()))
"""


def require_media_bed_tools() -> None:
    """Skip on a laptop, fail under CI, without root or the tools the bed runs."""
    require_root()
    require_tool("ip", "iproute2")
    require_tool("tc", "iproute2")
    require_tool("iptables", "iptables")
    require_tool("tcpdump", "tcpdump")
    require_tool("gst-launch-1.0", "gstreamer1.0-tools")


@dataclass(frozen=True)
class Impairment:
    """What the sender's way out does to RTP: drop a share, delay a share behind bursts."""

    loss: float = 0.0  # probability a packet is dropped
    delayed: float = 0.0  # probability a packet goes through the slow class
    burst: int = 0  # flood packets per burst (each 2 ms of backlog at SLOW_RATE)
    period: float = 0.1  # seconds between bursts


@dataclass
class MediaBed(NamespaceBed):
    work: Path
    tag: str = field(
        default_factory=lambda: f"{os.getpid() % 100000:05d}{time.time_ns() % 997:03d}"
    )
    namespaces: list[str] = field(default_factory=list)
    running: list[Server] = field(default_factory=list)
    sender: str = field(init=False)
    receiver: str = field(init=False)

    def __post_init__(self) -> None:
        self.sender, self.receiver = (f"siptool-m{k}{self.tag}" for k in "sr")

    # -- building ----------------------------------------------------------------------------

    def _build(self) -> None:
        for name in (self.sender, self.receiver):
            add_namespace(name, self.namespaces)
        s, r = self.sender, self.receiver
        self.ns(s, "ip", "link", "add", "ms0", "type", "veth", "peer", "name", "mr0")
        self.ns(s, "ip", "link", "set", "mr0", "netns", r)
        self.ns(s, "ip", "addr", "add", f"{SENDER_IP}/24", "dev", "ms0")
        self.ns(r, "ip", "addr", "add", f"{RECEIVER_IP}/24", "dev", "mr0")
        self.ns(s, "ip", "link", "set", "ms0", "up")
        self.ns(r, "ip", "link", "set", "mr0", "up")
        tc = ("tc", "qdisc", "add", "dev", "ms0")
        self.ns(s, *tc, "root", "handle", "1:", "htb", "default", "1")
        klass = ("tc", "class", "add", "dev", "ms0", "parent", "1:")
        self.ns(s, *klass, "classid", "1:1", "htb", "rate", "10gbit")
        self.ns(s, *klass, "classid", "1:2", "htb", "rate", SLOW_RATE, "ceil", SLOW_RATE,
                "burst", "300", "cburst", "300")  # fmt: skip
        self.ns(s, *tc, "parent", "1:2", "handle", "20:", "pfifo", "limit", "1000")

    # -- using -------------------------------------------------------------------------------

    def impair(self, ports: Sequence[int], impairment: Impairment) -> None:
        """Replace the sender's rules by ``impairment`` for RTP to ``ports``."""
        s = self.sender
        self.ns(s, "iptables", "-w", "-F", "OUTPUT")
        self.ns(s, "iptables", "-w", "-t", "mangle", "-F", "POSTROUTING")
        rtp = ["-p", "udp", "-m", "multiport", "--dports", ",".join(map(str, ports))]
        if impairment.loss > 0:
            self.ns(s, "iptables", "-w", "-A", "OUTPUT", *rtp, "-m", "statistic",
                    "--mode", "random", "--probability", f"{impairment.loss:.4f}",
                    "-j", "DROP")  # fmt: skip
        slow = ["-j", "CLASSIFY", "--set-class", "1:2"]
        mangle = ("iptables", "-w", "-t", "mangle", "-A", "POSTROUTING")
        self.ns(s, *mangle, "-p", "udp", "--dport", str(DISCARD_PORT), *slow)
        if impairment.delayed > 0:
            self.ns(s, *mangle, *rtp, "-m", "statistic", "--mode", "random",
                    "--probability", f"{impairment.delayed:.4f}", *slow)  # fmt: skip

    def capture(
        self, name: str, ports: Sequence[int], packets: int, impairment: Impairment
    ) -> Path:
        """Send ``packets`` 20 ms PCMU packets from GStreamer to each of ``ports`` at once,
        impaired so, and return tcpdump's recording of what reached the receiver."""
        self.impair(ports, impairment)
        out = self.work / f"{name}.pcap"
        flt = " or ".join(f"udp dst port {p}" for p in ports)
        dump = self._start(self.receiver, f"tcpdump-{name}",
                           "tcpdump", "-i", "mr0", "-U", "-s", "0", "-Z", "root",
                           "-w", str(out), flt)  # fmt: skip
        dump.wait_until(lambda: "listening on" in dump.log(), timeout=10, what="(tcpdump)")
        flood = None
        if impairment.burst:
            bursts = int((packets * 0.020 + 1.0) / impairment.period)
            flood = self._start(self.sender, f"flood-{name}",
                                sys.executable, "-c", _FLOOD, str(bursts), str(impairment.burst),
                                str(impairment.period), RECEIVER_IP, str(DISCARD_PORT))  # fmt: skip
        senders = [self._gstreamer(name, port, packets) for port in ports]
        for sender in senders:
            sender.process.wait(timeout=packets * 0.020 + 30)
            if sender.process.returncode != 0:
                raise RuntimeError(f"gst-launch-1.0 failed:\n{sender.log()}")
        if flood is not None:
            flood.stop()
        _wait_until_still(out, timeout=5.0)
        dump.stop()
        return out

    def _gstreamer(self, name: str, port: int, packets: int) -> Server:
        return self._start(
            self.sender, f"gst-{name}-{port}",
            "gst-launch-1.0", "-q", "audiotestsrc", f"num-buffers={packets}",
            "samplesperbuffer=160", "!", "audio/x-raw,rate=8000,channels=1", "!", "mulawenc",
            "!", "rtppcmupay", "!", "udpsink", f"host={RECEIVER_IP}", f"port={port}",
        )  # fmt: skip

    def _start(self, namespace: str, log: str, *argv: str) -> Server:
        server = Server(["ip", "netns", "exec", namespace, *argv], log=self.work / f"{log}.log")
        self.running.append(server)
        return server

    # -- tearing down ------------------------------------------------------------------------

    def destroy(self) -> None:
        while self.running:
            self.running.pop().stop()
        delete_namespaces(self.namespaces)


def _wait_until_still(path: Path, timeout: float, still: float = 0.3) -> None:
    """Until ``path`` has not grown for ``still`` seconds (what the queue held has arrived)."""
    deadline = time.monotonic() + timeout
    size, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = path.stat().st_size if path.exists() else -1
        if now != size:
            size, since = now, time.monotonic()
        elif time.monotonic() - since >= still:
            return
        time.sleep(0.05)
    raise RuntimeError(f"{path} still growing after {timeout} s")


@contextlib.contextmanager
def running_media_bed(work: Path) -> Iterator[MediaBed]:
    require_media_bed_tools()
    bed = MediaBed(work).build()
    try:
        yield bed
    finally:
        bed.destroy()
