"""commands/decode.py's ``run_decode`` in-process: it streams each kept message and each
problem to its callbacks as they are found, and carries the verdicts on the result (counts,
errors, exit code, the call flows with --flow); it imports nothing above itself."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

from siptool.cli.decode import FORMATS
from siptool.commands.decode import (
    DecodedMessage,
    DecodeOptions,
    DecodeResult,
    DecodeView,
    InputFormat,
    run_decode,
)
from siptool.errors import ExitCode, InputError, SiptoolError
from tests.support.captures import sip_request, sip_response
from tests.unit.test_layers import graph, layer_of

DECODE_MODULES = ("siptool.commands.decode", "siptool.commands.callflow")


class Sink:
    def __init__(self) -> None:
        self.messages: list[DecodedMessage] = []
        self.problems: list[SiptoolError] = []

    def run(self, path: Path, **options: Any) -> DecodeResult:
        return run_decode(
            DecodeOptions(source=str(path), **options),
            self.messages.append,
            self.problems.append,
        )


def two_calls(tmp_path: Path) -> Path:
    path = tmp_path / "calls.txt"
    path.write_bytes(
        sip_request("INVITE", "one")
        + sip_response(200, "one", method="INVITE")
        + sip_request("OPTIONS", "two")
    )
    return path


def test_each_kept_message_is_handed_over_in_order_and_counted(tmp_path: Path) -> None:
    sink = Sink()
    result = sink.run(two_calls(tmp_path), call_ids=("one",))
    assert [m.index for m in sink.messages] == [1, 2]
    assert [m.call_id for m in sink.messages] == ["one", "one"]
    assert result.summary.to_dict() == {
        "sip": 2,
        "stun": 0,
        "invalid": 0,
        "filtered_out": 1,
        "not_decoded": [],
        "websocket": [],
        "tls": [],
    }
    assert result.exit_code is ExitCode.OK and result.errors == [] and sink.problems == []
    assert result.flows is None  # only the flow view builds them


def test_the_flow_view_builds_one_flow_per_kept_call(tmp_path: Path) -> None:
    sink = Sink()
    result = sink.run(two_calls(tmp_path), view=DecodeView.FLOW, methods=("INVITE",))
    assert result.flows is not None
    [call] = result.flows
    assert call.call_id == "one"
    assert [(a.index, a.label) for a in call.arrows] == [(1, "INVITE"), (2, "200 OK")]


def test_a_problem_is_handed_over_as_found_and_is_the_results_error(tmp_path: Path) -> None:
    path = tmp_path / "half.txt"
    path.write_bytes(sip_request("OPTIONS", "ok") + b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\n")
    sink = Sink()
    result = sink.run(path)
    assert [m.call_id for m in sink.messages] == ["ok"]
    [problem] = sink.problems
    assert result.errors == [problem] and problem.code == "parse_error"
    assert problem.message.startswith(f"{path}: byte ") and "incomplete INVITE" in problem.message
    assert result.exit_code is ExitCode.FAILED and result.summary.invalid == 1


def test_an_unreadable_input_is_exit_3_with_its_error_not_an_exception(tmp_path: Path) -> None:
    sink = Sink()
    missing = tmp_path / "missing.pcap"
    result = sink.run(missing, view=DecodeView.FLOW)
    [problem] = sink.problems
    assert isinstance(problem, InputError) and problem.code == "input_error"
    assert problem.message == f"cannot read {missing}: No such file or directory"
    assert result.errors == [problem] and result.exit_code is ExitCode.NOT_RUN
    assert result.input_name == str(missing) and sink.messages == [] and result.flows is None


def test_the_command_imports_neither_render_nor_cli() -> None:
    edges = graph()
    for module in DECODE_MODULES:
        upward = [m for m in edges[module] if layer_of(m) in ("render", "cli")]
        assert upward == [], module
    # And render's decode modules do not build flows: they draw what they are handed (the
    # CallFlow type is named, the builders never).
    for module in ("siptool.render.decode_text", "siptool.render.decode_json"):
        source = inspect.getsource(importlib.import_module(module))
        assert "CallFlows" not in source and "build_flows" not in source, module


def test_the_format_flags_choices_are_the_input_formats() -> None:
    # cli/decode.py spells them out so that --help imports no engine.
    assert [f.value for f in InputFormat] == FORMATS


def test_the_media_view_counts_every_message_and_filters_by_reading_them() -> None:
    from tests.support.paths import ROOT

    call = ROOT / "examples" / "call-rtp-dtmf.pcap"
    sink = Sink()
    result = sink.run(call, view=DecodeView.RTP, rtp=True)
    assert (result.summary.sip, result.summary.filtered_out) == (13, 0)
    assert sink.messages  # the messages with SDP (and the INVITE) were parsed and handed over
    assert result.media is not None and [v.verdict for v in result.media.calls] == ["both-ways"]
    filtered = Sink().run(call, view=DecodeView.RTP, rtp=True, call_ids=("nope",))
    assert (filtered.summary.sip, filtered.summary.filtered_out) == (0, 13)
    assert filtered.media is not None and filtered.media.calls == []


def test_live_ports_are_ascii_numbers_or_ranges_and_nothing_else() -> None:
    import pytest

    from siptool.commands.decode_live import DEFAULT_PORTS, parse_ports

    assert parse_ports(("5060", "10000-10002", "5060")) == (5060, 10000, 10001, 10002)
    for bad in ("²", "٣", "5060-", "-5", "0", "70000", "12-10", "1e3", ""):
        with pytest.raises(ValueError, match=f"bad port {bad!r}"):
            parse_ports((bad,))
    # --help names the default without importing the engine: the two must agree.
    from siptool.cli.decode import decode

    [port_help] = [p.help for p in decode.params if p.name == "ports"]
    assert f"default {' '.join(map(str, DEFAULT_PORTS))})" in str(port_help)
