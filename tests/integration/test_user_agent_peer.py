"""siptool's requests answered by a real user agent: baresip, registered with digest at the
presence Kamailio, takes a MESSAGE and an OPTIONS and auto-answers a call; a SIPp recipient
answers MESSAGE 488.  What siptool reports is checked against what baresip's own SIP trace
says it received and answered."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.baresip import Baresip, start_baresip
from tests.support.kamailio import PASSWORD
from tests.support.presence import PresenceKamailio, start_presence_kamailio
from tests.support.run import siptool
from tests.support.sipp import Sipp


@pytest.fixture(scope="module")
def registrar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PresenceKamailio]:
    server = start_presence_kamailio(tmp_path_factory.mktemp("ua-registrar"), auth=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def agent(
    tmp_path_factory: pytest.TempPathFactory, registrar: PresenceKamailio
) -> Iterator[Baresip]:
    ua = start_baresip(
        tmp_path_factory.mktemp("baresip"), registrar.uri(), "jill", password=PASSWORD
    )
    try:
        yield ua
    finally:
        ua.stop()


def _traced_until(agent: Baresip, method: str, count: int, timeout: float = 5.0) -> list[object]:
    """baresip's traced ``method`` requests once there are ``count`` (bounded wait)."""
    end = time.monotonic() + timeout
    while True:
        got = agent.requests(method)
        if len(got) >= count or time.monotonic() > end:
            return list(got)
        time.sleep(0.05)


def test_a_message_reaches_baresip_through_kamailio(
    registrar: PresenceKamailio, agent: Baresip
) -> None:
    before = len(agent.received_messages())
    run = siptool(
        "message",
        registrar.uri(user="jill"),
        "--user",
        "jack",
        "--text",
        "ping from siptool",
        "--json",
    )
    assert run.returncode == 0, run.stderr
    assert run.doc["final_status"] == 200
    got = _traced_until(agent, "MESSAGE", before + 1)
    message = agent.received_messages()[len(got) - 1]
    assert message.body == "ping from siptool"
    assert (message.header("content-type") or "").lower().startswith("text/plain")
    assert "200 OK" in agent.answers("MESSAGE")[-1]


def test_send_options_and_info_are_answered_by_baresip(
    registrar: PresenceKamailio, agent: Baresip
) -> None:
    for method in ("OPTIONS", "INFO"):
        # Straight to its contact: the registrar answers OPTIONS itself.
        run = siptool("send", method, f"sip:jill@{agent.hostport}", "--json")
        assert run.doc["final_status"] is not None, run.stderr  # a real answer came
        assert "Traceback" not in run.stderr
        answered = agent.answers(method)
        assert answered and answered[-1].split(" ", 2)[1] == str(run.doc["final_status"])


def test_invite_test_call_is_answered_by_baresip(
    registrar: PresenceKamailio, agent: Baresip
) -> None:
    run = siptool("invite-test", registrar.uri(user="jill"), "--hold", "0.5", "--json")
    assert run.returncode == 0, run.stderr
    assert run.doc["final_status"] == 200 and run.doc["bye_status"] == 200


def test_a_message_answered_488_is_named(sipp: Callable[..., Sipp]) -> None:
    recipient = sipp("message-488.xml")
    run = siptool("message", recipient.uri("bob"), "--text", "hello", "--json")
    assert run.returncode == 1
    assert run.doc["final_status"] == 488
    message = run.doc["errors"][-1]["message"]
    assert message.startswith("488 Not Acceptable Here") and "does not accept" in message
    assert recipient.finished() == 0


def test_the_password_is_never_printed(registrar: PresenceKamailio, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    for args in (
        ("send", "REGISTER", registrar.uri(), "-H", "Contact: <sip:kim@192.0.2.1>"),
        ("message", "--listen", registrar.uri(), "--timeout", "0.5"),
        ("subscribe", registrar.uri(user="kim"), "--event", "presence", "--once"),
        ("publish", registrar.uri(user="kim"), "--status", "open"),
    ):
        for shown in ((), ("--json",), ("-v",)):
            run = siptool(*args, "--user", "kim", "--password-file", str(secret), *shown)
            assert "Traceback" not in run.stderr
            assert PASSWORD not in run.stdout + run.stderr, (args, shown)
