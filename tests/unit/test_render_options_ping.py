"""render/options_ping.py in-process, on results built by hand: it draws what the command
decided and nothing else."""

from __future__ import annotations

import io
import json

from siptool.commands.nagios import NagiosState, NagiosVerdict, Thresholds
from siptool.commands.options_ping import (
    PingResult,
    Reply,
    ServerInfo,
    Stats,
    TargetResult,
    nagios_verdict,
)
from siptool.commands.sip_common import NatView
from siptool.errors import ExitCode, SiptoolError
from siptool.render.options_ping import PingRenderer
from siptool.render.output import Output, OutputMode
from tests.support.render import drawn


def alive(target: str = "sip:pbx.test", rtts: tuple[float, ...] = (1.25, 2.75)) -> TargetResult:
    replies = [Reply(n, 200, "OK", rtt) for n, rtt in enumerate(rtts, 1)]
    return TargetResult(
        target,
        transport="udp",
        address="192.0.2.10:5060",
        replies=replies,
        stats=Stats(sent=len(rtts), received=len(rtts), rtts=list(rtts)),
        server=ServerInfo(user_agent="Kamailio\x1b[31m", allow=["INVITE", "OPTIONS"]),
        nat=NatView(local="192.0.2.1:4000", reflexive="198.51.100.7:4000"),
        alive=True,
    )


def dead(target: str = "sip:down.test") -> TargetResult:
    result = TargetResult(target, transport="udp", address="192.0.2.11:5060")
    result.replies = [Reply(1, None, None, None, error="no answer in 5 s")]
    result.stats = Stats(sent=1)
    result.errors = [SiptoolError("no answer in 5 s", code="timeout")]
    return result


def draw(result: PingResult, mode: OutputMode, count: int = 1) -> tuple[str, str]:
    return drawn("options-ping", lambda o: PingRenderer(o, count=count), result, mode)


def test_json_is_one_line_with_the_envelope_and_target_errors_prefixed() -> None:
    result = PingResult([alive(), dead()], exit_code=ExitCode.FAILED)
    out, err = draw(result, OutputMode.JSON)
    assert out.count("\n") == 1
    doc = json.loads(out)
    assert doc["command"] == "options-ping" and doc["ok"] is False and doc["exit_code"] == 1
    assert doc["errors"] == [{"code": "timeout", "message": "sip:down.test: no answer in 5 s"}]
    first = doc["targets"][0]
    assert first["resolved"] == {"transport": "udp", "address": "192.0.2.10:5060"}
    assert first["stats"]["rtt_avg_ms"] == 2.0 and first["stats"]["loss_pct"] == 0.0
    assert first["nat"]["behind_nat"] is True
    assert err == "siptool options-ping: sip:down.test: no answer in 5 s\n"


def test_the_table_shows_each_target_and_makes_peer_text_safe() -> None:
    out, err = draw(PingResult([alive(), dead()], exit_code=ExitCode.FAILED), OutputMode.TEXT)
    lines = out.splitlines()
    assert lines[0].split() == [
        "target", "address", "status", "sent/recv", "loss", "rtt", "min/avg/max/sd", "ms",
        "server", "local", "address",
    ]  # fmt: skip
    assert "sip:pbx.test" in lines[1] and "200 OK" in lines[1] and "2/2" in lines[1]
    assert "1.25/2.00/2.75/0.75" in lines[1]
    assert "Kamailio\\x1b[31m" in lines[1] and "\x1b" not in out
    assert "seen as 198.51.100.7:4000 (NAT)" in lines[1]
    assert "no answer in 5 s" in lines[2] and "1/0" in lines[2] and "100%" in lines[2]
    assert err == "siptool options-ping: sip:down.test: no answer in 5 s\n"


def test_nagios_prints_the_verdict_the_command_computed() -> None:
    verdict = NagiosVerdict(NagiosState.WARNING, "SIP WARNING - made up", "rtt=9ms;1;2;0")
    result = PingResult([alive()], exit_code=ExitCode.OK, nagios=verdict)
    out, err = draw(result, OutputMode.NAGIOS)
    assert out == "SIP WARNING - made up | rtt=9ms;1;2;0\n" and err == ""


def test_the_command_decides_the_nagios_state_from_the_thresholds() -> None:
    limits = Thresholds(warning_ms=2.0, critical_ms=10.0)
    warning = nagios_verdict(PingResult([alive()]), limits)
    assert warning.state is NagiosState.WARNING
    assert warning.summary == "SIP WARNING - 200 OK from sip:pbx.test in 2.0 ms"
    assert warning.perfdata == "rtt=2.0ms;2;10;0 loss=0%;20;60;0;100"
    both = nagios_verdict(PingResult([alive(), dead()]), limits)
    assert both.state is NagiosState.CRITICAL
    assert both.summary.endswith("; sip:down.test: no answer in 5 s")
    assert "rtt_2=U;2;10;0 loss_2=100%;20;60;0;100" in both.perfdata
    unknown = nagios_verdict(
        PingResult([], exit_code=ExitCode.NOT_RUN, errors=[SiptoolError("cannot bind")]), limits
    )
    assert unknown.state is NagiosState.UNKNOWN and unknown.text == "SIP UNKNOWN - cannot bind"


def test_replies_stream_as_jsonl_and_as_ping_lines() -> None:
    out = io.StringIO()
    target = alive()
    renderer = PingRenderer(Output("options-ping", mode=OutputMode.JSONL, out=out), count=2)
    renderer.reply(target, target.replies[0])
    line = json.loads(out.getvalue())
    assert line["type"] == "reply" and line["seq"] == 1 and line["status"] == 200

    out = io.StringIO()
    renderer = PingRenderer(Output("options-ping", out=out), count=2)
    renderer.reply(target, target.replies[1])
    assert out.getvalue() == "sip:pbx.test (192.0.2.10:5060): seq=2 200 OK time=2.750 ms\n"
