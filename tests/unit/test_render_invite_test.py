"""render/invite_test.py in-process, on results built by hand: it draws what the command
decided (passed, the exit code, the errors, the media check, the Nagios verdict of
commands/invite_test.py) and nothing else."""

from __future__ import annotations

import json

from siptool.commands.invite_test import (
    ByeOutcome,
    CallEvent,
    CallResult,
    CancelReason,
    Direction,
    Timings,
)
from siptool.commands.nagios import NagiosState, NagiosVerdict
from siptool.commands.sip_common import NatView
from siptool.errors import ExitCode, LocalBindError, SiptoolError
from siptool.net.rtp import RtpStats
from siptool.render.invite_test import InviteRenderer
from siptool.render.output import OutputMode
from siptool.sip.auth import AuthReport
from siptool.sip.sdp_offer import AnswerSummary
from tests.support.render import drawn

KEYS = [
    "command", "ok", "exit_code", "siptool_version", "errors", "target", "resolved", "call_id",
    "final_status", "final_reason", "answered", "timings_ms", "cancelled", "cancel_reason",
    "cancel_status", "bye_status", "hold_ms", "ack_retransmissions", "sdp_answer", "rtp",
    "warnings", "nat", "tls", "auth", "server", "events", "transfer",
]  # fmt: skip


def answered(**changes: object) -> CallResult:
    """A call answered after 180 Ringing, held 2 s, ended by our BYE's 200."""
    result = CallResult(
        "sip:bob@pbx.test",
        transport="udp",
        address="192.0.2.10:5060",
        call_id="abc123@siptool.invalid",
        final_status=200,
        final_reason="OK",
        answered=True,
        rang=True,
        timings=Timings(ringing=20.0, answer=35.5, final=35.5, pdd=20.0),
        bye=ByeOutcome.ANSWERED,
        bye_response=200,
        hold_ms=2004.0,
        sdp_answer=AnswerSummary(["PCMU/8000"], "192.0.2.20", 4000, "sendrecv"),
        nat=NatView(local="192.0.2.1:5070", reflexive="192.0.2.1:5070"),
        auth=AuthReport("Digest", "MD5", None, 1),
        server="Asterisk PBX",
        events=[
            CallEvent(0.0, Direction.SEND, "INVITE"),
            CallEvent(20.0, Direction.RECV, "180 Ringing (INVITE)"),
            CallEvent(35.5, Direction.RECV, "200 OK (INVITE)"),
            CallEvent(36.0, Direction.SEND, "ACK"),
        ],
        passed=True,
        exit_code=ExitCode.OK,
    )
    for name, value in changes.items():
        setattr(result, name, value)
    return result


def busy() -> CallResult:
    result = CallResult(
        "sip:bob@pbx.test",
        final_status=486,
        final_reason="Busy Here",
        timings=Timings(trying=3.0, final=40.0, pdd=40.0),
        exit_code=ExitCode.FAILED,
    )
    result.errors = [SiptoolError("call not answered: 486 Busy Here", code="not_answered")]
    return result


def draw(result: CallResult, mode: OutputMode, *, quiet: bool = False) -> tuple[str, str]:
    return drawn("invite-test", InviteRenderer, result, mode, quiet=quiet)


def row(out: str, label: str) -> str:
    """The value of the summary table's ``label`` row."""
    line = next(line for line in out.splitlines() if line.startswith(label + " "))
    return line[len(label) :].strip()


def test_json_is_one_line_with_the_contract_keys() -> None:
    out, err = draw(answered(), OutputMode.JSON)
    assert out.count("\n") == 1
    doc = json.loads(out)
    assert list(doc) == KEYS
    assert doc["ok"] is True and doc["exit_code"] == 0 and doc["errors"] == []
    assert doc["bye_status"] == 200 and doc["cancel_reason"] is None
    assert doc["resolved"] == {"transport": "udp", "address": "192.0.2.10:5060"}
    assert doc["sdp_answer"]["media_address"] == "192.0.2.20:4000"
    ringing = {"t_ms": 20.0, "direction": "recv", "message": "180 Ringing (INVITE)"}
    assert doc["events"][1] == ringing
    assert err == ""


def test_json_keeps_the_bye_status_values_scripts_read() -> None:
    remote = json.loads(draw(answered(bye=ByeOutcome.REMOTE), OutputMode.JSON)[0])
    assert remote["bye_status"] == "remote"
    unanswered = answered(bye=ByeOutcome.NOT_ENDED, bye_response=None)
    assert json.loads(draw(unanswered, OutputMode.JSON)[0])["bye_status"] is None


def test_json_of_a_failed_call_has_its_errors_in_the_envelope_and_on_stderr() -> None:
    out, err = draw(busy(), OutputMode.JSON)
    doc = json.loads(out)
    assert doc["ok"] is False and doc["exit_code"] == 1
    error = {"code": "not_answered", "message": "call not answered: 486 Busy Here"}
    assert doc["errors"] == [error]
    assert err == "siptool invite-test: call not answered: 486 Busy Here\n"


def test_text_summary_draws_the_ladder_and_the_call() -> None:
    out, err = draw(answered(), OutputMode.TEXT)
    lines = out.splitlines()
    assert lines[0] == "Test call to sip:bob@pbx.test via UDP 192.0.2.10:5060"
    assert lines[1] == "Call-ID abc123@siptool.invalid"
    assert lines[2].split() == ["0.0", "ms", "-->", "INVITE"]
    assert lines[3].split() == ["20.0", "ms", "<--", "180", "Ringing", "(INVITE)"]
    assert row(out, "final") == "200 OK"
    assert row(out, "timings") == "trying -, ringing 20.0 ms, early media -, answer 35.5 ms"
    assert row(out, "PDD") == "20.0 ms"
    assert row(out, "call") == "held 2.0 s; BYE got 200"
    assert row(out, "SDP answer") == "PCMU/8000 at 192.0.2.20:4000"
    assert row(out, "auth") == "Digest MD5 qop=-, 1 round(s)"
    assert row(out, "server") == "Asterisk PBX"
    assert row(out, "local") == "192.0.2.1:5070 (no NAT)"
    assert "CANCEL" not in out and "RTP" not in out
    assert err == ""


def test_text_says_how_the_call_ended() -> None:
    remote, _ = draw(answered(bye=ByeOutcome.REMOTE), OutputMode.TEXT)
    assert row(remote, "call") == "held 2.0 s; the far end hung up (we answered 200)"
    silent, _ = draw(answered(bye=ByeOutcome.NOT_ENDED, bye_response=None), OutputMode.TEXT)
    assert row(silent, "call") == "held 2.0 s; BYE got no answer"


def test_text_shows_the_cancel_the_rtp_check_and_the_warnings() -> None:
    rtp = RtpStats(sent=100, received=0, verdict="one-way: nothing came back")
    result = answered(
        rtp=rtp,
        cancel_reason=CancelReason.RING_TIMEOUT,
        cancel_status=200,
        warnings=["the 2xx has no SDP; the 18x's was used as the answer"],
        nat=NatView(local="10.0.0.2:5060", reflexive="198.51.100.7:5060", warnings=["nat!"]),
    )
    out, _ = draw(result, OutputMode.TEXT)
    assert row(out, "CANCEL") == "sent (ring-timeout), CANCEL got 200"
    assert row(out, "RTP") == "sent 100, received 0, loss -, jitter -: one-way: nothing came back"
    assert row(out, "local") == "10.0.0.2:5060 seen as 198.51.100.7:5060 (NAT)"
    assert "warning: the 2xx has no SDP; the 18x's was used as the answer" in out
    assert out.rstrip().endswith("warning: nat!")


def test_peer_text_cannot_reach_the_terminal_as_controls_or_markup() -> None:
    result = answered(final_reason="OK\x1b[2J[bold]", server="pbx\x1b]0;pwned\x07")
    result.events.append(CallEvent(40.0, Direction.RECV, "BYE\x9b31m (from the far end)"))
    out, _ = draw(result, OutputMode.TEXT)
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out
    assert "200 OK\\x1b[2J[bold]" in out


def test_quiet_text_prints_nothing_but_errors() -> None:
    out, err = draw(busy(), OutputMode.TEXT, quiet=True)
    assert out == ""
    assert err == "siptool invite-test: call not answered: 486 Busy Here\n"


def test_exit_3_prints_only_the_stderr_line() -> None:
    result = CallResult("sip:bob@pbx.test", exit_code=ExitCode.NOT_RUN)
    result.errors = [LocalBindError("cannot bind 127.0.0.1:5060: Address already in use")]
    out, err = draw(result, OutputMode.TEXT)
    assert out == ""
    assert err == "siptool invite-test: cannot bind 127.0.0.1:5060: Address already in use\n"
    doc = json.loads(draw(result, OutputMode.JSON)[0])
    assert doc["exit_code"] == 3 and doc["errors"][0]["code"] == "bind_error"


def test_nagios_prints_the_verdict_the_command_computed_and_nothing_else() -> None:
    verdict = NagiosVerdict(NagiosState.WARNING, "SIP WARNING - made up", "pdd=1.0ms;;;0")
    result = busy()
    result.nagios = verdict
    out, err = draw(result, OutputMode.NAGIOS)
    assert out == "SIP WARNING - made up | pdd=1.0ms;;;0\n" and err == ""


def test_nagios_line_is_one_line_whatever_the_peer_wrote() -> None:
    result = busy()
    result.nagios = NagiosVerdict(NagiosState.CRITICAL, "SIP CRITICAL - 486 Busy\nOK - fake")
    out, _ = draw(result, OutputMode.NAGIOS)
    assert out.count("\n") == 1 and out.startswith("SIP CRITICAL - 486 Busy")
