"""Output of `siptool invite-test`: a call ladder and summary, JSON, Nagios."""

from __future__ import annotations

import sys
from typing import IO, Any

from siptool.commands.invite_test import CallResult, nagios_state
from siptool.render.json import dump_pretty, envelope
from siptool.terminal import markup_one_line, one_line


def document(result: CallResult) -> dict[str, Any]:
    doc = envelope("invite-test", result.exit_code, list(result.errors))
    doc.update(result.to_dict())
    return doc


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


class InviteRenderer:
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

    def finish(self, result: CallResult) -> int:
        if self.mode == "nagios":
            state, text, perf = nagios_state(result, self.warning_ms, self.critical_ms)
            text = one_line(text)
            self.out.write(f"{text} | {perf}\n" if perf else f"{text}\n")
            return state
        for e in result.errors:
            sys.stderr.write(f"siptool invite-test: {one_line(e['message'])}\n")
        if self.mode == "json":
            self.out.write(dump_pretty(document(result)) + "\n")
        elif not self.quiet and result.exit_code != 3:
            # Exit 3: siptool could not run the check; the stderr line above says why.
            self._summary(result)
        return result.exit_code

    def _summary(self, result: CallResult) -> None:
        from rich.console import Console
        from rich.table import Table

        # Peer text (reasons, Server, Contact, SDP, auth parameters, the ladder): no terminal
        # controls, no rich markup.
        escape = markup_one_line

        console = Console(
            file=self.out,
            no_color=not self.color,
            highlight=False,
            width=None if self.out.isatty() else 120,
        )
        where = (
            f" via {(result.transport or '').upper()} {result.address}" if result.address else ""
        )
        console.print(f"[bold]Test call to {escape(result.target)}[/bold]{escape(where)}")
        if result.call_id:
            console.print(f"[dim]Call-ID {escape(result.call_id)}[/dim]")
        if result.events:
            ladder = Table(box=None, show_header=False, pad_edge=False)
            ladder.add_column(justify="right", style="dim")
            ladder.add_column()
            ladder.add_column()
            for e in result.events:
                arrow = "[cyan]-->[/cyan]" if e.direction == "send" else "[magenta]<--[/magenta]"
                ladder.add_row(f"{e.t_ms:10.1f} ms", arrow, escape(e.what))
            console.print(ladder)

        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        if result.final_status is not None:
            colour = "green" if result.passed else "red"
            final = f"{result.final_status} {result.final_reason or ''}".rstrip()
            table.add_row("final", f"[{colour}]{escape(final)}[/{colour}]")
        else:
            table.add_row("final", "[red]none[/red]")
        t = result.timings
        table.add_row(
            "timings",
            f"trying {_ms(t.trying)}, ringing {_ms(t.ringing)}, early media "
            f"{_ms(t.early_media)}, answer {_ms(t.answer)}",
        )
        table.add_row("PDD", _ms(t.pdd))
        if result.cancel_reason is not None:
            cancel = f"sent ({result.cancel_reason}), CANCEL got {result.cancel_status or '-'}"
            cancel += ", call cancelled" if result.cancelled else ""
            table.add_row("CANCEL", escape(cancel))
        if result.answered:
            hold = "-" if result.hold_ms is None else f"{result.hold_ms / 1000:.1f} s"
            bye = result.bye_status
            bye_text = (
                "the far end hung up (we answered 200)"
                if bye == "remote"
                else f"BYE got {bye}"
                if bye is not None
                else "BYE got no answer"
            )
            table.add_row("call", f"held {hold}; {escape(bye_text)}")
        answer = result.sdp_answer
        if answer is not None:
            codecs = ", ".join(answer.codecs) or "-"
            table.add_row("SDP answer", escape(f"{codecs} at {answer.media_address or '-'}"))
        rtp = result.rtp
        if rtp is not None:
            loss = "-" if rtp.loss_pct is None else f"{rtp.loss_pct:g}%"
            jitter = "-" if rtp.jitter_ms is None else f"{rtp.jitter_ms:.2f} ms"
            colour = "green" if rtp.verdict == "ok" else "red"
            table.add_row(
                "RTP",
                f"sent {rtp.sent}, received {rtp.received}"
                + (" (echo)" if rtp.echoed else "")
                + f", loss {loss}, jitter {jitter}: [{colour}]{escape(rtp.verdict)}[/{colour}]",
            )
        if result.auth is not None and result.auth.scheme:
            a = result.auth
            table.add_row(
                "auth", escape(f"{a.scheme} {a.algorithm} qop={a.qop or '-'}, {a.rounds} round(s)")
            )
        if result.server:
            table.add_row("server", escape(result.server))
        nat = result.nat
        if nat.local:
            text = nat.local
            if nat.behind_nat:
                text += f" seen as {nat.reflexive} (NAT)"
            elif nat.reflexive:
                text += " (no NAT)"
            table.add_row("local", escape(text))
        console.print(table)
        for warning in [*result.warnings, *nat.warnings]:
            console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
