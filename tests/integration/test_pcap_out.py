"""--pcap-out (siptool/net/pcap_tap.py) against tcpdump recording loopback beside it (issue 11).

Real peers: options-ping to Kamailio over UDP and TCP, IPv4 and IPv6, and over TLS; register
with its digest rounds; stun-probe to coturn (UDP and TCP) and stund.  For each run, ``siptool
decode --json`` of siptool's file and of tcpdump's gives the same messages in the same order
(method or status, Call-ID, CSeq, top Via branch, STUN class, method and transaction id, src,
dst, transport); for TLS the two files carry the same ciphertext byte for byte in each
direction.  tshark reads every file with exit 0 and nothing on stderr, and with checksum
validation on finds no bad IP, UDP or TCP checksum.  A --pcap-out path that cannot be written
is one line and exit 3.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from siptool.capture import RawMessage, iter_input
from tests.support.kamailio import PASSWORD, Kamailio
from tests.support.live_capture import tcpdump
from tests.support.peers import require_root, require_tool
from tests.support.run import siptool, siptool_json, spawn
from tests.support.servers import free_port
from tests.support.sipp import Sipp
from tests.support.stun_peers import StunPeer

pytestmark = pytest.mark.peer

TSHARK_AS_ROOT = 'Running as user "root" and group "root". This could be dangerous.'
CHECKSUMS = (
    *("-o", "ip.check_checksum:TRUE"),
    *("-o", "udp.check_checksum:TRUE"),
    *("-o", "tcp.check_checksum:TRUE"),
)
BAD = "ip.checksum.status==Bad || udp.checksum.status==Bad || tcp.checksum.status==Bad"


@pytest.fixture(autouse=True)
def _root() -> None:
    require_root()
    require_tool("tcpdump")
    require_tool("tshark")


def tshark(path: Path, *args: str, strict: bool = True) -> str:
    """tshark's output for ``path``; it must exit 0 and say nothing on stderr (unless not
    ``strict``: a file tcpdump is still writing may end in the middle of a packet)."""
    done = subprocess.run(
        [require_tool("tshark"), "-n", "-r", str(path), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if strict:
        assert done.returncode == 0, done.stderr
        assert done.stderr.replace(TSHARK_AS_ROOT, "").strip() == "", done.stderr
    return done.stdout


def assert_tshark_clean(path: Path) -> None:
    assert tshark(path).strip()  # it reads packets
    assert tshark(path, *CHECKSUMS, "-Y", BAD) == ""


def messages(path: Path) -> list[tuple[Any, ...]]:
    """What identifies each message ``siptool decode --json`` finds in ``path``."""
    code, doc = siptool_json("decode", str(path))
    assert code == 0, doc["errors"]
    found: list[tuple[Any, ...]] = []
    for m in doc["messages"]:
        where = (m["protocol"], m["src"], m["dst"], m["transport"])
        if m["protocol"] == "stun":
            stun = m["stun"]
            found.append((*where, stun["class"], stun["method"], stun["transaction_id"]))
        else:
            branch = m["via"][0]["branch"] if m["via"] else None
            cseq = (m["cseq"]["seq"], m["cseq"]["method"])
            found.append((*where, m["method"], m["status"], m["call_id"], cseq, branch))
    return found


def decoded(path: Path) -> int:
    data = path.read_bytes()  # the file exists before its header is written
    return sum(isinstance(m, RawMessage) for m in iter_input(data)) if data else 0


def same_message_count(ours: Path, theirs: Path) -> bool:
    return decoded(theirs) >= decoded(ours)


def recorded_beside_tcpdump(
    tmp_path: Path,
    ports: Sequence[int],
    command: str,
    *args: str,
    env: Any = None,
    settled: Callable[[Path, Path], bool] = same_message_count,
) -> tuple[Path, Path]:
    """Run ``siptool COMMAND --pcap-out FILE ARGS`` while tcpdump records ``lo``; the two
    files once tcpdump's has ``settled`` (by default: holds as many messages as siptool's),
    or after 10 s."""
    ours, theirs = tmp_path / "siptool.pcapng", tmp_path / "tcpdump.pcap"
    with tcpdump("lo", ports, theirs):
        result = siptool(command, "--pcap-out", str(ours), *args, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        deadline = time.monotonic() + 10
        while not settled(ours, theirs) and time.monotonic() < deadline:
            time.sleep(0.05)
    return ours, theirs


def assert_same_messages(ours: Path, theirs: Path, at_least: int) -> list[tuple[Any, ...]]:
    mine = messages(ours)
    assert len(mine) >= at_least
    assert mine == messages(theirs)
    assert_tshark_clean(ours)
    return mine


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_options_ping_file_holds_what_tcpdump_saw(
    kamailio: Kamailio, tmp_path: Path, transport: str, v6: bool
) -> None:
    port = kamailio.ports6[transport] if v6 else kamailio.udp
    uri = kamailio.uri(transport, v6=v6)
    ours, theirs = recorded_beside_tcpdump(
        tmp_path, [port], "options-ping", "-n", "3", "-i", "0.05", uri
    )
    found = assert_same_messages(ours, theirs, 6)
    assert [(m[4], m[5]) for m in found] == [("OPTIONS", None), (None, 200)] * 3
    assert {m[3] for m in found} == {transport}
    if transport == "tcp":
        flags = tshark(ours, "-T", "fields", "-e", "tcp.flags.str").split()
        assert flags[:3] == ["··········S·", "·······A··S·", "·······A····"]
        assert flags[-1] == "·······A···F"


def tcp_payloads(path: Path, port: int, strict: bool = True) -> tuple[bytes, bytes]:
    """The TCP payload bytes toward ``port`` and from it, in order."""
    fields = ("-T", "fields", "-e", "tcp.dstport", "-e", "tcp.payload")
    to_server, from_server = bytearray(), bytearray()
    for line in tshark(path, "-Y", "tcp.len > 0", *fields, strict=strict).splitlines():
        dport, payload = line.split("\t")
        (to_server if int(dport) == port else from_server).extend(bytes.fromhex(payload))
    return bytes(to_server), bytes(from_server)


def test_tls_is_recorded_as_the_ciphertext_on_the_wire(kamailio: Kamailio, tmp_path: Path) -> None:
    assert kamailio.tls is not None and kamailio.ca is not None
    port = kamailio.tls

    def same_bytes(ours: Path, theirs: Path) -> bool:
        return tcp_payloads(ours, port) == tcp_payloads(theirs, port, strict=False)

    ca = ("--ca-file", str(kamailio.ca.ca_cert))
    ours, theirs = recorded_beside_tcpdump(
        tmp_path, [port], "options-ping", *ca, "-n", "2", kamailio.uri("tls"), settled=same_bytes
    )
    sent, received = tcp_payloads(ours, port)
    assert tcp_payloads(theirs, port) == (sent, received)
    assert len(sent) > 500 and len(received) > 500
    assert b"OPTIONS sip" not in ours.read_bytes()  # ciphertext, never the SIP inside
    assert "Client Hello" in tshark(ours)
    assert_tshark_clean(ours)


def test_stun_over_tls_is_recorded_as_ciphertext(coturn: StunPeer, tmp_path: Path) -> None:
    assert coturn.tls_port is not None
    port = coturn.tls_port

    def same_bytes(ours: Path, theirs: Path) -> bool:
        return tcp_payloads(ours, port) == tcp_payloads(theirs, port, strict=False)

    args = ("-4", "--ca-file", coturn.extra["ca"], f"stuns:localhost:{port}")
    ours, theirs = recorded_beside_tcpdump(
        tmp_path, [port], "stun-probe", *args, settled=same_bytes
    )
    sent, received = tcp_payloads(ours, port)
    assert tcp_payloads(theirs, port) == (sent, received) and sent and received
    assert "Client Hello" in tshark(ours)
    assert_tshark_clean(ours)


def test_register_digest_rounds_match_tcpdump(kamailio: Kamailio, tmp_path: Path) -> None:
    args = ("--user", "pcap-alice", "--expires", "60", kamailio.uri("udp"))
    ours, theirs = recorded_beside_tcpdump(
        tmp_path, [kamailio.udp], "register", *args, env={"SIPTOOL_PASSWORD": PASSWORD}
    )
    found = assert_same_messages(ours, theirs, 4)
    assert [(m[4], m[5]) for m in found][:4] == [
        ("REGISTER", None),
        (None, 401),
        ("REGISTER", None),
        (None, 200),
    ]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_stun_probe_to_coturn_matches_tcpdump(
    coturn: StunPeer, tmp_path: Path, transport: str
) -> None:
    target = coturn.primary if transport == "udp" else f"stun:{coturn.primary}?transport=tcp"
    ours, theirs = recorded_beside_tcpdump(
        tmp_path, [coturn.port, coturn.alt_port], "stun-probe", target
    )
    found = assert_same_messages(ours, theirs, 2)
    assert {m[0] for m in found} == {"stun"} and {m[3] for m in found} == {transport}
    assert {m[4] for m in found} >= {"request", "success_response"}


def test_stun_probe_to_stund_matches_tcpdump(stund: StunPeer, tmp_path: Path) -> None:
    ours, theirs = recorded_beside_tcpdump(
        tmp_path, [stund.port, stund.alt_port], "stun-probe", stund.primary
    )
    assert_same_messages(ours, theirs, 2)


def udp_payloads(path: Path, port: int, strict: bool = True) -> tuple[list[str], list[str]]:
    """The UDP payloads (hex) toward ``port`` and from it, in order."""
    fields = ("-T", "fields", "-e", "udp.dstport", "-e", "udp.payload")
    to_port: list[str] = []
    from_port: list[str] = []
    for line in tshark(path, "-Y", f"udp.port == {port}", *fields, strict=strict).splitlines():
        dport, payload = line.split("\t")
        (to_port if int(dport) == port else from_port).append(payload)
    return to_port, from_port


def test_invite_test_rtp_matches_tcpdump(sipp: Callable[..., Sipp], tmp_path: Path) -> None:
    peer = sipp(rtp_echo=True)

    def settled(ours: Path, theirs: Path) -> bool:
        return same_message_count(ours, theirs) and udp_payloads(
            ours, peer.media_port
        ) == udp_payloads(theirs, peer.media_port, strict=False)

    ports = [peer.port, peer.media_port]
    args = ("--rtp", "--hold", "0.5", peer.uri())
    ours, theirs = recorded_beside_tcpdump(tmp_path, ports, "invite-test", *args, settled=settled)
    sent, echoed = udp_payloads(ours, peer.media_port)
    assert len(sent) >= 20 and len(echoed) >= 20
    assert (sent, echoed) == udp_payloads(theirs, peer.media_port)
    found = assert_same_messages(ours, theirs, 5)
    assert [m[4] for m in found if m[4]] == ["INVITE", "ACK", "BYE"]


def spawn_until_recorded(path: Path, count: int, *args: str) -> subprocess.Popen[str]:
    """``siptool ARGS --pcap-out path`` running, once ``path`` holds ``count`` messages."""
    process = spawn(*args, "--pcap-out", str(path))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and decoded(path) >= count:
            return process
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"{count} messages were not recorded: {process.communicate()}")


def process_port(path: Path, server: int) -> int:
    """Our end of the one TCP connection in ``path`` to port ``server``."""
    ports = {int(p) for p in tshark(path, "-T", "fields", "-e", "tcp.srcport").split()}
    (ours,) = ports - {server}
    return ours


def test_ctrl_c_leaves_a_whole_file_ending_in_our_fin(kamailio: Kamailio, tmp_path: Path) -> None:
    path = tmp_path / "interrupted.pcapng"
    ping = ("options-ping", "-n", "200", "-i", "0.05", kamailio.uri("tcp"))
    process = spawn_until_recorded(path, 4, *ping)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    last = tshark(path, "-T", "fields", "-e", "tcp.srcport", "-e", "tcp.flags.fin").split("\n")[-2]
    assert last == f"{process_port(path, kamailio.tcp)}\t1"  # the last packet is our FIN
    assert_tshark_clean(path)


def test_a_killed_run_leaves_a_readable_file(kamailio: Kamailio, tmp_path: Path) -> None:
    path = tmp_path / "killed.pcapng"
    ping = ("options-ping", "-n", "200", "-i", "0.05", kamailio.uri("udp"))
    process = spawn_until_recorded(path, 4, *ping)
    process.kill()
    process.communicate(timeout=10)
    assert_tshark_clean(path)
    code, doc = siptool_json("decode", str(path))
    assert code == 0 and not doc["errors"] and len(doc["messages"]) >= 4


def test_an_unwritable_path_is_one_line_and_exit_3(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-directory" / "out.pcapng"
    result = siptool("options-ping", "--pcap-out", str(missing), f"127.0.0.1:{free_port()}")
    assert result.returncode == 3
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert str(missing) in lines[0] and "No such file or directory" in lines[0]
    assert not missing.parent.exists()
