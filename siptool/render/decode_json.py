"""--json and --jsonl output of `siptool decode`.

Decisions:

- --json streams its one document (issue 10): the keys known before the input is read
  (``command``, ``siptool_version``) open it, then each message of the ``messages`` array is
  written as it is decoded, and the keys known only at the end (``ok``, ``exit_code``,
  ``errors``, ``input``, ``summary``, ``flows``) close it.  JSON objects have no key order a
  reader may depend on (RFC 8259 §4); memory no longer grows with the messages.  A document
  with no message (an empty or unreadable input) is written whole at the end, envelope first.
- --jsonl writes each message as it is decoded, and ends with the summary object.
- Both write 512 messages at a time rather than a write per message.
- When siptool could not read the input (exit 3) the document has no ``flows``, and the JSONL
  summary object carries an empty ``messages``: the shape decode has always written then.
"""

from __future__ import annotations

from typing import Any

from siptool.commands.decode import DecodedMessage, DecodeResult
from siptool.errors import ExitCode, SiptoolError
from siptool.render.json import dump, dump_pretty
from siptool.render.output import Output


def document(output: Output, result: DecodeResult, body: dict[str, Any]) -> dict[str, Any]:
    """The envelope, ``input``, then ``body``."""
    return output.document(result.exit_code, result.errors, {"input": result.input_name, **body})


def flows(result: DecodeResult) -> list[dict[str, Any]] | None:
    return None if result.flows is None else [f.to_dict() for f in result.flows]


def media(result: DecodeResult) -> dict[str, Any]:
    """With --rtp: ``rtp_streams`` and per call ``media`` (shared/cli-contract.md)."""
    if result.media is None:
        return {}
    return {
        "rtp_streams": result.media.streams,
        "media": [v.to_dict() for v in result.media.calls],
    }


class JsonRenderer:
    """One document: the envelope, ``messages``, ``summary`` (and ``flows`` with --flow),
    streamed (see the module docstring)."""

    _BATCH = 512
    flow = None  # the flows go in the document whole, at the end: not handed over as they end

    def __init__(self, output: Output, *, live: bool = False) -> None:
        self.output = output
        self.write = output.out.write
        self.tty = output.terminal
        self.pending: list[str] = []
        self.started = False
        self.batch = 1 if live else self._BATCH  # live: each message written and flushed

    def message(self, decoded: DecodedMessage) -> None:
        self.pending.append(dump_pretty(decoded.to_dict(), tty=self.tty))
        if len(self.pending) >= self.batch:
            self._flush()

    def problem(self, error: SiptoolError) -> None:
        self.output.error(error.message)

    def _flush(self) -> None:
        if not self.pending:
            return
        if self.tty:
            text = ",\n".join(_indented(m, "    ") for m in self.pending)
        else:
            text = ",".join(self.pending)
        if not self.started:
            head = {k: v for k, v in self.output.document(0, [], {}).items() if k in _HEAD}
            opened = dump_pretty(head, tty=self.tty)[:-1].rstrip()
            text = opened + (',\n  "messages": [\n' if self.tty else ',"messages":[') + text
            self.started = True
        else:
            text = (",\n" if self.tty else ",") + text
        self.write(text)
        self.pending.clear()
        if self.batch == 1:
            self.output.out.flush()

    def finish(self, result: DecodeResult) -> None:
        self._flush()
        body: dict[str, Any] = {"summary": result.summary.to_dict()}
        if result.exit_code is not ExitCode.NOT_RUN:
            body["flows"] = flows(result)
            body.update(media(result))
        doc = document(self.output, result, body)
        if not self.started:
            doc = document(self.output, result, {"messages": [], **body})
            self.output.json(doc)
            return
        tail = {k: v for k, v in doc.items() if k not in _HEAD}
        closed = dump_pretty(tail, tty=self.tty)
        if self.tty:
            self.write("\n  ],\n" + closed[2:] + "\n")
        else:
            self.write("]," + closed[1:] + "\n")


# The envelope keys a streamed document opens with: they do not depend on the input.
_HEAD = ("command", "siptool_version")


def _indented(text: str, prefix: str) -> str:
    return prefix + text.replace("\n", "\n" + prefix)


class JsonLinesRenderer:
    """One object per message as it is decoded, then the envelope with ``summary``."""

    _BATCH = 512
    flow = None  # the flows go in the summary object, at the end

    def __init__(self, output: Output, *, live: bool = False) -> None:
        self.output = output
        self.write = output.out.write
        self.pending: list[str] = []
        self.batch = 1 if live else self._BATCH  # live: each message written and flushed

    def message(self, decoded: DecodedMessage) -> None:
        self.pending.append(dump(decoded.to_dict()))
        if len(self.pending) >= self.batch:
            self._flush()

    def problem(self, error: SiptoolError) -> None:
        self.output.error(error.message)

    def _flush(self) -> None:
        if self.pending:
            self.write("\n".join(self.pending) + "\n")
            self.pending.clear()
            if self.batch == 1:
                self.output.out.flush()

    def finish(self, result: DecodeResult) -> None:
        self._flush()
        if result.exit_code is ExitCode.NOT_RUN:
            body: dict[str, Any] = {"messages": []}
        else:
            body = {"flows": flows(result), **media(result)}
        self.output.jsonl(
            {"summary": result.summary.to_dict(), **document(self.output, result, body)}
        )
