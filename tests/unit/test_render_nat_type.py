"""The nat-type renderer in-process, on results built by hand: the JSON document (one line into
a pipe, exactly the keys scripts read), the text report, stderr lines and exit-3 silence."""

from __future__ import annotations

import io
import json
from typing import Any

from siptool.commands.nat_lifetime import Lifetime
from siptool.commands.nat_pystun3 import EngineReport
from siptool.commands.nat_rfc5780 import NatTests, SocketTests, StunTestRecord
from siptool.commands.nat_type import Engine, NatResult
from siptool.errors import ExitCode, LocalBindError, SiptoolError
from siptool.render.nat_type import NatRenderer
from siptool.render.output import Output, OutputMode
from siptool.stun.behavior import Classic, Mapping, NatVerdict, PathLoss

COMMAND = "nat-type"
ENVELOPE = ["command", "ok", "exit_code", "siptool_version", "errors"]
BODY = [
    "server", "address", "other_address", "engine", "mapping", "filtering", "classic",
    "hairpinning", "port_preserved", "local", "mapped", "reasons", "advice", "lifetime",
    "tests", "elapsed_ms", "compare",
]  # fmt: skip


def record(destination: str, *, answered: bool = True, error: str | None = None) -> StunTestRecord:
    return StunTestRecord(
        destination=destination,
        answered=answered,
        mapped="198.51.100.1:40000" if answered else None,
        source=destination if answered else None,
        rtt_ms=1.25 if answered else None,
        sends=1 if answered else 7,
        probes=1 if answered else 2,
        responses=1 if answered else 0,
        error=error,
    )


def port_restricted() -> NatResult:
    verdict = NatVerdict(
        mapping=Mapping.ENDPOINT_INDEPENDENT,
        filtering=Mapping.ADDRESS_AND_PORT_DEPENDENT,
        classic=Classic.PORT_RESTRICTED_CONE,
        mapped="198.51.100.1:40000",
        port_preserved=True,
        hairpinning=False,
        advice=["keep-alives every 20 s"],
    )
    tests = NatTests(
        filter_wait_ms=300.0,
        loss=PathLoss(4, 0),
        mapping=SocketTests(
            "10.0.0.2:40000",
            record("198.51.100.2:3478"),
            record("198.51.100.3:3478"),
            record("198.51.100.3:3479"),
        ),
        filtering=SocketTests(
            "10.0.0.2:40001",
            record("198.51.100.2:3478"),
            record("198.51.100.2:3478", answered=False, error="timeout"),
            None,
        ),
    )
    return NatResult(
        "198.51.100.2",
        address="198.51.100.2:3478",
        other_address="198.51.100.3:3479",
        local="10.0.0.2:40000",
        verdict=verdict,
        tests=tests,
        elapsed_ms=312.5,
    )


def render(result: NatResult, mode: OutputMode, **flags: Any) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    NatRenderer(Output(COMMAND, mode=mode, out=out, err=err, **flags)).finish(result)
    return out.getvalue(), err.getvalue()


def test_json_is_one_line_into_a_pipe_with_the_contract_keys_in_order() -> None:
    out, err = render(port_restricted(), OutputMode.JSON)
    assert out.count("\n") == 1 and out.endswith("}\n")
    doc = json.loads(out)
    assert list(doc) == ENVELOPE + BODY
    assert (doc["command"], doc["ok"], doc["exit_code"], doc["errors"]) == (COMMAND, True, 0, [])
    assert (doc["mapping"], doc["filtering"], doc["classic"]) == (
        "endpoint-independent",
        "address-and-port-dependent",
        "port-restricted-cone",
    )
    assert doc["engine"] == "siptool" and doc["compare"] is None and "pystun3" not in doc
    assert doc["hairpinning"] is False and doc["port_preserved"] is True
    assert doc["mapped"] == "198.51.100.1:40000" and doc["lifetime"] is None
    assert err == ""


def test_json_tests_are_the_typed_records_as_before() -> None:
    doc = json.loads(render(port_restricted(), OutputMode.JSON)[0])
    tests = doc["tests"]
    assert list(tests) == ["filter_wait_ms", "loss", "mapping", "filtering"]
    assert tests["loss"] == {"sent": 4, "unanswered": 0}
    assert list(tests["mapping"]) == ["local", "test1", "test2", "test3"]
    assert tests["mapping"]["test3"] == {
        "destination": "198.51.100.3:3479",
        "answered": True,
        "mapped": "198.51.100.1:40000",
        "source": "198.51.100.3:3479",
        "rtt_ms": 1.25,
        "sends": 1,
        "probes": 1,
        "responses": 1,
        "error": None,
    }
    assert tests["filtering"]["test2"]["error"] == "timeout"
    assert tests["filtering"]["test2"]["sends"] == 7
    assert tests["filtering"]["test3"] is None


def test_json_compare_carries_the_commands_agree() -> None:
    result = port_restricted()
    result.pystun3 = EngineReport(classic=Classic.SYMMETRIC, raw="Symmetric NAT", elapsed_ms=9.0)
    result.agree = False
    doc = json.loads(render(result, OutputMode.JSON)[0])
    assert doc["compare"]["siptool"] == "port-restricted-cone"
    assert doc["compare"]["agree"] is False
    assert doc["compare"]["pystun3"] == {
        "engine": "pystun3",
        "classic": "symmetric",
        "raw": "Symmetric NAT",
        "mapped": None,
        "local": None,
        "elapsed_ms": 9.0,
        "error": None,
    }


def test_json_of_pystun3_alone_has_its_report_and_no_siptool_tests() -> None:
    report = EngineReport(
        classic=Classic.FULL_CONE,
        raw="Full Cone",
        mapped="198.51.100.10:5000",
        local="10.0.0.2:5000",
    )
    result = NatResult("198.51.100.2", engine=Engine.PYSTUN3, pystun3=report, local=report.local)
    result.elapsed_ms = 40.0
    doc = json.loads(render(result, OutputMode.JSON)[0])
    assert list(doc) == [*ENVELOPE, *BODY, "pystun3"]
    assert doc["engine"] == "pystun3" and doc["classic"] == "full-cone"
    assert doc["mapping"] == "unknown" and doc["tests"] is None and doc["compare"] is None
    assert doc["mapped"] == "198.51.100.10:5000"
    assert doc["pystun3"]["raw"] == "Full Cone"


def test_json_indented_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    NatRenderer(Output(COMMAND, mode=OutputMode.JSON, out=out, err=io.StringIO())).finish(
        port_restricted()
    )
    assert out.getvalue().startswith('{\n  "command": "nat-type"')


def test_text_report_rows_and_advice() -> None:
    result = port_restricted()
    result.lifetime = Lifetime(alive_s=2.0, expired_s=4.0, max_s=10.0)
    out, err = render(result, OutputMode.TEXT, color=False)
    lines = out.splitlines()
    assert lines[0] == "NAT type          port-restricted-cone  (siptool, 312 ms)"
    assert lines[1] == (
        "server            198.51.100.2 (198.51.100.2:3478), other address 198.51.100.3:3479"
    )
    assert lines[2] == "local / mapped    10.0.0.2:40000 -> 198.51.100.1:40000"
    assert "mapping           endpoint-independent" in lines
    assert "hairpinning       no" in lines and "port preserved    yes" in lines
    assert "binding lifetime  between 2 and 4 s" in lines
    assert lines[-1] == "- keep-alives every 20 s"
    assert err == ""


def test_text_lifetime_outlived_and_failed_searches() -> None:
    result = port_restricted()
    result.lifetime = Lifetime(alive_s=10.0, max_s=10.0)
    assert "binding lifetime  more than 10 s" in render(result, OutputMode.TEXT)[0]
    result.lifetime = Lifetime(max_s=10.0, error="the server ignores RESPONSE-PORT")
    text = render(result, OutputMode.TEXT)[0]
    assert "binding lifetime  unknown: the server ignores RESPONSE-PORT" in text


def test_text_shows_whether_pystun3_agrees_as_the_command_decided() -> None:
    result = port_restricted()
    result.pystun3 = EngineReport(classic=Classic.SYMMETRIC, raw="Symmetric NAT", elapsed_ms=9.0)
    result.agree = False
    assert (
        "pystun3         symmetric (Symmetric NAT, 9 ms)  disagrees"
        in render(result, OutputMode.TEXT)[0]
    )
    result.agree = True  # the renderer draws what it is told, it does not compare labels
    assert "(Symmetric NAT, 9 ms)  agrees" in render(result, OutputMode.TEXT)[0]
    result.pystun3 = EngineReport(error="pystun3 gave no verdict within the 1 s watchdog")
    result.agree = None
    line = next(x for x in render(result, OutputMode.TEXT)[0].splitlines() if "pystun3" in x)
    assert line.endswith(
        "no verdict (pystun3 gave no verdict within the 1 s watchdog) (None, 0 ms)"
    )


def test_inconclusive_reasons_on_stdout_and_errors_on_stderr_made_safe() -> None:
    result = port_restricted()
    assert result.verdict is not None
    hostile = "420 \x1b[2Jbad\x07"
    result.verdict.reasons.append(f"test I: {hostile}")
    result.errors.append(SiptoolError(f"test I: {hostile}", code="inconclusive"))
    result.exit_code = ExitCode.FAILED
    out, err = render(result, OutputMode.TEXT, color=False)
    assert "why: test I: 420 \\x1b[2Jbad\\x07" in out
    assert err == "siptool nat-type: test I: 420 \\x1b[2Jbad\\x07\n"
    for stream in (out, err):
        assert "\x1b" not in stream and "\x07" not in stream
    doc = json.loads(render(result, OutputMode.JSON)[0])
    assert doc["ok"] is False and doc["exit_code"] == 1
    assert doc["errors"] == [{"code": "inconclusive", "message": f"test I: {hostile}"}]


def test_quiet_prints_errors_only() -> None:
    result = port_restricted()
    result.errors.append(SiptoolError("no answer", code="timeout"))
    out, err = render(result, OutputMode.TEXT, quiet=True)
    assert out == ""
    assert err == "siptool nat-type: no answer\n"


def test_exit_3_prints_only_the_stderr_line_in_text_and_the_envelope_in_json() -> None:
    error = LocalBindError("cannot bind 127.0.0.1:5000: Address already in use")
    result = NatResult("127.0.0.1:9", address="127.0.0.1:9", exit_code=ExitCode.NOT_RUN)
    result.errors = [error]
    out, err = render(result, OutputMode.TEXT)
    assert out == ""  # no report with elapsed_ms unknown (it once raised TypeError here)
    assert err == "siptool nat-type: cannot bind 127.0.0.1:5000: Address already in use\n"
    doc = json.loads(render(result, OutputMode.JSON)[0])
    assert doc["exit_code"] == 3 and doc["classic"] == "inconclusive"
    assert doc["errors"] == [{"code": "bind_error", "message": error.message}]
    assert doc["elapsed_ms"] is None and doc["tests"] is None
