"""Output of `siptool options-ping`: ping-like reply lines and a table, JSON, JSONL, Nagios.

It draws a ``PingResult``; whether a target is alive, the exit code and the Nagios verdict
were decided by the command."""

from __future__ import annotations

from typing import Any

from siptool.commands.options_ping import PingResult, Reply, TargetResult
from siptool.render import probe_metrics
from siptool.render.openmetrics import Metrics
from siptool.render.output import Output, OutputMode, SeveralRenderer
from siptool.terminal import markup_one_line, one_line


class PingRenderer(SeveralRenderer[PingResult]):
    def __init__(self, output: Output, *, count: int) -> None:
        super().__init__(output)
        self.count = count

    def reply(self, target: TargetResult, reply: Reply) -> None:
        """Called as each reply (or its timeout) arrives."""
        output = self.output
        if output.mode is OutputMode.JSONL:
            line = {"type": "reply", "target": target.target, "address": target.address}
            line.update(reply.to_dict())
            output.jsonl(line)
        elif output.text and not output.quiet and self.count > 1:
            if reply.status is not None:
                text = (
                    f"{target.target} ({target.address}): seq={reply.seq} "
                    f"{reply.status} {reply.reason or ''} time={reply.rtt_ms:.3f} ms"
                )
            else:
                text = f"{target.target}: seq={reply.seq} {reply.error or 'no answer'}"
            output.line(text)
            output.out.flush()

    def messages(self, result: PingResult) -> list[str]:
        lines = [e.message for e in result.errors]
        for t in result.targets:
            if not t.alive or not self.output.text:
                lines += [f"{t.target}: {e.message}" for e in t.errors]
            lines += [f"{t.target}: warning: {w}" for w in t.nat.warnings]
        return lines

    def metrics(self, result: PingResult, found: Metrics) -> None:
        for t in result.targets:
            labels = probe_metrics.sip_labels(t, "OPTIONS")
            last = t.last_status
            probe_metrics.sip_exchange(
                found, labels, passed=t.alive, status=last.status if last else None,
                rtts_ms=t.stats.rtts, sent=t.stats.sent, received=t.stats.received,
            )  # fmt: skip
            probe_metrics.server_info(found, labels, t.server.user_agent)
            probe_metrics.tls(found, labels, t.tls)

    def body(self, result: PingResult) -> dict[str, Any]:
        return {"targets": [t.to_dict() for t in result.targets]}

    def report(self, result: PingResult) -> None:
        if result.resolve_only:
            self._resolution(result)
        else:
            self._table(result)

    def _resolution(self, result: PingResult) -> None:
        for t in result.targets:
            self.output.out.write(f"{one_line(t.target)}\n")
            if t.resolution is None:
                continue
            # DNS answers are peer-controlled text too.
            for step in t.resolution.path:
                self.output.out.write(f"  {one_line(step)}\n")
            for i, c in enumerate(t.resolution.candidates, 1):
                line = f"{c.transport.upper()} {c.hostport} ({c.hostname})"
                self.output.out.write(f"  -> {i}. {one_line(line)}\n")

    def _table(self, result: PingResult) -> None:
        from rich.table import Table

        console = self.output.console()
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
            last = t.last_status
            if last is not None:
                status = f"{last.status} {last.reason or ''}".rstrip()
                colour = "green" if t.alive else "red"
            else:
                status = t.failure
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
                markup_one_line(t.target),
                markup_one_line(address),
                f"[{colour}]{markup_one_line(status)}[/{colour}]",
                f"{s['sent']}/{s['received']}",
                "-" if s["loss_pct"] is None else f"{s['loss_pct']:g}%",
                rtt,
                markup_one_line(t.server.user_agent or "-"),
                markup_one_line(nat),
            )
        console.print(table)
        for t in result.targets:
            if t.server.allow and len(result.targets) == 1:
                console.print(f"[dim]Allow: {markup_one_line(', '.join(t.server.allow))}[/dim]")
            if t.server.supported and len(result.targets) == 1:
                line = markup_one_line(", ".join(t.server.supported))
                console.print(f"[dim]Supported: {line}[/dim]")
