"""The JSON envelope every document carries (shared/cli-contract.md)."""

from __future__ import annotations

import json
from typing import Any

from siptool import __version__


def envelope(command: str, exit_code: int, errors: list[dict[str, str]]) -> dict[str, Any]:
    """``command``, ``ok``, ``exit_code``, ``siptool_version``, ``errors``: in every document."""
    return {
        "command": command,
        "ok": exit_code == 0,
        "exit_code": exit_code,
        "siptool_version": __version__,
        "errors": errors,
    }


def dump(document: Any) -> str:
    """One line of JSON; non-ASCII kept as is (stdout is UTF-8 for scripts)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def dump_pretty(document: Any, *, tty: bool = True) -> str:
    """Indented for a person at a terminal; compact (and C-accelerated) into a pipe, where a
    thousand-target fleet report would otherwise spend more time indenting than probing."""
    if not tty:
        return dump(document)
    return json.dumps(document, ensure_ascii=False, indent=2)
