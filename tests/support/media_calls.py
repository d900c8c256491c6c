"""Calls with real RTP, recorded by tcpdump, for the tests of `siptool decode --rtp`'s media
verdicts, DTMF and RTCP (tests/integration/test_decode_media.py, issue 10 "Media").

A call is a SIPp UAC (tests/fixtures/sipp/media-*-uac.xml) to a SIPp UAS (media-*-uas.xml),
through Kamailio (the UAS registered first, so that the proxy routes the INVITE to it and
record-routes the dialog) or, behind a NAT made of network namespaces, straight to the UAS.
Each side plays its own cut of Debian sip-tester's g711a.pcap with ``play_pcap_audio``.  The
RTCP exchange is GStreamer's: two ``rtpsession`` pipelines, a sender and a receiver, in a
namespace of their own where iptables drops every tenth RTP packet.  The tshark readers at
the end give the reference figures the tests compare ``siptool decode --rtp --json`` with.

Decisions:
- The audio is a cut of g711a.pcap (its first N records, written into each SIPp's working
  directory as caller.pcap / callee.pcap, the names the scenarios play): calls last 1-3 s
  instead of the file's 7 s, and a side's packet count is known before the call.
- tcpdump runs with ``--immediate-mode -U`` (each packet handed over and written at once),
  in a namespace when asked (``ip netns exec``, which tests/support/live_capture.py's
  recorder cannot prefix); a recording ends once the BYE's 200 OK is in the file (a check on
  the file, not a sleep), then tcpdump gets SIGINT and is stopped by PID.  The capture filter
  names every port of the call, so other tests' traffic on lo stays out.
- SIPp binds -mp and -mp + 2 (the video port) whether it plays or not: a media port is taken
  only when both are free.  A party's ports are chosen before it starts, so that tcpdump,
  started first, can be told them.
- The callee registers with benchmarks/sipp/register-auth.xml (SIPp doing RFC 3261 §22.4
  digest at Kamailio): the one REGISTER scenario of the repository.
- GStreamer's ``rtpsession`` rather than ``rtpbin``: the same RTCP code, but its
  ``rtcp-min-interval`` (RFC 3550 §6.2's 5 s by default) can be set from gst-launch, so a
  2 s stream carries a few SR/RR rounds.  The RTCP ports are not symmetric (GStreamer's
  udpsink sends from a port of its own), so tshark does not pair the SRs and RRs itself:
  the round trip reference is RFC 3550 §6.4.1's A - LSR - DLSR from tshark's fields.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import struct
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import netns
from tests.support.kamailio import PASSWORD, Kamailio
from tests.support.live_capture import pcap_frames
from tests.support.paths import FIXTURES, ROOT
from tests.support.peers import require_root, require_tool
from tests.support.run import checked, siptool
from tests.support.servers import Server, free_port
from tests.support.sipp import _port_taken

MEDIA_SCENARIOS = FIXTURES / "sipp"
REGISTER_SCENARIO = ROOT / "benchmarks" / "sipp" / "register-auth.xml"
SIP_TESTER = Path("/usr/share/sip-tester")
AUDIO = SIP_TESTER / "g711a.pcap"  # 236 PCMA packets of 30 ms (7.05 s), SSRC 0xDEE0EE8F
PCAP_HEADER = 24
RECORD_HEADER = struct.Struct("<IIII")  # seconds, fraction, captured length, original length


def cut_pcap(source: Path, out: Path, packets: int) -> int:
    """The first ``packets`` records of the little-endian pcap ``source`` into ``out``; how
    many were written (fewer when the file is shorter)."""
    data = source.read_bytes()
    end, count = PCAP_HEADER, 0
    while count < packets and end + RECORD_HEADER.size <= len(data):
        end += RECORD_HEADER.size + RECORD_HEADER.unpack_from(data, end)[2]
        count += 1
    out.write_bytes(data[:end])
    return count


def media_port(host: str = "127.0.0.1") -> int:
    """An even port P with P and P + 2 free for UDP on ``host`` (see Decisions)."""
    for _ in range(50):
        port = free_port("udp", host) & ~1
        if 1024 <= port < 65534 and not any(_port_taken("udp", host, p) for p in (port, port + 2)):
            return port
    raise RuntimeError("no free media port pair")


def _in(netns: str | None) -> list[str]:
    return ["ip", "netns", "exec", netns] if netns else []


def bound(port: int, host: str = "127.0.0.1", netns: str | None = None) -> bool:
    """Whether a UDP socket is bound to ``port`` (in ``netns``: as ``ss`` there says)."""
    if netns is None:
        return _port_taken("udp", host, port)
    ss = [*_in(netns), "ss", "-Hlun", f"sport = :{port}"]
    return bool(subprocess.run(ss, capture_output=True, text=True, timeout=10).stdout.strip())


# -- tcpdump -----------------------------------------------------------------------------------


@contextlib.contextmanager
def recording(path: Path, interface: str, bpf: str, *, netns: str | None = None) -> Iterator[None]:
    """tcpdump writing ``path`` (nanosecond pcap) from ``interface`` (in ``netns``) while the
    block runs; SIGINT at the end (it closes the file), then stopped by PID."""
    binary = require_tool("tcpdump")
    argv = [*_in(netns), binary, "-Z", "root", "-i", interface, "-n", "-U", "--immediate-mode"]
    argv += ["-s0", "--time-stamp-precision=nano", "-w", str(path), bpf]
    server = Server(argv, log=path.with_suffix(".log"))
    server.wait_until(lambda: "listening on" in server.log(), timeout=10, what="(listening)")
    try:
        yield
    finally:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.process.wait(timeout=5)
        server.stop()


def ports_filter(ports: Sequence[int]) -> str:
    return " or ".join(f"udp port {p}" for p in sorted(set(ports)))


# The status line follows the UDP header inside the frame; the CSeq is a line of its own.
_BYE_ANSWERED = re.compile(rb"SIP/2\.0 200 .*\nCSeq: *\d+ BYE\r\n", re.S)


def wait_ended(path: Path, timeout: float = 5.0) -> None:
    """Until the capture holds the BYE's 200 OK: the call has ended on the wire."""
    deadline = time.monotonic() + timeout
    while not any(_BYE_ANSWERED.search(frame) for _, frame in pcap_frames(path)):
        if time.monotonic() > deadline:
            raise AssertionError(f"{path}: the BYE's 200 OK was not captured in {timeout} s")
        time.sleep(0.05)


# -- SIPp --------------------------------------------------------------------------------------


@dataclass
class Party:
    """One SIPp of a call: where it listens for SIP and sends/receives RTP, and its process
    once started."""

    work: Path
    host: str = "127.0.0.1"
    netns: str | None = None
    port: int = 0
    media: int = 0
    server: Server | None = None

    def __post_init__(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port, self.media = free_port("udp", self.host), media_port(self.host)

    @property
    def sip(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def rtp(self) -> str:
        """The address its SDP announces (c= and m=: -mi and -mp)."""
        return f"{self.host}:{self.media}"

    def start(
        self, scenario: str | Path, *extra: str, audio: int | None = None, name: str = "callee.pcap"
    ) -> Party:
        """Run ``scenario`` (a file of tests/fixtures/sipp/, or a path) for one call, with the
        first ``audio`` packets of g711a.pcap as ``name`` in its directory."""
        if audio is not None:
            cut_pcap(AUDIO, self.work / name, audio)
        path = scenario if isinstance(scenario, Path) else MEDIA_SCENARIOS / scenario
        binary = require_tool("sipp", "sip-tester")
        argv = [*_in(self.netns), binary, "-sf", str(path), "-i", self.host, "-p", str(self.port)]
        argv += ["-mi", self.host, "-mp", str(self.media), "-t", "u1", "-m", "1", "-nostdin"]
        # Bounded whatever happens: SIPp gives up on its own after 30 s.
        argv += ["-trace_err", "-timeout", "30s", "-timeout_error", *extra]
        self.server = Server(argv, log=self.work / "sipp.log", cwd=self.work)
        return self

    def listening(self) -> Party:
        """Once its SIP port is bound (a UAS is ready for the INVITE)."""
        assert self.server is not None
        self.server.wait_until(lambda: bound(self.port, self.host, self.netns), what="(SIP)")
        return self

    def finished(self, timeout: float = 15.0) -> None:
        """Its exit, which must be 0 (SIPp: every step of the scenario ran)."""
        assert self.server is not None
        try:
            code = self.server.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"SIPp still running after {timeout} s\n{self.log()}") from None
        assert code == 0, f"SIPp exited {code}\n{self.log()}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def log(self) -> str:
        errors = "".join(p.read_text(errors="replace") for p in self.work.glob("*errors.log"))
        return (self.server.log() if self.server else "") + errors[-3000:]


def register(kamailio: Kamailio, user: str, contact: str, work: Path) -> str:
    """SIPp registers ``contact`` (host:port) at Kamailio with digest; the registered user
    (register-auth.xml appends the call number: ``user`` + "1")."""
    party = Party(work)
    party.start(
        REGISTER_SCENARIO,
        *("-au", user, "-ap", PASSWORD, "-key", "aor", user, "-key", "contact", contact),
        f"{kamailio.host}:{kamailio.udp}",
    )
    try:
        party.finished(20)
    finally:
        party.stop()
    return f"{user}1"


@dataclass
class Call:
    """A recorded call: the capture and both parties (their addresses for the assertions)."""

    path: Path
    caller: Party
    callee: Party


def _play(caller: Party, callee: Party, path: Path, scenario: str, *argv: str, audio: int) -> None:
    """The caller's call to the listening callee, both to the end, and the recording of it
    in ``path`` complete."""
    caller.start(scenario, *argv, audio=audio, name="caller.pcap")
    caller.finished()
    callee.finished()
    wait_ended(path)


def call_through(
    kamailio: Kamailio,
    work: Path,
    uac: str,
    uas: str,
    *,
    caller_audio: int,
    callee_audio: int | None,
    pause_ms: int,
) -> Call:
    """One call ``uac`` -> Kamailio -> ``uas`` recorded on lo, each side playing that many
    packets of g711a.pcap (the callee none: None); ``pause_ms`` is the scenario's -d."""
    caller, callee = Party(work / "uac"), Party(work / "uas")
    path = work / "call.pcap"
    try:
        callee.start(uas, audio=callee_audio).listening()
        user = register(kamailio, f"media{callee.port}", callee.sip, work / "register")
        ports = (kamailio.udp, caller.port, caller.media, callee.port, callee.media)
        with recording(path, "lo", ports_filter(ports)):
            target = f"{kamailio.host}:{kamailio.udp}"
            _play(caller, callee, path, uac, "-s", user, "-d", str(pause_ms), target,
                  audio=caller_audio)  # fmt: skip
    finally:
        caller.stop()
        callee.stop()
    return Call(path, caller, callee)


# -- behind a NAT ------------------------------------------------------------------------------

# tests/nat/testbed.py's shape and addresses (RFC 1918 inside, TEST-NET-2 outside, RFC 5737),
# in namespaces of this module's own, with a SIPp on each side instead of coturn.
PRIVATE_IP = "10.0.0.2"
ROUTER_LAN = "10.0.0.1"
ROUTER_WAN = "198.51.100.1"
PUBLIC_IP = "198.51.100.2"


def _ip(*argv: str) -> None:
    checked("ip", *argv)


def _tag() -> str:
    return f"{os.getpid() % 100000:05d}{time.time_ns() % 997:03d}"


@contextlib.contextmanager
def namespaces(*kinds: str) -> Iterator[list[str]]:
    """Fresh network namespaces (lo up), one per kind, deleted at the end (their veths, rules
    and sockets go with them) whatever happened."""
    require_root()
    require_tool("ip", "iproute2")
    tag = _tag()
    with netns.namespaces(*(f"siptool-d{kind}{tag}" for kind in kinds)) as made:
        yield made


@contextlib.contextmanager
def masquerading_nat() -> Iterator[tuple[str, str]]:
    """(inside, outside): 10.0.0.2 behind a router that MASQUERADEs it to 198.51.100.1 on the
    way to 198.51.100.2.  The outside has no route back to 10/8, as the internet has none."""
    require_tool("iptables")
    with namespaces("i", "r", "o") as (inside, router, outside):
        # Made inside the router and handed over: nothing is made in the host's namespace.
        for near, far, other in (("r0", "c0", inside), ("r1", "p0", outside)):
            _ip("-n", router, "link", "add", near, "type", "veth", "peer", "name", far,
                "netns", other)  # fmt: skip
        for ns, dev, addr in ((router, "r0", ROUTER_LAN), (router, "r1", ROUTER_WAN),
                              (inside, "c0", PRIVATE_IP), (outside, "p0", PUBLIC_IP)):  # fmt: skip
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
        _ip("-n", inside, "route", "add", "198.51.100.0/24", "via", ROUTER_LAN)
        _ip("netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        _ip("netns", "exec", router, "iptables", "-w", "-t", "nat", "-A", "POSTROUTING",
            "-o", "r1", "-s", "10.0.0.0/24", "-j", "MASQUERADE")  # fmt: skip
        yield inside, outside


def call_across_nat(work: Path, inside: str, outside: str, *, audio: int, pause_ms: int) -> Call:
    """One call from 10.0.0.2 (its SDP's c= its own private address) straight to a UAS at
    198.51.100.2, both sides playing ``audio`` packets; recorded on the outside's interface.
    Each namespace is new and empty: any port is free there."""
    caller = Party(work / "uac", PRIVATE_IP, inside, 5060, 40000)
    callee = Party(work / "uas", PUBLIC_IP, outside, 5060, 40000)
    path = work / "call.pcap"
    try:
        callee.start("media-call-uas.xml", audio=audio).listening()
        with recording(path, "p0", "udp", netns=outside):
            _play(caller, callee, path, "media-call-uac.xml", "-s", "callee", "-d",
                  str(pause_ms), callee.sip, audio=audio)  # fmt: skip
    finally:
        caller.stop()
        callee.stop()
    return Call(path, caller, callee)


# -- RTCP --------------------------------------------------------------------------------------

RTCP_HOST = "127.0.0.1"
RTP_PORT = 40000  # the receiver's RTP port; its RTCP is the next one (RFC 3550 §11)
SENDER_RTCP_PORT = 40003  # where the sender listens for the receiver's reports
RTCP_INTERVAL_NS = 500_000_000


def _receiver(netns: str, work: Path) -> Server:
    caps = "application/x-rtp,media=audio,clock-rate=8000,encoding-name=PCMA,payload=8"
    return Server(
        [*_in(netns), require_tool("gst-launch-1.0", "gstreamer1.0-tools"), "-q",
         "rtpsession", "name=r", f"rtcp-min-interval={RTCP_INTERVAL_NS}",
         "udpsrc", f"port={RTP_PORT}", f"caps={caps}", "!", "r.recv_rtp_sink",
         "r.recv_rtp_src", "!", "fakesink",
         "udpsrc", f"port={RTP_PORT + 1}", "caps=application/x-rtcp", "!", "r.recv_rtcp_sink",
         "r.send_rtcp_src", "!", "udpsink", f"host={RTCP_HOST}", f"port={SENDER_RTCP_PORT}",
         "sync=false", "async=false"],
        log=work / "gst-receiver.log",
    )  # fmt: skip


def _sender(netns: str, work: Path, packets: int) -> Server:
    return Server(
        [*_in(netns), require_tool("gst-launch-1.0", "gstreamer1.0-tools"), "-q",
         "rtpsession", "name=s", f"rtcp-min-interval={RTCP_INTERVAL_NS}",
         "audiotestsrc", f"num-buffers={packets}", "samplesperbuffer=160", "is-live=true",
         "!", "audio/x-raw,rate=8000,channels=1", "!", "alawenc", "!", "rtppcmapay",
         "!", "s.send_rtp_sink",
         "s.send_rtp_src", "!", "udpsink", f"host={RTCP_HOST}", f"port={RTP_PORT}",
         "s.send_rtcp_src", "!", "udpsink", f"host={RTCP_HOST}", f"port={RTP_PORT + 1}",
         "sync=false", "async=false",
         "udpsrc", f"port={SENDER_RTCP_PORT}", "caps=application/x-rtcp", "!", "s.recv_rtcp_sink"],
        log=work / "gst-sender.log",
    )  # fmt: skip


def _reports(path: Path) -> int:
    """RTCP datagrams toward the sender's RTCP port in the capture so far (lo: Ethernet)."""
    return sum(
        1
        for _, frame in pcap_frames(path)
        if len(frame) > 38 and struct.unpack_from("!H", frame, 36)[0] == SENDER_RTCP_PORT
    )


def rtcp_exchange(work: Path, *, packets: int, drop_every: int) -> Path:
    """GStreamer sends ``packets`` 20 ms PCMA packets with RTCP SRs to a GStreamer receiver
    that answers with RRs, in a namespace of its own where iptables drops every
    ``drop_every``-th RTP packet on its way out (before tcpdump sees it); the recording on
    its lo, ended once the receiver has reported after the sender stopped."""
    require_tool("iptables")
    path = work / "rtcp.pcap"
    with namespaces("q") as (netns,):
        _ip("netns", "exec", netns, "iptables", "-w", "-A", "OUTPUT", "-p", "udp",
            "--dport", str(RTP_PORT), "-m", "statistic", "--mode", "nth",
            "--every", str(drop_every), "--packet", "3", "-j", "DROP")  # fmt: skip
        running: list[Server] = []
        try:
            with recording(path, "lo", "udp", netns=netns):
                running.append(receiver := _receiver(netns, work))
                receiver.wait_until(lambda: bound(RTP_PORT + 1, netns=netns), what="(udpsrc)")
                running.append(sender := _sender(netns, work, packets))
                sender.process.wait(timeout=packets * 0.02 + 15)
                assert sender.process.returncode == 0, sender.log()
                before = _reports(path)
                deadline = time.monotonic() + 5  # one RTCP interval is 0.25-0.75 s
                while _reports(path) <= before and time.monotonic() < deadline:
                    time.sleep(0.05)
        finally:
            for server in running:
                server.stop()
    return path


# -- reading the capture -----------------------------------------------------------------------


def decode_rtp(path: Path, *extra: str) -> dict[str, Any]:
    """``siptool decode --rtp --json FILE``'s document (exit 0 required)."""
    result = siptool("decode", "--rtp", "--json", *extra, str(path))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.doc


@dataclass(frozen=True)
class TsharkStream:
    src: str
    dst: str
    ssrc: str  # as siptool prints it: 0x%08X
    payload: str
    packets: int
    lost: int


_STREAM_ROW = re.compile(
    r"^\s*\S+\s+\S+\s+(?P<sip>\S+)\s+(?P<sport>\d+)\s+(?P<dip>\S+)\s+(?P<dport>\d+)\s+"
    r"0x(?P<ssrc>[0-9A-Fa-f]{8})\s+(?P<payload>.+?)\s+(?P<packets>\d+)\s+(?P<lost>-?\d+) \("
)
TSHARK_RTP = ("-o", "rtp.heuristic_rtp:TRUE")


def tshark_rtp_streams(path: Path, *options: str) -> list[TsharkStream]:
    """tshark 4.0's ``-q -z rtp,streams`` rows: RTP found by the SDP tshark read, or by its
    ``rtp_udp`` heuristic."""
    tshark = require_tool("tshark")
    argv = [tshark, "-n", "-q", "-r", str(path), *TSHARK_RTP, *options, "-z", "rtp,streams"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout
    rows = []
    for line in out.splitlines():
        m = _STREAM_ROW.match(line)
        if m is not None:
            src, dst = f"{m['sip']}:{m['sport']}", f"{m['dip']}:{m['dport']}"
            ssrc, counts = f"0x{m['ssrc'].upper()}", (int(m["packets"]), int(m["lost"]))
            rows.append(TsharkStream(src, dst, ssrc, m["payload"], *counts))
    return rows


def tshark_rows(
    path: Path, display_filter: str, fields: Sequence[str], *options: str
) -> list[list[str]]:
    """``tshark -T fields`` rows (every occurrence, comma-separated) of the packets that match
    ``display_filter``."""
    tshark = require_tool("tshark")
    argv = [tshark, "-n", "-r", str(path), *TSHARK_RTP, *options, "-Y", display_filter]
    argv += ["-T", "fields", "-E", "separator=\t", "-E", "occurrence=a"]
    for name in fields:
        argv += ["-e", name]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


@dataclass
class TsharkRtcp:
    """What tshark decodes of the RTCP of one sender SSRC: its SRs and the RRs about it."""

    sender_reports: int = 0
    sender_packets: int | None = None
    sender_octets: int | None = None
    bye: bool = False
    blocks: list[dict[str, int]] = field(default_factory=list)  # every report block, in order
    rtts_ms: list[float] = field(default_factory=list)  # A - LSR - DLSR per matched block


def tshark_rtcp(path: Path, ssrc: int, *ports: int) -> TsharkRtcp:
    """The RTCP about ``ssrc`` as tshark decodes it (``ports`` decoded as RTCP): RFC 3550
    §6.4.1's round trip from the capture times of each SR and the RR whose LSR names it."""
    decode = [arg for p in ports for arg in ("-d", f"udp.port=={p},rtcp")]
    fields = ("frame.time_epoch", "rtcp.pt", "rtcp.senderssrc", "rtcp.timestamp.ntp.msw",
              "rtcp.timestamp.ntp.lsw", "rtcp.sender.packetcount", "rtcp.sender.octetcount",
              "rtcp.ssrc.identifier", "rtcp.ssrc.fraction", "rtcp.ssrc.cum_nr",
              "rtcp.ssrc.ext_high", "rtcp.ssrc.jitter", "rtcp.ssrc.lsr",
              "rtcp.ssrc.dlsr")  # fmt: skip
    out = TsharkRtcp()
    sent: dict[int, float] = {}  # NTP middle 32 bits -> capture time of the SR
    for row in tshark_rows(path, "rtcp", fields, *decode):
        t, pts, sender, msw, lsw, count, octets, ids, fraction, cum, high, jit, lsr, dlsr = row
        from_sender = int(sender.split(",")[0], 16) == ssrc
        if from_sender and msw:
            out.sender_reports += 1
            out.sender_packets, out.sender_octets = int(count), int(octets)
            sent[((int(msw) & 0xFFFF) << 16) | (int(lsw) >> 16)] = float(t)
        out.bye = out.bye or (from_sender and "203" in pts.split(","))  # RFC 3550 §6.6
        if fraction and int(ids.split(",")[0], 16) == ssrc:
            block = {"fraction": int(fraction), "cumulative": int(cum), "highest": int(high),
                     "jitter": int(jit), "lsr": int(lsr), "dlsr": int(dlsr)}  # fmt: skip
            out.blocks.append(block)
            if block["lsr"] in sent:
                rtt = float(t) - sent[block["lsr"]] - block["dlsr"] / 65536
                out.rtts_ms.append(max(0.0, rtt * 1000))
    return out
