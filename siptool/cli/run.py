"""The one runner every command goes through.

A command's click function (cli/X.py) builds its typed options and hands ``run_command`` a
``prepare`` callable returning a ``Job``: the output, the renderer and the work.  Everything
that must be the same in every command happens here, once:

- A usage error found after click parsed the flags (``UsageError``: --json with --jsonl, -c
  without --nagios, a bad target) is one line on stderr and exit 2.  click's own parse errors
  are made one line too, in ``siptool.cli.main``.
- An input siptool cannot read before it starts (``InputError``: a --password-file, a -f
  targets file) is one line and exit 3.
- The work runs under ``asyncio.run`` when it is a coroutine (decode's is not, and so never
  imports asyncio).  asyncio.run turns the first Ctrl-C into a cancellation of the work, so a
  command's ``finally``/``except CancelledError`` does its cleanup (BYE or CANCEL, unregister)
  before the KeyboardInterrupt reaches here: "interrupted", exit 130, in every command.
- The exit code is the result's (``exit_code``), or its Nagios state with --nagios: the
  command decided both; the renderer only draws.
- Any other exception is a bug: one line saying so, exit 3; the traceback only with
  SIPTOOL_DEBUG=1.
- A reader that goes away (``siptool decode big.pcap | head``) is not an error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar

from siptool.cli.options import MetricsFlags, NagiosFlags, OutputFlags

if TYPE_CHECKING:
    import click

    from siptool.commands.result import CheckResult
    from siptool.render.output import Output, Renderer

R = TypeVar("R")


class Job(Generic[R]):
    """One command run: where it is shown, who draws it, and the work itself.  (A plain
    class: a dataclass or a generic NamedTuple here costs milliseconds at every start.)"""

    __slots__ = ("output", "pcap_out", "renderer", "work")

    def __init__(
        self,
        output: Output,
        renderer: Renderer[R],
        work: Callable[[], Awaitable[R] | R],
        *,
        pcap_out: str | None = None,
    ) -> None:
        self.output = output
        self.renderer = renderer
        self.work = work
        self.pcap_out = pcap_out  # --pcap-out: every packet of the run saved there


def output_for(
    command: str,
    flags: OutputFlags,
    *,
    jsonl: bool = False,
    nagios: NagiosFlags | None = None,
    metrics: MetricsFlags | None = None,
) -> Output:
    """The ``Output`` of a command from its output flags; ``UsageError`` when they clash."""
    from siptool.errors import UsageError
    from siptool.render.output import Output, OutputMode

    chosen = metrics.output_format if metrics is not None else None
    if chosen == "json":
        flags = flags._replace(as_json=True)
    if chosen == "openmetrics":
        with_nagios = nagios is not None and nagios.nagios
        for name, on in (("--json", flags.as_json), ("--jsonl", jsonl), ("--nagios", with_nagios)):
            if on:
                raise UsageError(f"--format openmetrics prints metrics: not with {name}")
    if flags.as_json and jsonl:
        raise UsageError("--json and --jsonl are exclusive")
    if nagios is not None and not nagios.nagios:
        if nagios.critical is not None:
            raise UsageError(
                "-c/--critical is the Nagios critical threshold and needs --nagios; "
                "the repeat count is -n/--count"
            )
        if nagios.warning is not None:
            raise UsageError("-w/--warning is the Nagios warning threshold and needs --nagios")
    if nagios is not None and nagios.nagios:
        if flags.as_json or jsonl:
            raise UsageError("--nagios prints one status line: not with --json or --jsonl")
        mode = OutputMode.NAGIOS
    elif chosen == "openmetrics":
        mode = OutputMode.OPENMETRICS
    elif flags.as_json:
        mode = OutputMode.JSON
    elif jsonl:
        mode = OutputMode.JSONL
    else:
        mode = OutputMode.TEXT
    textfile = metrics.textfile if metrics is not None else None
    return Output(
        command, mode=mode, quiet=flags.quiet, color=not flags.no_color, textfile=textfile
    )


class Prepared(Exception):
    """What ``run_command`` raises instead of running, inside ``prepared_job``: the command's
    ``prepare``, for a caller that runs the work itself (the exporter, in its own loop)."""

    def __init__(self, prepare: Callable[[], Job[Any]]) -> None:
        super().__init__("prepared")
        self.prepare = prepare


_WANT_JOB: ContextVar[bool] = ContextVar("siptool_want_job", default=False)


def prepared_job(command: click.Command, args: list[str]) -> Job[Any]:
    """The ``Job`` ``command`` would run for ``args``, not run: click parses the flags as on
    the command line, the command builds its options and renderer.  Raises click's
    ``UsageError`` for bad flags, siptool's ``UsageError``/``InputError`` from ``prepare``."""
    token = _WANT_JOB.set(True)
    try:
        command.main(args, prog_name=f"siptool {command.name}", standalone_mode=False)
    except Prepared as prepared:
        return prepared.prepare()
    finally:
        _WANT_JOB.reset(token)
    raise RuntimeError(f"siptool {command.name} prepared no job")


def run_command(command: str, prepare: Callable[[], Job[Any]]) -> NoReturn:
    """Run one command the same way as every other, and exit with its code."""
    if _WANT_JOB.get():
        raise Prepared(prepare)
    raise SystemExit(_run(command, prepare))


def _run(command: str, prepare: Callable[[], Job[Any]]) -> int:
    from siptool.errors import ExitCode, InputError, UsageError

    def say(message: str) -> None:
        from siptool.terminal import one_line

        sys.stderr.write(f"siptool {command}: {one_line(message)}\n")

    job: Job[Any] | None = None
    try:
        job = prepare()
        result = _drive(job.work, job.pcap_out)
        job.renderer.finish(result)
        return exit_code(result, job.output)
    except UsageError as exc:
        say(exc.message)
        return ExitCode.USAGE
    except InputError as exc:
        say(exc.message)
        return ExitCode.NOT_RUN
    except KeyboardInterrupt:
        say("interrupted")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # The reader left.  Point stdout at /dev/null so the interpreter's last flush is quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return ExitCode.OK
    except Exception as exc:  # the one place a bug becomes one line
        if os.environ.get("SIPTOOL_DEBUG") == "1":
            import traceback

            traceback.print_exc()
        from siptool import __version__

        say(
            f"internal error, a bug in siptool {__version__} (SIPTOOL_DEBUG=1 shows where): "
            f"{type(exc).__name__}: {exc}"
        )
        return ExitCode.NOT_RUN


def _drive(work: Callable[[], Awaitable[R] | R], pcap_out: str | None = None) -> R:
    if pcap_out is None:
        return _drive_work(work)
    from siptool.net.pcap_tap import recording

    # InputError (exit 3) when the file cannot be written; written whole however the run ends.
    with recording(pcap_out):
        return _drive_work(work)


def _drive_work(work: Callable[[], Awaitable[R] | R]) -> R:
    import inspect

    pending = work()
    if not inspect.isawaitable(pending):
        return pending
    import asyncio

    results: list[R] = []

    async def main() -> None:
        # The result stays off the main task: asyncio.run's SIGINT bookkeeping reprs that
        # task (and so its result) on the way out, 50 ms for a thousand-target ping.
        results.append(await pending)

    asyncio.run(main())
    return results[0]


def exit_code(result: CheckResult, output: Output) -> int:
    """The result's exit code, or its Nagios state with --nagios."""
    from siptool.render.output import OutputMode

    if output.mode is OutputMode.NAGIOS and result.nagios is not None:
        return int(result.nagios.state)
    return int(result.exit_code)
