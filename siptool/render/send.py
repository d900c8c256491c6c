"""Output of `siptool send`: each response with its time, JSON, or the Nagios line.

It draws a ``SendResult``; the exit code, the errors and the Nagios verdict were decided by
the command."""

from __future__ import annotations

from typing import Any

from siptool.commands.send import SendResult
from siptool.errors import ExitCode
from siptool.render import probe_metrics
from siptool.render.openmetrics import Metrics
from siptool.render.output import ResultRenderer
from siptool.render.sip_exchange import transaction_lines
from siptool.terminal import markup_one_line


class SendRenderer(ResultRenderer[SendResult]):
    def metrics(self, result: SendResult, found: Metrics) -> None:
        labels = probe_metrics.sip_labels(result, result.method)
        rtts = [result.rtt_ms] if result.rtt_ms is not None else []
        passed = result.exit_code is ExitCode.OK
        probe_metrics.sip_exchange(
            found, labels, passed=passed, status=result.final_status, rtts_ms=rtts
        )
        if result.auth is not None:
            found.add("siptool_sip_auth_rounds", result.auth.rounds, labels)
        probe_metrics.tls(found, labels, result.tls)

    def body(self, result: SendResult) -> dict[str, Any]:
        return result.to_dict()

    def report(self, result: SendResult) -> None:
        escape = markup_one_line
        console = self.output.console()
        where = f"{str(result.transport or '-').upper()} {result.address or '-'}"
        console.print(
            f"[bold]{escape(result.method)}[/bold] {escape(result.target)} ({escape(where)})"
        )
        transaction_lines(console, result.transactions)
        if result.final_status is None:
            return
        colour = "green" if result.exit_code is ExitCode.OK else "red"
        final = f"{result.final_status} {result.final_reason or ''}".rstrip()
        took = "" if result.rtt_ms is None else f" in {result.rtt_ms:.1f} ms"
        console.print(f"final: [{colour}]{escape(final)}[/{colour}]{took}")
