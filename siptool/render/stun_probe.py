"""Output of `siptool stun-probe`: a table, JSON, JSONL or a Nagios line, from one ProbeResult.

It draws a ``ProbeResult``; whether a server answered usably, the exit code and the Nagios
verdict were decided by the command.  Every text a server controls (SOFTWARE, an ERROR-CODE
reason, the messages built from them) goes through ``siptool.terminal`` (``Output.line``,
``Output.error``, ``markup_one_line`` in table cells), so that a hostile server can neither
send terminal control sequences nor forge a line.  JSON keeps the exact strings.
"""

from __future__ import annotations

from typing import Any

from siptool.commands.stun_probe import BindingReply, ProbeResult, ServerProbe
from siptool.render import probe_metrics
from siptool.render.openmetrics import Metrics
from siptool.render.output import OutputMode, SeveralRenderer
from siptool.terminal import markup_one_line

COLUMNS = ("server", "address", "local", "mapped", "rtt ms", "loss", "software", "RFC 5780")


class ProbeRenderer(SeveralRenderer[ProbeResult]):
    def reply(self, probe: ServerProbe, reply: BindingReply) -> None:
        """--jsonl: one object per reply (or its timeout) as it comes."""
        if self.output.mode is OutputMode.JSONL:
            line = {"type": "reply", "server": probe.server, "address": probe.address}
            line.update(reply.to_dict())
            self.output.jsonl(line)

    def messages(self, result: ProbeResult) -> list[str]:
        lines = [e.message for e in result.errors]
        for p in result.servers:
            lines += [f"{p.server}: {e.message}" for e in p.errors]
            lines += [f"{p.server}: warning: {w}" for w in p.warnings]
        return lines

    def metrics(self, result: ProbeResult, found: Metrics) -> None:
        for s in result.servers:
            labels = {"server": s.server, "transport": s.transport}
            found.add("siptool_probe_success", s.answered, labels)
            found.add("siptool_stun_rtt_seconds", probe_metrics.seconds(s.rtt_avg_ms), labels)
            found.add("siptool_stun_loss_ratio", probe_metrics.ratio(s.loss_pct), labels)
            found.info("siptool_stun_mapped", labels, {"mapped": s.mapped})
            if s.tls_version is not None:
                found.info("siptool_tls_version", labels, {"version": s.tls_version})

    def body(self, result: ProbeResult) -> dict[str, Any]:
        return {
            "servers": [p.to_dict() for p in result.servers],
            "mapping_consistent": result.mapping_consistent,
            "port_preserved": result.port_preserved,
            "behind_nat": result.behind_nat,
            "default_server_list": result.used_default_list,
        }

    def report(self, result: ProbeResult) -> None:
        self._table(result)

    def _table(self, result: ProbeResult) -> None:
        from rich.table import Table

        console = self.output.console()
        table = Table(box=None, header_style="bold", pad_edge=False)
        for name in COLUMNS:
            table.add_column(name, overflow="fold", no_wrap=name in ("loss", "rtt ms"))
        for p in result.servers:
            table.add_row(*_row(p))
        console.print(table)
        console.print(_nat_line(result))


def _row(p: ServerProbe) -> tuple[str, ...]:
    """One table row; every cell holding peer text is escaped for the terminal and rich."""
    d = p.to_dict()
    if d["rtt_avg_ms"] is None:
        rtt = "-"
    elif p.sent > 1:
        rtt = f"{d['rtt_min_ms']:.2f}/{d['rtt_avg_ms']:.2f}/{d['rtt_max_ms']:.2f}"
    else:
        rtt = f"{d['rtt_ms']:.2f}"
    if p.answered:
        mapped = f"[green]{markup_one_line(p.mapped or '-')}[/green]"
    else:
        mapped = f"[red]{markup_one_line(p.failure)}[/red]"
    if p.rfc5780:
        rfc5780 = f"yes, other {p.other_address}"
    elif p.rfc5780 is False and p.changed_address:
        rfc5780 = f"no (RFC 3489, changed {p.changed_address})"
    else:
        rfc5780 = "no" if p.rfc5780 is False else "-"
    address = f"{p.transport.upper()} {p.address}" if p.address else p.transport.upper()
    return (
        markup_one_line(p.server),
        markup_one_line(address),
        markup_one_line(p.local or "-"),
        mapped,
        rtt,
        "-" if d["loss_pct"] is None else f"{d['loss_pct']:g}%",
        markup_one_line(p.software or "-"),
        markup_one_line(rfc5780),
    )


def _yes_no(value: bool | None, yes: str, no: str) -> str:
    return "unknown" if value is None else yes if value else no


def _nat_line(result: ProbeResult) -> str:
    return (
        "NAT: "
        + _yes_no(result.behind_nat, "behind a NAT", "no NAT (mapped = local)")
        + "; mapping: "
        + _yes_no(
            result.mapping_consistent,
            "same toward every server",
            "[red]differs between servers (symmetric NAT)[/red]",
        )
        + "; port: "
        + _yes_no(result.port_preserved, "preserved", "not preserved")
    )
