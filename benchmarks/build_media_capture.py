"""Build a capture-scale pcap of SIP and RTP made by third-party software only (issue 10).

    python benchmarks/build_media_capture.py OUT.pcap [--scale K] [--calls N] [--options N]
        [--registers N] [--rate CPS] [--limit N]

A busy SBC's capture is mostly RTP with signalling between; siptool's decode has to be judged
on one.  Nothing here writes a packet: tcpdump (`-i lo -U -s 0`, a capture filter on the ports
used) records, on loopback,

- SIPp calls (benchmarks/sipp/media-uac.xml) through Kamailio (tests/support/kamailio.py:
  INVITEs record-routed to registered contacts) to a SIPp UAS (media-uas.xml) that registered
  first (register-auth.xml), with Debian sip-tester's g711a.pcap (236 RTP packets, 7.05 s of
  PCMA) played by `play_pcap_audio` both ways: 13 SIP messages and 472 RTP packets a call;
- an OPTIONS flood (options-uac.xml) to Kamailio, answered statelessly: 2 messages each;
- digest REGISTERs (register-auth.xml, RFC 3261 §22.4): 4 messages each.

The default scale (500 calls, 10,000 OPTIONS, 2,000 REGISTERs) is the issue's shape: about
270,500 packets, 34,500 SIP and 236,000 RTP; `--scale 4` is four times each count at the same
rates (a capture four times the size, for the memory check).  The packet count and the
SIP/RTP split are counted at the end by walking the pcap (RTP: version 2 to a media port;
SIP: a status or request line), with tcpdump's own drop count.

Decisions:
- Media ports: each call gets its own RTP port per side from SIPp's [auto_media_port]
  (-mp + 4 x call number, modulo 10000), so the capture holds one 5-tuple per call and
  direction (SIPp 3.6.1 keeps g711a.pcap's SSRC: every stream has the same one).  The ranges
  (caller 10000-19999, callee 20000-29999) lie below the kernel's ephemeral range, so no other
  program's free_port socket on loopback receives this RTP; SIPp's play uses a raw socket and
  binds only -mp and -mp+2 of each instance, checked free before the start.
- Floods run beside the calls, not after them, as on a live proxy; rates are fixed and the
  scale lengthens the run.  Every peer has its own SIPp -timeout and a wait bound here, and
  every process is stopped by PID (process group) in a finally.
- tcpdump runs at nice -10 with a 64 MB ring (the ~1,000 SIPp play threads of the default
  run keep both cores busy; at the default priority the kernel dropped 0.1 % at --scale 4),
  and it is stopped only once its file has stopped growing; kernel drops are warned about.
- Retransmissions under load are kept: they are what such a capture holds; "about" is the
  target, the printed split is what was made.
"""

from __future__ import annotations

import argparse
import contextlib
import mmap
import os
import re
import signal
import socket
import struct
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.kamailio import PASSWORD, Kamailio, start_kamailio  # noqa: E402
from tests.support.peers import require_tool  # noqa: E402
from tests.support.servers import Server, free_port  # noqa: E402
from tests.support.sipp import _port_taken  # noqa: E402  (the one "SIPp listens" check)

SCENARIOS = ROOT / "benchmarks" / "sipp"
HOST = "127.0.0.1"
# Per side: -mp (SIPp binds it and +2) and the [auto_media_port] range it starts.
CALLER_MEDIA = 10000
CALLEE_MEDIA = 20000
MEDIA_SPAN = 10000
FLOOD_MEDIA = (30000, 30004)  # the floods' own -mp: SIPp binds one whether or not it plays
CALLEE_AOR = "callee"  # register-auth.xml appends the call number: callee1
PLAY_SECONDS = 7.6  # media-uac.xml's pause between ACK and BYE
MARGIN_S = 60.0


@dataclass(frozen=True)
class Shape:
    calls: int
    options: int
    registers: int
    rate: float
    limit: int
    options_rate: float
    registers_rate: float

    def duration(self) -> float:
        """The longest of the three runs, without margin."""
        return max(
            self.calls / self.rate + PLAY_SECONDS,
            self.options / self.options_rate,
            self.registers / self.registers_rate,
        )


@dataclass(frozen=True)
class Split:
    packets: int
    sip: int
    rtp: int
    other: int


def _check_media_ports_free() -> None:
    for base in (CALLER_MEDIA, CALLEE_MEDIA, *FLOOD_MEDIA):
        for port in (base, base + 2):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.bind((HOST, port))
                except OSError as exc:
                    raise SystemExit(f"media port {HOST}:{port} is taken ({exc})") from None


def _sipp(scenario: str, *args: str, port: int, media: int, timeout: float) -> list[str]:
    return [
        require_tool("sipp", "sip-tester"),
        *("-sf", str(SCENARIOS / scenario)),
        *("-i", HOST, "-p", str(port), "-mi", HOST, "-mp", str(media)),
        *("-t", "u1", "-nostdin", "-trace_err"),
        *("-timeout", f"{int(timeout)}s", "-timeout_error"),
        *args,
    ]


def _wait(server: Server, timeout: float, what: str) -> int:
    try:
        code = server.process.wait(timeout=timeout)
    except Exception:
        server.stop()
        raise RuntimeError(f"{what} still running after {timeout:.0f} s\n{server.log()}") from None
    if code != 0:
        print(f"warning: {what} exited {code}: {server.log()[-600:]}", file=sys.stderr)
    return code


def _start_tcpdump(out: Path, ports: list[int], work: Path) -> Server:
    ranges = [f"portrange {b}-{b + MEDIA_SPAN - 1}" for b in (CALLER_MEDIA, CALLEE_MEDIA)]
    expr = "udp and (" + " or ".join([*(f"port {p}" for p in ports), *ranges]) + ")"
    tcpdump = require_tool("tcpdump", "tcpdump")
    # A 64 MB ring and a higher priority than the ~1,000 SIPp play threads: a kernel drop is a
    # hole in the capture.  Not --immediate-mode (a wake-up per packet costs CPU at 25,000
    # packets/s): the kernel hands over a ring block when full or after tcpdump's 1 s timeout,
    # which _settled() waits out before the SIGINT.
    argv = ["nice", "-n", "-10", tcpdump, "-Z", "root", "-i", "lo", "-w", str(out)]
    argv += ["-U", "-s", "0", "-B", "65536", "-n", expr]
    server = Server(argv, log=work / "tcpdump.log")
    # tcpdump says "listening on lo" once its filter is installed and packets are recorded.
    server.wait_until(lambda: "listening on" in server.log(), what="(listening on lo)")
    return server


def _settled(out: Path, quiet: float = 2.5, bound: float = 20.0) -> None:
    """Until the file has stopped growing for ``quiet`` s (more than tcpdump's 1 s block
    timeout): tcpdump has written what the kernel captured (a packet still in the ring at
    SIGINT is counted by the filter but never written)."""
    deadline = time.monotonic() + bound
    size, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = out.stat().st_size if out.exists() else 0
        if now != size:
            size, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.05)


def _stop_tcpdump(tcpdump: Server, out: Path) -> str:
    """SIGINT: tcpdump flushes the file and prints its counts on stderr."""
    _settled(out)
    with contextlib.suppress(ProcessLookupError):
        tcpdump.process.send_signal(signal.SIGINT)
    _wait(tcpdump, 30, "tcpdump")
    tcpdump.stop()
    return " / ".join(line.strip() for line in tcpdump.log().splitlines() if "packets" in line)


def _register_callee(kamailio: Kamailio, uas_port: int, work: Path) -> None:
    argv = _sipp(
        "register-auth.xml",
        f"{HOST}:{kamailio.udp}",
        *("-m", "1", "-au", CALLEE_AOR, "-ap", PASSWORD),
        *("-key", "aor", CALLEE_AOR, "-key", "contact", f"{HOST}:{uas_port}"),
        port=free_port("udp"),
        media=FLOOD_MEDIA[1],
        timeout=20,
    )
    reg = Server(argv, log=work / "sipp-register-callee.log", cwd=work)
    try:
        if _wait(reg, 30, "callee REGISTER") != 0:
            raise RuntimeError("the callee did not register")
    finally:
        reg.stop()


def _peers(
    kamailio: Kamailio, shape: Shape, ports: dict[str, int], work: Path
) -> Iterator[tuple[str, list[str]]]:
    """The three loads, each as (name, SIPp argv); the UAS is started before these."""
    target = f"{HOST}:{kamailio.udp}"
    timeout = shape.duration() + MARGIN_S
    yield (
        "UAC calls",
        _sipp(
            "media-uac.xml",
            target,
            *("-s", f"{CALLEE_AOR}1", "-m", str(shape.calls)),
            *("-r", f"{shape.rate:g}", "-l", str(shape.limit)),
            port=ports["uac"],
            media=CALLER_MEDIA,
            timeout=timeout,
        ),
    )
    yield (
        "OPTIONS flood",
        _sipp(
            "options-uac.xml",
            target,
            *("-m", str(shape.options), "-r", f"{shape.options_rate:g}", "-l", "200"),
            port=ports["options"],
            media=FLOOD_MEDIA[0],
            timeout=timeout,
        ),
    )
    yield (
        "REGISTER flood",
        _sipp(
            "register-auth.xml",
            target,
            *("-m", str(shape.registers), "-r", f"{shape.registers_rate:g}", "-l", "200"),
            *("-au", "bench", "-ap", PASSWORD),
            *("-key", "aor", "bench", "-key", "contact", f"{HOST}:{ports['register']}"),
            port=ports["register"],
            media=FLOOD_MEDIA[1],
            timeout=timeout,
        ),
    )


def record(out: Path, shape: Shape, work: Path) -> str:
    """Run every peer with tcpdump recording; return tcpdump's own counts line."""
    _check_media_ports_free()
    servers: list[Server] = []
    kamailio = start_kamailio(work)
    try:
        ports = {k: free_port("udp") for k in ("uas", "uac", "options", "register")}
        tcpdump = _start_tcpdump(out, [kamailio.udp, *ports.values()], work)
        servers.append(tcpdump)
        uas_argv = _sipp(
            "media-uas.xml",
            *("-m", str(shape.calls)),
            port=ports["uas"],
            media=CALLEE_MEDIA,
            timeout=shape.duration() + MARGIN_S,
        )
        uas = Server(uas_argv, log=work / "sipp-uas.log", cwd=work)
        servers.append(uas)
        uas.wait_until(lambda: _port_taken("udp", HOST, ports["uas"]), what="(listening)")
        _register_callee(kamailio, ports["uas"], work)
        loads = []
        for name, argv in _peers(kamailio, shape, ports, work):
            slug = name.split()[0].lower()
            loads.append((name, Server(argv, log=work / f"sipp-{slug}.log", cwd=work)))
            servers.append(loads[-1][1])
        deadline = time.monotonic() + shape.duration() + 2 * MARGIN_S
        for name, server in [*loads, ("UAS", uas)]:
            _wait(server, max(1.0, deadline - time.monotonic()), name)
        return _stop_tcpdump(tcpdump, out)
    finally:
        for server in reversed(servers):
            server.stop()
        kamailio.stop()


def _records(data: mmap.mmap) -> Iterator[bytes]:
    magic = struct.unpack_from("<I", data, 0)[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    offset = 24
    while offset + 16 <= len(data):
        incl = struct.unpack_from(endian + "I", data, offset + 8)[0]
        yield data[offset + 16 : offset + 16 + incl]
        offset += 16 + incl


MEDIA_RANGES = (
    range(CALLER_MEDIA, CALLER_MEDIA + MEDIA_SPAN),
    range(CALLEE_MEDIA, CALLEE_MEDIA + MEDIA_SPAN),
)


def _kind(frame: bytes) -> str:
    """One frame of lo (Ethernet framing, IPv4 UDP): "rtp", "sip" or "other"."""
    if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return "other"
    udp = 14 + (frame[14] & 0x0F) * 4
    dport = struct.unpack_from("!H", frame, udp + 2)[0]
    payload = frame[udp + 8 : udp + 80]
    if any(dport in r for r in MEDIA_RANGES) and payload[:1] and payload[0] >> 6 == 2:
        return "rtp"  # RTP version 2 (RFC 3550 §5.1) to a media port
    if payload.startswith(b"SIP/2.0") or b" sip:" in payload:
        return "sip"
    return "other"


def count(path: Path) -> Split:
    """Packets, SIP and RTP in the capture, by a walk of its pcap records."""
    kinds = {"sip": 0, "rtp": 0, "other": 0}
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        for frame in _records(data):
            kinds[_kind(frame)] += 1
    return Split(sum(kinds.values()), kinds["sip"], kinds["rtp"], kinds["other"])


def shape_from(args: argparse.Namespace) -> Shape:
    k = args.scale

    def scaled(given: int | None, default: int) -> int:
        return given if given is not None else max(1, round(default * k))

    return Shape(
        calls=scaled(args.calls, 500),
        options=scaled(args.options, 10_000),
        registers=scaled(args.registers, 2_000),
        rate=args.rate,
        limit=args.limit,
        options_rate=1000.0,
        registers_rate=200.0,
    )


def build(out: Path, shape: Shape) -> Split:
    """Record the capture into ``out`` and print what it holds."""
    out.parent.mkdir(parents=True, exist_ok=True)
    print(
        f"recording {shape.calls} calls ({shape.rate:g}/s, up to {shape.limit} at once), "
        f"{shape.options} OPTIONS, {shape.registers} digest REGISTERs; "
        f"about {shape.duration():.0f} s",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="media-capture-") as tmp:
        start = time.perf_counter()
        tcpdump_counts = record(out, shape, Path(tmp))
        took = time.perf_counter() - start
    split = count(out)
    print(f"tcpdump: {tcpdump_counts}")
    dropped = re.search(r"(\d+) packets? dropped by kernel", tcpdump_counts)
    if dropped and int(dropped[1]):
        print(
            f"warning: the kernel dropped {dropped[1]} packets before tcpdump saw them: the "
            "capture has holes (a busy machine); build it again when it is quieter"
        )
    print(
        f"wrote {out} in {took:.0f} s: {split.packets:,} packets, {split.sip:,} SIP, "
        f"{split.rtp:,} RTP, {split.other:,} other ({os.path.getsize(out) / 1e6:.0f} MB)"
    )
    return split


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--scale", type=float, default=1.0, help="multiply every default count")
    p.add_argument("--calls", type=int, help="calls (default 500 x scale)")
    p.add_argument("--options", type=int, help="OPTIONS transactions (default 10000 x scale)")
    p.add_argument("--registers", type=int, help="digest REGISTERs (default 2000 x scale)")
    p.add_argument("--rate", type=float, default=50.0, help="new calls per second")
    p.add_argument("--limit", type=int, default=500, help="calls at once at most")
    return p


def main() -> int:
    args = parser().parse_args()
    if args.scale <= 0:
        parser().error("--scale must be positive")
    build(args.out, shape_from(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
