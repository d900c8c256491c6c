"""Output of `siptool message`: the MESSAGE's answer with its time, or (--listen) each message
as it arrives; JSON.

It draws a ``MessageResult``; the exit code and the errors were decided by the command."""

from __future__ import annotations

from typing import Any

from siptool.commands.message import Incoming, MessageResult
from siptool.errors import ExitCode
from siptool.render.output import OutputMode, ResultRenderer
from siptool.render.sip_exchange import transaction_lines
from siptool.terminal import markup_one_line, one_line


class MessageRenderer(ResultRenderer[MessageResult]):
    def messages(self, result: MessageResult) -> list[str]:
        return [e.message for e in result.errors] + [f"warning: {w}" for w in result.warnings]

    def body(self, result: MessageResult) -> dict[str, Any]:
        return result.to_dict()

    def incoming(self, message: Incoming) -> None:
        """--listen: one line per MESSAGE as it arrives (a person watching, a script tailing)."""
        output = self.output
        if output.mode is not OutputMode.TEXT or output.quiet:
            return
        text = one_line(message.body or "")
        output.line(
            f"+{message.time_ms / 1000.0:.3f} s  {message.from_ or '-'} -> {message.to or '-'} "
            f"({message.content_type or '-'}): {text}"
        )
        output.out.flush()

    def report(self, result: MessageResult) -> None:
        escape = markup_one_line
        console = self.output.console()
        where = f"{str(result.transport or '-').upper()} {result.address or '-'}"
        if result.mode == "listen":
            state = "registered" if result.registered else "not registered"
            console.print(
                f"[bold]listen[/bold] at {escape(result.target)} ({escape(where)}): {state}, "
                f"{len(result.received)} message(s) received"
            )
            return
        console.print(f"[bold]MESSAGE[/bold] {escape(result.target)} ({escape(where)})")
        transaction_lines(console, result.transactions)
        if result.final_status is None:
            return
        colour = "green" if result.exit_code is ExitCode.OK else "red"
        final = f"{result.final_status} {result.final_reason or ''}".rstrip()
        console.print(f"final: [{colour}]{escape(final)}[/{colour}]")
