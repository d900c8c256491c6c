"""The human output of `siptool decode`: a table, the full messages (-v), lint, ladders."""

from __future__ import annotations

import datetime
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from siptool.commands.decode import DecodedMessage, DecodeOptions, DecodeResult, Renderer
from siptool.errors import ParseError
from siptool.terminal import terminal_safe as _terminal_safe


def _summary_sip(m: DecodedMessage) -> str:
    msg = m.sip
    assert msg is not None
    try:
        cseq = msg.cseq
    except ParseError:
        cseq = None
    if msg.method is not None:
        text = f"{msg.method} {msg.request_uri}"
    else:
        text = f"{msg.status} {msg.reason or ''}".rstrip()
    if cseq is not None:
        text += f"  (CSeq {cseq.seq} {cseq.method})"
    try:
        sdp = msg.sdp
    except ParseError:
        sdp = None
    if sdp is not None:
        parts = []
        for media in sdp.media:
            codecs = ",".join(c.split("/")[0] for c in media.codecs[:4])
            parts.append(f"{media.media} {media.connection_address or '?'}:{media.port} {codecs}")
        text += "  SDP " + "; ".join(parts)
    return text


def _summary_stun(m: DecodedMessage) -> str:
    stun = m.stun
    text = f"{stun.method_name.capitalize()} {stun.msg_class.label.replace('_', ' ')}"
    mapped = stun.xor_mapped_address or stun.mapped_address
    if mapped:
        text += f"  mapped {mapped}"
    error = stun.error_code
    if error:
        text += f"  error {error[0]} {error[1]}"
    change = stun.attribute("CHANGE-REQUEST")
    if change is not None and isinstance(change.value, dict):
        flags = [k.replace("change_", "") for k, v in change.value.items() if v]
        if flags:
            text += "  change " + "+".join(flags)
    text += f"  tid {stun.transaction_id.hex()[:12]}…"
    if stun.fingerprint_ok is False:
        text += "  BAD FINGERPRINT"
    return text


def summary_line(m: DecodedMessage) -> str:
    return _summary_sip(m) if m.sip is not None else _summary_stun(m)


def _shown(text: str) -> str:
    """Text from the input, safe for the terminal and for rich markup."""
    return escape(_terminal_safe(text))


class TextRenderer(Renderer):
    def __init__(self, out: IO[str], options: DecodeOptions) -> None:
        self.options = options
        self.console = Console(
            file=out,
            no_color=not options.color,
            highlight=False,
            width=None if out.isatty() else 160,
        )
        self.messages: list[DecodedMessage] = []

    def message(self, decoded: DecodedMessage) -> None:
        self.messages.append(decoded)

    def finish(self, result: DecodeResult) -> None:
        if self.options.quiet:
            return
        if self.options.flow:
            from siptool.commands.callflow import build_flows
            from siptool.render.flow import render_flows

            ladders = render_flows(build_flows(self.messages))
            self.console.out(_terminal_safe(ladders), highlight=False)
        elif self.options.verbose:
            for m in self.messages:
                self._full(m)
        elif self.messages:
            self._table()
        if self.options.lint:
            self._lint()
        s = result.summary
        line = f"{s.sip} SIP, {s.stun} STUN, {s.invalid} invalid"
        if s.filtered_out:
            line += f", {s.filtered_out} filtered out"
        self.console.print(f"[dim]{_shown(line)}[/dim]")

    def _table(self) -> None:
        table = Table(box=None, header_style="bold", pad_edge=False)
        table.add_column("#", justify="right")
        table.add_column("time", justify="right")
        table.add_column("source -> destination", no_wrap=True)
        table.add_column("proto")
        table.add_column("summary", overflow="fold")
        first = next((x.raw.time for x in self.messages if x.raw.time is not None), None)
        for m in self.messages:
            raw = m.raw
            when = "-" if raw.time is None or first is None else f"{raw.time - first:.6f}"
            route = f"{raw.src} -> {raw.dst}" if raw.src else "-"
            proto = m.protocol.upper() + (f"/{raw.transport.upper()}" if raw.transport else "")
            summary = _shown(summary_line(m))
            if m.lint:
                summary += f"  [yellow]⚠ {len(m.lint)}[/yellow]"
            style = "red" if m.sip is not None and (m.sip.status or 0) >= 400 else None
            table.add_row(str(m.index), when, route, proto, summary, style=style)
        self.console.print(table)

    def _full(self, m: DecodedMessage) -> None:
        raw = m.raw
        heading = f"#{m.index}"
        if raw.time is not None:
            stamp = datetime.datetime.fromtimestamp(raw.time, datetime.UTC)
            heading += f"  {stamp:%Y-%m-%d %H:%M:%S.%f} UTC"
        if raw.src:
            heading += f"  {raw.src} -> {raw.dst} {raw.transport or ''}"
        if raw.frame is not None:
            heading += f"  (packet {raw.frame})"
        self.console.rule(_shown(heading), align="left", style="dim")
        if m.sip is not None:
            self._full_sip(m)
        else:
            self._full_stun(m)
        self.console.print()

    def _full_sip(self, m: DecodedMessage) -> None:
        msg = m.sip
        assert msg is not None
        self.console.print(f"[bold]{_shown(msg.start_line())}[/bold]")
        for h in msg.headers:
            self.console.print(f"[cyan]{_shown(h.name)}[/cyan]: {_shown(h.value)}")
        if not msg.body:
            return
        self.console.print()
        try:
            sdp = msg.sdp
        except ParseError as exc:
            self.console.print(f"[red]invalid SDP: {_shown(str(exc))}[/red]")
            sdp = None
        if sdp is None:
            self.console.print(_shown(msg.body.decode("utf-8", "replace")))
            return
        for line in msg.body.decode("utf-8", "replace").splitlines():
            if len(line) > 1 and line[1] == "=":
                self.console.print(f"[magenta]{_shown(line[:2])}[/magenta]{_shown(line[2:])}")
            else:
                self.console.print(_shown(line))
        for media in sdp.media:
            self.console.print(
                f"[dim]  -> {_shown(media.media)} to {_shown(media.connection_address or '?')}:"
                f"{media.port} {_shown(media.proto)} {media.direction}: "
                f"{_shown(', '.join(media.codecs))}[/dim]"
            )

    def _full_stun(self, m: DecodedMessage) -> None:
        stun = m.stun
        legacy = " (RFC 3489, no magic cookie)" if stun.legacy else ""
        self.console.print(
            f"[bold]STUN {_shown(stun.method_name)} {stun.msg_class.label}[/bold]{legacy}  "
            f"transaction {stun.transaction_id.hex()}  length {stun.length}"
        )
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column(style="cyan")
        table.add_column()
        for attr in stun.attributes:
            value: Any = attr.value
            if attr.name == "FINGERPRINT":
                value = f"0x{value:08x} ({'ok' if stun.fingerprint_ok else 'MISMATCH'})"
            table.add_row(_shown(attr.name), _shown(str(value)))
        self.console.print(table)

    def _lint(self) -> None:
        findings = [(m, w) for m in self.messages for w in (m.lint or [])]
        if not findings:
            self.console.print("[green]lint: no problems found[/green]")
            return
        self.console.print(f"[bold]lint: {len(findings)} findings[/bold]")
        for m, w in findings:
            colour = "red" if w.severity == "error" else "yellow"
            where = f"#{m.index}" + (f" (packet {m.raw.frame})" if m.raw.frame else "")
            what = summary_line(m).split("  ")[0]
            code = f"[{colour}]{w.code}[/{colour}]"
            self.console.print(f"  {_shown(where)} {_shown(what)}: {code} {_shown(w.message)}")
