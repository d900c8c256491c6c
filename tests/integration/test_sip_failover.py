"""RFC 3263 §4.3 failover in register and invite-test: the first SRV target never answers
(a UDP socket that reads nothing), the second is the real server; dnsmasq serves the SRV."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.dns import start_dnsmasq
from tests.kamailio import PASSWORD, Kamailio


@pytest.fixture
def silent() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def run(*args: str) -> tuple[int, dict[str, Any]]:
    env = dict(os.environ, SIPTOOL_PASSWORD=PASSWORD)
    result = subprocess.run(
        [sys.executable, "-m", "siptool", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def srv_zone(silent_port: int, live_port: int) -> list[str]:
    return [
        f"--srv-host=_sip._udp.voip.test,silent.voip.test,{silent_port},10,0",
        f"--srv-host=_sip._udp.voip.test,live.voip.test,{live_port},20,0",
        "--host-record=silent.voip.test,127.0.0.1",
        "--host-record=live.voip.test,127.0.0.1",
    ]


def test_register_fails_over_to_the_second_srv_target(
    kamailio: Kamailio, silent: int, tmp_path: Any
) -> None:
    server, dns = start_dnsmasq(tmp_path, srv_zone(silent, kamailio.udp), "live.voip.test")
    try:
        code, doc = run(
            "register",
            "--json",
            "--timeout",
            "1",
            "--dns-server",
            dns,
            "--user",
            "gina",
            "sip:voip.test",
        )
    finally:
        server.stop()
    assert code == 0, doc["errors"]
    assert doc["resolved"]["address"] == f"127.0.0.1:{kamailio.udp}"
    assert doc["status"] == 200 and doc["expires"] == 300
    assert doc["errors"][0]["code"] == "timeout"
    assert doc["errors"][0]["message"].startswith(f"127.0.0.1:{silent}: ")


def test_invite_test_fails_over_to_the_second_srv_target(
    sipp: Any,
    silent: int,
    tmp_path: Any,
) -> None:
    peer = sipp()
    server, dns = start_dnsmasq(tmp_path, srv_zone(silent, peer.port), "live.voip.test")
    try:
        code, doc = run(
            "invite-test",
            "--json",
            "--timeout",
            "1",
            "--hold",
            "0.2",
            "--dns-server",
            dns,
            "sip:service@voip.test",
        )
    finally:
        server.stop()
    assert code == 0, doc["errors"]
    assert doc["answered"] is True and doc["bye_status"] == 200
    assert doc["errors"][0]["code"] == "timeout"
    assert doc["errors"][0]["message"].startswith(f"127.0.0.1:{silent}: ")
