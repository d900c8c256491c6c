"""Output of `siptool register`: a summary and the bindings, JSON, or the Nagios line.

It draws a ``RegisterResult``; the exit code, the errors and the Nagios verdict were decided
by the command."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from siptool.commands.register import RegisterResult
from siptool.errors import ExitCode
from siptool.render import probe_metrics
from siptool.render.openmetrics import Metrics
from siptool.render.output import ResultRenderer
from siptool.terminal import markup_one_line

if TYPE_CHECKING:
    from rich.console import Console


class RegisterRenderer(ResultRenderer[RegisterResult]):
    def messages(self, result: RegisterResult) -> list[str]:
        return [e.message for e in result.errors] + [f"warning: {w}" for w in result.warnings]

    def metrics(self, result: RegisterResult, found: Metrics) -> None:
        labels = probe_metrics.sip_labels(result, "REGISTER")
        rtts = [result.rtt_ms] if result.rtt_ms is not None else []
        passed = result.exit_code is ExitCode.OK
        probe_metrics.sip_exchange(found, labels, passed=passed, status=result.status, rtts_ms=rtts)
        if result.auth is not None:
            found.add("siptool_sip_auth_rounds", result.auth.rounds, labels)
        if result.status is not None and 200 <= result.status < 300:
            found.add("siptool_sip_registered_bindings", len(result.bindings), labels)
        probe_metrics.tls(found, labels, result.tls)

    def body(self, result: RegisterResult) -> dict[str, Any]:
        return result.to_dict()

    def report(self, result: RegisterResult) -> None:
        self._text(result)

    def _text(self, result: RegisterResult) -> None:
        # Peer text (reasons, Contact, Service-Route, auth parameters): no terminal controls,
        # no rich markup.
        escape = markup_one_line
        console = self.output.console()
        status = f"{result.status} {result.reason or ''}".rstrip() if result.status else "no answer"
        colour = "green" if result.exit_code is ExitCode.OK else "red"
        console.print(
            f"[bold]{escape(result.mode.value)}[/bold] {escape(result.aor)} at "
            f"{escape(result.target)}"
            f" ({escape(str(result.transport or '-').upper())} {escape(result.address or '-')}): "
            f"[{colour}]{escape(status)}[/{colour}]"
            + (f" in {result.total_ms:.1f} ms" if result.status and result.total_ms else "")
        )
        if result.auth is not None and result.auth.scheme:
            a = result.auth
            console.print(
                f"auth: {escape(a.scheme or '')} {escape(a.algorithm or '')} "
                f"qop={escape(a.qop or '-')}, {a.rounds} challenge(s)"
            )
        if result.expires is not None:
            console.print(f"granted expiry: {result.expires} s (asked {result.requested_expires})")
        _bindings(console, result)
        for name, values in (("Service-Route", result.service_route), ("Path", result.path)):
            for v in values:
                console.print(f"{name}: {escape(v)}")
        nat = result.nat
        if nat.local:
            seen = f" seen as {nat.reflexive} (behind NAT)" if nat.behind_nat else ""
            console.print(f"[dim]local {escape(nat.local)}{escape(seen)}[/dim]")


def _bindings(console: Console, result: RegisterResult) -> None:
    """The registrar's bindings as a table ("no bindings" after a 2xx that listed none)."""
    from rich.table import Table

    if not result.bindings:
        if result.exit_code is ExitCode.OK:
            console.print("no bindings")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("binding")
    table.add_column("expires", justify="right")
    table.add_column("")
    for b in result.bindings:
        table.add_row(
            markup_one_line(b.contact),
            "-" if b.expires is None else f"{b.expires} s",
            "ours" if b.ours else "",
        )
    console.print(table)
