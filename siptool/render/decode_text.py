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
* Nothing grows with the input (issue 10): -v writes each message as it comes; the table
  holds its first 200 rows, takes its column widths from them (and from a hint of the widest
  index and time a day of capture needs) and then writes each row as it comes, a cell wider
  than its column wrapping in it (or, in the no-wrap address column, pushing the row);
  --lint keeps its findings, not the messages; the ladders come built on the result.
  A table of up to 200 rows is drawn whole, exactly as rich draws it.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.console import COLOR_SYSTEMS, Console
from rich.table import Column, Table
from rich.text import Text

from siptool.capture.model import time_in_range
from siptool.commands.decode import DecodedMessage, DecodeResult, DecodeView
from siptool.errors import ExitCode, ParseError, SiptoolError
from siptool.render.output import Output
from siptool.sip.lint import LintWarning
from siptool.terminal import terminal_safe as _terminal_safe

if TYPE_CHECKING:
    from siptool.capture.model import TlsSession, UndecodedStream, WebSocketStream
    from siptool.commands.callflow import CallFlow
    from siptool.commands.decode_media import MediaReport


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
    if not time_in_range(seconds):
        return f"{seconds:.17g} s since the epoch (out of range of a date)"
    # datetime.fromtimestamp's own rounding (half-even to the microsecond, carried into the
    # second), with the date of each second formatted once: -v shows a time per message.
    fraction, whole = math.modf(seconds)
    micro = round(fraction * 1e6)
    if micro >= 1_000_000:
        whole, micro = whole + 1, micro - 1_000_000
    elif micro < 0:
        whole, micro = whole - 1, micro + 1_000_000
    if not time_in_range(whole):
        stamp = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
        return f"{stamp:%Y-%m-%d %H:%M:%S.%f} UTC"
    prefix = _SECONDS.get(whole)
    if prefix is None:
        if len(_SECONDS) >= 4096:
            _SECONDS.clear()
        stamp = datetime.datetime.fromtimestamp(whole, datetime.UTC)
        prefix = _SECONDS[whole] = f"{stamp:%Y-%m-%d %H:%M:%S}"
    return f"{prefix}.{micro:06d} UTC"


_SECONDS: dict[float, str] = {}  # whole second -> its date and time, for _wall_clock


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

    def header_lines(self, headers: Iterable[tuple[str, str]], style: str) -> None:
        """``name: value`` lines, the name in ``style`` (text already made safe)."""
        for name, value in headers:
            self.line([(name, style), (": " + value, "")])

    def rule(self, title: str, style: str) -> None:
        self.console.rule(Text(title), align="left", style=style)

    def table(self, table: Table, rows: Iterable[tuple[Sequence[Line], str]]) -> None:
        for cells, style in rows:
            table.add_row(*(Text.assemble(*cell) for cell in cells), style=style or None)
        self.console.print(table)

    def table_stream(
        self, table: Table, hint: Sequence[str], *, live: bool = False
    ) -> _TableStream:
        """A table written as its rows come (``_TableStream``)."""
        return _RichTableStream(self, table, hint, live=live)

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

    def header_lines(self, headers: Iterable[tuple[str, str]], style: str) -> None:
        # One write for a message's headers (a line() each cost a third of -v's time); a line
        # that must be wrapped still goes through line().
        width = self.width
        out: list[str] = []
        for name, value in headers:
            text = f"{name}: {value}"
            if "\t" in text or (len(text) > width if text.isascii() else cell_len(text) > width):
                if out:
                    self.write("\n".join(out) + "\n")
                    out = []
                self.line([(text, "")])
            else:
                out.append(text)
        if out:
            self.write("\n".join(out) + "\n")

    def rule(self, title: str, style: str) -> None:
        # rich's left-aligned Rule: the title, a space, the rule character to the width.
        used = _width(title) + 1
        if "\t" in title or "\n" in title or used + 1 > self.width:
            super().rule(title, style)
        else:
            self.write(title + " " + self.rule_character * (self.width - used) + "\n")

    def table(self, table: Table, rows: Iterable[tuple[Sequence[Line], str]]) -> None:
        plain = [_plain_cells(cells) for cells, _ in rows]
        widths = _column_widths(self.console, table, plain)
        if widths is None:
            super().table(table, [([[(cell, "")] for cell in cells], "") for cells in plain])
            return
        layout = self._layout(table, widths)
        if table.show_header:
            plain.insert(0, [str(column.header) for column in table.columns])
        self.write_rows(layout, plain)

    def _layout(self, table: Table, widths: list[int]) -> _Layout:
        """Per column: inner width, left and right padding, flush right, the column."""
        cells = [
            (width - left - right, " " * left, " " * right, column.justify == "right", column)
            for column, width, (left, right) in zip(
                table.columns, widths, _pads(table), strict=True
            )
        ]
        return _Layout(widths, cells)

    def write_rows(
        self, layout: _Layout, rows: Iterable[list[str]], overflow: bool = False
    ) -> None:
        """Rows laid out in fixed columns.  A cell wider than its column wraps in it as rich
        wraps it; with ``overflow`` (a streamed table, whose widths came from its first rows) a
        cell of a ``no_wrap`` column is written whole instead, pushing the rest of its row."""
        widths = layout.widths
        out: list[str] = []
        append = out.append
        for cells in rows:
            parts: list[str] = []
            tall: list[tuple[int, list[str]]] = []
            for j, (cell, (inner, left, right, flush_right, column)) in enumerate(
                zip(cells, layout.cells, strict=True)
            ):
                used = _width(cell)
                if used <= inner and "\n" not in cell and "\t" not in cell:
                    fill = " " * (inner - used)
                    parts.append(left + (fill + cell if flush_right else cell + fill) + right)
                elif overflow and column.no_wrap and "\n" not in cell and "\t" not in cell:
                    parts.append(left + cell + right)
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

    def table_stream(
        self, table: Table, hint: Sequence[str], *, live: bool = False
    ) -> _TableStream:
        return _PlainTableStream(self, table, hint, live=live)

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

    def text(self, text: str) -> None:
        self.write(text + "\n")  # Console.out: no wrapping, no cropping


def _column_widths(console: Console, table: Table, rows: list[list[str]]) -> list[int] | None:
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
    widths: list[int] = calculate(proxy, console, console.options)
    return widths


def _plain_cells(cells: Sequence[Line]) -> list[str]:
    return [cell[0][0] if len(cell) == 1 else "".join(p for p, _ in cell) for cell in cells]


@dataclass
class _Layout:
    """A table's column widths, fixed: the whole widths and, per column, what lays a cell out
    (inner width, left and right padding, flush right, the column)."""

    widths: list[int]
    cells: list[tuple[int, str, str, bool, Column]]


class _TableStream:
    """A table whose rows come one at a time and are written as they come.

    The first ``SAMPLE`` rows are held: a table that ends within them is drawn whole, exactly
    as before (rich's widths from every cell).  A longer one takes its column widths from
    those rows and a ``hint`` row (the widest index and time it is likely to need), then
    writes every row at once in those widths: the output starts after ``SAMPLE`` rows and
    memory does not grow with the table."""

    SAMPLE = 200
    BATCH = 512

    def __init__(
        self, writer: _RichWriter, table: Table, hint: Sequence[str], *, live: bool = False
    ) -> None:
        self.writer = writer
        self.table = table
        self.hint = list(hint)
        self.held: list[tuple[Sequence[Line], str]] = []
        self.fixed = False
        if live:  # a live capture: each row at once, in the hint's widths
            self.SAMPLE = self.BATCH = 1

    def add(self, cells: Sequence[Line], style: str) -> None:
        self.held.append((cells, style))
        if len(self.held) >= (self.BATCH if self.fixed else self.SAMPLE):
            if not self.fixed:
                self.fixed = True
                self.start()
            self.write(self.held)
            self.held = []

    def close(self) -> None:
        if not self.fixed:
            self.writer.table(self.table, self.held)
        elif self.held:
            self.write(self.held)
        self.held = []

    def widths(self) -> list[int] | None:
        rows = [_plain_cells(cells) for cells, _ in self.held]
        return _column_widths(self.writer.console, self.table, [*rows, self.hint])

    def start(self) -> None:
        raise NotImplementedError

    def write(self, rows: list[tuple[Sequence[Line], str]]) -> None:
        raise NotImplementedError


class _RichTableStream(_TableStream):
    """Each batch printed by rich as a table of fixed-width columns, the header on the first."""

    def start(self) -> None:
        self.columns = self.widths()
        self.header = self.table.show_header

    def write(self, rows: list[tuple[Sequence[Line], str]]) -> None:
        batch = _fixed_table(self.table, self.columns, header=self.header)
        self.header = False
        self.writer.table(batch, rows)


def _pads(table: Table) -> list[tuple[int, int]]:
    """Each column's (left, right) padding as rich pads a ``box=None`` table: one cell between
    columns, and at the edges only with ``pad_edge``."""
    last = len(table.columns) - 1
    edge = 1 if table.pad_edge else 0
    return [(edge if j == 0 else 1, edge if j == last else 1) for j in range(last + 1)]


def _fixed_table(table: Table, widths: list[int] | None, *, header: bool) -> Table:
    """A copy of ``table``'s columns, each exactly as wide as ``widths`` says (padding in;
    None: rich without ``_calculate_column_widths``, so each batch at its own widths)."""
    fixed = Table(
        box=table.box,
        show_header=header,
        pad_edge=table.pad_edge,
        header_style=table.header_style,
        padding=table.padding,
    )
    for j, (column, (left, right)) in enumerate(zip(table.columns, _pads(table), strict=True)):
        pad = left + right
        fixed.add_column(
            column.header,
            justify=column.justify,
            no_wrap=column.no_wrap,
            overflow=column.overflow,
            width=None if widths is None else max(1, widths[j] - pad),
        )
    return fixed


class _PlainTableStream(_TableStream):
    writer: _PlainWriter

    def start(self) -> None:
        widths = self.widths()
        self.layout = None if widths is None else self.writer._layout(self.table, widths)
        if self.layout is not None and self.table.show_header:
            header = [str(column.header) for column in self.table.columns]
            self.writer.write_rows(self.layout, [header])

    def write(self, rows: list[tuple[Sequence[Line], str]]) -> None:
        if self.layout is None:
            self.writer.table(self.table, rows)
            return
        self.writer.write_rows(self.layout, [_plain_cells(c) for c, _ in rows], overflow=True)


_NAMED = 5  # undecoded TCP streams named one by one in the summary

_STREAM_COLUMNS = (
    ("source -> destination", "left"),
    ("SSRC", "left"),
    ("codec", "left"),
    ("packets", "right"),
    ("lost", "right"),
    ("max delta ms", "right"),
    ("jitter mean / max ms", "right"),
    ("MOS (estimate)", "right"),
    ("Call-ID", "left"),
)


def _ms(value: object) -> str:
    return "-" if not isinstance(value, float | int) else f"{value:.3f}"


class TextRenderer:
    """The table, every message in full (-v) or the ladders (--flow); --lint's findings; the
    summary line.  The table and -v are written as the messages come (``_TableStream``);
    --lint keeps its findings, not the messages, for the end."""

    def __init__(self, output: Output, *, view: DecodeView, lint: bool, live: bool = False) -> None:
        self.output = output
        self.view = view
        self.lint = lint
        self.live = live  # a live capture: every message shown and flushed as it comes
        self.console = output.console()
        colours = self.console.color_system in COLOR_SYSTEMS
        self.out = _RichWriter(self.console) if colours else _PlainWriter(self.console)
        self.findings: list[tuple[str, LintWarning]] = []
        self.rows: _TableStream | None = None
        self.first: float | None = None  # the first message's time: the table's time zero
        self.flows_drawn = 0

    def message(self, decoded: DecodedMessage) -> None:
        if self.output.quiet:
            return
        if self.view is DecodeView.TABLE:
            self._row(decoded)
        elif self.view is DecodeView.VERBOSE:
            self._full(decoded)
        if self.lint and decoded.lint:
            where = f"#{decoded.index}" + (
                f" (packet {decoded.raw.frame})" if decoded.raw.frame else ""
            )
            what = summary_line(decoded).split("  ")[0]
            head = f"  {_safe(where)} {_safe(what)}: "
            self.findings.extend((head, w) for w in decoded.lint)

    def problem(self, error: SiptoolError) -> None:
        self.output.error(error.message)

    def flow(self, flow: CallFlow) -> None:
        """One call's ladder, as soon as the call has ended (--flow)."""
        if self.output.quiet:
            return
        from siptool.render.flow import render_flow  # only this view (start-up time)

        self.out.text(("\n" if self.flows_drawn else "") + _safe(render_flow(flow)))
        self.flows_drawn += 1
        if self.live:
            self.output.out.flush()

    def finish(self, result: DecodeResult) -> None:
        # Nothing to show when the input could not be read: stderr said why (exit 3).
        if self.output.quiet or result.exit_code is ExitCode.NOT_RUN:
            return
        if self.view is DecodeView.FLOW:
            for flow in result.flows or []:  # the flows not handed over as they ended
                self.flow(flow)
            if not self.flows_drawn:
                self.out.text("no SIP dialogs in the input")
        elif self.rows is not None:
            self.rows.close()
        if result.media is not None:
            self._streams(result.media)
            self._calls(result.media)
        if self.lint:
            self._lint()
        s = result.summary
        line = f"{s.sip} SIP, {s.stun} STUN, {s.invalid} invalid"
        if s.filtered_out:
            line += f", {s.filtered_out} filtered out"
        if result.media is not None:
            line += f", {len(result.media.streams)} RTP streams"
        self.out.line([(_safe(line), "dim")])
        if s.not_decoded:
            self._not_decoded(s.not_decoded)
        if s.websocket:
            self._websocket(s.websocket)
        if s.tls:
            self._tls(s.tls)

    def _not_decoded(self, streams: Sequence[UndecodedStream]) -> None:
        """The TCP streams that carried neither SIP nor STUN, the first few one per line."""
        tls = sum(s.protocol == "tls" for s in streams)
        head = f"not decoded: {tls} TLS and {len(streams) - tls} other TCP streams"
        self.out.line([(head, "yellow")])
        for s in streams[:_NAMED]:
            what = "TLS" if s.protocol == "tls" else "TCP"
            sni = f" SNI {s.sni}" if s.sni else ""
            self.out.line([(_safe(f"  {what} {s.src} -> {s.dst}{sni} ({s.bytes} bytes)"), "")])
        if len(streams) > _NAMED:
            self.out.line([(f"  and {len(streams) - _NAMED} more", "")])

    def _tls(self, sessions: Sequence[TlsSession]) -> None:
        """The TLS connections: how many were decrypted, and the others one per line with why
        not (--tls-keylog)."""
        closed = [s for s in sessions if not s.decrypted]
        noun = "connection" if len(sessions) == 1 else "connections"
        head = f"TLS: {len(sessions)} {noun}, {len(sessions) - len(closed)} decrypted"
        self.out.line([(head, "yellow" if closed else "dim")])
        for s in closed[:_NAMED]:
            what = " ".join(x for x in (s.version, s.cipher_suite) if x) or "TLS"
            sni = f" SNI {s.sni}" if s.sni else ""
            line = f"  {s.client} -> {s.server}{sni} {what}: not decrypted, {s.reason}"
            self.out.line([(_safe(line), "")])
        if len(closed) > _NAMED:
            self.out.line([(f"  and {len(closed) - _NAMED} more", "")])

    def _websocket(self, streams: Sequence[WebSocketStream]) -> None:
        """The directions read as SIP over WebSocket, the first few one per line, with their
        subprotocol and close frame (RFC 6455 §5.5.1)."""
        self.out.line([(f"SIP over WebSocket: {len(streams)} directions", "dim")])
        for s in streams[:_NAMED]:
            if s.subprotocols is None:
                how = "upgrade not captured"
            else:
                how = f"{s.role}, subprotocol {','.join(s.subprotocols) or 'none'}"
            line = f"  {'WSS' if s.secure else 'WS'} {s.src} -> {s.dst} ({how}): {s.messages} SIP"
            if s.problems:
                line += f", {s.problems} problems"
            if s.close_frame is not None:
                code = "no code" if s.close_code is None else str(s.close_code)
                reason = f" {s.close_reason!r}" if s.close_reason else ""
                line += f"; closed ({code}{reason}) at packet {s.close_frame}"
            self.out.line([(_safe(line), "")])
        if len(streams) > _NAMED:
            self.out.line([(f"  and {len(streams) - _NAMED} more", "")])

    def _streams(self, media: MediaReport) -> None:
        """The RTP streams as tshark -z rtp,streams lists them, with siptool's own columns."""
        if not media.streams:
            self.out.line([("no RTP streams in the input", "dim")])
            return
        table = Table(box=None, header_style="bold", pad_edge=False)
        for header, justify in _STREAM_COLUMNS:
            # Folded, never cut with an ellipsis: an address or a Call-ID must stay whole.
            table.add_column(header, justify=justify, overflow="fold")  # type: ignore[arg-type]
        rows: list[tuple[Sequence[Line], str]] = []
        for d in media.streams:
            lost, expected = d["lost"], d["expected"]
            share = f" ({100.0 * lost / expected:.1f}%)" if expected and lost > 0 else ""
            mos = d["mos_estimate"]
            cells = [
                f"{d['src']} -> {d['dst']}",
                d["ssrc"],
                _safe(d["codec"] or str(d["payload_type"])),
                str(d["packets"]),
                f"{lost}{share}",
                _ms(d["max_delta_ms"]),
                f"{_ms(d['jitter_mean_ms'])} / {_ms(d['jitter_max_ms'])}",
                "-" if mos is None else f"{mos['mos']:.2f}",
                _safe(d["call_id"] or "-"),
            ]
            style = "red" if lost > 0 and expected and lost / expected > 0.01 else ""
            rows.append(([[(cell, "")] for cell in cells], style))
        self.out.line([("RTP streams", "bold")])
        self.out.table(table, rows)

    def _calls(self, media: MediaReport) -> None:
        """Each call's media verdict and its reasons; the DTMF digits it carried."""
        for v in media.calls:
            colour = {"both-ways": "green", "held": "yellow"}.get(v.verdict, "red")
            self.out.line(
                [(f"Call-ID {_safe(v.call_id)}: ", "bold"), (f"media {v.verdict}", colour)]
            )
            for reason in v.reasons:
                self.out.line([(f"  - {_safe(reason)}", "")])
            if v.dtmf:
                digits = " ".join(f"{_safe(e['digit'])} ({e['duration_ms']:g} ms)" for e in v.dtmf)
                self.out.line([(f"  DTMF (RFC 4733): {digits}", "")])

    def _row(self, m: DecodedMessage) -> None:
        raw = m.raw
        if self.rows is None:
            table = Table(box=None, header_style="bold", pad_edge=False)
            table.add_column("#", justify="right")
            table.add_column("time", justify="right")
            table.add_column("source -> destination", no_wrap=True)
            table.add_column("proto")
            table.add_column("summary", overflow="fold")
            # A long capture's widest index and time (a day), so that later rows still fit;
            # live, the rows come one by one: room for two IPv4 addresses and ports as well.
            route = "255.255.255.255:65535 -> 255.255.255.255:65535" if self.live else ""
            hint = ["9999999", "99999.999999", route, "SIP/UDP", ""]
            self.rows = self.out.table_stream(table, hint, live=self.live)
        if self.first is None:
            self.first = raw.time
        first = self.first
        when = "-" if raw.time is None or first is None else f"{raw.time - first:.6f}"
        route = f"{raw.src} -> {raw.dst}" if raw.src else "-"
        proto = m.protocol.upper() + (f"/{raw.transport.upper()}" if raw.transport else "")
        summary: list[Piece] = [(_safe(summary_line(m)), "")]
        if m.lint:
            summary.append((f"  \u26a0 {len(m.lint)}", "yellow"))
        style = "red" if m.sip is not None and (m.sip.status or 0) >= 400 else ""
        cells = [[(str(m.index), "")], [(when, "")], [(route, "")], [(proto, "")], summary]
        self.rows.add(cells, style)

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
        self.out.header_lines(((_safe(h.name), _safe(h.value)) for h in msg.headers), "cyan")
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
        if not self.findings:
            self.out.line([("lint: no problems found", "green")])
            return
        self.out.line([(f"lint: {len(self.findings)} findings", "bold")])
        for head, w in self.findings:
            colour = "red" if w.severity == "error" else "yellow"
            self.out.line([(head, ""), (w.code, colour), (f" {_safe(w.message)}", "")])
