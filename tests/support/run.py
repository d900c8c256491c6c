"""The one way the tests run siptool: ``python -m siptool ARGS`` in a subprocess, as a user's
script would, so that a test sees exactly what stdout, stderr and the exit code carry.

Every run has its stdin on /dev/null (no prompt can wait for a terminal), a timeout, its wall
time measured (``Run.seconds``: some bounds are the behaviour under test) and fails on a
traceback unless told not to.  ``env`` is laid over the inherited environment; a value of None
removes the variable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

from tests.support.paths import ROOT
from tests.support.responders import idle_udp_socket

SIPTOOL = (sys.executable, "-m", "siptool")
# Every JSON document has these (shared/cli-contract.md, "JSON").
ENVELOPE = ("command", "ok", "exit_code", "siptool_version", "errors")

Env = Mapping[str, str | None]
# The renderers write to a stream that refuses what a UTF-8 terminal cannot take.
STRICT_UTF8: Env = {"PYTHONIOENCODING": "utf-8:strict"}


class Run(subprocess.CompletedProcess[str]):
    """A finished siptool process, with its wall time and its output read as JSON."""

    seconds: float = 0.0

    @property
    def doc(self) -> dict[str, Any]:
        """stdout as one JSON document (``--json``)."""
        try:
            doc: dict[str, Any] = json.loads(self.stdout)
        except json.JSONDecodeError:
            raise AssertionError(f"no JSON on stdout: {self.stdout!r}\n{self.stderr}") from None
        return doc

    @property
    def lines(self) -> list[dict[str, Any]]:
        """stdout as JSON Lines (``--jsonl``): one object a line, the summary last."""
        return [json.loads(line) for line in self.stdout.splitlines()]


def environment(env: Env | None = None) -> dict[str, str]:
    merged = dict(os.environ)
    for name, value in (env or {}).items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def siptool(
    *args: str,
    env: Env | None = None,
    timeout: float = 60,
    input: bytes | None = None,
    traceback_ok: bool = False,
) -> Run:
    """Run ``siptool ARGS`` from the repository root; ``input`` is fed to its stdin."""
    started = time.monotonic()
    done = subprocess.run(
        [*SIPTOOL, *args],
        input=input.decode("latin-1") if input is not None else None,
        stdin=subprocess.DEVNULL if input is None else None,
        capture_output=True,
        encoding="utf-8",
        timeout=timeout,
        env=environment(env),
        cwd=ROOT,
    )
    result = Run(done.args, done.returncode, done.stdout, done.stderr)
    result.seconds = time.monotonic() - started
    if not traceback_ok:
        assert "Traceback" not in result.stderr, result.stderr
    return result


def spawn(*args: str, env: Env | None = None) -> subprocess.Popen[str]:
    """Start ``siptool ARGS`` without waiting (a test that interrupts it): stdin on
    /dev/null, stdout and stderr piped, from the repository root."""
    return subprocess.Popen(
        [*SIPTOOL, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=environment(env),
    )


def siptool_json(command: str, *args: str, **kw: Any) -> tuple[int, dict[str, Any]]:
    """``siptool COMMAND --json ARGS``: the exit code and the JSON document."""
    result = siptool(command, "--json", *args, **kw)
    return result.returncode, result.doc


def siptool_on_a_busy_port(command: str, *args: str, **kw: Any) -> Run:
    """``siptool COMMAND ARGS`` told to send from 127.0.0.1 at a UDP port already in use."""
    with idle_udp_socket() as busy:
        local = ("--local-address", "127.0.0.1", "--local-port", str(busy.getsockname()[1]))
        return siptool(command, *local, *args, **kw)


def checked(
    *argv: str, check: bool = True, timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    """Run a testbed command (ip, iptables, tc ...); RuntimeError with its stderr on failure."""
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr}")
    return result
