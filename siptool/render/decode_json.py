"""--json and --jsonl output of `siptool decode`.

Decisions:

- --json keeps the messages until the end: the document is one object.  --jsonl writes each
  message as it is decoded, 512 lines at a time rather than a write and a flush per line, and
  ends with the summary object.
- When siptool could not read the input (exit 3) the document has no ``flows``, and the JSONL
  summary object carries an empty ``messages``: the shape decode has always written then.
"""

from __future__ import annotations

from typing import Any

from siptool.commands.decode import DecodedMessage, DecodeResult
from siptool.errors import ExitCode, SiptoolError
from siptool.render.json import dump
from siptool.render.output import Output


def document(output: Output, result: DecodeResult, body: dict[str, Any]) -> dict[str, Any]:
    """The envelope, ``input``, then ``body``."""
    return output.document(result.exit_code, result.errors, {"input": result.input_name, **body})


def flows(result: DecodeResult) -> list[dict[str, Any]] | None:
    return None if result.flows is None else [f.to_dict() for f in result.flows]


class JsonRenderer:
    """One document: the envelope, ``messages``, ``summary`` (and ``flows`` with --flow)."""

    def __init__(self, output: Output) -> None:
        self.output = output
        self.messages: list[DecodedMessage] = []

    def message(self, decoded: DecodedMessage) -> None:
        self.messages.append(decoded)

    def problem(self, error: SiptoolError) -> None:
        self.output.error(error.message)

    def finish(self, result: DecodeResult) -> None:
        body: dict[str, Any] = {
            "messages": [m.to_dict() for m in self.messages],
            "summary": result.summary.to_dict(),
        }
        if result.exit_code is not ExitCode.NOT_RUN:
            body["flows"] = flows(result)
        self.output.json(document(self.output, result, body))


class JsonLinesRenderer:
    """One object per message as it is decoded, then the envelope with ``summary``."""

    _BATCH = 512

    def __init__(self, output: Output) -> None:
        self.output = output
        self.write = output.out.write
        self.pending: list[str] = []

    def message(self, decoded: DecodedMessage) -> None:
        self.pending.append(dump(decoded.to_dict()))
        if len(self.pending) >= self._BATCH:
            self._flush()

    def problem(self, error: SiptoolError) -> None:
        self.output.error(error.message)

    def _flush(self) -> None:
        if self.pending:
            self.write("\n".join(self.pending) + "\n")
            self.pending.clear()

    def finish(self, result: DecodeResult) -> None:
        self._flush()
        if result.exit_code is ExitCode.NOT_RUN:
            body: dict[str, Any] = {"messages": []}
        else:
            body = {"flows": flows(result)}
        self.output.jsonl(
            {"summary": result.summary.to_dict(), **document(self.output, result, body)}
        )
