"""invite-test: from a call's outcome to pass/fail, errors, and the Nagios line."""

from __future__ import annotations

from siptool.commands.invite_test import (
    CallResult,
    InviteOptions,
    Timings,
    _verdict,
    nagios_state,
)
from siptool.commands.sip_common import Expectation, SipSettings
from siptool.net.rtp import RtpStats
from siptool.sip.sdp_offer import parse_codec_list
from siptool.sip.target import parse_target

TARGET = parse_target("sip:bob@192.0.2.1")


def options(**kw: object) -> InviteOptions:
    return InviteOptions(TARGET, SipSettings(), parse_codec_list("PCMU"), **kw)  # type: ignore[arg-type]


def answered(**kw: object) -> CallResult:
    r = CallResult("sip:bob@192.0.2.1", final_status=200, final_reason="OK", answered=True)
    r.timings = Timings(ringing=20.0, answer=35.5, final=35.5, pdd=20.0)
    r.bye_status = 200
    for k, v in kw.items():
        setattr(r, k, v)
    return r


def test_answered_call_with_bye_200_passes() -> None:
    r = answered()
    _verdict(options(), r)
    assert r.passed and r.exit_code == 0 and r.errors == []


def test_far_end_hangup_passes() -> None:
    r = answered(bye_status="remote")
    _verdict(options(), r)
    assert r.exit_code == 0


def test_failed_bye_fails_the_call() -> None:
    r = answered(bye_status=481)
    _verdict(options(), r)
    assert r.exit_code == 1 and r.errors[0]["code"] == "bye_failed"


def test_one_way_audio_fails_the_call() -> None:
    r = answered(rtp=RtpStats(sent=50, received=0, verdict="one-way: nothing came back"))
    _verdict(options(rtp=True), r)
    assert r.exit_code == 1 and r.errors[0]["code"] == "one_way_audio"


def test_busy_fails_unless_expected() -> None:
    busy = CallResult("t", final_status=486, final_reason="Busy Here")
    _verdict(options(), busy)
    assert busy.exit_code == 1 and busy.errors[0]["code"] == "not_answered"
    expected = CallResult("t", final_status=486, final_reason="Busy Here")
    _verdict(options(expect=Expectation.parse("486")), expected)
    assert expected.exit_code == 0
    # --expect 486 and the call was answered instead: that is not what was asked for.
    r = answered()
    _verdict(options(expect=Expectation.parse("486")), r)
    assert r.exit_code == 1 and r.errors[0]["code"] == "unexpected_status"


def test_ring_test_passes_only_when_it_rang_and_the_cancel_took() -> None:
    rang = CallResult(
        "t", final_status=487, cancelled=True, rang=True, cancel_reason="ring-timeout"
    )
    _verdict(options(ring_timeout=1.0), rang)
    assert rang.exit_code == 0
    silent = CallResult("t", final_status=487, cancelled=True, cancel_reason="ring-timeout")
    _verdict(options(ring_timeout=1.0), silent)
    assert silent.exit_code == 1 and "no ringing" in silent.errors[0]["message"]
    # Cancelled at --timeout, not as a ring test: the call was not answered.
    late = CallResult("t", final_status=487, cancelled=True, rang=True, cancel_reason="timeout")
    _verdict(options(), late)
    assert late.exit_code == 1 and "not answered within" in late.errors[0]["message"]


def test_no_final_response_fails() -> None:
    r = CallResult("t")
    _verdict(options(), r)
    assert r.exit_code == 1


def test_nagios_ok_line_and_pdd_thresholds() -> None:
    r = answered()
    _verdict(options(), r)
    state, text, perf = nagios_state(r, 100.0, 200.0)
    assert state == 0
    assert text == "SIP OK - 200 OK from sip:bob@192.0.2.1, answered in 35.5 ms"
    assert perf == "pdd=20.0ms;100;200;0 answer=35.5ms"
    assert nagios_state(r, 10.0, 200.0)[0] == 1
    assert nagios_state(r, 10.0, 15.0)[0] == 2


def test_nagios_warning_on_a_warning_critical_on_failure_unknown_when_not_run() -> None:
    r = answered(warnings=["codec mismatch: ..."])
    _verdict(options(), r)
    assert nagios_state(r, None, None)[0] == 1
    busy = CallResult("t", final_status=486, final_reason="Busy Here")
    _verdict(options(), busy)
    state, text, perf = nagios_state(busy, None, None)
    assert state == 2 and text.startswith("SIP CRITICAL - 486 Busy Here from t")
    assert perf == "pdd=U;;;0 answer=U"
    not_run = CallResult("t", exit_code=3)
    not_run.error("bind_error", "cannot bind 127.0.0.1:5060")
    assert nagios_state(not_run, None, None) == (
        3,
        "SIP UNKNOWN - cannot bind 127.0.0.1:5060",
        "",
    )
