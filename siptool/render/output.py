"""Where and how a result is shown: the output mode, the console factory, JSON on stdout and
one-line messages on stderr.  Every renderer takes an ``Output``; none opens a console or
picks a JSON layout of its own, so the commands cannot drift apart.

Decisions:

- stdout carries the result (table, JSON, JSONL, the Nagios line or OpenMetrics text);
  everything meant for a person goes to stderr (shared/cli-contract.md, "JSON").
- ``--textfile PATH`` writes the metrics for node_exporter beside whatever stdout shows, so
  a cron job keeps its log and feeds Prometheus in one run.
- ``--json`` is indented on a terminal and one line when piped, in every command: a script
  gets the C-accelerated compact form, a person the readable one.
- A table is as wide as the terminal, and 160 columns into a pipe or file, wide enough for
  an address, a status and a server name side by side without folding.
- Colour is off with --no-color, NO_COLOR (https://no-color.org), or when stdout is not a
  terminal (rich decides the last itself).
"""

from __future__ import annotations

import enum
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from siptool.errors import ExitCode
from siptool.render.json import dump, dump_pretty, envelope
from siptool.terminal import one_line

if TYPE_CHECKING:
    from rich.console import Console

    from siptool.commands.result import CheckResult, SeveralResult
    from siptool.errors import SiptoolError
    from siptool.render.openmetrics import Metrics

PIPE_WIDTH = 160

R_contra = TypeVar("R_contra", contravariant=True)


class OutputMode(enum.Enum):
    TEXT = "text"
    JSON = "json"
    JSONL = "jsonl"
    NAGIOS = "nagios"
    OPENMETRICS = "openmetrics"


@dataclass(frozen=True)
class Output:
    """The output flags every command has (--json, --jsonl, --nagios, --format, -q,
    --no-color), and when the run began (siptool_probe_duration_seconds)."""

    command: str
    mode: OutputMode = OutputMode.TEXT
    quiet: bool = False
    color: bool = True
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    err: IO[str] = field(default_factory=lambda: sys.stderr)
    textfile: str | None = None  # --textfile: the metrics written there too
    started: float = field(default_factory=time.monotonic)

    @property
    def text(self) -> bool:
        """A table or lines for a person (not JSON, JSONL, Nagios or OpenMetrics)."""
        return self.mode is OutputMode.TEXT

    @property
    def terminal(self) -> bool:
        """stdout is a terminal: JSON indented, tables as wide as it."""
        return _isatty(self.out)

    def console(self) -> Console:
        """The one rich console: terminal width on a terminal, PIPE_WIDTH into a pipe."""
        from rich.console import Console

        return Console(
            file=self.out,
            no_color=not self.color,
            highlight=False,
            width=None if self.terminal else PIPE_WIDTH,
        )

    def json(self, document: Any) -> None:
        """One JSON document on stdout: indented on a terminal, one line when piped."""
        self.out.write(dump_pretty(document, tty=self.terminal) + "\n")

    def jsonl(self, document: Any) -> None:
        """One line of JSONL, flushed so a reader sees each reply as it arrives."""
        self.out.write(dump(document) + "\n")
        self.out.flush()

    def line(self, text: str) -> None:
        """One line of peer-influenced text on stdout, made safe for a terminal."""
        self.out.write(one_line(text) + "\n")

    def error(self, message: str) -> None:
        """``siptool COMMAND: message`` on stderr, one line whatever the peer sent."""
        self.err.write(f"siptool {self.command}: {one_line(message)}\n")

    def document(
        self, exit_code: int, errors: Iterable[SiptoolError], body: dict[str, Any]
    ) -> dict[str, Any]:
        """The contract's envelope (command, ok, exit_code, version, errors) around ``body``."""
        doc = envelope(self.command, exit_code, [e.to_dict() for e in errors])
        doc.update(body)
        return doc


# What every check's result carries for its renderer (the command decided all of it).
C = TypeVar("C", bound="CheckResult")
S = TypeVar("S", bound="SeveralResult")


class ResultRenderer(Generic[C]):
    """The one ``finish`` of the checks (options-ping, register, invite-test, stun-probe,
    nat-type, send, turn-probe ...): the Nagios line and nothing else with --nagios;
    otherwise the one-line messages on stderr, then the OpenMetrics text, the JSON document,
    the JSONL summary, or the report for a person (not with -q, nor when siptool could not
    run the check: stderr said why); then the --textfile, whatever was shown."""

    def __init__(self, output: Output) -> None:
        self.output = output

    def finish(self, result: C) -> None:
        output = self.output
        # Collected once: stdout and the --textfile carry the same samples, duration included.
        wanted = output.mode is OutputMode.OPENMETRICS or output.textfile is not None
        found = self.collect(result) if wanted else None
        self.show(result, found)
        if output.textfile is not None and found is not None:
            self.write_textfile(found, output.textfile)

    def show(self, result: C, found: Metrics | None) -> None:
        """What stdout shows; ``found`` is the run's metrics with --format openmetrics."""
        output = self.output
        if output.mode is OutputMode.OPENMETRICS:
            assert found is not None
            for line in self.messages(result):
                output.error(line)
            output.out.write(found.openmetrics())
            return
        if output.mode is OutputMode.NAGIOS:
            if result.nagios is not None:
                output.line(result.nagios.text)
            return
        for line in self.messages(result):
            output.error(line)
        if output.mode is OutputMode.JSON:
            output.json(self.document(result))
        elif output.mode is OutputMode.JSONL:
            output.jsonl(self.document(result))
        elif not output.quiet and self.has_report(result):
            self.report(result)

    def collect(self, result: C) -> Metrics:
        """The run's metrics: the command's own, then how long the run took."""
        from siptool.render.openmetrics import Metrics

        found = Metrics()
        self.metrics(result, found)
        took = round(time.monotonic() - self.output.started, 6)
        found.add("siptool_probe_duration_seconds", took)
        return found

    def metrics(self, result: C, found: Metrics) -> None:
        """The command's samples (render/openmetrics.py's METRICS): whether the check passed,
        by default."""
        found.add("siptool_probe_success", result.exit_code is ExitCode.OK)

    def write_textfile(self, found: Metrics, path: str) -> None:
        """--textfile: the metrics in node_exporter's text format, atomically; a file that
        cannot be written is an ``InputError`` (exit 3), named."""
        from siptool.errors import InputError
        from siptool.render.openmetrics import write_textfile

        try:
            write_textfile(path, found.prometheus())
        except OSError as exc:
            raise InputError(f"cannot write --textfile {path}: {exc.strerror or exc}") from None

    def messages(self, result: C) -> Iterable[str]:
        """The stderr lines: the errors, by default."""
        return [e.message for e in result.errors]

    def document(self, result: C) -> dict[str, Any]:
        """The JSON document: the contract's envelope, with every error, around ``body``."""
        return self.output.document(result.exit_code, result.all_errors, self.body(result))

    def body(self, result: C) -> dict[str, Any]:
        """The command's own keys of the JSON document, after the envelope."""
        raise NotImplementedError

    def has_report(self, result: C) -> bool:
        return result.exit_code is not ExitCode.NOT_RUN

    def report(self, result: C) -> None:
        raise NotImplementedError


class SeveralRenderer(ResultRenderer[S]):
    """The ``finish`` of a check of several targets or servers (options-ping, stun-probe)."""

    def has_report(self, result: S) -> bool:
        # None checked: siptool could not run the check (exit 3), and stderr said why.
        return bool(result.probed)


class Renderer(Protocol[R_contra]):
    """Every command's renderer: built from an ``Output``, given progress events by the
    command while it runs (methods of its own, such as ``reply``), then ``finish`` with the
    result.  It decides nothing: the verdicts, the Nagios state and the exit code are on the
    result."""

    def finish(self, result: R_contra) -> None: ...


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
