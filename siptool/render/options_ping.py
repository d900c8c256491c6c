"""Output of `siptool options-ping`: ping-like reply lines and a table, JSON, JSONL, Nagios."""

from __future__ import annotations

import sys
from typing import IO, Any

from siptool.commands.options_ping import (
    PingResult,
    Reply,
    TargetResult,
    nagios_state,
)
from siptool.render.json import dump, dump_pretty, envelope
from siptool.terminal import one_line

# Nagios plugin guidelines: loss thresholds in percent for the perfdata and the state.
LOSS_WARNING_PCT = 20.0
LOSS_CRITICAL_PCT = 60.0


def document(result: PingResult) -> dict[str, Any]:
    errors = list(result.errors)
    for t in result.targets:
        errors += [{"code": e["code"], "message": f"{t.target}: {e['message']}"} for e in t.errors]
    doc = envelope("options-ping", result.exit_code, errors)
    doc["targets"] = [t.to_dict() for t in result.targets]
    return doc


class PingRenderer:
    def __init__(
        self,
        *,
        mode: str,
        quiet: bool,
        color: bool,
        warning_ms: float | None,
        critical_ms: float | None,
        count: int,
        out: IO[str] | None = None,
    ) -> None:
        self.mode = mode
        self.quiet = quiet
        self.color = color
        self.warning_ms = warning_ms
        self.critical_ms = critical_ms
        self.count = count
        self.out = out or sys.stdout

    def reply(self, target: TargetResult, reply: Reply) -> None:
        """Called as each reply (or its timeout) arrives."""
        if self.mode == "jsonl":
            line = {"type": "reply", "target": target.target, "address": target.address}
            line.update(reply.to_dict())
            self.out.write(dump(line) + "\n")
            self.out.flush()
        elif self.mode == "text" and not self.quiet and self.count > 1:
            if reply.status is not None:
                text = (
                    f"{target.target} ({target.address}): seq={reply.seq} "
                    f"{reply.status} {reply.reason or ''} time={reply.rtt_ms:.3f} ms"
                )
            else:
                text = f"{target.target}: seq={reply.seq} {reply.error or 'no answer'}"
            self.out.write(one_line(text) + "\n")
            self.out.flush()

    def finish(self, result: PingResult, *, resolve_only: bool = False) -> int:
        if self.mode == "nagios":
            state, text, perf = nagios_state(
                result, self.warning_ms, self.critical_ms, LOSS_WARNING_PCT, LOSS_CRITICAL_PCT
            )
            text = one_line(text)
            self.out.write(f"{text} | {perf}\n" if perf else f"{text}\n")
            return state
        self._stderr_errors(result)
        if self.mode == "json":
            self.out.write(dump_pretty(document(result), tty=self.out.isatty()) + "\n")
        elif self.mode == "jsonl":
            self.out.write(dump(document(result)) + "\n")
        elif not self.quiet and result.targets:
            # No targets: siptool could not run the check (exit 3), and stderr said why.
            if resolve_only:
                self._resolution(result)
            else:
                self._table(result)
        return result.exit_code

    def _stderr_errors(self, result: PingResult) -> None:
        for e in result.errors:
            sys.stderr.write(f"siptool options-ping: {one_line(e['message'])}\n")
        for t in result.targets:
            if not t.alive or self.mode != "text":
                for e in t.errors:
                    line = f"{t.target}: {e['message']}"
                    sys.stderr.write(f"siptool options-ping: {one_line(line)}\n")
            for warning in t.nat.warnings:
                line = f"{t.target}: warning: {warning}"
                sys.stderr.write(f"siptool options-ping: {one_line(line)}\n")

    def _resolution(self, result: PingResult) -> None:
        for t in result.targets:
            self.out.write(f"{one_line(t.target)}\n")
            if t.resolution is None:
                continue
            # DNS answers are peer-controlled text too.
            for step in t.resolution.path:
                self.out.write(f"  {one_line(step)}\n")
            for i, c in enumerate(t.resolution.candidates, 1):
                line = f"{c.transport.upper()} {c.hostport} ({c.hostname})"
                self.out.write(f"  -> {i}. {one_line(line)}\n")

    def _table(self, result: PingResult) -> None:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        console = Console(
            file=self.out,
            no_color=not self.color,
            highlight=False,
            width=None if self.out.isatty() else 160,
        )
        table = Table(box=None, header_style="bold", pad_edge=False)
        for name, justify in (
            ("target", "left"),
            ("address", "left"),
            ("status", "left"),
            ("sent/recv", "right"),
            ("loss", "right"),
            ("rtt min/avg/max/sd ms", "right"),
            ("server", "left"),
            ("local address", "left"),
        ):
            table.add_column(
                name,
                justify=justify,  # type: ignore[arg-type]
                overflow="fold",
                no_wrap=name in ("target", "address", "sent/recv", "loss"),
            )
        for t in result.targets:
            s = t.stats.to_dict()
            last = next((r for r in reversed(t.replies) if r.status is not None), None)
            if last is not None:
                status = f"{last.status} {last.reason or ''}".rstrip()
                colour = "green" if t.alive else "red"
            else:
                status = t.errors[-1]["message"] if t.errors else "no answer"
                colour = "red"
            if s["rtt_avg_ms"] is not None:
                rtt = (
                    f"{s['rtt_min_ms']:.2f}/{s['rtt_avg_ms']:.2f}/"
                    f"{s['rtt_max_ms']:.2f}/{s['rtt_stddev_ms']:.2f}"
                )
            else:
                rtt = "-"
            nat = "-"
            if t.nat.local:
                nat = t.nat.local
                if t.nat.behind_nat:
                    nat += f" seen as {t.nat.reflexive} (NAT)"
                elif t.nat.reflexive:
                    nat += " (no NAT)"
            address = f"{t.transport.upper()} {t.address}" if t.address and t.transport else "-"
            table.add_row(
                escape(one_line(t.target)),
                escape(one_line(address)),
                f"[{colour}]{escape(one_line(status))}[/{colour}]",
                f"{s['sent']}/{s['received']}",
                "-" if s["loss_pct"] is None else f"{s['loss_pct']:g}%",
                rtt,
                escape(one_line(t.server.user_agent or "-")),
                escape(one_line(nat)),
            )
        console.print(table)
        for t in result.targets:
            if t.server.allow and len(result.targets) == 1:
                console.print(f"[dim]Allow: {escape(one_line(', '.join(t.server.allow)))}[/dim]")
            if t.server.supported and len(result.targets) == 1:
                line = one_line(", ".join(t.server.supported))
                console.print(f"[dim]Supported: {escape(line)}[/dim]")
