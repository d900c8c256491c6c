"""`siptool send` and `siptool message` against real peers: SIPp UASes (which check the headers
siptool must have sent), Kamailio as registrar, digest challenger and MESSAGE router, and two
siptools talking through it; `--proxy` reaching a SIPp UAS through Kamailio although the
Request-URI names another host."""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Callable

import pytest

from tests.support.kamailio import PASSWORD, Kamailio
from tests.support.run import siptool, spawn
from tests.support.sipp import Sipp

CHECKED = ("-H", "X-Siptool-Test: checked", "--user-agent", "probe/1")


def _user(prefix: str) -> str:
    """A user name of its own per test: the session's Kamailio keeps every binding."""
    return f"{prefix}-{secrets.token_hex(3)}"


@pytest.mark.parametrize(
    "method",
    ["OPTIONS", "INFO", "MESSAGE", "NOTIFY", "SUBSCRIBE", "PUBLISH", "REFER", "UPDATE", "BYE"],
)
def test_send_any_method_is_answered_by_sipp_with_the_headers_it_was_given(
    sipp: Callable[..., Sipp], method: str
) -> None:
    uas = sipp("any-request-checked.xml")
    run = siptool("send", method.lower(), uas.uri(), *CHECKED, "--json")
    assert run.returncode == 0, run.stderr
    doc = run.doc
    assert doc["method"] == method and doc["final_status"] == 200
    [txn] = doc["transactions"]
    assert txn["method"] == method and txn["cseq"] == 1 and txn["status"] == 200
    assert txn["rtt_ms"] is not None and txn["rtt_ms"] >= 0
    assert ["Server", "sipp-any-request"] in txn["responses"][-1]["headers"]
    # SIPp exits 0 only when the request carried -H's header and --user-agent's value.
    assert uas.finished() == 0


def test_an_extension_method_goes_as_typed_over_tcp(sipp: Callable[..., Sipp]) -> None:
    uas = sipp("any-request-checked.xml", transport="tcp")
    run = siptool("send", "PING", uas.uri(), *CHECKED, "--json")
    assert run.returncode == 0, run.stderr
    assert run.doc["transactions"][0]["method"] == "PING"
    assert run.doc["resolved"]["transport"] == "tcp"
    assert uas.finished() == 0


def test_send_answers_the_digest_challenge_and_never_prints_the_password(
    kamailio: Kamailio,
) -> None:
    user = _user("sender")
    run = siptool(
        "send",
        "REGISTER",
        kamailio.uri(),
        "--user",
        user,
        "-H",
        f"Contact: <sip:{user}@192.0.2.10:5060>",
        "-H",
        "Expires: 30",
        "--json",
        env={"SIPTOOL_PASSWORD": PASSWORD},
    )
    assert run.returncode == 0, run.stderr
    doc = run.doc
    assert [t["status"] for t in doc["transactions"]] == [401, 200]
    assert [t["cseq"] for t in doc["transactions"]] == [1, 2]  # §22.2: a new CSeq
    assert doc["auth"]["rounds"] == 1 and doc["auth"]["scheme"] == "Digest"
    assert PASSWORD not in run.stdout + run.stderr


def test_a_wrong_password_is_wrong_credentials_not_a_loop(kamailio: Kamailio) -> None:
    run = siptool(
        "send",
        "REGISTER",
        kamailio.uri(),
        "--user",
        _user("mallory"),
        "--json",
        env={"SIPTOOL_PASSWORD": "not-the-password"},
    )
    assert run.returncode == 1
    assert run.doc["errors"][-1]["code"] == "wrong_credentials"
    assert [t["status"] for t in run.doc["transactions"]] == [401, 401]


def test_expect_decides_which_final_passes(kamailio: Kamailio) -> None:
    nobody = kamailio.uri(user=_user("nobody"))
    plain = siptool("send", "INFO", nobody)
    assert plain.returncode == 1
    assert "404 Not Found, not a 2xx" in plain.stderr
    wanted = siptool("send", "INFO", nobody, "--expect", "404", "--json")
    assert wanted.returncode == 0 and wanted.doc["final_status"] == 404


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("INVITE", "sip:a@127.0.0.1:9"), "use siptool invite-test"),
        (("ACK", "sip:a@127.0.0.1:9"), "INVITE transaction"),
        (("BAD METHOD", "sip:a@127.0.0.1:9"), "not a SIP method"),
        (("INFO", "sip:a@127.0.0.1:9", "-H", "Via: SIP/2.0/UDP x"), "siptool sets Via itself"),
        (("INFO", "sip:a@127.0.0.1:9", "--content-type", "text/plain"), "needs --body"),
        (("INFO", "sip:a@127.0.0.1:9", "--from", "<sip:a@b>;tag=x"), "chooses the tag"),
    ],
)
def test_send_usage_errors_are_one_line_and_exit_2(args: tuple[str, ...], words: str) -> None:
    run = siptool("send", *args)
    assert run.returncode == 2
    assert words in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert "Traceback" not in run.stderr


def test_an_unreadable_body_file_cannot_run_the_check(tmp_path: object) -> None:
    run = siptool("send", "INFO", "sip:a@127.0.0.1:9", "--body", "/nonexistent/body.txt")
    assert run.returncode == 3 and "cannot read --body" in run.stderr


def _listen(kamailio: Kamailio, user: str, transport: str, *extra: str) -> subprocess.Popen[str]:
    """A siptool listening for MESSAGEs to ``user``, registered at the session's Kamailio."""
    listener = spawn(
        "message",
        "--listen",
        "--user",
        user,
        kamailio.uri(transport),
        "--json",
        *extra,
        env={"SIPTOOL_PASSWORD": PASSWORD},
    )
    # Ready once Kamailio holds its binding: a query lists it.
    for _ in range(100):
        query = siptool(
            "register",
            "--query",
            "--user",
            user,
            kamailio.uri(),
            "--json",
            env={"SIPTOOL_PASSWORD": PASSWORD},
        )
        if query.returncode == 0 and query.doc["bindings"]:
            return listener
        if listener.poll() is not None:
            break
    listener.kill()
    raise AssertionError(f"the listener never registered: {listener.communicate()}")


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_message_from_one_siptool_reaches_another_through_kamailio(
    kamailio: Kamailio, transport: str
) -> None:
    bob = _user("bob")
    listener = _listen(kamailio, bob, transport, "--timeout", "20", "-n", "2")
    try:
        first = siptool(
            "message", kamailio.uri(transport, bob), "--user", "alice", "--text", "héllo"
        )
        assert first.returncode == 0, first.stderr
        second = siptool(
            "send",
            "MESSAGE",
            kamailio.uri(transport, bob),
            "--body",
            "-",
            "--content-type",
            "application/json",
            input=b'{"n": 2}',
        )
        assert second.returncode == 0, second.stderr
        out, err = listener.communicate(timeout=30)
    finally:
        listener.kill()
    assert listener.returncode == 0, err
    doc = json.loads(out)
    got = doc["received"]
    assert [m["body"] for m in got] == ["héllo", '{"n": 2}']
    assert got[0]["content_type"].lower().startswith("text/plain")
    assert got[1]["content_type"] == "application/json"
    assert got[0]["to"].startswith(f"sip:{bob}@")
    assert doc["registered"] is True and doc["unregistered"] is True
    # The binding is gone once the listener ended.
    query = siptool(
        "register",
        "--query",
        "--user",
        bob,
        kamailio.uri(),
        "--json",
        env={"SIPTOOL_PASSWORD": PASSWORD},
    )
    assert query.doc["bindings"] == []


def test_a_listener_that_gets_nothing_fails_at_its_timeout_and_unregisters(
    kamailio: Kamailio,
) -> None:
    run = siptool(
        "message",
        "--listen",
        "--user",
        _user("lonely"),
        kamailio.uri(),
        "--timeout",
        "1",
        "--json",
        env={"SIPTOOL_PASSWORD": PASSWORD},
    )
    assert run.returncode == 1
    assert run.doc["errors"][-1]["code"] == "timeout"
    assert run.doc["unregistered"] is True and run.doc["received"] == []


def test_a_message_to_nobody_is_named(kamailio: Kamailio) -> None:
    run = siptool("message", kamailio.uri(user=_user("nobody")), "--text", "hi", "--json")
    assert run.returncode == 1
    assert run.doc["final_status"] == 404
    assert "no such user" in run.doc["errors"][-1]["message"]


def test_message_refuses_text_and_body_together() -> None:
    run = siptool("message", "sip:a@127.0.0.1:9", "--text", "x", "--body", "-")
    assert run.returncode == 2 and "one of them" in run.stderr


@pytest.mark.parametrize("command", ["send", "invite-test"])
def test_proxy_reaches_a_sipp_uas_through_kamailio_for_another_host(
    kamailio: Kamailio, sipp: Callable[..., Sipp], command: str
) -> None:
    """The Request-URI names carrier.example (which resolves nowhere); --proxy sends it to
    Kamailio, which finds the user's binding and relays it to the SIPp UAS."""
    scenario = "any-request-checked.xml" if command == "send" else None
    uas = sipp(scenario)
    user = _user("callee")
    registered = siptool(
        "register",
        "--user",
        user,
        "--contact",
        uas.uri(user),
        "--expires",
        "60",
        kamailio.uri(),
        env={"SIPTOOL_PASSWORD": PASSWORD},
    )
    assert registered.returncode == 0, registered.stderr
    target = f"sip:{user}@carrier.example"
    if command == "send":
        run = siptool("send", "INFO", target, "--proxy", kamailio.uri(), *CHECKED, "--json")
    else:
        run = siptool("invite-test", target, "--proxy", kamailio.uri(), "--json")
    assert run.returncode == 0, run.stderr
    assert run.doc["resolved"]["address"] == f"127.0.0.1:{kamailio.udp}"
    assert uas.finished() == 0
