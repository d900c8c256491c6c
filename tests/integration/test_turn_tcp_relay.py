"""`siptool turn-probe --peer-transport tcp` against real coturn: TCP relaying (RFC 6062).

coturn 4.6.1 relays TCP by default (``--no-tcp-relay`` turns it off; nothing is needed to
turn it on).  Over a TCP and a TLS control connection: Allocate with REQUESTED-TRANSPORT TCP,
Connect to siptool's own TCP peer and ConnectionBind on a second connection, then the peer
connecting to the relayed address, ConnectionAttempt and ConnectionBind: -n probes through
each data connection both ways.  Seen from coturn's side too (its log).  --peer-transport tcp
over UDP is a usage error (RFC 6062 §4.1); a server that does not relay TCP answers 442.
Everything stays on loopback: coturn relays to 127.0.0.1 only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.run import ENVELOPE, Env, siptool
from tests.support.turn_peers import TurnServer, start_turn_server

pytestmark = pytest.mark.peer

PASSWORD = "pw-tcp-relay-not-printed"
ENV: Env = {"SIPTOOL_PASSWORD": PASSWORD}
STATS = ("sent", "received", "loss_pct", "rtt_min_ms", "rtt_avg_ms", "rtt_max_ms", "jitter_ms")
DIRECTIONS = ("tcp", "tcp_passive")


@pytest.fixture(scope="module")
def turn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TurnServer]:
    server = start_turn_server(
        tmp_path_factory.mktemp("turn-tcp"), users={"alice": PASSWORD}, tls=True
    )
    try:
        yield server
    finally:
        server.stop()


def probe(turn: TurnServer, transport: str, *args: str) -> tuple[int, dict[str, Any], str]:
    ca = ("--ca-file", str(turn.ca)) if transport == "tls" else ()
    argv = ("--json", "--user", "alice", "--peer-transport", "tcp", *ca, *args)
    result = siptool("turn-probe", *argv, turn.uri(transport), env=ENV, timeout=30)
    assert PASSWORD not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.returncode, result.doc, result.stderr


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_tcp_relay_both_directions_over_tcp_and_tls(turn: TurnServer, transport: str) -> None:
    since = turn.mark()
    code, doc, _ = probe(turn, transport, "-n", "8", "--size", "300")
    assert code == 0, doc["errors"]
    for key in ENVELOPE:
        assert key in doc
    assert doc["peer_transport"] == "tcp" and doc["transport"] == transport
    tests = doc["relay_tests"]
    assert tests["indication"] is None and tests["channel"] is None
    for direction in DIRECTIONS:
        stats = tests[direction]
        for key in (*STATS, "connect_ms", "connection_id"):
            assert key in stats, (direction, key)
        assert (stats["sent"], stats["received"], stats["loss_pct"]) == (8, 8, 0.0), stats
        assert stats["peer_received"] == 8
        assert 0 < stats["rtt_min_ms"] <= stats["rtt_avg_ms"] <= stats["rtt_max_ms"] < 1000
        assert 0 < stats["connect_ms"] < 2000
        assert stats["peer"].startswith("127.0.0.1:")
    assert tests["tcp"]["connection_id"] != tests["tcp_passive"]["connection_id"]
    assert tests["tcp"]["peer"] == doc["peer"]  # Connect went to siptool's listening peer
    assert doc["relayed"][0].startswith("127.0.0.1:") and doc["deallocated"] is True
    # coturn's side: a TCP allocation, a Connect and two ConnectionBinds.
    turn.wait_for_log(r"incoming packet ALLOCATE processed, success", 5, since)
    turn.wait_for_log(r"incoming packet CONNECT processed, success", 5, since)
    turn.wait_for_log(r"incoming packet CONNECTION_BIND processed, success", 5, since)
    assert turn.count(r"CONNECTION_BIND processed, success", since) >= 2


def test_text_report_names_both_directions(turn: TurnServer) -> None:
    result = siptool(
        "turn-probe", "--user", "alice", "--peer-transport", "tcp", turn.uri("tcp"),
        env=ENV, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "tcp_passive" in result.stdout and "TCP relay works" in result.stdout


def test_tcp_peer_transport_over_udp_is_a_usage_error(turn: TurnServer) -> None:
    result = siptool(
        "turn-probe", "--user", "alice", "--peer-transport", "tcp", turn.uri("udp"), env=ENV
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "RFC 6062" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_peer_flag_does_not_go_with_tcp(turn: TurnServer) -> None:
    result = siptool(
        "turn-probe", "--peer-transport", "tcp", "--peer", "127.0.0.1:9", turn.uri("tcp"), env=ENV
    )
    assert result.returncode == 2 and "--peer" in result.stderr


def test_server_without_tcp_relay_is_unsupported_transport(tmp_path: Path) -> None:
    turn = start_turn_server(tmp_path, users={"alice": PASSWORD}, extra_args=("--no-tcp-relay",))
    try:
        code, doc, stderr = probe(turn, "tcp")
    finally:
        turn.stop()
    assert code == 1
    assert [e["code"] for e in doc["errors"]] == ["unsupported_transport"], doc["errors"]
    assert "442" in stderr and doc["relay_tests"]["tcp"] is None
