"""`siptool subscribe` and `siptool publish` against Kamailio's presence server (presence,
presence_xml, presence_mwi, presence_dialoginfo, presence_reginfo/pua_reginfo), and SIPp
notifiers and presence servers gone wrong."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.presence import PresenceKamailio, start_presence_kamailio
from tests.support.run import siptool, spawn
from tests.support.servers import free_port
from tests.support.sipp import Sipp, _port_taken


@pytest.fixture(scope="module")
def presence(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PresenceKamailio]:
    server = start_presence_kamailio(tmp_path_factory.mktemp("presence"), usrloc_presence=False)
    try:
        yield server
    finally:
        server.stop()


def _user(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def test_publish_then_subscribe_sees_the_published_status_in_a_notify(
    presence: PresenceKamailio,
) -> None:
    user = _user("alice")
    published = siptool(
        "publish",
        presence.uri(user=user),
        "--user",
        user,
        "--status",
        "open",
        "--note",
        "at my desk",
        "--json",
    )
    assert published.returncode == 0, published.stderr
    assert published.doc["etag"] and published.doc["expires"] == 3600
    run = siptool("subscribe", presence.uri(user=user), "--event", "presence", "--json")
    assert run.returncode == 0, run.stderr
    doc = run.doc
    assert doc["final_status"] in (200, 202) and doc["expires"] is not None
    first = doc["notifies"][0]
    assert first["subscription_state"]["state"] == "active"
    assert first["content_type"].startswith("application/pidf+xml")
    assert first["parsed"]["basic"] == "open"
    assert "at my desk" in first["summary"]
    # siptool unsubscribed once the first NOTIFY was in; the notifier said so.
    assert doc["unsubscribed"] is True
    assert doc["states"] == ["active", "terminated"]
    assert doc["notifies"][-1]["subscription_state"]["state"] == "terminated"
    assert [t["method"] for t in doc["transactions"]] == ["SUBSCRIBE", "SUBSCRIBE"]


def test_once_fetches_the_state_with_expires_0(presence: PresenceKamailio) -> None:
    user = _user("bob")
    assert siptool("publish", presence.uri(user=user), "--status", "closed").returncode == 0
    run = siptool("subscribe", presence.uri(user=user), "--event", "presence", "--once", "--json")
    assert run.returncode == 0, run.stderr
    [notify] = run.doc["notifies"]
    assert notify["subscription_state"]["state"] == "terminated"
    assert notify["parsed"]["basic"] == "closed"
    assert run.doc["expires"] == 0 and len(run.doc["transactions"]) == 1


def test_duration_refreshes_the_subscription_before_it_ends(presence: PresenceKamailio) -> None:
    user = _user("carol")
    assert siptool("publish", presence.uri(user=user), "--status", "open").returncode == 0
    run = siptool(
        "subscribe",
        presence.uri(user=user),
        "--event",
        "presence",
        "--expires",
        "4",
        "--duration",
        "3",
        "--json",
    )
    assert run.returncode == 0, run.stderr
    # A 4 s subscription is refreshed half-way (event_packages.refresh_at), inside the 3 s.
    assert run.doc["refreshes"] >= 1
    assert [t["method"] for t in run.doc["transactions"]].count("SUBSCRIBE") >= 3
    assert run.doc["unsubscribed"] is True


def test_a_removed_publication_is_gone_from_the_next_notify(presence: PresenceKamailio) -> None:
    user = _user("dave")
    first = siptool("publish", presence.uri(user=user), "--status", "open", "--json")
    assert first.returncode == 0, first.stderr
    removed = siptool(
        "publish", presence.uri(user=user), "--etag", first.doc["etag"], "--remove", "--json"
    )
    assert removed.returncode == 0, removed.stderr
    assert removed.doc["removed"] is True
    run = siptool("subscribe", presence.uri(user=user), "--event", "presence", "--once", "--json")
    assert run.returncode == 0
    assert all(n["parsed"] is None or n["parsed"]["basic"] != "open" for n in run.doc["notifies"])


def test_message_summary_counts_reach_the_mwi_subscriber(
    presence: PresenceKamailio, tmp_path: Path
) -> None:
    user = _user("erin")
    summary = tmp_path / "mwi.txt"
    summary.write_text(
        f"Messages-Waiting: yes\r\nMessage-Account: sip:{user}@127.0.0.1\r\n"
        "Voice-Message: 2/8 (0/2)\r\n"
    )
    published = siptool(
        "publish",
        presence.uri(user=user),
        "--event",
        "message-summary",
        "--body",
        str(summary),
        "--content-type",
        "application/simple-message-summary",
    )
    assert published.returncode == 0, published.stderr
    run = siptool(
        "subscribe", presence.uri(user=user), "--event", "message-summary", "--once", "--json"
    )
    assert run.returncode == 0, run.stderr
    parsed = run.doc["notifies"][0]["parsed"]
    assert parsed["waiting"] is True
    voice = next(c for c in parsed["messages"] if c["context_class"] == "voice-message")
    assert (voice["new"], voice["old"]) == (2, 8)


def test_dialog_state_of_a_blf_subscription(presence: PresenceKamailio, tmp_path: Path) -> None:
    user = _user("frank")
    document = tmp_path / "dialog.xml"
    document.write_text(
        '<?xml version="1.0"?>\n'
        '<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" '
        f'entity="sip:{user}@127.0.0.1"><dialog id="d1" call-id="c1" direction="recipient">'
        "<state>confirmed</state></dialog></dialog-info>\n"
    )
    published = siptool(
        "publish",
        presence.uri(user=user),
        "--event",
        "dialog",
        "--body",
        str(document),
        "--content-type",
        "application/dialog-info+xml",
    )
    assert published.returncode == 0, published.stderr
    run = siptool("subscribe", presence.uri(user=user), "--event", "dialog", "--once", "--json")
    assert run.returncode == 0, run.stderr
    parsed = next(n["parsed"] for n in run.doc["notifies"] if n["parsed"])
    assert [d["state"] for d in parsed["dialogs"]] == ["confirmed"]
    assert parsed["blf"] == "busy"


def test_reg_event_reports_a_registration(presence: PresenceKamailio) -> None:
    user = _user("gina")
    registered = siptool("register", presence.uri(user=user), "--user", user, "--expires", "60")
    assert registered.returncode == 0, registered.stderr
    run = siptool("subscribe", presence.uri(user=user), "--event", "reg", "--once", "--json")
    assert run.returncode == 0, run.stderr
    parsed = next(n["parsed"] for n in run.doc["notifies"] if n["parsed"])
    [registration] = [r for r in parsed["registrations"] if user in r["aor"]]
    assert registration["state"] == "active" and registration["contacts"]


def test_a_notify_for_no_subscription_of_ours_gets_481(presence: PresenceKamailio) -> None:
    user = _user("henry")
    assert siptool("publish", presence.uri(user=user), "--status", "open").returncode == 0
    port = free_port("udp")
    subscriber = spawn(
        "subscribe",
        presence.uri(user=user),
        "--event",
        "presence",
        "--duration",
        "3",
        "--local-port",
        str(port),
        "--json",
    )
    try:
        for _ in range(200):  # bounded: until the subscriber's socket is bound (< 10 s)
            if _port_taken("udp", "127.0.0.1", port) or subscriber.poll() is not None:
                break
            time.sleep(0.05)
        stray = siptool(
            "send",
            "NOTIFY",
            f"sip:siptool@127.0.0.1:{port}",
            "-H",
            "Event: presence",
            "-H",
            "Subscription-State: active",
            "--expect",
            "481",
            "--json",
        )
        out, err = subscriber.communicate(timeout=30)
    finally:
        subscriber.kill()
    assert stray.returncode == 0, stray.stderr
    assert stray.doc["final_status"] == 481
    assert subscriber.returncode == 0, err
    assert json.loads(out)["unknown_notifies"] == 1


def test_a_broken_notify_body_and_a_200_without_expires_are_named(
    sipp: Callable[..., Sipp],
) -> None:
    notifier = sipp("subscribe-broken-notify.xml")
    run = siptool("subscribe", notifier.uri("bob"), "--event", "presence", "--json")
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    errors = [e["message"] for e in run.doc["errors"]]
    assert any(m.startswith("NOTIFY 1: ") and "pidf" in m for m in errors), errors
    assert any("has no Expires" in w for w in run.doc["warnings"])
    # The broken NOTIFY was still answered 200, and the unsubscribe went out.
    assert run.doc["notifies"][0]["answered"] == 200
    assert run.doc["unsubscribed"] is True
    assert notifier.finished() == 0


def test_412_conditional_request_failed_is_named(sipp: Callable[..., Sipp]) -> None:
    server = sipp("publish-412.xml")
    run = siptool("publish", server.uri("bob"), "--etag", "abc123", "--refresh", "--json")
    assert run.returncode == 1
    assert run.doc["final_status"] == 412
    assert "does not know the entity-tag abc123" in run.doc["errors"][-1]["message"]
    assert server.finished() == 0  # the refresh carried SIP-If-Match


def test_an_unknown_event_package_is_named(presence: PresenceKamailio) -> None:
    run = siptool("subscribe", presence.uri(user=_user("ivan")), "--event", "no-such-package")
    assert run.returncode == 1
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("subscribe", "sip:a@127.0.0.1:9", "--event", "bad event"), "--event"),
        (
            ("subscribe", "sip:a@127.0.0.1:9", "--event", "presence", "--once", "--duration", "2"),
            "--once",
        ),
        (("publish", "sip:a@127.0.0.1:9"), "--status open|closed"),
        (("publish", "sip:a@127.0.0.1:9", "--etag", "x"), "--etag needs"),
        (("publish", "sip:a@127.0.0.1:9", "--event", "dialog"), "--body"),
    ],
)
def test_usage_errors_are_one_line(args: tuple[str, ...], words: str) -> None:
    run = siptool(*args)
    assert run.returncode == 2 and words in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
