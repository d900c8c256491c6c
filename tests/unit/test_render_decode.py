"""render/decode_json.py and render/decode_text.py in-process, on results built by hand: they
draw what the command decided (counts, errors, exit code, call flows) and nothing else."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import pytest

from siptool.capture import RawMessage
from siptool.cli.decode import renderer_for
from siptool.commands.callflow import Arrow, CallFlow
from siptool.commands.decode import (
    DecodedMessage,
    DecodeOptions,
    DecodeResult,
    DecodeView,
    Summary,
)
from siptool.errors import ExitCode, InputError, SiptoolError
from siptool.render.decode_json import JsonLinesRenderer, JsonRenderer
from siptool.render.decode_text import TextRenderer
from siptool.render.json import dump_pretty
from siptool.render.output import Output, OutputMode
from siptool.sip.lint import LintWarning
from siptool.sip.message import parse_message

ENVELOPE = ["command", "ok", "exit_code", "siptool_version", "errors"]
MESSAGE_KEYS = [
    "index", "frame", "time", "src", "dst", "transport", "protocol", "kind", "method",
    "status", "reason", "request_uri", "call_id", "cseq", "from", "to", "via", "headers",
    "body", "sdp", "stun", "lint",
]  # fmt: skip

INVITE = (
    b"INVITE sip:bob@192.0.2.2 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1\r\n"
    b"From: <sip:alice@example.com>;tag=a1\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: call-1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"X-Note: \x1b]0;owned\x07\r\n"
    b"Content-Length: 0\r\n\r\n"
)
BAD = SiptoolError("cap.pcap: packet 3: invalid SIP message: no start line", code="parse_error")


def invite(index: int = 1, lint: list[LintWarning] | None = None) -> DecodedMessage:
    raw = RawMessage(
        "sip", INVITE, frame=index, time=1000.25, src="192.0.2.1:5060", dst="192.0.2.2:5060",
        transport="udp", offset=0,
    )  # fmt: skip
    return DecodedMessage(index, raw, sip=parse_message(INVITE), lint=lint)


def flow() -> CallFlow:
    # Not what the message above would give: the renderers draw the flows they are handed.
    arrows = [Arrow(1, 0.0, "a:1", "b:2", "MADE-UP"), Arrow(2, 1.5, "b:2", "a:1", "200 OK")]
    return CallFlow("call-made-up", ["a:1", "b:2"], arrows)


def decoded(flows: list[CallFlow] | None = None) -> DecodeResult:
    result = DecodeResult("cap.pcap", Summary(sip=1, invalid=1, filtered_out=2), flows=flows)
    result.errors = [BAD]
    result.exit_code = ExitCode.FAILED
    return result


def unreadable() -> DecodeResult:
    error = InputError("cannot read gone.pcap: No such file or directory")
    return DecodeResult("gone.pcap", errors=[error], exit_code=ExitCode.NOT_RUN)


def draw(
    result: DecodeResult,
    mode: OutputMode,
    messages: Sequence[DecodedMessage] = (),
    *,
    quiet: bool = False,
    **options: Any,
) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    shown = Output("decode", mode=mode, quiet=quiet, color=False, out=out, err=err)
    renderer = renderer_for(shown, DecodeOptions(source="cap.pcap", **options))
    for m in messages:
        renderer.message(m)
    renderer.finish(result)
    return out.getvalue(), err.getvalue()


def test_the_renderer_is_the_output_modes() -> None:
    def kind(mode: OutputMode) -> type:
        return type(renderer_for(Output("decode", mode=mode), DecodeOptions(source="-")))

    assert kind(OutputMode.JSON) is JsonRenderer
    assert kind(OutputMode.JSONL) is JsonLinesRenderer
    assert kind(OutputMode.TEXT) is TextRenderer


def test_json_is_one_line_with_the_contract_keys_and_the_results_errors() -> None:
    out, err = draw(decoded([flow()]), OutputMode.JSON, [invite()], view=DecodeView.FLOW)
    assert out.count("\n") == 1 and err == ""
    doc = json.loads(out)
    # Streamed: what is known before the input opens it, what is known after closes it.
    assert list(doc) == [*STREAM_HEAD, "messages", *STREAM_TAIL, "input", "summary", "flows"]
    assert doc["command"] == "decode" and doc["ok"] is False and doc["exit_code"] == 1
    assert doc["errors"] == [BAD.to_dict()] and doc["input"] == "cap.pcap"
    assert doc["summary"] == {
        "sip": 1,
        "stun": 0,
        "invalid": 1,
        "filtered_out": 2,
        "not_decoded": [],
        "websocket": [],
        "tls": [],
    }
    [message] = doc["messages"]
    assert list(message) == MESSAGE_KEYS
    assert message["src"] == "192.0.2.1:5060" and message["method"] == "INVITE"
    assert message["stun"] is None and message["lint"] is None
    # JSON keeps the exact string; only the terminal views escape it.
    assert ["X-Note", "\x1b]0;owned\x07"] in message["headers"]
    [drawn] = doc["flows"]
    assert drawn["call_id"] == "call-made-up" and drawn["duration_ms"] == 1.5
    assert [m["label"] for m in drawn["messages"]] == ["MADE-UP", "200 OK"]


STREAM_HEAD = ["command", "siptool_version"]
STREAM_TAIL = [key for key in ENVELOPE if key not in STREAM_HEAD]


@pytest.mark.parametrize("tty", [False, True])
def test_json_is_written_as_the_messages_come_and_is_one_valid_document(tty: bool) -> None:
    out = io.StringIO()
    out.isatty = lambda: tty  # type: ignore[method-assign]
    renderer = JsonRenderer(Output("decode", mode=OutputMode.JSON, out=out))
    batch = JsonRenderer._BATCH
    for index in range(1, batch + 2):
        renderer.message(invite(index))
    written = out.getvalue()
    assert written.count('"index"') == batch  # one batch out, the next message still held
    renderer.finish(decoded())
    doc = json.loads(out.getvalue())
    assert [m["index"] for m in doc["messages"]] == list(range(1, batch + 2))
    # Laid out as json.dumps lays out the same document: indented on a terminal, else one line.
    assert out.getvalue() == dump_pretty(doc, tty=tty) + "\n"


def test_json_without_flows_says_null() -> None:
    out, _ = draw(decoded(), OutputMode.JSON, [invite()])
    assert json.loads(out)["flows"] is None


@pytest.mark.parametrize("mode", [OutputMode.JSON, OutputMode.JSONL])
def test_an_unreadable_input_is_a_document_with_exit_3_and_no_flows(mode: OutputMode) -> None:
    out, err = draw(unreadable(), mode, view=DecodeView.FLOW)
    assert out.count("\n") == 1 and err == ""
    doc = json.loads(out)
    if mode is OutputMode.JSON:
        assert list(doc) == [*ENVELOPE, "input", "messages", "summary"]
    else:
        assert list(doc) == ["summary", *ENVELOPE, "input", "messages"]
    assert doc["exit_code"] == 3 and doc["ok"] is False and doc["messages"] == []
    assert doc["errors"] == [
        {"code": "input_error", "message": "cannot read gone.pcap: No such file or directory"}
    ]
    assert doc["summary"] == {
        "sip": 0,
        "stun": 0,
        "invalid": 0,
        "filtered_out": 0,
        "not_decoded": [],
        "websocket": [],
        "tls": [],
    }


def test_jsonl_is_one_line_per_message_then_the_summary_object() -> None:
    out, err = draw(decoded([flow()]), OutputMode.JSONL, [invite(1), invite(2)])
    *lines, last = [json.loads(line) for line in out.splitlines()]
    assert [m["index"] for m in lines] == [1, 2] and list(lines[0]) == MESSAGE_KEYS
    assert list(last) == ["summary", *ENVELOPE, "input", "flows"]
    assert last["exit_code"] == 1 and last["errors"] == [BAD.to_dict()]
    assert last["flows"][0]["participants"] == ["a:1", "b:2"]
    assert err == ""


@pytest.mark.parametrize("mode", [OutputMode.TEXT, OutputMode.JSON, OutputMode.JSONL])
def test_each_problem_is_one_stderr_line_as_it_is_found(mode: OutputMode) -> None:
    out, err = io.StringIO(), io.StringIO()
    renderer = renderer_for(
        Output("decode", mode=mode, out=out, err=err), DecodeOptions(source="x")
    )
    renderer.problem(BAD)
    renderer.problem(SiptoolError("x: byte 9: bad \x1b[2J\nsecond line"))
    assert err.getvalue().splitlines() == [
        "siptool decode: cap.pcap: packet 3: invalid SIP message: no start line",
        "siptool decode: x: byte 9: bad \\x1b[2J\\x0asecond line",
    ]
    assert out.getvalue() == ""


def test_the_table_shows_each_message_and_the_summary_line() -> None:
    out, err = draw(decoded(), OutputMode.TEXT, [invite()])
    lines = out.splitlines()
    assert lines[0].split() == ["#", "time", "source", "->", "destination", "proto", "summary"]
    assert lines[1].split()[:6] == ["1", "0.000000", "192.0.2.1:5060", "->", "192.0.2.2:5060",
                                    "SIP/UDP"]  # fmt: skip
    assert "INVITE sip:bob@192.0.2.2  (CSeq 1 INVITE)" in lines[1]
    assert lines[-1] == "1 SIP, 0 STUN, 1 invalid, 2 filtered out"
    assert err == ""


def test_verbose_shows_every_header_with_peer_controls_escaped() -> None:
    out, _ = draw(decoded(), OutputMode.TEXT, [invite()], view=DecodeView.VERBOSE)
    assert "Call-ID: call-1" in out.splitlines()
    assert "X-Note: \\x1b]0;owned\\x07" in out.splitlines() and "\x1b" not in out
    assert "(packet 1)" in out.splitlines()[0]


def test_the_ladders_are_the_results_flows_not_rebuilt_from_the_messages() -> None:
    out, _ = draw(decoded([flow()]), OutputMode.TEXT, [invite()], view=DecodeView.FLOW)
    lines = out.splitlines()
    assert lines[0] == "Call-ID: call-made-up   2 messages, 1.5 ms"
    assert "MADE-UP" in lines[2] and "200 OK" in lines[3]
    assert "call-1" not in out and lines[-1] == "1 SIP, 0 STUN, 1 invalid, 2 filtered out"


def test_a_flow_view_without_flows_says_there_are_no_dialogs() -> None:
    out, _ = draw(decoded([]), OutputMode.TEXT, view=DecodeView.FLOW)
    assert out.splitlines()[0] == "no SIP dialogs in the input"


def test_lint_lists_each_finding_after_the_view() -> None:
    found = [LintWarning("max-forwards-missing", "no Max-Forwards", severity="error")]
    out, _ = draw(decoded([flow()]), OutputMode.TEXT, [invite(lint=found)],
                  view=DecodeView.FLOW, lint=True)  # fmt: skip
    lines = out.splitlines()
    assert "lint: 1 findings" in lines
    assert "  #1 (packet 1) INVITE sip:bob@192.0.2.2: max-forwards-missing no Max-Forwards" in lines
    clean, _ = draw(decoded(), OutputMode.TEXT, [invite()], lint=True)
    assert "lint: no problems found" in clean.splitlines()


@pytest.mark.parametrize("view", list(DecodeView))
def test_nothing_on_stdout_when_quiet_or_when_the_input_could_not_be_read(
    view: DecodeView,
) -> None:
    assert draw(decoded([flow()]), OutputMode.TEXT, [invite()], view=view, quiet=True) == ("", "")
    assert draw(unreadable(), OutputMode.TEXT, view=view) == ("", "")
