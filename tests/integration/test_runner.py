"""The one runner, seen from outside: every command is interrupted, refuses ping habits and
prints its JSON the same way (shared/cli-contract.md, "Exit codes" and "JSON").

The silent peers are plain loopback UDP sockets that read and never answer: the test waits
until siptool's first datagram arrives (the command is then waiting on the network, past
click and the imports), sends SIGINT, and expects exit 130 with no traceback."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.support.paths import ROOT
from tests.support.run import siptool, spawn


@pytest.fixture
def silent_udp() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(20)
    yield sock
    sock.close()


def _closed_udp_port() -> int:
    """A loopback UDP port nobody listens on (ICMP port unreachable answers at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


NETWORK_COMMANDS = {
    "options-ping": lambda peer: ["options-ping", "--timeout", "30", f"sip:{peer}"],
    "register": lambda peer: ["register", "--user", "alice", "--timeout", "30", f"sip:{peer}"],
    "invite-test": lambda peer: ["invite-test", "--timeout", "30", f"sip:bob@{peer}"],
    "stun-probe": lambda peer: ["stun-probe", "--timeout", "30", peer],
    "nat-type": lambda peer: ["nat-type", "--timeout", "30", peer],
}


@pytest.mark.parametrize("command", sorted(NETWORK_COMMANDS))
def test_ctrl_c_while_waiting_on_a_silent_peer_exits_130_without_a_traceback(
    command: str, silent_udp: socket.socket
) -> None:
    host, port = silent_udp.getsockname()
    args = NETWORK_COMMANDS[command](f"{host}:{port}")
    process = spawn(*args, env={"SIPTOOL_PASSWORD": "secret"})
    try:
        first, _ = silent_udp.recvfrom(65535)  # the command is now waiting for an answer
        assert first, "siptool sent an empty datagram"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, (out, err)
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"siptool {command}: interrupted"


@pytest.mark.parametrize("command", ["options-ping", "stun-probe", "register", "invite-test"])
def test_dash_c_without_nagios_is_a_usage_error_naming_dash_n(command: str) -> None:
    target = "127.0.0.1:9" if command == "stun-probe" else "sip:127.0.0.1:9"
    result = siptool(command, "-c", "500", target)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"siptool {command}: -c/--critical")
    assert "-n/--count" in lines[0] and "--nagios" in lines[0]


def test_dash_n_is_the_count_and_dash_c_the_critical_threshold_with_nagios() -> None:
    port = _closed_udp_port()
    result = siptool(
        "options-ping", "--nagios", "-n", "2", "-i", "0", "-w", "100", "-c", "500",
        f"sip:127.0.0.1:{port}",
    )  # fmt: skip
    assert result.returncode == 2  # CRITICAL: the port is closed
    assert result.stdout.startswith("SIP CRITICAL - ")
    assert "rtt=U;100;500;0" in result.stdout
    doc = siptool("options-ping", "--json", "-n", "2", "-i", "0", f"sip:127.0.0.1:{port}").doc
    assert doc["targets"][0]["stats"]["sent"] == 2  # -n 2: two OPTIONS, not 500


def test_json_and_jsonl_together_are_one_usage_line() -> None:
    result = siptool("options-ping", "--json", "--jsonl", "sip:127.0.0.1:9")
    assert result.returncode == 2
    assert result.stderr == "siptool options-ping: --json and --jsonl are exclusive\n"


def test_a_bad_flag_is_one_line_and_exit_2() -> None:
    result = siptool("stun-probe", "--no-such-flag")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("siptool stun-probe: ")
    assert "--no-such-flag" in lines[0]


def _json_commands() -> dict[str, list[str]]:
    port = _closed_udp_port()
    return {
        "options-ping": ["options-ping", "--timeout", "2", f"sip:127.0.0.1:{port}"],
        "register": ["register", "--user", "alice", "--timeout", "2", f"sip:127.0.0.1:{port}"],
        "invite-test": ["invite-test", "--timeout", "2", f"sip:bob@127.0.0.1:{port}"],
        "stun-probe": ["stun-probe", "--timeout", "2", f"127.0.0.1:{port}"],
        "nat-type": ["nat-type", "--timeout", "2", f"127.0.0.1:{port}"],
        "decode": ["decode", str(ROOT / "examples" / "invite.txt")],
    }


@pytest.mark.parametrize("command", sorted(_json_commands()))
def test_json_is_one_line_when_piped_in_every_command(command: str) -> None:
    args = _json_commands()[command]
    result = siptool(*args[:1], "--json", *args[1:])
    assert result.stdout.endswith("\n") and result.stdout.count("\n") == 1, result.stdout
    doc = json.loads(result.stdout)
    assert doc["command"] == command
    assert doc["exit_code"] == result.returncode
    assert set(doc) >= {"command", "ok", "exit_code", "siptool_version", "errors"}


def test_the_runner_is_used_by_python_dash_m_too() -> None:
    # The console script and `python -m siptool` are the same entry point.
    done = subprocess.run(
        [sys.executable, "-m", "siptool", "options-ping"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == "siptool options-ping: no TARGET given (arguments or -f FILE)\n"
