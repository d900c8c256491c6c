"""The NOTIFY/PUBLISH body parsers (PIDF, dialog-info, message-summary, reginfo, sipfrag) on
the RFCs' own examples and on what Kamailio and Asterisk send (tests/fixtures/event-bodies/),
on hostile input (each a ParseError saying what is wrong, never another exception), fuzzed
with hypothesis, and build_pidf round-tripped through parse_pidf."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siptool.errors import ParseError, UsageError
from siptool.sip.dialog_info import Blf, DialogState, Direction, parse_dialog_info
from siptool.sip.message_summary import parse_message_summary
from siptool.sip.pidf import Basic, build_pidf, parse_pidf
from siptool.sip.reginfo import ContactState, RegState, parse_reginfo
from siptool.sip.sipfrag import parse_sipfrag
from siptool.sip.xmlbody import MAX_BODY_BYTES, DocumentState, parse_xml
from tests.support.paths import FIXTURES

BODIES = FIXTURES / "event-bodies"
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PARSERS: dict[str, Callable[[bytes], Any]] = {
    "pidf": parse_pidf,
    "dialog-info": parse_dialog_info,
    "message-summary": parse_message_summary,
    "reginfo": parse_reginfo,
    "sipfrag": parse_sipfrag,
}
XML_PARSERS = {k: PARSERS[k] for k in ("pidf", "dialog-info", "reginfo")}
BodyParser = Callable[[bytes], Any]


def body(name: str) -> bytes:
    return (BODIES / name).read_bytes()


def error_of(parser: Callable[[bytes], Any], data: bytes) -> str:
    with pytest.raises(ParseError) as caught:
        parser(data)
    return str(caught.value)


# -- PIDF (RFC 3863, RFC 4479, RFC 4480) ----------------------------------------------------


def test_pidf_rfc3863_minimal_example_with_a_prefix_reads_like_the_default_namespace() -> None:
    presence = parse_pidf(body("rfc3863-3.4-prefixed.xml"))
    assert presence.entity == "pres:someone@example.com"
    [t] = presence.tuples
    assert (t.id, t.basic, t.contact) == ("sg89ae", Basic.OPEN, "tel:+09012345678")
    assert presence.basic is Basic.OPEN
    assert presence.summary() == "open"


def test_pidf_rfc3863_example_keeps_tuples_notes_timestamp_and_skips_extensions() -> None:
    presence = parse_pidf(body("rfc3863-6-example.xml"))
    first, second = presence.tuples
    assert first.id == "bs35r9" and first.basic is Basic.OPEN
    assert first.contact == "im:someone@mobilecarrier.net"
    assert first.notes == ("Don't Disturb Please!", "Ne dérangez pas, s'il vous plaît")
    assert first.timestamp == "2001-10-27T16:49:29Z"
    assert second.contact == "mailto:someone@example.com" and second.notes == ()
    assert presence.notes == ("I'll be in Tokyo next week",)
    assert presence.summary() == "open: I'll be in Tokyo next week"


def test_pidf_rfc4480_person_gives_activities_and_its_note_not_the_devices() -> None:
    presence = parse_pidf(body("rfc4480-rpid.xml"))
    assert presence.activities == ("away",)  # <rpid:note> inside activities is no activity
    assert presence.notes == ("Scoring 120",)  # the device's "PC" note is not the person's
    assert presence.summary() == "open: Scoring 120"


def test_pidf_kamailio_dummy_document_says_available_once() -> None:
    presence = parse_pidf(body("kamailio-presence-dummy.xml"))
    assert presence.entity == "sip:alice@127.0.0.1"
    assert presence.notes == ("Available",)
    assert presence.activities == ()
    assert presence.summary() == "open: Available"


def test_pidf_kamailio_offline_body_is_closed() -> None:
    presence = parse_pidf(body("kamailio-presence-offline.xml"))
    assert presence.basic is Basic.CLOSED
    assert presence.summary() == "closed"


def test_pidf_asterisk_on_the_phone() -> None:
    presence = parse_pidf(body("asterisk-pidf-on-the-phone.xml"))
    assert presence.activities == ("on-the-phone",)
    assert presence.summary() == "open: On the phone"


def test_pidf_activities_speak_when_there_is_no_note() -> None:
    doc = (
        b'<presence xmlns="urn:ietf:params:xml:ns:pidf" '
        b'xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" '
        b'xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:a@b">'
        b'<tuple id="t"><status><basic>open</basic></status></tuple>'
        b"<dm:person><rpid:activities><rpid:on-the-phone/><rpid:other>lunch</rpid:other>"
        b"</rpid:activities></dm:person></presence>"
    )
    presence = parse_pidf(doc)
    assert presence.activities == ("on-the-phone", "lunch")
    assert presence.summary() == "open: on the phone, lunch"


def test_pidf_open_when_any_tuple_is_open_and_unknown_without_basic() -> None:
    def doc(*states: str) -> bytes:
        tuples = "".join(
            f'<tuple id="t{i}"><status>{f"<basic>{s}</basic>" if s else ""}</status></tuple>'
            for i, s in enumerate(states)
        )
        return (
            f'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b">{tuples}</presence>'
        ).encode()

    assert parse_pidf(doc("closed", " OPEN ")).basic is Basic.OPEN
    assert parse_pidf(doc("closed", "")).basic is Basic.CLOSED
    assert parse_pidf(doc("")).basic is None
    assert parse_pidf(doc("")).summary() == "unknown"
    assert parse_pidf(doc()).to_dict()["tuples"] == []


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        (b'<presence xmlns="urn:ietf:params:xml:ns:pidf"/>', "without its entity attribute"),
        (
            b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="x">'
            b"<tuple><status/></tuple></presence>",
            "<tuple> without its id attribute",
        ),
        (
            b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="x">'
            b'<tuple id="a"><contact>sip:x</contact></tuple></presence>',
            "tuple 'a' without its <status>",
        ),
        (
            b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="x">'
            b'<tuple id="a"><status><basic>busy</basic></status></tuple></presence>',
            "<basic> 'busy' is neither open nor closed",
        ),
        (b'<presence entity="x"/>', "<presence> is in no namespace"),
        (
            b'<presence xmlns="urn:ietf:params:xml:ns:dialog-info" entity="x"/>',
            "'urn:ietf:params:xml:ns:dialog-info', expected 'urn:ietf:params:xml:ns:pidf'",
        ),
        (b'<dialog-info xmlns="urn:ietf:params:xml:ns:pidf"/>', "expected <presence>"),
    ],
)
def test_pidf_missing_required_parts_and_wrong_namespace_are_named(doc: bytes, says: str) -> None:
    message = error_of(parse_pidf, doc)
    assert says in message
    assert "line 1" in message


def test_build_pidf_round_trips_escaped_text() -> None:
    note = 'On a call <with> "Bob" & co — ünïcode'
    data = build_pidf("sip:alice@example.com", Basic.CLOSED, note, "t1", contact="sip:a@h;x=<1>")
    presence = parse_pidf(data)
    assert presence.entity == "sip:alice@example.com"
    [t] = presence.tuples
    assert (t.id, t.basic, t.notes, t.contact) == ("t1", Basic.CLOSED, (note,), "sip:a@h;x=<1>")
    assert presence.summary() == f"closed: {note}"
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')


def test_build_pidf_attribute_quotes_and_newlines_survive() -> None:
    entity = "sip:o'brien@example.com\"x"
    assert parse_pidf(build_pidf(entity, Basic.OPEN)).entity == entity


@given(
    entity=st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1),
    note=st.one_of(st.none(), st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]))),
    status=st.sampled_from(list(Basic)),
)
@FUZZ
def test_build_pidf_round_trips_any_text_xml_can_carry(
    entity: str, note: str | None, status: Basic
) -> None:
    try:
        data = build_pidf(entity, status, note)
    except UsageError as exc:
        assert "which an XML document cannot carry" in str(exc)
        return
    presence = parse_pidf(data)
    if entity.strip():
        assert presence.entity == entity.strip()
    [t] = presence.tuples
    assert t.basic is status
    # XML normalises CR and CRLF to LF (XML 1.0 §2.11); element text is stripped here.
    expected = None if note is None else note.replace("\r\n", "\n").replace("\r", "\n").strip()
    assert t.notes == (() if not expected else (expected,))


def test_build_pidf_refuses_a_nul_and_a_bad_tuple_id() -> None:
    with pytest.raises(UsageError, match="U\\+0000"):
        build_pidf("sip:a@b", Basic.OPEN, "bad\x00note")
    with pytest.raises(UsageError, match="not an XML name"):
        build_pidf("sip:a@b", Basic.OPEN, tuple_id="1abc")


# -- dialog-info (RFC 4235) -----------------------------------------------------------------


def test_dialog_info_rfc4235_flow_early_confirmed_terminated() -> None:
    early = parse_dialog_info(body("rfc4235-early.xml"))
    assert (early.entity, early.version, early.state) == (
        "sip:alice@example.com",
        0,
        DocumentState.FULL,
    )
    [d] = early.dialogs
    assert (d.id, d.call_id, d.local_tag, d.remote_tag) == (
        "as7d900as8",
        "a84b4c76e66710",
        "1928301774",
        "456887766",
    )
    assert d.direction is Direction.INITIATOR and d.state is DialogState.EARLY
    assert early.blf is Blf.BUSY  # our own call ringing elsewhere: busy, not "ringing"

    confirmed = parse_dialog_info(body("rfc4235-confirmed-partial.xml"))
    assert confirmed.state is DocumentState.PARTIAL and confirmed.version == 1
    assert confirmed.summary() == "dialog as7d900as8 confirmed (busy)"

    ended = parse_dialog_info(body("rfc4235-terminated-partial.xml"))
    [d] = ended.dialogs
    assert (d.state, d.event, d.code) == (DialogState.TERMINATED, "remote-bye", None)
    assert ended.blf is Blf.IDLE

    state = early.merged(confirmed)
    assert state.state is DocumentState.FULL and state.blf is Blf.BUSY and state.version == 1
    state = state.merged(ended)
    assert state.blf is Blf.IDLE and len(state.dialogs) == 1


def test_dialog_info_participants_duration_and_rejected_code() -> None:
    info = parse_dialog_info(body("rfc4235-participants.xml"))
    call, rejected = info.dialogs
    assert call.duration == 274
    assert call.local is not None and call.remote is not None
    assert (call.local.identity, call.local.display_name, call.local.target) == (
        "sip:alice@example.com",
        "Alice",
        "sip:alice@pc33.example.com",
    )
    assert call.remote.target == "sip:bobster@phone21.example.org"
    assert (rejected.event, rejected.code, rejected.direction) == (
        "rejected",
        486,
        Direction.RECIPIENT,
    )
    assert rejected.local is None
    assert info.summary() == "2 dialogs: as7d900as8 confirmed, zxcvbnm3 terminated (busy)"


def test_dialog_info_kamailio_incoming_call_is_ringing() -> None:
    info = parse_dialog_info(body("kamailio-dialoginfo-ringing.xml"))
    [d] = info.dialogs
    assert d.remote is not None and d.remote.identity == "sip:alice@127.0.0.1"
    assert d.remote.target == "sip:alice@127.0.0.1:5070"
    assert info.blf is Blf.RINGING
    assert info.summary() == "dialog c8f2a1d0-6c8e-4b1e-9f4e-2d3c4b5a6978 early (ringing)"


def test_dialog_info_kamailio_dummy_and_empty_document_are_idle() -> None:
    assert parse_dialog_info(body("kamailio-dialoginfo-dummy.xml")).blf is Blf.IDLE
    empty = parse_dialog_info(body("dialoginfo-idle-empty.xml"))
    assert empty.dialogs == () and empty.version == 7
    assert empty.summary() == "no dialogs (idle)"


def test_dialog_info_ringing_wins_over_a_confirmed_call() -> None:
    doc = (
        b'<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="4" state="full" '
        b'entity="sip:a@b"><dialog id="1"><state>confirmed</state></dialog>'
        b'<dialog id="2" direction="recipient"><state>early</state></dialog></dialog-info>'
    )
    assert parse_dialog_info(doc).blf is Blf.RINGING


@pytest.mark.parametrize(
    ("attrs", "inner", "says"),
    [
        ('state="full" entity="sip:a@b"', "", "without its version attribute"),
        ('version="x" state="full" entity="sip:a@b"', "", "version 'x' is not a 32-bit"),
        ('version="4294967296" state="full" entity="s"', "", "is not a 32-bit unsigned"),
        ('version="1" entity="sip:a@b"', "", "without its state attribute"),
        ('version="1" state="some" entity="sip:a@b"', "", "neither full nor partial"),
        ('version="1" state="full"', "", "without its entity attribute"),
        ('version="1" state="full" entity="s"', "<dialog><state>early</state></dialog>", "id"),
        ('version="1" state="full" entity="s"', '<dialog id="x"/>', "without its <state>"),
        (
            'version="1" state="full" entity="s"',
            '<dialog id="x"><state>ringing</state></dialog>',
            "dialog state 'ringing' is not one of trying, proceeding",
        ),
        (
            'version="1" state="full" entity="s"',
            '<dialog id="x" direction="up"><state>early</state></dialog>',
            "direction 'up'",
        ),
        (
            'version="1" state="full" entity="s"',
            '<dialog id="x"><state code="4x6">terminated</state></dialog>',
            "code '4x6' is not a number",
        ),
    ],
)
def test_dialog_info_broken_documents_are_named(attrs: str, inner: str, says: str) -> None:
    doc = f'<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" {attrs}>{inner}</dialog-info>'
    assert says in error_of(parse_dialog_info, doc.encode())


# -- message-summary (RFC 3842) -------------------------------------------------------------


def test_message_summary_rfc3842_example() -> None:
    summary = parse_message_summary(body("rfc3842-5.2.txt"))
    assert summary.waiting is True
    assert summary.account == "sip:alice@vmail.example.com"
    [voice] = summary.messages
    assert (voice.context_class, voice.new, voice.old, voice.urgent_new, voice.urgent_old) == (
        "voice-message",
        2,
        8,
        0,
        2,
    )
    assert summary.optional_headers == 0
    assert summary.summary() == "2 new, 8 old voice messages (waiting)"


def test_message_summary_optional_headers_are_counted_not_read() -> None:
    summary = parse_message_summary(body("rfc3842-optional-headers.txt"))
    assert summary.optional_headers == 12
    assert summary.summary() == "4 new (1 urgent), 8 old voice messages (waiting)"


def test_message_summary_asterisk_nothing_waiting() -> None:
    summary = parse_message_summary(body("asterisk-mwi-none.txt"))
    assert summary.waiting is False and summary.account == "sip:*97@192.0.2.10"
    assert summary.summary() == "0 new, 0 old voice messages (not waiting)"


def test_message_summary_is_lenient_about_case_spacing_and_line_ends() -> None:
    summary = parse_message_summary(body("loose-mwi.txt"))
    assert summary.waiting is True and summary.account == "sip:alice@127.0.0.1"
    voice, fax = summary.messages
    assert (voice.new, voice.old, voice.urgent_new) == (3, 1, None)
    assert (fax.context_class, fax.new, fax.urgent_new) == ("fax-message", 1, 1)
    assert summary.summary() == (
        "3 new, 1 old voice messages; 1 new (1 urgent), 0 old fax messages (waiting)"
    )


def test_message_summary_without_counts_and_with_unknown_lines() -> None:
    summary = parse_message_summary(b"Messages-Waiting: no\r\nX-Vendor: hello\r\n")
    assert summary.messages == () and summary.other_lines == 1
    assert summary.summary() == "no messages waiting"
    assert parse_message_summary(b"Messages-Waiting: yes").summary() == "messages waiting"


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"Message-Account: sip:a@b\r\nVoice-Message: 1/2\r\n", "no Messages-Waiting line"),
        (b"Voice-Message: 1/2\r\n\r\nMessages-Waiting: yes\r\n", "no Messages-Waiting line"),
        (b"Messages-Waiting: maybe\r\n", "Messages-Waiting 'maybe' on line 1 is neither"),
        ("Messages-Waiting: \u2028yes".encode(), "is neither yes nor no"),
        (b"Messages-Waiting: yes\r\nVoice-Message: lots\r\n", "voice-message 'lots' on line 2"),
        (b"Messages-Waiting: yes\r\nVoice-Message: 1/\xd9\xa3\r\n", "voice-message"),
        (b"Messages-Waiting: yes\r\nthis is not a header\r\n", "line 2 is not 'Name: value'"),
    ],
)
def test_message_summary_broken_bodies_are_named(data: bytes, says: str) -> None:
    assert says in error_of(parse_message_summary, data)


# -- reginfo (RFC 3680) ---------------------------------------------------------------------


def test_reginfo_rfc3680_flow_init_then_registered() -> None:
    init = parse_reginfo(body("rfc3680-init.xml"))
    [reg] = init.registrations
    assert (reg.aor, reg.id, reg.state, reg.contacts) == (
        "sip:joe@example.com",
        "a7",
        RegState.INIT,
        (),
    )
    assert init.summary() == "sip:joe@example.com init"

    registered = parse_reginfo(body("rfc3680-registered-partial.xml"))
    assert registered.state is DocumentState.PARTIAL and registered.version == 1
    [contact] = registered.registrations[0].contacts
    assert (contact.id, contact.state, contact.event, contact.duration_registered) == (
        "76",
        ContactState.ACTIVE,
        "registered",
        0,
    )
    assert registered.summary() == (
        "sip:joe@example.com active, 1 active contact: sip:joe@pc34.example.com (registered)"
    )


def test_reginfo_rfc3680_two_contacts_display_name_and_extension_element() -> None:
    info = parse_reginfo(body("rfc3680-two-contacts.xml"))
    active, expired = info.registrations[0].contacts
    assert (active.q, active.display_name, active.uri) == (
        "0.8",
        "User at the office",
        "sip:user@pc887.example.com",
    )
    assert (expired.state, expired.event) == (ContactState.TERMINATED, "expired")
    assert info.summary() == (
        "sip:user@example.com active, 1 active contact: sip:user@pc887.example.com (registered)"
    )


def test_reginfo_kamailio_unknown_event_and_negative_expires() -> None:
    info = parse_reginfo(body("kamailio-reginfo.xml"))
    created, gone = info.registrations[0].contacts
    assert (created.event, created.expires, created.q) == ("created", 3600, "1.000")
    assert (gone.event, gone.expires, gone.state) == ("unknown", 0, ContactState.TERMINATED)


@pytest.mark.parametrize(
    ("inner", "says"),
    [
        ('<registration id="1" state="active"/>', "<registration> without its aor"),
        ('<registration aor="sip:a@b" id="1" state="busy"/>', "state 'busy' is not one of init"),
        (
            '<registration aor="a" id="1" state="active"><contact id="c" state="active" '
            'event="registered"/></registration>',
            "<contact> without its <uri>",
        ),
        (
            '<registration aor="a" id="1" state="active"><contact id="c" state="active">'
            "<uri>sip:x</uri></contact></registration>",
            "<contact> without its event attribute",
        ),
        (
            '<registration aor="a" id="1" state="active"><contact id="c" state="active" '
            'event="registered" expires="soon"><uri>sip:x</uri></contact></registration>',
            "expires 'soon' is not a number of seconds",
        ),
    ],
)
def test_reginfo_broken_documents_are_named(inner: str, says: str) -> None:
    head = '<reginfo xmlns="urn:ietf:params:xml:ns:reginfo" version="0" state="full">'
    doc = f"{head}{inner}</reginfo>"
    assert says in error_of(parse_reginfo, doc.encode())


# -- sipfrag (RFC 3420, RFC 3515) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "reason", "summary"),
    [
        ("rfc3515-trying.sipfrag", 100, "Trying", "transfer in progress: 100 Trying"),
        ("rfc3515-ok-no-crlf.sipfrag", 200, "OK", "transfer target answered 200 OK"),
        ("rfc3420-declined.sipfrag", 603, "Declined", "transfer failed: 603 Declined"),
        ("lf-ringing-with-headers.sipfrag", 180, "Ringing", "transfer in progress: 180 Ringing"),
    ],
)
def test_sipfrag_status_lines(name: str, status: int, reason: str, summary: str) -> None:
    frag = parse_sipfrag(body(name))
    assert (frag.status, frag.reason, frag.method) == (status, reason, None)
    assert frag.summary() == summary
    assert frag.is_final is (status >= 200)
    assert frag.succeeded is (200 <= status < 300)


def test_sipfrag_headers_after_the_status_line() -> None:
    frag = parse_sipfrag(body("lf-ringing-with-headers.sipfrag"))
    assert frag.headers == (("Contact", "<sip:carol@127.0.0.1:5072>"), ("Content-Length", "0"))


def test_sipfrag_request_fragment_with_body() -> None:
    frag = parse_sipfrag(body("rfc3420-invite.sipfrag"))
    assert (frag.status, frag.method, frag.request_uri) == (None, "INVITE", "sip:alice@atlanta.com")
    assert frag.body_length == 61
    assert frag.summary() == "sipfrag INVITE sip:alice@atlanta.com"


def test_sipfrag_headers_alone() -> None:
    frag = parse_sipfrag(body("rfc3420-headers-only.sipfrag"))
    assert frag.status is None and frag.method is None
    names = [name for name, _ in frag.headers]
    assert names == ["From", "To", "Contact", "Date", "Call-ID", "CSeq"]
    assert frag.summary() == "sipfrag of 6 headers"


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"SIP/2.0 99 Odd\r\n", "bad status code '99'"),
        (b"SIP/2.0 700 Odd\r\n", "status code 700 is outside 100-699"),
        (b"hello there\r\n", "'hello there' is neither a SIP start line nor a header"),
        (b"SIP/2.0 200 OK\r\nContent-Length: 40\r\n\r\nshort", "Content-Length is more than"),
        (b"SIP/2.0 200 OK\r\nbad header line\r\n", "header line without ':'"),
        (b"\r\n \r\n", "the fragment is empty"),
    ],
)
def test_sipfrag_broken_fragments_are_named(data: bytes, says: str) -> None:
    assert says in error_of(parse_sipfrag, data)


# -- hostile input, every parser ------------------------------------------------------------

BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    b' <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n]>\n'
    b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="&lol2;"/>'
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?>\n<!DOCTYPE presence [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="&xxe;"/>'
)


@pytest.mark.parametrize("parser", XML_PARSERS.values(), ids=XML_PARSERS.keys())
@pytest.mark.parametrize("doc", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["laughs", "xxe"])
def test_a_doctype_with_entities_is_refused_with_its_position(
    parser: Callable[[bytes], Any], doc: bytes
) -> None:
    message = error_of(parser, doc)
    assert "a DOCTYPE is refused" in message
    assert "at line 2, column " in message


@pytest.mark.parametrize("parser", XML_PARSERS.values(), ids=XML_PARSERS.keys())
def test_truncated_xml_says_where(parser: Callable[[bytes], Any]) -> None:
    data = body("rfc3863-6-example.xml")[:300]
    message = error_of(parser, data)
    assert "unclosed token" in message or "no element found" in message
    assert "line " in message and "column " in message


def test_an_undefined_entity_and_an_unbound_prefix_are_parse_errors() -> None:
    assert "undefined entity" in error_of(
        parse_pidf, b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="&x;"/>'
    )
    assert "unbound prefix" in error_of(parse_pidf, b'<p:presence entity="x"/>')


@pytest.mark.parametrize("parser", PARSERS.values(), ids=PARSERS.keys())
def test_a_body_over_the_cap_is_refused_before_parsing(parser: Callable[[bytes], Any]) -> None:
    data = b"<a>" + b"x" * (1024 * 1024) + b"</a>"
    assert f"over the {MAX_BODY_BYTES // 1024} KiB" in error_of(parser, data)


@pytest.mark.parametrize("parser", PARSERS.values(), ids=PARSERS.keys())
@pytest.mark.parametrize(
    "data",
    [
        b"\x00\xff\xfe\x01garbage\x80\x81",
        bytes(range(256)),
        b"\xef\xbb\xbf",
        b"<",
        b"SIP/2.0",
        b"\x1f\x8b\x08\x00compressed",
    ],
)
def test_binary_garbage_is_a_parse_error(parser: Callable[[bytes], Any], data: bytes) -> None:
    message = error_of(parser, data)
    assert message.startswith(("bad ", "byte "))
    message.encode("utf-8")  # printable on a strict UTF-8 stderr


def test_deep_nesting_is_refused() -> None:
    data = b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="x">' + b"<a>" * 100
    assert "nested over 64 deep" in error_of(parse_pidf, data)


def test_an_encoding_python_has_no_codec_for_is_a_parse_error() -> None:
    data = b'<?xml version="1.0" encoding="x-klingon"?><presence/>'
    assert "unknown encoding" in error_of(parse_pidf, data)


def test_utf16_bodies_parse() -> None:
    data = body("rfc3863-3.4-prefixed.xml").decode().replace("UTF-8", "UTF-16").encode("utf-16")
    assert parse_pidf(data).entity == "pres:someone@example.com"


def test_leading_blank_lines_are_skipped_and_lines_still_count_from_the_body() -> None:
    message = error_of(parse_pidf, b'\r\n\r\n<?xml version="1.0"?>\n<presence/>')
    assert "at line 4" in message


def test_xml_element_text_is_its_own_character_data() -> None:
    root = parse_xml(b"<a xmlns='urn:x'> one <b>two</b> three <![CDATA[<four>]]></a>", "test")
    assert root.text == "one  three <four>"
    assert root.find("b", "urn:x") is not None and root.find("b", "urn:y") is None


def test_every_fixture_parses_and_its_dict_is_json() -> None:
    by_suffix: dict[str, BodyParser] = {
        ".txt": parse_message_summary,
        ".sipfrag": parse_sipfrag,
    }
    by_root: dict[bytes, BodyParser] = {
        b"presence ": parse_pidf,
        b"<dialog-info": parse_dialog_info,
        b"<reginfo": parse_reginfo,
    }
    count = 0
    for path in sorted(BODIES.iterdir()):
        if path.suffix == ".md":
            continue
        data = path.read_bytes()
        parser = by_suffix.get(path.suffix) or next(p for k, p in by_root.items() if k in data)
        parsed = parser(data)
        json.dumps(parsed.to_dict(), ensure_ascii=False).encode("utf-8")
        assert "\n" not in parsed.summary()
        count += 1
    assert count >= 25


@pytest.mark.parametrize("parser", PARSERS.values(), ids=PARSERS.keys())
@given(data=st.binary(max_size=2048))
@FUZZ
def test_fuzz_bytes_only_parse_error_escapes(parser: Callable[[bytes], Any], data: bytes) -> None:
    try:
        parsed = parser(data)
    except ParseError as exc:
        str(exc).encode("utf-8")
        return
    json.dumps(parsed.to_dict())
    parsed.summary()


SEEDS = [p.read_bytes() for p in sorted(BODIES.iterdir()) if p.suffix != ".md"]


@pytest.mark.parametrize("parser", PARSERS.values(), ids=PARSERS.keys())
@given(
    seed=st.sampled_from(SEEDS),
    cut=st.integers(0, 4000),
    insert=st.text(max_size=12),
    at=st.integers(0, 4000),
)
@FUZZ
def test_fuzz_mutated_samples_only_parse_error_escapes(
    parser: Callable[[bytes], Any], seed: bytes, cut: int, insert: str, at: int
) -> None:
    mutated = seed[:at] + insert.encode("utf-8", "surrogatepass") + seed[at:cut]
    try:
        parsed = parser(mutated)
    except ParseError as exc:
        str(exc).encode("utf-8")
        return
    json.dumps(parsed.to_dict())
    parsed.summary()
