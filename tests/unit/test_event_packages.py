"""The event-package engine: the package table and Accept, the NOTIFY body dispatch and its
JSON shape, the Event and Subscription-State headers (RFC 6665 §8.2.1, §8.2.3), and when a
subscription or publication is refreshed."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siptool.errors import ParseError
from siptool.sip.dialog_info import DialogInfo
from siptool.sip.event_packages import (
    PACKAGES,
    REASONS,
    SubState,
    accept_for,
    media_type,
    package,
    parse_event,
    parse_notify_body,
    parse_subscription_state,
    refresh_at,
)
from siptool.sip.message_summary import MessageSummary
from siptool.sip.pidf import Presence
from siptool.sip.reginfo import RegInfo
from siptool.sip.sipfrag import SipFrag
from siptool.sip.transaction import Timers
from tests.support.paths import FIXTURES

BODIES = FIXTURES / "event-bodies"
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- the table ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "accept"),
    [
        ("presence", "application/pidf+xml"),
        ("dialog", "application/dialog-info+xml"),
        ("message-summary", "application/simple-message-summary"),
        ("reg", "application/reginfo+xml"),
        ("refer", "message/sipfrag"),
        ("presence.winfo", "application/watcherinfo+xml"),
    ],
)
def test_accept_for_each_package(name: str, accept: str) -> None:
    assert accept_for(name) == accept
    assert PACKAGES[name].rfc.startswith("RFC ")


def test_accept_for_an_unknown_package_is_none_and_case_falls_back() -> None:
    assert accept_for("conference") is None
    assert accept_for(" Presence ") == "application/pidf+xml"
    found = package("DIALOG")
    assert found is not None and found.name == "dialog"


def test_every_package_with_a_parser_dispatches_from_its_own_accept() -> None:
    samples = {
        "presence": "rfc3863-6-example.xml",
        "dialog": "rfc4235-early.xml",
        "message-summary": "rfc3842-5.2.txt",
        "reg": "rfc3680-two-contacts.xml",
        "refer": "rfc3515-trying.sipfrag",
    }
    for name, entry in PACKAGES.items():
        if entry.parse is None:
            continue
        parsed = parse_notify_body(entry.accept, (BODIES / samples[name]).read_bytes())
        assert parsed is not None, name


# -- the body dispatch ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "sample", "kind", "summary"),
    [
        ("application/pidf+xml", "asterisk-pidf-on-the-phone.xml", Presence, "open: On the phone"),
        (
            "Application/PIDF+XML; charset=UTF-8",
            "kamailio-presence-offline.xml",
            Presence,
            "closed",
        ),
        (
            "application/dialog-info+xml",
            "rfc4235-confirmed-partial.xml",
            DialogInfo,
            "dialog as7d900as8 confirmed (busy)",
        ),
        (
            "application/simple-message-summary",
            "rfc3842-5.2.txt",
            MessageSummary,
            "2 new, 8 old voice messages (waiting)",
        ),
        (
            "application/reginfo+xml",
            "rfc3680-init.xml",
            RegInfo,
            "sip:joe@example.com init",
        ),
        (
            "message/sipfrag;version=2.0",
            "rfc3515-ok-no-crlf.sipfrag",
            SipFrag,
            "transfer target answered 200 OK",
        ),
    ],
)
def test_parse_notify_body_dispatches_on_the_media_type(
    content_type: str, sample: str, kind: type, summary: str
) -> None:
    parsed = parse_notify_body(content_type, (BODIES / sample).read_bytes())
    assert parsed is not None and isinstance(parsed, kind)
    assert parsed.summary() == summary
    json.dumps(parsed.to_dict())


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("application/pidf+xml", b""),
        ("application/pidf+xml", b"\r\n  \r\n"),
        ("application/watcherinfo+xml", b"<watcherinfo/>"),
        ("text/plain", b"Messages-Waiting: yes"),
        (None, b"Messages-Waiting: yes"),
        ("", b"SIP/2.0 200 OK"),
    ],
)
def test_parse_notify_body_is_none_for_an_empty_body_or_a_type_it_does_not_read(
    content_type: str | None, data: bytes
) -> None:
    assert parse_notify_body(content_type, data) is None


def test_parse_notify_body_names_a_broken_body() -> None:
    with pytest.raises(ParseError, match="bad application/dialog-info\\+xml body: mismatched tag"):
        parse_notify_body("application/dialog-info+xml", b"<dialog-info><a></dialog-info>")


def test_media_type_drops_parameters_and_case() -> None:
    assert media_type(' Message/SIPFRAG ; version="2.0"') == "message/sipfrag"
    assert media_type(None) is None
    assert media_type(" ; charset=x") is None


def _keys(value: Any, path: str = "") -> set[str]:
    """Every key path of a JSON value, lists collapsed to their first element."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            assert key == key.lower() and " " not in key and "-" not in key, key
            found.add(path + key)
            found |= _keys(item, f"{path}{key}.")
    elif isinstance(value, list) and value:
        found |= _keys(value[0], path + "[].")
    return found


@pytest.mark.parametrize(
    ("content_type", "full", "sparse"),
    [
        (
            "application/pidf+xml",
            "rfc3863-6-example.xml",
            b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="e">'
            b'<tuple id="t"><status/></tuple></presence>',
        ),
        (
            "application/dialog-info+xml",
            "rfc4235-participants.xml",
            b'<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" '
            b'entity="e"><dialog id="d"><state>trying</state><local/><remote/></dialog>'
            b"</dialog-info>",
        ),
        (
            "application/reginfo+xml",
            "rfc3680-two-contacts.xml",
            b'<reginfo xmlns="urn:ietf:params:xml:ns:reginfo" version="0" state="full">'
            b'<registration aor="a" id="r" state="active"><contact id="c" state="active" '
            b'event="created"><uri>sip:x</uri></contact></registration></reginfo>',
        ),
        (
            "application/simple-message-summary",
            "rfc3842-5.2.txt",
            b"Messages-Waiting: no\r\nVoice-Message: 0/0\r\n",
        ),
        ("message/sipfrag", "rfc3420-invite.sipfrag", b"SIP/2.0 100 Trying\r\nX: y"),
    ],
)
def test_to_dict_never_omits_a_key_what_the_body_did_not_say_is_null(
    content_type: str, full: str, sparse: bytes
) -> None:
    rich = parse_notify_body(content_type, (BODIES / full).read_bytes())
    poor = parse_notify_body(content_type, sparse)
    assert rich is not None and poor is not None
    assert _keys(poor.to_dict()) == _keys(rich.to_dict())
    assert None in _values(poor.to_dict())


def _values(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [v for item in value.values() for v in _values(item)]
    if isinstance(value, list):
        return [v for item in value for v in _values(item)]
    return [value]


@given(
    content_type=st.sampled_from([p.accept for p in PACKAGES.values()] + ["x/y", ""]),
    data=st.binary(max_size=1024),
)
@FUZZ
def test_fuzz_parse_notify_body_raises_only_parse_error(content_type: str, data: bytes) -> None:
    try:
        parsed = parse_notify_body(content_type, data)
    except ParseError:
        return
    if parsed is not None:
        json.dumps(parsed.to_dict())


# -- Event (RFC 6665 §8.2.1) ----------------------------------------------------------------


def test_parse_event_package_id_and_params() -> None:
    event = parse_event("presence.winfo ; id=a7 ;vendor=x;flag")
    assert event.package == "presence.winfo"
    assert event.templates == ("winfo",)
    assert event.id == "a7"
    assert event.params == {"id": "a7", "vendor": "x", "flag": None}
    assert event.to_dict() == {"package": "presence.winfo", "id": "a7", "params": event.params}


def test_parse_event_keeps_the_spelling_byte_by_byte_matching_needs() -> None:
    assert parse_event("Dialog").package == "Dialog"
    assert parse_event("message-summary").id is None


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("", "no event type"),
        ("  ;id=1", "no event type"),
        ("pres ence", "bad Event type"),
        ("presence..winfo", "bad Event type"),
        ("presence.", "bad Event type"),
        ("dialog;id", "bad Event id"),
        ('dialog;id="quoted"', "bad Event id"),
        ("dialog;=x", "parameter"),
    ],
)
def test_parse_event_refuses_a_bad_value(value: str, says: str) -> None:
    with pytest.raises(ParseError, match=says):
        parse_event(value)


# -- Subscription-State (RFC 6665 §4.1.3, §8.2.3) -------------------------------------------


def test_subscription_state_active_with_expires() -> None:
    state = parse_subscription_state("active;expires=3600")
    assert (state.state, state.expires, state.reason, state.retry_after) == (
        SubState.ACTIVE,
        3600,
        None,
        None,
    )


def test_subscription_state_terminated_with_reason_and_retry_after() -> None:
    state = parse_subscription_state("Terminated ; Reason=Probation ; retry-after=30")
    assert state.state is SubState.TERMINATED
    assert (state.reason, state.retry_after) == ("probation", 30)
    assert state.meaning == REASONS["probation"]
    assert state.to_dict() == {
        "state": "terminated",
        "state_text": "terminated",
        "expires": None,
        "reason": "probation",
        "retry_after": 30,
        "params": {"reason": "Probation", "retry-after": "30"},
    }


def test_subscription_state_every_rfc_reason_has_a_meaning() -> None:
    for reason in ("deactivated", "probation", "rejected", "timeout", "giveup", "noresource",
                   "invariant"):  # fmt: skip
        assert parse_subscription_state(f"terminated;reason={reason}").meaning


def test_subscription_state_extension_state_and_reason() -> None:
    state = parse_subscription_state("waiting;reason=something-new")
    assert (state.state, state.state_text, state.reason, state.meaning) == (
        SubState.OTHER,
        "waiting",
        "something-new",
        None,
    )
    assert parse_subscription_state("pending").state is SubState.PENDING


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("", "bad Subscription-State"),
        ("act ive", "bad Subscription-State"),
        ("active;expires=soon", "expires 'soon'"),
        ("active;expires", "expires None"),
        ("active;expires=12345678901", "delta-seconds"),
        ("terminated;retry-after=-1", "retry-after"),
        ("active;;", "parameter"),
    ],
)
def test_subscription_state_refuses_a_bad_value(value: str, says: str) -> None:
    with pytest.raises(ParseError, match=says):
        parse_subscription_state(value)


@given(value=st.text(max_size=80))
@FUZZ
def test_fuzz_headers_raise_only_parse_error(value: str) -> None:
    for parser in (parse_event, parse_subscription_state):
        with contextlib.suppress(ParseError):
            parser(value)


# -- refresh --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expires", "at"),
    [
        (3600, 3568.0),  # Timer F (32 s) before the end
        (600, 568.0),
        (64, 32.0),  # where both rules meet
        (60, 30.0),  # half-way: 32 s before would be 28 s
        (10, 5.0),
        (1, 0.5),
        (0, 0.0),
        (-5, 0.0),
    ],
)
def test_refresh_at_timer_f_before_expiry_or_half_way(expires: int, at: float) -> None:
    assert refresh_at(expires, 1000.0) == 1000.0 + at


def test_refresh_at_follows_the_timers_given() -> None:
    assert refresh_at(3600, 0.0, Timers(t1=0.25, t2=4.0)) == 3600 - 16


@given(expires=st.floats(0.001, 1e7), now=st.floats(0, 1e9))
@FUZZ
def test_refresh_at_is_always_before_expiry_and_after_now(expires: float, now: float) -> None:
    at = refresh_at(expires, now)
    assert now < at < now + expires or at == now + expires / 2
    assert now + expires - at <= Timers().f + 1e-6 or at <= now + expires / 2 + 1e-6
