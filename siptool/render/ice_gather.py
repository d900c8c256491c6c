"""Output of `siptool ice-gather`: the candidates as a table with the time each took, their SDP
``a=candidate`` lines, the servers asked, and the verdict; JSON.

It draws an ``IceGatherResult``; the exit code, the errors and the verdict were decided by
the command."""

from __future__ import annotations

from typing import Any

from siptool.commands.ice_gather import IceGatherResult
from siptool.render.output import ResultRenderer
from siptool.terminal import markup_one_line


class IceGatherRenderer(ResultRenderer[IceGatherResult]):
    def messages(self, result: IceGatherResult) -> list[str]:
        return [e.message for e in result.errors] + [f"warning: {w}" for w in result.warnings]

    def body(self, result: IceGatherResult) -> dict[str, Any]:
        return result.body()

    def report(self, result: IceGatherResult) -> None:
        from rich.table import Table

        escape = markup_one_line
        console = self.output.console()
        table = Table(box=None, header_style="bold", pad_edge=False)
        for name, justify in (
            ("type", "left"),
            ("via", "left"),
            ("address", "left"),
            ("related", "left"),
            ("priority", "right"),
            ("server", "left"),
            ("ms", "right"),
        ):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for c in result.candidates:
            table.add_row(
                c.kind.value,
                (c.relay_protocol or c.transport).upper(),
                escape(c.address),
                escape(c.related or "-"),
                str(c.priority),
                escape(c.server or "-"),
                "-" if c.elapsed_ms is None else f"{c.elapsed_ms:.1f}",
            )
        console.print(table)
        console.print()
        for c in result.candidates:
            console.print(escape(c.sdp()))
        console.print()
        for s in result.servers:
            state = "[green]ok[/green]" if s.ok else f"[red]{escape(s.error or 'failed')}[/red]"
            took = "" if s.elapsed_ms is None else f" in {s.elapsed_ms:.1f} ms"
            console.print(f"{s.kind} {escape(s.server)} ({s.transport.upper()}): {state}{took}")
        if result.ice is not None:
            console.print(f"mapping: {escape(result.ice.mapping)}")
            for finding in result.ice.findings:
                console.print(f"- {escape(finding)}")
