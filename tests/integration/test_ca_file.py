"""A --ca-file siptool cannot use is siptool's failure, not the server's: exit 3 (Nagios
UNKNOWN 3), one stderr line naming the file, and with --json the document still comes out
(ok false, exit_code 3, an error coded ca_file_error).  For every command that takes --ca-file:
options-ping, register, invite-test and stun-probe (nat-type has no TLS).

The TLS target is a closed loopback port: the CA file is loaded before any connection, so a
wrong CA file must win over the refused connection; a good CA file against the same port is
the server's failure (exit 1), which proves the two are told apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.kamailio import make_test_ca
from tests.support.run import Run, siptool
from tests.support.servers import free_port

COMMANDS = {
    "options-ping": ["options-ping"],
    "register": ["register", "--user", "alice"],
    "invite-test": ["invite-test"],
    "stun-probe": ["stun-probe"],
}


def _target(command: str, port: int) -> list[str]:
    if command == "stun-probe":
        return ["--transport", "tls", f"127.0.0.1:{port}"]
    return [f"sip:127.0.0.1:{port};transport=tls"]


def _run(command: str, ca_file: Path, *mode: str) -> Run:
    argv = [*COMMANDS[command], *mode, "--timeout", "2", "--ca-file", str(ca_file)]
    target = _target(command, free_port("tcp"))
    return siptool(*argv, *target, timeout=30, env={"SIPTOOL_PASSWORD": "secret"})


@pytest.fixture(params=["missing", "directory", "not-pem"])
def bad_ca(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    """A CA file siptool cannot use, and the reason it must give.  As root a chmod 000 file is
    still readable, so "unreadable" is a file ssl refuses: text that holds no certificate."""
    if request.param == "missing":
        return tmp_path / "no-such-ca.pem", "No such file or directory"
    if request.param == "directory":
        return tmp_path, "Is a directory"
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"this is not a certificate\n\x00\xff\n")
    return garbage, "not a PEM CA bundle"


@pytest.mark.parametrize("command", COMMANDS)
def test_bad_ca_file_is_exit_3_with_one_line_naming_it(
    command: str, bad_ca: tuple[Path, str]
) -> None:
    path, reason = bad_ca
    result = _run(command, path)
    assert result.returncode == 3, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"--ca-file {path}" in lines[0] and reason in lines[0], lines[0]
    # Nothing ran, so no empty table or call summary on stdout.
    assert result.stdout == "", result.stdout
    assert "tls to" not in result.stderr  # not presented as the server's failure


@pytest.mark.parametrize("command", COMMANDS)
def test_bad_ca_file_json_document_says_exit_3(command: str, bad_ca: tuple[Path, str]) -> None:
    path, reason = bad_ca
    result = _run(command, path, "--json")
    assert result.returncode == 3, result.stderr
    doc = result.doc
    assert doc["command"] == command
    assert doc["ok"] is False and doc["exit_code"] == 3
    codes = [e["code"] for e in doc["errors"]]
    assert codes == ["ca_file_error"], doc["errors"]
    assert str(path) in doc["errors"][0]["message"] and reason in doc["errors"][0]["message"]


@pytest.mark.parametrize("command", COMMANDS)
def test_bad_ca_file_is_nagios_unknown(command: str, bad_ca: tuple[Path, str]) -> None:
    path, _ = bad_ca
    result = _run(command, path, "--nagios")
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert str(path) in result.stdout, result.stdout
    # One status line, prefixed with the service as every other line of the command is.
    prefix = "STUN UNKNOWN - " if command == "stun-probe" else "SIP UNKNOWN - "
    assert result.stdout.startswith(prefix) and result.stdout.count("\n") == 1, result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_good_ca_file_and_a_closed_port_is_the_servers_failure(
    command: str, tmp_path: Path
) -> None:
    ca = make_test_ca(tmp_path)
    result = _run(command, ca.ca_cert, "--json")
    assert result.returncode == 1, result.stderr
    doc = result.doc
    assert all(e["code"] != "ca_file_error" for e in doc["errors"]), doc["errors"]
