"""`siptool ice-gather` against real coturn on loopback: host candidates from this host's
addresses, the STUN server's mapping, relayed candidates over UDP, TCP and TLS with long-term
and REST credentials, each allocation freed; servers that fail are named and the rest still
reported."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.run import siptool
from tests.support.turn_peers import USERS, TurnServer, start_turn_server

# RFC 8839 §5.1: foundation component transport priority address port typ type [raddr rport]
CANDIDATE = re.compile(
    r"a=candidate:\d+ 1 udp \d+ \S+ \d+ typ (host|srflx|relay)( raddr \S+ rport \d+)?\Z"
)


@pytest.fixture(scope="module")
def turn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TurnServer]:
    server = start_turn_server(tmp_path_factory.mktemp("ice-turn"), tls=True)
    try:
        yield server
    finally:
        server.stop()


def gather(*args: str, env: dict[str, str | None] | None = None) -> tuple[int, dict[str, Any], str]:
    run = siptool("ice-gather", "--json", "--loopback", "-4", *args, env=env)
    assert "Traceback" not in run.stderr
    return run.returncode, json.loads(run.stdout), run.stderr


def test_host_stun_and_relays_over_udp_tcp_and_tls(turn: TurnServer) -> None:
    assert turn.ca is not None
    code, doc, _ = gather(
        "--stun",
        f"stun:127.0.0.1:{turn.port}",
        "--turn",
        turn.uri("udp"),
        "--turn",
        turn.uri("tcp"),
        "--turn",
        turn.uri("tls"),
        "--ca-file",
        str(turn.ca),
        "--user",
        "alice",
        env={"SIPTOOL_PASSWORD": USERS["alice"]},
    )
    assert code == 0, doc["errors"]
    kinds = [c["type"] for c in doc["candidates"]]
    assert "host" in kinds and kinds.count("relay") == 3
    hosts = [c for c in doc["candidates"] if c["type"] == "host"]
    assert any(c["address"].startswith("127.0.0.1:") for c in hosts)
    relays = {c["relay_protocol"]: c for c in doc["candidates"] if c["type"] == "relay"}
    assert set(relays) == {"udp", "tcp", "tls"}
    # RFC 8445 §5.1.2: host above relay; relay over UDP above TCP above TLS.
    assert min(c["priority"] for c in hosts) > relays["udp"]["priority"]
    assert relays["udp"]["priority"] > relays["tcp"]["priority"] > relays["tls"]["priority"]
    for relay in relays.values():
        assert relay["address"].startswith("127.0.0.1:")
        assert relay["related"] is not None and relay["elapsed_ms"] > 0
    assert all(CANDIDATE.match(line) for line in doc["sdp"]), doc["sdp"]
    assert all(s["ok"] for s in doc["servers"])
    # On loopback the STUN server sees our own address: no NAT.
    assert doc["verdict"]["mapping"] == "none"
    assert doc["verdict"]["relays"] == {"tcp": True, "tls": True, "udp": True}
    assert USERS["alice"] not in json.dumps(doc)


def test_rest_credentials_from_a_secret_file(turn: TurnServer, tmp_path: Path) -> None:
    rest = start_turn_server(tmp_path, mode="rest-secret")
    try:
        secret = tmp_path / "secret"
        secret.write_text(rest.secret + "\n")
        code, doc, _ = gather("--turn", rest.uri("udp"), "--secret-file", str(secret))
    finally:
        rest.stop()
    assert code == 0, doc["errors"]
    assert [c["type"] for c in doc["candidates"]].count("relay") == 1


def test_a_failing_server_is_named_and_the_others_still_reported(turn: TurnServer) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        code, doc, stderr = gather(
            "--timeout",
            "1",
            "--stun",
            f"stun:127.0.0.1:{silent.getsockname()[1]}",
            "--turn",
            turn.uri("udp"),
            "--user",
            "alice",
            env={"SIPTOOL_PASSWORD": "not-the-password"},
        )
    finally:
        silent.close()
    assert code == 1
    by_kind = {s["kind"]: s for s in doc["servers"]}
    assert by_kind["stun"]["ok"] is False and "no answer" in by_kind["stun"]["error"]
    assert by_kind["turn"]["ok"] is False
    assert {e["code"] for e in doc["errors"]} >= {"timeout", "wrong_credentials"}
    assert any(c["type"] == "host" for c in doc["candidates"])  # still gathered
    assert "no working relay" in " ".join(doc["verdict"]["findings"])
    assert len(stderr.strip().splitlines()) >= 2


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((), "at least one --stun or --turn"),
        (("--stun", "stuns:127.0.0.1"), "asks STUN over UDP"),
        (("--turn", "turn:"), "bad --turn"),
        (("--turn", "turn:127.0.0.1", "--password-file", "/x"), "--password-file needs --user"),
    ],
)
def test_usage_errors_are_one_line(args: tuple[str, ...], words: str) -> None:
    run = siptool("ice-gather", *args)
    assert run.returncode == 2 and words in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
