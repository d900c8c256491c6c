"""Output of `siptool turn-probe`: the allocation and the relay tests as lines and a table,
JSON or a Nagios line, from one TurnProbeResult.

It draws; the command decided whether the relay works, the exit code and the Nagios state.
Text the server controls (SOFTWARE, reason phrases in the messages, the realm) goes through
``siptool.terminal``; the JSON keeps the exact strings.  No password is ever in the result.
"""

from __future__ import annotations

from typing import Any

from siptool.commands.turn_probe import TESTS, TurnProbeResult
from siptool.errors import ExitCode
from siptool.render import probe_metrics
from siptool.render.openmetrics import Metrics
from siptool.render.output import ResultRenderer
from siptool.stun.turn import RelayFigures
from siptool.terminal import markup_one_line

COLUMNS = ("method", "sent", "received", "loss", "rtt min/avg/max ms", "jitter ms")


class TurnProbeRenderer(ResultRenderer[TurnProbeResult]):
    def messages(self, result: TurnProbeResult) -> list[str]:
        return [e.message for e in result.errors] + [f"warning: {w}" for w in result.warnings]

    def metrics(self, result: TurnProbeResult, found: Metrics) -> None:
        labels = {"server": result.server, "transport": result.transport}
        found.add("siptool_probe_success", result.exit_code is ExitCode.OK, labels)
        allocate = probe_metrics.seconds(result.allocate_ms)
        found.add("siptool_turn_allocate_seconds", allocate, labels)
        found.add("siptool_turn_lifetime_seconds", result.lifetime_s, labels)
        found.info("siptool_stun_mapped", labels, {"mapped": result.mapped})
        for test, figures in result.tests().items():
            if figures is None:
                continue
            by_test = {**labels, "test": TESTS[test]}
            loss = probe_metrics.ratio(figures.loss_pct)
            found.add("siptool_turn_relay_loss_ratio", loss, by_test)
            rtt = probe_metrics.seconds(figures.rtt_avg_ms)
            found.add("siptool_turn_relay_rtt_seconds", rtt, by_test)
        if result.tls_version is not None:
            found.info("siptool_tls_version", labels, {"version": result.tls_version})

    def body(self, result: TurnProbeResult) -> dict[str, Any]:
        return result.body()

    def report(self, result: TurnProbeResult) -> None:
        from rich.table import Table

        console = self.output.console()
        for label, value in _facts(result):
            console.print(f"[bold]{label}[/bold] {markup_one_line(value)}")
        table = Table(box=None, header_style="bold", pad_edge=False)
        for name in COLUMNS:
            table.add_column(name, no_wrap=True)
        for test, figures in result.tests().items():
            table.add_row(*_row(TESTS[test], figures))
        console.print(table)
        console.print(_verdict(result))


def _facts(result: TurnProbeResult) -> list[tuple[str, str]]:
    """The lines above the table: what the allocation is."""
    where = f"{result.transport.upper()} {result.address or '-'}"
    auth = "none" if result.auth_mode is None else f"{result.auth_mode} ({result.algorithm})"
    if result.realm:
        auth += f", realm {result.realm}"
    rows = [
        ("server", f"{result.server} ({where}), from {result.local or '-'}"),
        ("software", result.software or "-"),
        ("auth", f"{auth}, {result.auth_rounds} round(s)"),
        ("relayed", ", ".join(result.relayed) or "-"),
        ("mapped", result.mapped or "-"),
    ]
    if result.allocate_ms is not None:
        rows.append(
            ("allocated", f"in {result.allocate_ms:.1f} ms, lifetime {result.lifetime_s} s")
        )
    if result.peer:
        local = f" (socket {result.peer_local})" if result.peer_local else ""
        rows.append(("peer", f"{result.peer}{local}, permission for {result.permission}"))
    for name, test in (("tcp connect", result.tcp), ("tcp attempt", result.tcp_passive)):
        if test is not None:
            how = f"connection {test.connection_id} to {test.peer}, bound in"
            rows.append((name, f"{how} {test.connect_ms:.1f} ms"))
    rows.append(
        ("freed", f"{'yes' if result.deallocated else 'no'}, after {result.refreshes} refresh(es)")
    )
    return rows


def _row(name: str, figures: RelayFigures | None) -> tuple[str, ...]:
    if figures is None:
        return (name, "-", "-", "-", "not run", "-")
    d = figures.to_dict()
    rtt = "-"
    if figures.rtt_avg_ms is not None:
        rtt = f"{d['rtt_min_ms']:.2f}/{d['rtt_avg_ms']:.2f}/{d['rtt_max_ms']:.2f}"
    jitter = "-" if figures.jitter_ms is None else f"{figures.jitter_ms:.2f}"
    loss = "-" if figures.loss_pct is None else f"{figures.loss_pct:g}%"
    return (name, str(figures.sent), str(figures.received), loss, rtt, jitter)


def _verdict(result: TurnProbeResult) -> str:
    if result.exit_code == 0 and result.peer_transport == "tcp":
        return (
            "[green]TCP relay works (RFC 6062): data went through it both ways on a "
            "connection to the peer and on one from it[/green]"
        )
    if result.exit_code == 0:
        return "[green]relay works: data went through it both ways by both methods[/green]"
    why = result.errors[-1].message if result.errors else "failed"
    return f"[red]relay test failed: {markup_one_line(why)}[/red]"
