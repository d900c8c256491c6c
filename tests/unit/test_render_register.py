"""render/register.py in-process, on results built by hand: it draws what the command decided
(the exit code, the errors, the Nagios verdict of commands/register.py) and nothing else."""

from __future__ import annotations

import json

from siptool.commands.nagios import NagiosState, NagiosVerdict, Thresholds
from siptool.commands.register import (
    Binding,
    RegisterMode,
    RegisterResult,
    nagios_verdict,
)
from siptool.commands.sip_common import NatView
from siptool.errors import ExitCode, LocalBindError, ResolveError, SiptoolError
from siptool.render.output import OutputMode
from siptool.render.register import RegisterRenderer
from siptool.sip.auth import AuthReport
from tests.support.render import drawn

KEYS = [
    "command", "ok", "exit_code", "siptool_version", "errors", "target", "aor", "mode",
    "status", "reason", "rtt_ms", "total_ms", "auth", "requested_expires", "expires",
    "bindings", "service_route", "path", "resolved", "nat", "tls", "warnings",
]  # fmt: skip


def registered(**changes: object) -> RegisterResult:
    """A 200 OK for our contact and one other binding, after one digest challenge."""
    result = RegisterResult(
        "sip:pbx.test",
        "sip:alice@pbx.test",
        RegisterMode.REGISTER,
        status=200,
        reason="OK",
        rtt_ms=3.25,
        total_ms=7.5,
        auth=AuthReport("Digest", "SHA-256", "auth", 1),
        requested_expires=300,
        expires=120,
        bindings=[
            Binding("sip:alice@192.0.2.1:4000", 120, ours=True),
            Binding("sip:alice@203.0.113.9:5060", 3600),
        ],
        service_route=["<sip:edge.pbx.test;lr>"],
        transport="udp",
        address="192.0.2.10:5060",
        nat=NatView(local="192.0.2.1:4000", reflexive="198.51.100.7:4000"),
        exit_code=ExitCode.OK,
    )
    for name, value in changes.items():
        setattr(result, name, value)
    return result


def rejected() -> RegisterResult:
    result = RegisterResult(
        "sip:pbx.test",
        "sip:alice@pbx.test",
        RegisterMode.REGISTER,
        status=403,
        reason="Forbidden",
        total_ms=4.0,
        transport="udp",
        address="192.0.2.10:5060",
        requested_expires=300,
    )
    result.errors = [SiptoolError("403 Forbidden", code="rejected")]
    return result


def draw(result: RegisterResult, mode: OutputMode, *, quiet: bool = False) -> tuple[str, str]:
    return drawn("register", RegisterRenderer, result, mode, quiet=quiet)


# --- JSON ----------------------------------------------------------------------------------


def test_json_is_one_line_into_a_pipe_with_the_contract_keys_in_order() -> None:
    out, err = draw(registered(), OutputMode.JSON)
    assert out.count("\n") == 1 and out.endswith("}\n")
    doc = json.loads(out)
    assert list(doc) == KEYS
    assert doc["command"] == "register" and doc["ok"] is True and doc["exit_code"] == 0
    assert doc["errors"] == [] and doc["mode"] == "register"
    assert doc["auth"] == {"scheme": "Digest", "algorithm": "SHA-256", "qop": "auth", "rounds": 1}
    assert doc["bindings"][0] == {
        "contact": "sip:alice@192.0.2.1:4000",
        "expires": 120,
        "ours": True,
    }
    assert doc["resolved"] == {"transport": "udp", "address": "192.0.2.10:5060"}
    assert doc["nat"]["behind_nat"] is True
    assert err == ""


def test_json_of_a_failure_carries_the_errors_as_code_and_message() -> None:
    out, err = draw(rejected(), OutputMode.JSON)
    doc = json.loads(out)
    assert doc["ok"] is False and doc["exit_code"] == 1
    assert doc["errors"] == [{"code": "rejected", "message": "403 Forbidden"}]
    assert err == "siptool register: 403 Forbidden\n"


def test_json_names_the_mode_as_the_flag_spells_it_and_nulls_what_is_unknown() -> None:
    result = RegisterResult("sip:pbx.test", "sip:alice@pbx.test", RegisterMode.UNREGISTER_ALL)
    result.errors = [ResolveError("cannot resolve pbx.test")]
    doc = json.loads(draw(result, OutputMode.JSON)[0])
    assert doc["mode"] == "unregister-all"
    assert doc["resolved"] is None and doc["status"] is None and doc["auth"] is None
    assert doc["errors"] == [{"code": "dns_error", "message": "cannot resolve pbx.test"}]


# --- text ----------------------------------------------------------------------------------


def test_text_summary_auth_expiry_bindings_routes_and_nat() -> None:
    out, err = draw(registered(), OutputMode.TEXT)
    lines = out.splitlines()
    assert lines[0] == (
        "register sip:alice@pbx.test at sip:pbx.test (UDP 192.0.2.10:5060): 200 OK in 7.5 ms"
    )
    assert lines[1] == "auth: Digest SHA-256 qop=auth, 1 challenge(s)"
    assert lines[2] == "granted expiry: 120 s (asked 300)"
    assert lines[3].split() == ["binding", "expires"]
    assert lines[4].split() == ["sip:alice@192.0.2.1:4000", "120", "s", "ours"]
    assert lines[5].split() == ["sip:alice@203.0.113.9:5060", "3600", "s"]
    assert lines[6] == "Service-Route: <sip:edge.pbx.test;lr>"
    assert lines[7] == "local 192.0.2.1:4000 seen as 198.51.100.7:4000 (behind NAT)"
    assert len(lines) == 8 and err == ""


def test_text_of_a_query_with_no_bindings_says_so() -> None:
    result = registered(
        mode=RegisterMode.QUERY, bindings=[], expires=None, auth=None, service_route=[]
    )
    out, _ = draw(result, OutputMode.TEXT)
    assert out.splitlines()[0].startswith("query sip:alice@pbx.test at sip:pbx.test ")
    assert "no bindings" in out.splitlines() and "granted expiry" not in out


def test_text_failure_without_an_answer_says_no_answer_and_the_error_goes_to_stderr() -> None:
    result = RegisterResult("sip:pbx.test", "sip:alice@pbx.test", RegisterMode.REGISTER)
    result.transport, result.address, result.total_ms = "tcp", "192.0.2.10:5060", 5000.0
    result.errors = [SiptoolError("no answer before the timeout", code="timeout")]
    out, err = draw(result, OutputMode.TEXT)
    assert out.splitlines()[0] == (
        "register sip:alice@pbx.test at sip:pbx.test (TCP 192.0.2.10:5060): no answer"
    )
    assert "no bindings" not in out  # only a 2xx says there are none
    assert err == "siptool register: no answer before the timeout\n"


def test_warnings_go_to_stderr_after_the_errors() -> None:
    result = rejected()
    result.warnings = ["the registrar's 200 OK does not list our Contact"]
    _, err = draw(result, OutputMode.TEXT)
    assert err.splitlines() == [
        "siptool register: 403 Forbidden",
        "siptool register: warning: the registrar's 200 OK does not list our Contact",
    ]


def test_quiet_prints_nothing_on_stdout_but_keeps_stderr() -> None:
    result = registered(warnings=["binding not confirmed"])
    out, err = draw(result, OutputMode.TEXT, quiet=True)
    assert out == ""
    assert err == "siptool register: warning: binding not confirmed\n"


def test_exit_3_prints_only_the_stderr_line() -> None:
    result = RegisterResult("sip:pbx.test", "sip:alice@pbx.test", RegisterMode.REGISTER)
    result.errors = [LocalBindError("cannot bind 192.0.2.99:5060: address not available")]
    result.exit_code = ExitCode.NOT_RUN
    out, err = draw(result, OutputMode.TEXT)
    assert out == ""
    assert err == "siptool register: cannot bind 192.0.2.99:5060: address not available\n"


def test_peer_text_is_shown_not_obeyed_in_text_and_stderr() -> None:
    hostile = "OK\x1b[2J\x1b]0;pwned\x07[bold]"
    result = registered(
        reason=hostile,
        bindings=[Binding(f"sip:x@192.0.2.1{hostile}", 60)],
        service_route=[f"<sip:sr>{hostile}"],
        warnings=[f"odd {hostile}\nsecond line"],
    )
    out, err = draw(result, OutputMode.TEXT)
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert "\\x1b[2J" in out and "[bold]" in out  # shown literally, not taken as markup
    assert err.count("\n") == 1 and "\\x0asecond line" in err


# --- Nagios --------------------------------------------------------------------------------


def test_nagios_mode_prints_the_commands_verdict_and_nothing_else() -> None:
    result = rejected()  # errors and warnings, which Nagios mode keeps off stderr
    result.warnings = ["ignored"]
    result.nagios = NagiosVerdict(NagiosState.WARNING, "SIP WARNING - as decided", "time=1ms")
    out, err = draw(result, OutputMode.NAGIOS)
    assert out == "SIP WARNING - as decided | time=1ms\n" and err == ""


def test_nagios_ok_line_names_status_aor_expiry_time_and_perfdata() -> None:
    line = nagios_verdict(registered(), Thresholds(warning_ms=50, critical_ms=90))
    assert line.state is NagiosState.OK
    assert line.text == (
        "SIP OK - 200 OK: sip:alice@pbx.test for 120 s in 7.5 ms | time=7.5ms;50;90;0"
    )


def test_nagios_thresholds_apply_to_the_whole_exchange_at_or_past_the_limit() -> None:
    assert nagios_verdict(registered(), Thresholds(warning_ms=7.5)).state is NagiosState.WARNING
    late = nagios_verdict(registered(), Thresholds(warning_ms=1, critical_ms=7.5))
    assert late.state is NagiosState.CRITICAL and late.text.startswith("SIP CRITICAL - 200 OK")


def test_nagios_failure_is_critical_with_the_last_error() -> None:
    line = nagios_verdict(rejected(), Thresholds())
    assert line.state is NagiosState.CRITICAL
    assert line.text == (
        "SIP CRITICAL - REGISTER sip:alice@pbx.test at sip:pbx.test: 403 Forbidden | time=4.0ms;;;0"
    )


def test_nagios_failure_before_any_request_has_no_perfdata_separator() -> None:
    result = RegisterResult("sip:pbx.test", "sip:alice@pbx.test", RegisterMode.REGISTER)
    result.errors = [ResolveError("cannot resolve pbx.test")]
    line = nagios_verdict(result, Thresholds(warning_ms=10))
    assert line.state is NagiosState.CRITICAL
    assert line.text == (
        "SIP CRITICAL - REGISTER sip:alice@pbx.test at sip:pbx.test: cannot resolve pbx.test"
    )


def test_nagios_unknown_when_siptool_could_not_run_the_check() -> None:
    result = RegisterResult("sip:pbx.test", "sip:alice@pbx.test", RegisterMode.REGISTER)
    result.errors = [LocalBindError("--ca-file /nope: No such file or directory")]
    result.exit_code = ExitCode.NOT_RUN
    line = nagios_verdict(result, Thresholds(critical_ms=1))
    assert line.state is NagiosState.UNKNOWN
    assert line.text == "SIP UNKNOWN - --ca-file /nope: No such file or directory"


def test_requested_expires_per_mode() -> None:
    assert RegisterMode.REGISTER.requested_expires(120) == 120
    assert RegisterMode.QUERY.requested_expires(120) is None
    assert RegisterMode.UNREGISTER.requested_expires(120) == 0
    assert RegisterMode.UNREGISTER_ALL.requested_expires(120) == 0
