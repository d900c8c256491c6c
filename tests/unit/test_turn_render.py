"""render/turn_probe.py in-process on results built by hand, the command's Nagios verdict and
exit code, and TurnProbeOptions' credentials: the JSON carries the contract's keys and never
a password."""

from __future__ import annotations

import json

from siptool.commands.nagios import NagiosState, Thresholds
from siptool.commands.turn_probe import (
    TurnProbeOptions,
    TurnProbeResult,
    _exit_code,
    nagios_verdict,
)
from siptool.errors import ExitCode, LocalBindError, SiptoolError
from siptool.render.output import OutputMode
from siptool.render.turn_probe import TurnProbeRenderer
from siptool.stun.servers import parse_server
from siptool.stun.turn import RelayFigures
from tests.support.render import drawn

COMMAND = "turn-probe"
CONTRACT = {
    "server",
    "transport",
    "relayed",
    "mapped",
    "lifetime_s",
    "allocate_ms",
    "software",
    "auth",
    "peer",
    "relay_tests",
    "refreshes",
    "deallocated",
    "command",
    "ok",
    "exit_code",
    "siptool_version",
    "errors",
}
FIGURES = {"sent", "received", "loss_pct", "rtt_min_ms", "rtt_avg_ms", "rtt_max_ms", "jitter_ms"}


def figures(received: int = 5) -> RelayFigures:
    return RelayFigures(5, received, received, 0.2, 0.4, 0.9, 0.05, 0.02)


def working() -> TurnProbeResult:
    result = TurnProbeResult(
        "turn:turn.test",
        "udp",
        address="192.0.2.1:3478",
        local="10.0.0.2:40000",
        relayed=["192.0.2.1:49152"],
        mapped="198.51.100.7:40000",
        lifetime_s=600,
        allocate_ms=3.5,
        software="coturn \x1b[31m",
        auth_mode="long-term",
        auth_rounds=1,
        realm="example.org",
        algorithm="md5",
        peer="198.51.100.7:50000",
        peer_local="10.0.0.2:50000",
        permission="198.51.100.7",
        channel=0x4000,
        indication=figures(),
        channel_test=figures(),
        deallocated=True,
    )
    result.exit_code = _exit_code(result)
    return result


def test_json_has_the_contract_keys() -> None:
    out, err = drawn(COMMAND, TurnProbeRenderer, working(), OutputMode.JSON)
    document = json.loads(out)
    assert set(document) >= CONTRACT
    assert document["ok"] is True and document["exit_code"] == 0 and not err
    assert set(document["auth"]) >= {"mode", "rounds", "realm", "algorithm"}
    for method in ("indication", "channel"):
        assert set(document["relay_tests"][method]) >= FIGURES
    assert document["relayed"] == ["192.0.2.1:49152"] and document["deallocated"] is True


def test_text_escapes_server_text_and_says_the_verdict() -> None:
    out, _ = drawn(COMMAND, TurnProbeRenderer, working(), OutputMode.TEXT)
    assert "\x1b" not in out
    assert "relay works" in out and "192.0.2.1:49152" in out and "0.20/0.40/0.90" in out


def test_all_lost_fails_and_nagios_is_critical() -> None:
    result = working()
    result.channel_test = figures(received=0)
    result.errors.append(SiptoolError("no data came back by ChannelData", code="data_lost"))
    result.exit_code = _exit_code(result)
    assert result.exit_code is ExitCode.FAILED
    verdict = nagios_verdict(result, Thresholds())
    assert verdict.state is NagiosState.CRITICAL
    out, err = drawn(COMMAND, TurnProbeRenderer, result, OutputMode.TEXT)
    assert "relay test failed" in out and "ChannelData" in err


def test_nagios_thresholds_are_on_the_allocate_time() -> None:
    result = working()
    assert nagios_verdict(result, Thresholds()).state is NagiosState.OK
    slow = nagios_verdict(result, Thresholds(warning_ms=3.0, critical_ms=10.0))
    assert slow.state is NagiosState.WARNING and "allocate=3.5ms;3;10;0" in slow.text
    assert nagios_verdict(result, Thresholds(critical_ms=3.5)).state is NagiosState.CRITICAL


def test_not_run_is_unknown() -> None:
    result = TurnProbeResult("turn:t", "udp", exit_code=ExitCode.NOT_RUN)
    result.errors.append(LocalBindError("cannot bind 10.9.9.9:1: address not available"))
    assert nagios_verdict(result, Thresholds()).state is NagiosState.UNKNOWN


def test_no_test_run_is_null_in_json() -> None:
    result = TurnProbeResult("turn:t", "udp")
    result.errors.append(SiptoolError("the server refuses peer 10.0.0.2", code="peer_refused"))
    result.exit_code = _exit_code(result)
    document = json.loads(drawn(COMMAND, TurnProbeRenderer, result, OutputMode.JSON)[0])
    assert document["relay_tests"] == dict.fromkeys(("indication", "channel", "tcp", "tcp_passive"))
    assert document["errors"][0]["code"] == "peer_refused" and document["exit_code"] == 1


def test_credentials_from_the_options_and_no_password_in_repr() -> None:
    server = parse_server("turn:t", turn=True)
    rest = TurnProbeOptions(server, secret="s3cr3t", rest_ttl=60).credentials(1_700_000_000)
    assert rest is not None and rest.username == "1700000060:siptool"
    long_term = TurnProbeOptions(server, user="alice", password="hunter2")
    assert long_term.credentials(0) is not None
    assert "hunter2" not in repr(long_term) and "s3cr3t" not in repr(rest)
    assert TurnProbeOptions(server).credentials(0) is None
