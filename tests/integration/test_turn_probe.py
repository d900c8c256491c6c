"""`siptool turn-probe` against real coturn TURN servers on loopback (tests/support/turn_peers.py):
an allocation and data through the relay both ways by Send/Data indications and by
ChannelBind + ChannelData (RFC 8656 §11, §12) over UDP, TCP and TLS with long-term credentials
(RFC 8489 §9.2) and with the TURN REST secret; wrong and missing credentials, the user quota
(486), a refused peer (403), a silent port and a TLS certificate from another CA named as
errors; the allocation freed on coturn's side (its log, and a second allocation under quota 1),
also on Ctrl-C (exit 130); the --pcap-out file read by tshark; the password never printed.

coturn relays only to 127.0.0.1: nothing these tests send leaves loopback."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_pcap_out import TSHARK_AS_ROOT
from tests.support.kamailio import make_test_ca
from tests.support.peers import require_tool
from tests.support.responders import closed_udp_port, idle_udp_socket
from tests.support.run import ENVELOPE, Env, Run, siptool, spawn
from tests.support.servers import free_port
from tests.support.turn_peers import TurnServer, start_turn_server

pytestmark = pytest.mark.peer

PASSWORD = "pw-Tq9x-not-printed"
USERS = {"alice": PASSWORD}
ENV: Env = {"SIPTOOL_PASSWORD": PASSWORD}
KEYS = (
    "server", "transport", "relayed", "mapped", "lifetime_s", "allocate_ms", "software",
    "auth", "peer", "relay_tests", "refreshes", "deallocated",
)  # fmt: skip
STATS = ("sent", "received", "loss_pct", "rtt_min_ms", "rtt_avg_ms", "rtt_max_ms", "jitter_ms")
METHODS = ("indication", "channel")


def _serve(work: Path, **kw: Any) -> Iterator[TurnServer]:
    turn = start_turn_server(work, **kw)
    try:
        yield turn
    finally:
        turn.stop()


@pytest.fixture(scope="module")
def turn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TurnServer]:
    yield from _serve(tmp_path_factory.mktemp("turn"), users=USERS, tls=True, ipv6=True)


@pytest.fixture(scope="module")
def rest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TurnServer]:
    yield from _serve(tmp_path_factory.mktemp("turn-rest"), mode="rest-secret")


@pytest.fixture(scope="module")
def quota(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TurnServer]:
    yield from _serve(tmp_path_factory.mktemp("turn-quota"), users=USERS, user_quota=1)


def probe(*args: str, env: Env | None = ENV, timeout: float = 15) -> tuple[Run, dict[str, Any]]:
    result = siptool("turn-probe", "--json", *args, env=env, timeout=timeout)
    assert PASSWORD not in result.stdout + result.stderr
    return result, result.doc


def error_codes(doc: dict[str, Any]) -> list[str]:
    return [error["code"] for error in doc["errors"]]


def assert_relayed_both_ways(doc: dict[str, Any], count: int = 5) -> None:
    for key in (*ENVELOPE, *KEYS):
        assert key in doc, key
    for method in METHODS:
        stats = doc["relay_tests"][method]
        for key in STATS:
            assert key in stats, (method, key)
        assert (stats["sent"], stats["received"], stats["loss_pct"]) == (count, count, 0.0), stats
        assert 0 < stats["rtt_min_ms"] <= stats["rtt_avg_ms"] <= stats["rtt_max_ms"] < 1000


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_allocates_and_relays_both_methods_over_each_transport(
    turn: TurnServer, transport: str
) -> None:
    since = turn.mark()
    ca = ("--ca-file", str(turn.ca)) if transport == "tls" else ()
    result, doc = probe("--user", "alice", *ca, turn.uri(transport))
    assert result.returncode == 0, doc["errors"]
    assert doc["ok"] is True and doc["errors"] == []
    assert_relayed_both_ways(doc)
    assert doc["transport"] == transport
    (relayed,) = doc["relayed"]
    low, high = turn.relay_range
    assert relayed.startswith("127.0.0.1:") and low <= int(relayed.rsplit(":")[1]) <= high
    assert doc["mapped"].startswith("127.0.0.1:")  # loopback: no NAT
    assert doc["peer"].startswith("127.0.0.1:")
    assert doc["software"].startswith("Coturn-4.6.1")
    assert doc["lifetime_s"] > 0 and 0 < doc["allocate_ms"] < 2000
    auth = doc["auth"]
    assert (auth["mode"], auth["realm"], auth["rounds"]) == ("long-term", "siptool.test", 1)
    assert auth["algorithm"] in ("md5", "sha256")
    assert doc["deallocated"] is True
    # coturn's side: the allocation, the permission and the channel, then the session freed.
    turn.wait_for_log(r"user <alice>: incoming packet ALLOCATE processed, success", 5, since)
    turn.wait_for_log(r"CREATE_PERMISSION processed, success", 5, since)
    turn.wait_for_log(r"CHANNEL_BIND processed, success", 5, since)
    turn.closed_session(doc["mapped"], since=since)
    if transport == "tls":
        assert doc["tls_version"] in ("TLSv1.2", "TLSv1.3")


def test_password_file_and_count_size(turn: TurnServer, tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text(PASSWORD + "\n")
    args = ("--user", "alice", "--password-file", str(password), "-n", "12", "--size", "600")
    result, doc = probe(*args, "-i", "0.005", turn.address, env={"SIPTOOL_PASSWORD": None})
    assert result.returncode == 0, doc["errors"]
    assert_relayed_both_ways(doc, count=12)


def test_rest_secret_mode(rest: TurnServer, tmp_path: Path) -> None:
    assert rest.secret is not None
    secret = tmp_path / "secret"
    secret.write_text(rest.secret + "\n")
    since = rest.mark()
    result, doc = probe("--secret-file", str(secret), "--user", "bob", rest.uri(), env=None)
    assert result.returncode == 0, doc["errors"]
    assert_relayed_both_ways(doc)
    assert doc["auth"]["mode"] == "rest-secret"
    assert doc["deallocated"] is True
    rest.wait_for_log(r"user <\d+:bob>: incoming packet ALLOCATE processed, success", 5, since)
    assert rest.secret not in result.stdout + result.stderr


def test_rest_secret_that_is_wrong_is_wrong_credentials(rest: TurnServer, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("not-the-shared-secret\n")
    result, doc = probe("--secret-file", str(secret), rest.uri(), env=None)
    assert result.returncode == 1
    assert "wrong_credentials" in error_codes(doc)


def test_wrong_password_is_wrong_credentials(turn: TurnServer) -> None:
    result, doc = probe("--user", "alice", turn.uri(), env={"SIPTOOL_PASSWORD": "nope"})
    assert result.returncode == 1 and doc["ok"] is False
    assert "wrong_credentials" in error_codes(doc)
    assert doc["relayed"] in ([], None)
    assert result.seconds < 5


def test_no_credentials_is_auth_required(turn: TurnServer) -> None:
    result, doc = probe(turn.uri(), env={"SIPTOOL_PASSWORD": None})
    assert result.returncode == 1
    assert "auth_required" in error_codes(doc)


def test_a_peer_coturn_refuses_is_peer_refused(turn: TurnServer) -> None:
    # 127.0.0.2 is not in allowed-peer-ip: CreatePermission gets 403; no packet leaves lo.
    since = turn.mark()
    result, doc = probe("--user", "alice", "--peer", "127.0.0.2:9", turn.uri())
    assert result.returncode == 1
    assert "peer_refused" in error_codes(doc)
    assert "127.0.0.2" in " ".join(e["message"] for e in doc["errors"])
    assert doc["deallocated"] is True
    turn.wait_for_log(r"CREATE_PERMISSION processed, error 403", 5, since)


def test_a_silent_port_is_a_timeout_quickly() -> None:
    with idle_udp_socket() as silent:
        server = f"turn:127.0.0.1:{silent.getsockname()[1]}"
        result, doc = probe("--user", "alice", "--timeout", "1", server)
    assert result.returncode == 1
    assert "timeout" in error_codes(doc)
    assert result.seconds < 6


def test_a_closed_port_fails_at_once() -> None:
    # On loopback the kernel answers ICMP port unreachable: no need to wait for the timeout.
    server = f"turn:127.0.0.1:{closed_udp_port()}"
    result, doc = probe("--user", "alice", "--timeout", "3", server)
    assert result.returncode == 1
    assert error_codes(doc) in (["unreachable"], ["timeout"])
    assert result.seconds < 6


def test_tls_with_another_ca_is_a_tls_error(turn: TurnServer, tmp_path: Path) -> None:
    other = make_test_ca(tmp_path)
    result, doc = probe("--user", "alice", "--ca-file", str(other.ca_cert), turn.uri("tls"))
    assert result.returncode == 1
    assert "tls" in error_codes(doc)


def interrupted(process: subprocess.Popen[str]) -> int:
    """SIGINT ``process`` and wait (bounded); like every command (cli-contract: exit 130
    after cleaning up) it prints nothing on stdout and "interrupted" on stderr."""
    process.send_signal(signal.SIGINT)
    try:
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert "Traceback" not in stderr and PASSWORD not in stdout + stderr
    assert stdout == "" and stderr == "siptool turn-probe: interrupted\n", (stdout, stderr)
    return process.returncode


def hold(turn: TurnServer, local_port: int) -> subprocess.Popen[str]:
    """A turn-probe from 127.0.0.1:``local_port`` holding an allocation (-n 500: 20 s of
    data), started and waited for until coturn has allocated and permitted."""
    since = turn.mark()
    args = ("--user", "alice", "-n", "500", "--local-port", str(local_port), turn.uri())
    process = spawn("turn-probe", "--json", *args, env=ENV)
    try:
        turn.wait_for_log(r"CREATE_PERMISSION processed, success", 10, since)
    except BaseException:
        process.kill()
        process.communicate()
        raise
    return process


def test_quota_486_while_another_allocation_is_held(quota: TurnServer) -> None:
    since, port = quota.mark(), free_port("udp")
    holder = hold(quota, port)
    try:
        result, doc = probe("--user", "alice", quota.uri())
    finally:
        code = interrupted(holder)
    assert result.returncode == 1
    assert "quota" in error_codes(doc)
    assert "486" in " ".join(e["message"] for e in doc["errors"])
    assert code == 130
    quota.closed_session(f"127.0.0.1:{port}", since=since)


def test_ctrl_c_deallocates_and_exits_130(quota: TurnServer) -> None:
    since, port = quota.mark(), free_port("udp")
    assert interrupted(hold(quota, port)) == 130
    # Refresh(LIFETIME 0) from our port, then coturn closes and deletes that session.
    quota.wait_for_log(r"username=<alice>, lifetime=0", 5, since)
    quota.closed_session(f"127.0.0.1:{port}", since=since)
    result, doc = probe("--user", "alice", "-n", "1", quota.uri())  # the quota is free again
    assert result.returncode == 0, doc["errors"]
    quota.closed_session(doc["mapped"], since=since)


def test_after_deallocation_a_new_allocation_fits_the_quota_of_one(quota: TurnServer) -> None:
    # coturn frees the quota when it deletes the session, up to a second after Refresh(0).
    for _ in range(2):  # the second fits only if the first was freed
        since = quota.mark()
        result, doc = probe("--user", "alice", "-n", "2", quota.uri())
        assert result.returncode == 0, doc["errors"]
        assert doc["deallocated"] is True
        quota.closed_session(doc["mapped"], since=since)


def test_ipv6_relay_requested_address_family(turn: TurnServer) -> None:
    result, doc = probe("--user", "alice", "--ipv6-relay", turn.uri())
    assert result.returncode == 0, doc["errors"]
    (relayed,) = doc["relayed"]
    assert relayed.startswith("[::1]:")
    assert_relayed_both_ways(doc)


def test_dual_relay_gets_an_ipv4_and_an_ipv6_address(turn: TurnServer) -> None:
    result, doc = probe("--user", "alice", "--dual-relay", turn.uri())
    assert result.returncode == 0, doc["errors"]
    assert len(doc["relayed"]) == 2 and doc["relayed"][1].startswith("[::1]:"), doc["relayed"]


def test_no_free_relay_port_is_capacity_508(tmp_path: Path) -> None:
    for turn in _serve(tmp_path, users=USERS, relay_ports=1):
        holder = hold(turn, free_port("udp"))
        try:
            result, doc = probe("--user", "alice", turn.uri())
        finally:
            assert interrupted(holder) == 130
        assert result.returncode == 1
        assert "capacity" in error_codes(doc), doc["errors"]


def test_pcap_out_holds_the_turn_exchange(turn: TurnServer, tmp_path: Path) -> None:
    tshark = require_tool("tshark")
    pcap = tmp_path / "turn.pcapng"
    result, doc = probe("--user", "alice", "--pcap-out", str(pcap), turn.uri())
    assert result.returncode == 0, doc["errors"]
    decode = ("-d", f"udp.port=={turn.port},stun")
    fields = ("-T", "fields", "-e", "stun.type")
    read = subprocess.run(
        [tshark, "-n", "-r", str(pcap), *decode, "-Y", "stun", *fields],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert read.returncode == 0, read.stderr
    assert read.stderr.replace(TSHARK_AS_ROOT, "").strip() == "", read.stderr
    types = {int(t, 16) for t in read.stdout.split()}
    # RFC 8656 §18 methods in RFC 8489 message types: Allocate request/success, Refresh,
    # CreatePermission, ChannelBind, Send and Data indications.
    assert {0x0003, 0x0103, 0x0004, 0x0008, 0x0009, 0x0016, 0x0017} <= types, sorted(types)
    assert PASSWORD.encode() not in pcap.read_bytes()


def test_tls_keylog_lets_decode_and_tshark_read_the_turns_exchange(
    turn: TurnServer, tmp_path: Path
) -> None:
    tshark = require_tool("tshark")
    pcap, keys = tmp_path / "turns.pcapng", tmp_path / "keys.log"
    ca = ("--ca-file", str(turn.ca))
    args = ("--pcap-out", str(pcap), "--tls-keylog", str(keys), "-n", "2")
    result, doc = probe("--user", "alice", *ca, *args, turn.uri("tls"))
    assert result.returncode == 0, doc["errors"]
    assert "CLIENT_" in keys.read_text()
    # siptool's decode finds the STUN/TURN messages inside the TLS it recorded.
    read = siptool("decode", "--json", "--tls-keylog", str(keys), str(pcap))
    assert read.returncode == 0, read.stderr
    [session] = read.doc["summary"]["tls"]
    assert session["decrypted"] is True and session["version"] in ("TLS 1.2", "TLS 1.3")
    ours = [(m["transport"], m["stun"]["method"], m["stun"]["class"]) for m in read.doc["messages"]]
    assert {t for t, _, _ in ours} == {"tls"}
    assert ("tls", "allocate", "success_response") in ours
    # tshark, given the same key log, decrypts the same stream: it has no STUN dissector for
    # TLS payloads, so its plaintext (``-d tls.port==P,data``) is walked as RFC 8656 §12.5 and
    # RFC 8489 §6.2.2 frame it, and its transactions are siptool's.
    port = turn.tls_port
    argv = [tshark, "-n", "-r", str(pcap), "-o", f"tls.keylog_file:{keys}"]
    argv += ["-d", f"tcp.port=={port},tls", "-d", f"tls.port=={port},data"]
    argv += ["-Y", "tcp and data", "-T", "fields", "-e", "tcp.srcport", "-e", "data.data"]
    theirs = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert theirs.returncode == 0, theirs.stderr
    streams: dict[str, bytes] = {}
    for line in theirs.stdout.splitlines():
        sport, _, hexdata = line.partition("\t")
        for piece in hexdata.split(","):
            streams[sport] = streams.get(sport, b"") + bytes.fromhex(piece)
    ids = []
    for plain in streams.values():
        p = 0
        while p + 4 <= len(plain):
            length = int.from_bytes(plain[p + 2 : p + 4], "big")
            if plain[p] < 0x40:  # a STUN message
                ids.append(plain[p + 8 : p + 20].hex())
                p += 20 + length
            else:  # ChannelData, padded to 4 bytes over TCP
                p += 4 + length + (-length % 4)
    assert len(streams) == 2 and ids
    assert sorted(ids) == sorted(m["stun"]["transaction_id"] for m in read.doc["messages"])


def test_verbose_and_text_output_never_print_the_password(turn: TurnServer) -> None:
    for args in (("-v",), ()):
        result = siptool("turn-probe", "--user", "alice", *args, turn.uri(), env=ENV, timeout=15)
        assert result.returncode == 0, result.stderr
        assert PASSWORD not in result.stdout + result.stderr
