"""Output of `siptool nat-type`: a short report or one JSON document, from one ``NatResult``.

The label, the exit code, the errors and whether pystun3 agrees were decided by the command.
Reasons and errors can carry text a server controls (an ERROR-CODE reason, what pystun3
printed): the report and stderr show it made safe for a terminal; JSON keeps it exact.
"""

from __future__ import annotations

from typing import Any

from siptool.commands.nat_lifetime import Lifetime
from siptool.commands.nat_type import Engine, NatResult
from siptool.errors import ExitCode
from siptool.render.openmetrics import Metrics
from siptool.render.output import ResultRenderer
from siptool.terminal import markup_one_line


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else "yes" if value else "no"


def _lifetime_text(life: Lifetime) -> str:
    if life.error:
        return f"unknown: {life.error}"
    if life.outlived_search:
        return f"more than {life.max_s:g} s"
    return f"between {life.alive_s or 0:g} and {life.expired_s:g} s"


class NatRenderer(ResultRenderer[NatResult]):
    def metrics(self, result: NatResult, found: Metrics) -> None:
        labels = {"server": result.server, "transport": "udp"}
        found.add("siptool_probe_success", result.exit_code is ExitCode.OK, labels)
        facts = {
            "mapping": result.mapping.value,
            "filtering": result.filtering.value,
            "classic": result.classic.value,
        }
        found.info("siptool_nat", labels, facts)
        found.add("siptool_nat_hairpinning", result.hairpinning, labels)
        found.info("siptool_stun_mapped", labels, {"mapped": result.mapped})

    def body(self, result: NatResult) -> dict[str, Any]:
        body: dict[str, Any] = {
            "server": result.server,
            "address": result.address,
            "other_address": result.other_address,
            "engine": result.engine.value,
            "mapping": result.mapping.value,
            "filtering": result.filtering.value,
            "classic": result.classic.value,
            "hairpinning": result.hairpinning,
            "port_preserved": result.port_preserved,
            "local": result.local,
            "mapped": result.mapped,
            "reasons": result.reasons,
            "advice": result.advice,
            "lifetime": result.lifetime.to_dict() if result.lifetime else None,
            "tests": result.tests.to_dict() if result.tests else None,
            "elapsed_ms": result.elapsed_ms,
            "compare": None,
        }
        if result.engine is Engine.PYSTUN3 and result.pystun3 is not None:
            body["pystun3"] = result.pystun3.to_dict()
        elif result.pystun3 is not None:
            body["compare"] = {
                "siptool": result.classic.value,
                "pystun3": result.pystun3.to_dict(),
                "agree": result.agree,
            }
        return body

    def report(self, result: NatResult) -> None:
        self._report(result)

    def _rows(self, result: NatResult) -> list[tuple[str, str]]:
        rows = [
            (
                "server",
                f"{result.server} ({result.address or '-'}), other address "
                f"{result.other_address or 'none'}",
            ),
            ("local / mapped", f"{result.local or '-'} -> {result.mapped or '-'}"),
        ]
        if result.engine is Engine.SIPTOOL:
            rows += [
                ("mapping", result.mapping.value),
                ("filtering", result.filtering.value),
                ("hairpinning", _yes_no(result.hairpinning)),
                ("port preserved", _yes_no(result.port_preserved)),
            ]
        if result.lifetime:
            rows.append(("binding lifetime", _lifetime_text(result.lifetime)))
        return rows

    def _report(self, result: NatResult) -> None:
        console = self.output.console()
        rows = self._rows(result)
        width = max(len(k) for k, _ in rows) + 2
        colour = "red" if result.troublesome else "green"
        console.print(
            f"{'NAT type':<{width}}[bold {colour}]{result.classic.value}[/bold {colour}]"
            f"  ({result.engine.value}, {result.elapsed_ms or 0:.0f} ms)"
        )
        for key, value in rows:
            console.print(f"{key:<{width}}{markup_one_line(value)}")
        if result.engine is Engine.SIPTOOL and result.pystun3 is not None:
            console.print(f"{'pystun3':<{width}}{self._pystun3_line(result)}")
        for reason in result.reasons:
            console.print(f"[yellow]why: {markup_one_line(reason)}[/yellow]")
        for item in result.advice:
            console.print(f"- {markup_one_line(item)}")

    @staticmethod
    def _pystun3_line(result: NatResult) -> str:
        other = result.pystun3
        assert other is not None
        verdict = other.classic.value if other.classic else f"no verdict ({other.error})"
        line = (
            f"{markup_one_line(verdict)} ({markup_one_line(str(other.raw))}, "
            f"{other.elapsed_ms or 0:.0f} ms)"
        )
        if result.agree is None:
            return line
        return line + ("  [green]agrees[/green]" if result.agree else "  [red]disagrees[/red]")
