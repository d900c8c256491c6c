"""Output of `siptool publish`: each PUBLISH with its answer and time, the entity-tag and the
lifetime granted; JSON.

It draws a ``PublishResult``; the exit code and the errors were decided by the command."""

from __future__ import annotations

from typing import Any

from siptool.commands.publish import PublishResult
from siptool.errors import ExitCode
from siptool.render.output import ResultRenderer
from siptool.render.sip_exchange import transaction_lines
from siptool.terminal import markup_one_line


class PublishRenderer(ResultRenderer[PublishResult]):
    def messages(self, result: PublishResult) -> list[str]:
        return [e.message for e in result.errors] + [f"warning: {w}" for w in result.warnings]

    def body(self, result: PublishResult) -> dict[str, Any]:
        return result.to_dict()

    def report(self, result: PublishResult) -> None:
        escape = markup_one_line
        console = self.output.console()
        where = f"{str(result.transport or '-').upper()} {result.address or '-'}"
        console.print(
            f"[bold]PUBLISH[/bold] {escape(result.target)} Event: {escape(result.event)} "
            f"({escape(where)})"
        )
        transaction_lines(console, result.transactions)
        if result.published is not None:
            said = result.published.get("status") or "-"
            note = result.published.get("note")
            console.print(f"published: {escape(said)}" + (f" ({escape(note)})" if note else ""))
        colour = "green" if result.exit_code is ExitCode.OK else "red"
        final = f"{result.final_status or '-'} {result.final_reason or ''}".rstrip()
        tail = f", SIP-ETag {escape(result.etag)}" if result.etag else ""
        if result.expires is not None and not result.removed:
            tail += f", for {result.expires} s"
        if result.removed:
            tail += ", removed"
        console.print(f"final: [{colour}]{escape(final)}[/{colour}]{tail}")
