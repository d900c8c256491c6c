"""Output of `siptool register`: a summary and the bindings, JSON, or a Nagios line."""

from __future__ import annotations

import sys
from typing import IO

from siptool.commands.register import RegisterResult
from siptool.render.json import dump_pretty, envelope
from siptool.terminal import markup_one_line, one_line


def document(result: RegisterResult) -> dict[str, object]:
    doc = envelope("register", result.exit_code, result.errors)
    doc.update(result.to_dict())
    return doc


def _nagios(
    result: RegisterResult, warning_ms: float | None, critical_ms: float | None
) -> tuple[int, str]:
    if result.exit_code == 3:
        return 3, "SIP UNKNOWN - " + "; ".join(e["message"] for e in result.errors)
    rtt = result.total_ms
    w = "" if warning_ms is None else f"{warning_ms:g}"
    c = "" if critical_ms is None else f"{critical_ms:g}"
    perf = f"time={rtt:.1f}ms;{w};{c};0" if rtt is not None else ""
    if result.exit_code != 0:
        why = result.errors[-1]["message"] if result.errors else "failed"
        return 2, f"SIP CRITICAL - REGISTER {result.aor} at {result.target}: {why} | {perf}"
    state = 0
    if critical_ms is not None and rtt is not None and rtt >= critical_ms:
        state = 2
    elif warning_ms is not None and rtt is not None and rtt >= warning_ms:
        state = 1
    label = ("OK", "WARNING", "CRITICAL")[state]
    what = f"{result.status} {result.reason or ''}".rstrip()
    granted = f" for {result.expires} s" if result.expires else ""
    return state, f"SIP {label} - {what}: {result.aor}{granted} in {rtt:.1f} ms | {perf}"


def render(
    result: RegisterResult,
    *,
    mode: str,
    quiet: bool,
    color: bool,
    warning_ms: float | None,
    critical_ms: float | None,
    out: IO[str] | None = None,
) -> int:
    out = out or sys.stdout
    if mode == "nagios":
        state, line = _nagios(result, warning_ms, critical_ms)
        out.write(one_line(line) + "\n")
        return state
    for e in result.errors:
        sys.stderr.write(f"siptool register: {one_line(e['message'])}\n")
    for w in result.warnings:
        sys.stderr.write(f"siptool register: warning: {one_line(w)}\n")
    if mode == "json":
        out.write(dump_pretty(document(result), tty=out.isatty()) + "\n")
        return result.exit_code
    if quiet or result.exit_code == 3:
        # Exit 3: siptool could not run the check; the stderr line above says why.
        return result.exit_code
    from rich.console import Console
    from rich.table import Table

    # Peer text (reasons, Server, Contact, SDP, auth parameters, the ladder): no terminal
    # controls, no rich markup.
    escape = markup_one_line

    console = Console(
        file=out, no_color=not color, highlight=False, width=None if out.isatty() else 160
    )
    status = f"{result.status} {result.reason or ''}".rstrip() if result.status else "no answer"
    colour = "green" if result.exit_code == 0 else "red"
    console.print(
        f"[bold]{escape(result.mode)}[/bold] {escape(result.aor)} at {escape(result.target)}"
        f" ({escape(str(result.transport or '-').upper())} {escape(result.address or '-')}): "
        f"[{colour}]{escape(status)}[/{colour}]"
        + (f" in {result.total_ms:.1f} ms" if result.status and result.total_ms else "")
    )
    if result.auth is not None and result.auth.scheme:
        a = result.auth
        console.print(
            f"auth: {escape(a.scheme or '')} {escape(a.algorithm or '')} "
            f"qop={escape(a.qop or '-')}, {a.rounds} challenge(s)"
        )
    if result.expires is not None:
        console.print(f"granted expiry: {result.expires} s (asked {result.requested_expires})")
    if result.bindings:
        table = Table(box=None, header_style="bold", pad_edge=False)
        table.add_column("binding")
        table.add_column("expires", justify="right")
        table.add_column("")
        for b in result.bindings:
            table.add_row(
                escape(b.contact),
                "-" if b.expires is None else f"{b.expires} s",
                "ours" if b.ours else "",
            )
        console.print(table)
    elif result.exit_code == 0:
        console.print("no bindings")
    for name, values in (("Service-Route", result.service_route), ("Path", result.path)):
        for v in values:
            console.print(f"{name}: {escape(v)}")
    nat = result.nat
    if nat.local:
        seen = f" seen as {nat.reflexive} (behind NAT)" if nat.behind_nat else ""
        console.print(f"[dim]local {escape(nat.local)}{escape(seen)}[/dim]")
    return result.exit_code
