"""The live capture (siptool/net/sniffer.py) against tcpdump recording beside it (issue 10).

Real traffic on loopback from third-party peers and siptool itself: options-ping against a
Kamailio over UDP, TCP and IPv6, and a SIPp uac -> uas call.  The sniffer and ``tcpdump -w``
capture it at the same time with the same port filter; then the messages
``decode_packets(sniffer)`` finds and those ``iter_input(tcpdump's file)`` finds are the same
messages (bytes, src, dst, transport, frame) in the same order, from the same frames, byte for
byte, stamped with the same kernel receive times.  On ``lo`` and on ``any`` (tcpdump told
``-y LINUX_SLL``, the cooked header the sniffer builds).  Also: a flow on another port is not
captured (and a sniffer on that port does see it), ``count`` and ``duration`` stop the capture,
the pcapng the capture wrote reads in tshark without a word on stderr, and a missing interface
or privilege is one clear InputError.

The sniffer is running once constructed (its filter is attached before the constructor
returns), and tcpdump is waited for by its "listening on" line; every wait is bounded.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from siptool.capture import Problem, RawMessage, iter_input
from siptool.capture.layers import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL
from siptool.errors import InputError
from siptool.net.sniffer import CapturedPacket, Sniffer, decode_packets, tee_pcapng
from tests.support.kamailio import Kamailio
from tests.support.live_capture import tcpdump, traffic
from tests.support.netns import namespaces
from tests.support.paths import ROOT
from tests.support.peers import require_root, require_tool
from tests.support.run import siptool
from tests.support.servers import free_port
from tests.support.sipp import Sipp

pytestmark = pytest.mark.peer

# After the traffic has ended, what the sniffer still has to read is already queued: a short
# bounded read takes it, and the comparison with tcpdump's file says whether anything is missing.
SETTLE = 0.5
TSHARK_AS_ROOT = 'Running as user "root" and group "root". This could be dangerous.'


@pytest.fixture(autouse=True)
def _root() -> None:
    require_root()
    require_tool("tcpdump")


def is_tcp(packet: CapturedPacket) -> bool:
    ip = 14 if packet.linktype == LINKTYPE_ETHERNET else 16
    version = packet.data[ip] >> 4
    return packet.data[ip + (9 if version == 4 else 6)] == 6


def message_keys(items: Sequence[RawMessage | Problem]) -> list[tuple[object, ...]]:
    return [
        (m.protocol, m.data, m.src, m.dst, m.transport, m.frame)
        if isinstance(m, RawMessage)
        else ("problem", m.where, m.message)
        for m in items
    ]


def compare_with_tcpdump(
    interface: str,
    linktype: int,
    kamailio: Kamailio,
    uas: Sipp,
    work: Path,
    *tcpdump_flags: str,
) -> list[CapturedPacket]:
    ports = sorted({kamailio.udp, kamailio.ports6["udp"], uas.port})
    with (
        Sniffer(interface, ports) as sniffer,
        tcpdump(interface, ports, work / "tcpdump.pcap", *tcpdump_flags) as written,
    ):
        traffic(kamailio, uas, work)
        live = list(sniffer.packets(duration=SETTLE))
        theirs = written(len(live))
        assert sniffer.dropped == 0
    assert {p.linktype for p in live} == {linktype}
    assert {p.interface for p in live} == {"lo"}
    assert [p.data for p in live] == [frame for _, frame in theirs]
    # The kernel's receive time, the one tcpdump writes: the same nanosecond for UDP.  A TCP
    # segment crosses loopback with TCP's departure time (a monotonic clock) in skb->tstamp,
    # which each packet socket replaces with the real time when it takes the packet, so the
    # two captures stamp it a microsecond or so apart.
    for packet, (stamp, _) in zip(live, theirs, strict=True):
        if is_tcp(packet):
            assert abs(packet.time_ns - stamp) < 1_000_000, (packet.time_ns, stamp)
        else:
            assert packet.time_ns == stamp
    assert all(p.original_length == len(p.data) for p in live)
    ours = list(decode_packets(live))
    expected = list(iter_input((work / "tcpdump.pcap").read_bytes()))
    assert message_keys(ours) == message_keys(expected)
    # 3 x 2 OPTIONS and their 200s, and SIPp's call: INVITE, 180, 200, ACK, BYE, 200.
    assert sum(isinstance(m, RawMessage) for m in ours) == 12 + 6
    assert {m.transport for m in ours if isinstance(m, RawMessage)} == {"udp", "tcp"}
    return live


def test_on_lo_the_same_frames_times_and_messages_as_tcpdump(
    kamailio: Kamailio, sipp: Callable[..., Sipp], tmp_path: Path
) -> None:
    live = compare_with_tcpdump("lo", LINKTYPE_ETHERNET, kamailio, sipp(), tmp_path)
    # Ctrl-C in the middle of the capture: what was decoded up to there (the TCP streams
    # flushed as at the end of a file) comes out, then the KeyboardInterrupt.
    for cut in (len(live) // 3, len(live) // 2):

        def interrupted(cut: int = cut) -> Iterator[CapturedPacket]:
            yield from live[:cut]
            raise KeyboardInterrupt

        got: list[RawMessage | Problem] = []
        with pytest.raises(KeyboardInterrupt):
            got.extend(decode_packets(interrupted()))
        assert message_keys(got) == message_keys(list(decode_packets(live[:cut])))
        assert got


def test_on_any_the_same_cooked_frames_times_and_messages_as_tcpdump(
    kamailio: Kamailio, sipp: Callable[..., Sipp], tmp_path: Path
) -> None:
    compare_with_tcpdump("any", LINKTYPE_LINUX_SLL, kamailio, sipp(), tmp_path, "-y", "LINUX_SLL")


def test_the_pcapng_written_from_the_live_packets_reads_in_tshark_without_warnings(
    kamailio: Kamailio, tmp_path: Path
) -> None:
    tshark = require_tool("tshark")
    path = tmp_path / "live.pcapng"
    with Sniffer("any", [kamailio.udp]) as sniffer, open(path, "wb") as stream:
        result = siptool("options-ping", "-n", "3", "-i", "0.05", kamailio.uri("udp"))
        assert result.returncode == 0, result.stderr
        saved = list(tee_pcapng(sniffer.packets(count=6, duration=10), stream))
    assert len(saved) == 6
    fields = ["-T", "fields", "-e", "frame.time_epoch", "-e", "frame.len", "-e", "sip.CSeq"]
    fields += ["-e", "frame.interface_name", "-E", "separator=|"]
    done = subprocess.run(
        [tshark, "-r", str(path), *fields], capture_output=True, text=True, timeout=60
    )
    # tshark's one line about running as root is about the user, not the file.
    warnings = [line for line in done.stderr.splitlines() if line != TSHARK_AS_ROOT]
    assert done.returncode == 0 and warnings == [], done.stderr
    rows = [line.split("|") for line in done.stdout.splitlines()]
    assert [row[0].replace(".", "").lstrip("0") for row in rows] == [str(p.time_ns) for p in saved]
    assert [int(row[1]) for row in rows] == [p.original_length for p in saved]
    assert [row[2] for row in rows] == [f"{n} OPTIONS" for n in (1, 1, 2, 2, 3, 3)]
    assert {row[3] for row in rows} == {"lo"}
    assert message_keys(list(iter_input(path.read_bytes()))) == message_keys(
        list(decode_packets(saved))
    )


def udp_flow(port: int, count: int, payload: bytes) -> None:
    """``count`` datagrams to a socket listening on 127.0.0.1:``port`` (so none is refused)."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as source,
    ):
        sink.bind(("127.0.0.1", port))
        for _ in range(count):
            source.sendto(payload, ("127.0.0.1", port))


def test_the_port_filter_leaves_out_a_flow_on_another_port() -> None:
    wanted, other = free_port("udp"), free_port("udp")
    options = b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nContent-Length: 0\r\n\r\n"
    with Sniffer("lo", [wanted]) as narrow, Sniffer("lo", [other]) as witness:
        udp_flow(other, 5, options)
        udp_flow(wanted, 2, options)
        caught = list(narrow.packets(duration=SETTLE))
        seen = list(witness.packets(duration=SETTLE))
    ports = {struct.unpack_from("!H", p.data, 14 + 22)[0] for p in caught}
    assert len(caught) == 2 and ports == {wanted}
    assert len(seen) == 5  # the other flow was there: the filter, not the traffic, left it out


def test_count_and_duration_stop_the_capture() -> None:
    port = free_port("udp")
    with Sniffer("lo", [port]) as sniffer:
        started = time.monotonic()
        assert list(sniffer.packets(duration=0.3)) == []
        waited = time.monotonic() - started
        assert 0.3 <= waited < 2, waited
        udp_flow(port, 5, b"x")
        assert len(list(sniffer.packets(count=3, duration=10))) == 3
        started = time.monotonic()
        assert len(list(sniffer.packets(count=10, duration=0.3))) == 2
        assert 0.3 <= time.monotonic() - started < 2
        assert list(sniffer.packets(count=0)) == []


def test_a_missing_interface_is_one_input_error() -> None:
    with pytest.raises(InputError) as caught:
        Sniffer("siptoolnope9", [5060])
    assert caught.value.message == "no such interface: siptoolnope9"


def test_without_the_privilege_the_error_says_root_or_cap_net_raw_is_needed() -> None:
    # Root without CAP_NET_RAW in its bounding set: what a user without the capability gets.
    setpriv = require_tool("setpriv", "util-linux")
    code = (
        "from siptool.net.sniffer import Sniffer\n"
        "from siptool.errors import InputError\n"
        "try:\n    Sniffer('lo', [5060])\n"
        "except InputError as exc:\n    print(exc.message)\n"
    )
    done = subprocess.run(
        [setpriv, "--bounding-set=-net_raw", sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "capturing on lo needs root or the CAP_NET_RAW capability\n"


# Run inside the sender's namespace: two sniffers (the veth, and ``any``) on port 5060 while
# 3000-byte SIP datagrams go out over IPv4 and IPv6 at an MTU of 1280 (three fragments each),
# to port 5060 and to port 5070; what each captured and decoded, as JSON.
FRAGMENTS_CHILD = """
import json, socket
from siptool.capture import RawMessage
from siptool.net.sniffer import Sniffer, decode_packets
body = b"a=x-padding:" + b"y" * 2900 + b"\\r\\n"
def sip(port):
    head = "OPTIONS sip:x@example.com SIP/2.0\\r\\nCall-ID: c%d\\r\\nContent-Length: %d\\r\\n\\r\\n"
    return (head % (port, len(body))).encode() + body
out = {"size": len(sip(5060))}
with Sniffer("v0", [5060]) as veth, Sniffer("any", [5060]) as every:
    for family, host in ((socket.AF_INET, "192.0.2.2"), (socket.AF_INET6, "2001:db8::2")):
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            for port in (5070, 5060, 5070):
                s.sendto(sip(port), (host, port))
            s.sendto(b"small", (host, 5070))
    for name, sniffer in (("veth", veth), ("any", every)):
        packets = list(sniffer.packets(duration=0.5))
        items = list(decode_packets(packets))
        out[name] = {
            "packets": [(p.linktype, p.interface, p.original_length) for p in packets],
            "messages": [(m.src, m.dst, len(m.data)) for m in items if isinstance(m, RawMessage)],
            "problems": [str(m) for m in items if not isinstance(m, RawMessage)],
        }
print(json.dumps(out))
"""


@contextmanager
def veth_pair() -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    """Two namespaces joined by a veth (v0 192.0.2.1 / 2001:db8::1 -> v1 .2 / ::2), MTU 1280,
    each side's neighbour entry for the other set by hand (so nothing waits for ARP, NDP or
    DAD); yields ``in_sender(*argv)``, which runs a command in the first one."""
    ip = require_tool("ip", "iproute2")
    names = [f"siptool-sniff-{os.getpid()}-{side}" for side in ("a", "b")]
    macs = ["02:00:00:00:5e:01", "02:00:00:00:5e:02"]

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{argv}: {done.stderr}"
        return done

    with namespaces(*names):
        v0 = ("v0", "address", macs[0], "netns", names[0])
        run(
            ip,
            "link",
            "add",
            *v0,
            "type",
            "veth",
            "peer",
            "v1",
            "address",
            macs[1],
            "netns",
            names[1],
        )
        for side, (name, dev) in enumerate(((names[0], "v0"), (names[1], "v1"))):
            inside = (ip, "netns", "exec", name, ip)
            me, peer, peer_mac = side + 1, 2 - side, macs[1 - side]
            run(*inside, "addr", "add", f"192.0.2.{me}/24", "dev", dev)
            run(*inside, "addr", "add", f"2001:db8::{me}/64", "dev", dev, "nodad")
            run(*inside, "link", "set", dev, "mtu", "1280", "up")
            for address in (f"192.0.2.{peer}", f"2001:db8::{peer}"):
                run(
                    *inside,
                    "neigh",
                    "replace",
                    address,
                    "lladdr",
                    peer_mac,
                    "dev",
                    dev,
                    "nud",
                    "permanent",
                )
        yield lambda *argv: run(ip, "netns", "exec", names[0], *argv)


def test_every_fragment_of_a_datagram_to_the_ports_and_none_of_the_others() -> None:
    with veth_pair() as in_sender:
        done = in_sender(sys.executable, "-c", FRAGMENTS_CHILD)
    found = json.loads(done.stdout)
    for name, linktype in (("veth", LINKTYPE_ETHERNET), ("any", LINKTYPE_LINUX_SLL)):
        seen = found[name]
        # Three fragments for each family, all leaving v0; none of the 5070 datagrams' later
        # fragments, which the kernel filter cannot tell from those of 5060.
        assert [p[:2] for p in seen["packets"]] == [[linktype, "v0"]] * 6, seen
        assert [m[1:] for m in seen["messages"]] == [
            ["192.0.2.2:5060", found["size"]],
            ["[2001:db8::2]:5060", found["size"]],
        ]
        assert [m[0].rpartition(":")[0] for m in seen["messages"]] == ["192.0.2.1", "[2001:db8::1]"]
        assert seen["problems"] == []
