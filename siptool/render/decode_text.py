"""The human output of `siptool decode`: a table, the full messages (-v), lint, ladders.

Decisions:

* What is shown is built once, as lines of (text, style) pieces and tables of them; two writers
  put it out.  On a terminal (or wherever rich would colour) rich prints it.  Elsewhere (a pipe,
  a file: no colours) ``_PlainWriter`` lays the same lines and tables out as rich does and
  writes them straight to the stream: rich costs about 0.1 ms a line, so a 10 MB message of
  400,000 header lines took a minute under ``-v``, and 40,000 messages took 20 s as a table.
  A line or a table cell that must be wrapped, which is rare, is still wrapped by rich, and a
  table's column widths are rich's own (computed from the widest cells only).
* Text from the input is shown as pieces, never as rich markup: ``[`` needs no escaping and an
  emoji code such as ``:smile:`` in a header stays as it came.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from typing import IO, Any

from rich.cells import cell_len
from rich.console import COLOR_SYSTEMS, Console
from rich.table import Column, Table
from rich.text import Text

from siptool.capture.model import time_in_range
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


def _wall_clock(seconds: float) -> str:
    """A packet's time as a UTC date, or as seconds since the epoch when no date can show it
    (the capture layer reported that time once on stderr)."""
    if time_in_range(seconds):
        stamp = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
        return f"{stamp:%Y-%m-%d %H:%M:%S.%f} UTC"
    return f"{seconds:.17g} s since the epoch (out of range of a date)"


Piece = tuple[str, str]  # text, rich style ("" for none)
Line = Sequence[Piece]


def _safe(text: str) -> str:
    """Text from the input, safe for the terminal."""
    return _terminal_safe(text)


def _width(text: str) -> int:
    return len(text) if text.isascii() else cell_len(text)


class _RichWriter:
    """Lines and tables printed by rich (colours, terminal width)."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def line(self, pieces: Line = ()) -> None:
        self.console.print(Text.assemble(*pieces))

    def rule(self, title: str, style: str) -> None:
        self.console.rule(Text(title), align="left", style=style)

    def table(self, table: Table, rows: Iterable[tuple[Sequence[Line], str]]) -> None:
        for cells, style in rows:
            table.add_row(*(Text.assemble(*cell) for cell in cells), style=style or None)
        self.console.print(table)

    def text(self, text: str) -> None:
        self.console.out(text, highlight=False)


class _PlainWriter(_RichWriter):
    """The same output without colours, laid out here and written straight to the stream."""

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self.write = console.file.write
        self.width = console.width
        self.rule_character = "-" if console.options.ascii_only else "\u2500"

    def line(self, pieces: Line = ()) -> None:
        text = "".join(piece for piece, _ in pieces)
        if "\t" in text or _width(text) > self.width:
            super().line(pieces)  # rich wraps it, and expands the tabs, as it always did
        else:
            self.write(text + "\n")

    def rule(self, title: str, style: str) -> None:
        # rich's left-aligned Rule: the title, a space, the rule character to the width.
        used = _width(title) + 1
        if "\t" in title or "\n" in title or used + 1 > self.width:
            super().rule(title, style)
        else:
            self.write(title + " " + self.rule_character * (self.width - used) + "\n")

    def table(self, table: Table, rows: Iterable[tuple[Sequence[Line], str]]) -> None:
        plain = [["".join(piece for piece, _ in cell) for cell in cells] for cells, _ in rows]
        widths = self._column_widths(table, plain)
        if widths is None:
            super().table(table, [([[(cell, "")] for cell in cells], "") for cells in plain])
            return
        columns = table.columns
        last = len(columns) - 1
        edge = 0 if not table.pad_edge else 1
        pads = [(edge if j == 0 else 1, edge if j == last else 1) for j in range(len(columns))]
        if table.show_header:
            plain.insert(0, [str(column.header) for column in columns])
        out: list[str] = []
        for cells in plain:
            laid = [
                self._cell(cell, column, width - left - right, left, right)
                for cell, column, width, (left, right) in zip(
                    cells, columns, widths, pads, strict=True
                )
            ]
            height = max(len(lines) for lines in laid)
            for k in range(height):
                out.append(
                    "".join(
                        lines[k] if k < len(lines) else " " * width
                        for lines, width in zip(laid, widths, strict=True)
                    )
                )
        if out:
            self.write("\n".join(out) + "\n")

    def _cell(self, text: str, column: Column, width: int, left: int, right: int) -> list[str]:
        justify = column.justify
        if "\n" in text or "\t" in text or _width(text) > width:
            wrapped = Text(text).wrap(
                self.console,
                width,
                justify=justify,
                overflow=column.overflow,
                no_wrap=column.no_wrap,
            )
            lines = [line.plain for line in wrapped]
        else:
            lines = [text]
        out = []
        for line in lines:
            pad = max(0, width - _width(line))
            inner = " " * pad + line if justify == "right" else line + " " * pad
            out.append(" " * left + inner + " " * right)
        return out

    def _column_widths(self, table: Table, rows: list[list[str]]) -> list[int] | None:
        """rich's own widths for the table (``Table._calculate_column_widths``), from a copy
        that holds only the cells that decide them: per column the longest line and the
        longest word, which is all a Text cell's measure looks at.  None if rich has no such
        method any more (the table is then printed by rich)."""
        calculate = getattr(Table, "_calculate_column_widths", None)
        if calculate is None:
            return None
        chosen: set[int] = set()
        for j in range(len(table.columns)):
            longest = max(range(len(rows)), key=lambda i: _width(rows[i][j]), default=None)
            widest_word = max(
                range(len(rows)),
                key=lambda i: max((_width(w) for w in rows[i][j].split()), default=0),
                default=None,
            )
            chosen.update(i for i in (longest, widest_word) if i is not None)
        proxy = Table(
            box=table.box,
            show_header=table.show_header,
            pad_edge=table.pad_edge,
            padding=table.padding,
        )
        for column in table.columns:
            proxy.add_column(
                column.header,
                justify=column.justify,
                no_wrap=column.no_wrap,
                overflow=column.overflow,
            )
        for i in sorted(chosen):
            proxy.add_row(*(Text(cell) for cell in rows[i]))
        widths: list[int] = calculate(proxy, self.console, self.console.options)
        return widths

    def text(self, text: str) -> None:
        self.write(text + "\n")  # Console.out: no wrapping, no cropping


class TextRenderer(Renderer):
    def __init__(self, out: IO[str], options: DecodeOptions) -> None:
        self.options = options
        self.console = Console(
            file=out,
            no_color=not options.color,
            highlight=False,
            width=None if out.isatty() else 160,
        )
        colours = self.console.color_system in COLOR_SYSTEMS
        self.out = _RichWriter(self.console) if colours else _PlainWriter(self.console)
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
            self.out.text(_safe(ladders))
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
        self.out.line([(_safe(line), "dim")])

    def _table(self) -> None:
        table = Table(box=None, header_style="bold", pad_edge=False)
        table.add_column("#", justify="right")
        table.add_column("time", justify="right")
        table.add_column("source -> destination", no_wrap=True)
        table.add_column("proto")
        table.add_column("summary", overflow="fold")
        first = next((x.raw.time for x in self.messages if x.raw.time is not None), None)
        rows: list[tuple[Sequence[Line], str]] = []
        for m in self.messages:
            raw = m.raw
            when = "-" if raw.time is None or first is None else f"{raw.time - first:.6f}"
            route = f"{raw.src} -> {raw.dst}" if raw.src else "-"
            proto = m.protocol.upper() + (f"/{raw.transport.upper()}" if raw.transport else "")
            summary: list[Piece] = [(_safe(summary_line(m)), "")]
            if m.lint:
                summary.append((f"  \u26a0 {len(m.lint)}", "yellow"))
            style = "red" if m.sip is not None and (m.sip.status or 0) >= 400 else ""
            cells = [[(str(m.index), "")], [(when, "")], [(route, "")], [(proto, "")], summary]
            rows.append((cells, style))
        self.out.table(table, rows)

    def _full(self, m: DecodedMessage) -> None:
        raw = m.raw
        heading = f"#{m.index}"
        if raw.time is not None:
            heading += f"  {_wall_clock(raw.time)}"
        if raw.src:
            heading += f"  {raw.src} -> {raw.dst} {raw.transport or ''}"
        if raw.frame is not None:
            heading += f"  (packet {raw.frame})"
        self.out.rule(_safe(heading), "dim")
        if m.sip is not None:
            self._full_sip(m)
        else:
            self._full_stun(m)
        self.out.line()

    def _full_sip(self, m: DecodedMessage) -> None:
        msg = m.sip
        assert msg is not None
        line = self.out.line
        line([(_safe(msg.start_line()), "bold")])
        for h in msg.headers:
            line([(_safe(h.name), "cyan"), (": " + _safe(h.value), "")])
        if not msg.body:
            return
        line()
        try:
            sdp = msg.sdp
        except ParseError as exc:
            line([(f"invalid SDP: {_safe(str(exc))}", "red")])
            sdp = None
        if sdp is None:
            for text in _safe(msg.body.decode("utf-8", "replace")).split("\n"):
                line([(text, "")])
            return
        for text in msg.body.decode("utf-8", "replace").splitlines():
            if len(text) > 1 and text[1] == "=":
                line([(_safe(text[:2]), "magenta"), (_safe(text[2:]), "")])
            else:
                line([(_safe(text), "")])
        for media in sdp.media:
            line(
                [
                    (
                        f"  -> {_safe(media.media)} to {_safe(media.connection_address or '?')}:"
                        f"{media.port} {_safe(media.proto)} {media.direction}: "
                        f"{_safe(', '.join(media.codecs))}",
                        "dim",
                    )
                ]
            )

    def _full_stun(self, m: DecodedMessage) -> None:
        stun = m.stun
        legacy = " (RFC 3489, no magic cookie)" if stun.legacy else ""
        self.out.line(
            [
                (f"STUN {_safe(stun.method_name)} {stun.msg_class.label}", "bold"),
                (
                    f"{legacy}  transaction {stun.transaction_id.hex()}  length {stun.length}",
                    "",
                ),
            ]
        )
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column(style="cyan")
        table.add_column()
        rows: list[tuple[Sequence[Line], str]] = []
        for attr in stun.attributes:
            value: Any = attr.value
            if attr.name == "FINGERPRINT":
                value = f"0x{value:08x} ({'ok' if stun.fingerprint_ok else 'MISMATCH'})"
            rows.append(([[(_safe(attr.name), "")], [(_safe(str(value)), "")]], ""))
        self.out.table(table, rows)

    def _lint(self) -> None:
        findings = [(m, w) for m in self.messages for w in (m.lint or [])]
        if not findings:
            self.out.line([("lint: no problems found", "green")])
            return
        self.out.line([(f"lint: {len(findings)} findings", "bold")])
        for m, w in findings:
            colour = "red" if w.severity == "error" else "yellow"
            where = f"#{m.index}" + (f" (packet {m.raw.frame})" if m.raw.frame else "")
            what = summary_line(m).split("  ")[0]
            self.out.line(
                [
                    (f"  {_safe(where)} {_safe(what)}: ", ""),
                    (w.code, colour),
                    (f" {_safe(w.message)}", ""),
                ]
            )
