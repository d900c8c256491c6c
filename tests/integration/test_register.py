"""`siptool register` against Kamailio's in-memory registrar with digest authentication."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.support.kamailio import PASSWORD, Kamailio
from tests.support.run import siptool


def register(*args: str, password: str | None = PASSWORD) -> tuple[int, dict[str, Any], str]:
    """``siptool register --json ARGS`` with SIPTOOL_PASSWORD ``password`` (None: unset)."""
    result = siptool("register", "--json", *args, env={"SIPTOOL_PASSWORD": password})
    return result.returncode, result.doc, result.stderr


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_register_with_the_right_password(kamailio: Kamailio, transport: str) -> None:
    assert kamailio.ca is not None
    user = f"alice-{transport}"
    code, doc, _ = register(
        "--user",
        user,
        "--expires",
        "120",
        "--ca-file",
        str(kamailio.ca.ca_cert),
        kamailio.uri(transport),
    )
    assert code == 0, doc["errors"]
    assert doc["status"] == 200 and doc["ok"] is True
    assert doc["auth"] == {"scheme": "Digest", "algorithm": "MD5", "qop": "auth", "rounds": 1}
    assert doc["expires"] == 120 and doc["requested_expires"] == 120
    ours = [b for b in doc["bindings"] if b["ours"]]
    assert len(ours) == 1 and ours[0]["contact"].startswith(
        f"sip{'s' if transport == 'tls' else ''}:{user}@127.0.0.1:"
    )
    assert doc["nat"]["behind_nat"] is False
    assert "secret" not in json.dumps(doc)  # the password never reaches the output


def test_wrong_password_is_reported_as_wrong_credentials_not_a_loop(kamailio: Kamailio) -> None:
    code, doc, stderr = register("--user", "mallory", kamailio.uri(), password="not-the-password")
    assert code == 1
    assert doc["status"] == 401
    assert doc["errors"][0]["code"] == "wrong_credentials"
    assert doc["auth"]["rounds"] == 1
    assert "wrong credentials" in stderr


def test_no_password_at_all_says_credentials_are_needed(kamailio: Kamailio) -> None:
    code, doc, _ = register("--user", "bob", kamailio.uri(), password=None)
    assert code == 1 and doc["errors"][0]["code"] == "auth_required"


def test_password_file(kamailio: Kamailio, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    code, _, _ = register(
        "--user", "carol", "--password-file", str(secret), kamailio.uri(), password=None
    )
    assert code == 0


def test_query_lists_bindings_and_unregister_removes_ours(kamailio: Kamailio) -> None:
    uri = kamailio.uri("tcp")
    code, _first, _ = register("--user", "dave", "--contact", "sip:dave@192.0.2.10:5060", uri)
    assert code == 0
    code, _second, _ = register("--user", "dave", "--expires", "60", uri)
    assert code == 0
    code, query, _ = register("--user", "dave", "--query", uri)
    assert code == 0
    contacts = {b["contact"] for b in query["bindings"]}
    assert "sip:dave@192.0.2.10:5060" in contacts and len(contacts) == 2
    assert query["expires"] is None and query["requested_expires"] is None
    code, gone, _ = register(
        "--user", "dave", "--unregister", "--contact", "sip:dave@192.0.2.10:5060", uri
    )
    assert code == 0
    assert {b["contact"] for b in gone["bindings"]} == contacts - {"sip:dave@192.0.2.10:5060"}
    code, cleared, _ = register("--user", "dave", "--unregister-all", uri)
    assert code == 0 and cleared["bindings"] == []
    code, empty, _ = register("--user", "dave", "--query", uri)
    assert code == 0 and empty["bindings"] == []


def test_ipv6_registration(kamailio: Kamailio) -> None:
    code, doc, _ = register("--user", "erin", kamailio.uri("udp", v6=True))
    assert code == 0 and doc["resolved"]["address"].startswith("[::1]:")


def test_nagios_line(kamailio: Kamailio) -> None:
    result = siptool(
        "register",
        "--nagios",
        "--user",
        "frank",
        "-w",
        "5000",
        "-c",
        "9000",
        kamailio.uri(),
        env={"SIPTOOL_PASSWORD": PASSWORD},
    )
    assert result.returncode == 0
    assert result.stdout.startswith("SIP OK - 200 OK: sip:frank@127.0.0.1 for 300 s in ")
    assert ";5000;9000;0" in result.stdout


@pytest.mark.parametrize("mode", [[], ["--json"], ["--nagios"]])
@pytest.mark.parametrize("content", [None, b"\xff\xfe not UTF-8\n"], ids=["missing", "not-utf8"])
def test_unreadable_password_file_is_exit_3_with_one_line_and_nothing_sent(
    tmp_path: Path, mode: list[str], content: bytes | None
) -> None:
    secret = tmp_path / "password"
    if content is not None:
        secret.write_bytes(content)
    argv = ["register", *mode, "--user", "alice", "--password-file", str(secret)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as registrar:
        registrar.bind(("127.0.0.1", 0))
        port = registrar.getsockname()[1]
        result = siptool(*argv, f"sip:127.0.0.1:{port}", env={"SIPTOOL_PASSWORD": None})
        registrar.setblocking(False)
        with pytest.raises(BlockingIOError):
            registrar.recv(65535)  # siptool stopped before sending anything
    assert result.returncode == 3, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"siptool register: cannot read --password-file {secret}: ")
