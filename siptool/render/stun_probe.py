"""Output of `siptool stun-probe`: a table, JSON or a Nagios line, from one ProbeResult.

Every text a server controls (SOFTWARE, an ERROR-CODE reason, the messages built from them)
goes through ``siptool.terminal``: ``one_line`` in the Nagios line, table cells and stderr
lines, so that a hostile server can neither send terminal control sequences nor forge a line.
JSON keeps the exact strings.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from siptool.commands.stun_probe import ProbeResult, ServerProbe, nagios_state
from siptool.render.json import dump, dump_pretty, envelope
from siptool.terminal import one_line

LOSS_WARNING_PCT = 20.0
LOSS_CRITICAL_PCT = 60.0


def document(result: ProbeResult) -> dict[str, Any]:
    errors = list(result.errors)
    for p in result.servers:
        errors += [{"code": e["code"], "message": f"{p.server}: {e['message']}"} for e in p.errors]
    doc = envelope("stun-probe", result.exit_code, errors)
    doc["servers"] = [p.to_dict() for p in result.servers]
    doc["mapping_consistent"] = result.mapping_consistent
    doc["port_preserved"] = result.port_preserved
    doc["behind_nat"] = result.behind_nat
    doc["default_server_list"] = result.used_default_list
    return doc


class ProbeRenderer:
    def __init__(
        self,
        *,
        mode: str,
        quiet: bool,
        color: bool,
        warning_ms: float | None,
        critical_ms: float | None,
        out: IO[str] | None = None,
    ) -> None:
        self.mode = mode
        self.quiet = quiet
        self.color = color
        self.warning_ms = warning_ms
        self.critical_ms = critical_ms
        self.out = out or sys.stdout

    def reply(self, probe: ServerProbe, reply: dict[str, Any]) -> None:
        """--jsonl: one object per reply (or its timeout) as it comes."""
        if self.mode == "jsonl":
            line = {"type": "reply", "server": probe.server, "address": probe.address, **reply}
            self.out.write(dump(line) + "\n")
            self.out.flush()

    def finish(self, result: ProbeResult) -> int:
        if self.mode == "nagios":
            state, text, perf = nagios_state(
                result, self.warning_ms, self.critical_ms, LOSS_WARNING_PCT, LOSS_CRITICAL_PCT
            )
            text = one_line(text)
            self.out.write(f"{text} | {perf}\n" if perf else f"{text}\n")
            return state
        for e in result.errors:
            sys.stderr.write(f"siptool stun-probe: {one_line(e['message'])}\n")
        for p in result.servers:
            for e in p.errors:
                sys.stderr.write(
                    f"siptool stun-probe: {one_line(p.server)}: {one_line(e['message'])}\n"
                )
            for warning in p.warnings:
                sys.stderr.write(
                    f"siptool stun-probe: {one_line(p.server)}: warning: {one_line(warning)}\n"
                )
        if self.mode == "json":
            self.out.write(dump_pretty(document(result)) + "\n")
        elif self.mode == "jsonl":
            self.out.write(dump(document(result)) + "\n")
        elif not self.quiet and result.servers:
            self._table(result)
        return result.exit_code

    def _table(self, result: ProbeResult) -> None:
        from rich.console import Console
        from rich.markup import escape as markup_escape
        from rich.table import Table

        def escape(text: str) -> str:
            return markup_escape(one_line(text))

        console = Console(
            file=self.out,
            no_color=not self.color,
            highlight=False,
            width=None if self.out.isatty() else 160,
        )
        table = Table(box=None, header_style="bold", pad_edge=False)
        for name in (
            "server",
            "address",
            "local",
            "mapped",
            "rtt ms",
            "loss",
            "software",
            "RFC 5780",
        ):
            table.add_column(name, overflow="fold", no_wrap=name in ("loss", "rtt ms"))
        for p in result.servers:
            d = p.to_dict()
            if d["rtt_avg_ms"] is None:
                rtt = "-"
            elif p.sent > 1:
                rtt = f"{d['rtt_min_ms']:.2f}/{d['rtt_avg_ms']:.2f}/{d['rtt_max_ms']:.2f}"
            else:
                rtt = f"{d['rtt_ms']:.2f}"
            if p.answered:
                mapped = f"[green]{escape(p.mapped or '-')}[/green]"
            else:
                reason = p.errors[-1]["message"] if p.errors else "no answer"
                mapped = f"[red]{escape(reason)}[/red]"
            if p.rfc5780:
                rfc5780 = f"yes, other {p.other_address}"
            elif p.rfc5780 is False and p.changed_address:
                rfc5780 = f"no (RFC 3489, changed {p.changed_address})"
            else:
                rfc5780 = "no" if p.rfc5780 is False else "-"

            address = f"{p.transport.upper()} {p.address}" if p.address else p.transport.upper()
            table.add_row(
                escape(p.server),
                escape(address),
                escape(p.local or "-"),
                mapped,
                rtt,
                "-" if d["loss_pct"] is None else f"{d['loss_pct']:g}%",
                escape(p.software or "-"),
                escape(rfc5780),
            )
        console.print(table)

        def yes_no(value: bool | None, yes: str, no: str) -> str:
            return "unknown" if value is None else yes if value else no

        console.print(
            "NAT: "
            + yes_no(result.behind_nat, "behind a NAT", "no NAT (mapped = local)")
            + "; mapping: "
            + yes_no(
                result.mapping_consistent,
                "same toward every server",
                "[red]differs between servers (symmetric NAT)[/red]",
            )
            + "; port: "
            + yes_no(result.port_preserved, "preserved", "not preserved")
        )
