"""`siptool options-ping` against a real Kamailio, a closed port, a silent port, DNS (dnsmasq)
and side by side with sipsak."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.dns import dnsmasq, srv_zone
from tests.support.hostile_sip import HostileUas, hostile_peer, response
from tests.support.kamailio import Kamailio
from tests.support.peers import require_tool
from tests.support.responders import idle_udp_socket
from tests.support.run import ENVELOPE, siptool, siptool_json, siptool_on_a_busy_port
from tests.support.servers import free_port


def ping_json(*args: str) -> tuple[int, dict[str, Any]]:
    return siptool_json("options-ping", *args)


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_ping_alive_over_each_transport(kamailio: Kamailio, transport: str) -> None:
    assert kamailio.ca is not None
    code, doc = ping_json("--ca-file", str(kamailio.ca.ca_cert), kamailio.uri(transport))
    assert code == 0, doc["errors"]
    for key in ENVELOPE:
        assert key in doc
    target = doc["targets"][0]
    assert target["resolved"]["transport"] == transport
    assert target["replies"][0]["status"] == 200
    assert target["replies"][0]["rtt_ms"] > 0
    assert target["server"]["user_agent"] == "kamailio-siptool-testbed"
    assert target["stats"]["sent"] == target["stats"]["received"] == 1
    # Loopback: what Kamailio saw (Via received/rport) is our own socket.
    nat = target["nat"]
    assert nat["local"] == nat["reflexive"] and nat["behind_nat"] is False


def test_ping_ipv6_loopback(kamailio: Kamailio) -> None:
    code, doc = ping_json(kamailio.uri("udp", v6=True))
    assert code == 0
    assert doc["targets"][0]["resolved"]["address"] == f"[::1]:{kamailio.ports6['udp']}"
    assert doc["targets"][0]["nat"]["local"].startswith("[::1]:")


def test_count_streams_one_jsonl_line_per_reply(kamailio: Kamailio) -> None:
    result = siptool("options-ping", "--jsonl", "-n", "3", "-i", "0.05", kamailio.uri("udp"))
    lines = result.lines
    assert result.returncode == 0
    assert [(x["seq"], x["status"]) for x in lines[:-1]] == [(1, 200), (2, 200), (3, 200)]
    stats = lines[-1]["targets"][0]["stats"]
    assert stats["sent"] == 3 and stats["received"] == 3 and stats["loss_pct"] == 0.0
    assert stats["rtt_min_ms"] <= stats["rtt_avg_ms"] <= stats["rtt_max_ms"]


def test_many_targets_one_row_each_and_a_dead_one_fails_the_run(kamailio: Kamailio) -> None:
    dead = free_port("udp")
    code, doc = ping_json(
        "--timeout", "1", kamailio.uri("udp"), kamailio.uri("tcp"), f"127.0.0.1:{dead}"
    )
    assert code == 1
    alive = {t["target"]: t["alive"] for t in doc["targets"]}
    assert alive == {
        kamailio.uri("udp"): True,
        kamailio.uri("tcp"): True,
        f"sip:127.0.0.1:{dead}": False,
    }


def test_targets_from_a_file(kamailio: Kamailio, tmp_path: Path) -> None:
    listing = tmp_path / "targets.txt"
    listing.write_text(f"# fleet\n{kamailio.uri('udp')}\n\n{kamailio.uri('tcp')}  # tcp too\n")
    code, doc = ping_json("-f", str(listing))
    assert code == 0 and len(doc["targets"]) == 2


def test_closed_udp_port_fails_on_icmp_not_on_timeout() -> None:
    port = free_port("udp")
    code, doc = ping_json("--timeout", "30", f"127.0.0.1:{port}")
    assert code == 1
    reply = doc["targets"][0]["replies"][0]
    assert reply["status"] is None and "connection refused" in reply["error"]


def test_closed_tcp_port_is_connection_refused() -> None:
    port = free_port("tcp")
    code, doc = ping_json("--transport", "tcp", f"127.0.0.1:{port}")
    assert code == 1
    assert "Connection refused" in doc["errors"][0]["message"]


def test_silent_peer_fails_with_no_answer_at_the_timeout() -> None:
    with idle_udp_socket() as silent:
        port = silent.getsockname()[1]
        code, doc = ping_json("--timeout", "0.8", f"127.0.0.1:{port}")
        received = []
        silent.setblocking(False)
        try:
            while True:
                received.append(silent.recv(65535))
        except BlockingIOError:
            pass
    assert code == 1
    assert doc["targets"][0]["replies"][0]["error"] == "no answer before the timeout"
    # T1 = 0.5 s: the request and one retransmission reached the silent peer (RFC 3261 §17.1.2.2).
    assert len(received) == 2 and received[0] == received[1]


def test_tls_untrusted_certificate_fails_clearly_without_ca_file(kamailio: Kamailio) -> None:
    result = siptool("options-ping", kamailio.uri("tls"))
    assert result.returncode == 1
    assert "certificate verification failed" in result.stderr


def test_tls_insecure_skips_verification(kamailio: Kamailio) -> None:
    code, _ = ping_json("--insecure", kamailio.uri("tls"))
    assert code == 0


def test_expect_turns_an_unwanted_final_into_a_failure(kamailio: Kamailio) -> None:
    code, doc = ping_json("--expect", "404", kamailio.uri("udp"))
    assert code == 1
    assert doc["targets"][0]["errors"][0]["code"] == "unexpected_status"


def test_nagios_status_line_and_thresholds(kamailio: Kamailio) -> None:
    ok = siptool(
        "options-ping", "--nagios", "-w", "1000", "--critical", "2000", kamailio.uri("udp")
    )
    assert ok.returncode == 0
    assert re.match(
        r"SIP OK - 200 OK from sip:127\.0\.0\.1:\d+ in [\d.]+ ms \| rtt=[\d.]+ms;1000;2000;0 "
        r"loss=0%;20;60;0;100$",
        ok.stdout.strip(),
    ), ok.stdout
    critical = siptool("options-ping", "--nagios", "--critical", "0.0001", kamailio.uri("udp"))
    assert critical.returncode == 2 and critical.stdout.startswith("SIP CRITICAL - ")
    down = siptool("options-ping", "--nagios", f"127.0.0.1:{free_port('udp')}")
    assert down.returncode == 2


def test_bad_target_is_a_usage_error() -> None:
    result = siptool("options-ping", "sip:[bad")
    assert result.returncode == 2 and "bad target" in result.stderr


def test_busy_local_port_cannot_run(kamailio: Kamailio) -> None:
    result = siptool_on_a_busy_port("options-ping", kamailio.uri())
    assert result.returncode == 3 and "cannot bind" in result.stderr


@pytest.fixture(scope="module")
def dns(kamailio: Kamailio, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """dnsmasq with SRV records for the Kamailio: primary on a dead port, backup on Kamailio."""
    zone = srv_zone("pbx.test", [("dead", free_port("udp")), ("live", kamailio.udp)])
    with dnsmasq(tmp_path_factory.mktemp("dns"), zone, "live.pbx.test") as address:
        yield address


def test_resolve_only_prints_the_rfc3263_path(dns: str, kamailio: Kamailio) -> None:
    result = siptool("options-ping", "--resolve-only", "--dns-server", dns, "sip:pbx.test")
    assert result.returncode == 0
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert "NAPTR pbx.test: none" in lines
    assert any(line.startswith("SRV _sip._udp.pbx.test -> 10 0") for line in lines)
    assert lines[-1].startswith(f"-> 2. UDP 127.0.0.1:{kamailio.udp}")


def test_srv_failover_reaches_the_backup(dns: str, kamailio: Kamailio) -> None:
    code, doc = ping_json("--dns-server", dns, "--timeout", "2", "sip:pbx.test")
    assert code == 0, doc["errors"]
    target = doc["targets"][0]
    assert target["resolved"]["address"] == f"127.0.0.1:{kamailio.udp}"
    assert target["replies"] == [target["replies"][0]] and target["replies"][0]["status"] == 200
    # The dead primary is named in the errors even though the check passed.
    assert any("connection refused" in e["message"] for e in target["errors"])


def test_same_answer_as_sipsak(kamailio: Kamailio) -> None:
    sipsak = require_tool("sipsak", "sipsak")
    theirs = subprocess.run(
        [sipsak, "-vv", "-s", f"sip:ping@127.0.0.1:{kamailio.udp}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    match = re.search(r"reply received after ([\d.]+) ms \*\*\s+SIP/2.0 (\d{3})", theirs.stdout)
    assert theirs.returncode == 0 and match, theirs.stdout[-500:]
    code, doc = ping_json(f"sip:ping@127.0.0.1:{kamailio.udp}")
    ours = doc["targets"][0]["replies"][0]
    assert code == 0 and ours["status"] == int(match.group(2)) == 200
    print(f"RTT sipsak {match.group(1)} ms, siptool {ours['rtt_ms']} ms")


def test_forged_and_garbage_replies_are_ignored_and_counted() -> None:
    """A peer that first answers with a forged branch and garbage, then correctly: the forged
    200 must not be taken for the answer (RFC 3261 §17.1.3), the garbage must not crash."""

    def forged_then_right(request: bytes, _: HostileUas) -> list[tuple[float, bytes]]:
        if len(peer.received) > 1:  # answer the first request only
            return []
        forged = request.replace(b"branch=", b"branch=z9hG4bKforged", 1)
        server = ["Server: hostile-test-peer"]
        return [
            (0.0, response(forged, 200, "Forged", server)),
            (0.0, b"\x00\xffnot sip at all\r\n\r\n"),
            (0.0, response(request, 200, "OK", server)),
        ]

    with hostile_peer(forged_then_right) as peer:
        code, doc = ping_json("--timeout", "5", f"127.0.0.1:{peer.port}")
    assert code == 0, doc["errors"]
    target = doc["targets"][0]
    assert target["replies"][0]["status"] == 200 and target["replies"][0]["reason"] == "OK"
    assert target["strays"] == 1
