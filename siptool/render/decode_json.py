"""--json and --jsonl output of `siptool decode`."""

from __future__ import annotations

from typing import IO, Any

from siptool.commands.callflow import build_flows
from siptool.commands.decode import DecodedMessage, DecodeResult, Renderer
from siptool.render.json import dump, dump_pretty, envelope


def _document(result: DecodeResult) -> dict[str, Any]:
    doc = envelope(
        "decode",
        result.exit_code,
        [{"code": p.code, "message": p.text(result.input_name)} for p in result.problems],
    )
    doc["input"] = result.input_name
    return doc


class JsonRenderer(Renderer):
    """One document: the envelope, ``messages``, ``summary`` (and ``flows`` with --flow)."""

    def __init__(self, out: IO[str], *, flow: bool) -> None:
        self.out = out
        self.flow = flow
        self.messages: list[DecodedMessage] = []

    def message(self, decoded: DecodedMessage) -> None:
        self.messages.append(decoded)

    def finish(self, result: DecodeResult) -> None:
        doc = _document(result)
        doc["messages"] = [m.to_dict() for m in self.messages]
        doc["summary"] = result.summary.to_dict()
        doc["flows"] = [f.to_dict() for f in build_flows(self.messages)] if self.flow else None
        self.out.write(dump_pretty(doc, tty=self.out.isatty()) + "\n")


class JsonLinesRenderer(Renderer):
    """One object per message as it is decoded, then the envelope with ``summary``."""

    _BATCH = 512

    def __init__(self, out: IO[str], *, flow: bool) -> None:
        self.out = out
        self.flow = flow
        self.pending: list[str] = []
        self.kept: list[DecodedMessage] = []

    def message(self, decoded: DecodedMessage) -> None:
        self.pending.append(dump(decoded.to_dict()))
        if self.flow:
            self.kept.append(decoded)
        if len(self.pending) >= self._BATCH:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            self.out.write("\n".join(self.pending) + "\n")
            self.pending.clear()

    def finish(self, result: DecodeResult) -> None:
        self._flush()
        doc = {"summary": result.summary.to_dict(), **_document(result)}
        doc["flows"] = [f.to_dict() for f in build_flows(self.kept)] if self.flow else None
        self.out.write(dump(doc) + "\n")
        self.out.flush()
