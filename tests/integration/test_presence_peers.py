"""The peers of the issue 11 tests, proved with tools that exist today (SIPp scenarios of
tests/fixtures/sipp/, siptool register and invite-test): the presence Kamailio of
tests/support/presence.py and the baresip of tests/support/baresip.py.

What each must do for the SUBSCRIBE/NOTIFY/PUBLISH/MESSAGE/REFER commands to be tested on it:
PUBLISH then SUBSCRIBE sees the published PIDF (RFC 3903, RFC 6665, RFC 3863); the dialog
(RFC 4235), message-summary (RFC 3842) and reg (RFC 3680) packages carry what real calls,
PUBLISHes and REGISTERs made; MESSAGE (RFC 3428) is relayed to a registered user and 404 for an
unknown one; baresip registers with digest, auto-answers, takes MESSAGE and follows a REFER
(RFC 3515), reporting the target's answer in message/sipfrag.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.baresip import Baresip, start_baresip
from tests.support.kamailio import PASSWORD
from tests.support.media_calls import Party
from tests.support.presence import PresenceKamailio, sipp_logs, start_presence_kamailio
from tests.support.run import siptool, siptool_json, spawn
from tests.support.sipp import start_sipp

PIDF = "application/pidf+xml"
DIALOG_INFO = "application/dialog-info+xml"
REGINFO = "application/reginfo+xml"
MWI = "application/simple-message-summary"


@pytest.fixture
def kamailio(tmp_path: Path) -> Iterator[PresenceKamailio]:
    server = start_presence_kamailio(tmp_path / "kamailio", usrloc_presence=False)
    yield server
    server.stop()


@pytest.fixture
def kamailio_auth(tmp_path: Path) -> Iterator[PresenceKamailio]:
    server = start_presence_kamailio(tmp_path / "kamailio", auth=True)
    yield server
    server.stop()


@pytest.fixture
def baresip(tmp_path: Path, kamailio_auth: PresenceKamailio) -> Iterator[Baresip]:
    agent = start_baresip(tmp_path, kamailio_auth.uri(), "jill", password=PASSWORD)
    yield agent
    agent.stop()


def scenario(
    work: Path, kam: PresenceKamailio, name: str, service: str, **keys: str
) -> dict[str, list[str]]:
    """SIPp UAC ``name`` to sip:SERVICE@kam with its ``-key``s, run in ``work`` to its end
    (exit 0 asserted); what it logged."""
    work.mkdir(parents=True, exist_ok=True)
    args = ["-s", service, *(arg for kv in keys.items() for arg in ("-key", *kv))]
    party = Party(work).start(name, *args, "-trace_logs", "-trace_msg", kam.hostport)
    try:
        party.finished(15)
    finally:
        party.stop()
    return sipp_logs(work)


def subscribe(work: Path, kam: PresenceKamailio, user: str, event: str, accept: str) -> str:
    """uac-subscribe.xml: SUBSCRIBE, answer the first NOTIFY, unsubscribe; that NOTIFY's body."""
    logs = scenario(work, kam, "uac-subscribe.xml", user, event=event, accept=accept)
    assert logs["state1"] == ["active;expires=60"], logs
    assert logs["state2"][0].startswith("terminated"), logs
    trace = "".join(p.read_text(errors="replace") for p in work.glob("*_messages.log"))
    match = re.search(r"\nNOTIFY sip:.*?\r?\n\r?\n(.*?)\n-{20,}", trace, re.S)
    assert match, trace[-2000:]
    return match.group(1)


def register(
    kam: PresenceKamailio, user: str, contact: str | None = None, password: str | None = None
) -> None:
    args = ["--contact", contact] if contact else []
    env = {"SIPTOOL_PASSWORD": password} if password else None
    done = siptool("register", "--user", user, *args, kam.uri(), "-q", env=env, timeout=20)
    assert done.returncode == 0, done.stderr


# -- the presence Kamailio ---------------------------------------------------------------------


def test_publish_then_subscribe_notifies_the_published_status(
    kamailio: PresenceKamailio, tmp_path: Path
) -> None:
    register(kamailio, "alice")
    published = scenario(
        tmp_path / "pub", kamailio, "uac-publish.xml", "alice", status="closed", note="in a meeting"
    )
    assert published["etag"][0], published  # RFC 3903 §11.3.1: the 200 carries the entity tag
    body = subscribe(tmp_path / "sub", kamailio, "alice", "presence", PIDF)
    assert sipp_logs(tmp_path / "sub")["basic"] == ["closed (basic>closed<)"]
    assert "<basic>closed</basic>" in body and "<note>in a meeting</note>" in body
    assert 'entity="sip:alice@127.0.0.1"' in body


def test_a_register_publishes_open_presence_and_reginfo(tmp_path: Path) -> None:
    kam = start_presence_kamailio(tmp_path / "kamailio")  # pua_usrloc on
    try:
        register(kam, "bob", "sip:bob@127.0.0.1:5999")
        assert "<basic>open</basic>" in subscribe(tmp_path / "pres", kam, "bob", "presence", PIDF)
        reginfo = subscribe(tmp_path / "reg", kam, "bob", "reg", REGINFO)
    finally:
        kam.stop()
    assert '<registration aor="sip:bob@127.0.0.1"' in reginfo and 'state="active"' in reginfo
    assert "<uri>sip:bob@127.0.0.1:5999</uri>" in reginfo


def test_a_published_message_summary_is_notified(
    kamailio: PresenceKamailio, tmp_path: Path
) -> None:
    keys = {"waiting": "yes", "new": "2", "old": "1"}
    scenario(tmp_path / "pub", kamailio, "uac-publish-mwi.xml", "carol", **keys)
    body = subscribe(tmp_path / "sub", kamailio, "carol", "message-summary", MWI)
    assert "Messages-Waiting: yes" in body and "Voice-Message: 2/1" in body


def test_a_call_through_the_proxy_is_notified_as_a_confirmed_dialog(
    kamailio: PresenceKamailio, tmp_path: Path
) -> None:
    (tmp_path / "uas").mkdir()
    callee = start_sipp(tmp_path / "uas", "answer-rr.xml")
    try:
        register(kamailio, "erin", callee.uri("erin"))
        target = kamailio.uri(user="erin")
        call = spawn("invite-test", "--user", "frank", "--hold", "3", "--timeout", "5", target)
        try:
            body = confirmed_dialog(tmp_path, kamailio, "erin")
        finally:
            out, err = call.communicate(timeout=20)
        assert call.returncode == 0, out + err
    finally:
        callee.server.stop()
    assert 'direction="recipient"' in body and "<identity>sip:frank@127.0.0.1</identity>" in body


def confirmed_dialog(tmp_path: Path, kam: PresenceKamailio, user: str) -> str:
    """Subscribe to ``user``'s dialog state until a NOTIFY says confirmed (the call has been
    answered): at most 10 tries in 3 s."""
    deadline = time.monotonic() + 3
    body = ""
    for attempt in range(10):
        body = subscribe(tmp_path / f"blf{attempt}", kam, user, "dialog", DIALOG_INFO)
        if "<state>confirmed</state>" in body or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert "<state>confirmed</state>" in body, body
    return body


def test_message_is_relayed_to_a_registered_user_and_404_for_an_unknown_one(
    kamailio: PresenceKamailio, tmp_path: Path
) -> None:
    (tmp_path / "uas").mkdir()
    uas = Party(tmp_path / "uas").start("uas-message.xml", "-trace_logs").listening()
    try:
        register(kamailio, "hank", f"sip:hank@{uas.sip}")
        sent = scenario(tmp_path / "to-hank", kamailio, "uac-message.xml", "hank", text="hi hank")
        uas.finished(5)
    finally:
        uas.stop()
    assert sent["status"] == ["200"]
    assert sipp_logs(tmp_path / "uas") == {"type": ["text/plain"], "text": ["hi hank"]}
    unknown = scenario(tmp_path / "to-nobody", kamailio, "uac-message.xml", "nobody", text="hi")
    assert unknown["status"] == ["404"]


# -- baresip -----------------------------------------------------------------------------------


def test_baresip_registers_with_digest(baresip: Baresip, kamailio_auth: PresenceKamailio) -> None:
    code, doc = siptool_json(
        "register",
        "--query",
        "--user",
        "jill",
        kamailio_auth.uri(),
        env={"SIPTOOL_PASSWORD": PASSWORD},
    )
    assert code == 0, doc["errors"]
    assert doc["auth"]["rounds"] == 1
    assert [b["contact"].split("@")[1] for b in doc["bindings"]] == [baresip.hostport]


def test_baresip_answers_an_invite_through_kamailio(
    baresip: Baresip, kamailio_auth: PresenceKamailio
) -> None:
    target = kamailio_auth.uri(user="jill")
    code, doc = siptool_json("invite-test", "--user", "kim", "--hold", "1", "--rtp", target)
    assert code == 0, doc["errors"]
    assert doc["final_status"] == 200 and doc["bye_status"] == 200
    assert doc["rtp"]["received"] > 0  # ausine's tone comes back
    established = baresip.wait_event("CALL_ESTABLISHED")
    assert established["peeruri"] == "sip:kim@127.0.0.1"
    assert baresip.wait_event("CALL_CLOSED")["id"] == established["id"]
    assert len(baresip.requests("INVITE")) == 1 and len(baresip.requests("BYE")) == 1


def test_baresip_takes_a_message_and_answers_200(
    baresip: Baresip, kamailio_auth: PresenceKamailio, tmp_path: Path
) -> None:
    sent = scenario(tmp_path / "msg", kamailio_auth, "uac-message.xml", "jill", text="hi jill")
    assert sent["status"] == ["200"]
    (message,) = baresip.received_messages()
    assert message.header("content-type") == "text/plain" and message.body.strip() == "hi jill"
    assert "<sip:sipp@127.0.0.1:" in (message.header("from") or "")
    assert baresip.answers("MESSAGE") == ["SIP/2.0 200 OK"]


@pytest.mark.parametrize(
    ("scenario_name", "sipfrag"), [("answer-rr.xml", "200 OK"), ("busy.xml", "486 Busy Here")]
)
def test_baresip_follows_a_refer_and_reports_the_target_answer(
    baresip: Baresip,
    kamailio_auth: PresenceKamailio,
    tmp_path: Path,
    scenario_name: str,
    sipfrag: str,
) -> None:
    """RFC 5589 §6 basic transfer: SIPp calls baresip and REFERs it to a SIPp UAS registered at
    the same Kamailio; baresip answers 202, calls the target, NOTIFYs 100 Trying, then the
    target's final answer (and ends the subscription)."""
    (tmp_path / "target").mkdir()
    target = start_sipp(tmp_path / "target", scenario_name)
    try:
        register(kamailio_auth, "target", target.uri("target"), PASSWORD)
        refer_to = kamailio_auth.uri(user="target")
        logs = scenario(
            tmp_path / "transferor", kamailio_auth, "uac-refer.xml", "jill", target=refer_to
        )
        transfer = baresip.wait_event("TRANSFER")
    finally:
        baresip.stop()  # before the target, so that its BYE to the target is answered
        target.server.stop()
    assert logs["sipfrag"] == ["SIP/2.0 100 Trying (active)", f"SIP/2.0 {sipfrag} (terminated)"]
    assert baresip.answers("REFER") == ["SIP/2.0 202 Accepted"]
    assert transfer["param"] == f"<{refer_to}>"
    sent = [m.start_line for m in baresip.traced() if not m.incoming]
    assert any(line.startswith("INVITE sip:target@127.0.0.1:") for line in sent), sent
