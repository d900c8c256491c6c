"""From click's keyword arguments to a PingResult on screen and an exit code."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from siptool.commands.options_ping import Expectation, PingOptions, PingResult, run_ping
from siptool.commands.sip_common import settings_from_flags
from siptool.errors import ParseError
from siptool.net.sip_transport import WireLog
from siptool.sip.target import Target, parse_target, redact_password

EXIT_USAGE = 2


def _usage(message: str) -> int:
    sys.stderr.write(f"siptool options-ping: {message}\n")
    return EXIT_USAGE


def read_targets(args: tuple[str, ...], path: str | None, transport: str | None) -> list[Target]:
    """Targets from the arguments then the file; ``ValueError`` names the bad one."""
    lines = [(text, f"argument {redact_password(text)!r}") for text in args]
    if path:
        handle = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
        with handle:
            for number, line in enumerate(handle, 1):
                text = line.split("#", 1)[0].strip()
                if text:
                    lines.append((text, f"{path}:{number}"))
    targets = []
    for text, where in lines:
        try:
            targets.append(parse_target(text, transport))
        except ParseError as exc:
            raise ValueError(f"{where}: bad target: {exc.message}") from None
    return targets


def main(kw: dict[str, Any]) -> int:
    if kw["as_json"] and kw["jsonl"]:
        return _usage("--json and --jsonl are exclusive")
    try:
        targets = read_targets(kw["targets"], kw["targets_file"], kw["transport"])
        expect = Expectation.parse(kw["expect"])
    except OSError as exc:
        sys.stderr.write(
            f"siptool options-ping: cannot read {kw['targets_file']}: {exc.strerror}\n"
        )
        return 3
    except ValueError as exc:
        return _usage(str(exc))
    if not targets:
        return _usage("no TARGET given (arguments or -f FILE)")
    settings = settings_from_flags(kw)
    if kw["local_port"] and len(targets) > 1:
        return _usage("--local-port binds one socket: give one target")
    options = PingOptions(
        targets=targets,
        settings=settings,
        count=kw["count"],
        interval=kw["interval"],
        expect=expect,
        resolve_only=kw["resolve_only"],
    )
    from siptool.render.options_ping import PingRenderer

    renderer = PingRenderer(
        mode="nagios"
        if kw["nagios"]
        else "json"
        if kw["as_json"]
        else "jsonl"
        if kw["jsonl"]
        else "text",
        quiet=kw["quiet"],
        color=not kw["no_color"],
        warning_ms=kw["warning"],
        critical_ms=kw["critical"],
        count=kw["count"],
    )
    log = WireLog(settings.verbose)
    results: list[PingResult] = []

    async def go() -> None:
        # The result stays off the main task: asyncio.run's SIGINT bookkeeping reprs that
        # task (and so its result) on the way out, 50 ms for a thousand targets.
        results.append(await run_ping(options, log, renderer.reply))

    asyncio.run(go())
    result = results[0]
    return renderer.finish(result, resolve_only=options.resolve_only)
