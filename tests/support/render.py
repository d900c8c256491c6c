"""Renderers drawn in-process: what a renderer writes on stdout and stderr for one result."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from siptool.render.output import Output, OutputMode


def drawn(
    command: str,
    renderer: Callable[[Output], Any],
    result: Any,
    mode: OutputMode,
    *,
    quiet: bool = False,
) -> tuple[str, str]:
    """(stdout, stderr) of ``renderer(output).finish(result)``, without colours."""
    out, err = io.StringIO(), io.StringIO()
    output = Output(command, mode=mode, quiet=quiet, color=False, out=out, err=err)
    renderer(output).finish(result)
    return out.getvalue(), err.getvalue()
