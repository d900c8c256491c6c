"""cli/run.py in-process: what every command's run turns into on stderr and in the exit code,
with stand-in work (no socket, no process)."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass

import pytest

from siptool.cli.options import NagiosFlags, OutputFlags
from siptool.cli.run import Job, _run, output_for
from siptool.commands.nagios import NagiosState, NagiosVerdict
from siptool.errors import ExitCode, InputError, UsageError
from siptool.render.output import Output, OutputMode


@dataclass
class Result:
    exit_code: ExitCode
    nagios: NagiosVerdict | None = None


class Recorder:
    def __init__(self) -> None:
        self.finished: list[Result] = []

    def finish(self, result: Result) -> None:
        self.finished.append(result)


def job(work: object, mode: OutputMode = OutputMode.TEXT) -> tuple[Job[Result], Recorder]:
    recorder = Recorder()
    output = Output("demo", mode=mode, out=io.StringIO(), err=io.StringIO())
    return Job(output, recorder, work), recorder  # type: ignore[arg-type]


def test_a_plain_result_is_finished_and_gives_its_exit_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    done, recorder = job(lambda: Result(ExitCode.FAILED))
    assert _run("demo", lambda: done) == 1
    assert recorder.finished == [Result(ExitCode.FAILED)]
    assert capsys.readouterr().err == ""


def test_a_coroutine_runs_under_asyncio() -> None:
    async def work() -> Result:
        await asyncio.sleep(0)
        return Result(ExitCode.OK)

    done, recorder = job(work)
    assert _run("demo", lambda: done) == 0
    assert recorder.finished == [Result(ExitCode.OK)]


def test_with_nagios_the_exit_code_is_the_nagios_state() -> None:
    verdict = NagiosVerdict(NagiosState.WARNING, "SIP WARNING - slow")
    done, _ = job(lambda: Result(ExitCode.OK, verdict), OutputMode.NAGIOS)
    assert _run("demo", lambda: done) == 1
    done, _ = job(lambda: Result(ExitCode.OK, verdict), OutputMode.JSON)
    assert _run("demo", lambda: done) == 0


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        (UsageError("--json and --jsonl are exclusive"), 2, "--json and --jsonl are exclusive"),
        (InputError("cannot read t.txt: No such file"), 3, "cannot read t.txt: No such file"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
)
def test_an_error_before_or_during_the_work_is_one_line(
    error: BaseException, code: int, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def prepare() -> Job[Result]:
        raise error

    assert _run("demo", prepare) == code
    assert capsys.readouterr().err == f"siptool demo: {line}\n"


def test_ctrl_c_during_asyncio_work_is_130_after_the_cleanup(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cleaned: list[str] = []

    async def work() -> Result:
        try:
            asyncio.get_running_loop().call_soon(_interrupt)
            await asyncio.sleep(5)
        finally:
            cleaned.append("BYE")
        return Result(ExitCode.OK)

    done, recorder = job(work)
    assert _run("demo", lambda: done) == 130
    assert cleaned == ["BYE"] and recorder.finished == []
    assert capsys.readouterr().err == "siptool demo: interrupted\n"


def _interrupt() -> None:
    import os
    import signal

    os.kill(os.getpid(), signal.SIGINT)


def test_a_bug_is_one_line_exit_3_and_the_traceback_only_with_siptool_debug(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> Result:
        raise ZeroDivisionError("division by zero")

    done, _ = job(broken)
    monkeypatch.delenv("SIPTOOL_DEBUG", raising=False)
    assert _run("demo", lambda: done) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("siptool demo: internal error, a bug in siptool ")
    assert err.endswith("ZeroDivisionError: division by zero\n")
    monkeypatch.setenv("SIPTOOL_DEBUG", "1")
    assert _run("demo", lambda: done) == 3
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_output_modes_and_the_flag_rules() -> None:
    assert output_for("x", OutputFlags()).mode is OutputMode.TEXT
    assert output_for("x", OutputFlags(as_json=True)).mode is OutputMode.JSON
    assert output_for("x", OutputFlags(), jsonl=True).mode is OutputMode.JSONL
    nagios = NagiosFlags(nagios=True, warning=100, critical=500)
    assert output_for("x", OutputFlags(), nagios=nagios).mode is OutputMode.NAGIOS
    shown = output_for("x", OutputFlags(quiet=True, no_color=True))
    assert shown.quiet and not shown.color
    with pytest.raises(UsageError, match="exclusive"):
        output_for("x", OutputFlags(as_json=True), jsonl=True)
    with pytest.raises(UsageError, match="-n/--count"):
        output_for("x", OutputFlags(), nagios=NagiosFlags(critical=500))
    with pytest.raises(UsageError, match="needs --nagios"):
        output_for("x", OutputFlags(), nagios=NagiosFlags(warning=100))
    with pytest.raises(UsageError, match="one status line"):
        output_for("x", OutputFlags(as_json=True), nagios=NagiosFlags(nagios=True))


def test_json_is_indented_on_a_terminal_and_one_line_into_a_pipe() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    piped, terminal = io.StringIO(), Terminal()
    Output("x", out=piped).json({"a": [1, 2]})
    Output("x", out=terminal).json({"a": [1, 2]})
    assert piped.getvalue() == '{"a":[1,2]}\n'
    assert terminal.getvalue() == '{\n  "a": [\n    1,\n    2\n  ]\n}\n'
