"""Output of `siptool subscribe`: the SUBSCRIBE's answer, every NOTIFY with its time, its
Subscription-State and what its body says; JSON.

It draws a ``SubscribeResult``; the exit code and the errors were decided by the command."""

from __future__ import annotations

from typing import Any

from siptool.commands.subscribe import SubscribeResult
from siptool.errors import ExitCode
from siptool.render.output import ResultRenderer
from siptool.render.sip_exchange import transaction_lines
from siptool.terminal import markup_one_line


class SubscribeRenderer(ResultRenderer[SubscribeResult]):
    def messages(self, result: SubscribeResult) -> list[str]:
        return [e.message for e in result.errors] + [f"warning: {w}" for w in result.warnings]

    def body(self, result: SubscribeResult) -> dict[str, Any]:
        return result.to_dict()

    def report(self, result: SubscribeResult) -> None:
        escape = markup_one_line
        console = self.output.console()
        where = f"{str(result.transport or '-').upper()} {result.address or '-'}"
        console.print(
            f"[bold]SUBSCRIBE[/bold] {escape(result.target)} Event: {escape(result.event)} "
            f"({escape(where)})"
        )
        transaction_lines(console, result.transactions)
        if result.expires is not None:
            console.print(f"subscribed for {result.expires} s, {result.refreshes} refresh(es)")
        for n, notify in enumerate(result.notifies, 1):
            state = notify.subscription_state
            said = "-" if state is None else state.state_text
            if state is not None and state.reason:
                said += f" ({state.reason})"
            what = notify.error or notify.summary or (notify.content_type or "no body")
            colour = "red" if notify.error else "cyan"
            console.print(
                f"  NOTIFY {n} at +{notify.time_ms:.1f} ms  {escape(said)}: "
                f"[{colour}]{escape(what)}[/{colour}]"
            )
        if result.states:
            console.print(f"states: {escape(' -> '.join(result.states))}")
        colour = "green" if result.exit_code is ExitCode.OK else "red"
        console.print(f"state: [{colour}]{escape(result.state or 'unknown')}[/{colour}]")
