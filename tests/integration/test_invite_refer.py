"""`siptool invite-test --refer-to` (RFC 3515 REFER, RFC 5589 §6 basic transfer) and the far
end's requests inside any call, against real peers: baresip as the transferee, registered at
the presence Kamailio, calling a SIPp UAS registered there as the transfer target; SIPp UASes
that refuse the REFER (405, 603), accept it and never NOTIFY, or send re-INVITE, UPDATE, INFO,
OPTIONS and NOTIFY inside the call.  A SIPp scenario ends with exit status 0 only when every
step ran (the BYE it waits for included), so its status proves what siptool sent."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.baresip import Baresip, start_baresip
from tests.support.kamailio import PASSWORD
from tests.support.paths import ROOT
from tests.support.presence import PresenceKamailio, start_presence_kamailio
from tests.support.run import SIPTOOL, siptool, siptool_json
from tests.support.sipp import Sipp, start_sipp

pytestmark = pytest.mark.peer


@pytest.fixture
def kamailio(tmp_path: Path) -> Iterator[PresenceKamailio]:
    server = start_presence_kamailio(tmp_path / "kamailio", auth=True, usrloc_presence=False)
    yield server
    server.stop()


@pytest.fixture
def baresip(tmp_path: Path, kamailio: PresenceKamailio) -> Iterator[Baresip]:
    agent = start_baresip(tmp_path, kamailio.uri(), "jill", password=PASSWORD)
    yield agent
    agent.stop()


def register_target(kam: PresenceKamailio, target: Sipp) -> str:
    """The SIPp UAS ``target`` registered as sip:target@kam; that address of record."""
    done = siptool(
        "register",
        "--user",
        "target",
        "--contact",
        target.uri("target"),
        kam.uri(),
        "-q",
        env={"SIPTOOL_PASSWORD": PASSWORD},
        timeout=20,
    )
    assert done.returncode == 0, done.stderr
    return kam.uri(user="target")


def transfer(kam: PresenceKamailio, refer_to: str) -> tuple[int, dict[str, Any]]:
    """invite-test calls baresip (sip:jill@kam) and REFERs it to ``refer_to`` at once."""
    callee = kam.uri(user="jill")
    args = ("--user", "kim", "--hold", "0.5", "--timeout", "10", "--refer-to", refer_to, callee)
    return siptool_json("invite-test", *args, timeout=40)


def sipfrags(doc: dict[str, Any]) -> list[tuple[int | None, str | None]]:
    """(sipfrag status, Subscription-State) of each NOTIFY of the transfer."""
    return [
        (n["sipfrag"]["status"] if n["sipfrag"] else None, n["subscription_state"]["state"])
        for n in doc["transfer"]["notifies"]
    ]


def refused(
    sipp: Callable[..., Sipp], scenario: str, *args: str
) -> tuple[int, dict[str, Any], Sipp]:
    peer = sipp(scenario)
    code, doc = siptool_json(
        "invite-test", "--hold", "0", "--refer-to", "sip:carol@127.0.0.1", *args, peer.uri()
    )
    return code, doc, peer


# -- a real transfer: baresip follows the REFER --------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "final", "code", "outcome", "summary"),
    [
        ("answer-rr.xml", 200, 0, "succeeded", "transfer target answered 200 OK"),
        ("busy.xml", 486, 1, "failed", "transfer failed: 486 Busy Here"),
    ],
)
def test_refer_transfers_baresip_to_the_target_and_reports_its_answer(
    baresip: Baresip,
    kamailio: PresenceKamailio,
    tmp_path: Path,
    scenario: str,
    final: int,
    code: int,
    outcome: str,
    summary: str,
) -> None:
    (tmp_path / "target").mkdir()
    target = start_sipp(tmp_path / "target", scenario)
    try:
        refer_to = register_target(kamailio, target)
        exit_code, doc = transfer(kamailio, refer_to)
        invited = [m for m in baresip.traced() if not m.incoming and m.method == "INVITE"]
    finally:
        baresip.stop()  # its call to the target is hung up before the target stops
        target_status = target.finished(10)
        target.server.stop()
    assert exit_code == code, doc["errors"]
    moved = doc["transfer"]
    assert moved["refer_to"] == refer_to and moved["status"] == 202
    assert sipfrags(doc) == [(100, "active"), (final, "terminated")]
    assert moved["notifies"][-1]["sipfrag"] == {
        "status": final,
        "reason": summary.split(f"{final} ")[1],
    }
    assert moved["outcome"] == outcome and moved["summary"] == summary
    assert all(n["answered"] == 200 and n["error"] is None for n in moved["notifies"])
    # RFC 5589 §6: the transferor hangs up the original call, whatever the outcome.
    assert doc["bye_status"] == 200
    if code:
        assert [e["message"] for e in doc["errors"]] == [summary]
    # baresip called the target through Kamailio, and the target's scenario ran to its end.
    assert [m.start_line.split()[1].startswith("sip:target@") for m in invited] == [True]
    assert target_status == 0, target.server.log()
    assert baresip.answers("REFER") == ["SIP/2.0 202 Accepted"]
    (refer,) = baresip.requests("REFER")
    assert refer.header("refer-to") == f"<{refer_to}>"
    assert refer.header("referred-by") == "<sip:kim@127.0.0.1>"


def test_transfer_text_report_names_each_notify_and_the_outcome(
    baresip: Baresip, kamailio: PresenceKamailio, tmp_path: Path
) -> None:
    (tmp_path / "target").mkdir()
    target = start_sipp(tmp_path / "target", "answer-rr.xml")
    try:
        refer_to = register_target(kamailio, target)
        callee = kamailio.uri(user="jill")
        done = siptool("invite-test", "--hold", "0", "--refer-to", refer_to, callee, timeout=40)
    finally:
        baresip.stop()
        target.server.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"to {refer_to}: 202 Accepted in " in done.stdout
    assert "SIP/2.0 100 Trying (active)" in done.stdout
    assert "SIP/2.0 200 OK (terminated)" in done.stdout
    assert re.search(r"^transfer +transfer target answered 200 OK", done.stdout, re.M)


# -- REFER refused, or never followed by a NOTIFY ------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        ("refer-405.xml", "REFER refused: 405 Method Not Allowed"),
        ("refer-603.xml", "REFER refused: 603 Decline"),
    ],
)
def test_refused_refer_fails_named_and_the_call_is_still_hung_up(
    sipp: Callable[..., Sipp], scenario: str, message: str
) -> None:
    code, doc, peer = refused(sipp, scenario)
    assert code == 1
    assert [(e["code"], e["message"]) for e in doc["errors"]] == [("refer_refused", message)]
    assert doc["transfer"]["outcome"] == "failed" and doc["transfer"]["notifies"] == []
    assert doc["transfer"]["summary"] == message
    assert doc["final_status"] == 200 and doc["bye_status"] == 200
    assert peer.finished(10) == 0, peer.server.log()


def test_refused_refer_text_output_is_one_named_error(sipp: Callable[..., Sipp]) -> None:
    peer = sipp("refer-603.xml")
    done = siptool("invite-test", "--hold", "0", "--refer-to", "sip:carol@127.0.0.1", peer.uri())
    assert done.returncode == 1
    assert "REFER refused: 603 Decline" in done.stderr
    assert re.search(r"^transfer +REFER refused: 603 Decline", done.stdout, re.M), done.stdout
    assert peer.finished(10) == 0, peer.server.log()


def test_accepted_refer_without_notify_times_out_named(sipp: Callable[..., Sipp]) -> None:
    started = time.monotonic()
    code, doc, peer = refused(sipp, "refer-202-silent.xml", "--refer-wait", "1")
    elapsed = time.monotonic() - started
    assert code == 1
    message = "no NOTIFY with the transfer's outcome within 1 s"
    assert [(e["code"], e["message"]) for e in doc["errors"]] == [("transfer_timeout", message)]
    assert doc["transfer"]["status"] == 202 and doc["transfer"]["outcome"] == "unknown"
    assert doc["bye_status"] == 200
    assert peer.finished(10) == 0, peer.server.log()
    assert elapsed < 4  # --refer-wait bounds the wait, not what is left of --timeout's 5 s


def test_ctrl_c_while_waiting_for_the_notify_hangs_up_with_bye(
    sipp: Callable[..., Sipp], tmp_path: Path
) -> None:
    peer = sipp("refer-202-silent.xml")
    wire = tmp_path / "wire.log"
    argv = [*SIPTOOL, "invite-test", "-v", "--hold", "0", "--refer-wait", "30"]
    argv += ["--refer-to", "sip:carol@127.0.0.1", peer.uri()]
    with wire.open("w") as err:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT
        )
        try:
            deadline = time.monotonic() + 10
            while "202 Accepted" not in wire.read_text() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "202 Accepted" in wire.read_text(), wire.read_text()
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
    log = wire.read_text()
    assert process.returncode == 130 and "Traceback" not in log, log[-2000:]
    assert peer.finished(10) == 0, peer.server.log()  # it got the BYE


# -- the far end's requests inside a call ----------------------------------------------------


def test_far_end_requests_in_the_call_are_each_answered(sipp: Callable[..., Sipp]) -> None:
    peer = sipp("in-dialog-requests.xml")
    code, doc = siptool_json("invite-test", "--hold", "2", peer.uri())
    assert code == 0, doc["errors"]
    answered = [e["message"] for e in doc["events"] if e["direction"] == "send"]
    for method in ("INVITE", "UPDATE", "INFO", "OPTIONS", "NOTIFY"):
        assert f"200 OK ({method})" in answered, answered
    assert doc["bye_status"] == 200
    # SIPp checked each 200 (SDP in those to the re-INVITE and UPDATE, Allow in OPTIONS').
    assert peer.finished(10) == 0, peer.server.log()
