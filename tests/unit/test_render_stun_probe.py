"""render/stun_probe.py in-process, on results built by hand: it draws what the command
decided (commands/stun_probe.py, whose Nagios verdict is checked here too) and nothing else."""

from __future__ import annotations

import io
import json

from siptool.commands.nagios import NagiosState, NagiosVerdict, Thresholds
from siptool.commands.stun_probe import (
    BindingReply,
    MappedFrom,
    ProbeResult,
    ServerProbe,
    StunErrorResponse,
    nagios_verdict,
)
from siptool.errors import ExitCode, LocalBindError, SiptoolError
from siptool.render.output import Output, OutputMode
from siptool.render.stun_probe import ProbeRenderer
from tests.support.render import drawn

COMMAND = "stun-probe"


def answered(
    server: str = "stun.test:3478",
    mapped: str = "198.51.100.7:40000",
    rtts: tuple[float, ...] = (1.25, 2.75),
) -> ServerProbe:
    return ServerProbe(
        server,
        "udp",
        address="192.0.2.10:3478",
        local="10.0.0.2:40000",
        mapped=mapped,
        mapped_from=MappedFrom.XOR_MAPPED_ADDRESS,
        xor_mapped_address=mapped,
        sent=len(rtts),
        received=len(rtts),
        rtts_ms=list(rtts),
        software="evil\x1b[2Jserver",
        other_address="192.0.2.11:3479",
        mappings_seen=[mapped],
        warnings=["rtt after a retransmission: it may time an earlier copy (Karn's problem)"],
    )


def silent(server: str = "down.test:3478") -> ServerProbe:
    probe = ServerProbe(server, "udp", address="192.0.2.20:3478", local="10.0.0.2:40000", sent=1)
    probe.errors = [SiptoolError("no answer from 192.0.2.20:3478 within 5 s", code="timeout")]
    return probe


def refused() -> ServerProbe:
    probe = ServerProbe("err.test:3478", "udp", address="192.0.2.30:3478", sent=1, received=1)
    probe.error_response = StunErrorResponse(400, "Bad Request")
    probe.errors = [SiptoolError("400 Bad Request", code="error_response")]
    return probe


def draw(result: ProbeResult, mode: OutputMode, *, quiet: bool = False) -> tuple[str, str]:
    return drawn(COMMAND, ProbeRenderer, result, mode, quiet=quiet)


def test_json_is_one_line_with_the_envelope_and_server_errors_prefixed() -> None:
    result = ProbeResult([answered(), silent(), refused()], exit_code=ExitCode.FAILED)
    out, _ = draw(result, OutputMode.JSON)
    assert out.count("\n") == 1  # not a terminal: one line
    doc = json.loads(out)
    assert list(doc) == [
        "command", "ok", "exit_code", "siptool_version", "errors",
        "servers", "mapping_consistent", "port_preserved", "behind_nat", "default_server_list",
    ]  # fmt: skip
    assert doc["command"] == COMMAND and doc["ok"] is False and doc["exit_code"] == 1
    assert doc["errors"] == [
        {"code": "timeout", "message": "down.test:3478: no answer from 192.0.2.20:3478 within 5 s"},
        {"code": "error_response", "message": "err.test:3478: 400 Bad Request"},
    ]
    first, dead, error = doc["servers"]
    assert first["mapped_from"] == "XOR-MAPPED-ADDRESS"
    assert first["rtt_ms"] == 1.25 and first["rtt_avg_ms"] == 2.0 and first["rtt_max_ms"] == 2.75
    assert first["software"] == "evil\x1b[2Jserver"  # JSON keeps the exact text
    assert first["rfc5780"] is True and first["errors"] == [] and first["error_response"] is None
    assert dead["loss_pct"] == 100.0 and dead["errors"][0]["code"] == "timeout"
    assert dead["mapped_from"] is None
    assert error["error_response"] == {"code": 400, "reason": "Bad Request"}
    assert doc["behind_nat"] is True and doc["port_preserved"] is True
    assert doc["mapping_consistent"] is None  # one answer: nothing to compare
    assert doc["default_server_list"] is False


def test_errors_and_warnings_go_to_stderr_one_line_each() -> None:
    result = ProbeResult([answered(), silent()], exit_code=ExitCode.FAILED)
    for mode in (OutputMode.TEXT, OutputMode.JSON, OutputMode.JSONL):
        _, err = draw(result, mode)
        assert err.splitlines() == [
            "siptool stun-probe: stun.test:3478: warning: rtt after a retransmission: "
            "it may time an earlier copy (Karn's problem)",
            "siptool stun-probe: down.test:3478: no answer from 192.0.2.20:3478 within 5 s",
        ]


def test_the_table_shows_each_server_and_makes_peer_text_safe() -> None:
    result = ProbeResult([answered(), silent()], exit_code=ExitCode.FAILED)
    out, _ = draw(result, OutputMode.TEXT)
    lines = out.splitlines()
    assert lines[0].split() == [
        "server", "address", "local", "mapped", "rtt", "ms", "loss", "software", "RFC", "5780",
    ]  # fmt: skip
    assert "stun.test:3478" in lines[1] and "UDP 192.0.2.10:3478" in lines[1]
    assert "198.51.100.7:40000" in lines[1] and "1.25/2.00/2.75" in lines[1]
    assert "0%" in lines[1] and "yes, other 192.0.2.11:3479" in lines[1]
    assert "evil\\x1b[2Jserver" in lines[1] and "\x1b" not in out
    # A long reason folds inside its cell (160 columns into a pipe), the row stays whole.
    assert "no answer from 192.0.2.20:3478 within" in lines[2] and "100%" in lines[2]
    assert lines[3].strip() == "5 s"
    assert lines[-1] == "NAT: behind a NAT; mapping: unknown; port: preserved"


def test_the_table_says_when_the_mapping_differs_and_rfc3489_servers() -> None:
    other = answered("stun2.test:3478", mapped="198.51.100.7:40001", rtts=(3.0,))
    other.other_address = None
    other.changed_address = "192.0.2.12:3479"
    result = ProbeResult([answered(), other], exit_code=ExitCode.OK)
    out, _ = draw(result, OutputMode.TEXT)
    lines = out.splitlines()
    assert "3.00" in lines[2] and "no (RFC 3489, changed 192.0.2.12:3479)" in lines[2]
    assert lines[-1] == (
        "NAT: behind a NAT; mapping: differs between servers (symmetric NAT); port: not preserved"
    )


def test_quiet_and_a_run_that_could_not_start_print_no_table() -> None:
    assert draw(ProbeResult([answered()]), OutputMode.TEXT, quiet=True)[0] == ""
    not_run = ProbeResult(
        [], exit_code=ExitCode.NOT_RUN, errors=[LocalBindError("cannot bind 0.0.0.0:3478")]
    )
    out, err = draw(not_run, OutputMode.TEXT)
    assert out == "" and err == "siptool stun-probe: cannot bind 0.0.0.0:3478\n"
    out, _ = draw(not_run, OutputMode.JSON)
    doc = json.loads(out)
    assert doc["exit_code"] == 3 and doc["servers"] == []
    assert doc["errors"] == [{"code": "bind_error", "message": "cannot bind 0.0.0.0:3478"}]


def test_nagios_prints_the_verdict_the_command_computed() -> None:
    verdict = NagiosVerdict(NagiosState.WARNING, "STUN WARNING - made up", "rtt=9ms;1;2;0")
    result = ProbeResult([silent()], exit_code=ExitCode.FAILED, nagios=verdict)
    out, err = draw(result, OutputMode.NAGIOS)
    assert out == "STUN WARNING - made up | rtt=9ms;1;2;0\n" and err == ""


def test_a_forged_line_in_the_nagios_text_stays_on_one_line() -> None:
    verdict = NagiosVerdict(NagiosState.OK, "STUN OK - evil\nSTUN CRITICAL - forged")
    out, _ = draw(ProbeResult([answered()], nagios=verdict), OutputMode.NAGIOS)
    assert out.count("\n") == 1 and out.startswith("STUN OK - evil\\x0a")


def test_the_command_decides_the_nagios_state_from_the_thresholds() -> None:
    limits = Thresholds(warning_ms=2.0, critical_ms=10.0)
    warning = nagios_verdict(ProbeResult([answered()]), limits)
    assert warning.state is NagiosState.WARNING
    assert warning.summary == "STUN WARNING - stun.test:3478 mapped 198.51.100.7:40000 in 2.0 ms"
    assert warning.perfdata == "rtt=2.0ms;2;10;0 loss=0%;20;60;0;100"
    ok = nagios_verdict(ProbeResult([answered(rtts=(1.0,))]), limits)
    assert ok.state is NagiosState.OK and ok.text.startswith("STUN OK - ")
    both = nagios_verdict(ProbeResult([answered(rtts=(1.0,)), silent()]), limits)
    assert both.state is NagiosState.CRITICAL
    assert both.summary.endswith("; down.test:3478: no answer from 192.0.2.20:3478 within 5 s")
    assert both.perfdata == (
        "rtt_1=1.0ms;2;10;0 loss_1=0%;20;60;0;100 rtt_2=U;2;10;0 loss_2=100%;20;60;0;100"
    )
    error = nagios_verdict(ProbeResult([refused()]), Thresholds())
    assert error.state is NagiosState.CRITICAL and "err.test:3478: 400 Bad Request" in error.text


def test_a_mapping_that_differs_between_servers_is_a_warning() -> None:
    other = answered("stun2.test:3478", mapped="198.51.100.7:40001", rtts=(1.0,))
    result = ProbeResult([answered(rtts=(1.0,)), other])
    assert result.mapping_consistent is False
    verdict = nagios_verdict(result, Thresholds())
    assert verdict.state is NagiosState.WARNING
    assert verdict.summary.endswith("; mapping differs between servers")
    same = answered("stun2.test:3478", rtts=(1.0,))
    assert nagios_verdict(ProbeResult([answered(), same]), Thresholds()).state is NagiosState.OK


def test_nagios_is_unknown_when_the_check_could_not_run() -> None:
    result = ProbeResult(
        [], exit_code=ExitCode.NOT_RUN, errors=[SiptoolError("cannot use --ca-file x")]
    )
    verdict = nagios_verdict(result, Thresholds(warning_ms=1.0))
    assert verdict.state is NagiosState.UNKNOWN
    assert verdict.text == "STUN UNKNOWN - cannot use --ca-file x"


def test_replies_stream_as_jsonl_and_nothing_else_does() -> None:
    reply = BindingReply(2, "00" * 12, "198.51.100.7:40000", 1.5, None)
    out = io.StringIO()
    ProbeRenderer(Output(COMMAND, mode=OutputMode.JSONL, out=out)).reply(answered(), reply)
    assert json.loads(out.getvalue()) == {
        "type": "reply",
        "server": "stun.test:3478",
        "address": "192.0.2.10:3478",
        "seq": 2,
        "transaction_id": "00" * 12,
        "mapped": "198.51.100.7:40000",
        "rtt_ms": 1.5,
        "error": None,
    }
    for mode in (OutputMode.TEXT, OutputMode.JSON, OutputMode.NAGIOS):
        out = io.StringIO()
        ProbeRenderer(Output(COMMAND, mode=mode, out=out)).reply(answered(), reply)
        assert out.getvalue() == ""
