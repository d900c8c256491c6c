"""Output of `siptool nat-type`: a short report or one JSON document, from one NatResult.

Reasons and errors can carry text a server controls (an ERROR-CODE reason, what pystun3
printed): the report and stderr show it through ``siptool.terminal.one_line``; JSON keeps it
exact.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from siptool.commands.nat_type import NatResult
from siptool.render.json import dump_pretty, envelope
from siptool.terminal import one_line


def document(result: NatResult) -> dict[str, Any]:
    doc = envelope("nat-type", result.exit_code, list(result.errors))
    verdict = result.verdict
    doc.update(
        {
            "server": result.server,
            "address": result.address,
            "other_address": result.other_address,
            "engine": result.engine,
            "mapping": verdict.mapping.value if verdict else "unknown",
            "filtering": verdict.filtering.value if verdict else "unknown",
            "classic": result.classic,
            "hairpinning": verdict.hairpinning if verdict else None,
            "port_preserved": verdict.port_preserved if verdict else None,
            "local": result.local,
            "mapped": verdict.mapped
            if verdict
            else (result.pystun3.mapped if result.pystun3 else None),
            "reasons": verdict.reasons if verdict else [],
            "advice": verdict.advice if verdict else [],
            "lifetime": result.lifetime.to_dict() if result.lifetime else None,
            "tests": result.tests or None,
            "elapsed_ms": result.elapsed_ms,
            "compare": None,
        }
    )
    if result.engine == "pystun3" and result.pystun3 is not None:
        doc["pystun3"] = result.pystun3.to_dict()
    elif result.pystun3 is not None:
        other = result.pystun3
        doc["compare"] = {
            "siptool": result.classic,
            "pystun3": other.to_dict(),
            "agree": other.classic == result.classic if other.classic else None,
        }
    return doc


class NatRenderer:
    def __init__(self, *, mode: str, quiet: bool, color: bool, out: IO[str] | None = None) -> None:
        self.mode = mode
        self.quiet = quiet
        self.color = color
        self.out = out or sys.stdout

    def finish(self, result: NatResult) -> int:
        for e in result.errors:
            sys.stderr.write(f"siptool nat-type: {one_line(e['message'])}\n")
        if self.mode == "json":
            self.out.write(dump_pretty(document(result)) + "\n")
        elif not self.quiet:
            self._text(document(result))
        return result.exit_code

    def _text(self, doc: dict[str, Any]) -> None:
        from rich.console import Console
        from rich.markup import escape as markup_escape

        def escape(text: str) -> str:
            return markup_escape(one_line(text))

        console = Console(
            file=self.out,
            no_color=not self.color,
            highlight=False,
            width=None if self.out.isatty() else 120,
        )
        bad = doc["classic"] in ("inconclusive", "udp-blocked", "symmetric")
        colour = "red" if bad else "green"

        def show(value: Any) -> str:
            return (
                "unknown"
                if value is None
                else "yes"
                if value is True
                else "no"
                if (value is False)
                else str(value)
            )

        rows = [
            (
                "server",
                f"{doc['server']} ({doc['address'] or '-'}), other address "
                f"{doc['other_address'] or 'none'}",
            ),
            ("local / mapped", f"{doc['local'] or '-'} -> {doc['mapped'] or '-'}"),
        ]
        if doc["engine"] == "siptool":
            rows += [
                ("mapping", doc["mapping"]),
                ("filtering", doc["filtering"]),
                ("hairpinning", show(doc["hairpinning"])),
                ("port preserved", show(doc["port_preserved"])),
            ]
        if doc["lifetime"]:
            life = doc["lifetime"]
            if life["error"]:
                text = f"unknown: {life['error']}"
            elif life["outlived_search"]:
                text = f"more than {life['search_max_s']:g} s"
            else:
                low = life["min_s"] or 0
                text = f"between {low:g} and {life['max_s']:g} s"
            rows.append(("binding lifetime", text))
        width = max(len(k) for k, _ in rows) + 2
        console.print(
            f"{'NAT type':<{width}}[bold {colour}]{doc['classic']}[/bold {colour}]"
            f"  ({doc['engine']}, {doc['elapsed_ms']:.0f} ms)"
        )
        for key, value in rows:
            console.print(f"{key:<{width}}{escape(str(value))}")
        if doc["compare"]:
            other = doc["compare"]["pystun3"]
            verdict = other["classic"] or f"no verdict ({other['error']})"
            agree = doc["compare"]["agree"]
            console.print(
                f"{'pystun3':<{width}}{escape(verdict)} ({escape(str(other['raw']))}, "
                f"{other['elapsed_ms'] or 0:.0f} ms)"
                + (
                    ""
                    if agree is None
                    else "  [green]agrees[/green]"
                    if agree
                    else "  [red]disagrees[/red]"
                )
            )
        for reason in doc["reasons"]:
            console.print(f"[yellow]why: {escape(reason)}[/yellow]")
        for item in doc["advice"]:
            console.print(f"- {escape(item)}")
