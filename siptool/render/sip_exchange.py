"""The part of the send, message, publish and subscribe reports they share: each transaction
as a line per response with its time, the way sipsak -v and sngrep show a ladder's timing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from siptool.terminal import markup_one_line

if TYPE_CHECKING:
    from rich.console import Console

    from siptool.commands.sip_request import TransactionRecord


def transaction_lines(console: Console, records: list[TransactionRecord]) -> None:
    """``METHOD cseq N  +time ms  status reason (rtt ms)`` per response; no answer named."""
    escape = markup_one_line
    for record in records:
        head = f"{record.method} (CSeq {record.cseq})"
        again = f", sent {record.retransmitted + 1} times" if record.retransmitted else ""
        if not record.responses:
            console.print(
                f"  {escape(head)} at +{record.time_ms:.1f} ms{again}: "
                f"[red]{escape(record.error or 'no answer')}[/red]"
            )
            continue
        console.print(f"  {escape(head)} at +{record.time_ms:.1f} ms{again}")
        for response in record.responses:
            colour = _colour(response.status)
            console.print(
                f"    +{response.time_ms:8.1f} ms  [{colour}]{response.status} "
                f"{escape(response.reason)}[/{colour}]  ({response.rtt_ms:.1f} ms)"
            )


def _colour(status: int) -> str:
    if status < 200:
        return "dim"
    if status < 300:
        return "green"
    return "yellow" if status in (401, 407) else "red"
