"""Output of `siptool invite-test`: a call ladder and summary, JSON, Nagios.

It draws a ``CallResult``; whether the call passed, the exit code, the Nagios verdict and the
media check were decided by the command.  Everything the peer wrote (reasons, Server,
Contact, SDP, auth parameters, the ladder) is drawn with no terminal controls and no rich
markup."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from siptool.commands.invite_test import (
    ByeOutcome,
    CallResult,
    Direction,
    TransferNotify,
    TransferOutcome,
)
from siptool.render import probe_metrics
from siptool.render.openmetrics import Metrics
from siptool.render.output import ResultRenderer
from siptool.terminal import markup_one_line as escape

if TYPE_CHECKING:
    from rich.table import Table


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def bye_text(result: CallResult) -> str:
    """How the answered call ended, in words."""
    if result.bye is ByeOutcome.REMOTE:
        return "the far end hung up (we answered 200)"
    if result.bye is ByeOutcome.ANSWERED:
        return f"BYE got {result.bye_response}"
    return "BYE got no answer"


class InviteRenderer(ResultRenderer[CallResult]):
    def metrics(self, result: CallResult, found: Metrics) -> None:
        labels = probe_metrics.sip_labels(result, "INVITE")
        answer = result.timings.answer
        probe_metrics.sip_exchange(
            found, labels, passed=result.passed, status=result.final_status,
            rtts_ms=[] if result.timings.final is None else [result.timings.final],
        )  # fmt: skip
        found.add("siptool_sip_pdd_seconds", probe_metrics.seconds(result.timings.pdd), labels)
        found.add("siptool_sip_answer_seconds", probe_metrics.seconds(answer), labels)
        if result.auth is not None:
            found.add("siptool_sip_auth_rounds", result.auth.rounds, labels)
        probe_metrics.server_info(found, labels, result.server)
        rtp = result.rtp
        if rtp is not None:
            found.add("siptool_rtp_packets_sent", rtp.sent, labels)
            found.add("siptool_rtp_packets_received", rtp.received, labels)
            found.add("siptool_rtp_loss_ratio", probe_metrics.ratio(rtp.loss_pct), labels)
            found.add("siptool_rtp_jitter_seconds", probe_metrics.seconds(rtp.jitter_ms), labels)
        probe_metrics.tls(found, labels, result.tls)

    def body(self, result: CallResult) -> dict[str, Any]:
        return result.to_dict()

    def report(self, result: CallResult) -> None:
        self._summary(result)

    def _summary(self, result: CallResult) -> None:
        from rich.table import Table

        console = self.output.console()
        where = (
            f" via {(result.transport or '').upper()} {result.address}" if result.address else ""
        )
        console.print(f"[bold]Test call to {escape(result.target)}[/bold]{escape(where)}")
        if result.call_id:
            console.print(f"[dim]Call-ID {escape(result.call_id)}[/dim]")
        if result.events:
            console.print(_ladder(result))
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        _call_rows(table, result)
        _transfer_rows(table, result)
        _media_rows(table, result)
        _peer_rows(table, result)
        console.print(table)
        for warning in [*result.warnings, *result.nat.warnings]:
            console.print(f"[yellow]warning:[/yellow] {escape(warning)}")


def _ladder(result: CallResult) -> Table:
    from rich.table import Table

    ladder = Table(box=None, show_header=False, pad_edge=False)
    ladder.add_column(justify="right", style="dim")
    ladder.add_column()
    ladder.add_column()
    for e in result.events:
        arrow = "[cyan]-->[/cyan]" if e.direction is Direction.SEND else "[magenta]<--[/magenta]"
        ladder.add_row(f"{e.t_ms:10.1f} ms", arrow, escape(e.what))
    return ladder


def _call_rows(table: Table, result: CallResult) -> None:
    """The final response, the timings, the CANCEL and how the call ended."""
    if result.final_text is not None:
        colour = "green" if result.passed else "red"
        table.add_row("final", f"[{colour}]{escape(result.final_text)}[/{colour}]")
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
        cancel = f"sent ({result.cancel_reason.value}), CANCEL got {result.cancel_status or '-'}"
        cancel += ", call cancelled" if result.cancelled else ""
        table.add_row("CANCEL", escape(cancel))
    if result.answered:
        hold = "-" if result.hold_ms is None else f"{result.hold_ms / 1000:.1f} s"
        table.add_row("call", f"held {hold}; {escape(bye_text(result))}")


def _transfer_rows(table: Table, result: CallResult) -> None:
    """--refer-to: the REFER's answer, each NOTIFY of its subscription, the outcome."""
    transfer = result.transfer
    if transfer is None:
        return
    answer = transfer.status_text or "no answer"
    if transfer.refer_ms is not None:
        answer += f" in {transfer.refer_ms:.1f} ms"
    table.add_row("REFER", escape(f"to {transfer.refer_to}: {answer}"))
    for notify in transfer.notifies:
        table.add_row("NOTIFY", escape(_notify_text(notify)))
    # The summary says the outcome ("transfer target answered 200 OK", "REFER refused: ...").
    colour = "green" if transfer.outcome is TransferOutcome.SUCCEEDED else "red"
    summary = escape(transfer.summary or transfer.outcome.value)
    if transfer.outcome is TransferOutcome.UNKNOWN:
        summary += " (outcome unknown)"
    table.add_row("transfer", f"[{colour}]{summary}[/{colour}]")


def _notify_text(notify: TransferNotify) -> str:
    """``+12.3 ms: SIP/2.0 100 Trying (active)``."""
    frag, state = notify.sipfrag, notify.subscription_state
    what = "no sipfrag" if frag is None else f"SIP/2.0 {frag.status} {frag.reason or ''}".rstrip()
    if frag is not None and frag.status is None:
        what = frag.summary()
    text = f"+{notify.time_ms:.1f} ms: {what}"
    text += f" ({state.state_text})" if state is not None else ""
    if notify.error is not None:
        text += f"; {notify.error}"
    return text


def _media_rows(table: Table, result: CallResult) -> None:
    """The SDP answer and the --rtp check."""
    answer = result.sdp_answer
    if answer is not None:
        codecs = ", ".join(answer.codecs) or "-"
        table.add_row("SDP answer", escape(f"{codecs} at {answer.media_address or '-'}"))
    rtp = result.rtp
    if rtp is not None:
        loss = "-" if rtp.loss_pct is None else f"{rtp.loss_pct:g}%"
        jitter = "-" if rtp.jitter_ms is None else f"{rtp.jitter_ms:.2f} ms"
        colour = "green" if result.rtp_ok else "red"
        table.add_row(
            "RTP",
            f"sent {rtp.sent}, received {rtp.received}"
            + (" (echo)" if rtp.echoed else "")
            + f", loss {loss}, jitter {jitter}: [{colour}]{escape(rtp.verdict)}[/{colour}]",
        )


def _peer_rows(table: Table, result: CallResult) -> None:
    """Authentication, the server's name and the NAT view."""
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
