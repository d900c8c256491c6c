"""invite-test: from a call's outcome to pass/fail, errors, and the Nagios line."""

from __future__ import annotations

from siptool.commands.invite_test import (
    ByeOutcome,
    CallResult,
    CancelReason,
    InviteOptions,
    Timings,
    judge,
    nagios_verdict,
)
from siptool.commands.nagios import Thresholds
from siptool.commands.sip_common import Expectation, SipSettings
from siptool.errors import ExitCode, InputError, SiptoolError
from siptool.net.rtp import RtpStats
from siptool.sip.sdp_offer import parse_codec_list
from siptool.sip.target import parse_target

TARGET = parse_target("sip:bob@192.0.2.1")


def options(**kw: object) -> InviteOptions:
    return InviteOptions(TARGET, SipSettings(), tuple(parse_codec_list("PCMU")), **kw)  # type: ignore[arg-type]


def answered(**kw: object) -> CallResult:
    r = CallResult("sip:bob@192.0.2.1", final_status=200, final_reason="OK", answered=True)
    r.timings = Timings(ringing=20.0, answer=35.5, final=35.5, pdd=20.0)
    r.bye, r.bye_response = ByeOutcome.ANSWERED, 200
    for k, v in kw.items():
        setattr(r, k, v)
    return r


def nagios_state(
    result: CallResult, warning_ms: float | None, critical_ms: float | None
) -> tuple[int, str, str]:
    verdict = nagios_verdict(result, Thresholds(warning_ms, critical_ms))
    return int(verdict.state), verdict.summary, verdict.perfdata


def test_answered_call_with_bye_200_passes() -> None:
    r = answered()
    judge(options(), r)
    assert r.passed and r.exit_code == 0 and r.errors == []


def test_far_end_hangup_passes() -> None:
    r = answered(bye=ByeOutcome.REMOTE, bye_response=None)
    judge(options(), r)
    assert r.exit_code == 0


def test_failed_bye_fails_the_call() -> None:
    r = answered(bye_response=481)
    judge(options(), r)
    assert r.exit_code == 1 and r.errors[0].code == "bye_failed"


def test_bye_status_in_json_is_the_status_remote_or_null() -> None:
    assert answered().to_dict()["bye_status"] == 200
    assert answered(bye=ByeOutcome.REMOTE).to_dict()["bye_status"] == "remote"
    # A 401 to the BYE, then nothing after the credentials: the last status answered.
    assert answered(bye_response=401).to_dict()["bye_status"] == 401
    assert answered(bye=ByeOutcome.NOT_ENDED, bye_response=None).to_dict()["bye_status"] is None
    assert CallResult("t").to_dict()["bye_status"] is None


def test_one_way_audio_fails_the_call() -> None:
    r = answered(rtp=RtpStats(sent=50, received=0, verdict="one-way: nothing came back"))
    judge(options(rtp=True), r)
    assert r.exit_code == 1 and r.errors[0].code == "one_way_audio"
    assert r.rtp_ok is False and answered().rtp_ok is None


def test_busy_fails_unless_expected() -> None:
    busy = CallResult("t", final_status=486, final_reason="Busy Here")
    judge(options(), busy)
    assert busy.exit_code == 1 and busy.errors[0].code == "not_answered"
    expected = CallResult("t", final_status=486, final_reason="Busy Here")
    judge(options(expect=Expectation.parse("486")), expected)
    assert expected.exit_code == 0
    # --expect 486 and the call was answered instead: that is not what was asked for.
    r = answered()
    judge(options(expect=Expectation.parse("486")), r)
    assert r.exit_code == 1 and r.errors[0].code == "unexpected_status"


def test_ring_test_passes_only_when_it_rang_and_the_cancel_took() -> None:
    ring = CancelReason.RING_TIMEOUT
    rang = CallResult("t", final_status=487, cancelled=True, rang=True, cancel_reason=ring)
    judge(options(ring_timeout=1.0), rang)
    assert rang.exit_code == 0
    silent = CallResult("t", final_status=487, cancelled=True, cancel_reason=ring)
    judge(options(ring_timeout=1.0), silent)
    assert silent.exit_code == 1 and "no ringing" in silent.errors[0].message
    # Cancelled at --timeout, not as a ring test: the call was not answered.
    late = CallResult(
        "t", final_status=487, cancelled=True, rang=True, cancel_reason=CancelReason.TIMEOUT
    )
    judge(options(), late)
    assert late.exit_code == 1 and "not answered within" in late.errors[0].message
    assert late.to_dict()["cancel_reason"] == "timeout"


def test_no_final_response_fails() -> None:
    r = CallResult("t")
    judge(options(), r)
    assert r.exit_code == 1


def test_unreadable_password_file_means_the_check_could_not_run() -> None:
    r = CallResult("t", final_status=401, final_reason="Unauthorized")
    r.errors = [
        InputError("cannot read --password-file /nope: No such file or directory"),
        SiptoolError("401 Unauthorized: credentials needed", code="auth_required"),
    ]
    judge(options(), r)
    assert r.exit_code is ExitCode.NOT_RUN and r.errors[0].code == "input_error"
    state, text, _ = nagios_state(r, None, None)
    assert state == 3 and text.startswith("SIP UNKNOWN - cannot read --password-file /nope")


def test_nagios_ok_line_and_pdd_thresholds() -> None:
    r = answered()
    judge(options(), r)
    state, text, perf = nagios_state(r, 100.0, 200.0)
    assert state == 0
    assert text == "SIP OK - 200 OK from sip:bob@192.0.2.1, answered in 35.5 ms"
    assert perf == "pdd=20.0ms;100;200;0 answer=35.5ms"
    assert nagios_state(r, 10.0, 200.0)[0] == 1
    assert nagios_state(r, 10.0, 15.0)[0] == 2


def test_nagios_warning_on_a_warning_critical_on_failure_unknown_when_not_run() -> None:
    r = answered(warnings=["codec mismatch: ..."])
    judge(options(), r)
    assert nagios_state(r, None, None)[0] == 1
    busy = CallResult("t", final_status=486, final_reason="Busy Here")
    judge(options(), busy)
    state, text, perf = nagios_state(busy, None, None)
    assert state == 2 and text.startswith("SIP CRITICAL - 486 Busy Here from t")
    assert perf == "pdd=U;;;0 answer=U"
    not_run = CallResult("t", exit_code=ExitCode.NOT_RUN)
    not_run.error("bind_error", "cannot bind 127.0.0.1:5060")
    assert nagios_state(not_run, None, None) == (
        3,
        "SIP UNKNOWN - cannot bind 127.0.0.1:5060",
        "",
    )
