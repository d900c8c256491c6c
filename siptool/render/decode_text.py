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
* The messages are kept until the end only for the views that show them (the table, -v,
  --lint's findings); the ladders come built on the result.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from typing import Any

from rich.cells import cell_len
from rich.console import COLOR_SYSTEMS, Console
from rich.table import Column, Table
from rich.text import Text

from siptool.capture.model import time_in_range
from siptool.commands.decode import DecodedMessage, DecodeResult, DecodeView
from siptool.errors import ExitCode, ParseError, SiptoolError
from siptool.render.output import Output
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


# Text from the input, safe for the terminal (a name, not a wrapper: it runs once per line).
_safe = _terminal_safe


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
            # Wrapped (and its tabs expanded) by rich's own Text.wrap, as console.print wraps
            # it, but written here: console.print splits the wrapped lines out of one string
            # again and again, which made a 10 MB folded header take 16 s.
            wrapped = Text(text).wrap(self.console, self.width, justify="default", overflow="fold")
            self.write("\n".join(line.plain for line in wrapped) + "\n")
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
        plain = [
            [cell[0][0] if len(cell) == 1 else "".join(p for p, _ in cell) for cell in cells]
            for cells, _ in rows
        ]
        widths = self._column_widths(table, plain)
        if widths is None:
            super().table(table, [([[(cell, "")] for cell in cells], "") for cells in plain])
            return
        columns = table.columns
        last = len(columns) - 1
        edge = 0 if not table.pad_edge else 1
        pads = [(edge if j == 0 else 1, edge if j == last else 1) for j in range(len(columns))]
        layout = [
            (width - left - right, " " * left, " " * right, column.justify == "right", column)
            for column, width, (left, right) in zip(columns, widths, pads, strict=True)
        ]
        if table.show_header:
            plain.insert(0, [str(column.header) for column in columns])
        out: list[str] = []
        append = out.append
        for cells in plain:
            parts: list[str] = []
            tall: list[tuple[int, list[str]]] = []
            for j, (cell, (inner, left, right, flush_right, column)) in enumerate(
                zip(cells, layout, strict=True)
            ):
                used = _width(cell)
                if used <= inner and "\n" not in cell and "\t" not in cell:
                    fill = " " * (inner - used)
                    parts.append(left + (fill + cell if flush_right else cell + fill) + right)
                else:
                    lines = self._wrapped_cell(cell, column, inner, left, right)
                    parts.append(lines[0])
                    if len(lines) > 1:
                        tall.append((j, lines))
            append("".join(parts))
            if not tall:
                continue
            for k in range(1, max(len(lines) for _, lines in tall)):
                blank = [" " * width for width in widths]
                for j, lines in tall:
                    if k < len(lines):
                        blank[j] = lines[k]
                append("".join(blank))
        if out:
            self.write("\n".join(out) + "\n")

    def _wrapped_cell(
        self, text: str, column: Column, width: int, left: str, right: str
    ) -> list[str]:
        """A cell's lines as rich's Table renders them: wrapped, justified, padded."""
        wrapped = Text(text).wrap(
            self.console,
            width,
            justify=column.justify,
            overflow=column.overflow,
            no_wrap=column.no_wrap,
        )
        out = []
        for line in wrapped:
            fill = " " * max(0, width - _width(line.plain))
            inner = fill + line.plain if column.justify == "right" else line.plain + fill
            out.append(left + inner + right)
        return out

    def _column_widths(self, table: Table, rows: list[list[str]]) -> list[int] | None:
        """rich's own widths for the table (``Table._calculate_column_widths``), from a copy
        that holds only the cells that decide them: per column the longest line and the
        longest word, which is all a Text cell's measure looks at.  None if rich has no such
        method any more (the table is then printed by rich)."""
        calculate = getattr(Table, "_calculate_column_widths", None)
        if calculate is None:
            return None
        count = len(table.columns)
        line_best = [-1] * count
        word_best = [-1] * count
        chosen_line = [-1] * count
        chosen_word = [-1] * count
        for i, cells in enumerate(rows):
            for j, cell in enumerate(cells):
                full = _width(cell)
                used = full if "\n" not in cell else max(map(_width, cell.splitlines()))
                if used > line_best[j]:
                    line_best[j], chosen_line[j] = used, i
                # No word is wider than the cell: most cells need no split.
                if full > word_best[j]:
                    word = max((_width(w) for w in cell.split()), default=0)
                    if word > word_best[j]:
                        word_best[j], chosen_word[j] = word, i
        chosen = sorted({i for i in (*chosen_line, *chosen_word) if i >= 0})
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
        for i in chosen:
            proxy.add_row(*(Text(cell) for cell in rows[i]))
        widths: list[int] = calculate(proxy, self.console, self.console.options)
        return widths

    def text(self, text: str) -> None:
        self.write(text + "\n")  # Console.out: no wrapping, no cropping


class TextRenderer:
    """The table, every message in full (-v) or the ladders (--flow); --lint's findings; the
    summary line."""

    def __init__(self, output: Output, *, view: DecodeView, lint: bool) -> None:
        self.output = output
        self.view = view
        self.lint = lint
        self.console = output.console()
        colours = self.console.color_system in COLOR_SYSTEMS
        self.out = _RichWriter(self.console) if colours else _PlainWriter(self.console)
        self.messages: list[DecodedMessage] = []
        self.keep = not output.quiet and (view is not DecodeView.FLOW or lint)

    def message(self, decoded: DecodedMessage) -> None:
        if self.keep:
            self.messages.append(decoded)

    def problem(self, error: SiptoolError) -> None:
        self.output.error(error.message)

    def finish(self, result: DecodeResult) -> None:
        # Nothing to show when the input could not be read: stderr said why (exit 3).
        if self.output.quiet or result.exit_code is ExitCode.NOT_RUN:
            return
        if self.view is DecodeView.FLOW:
            from siptool.render.flow import render_flows  # only this view (start-up time)

            self.out.text(_safe(render_flows(result.flows or [])))
        elif self.view is DecodeView.VERBOSE:
            for m in self.messages:
                self._full(m)
        elif self.messages:
            self._table()
        if self.lint:
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
