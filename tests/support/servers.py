"""Starting real peers for a test: free ports, a process handle, waiting until it answers.

Every server is started by the test on loopback, waited for by a real request (not a sleep),
and stopped by its PID when the test ends, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def free_port(kind: str = "udp", host: str = "127.0.0.1", *, both: bool = False) -> int:
    """A port free for ``kind`` (udp/tcp) on ``host``; with ``both``, free for UDP and TCP."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        sock_type = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
        with socket.socket(family, sock_type) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if not both:
            return port
        other = socket.SOCK_STREAM if kind == "udp" else socket.SOCK_DGRAM
        try:
            with socket.socket(family, other) as s:
                s.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


class Server:
    """A peer process started by a test; ``stop()`` kills it by PID (and its process group)."""

    def __init__(self, argv: Sequence[str], *, log: Path, cwd: Path | None = None) -> None:
        self.argv = list(argv)
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            start_new_session=True,
        )
        self.pid = self.process.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def wait_until(self, ready: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
        """Poll ``ready`` until it is true; if it never is (or the process exits first), stop
        the server and fail with its log."""
        try:
            self._poll(ready, timeout, what)
        except BaseException:
            self.stop()
            raise

    def _poll(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.argv[0]} exited with {self.process.returncode} before it was ready"
                    f" {what}\n{self.log()}"
                )
            try:
                if ready():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.argv[0]} not ready after {timeout} s {what}\n{self.log()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        # Children (Kamailio's workers) can outlive their parent or hang in SIGTERM handling:
        # the whole process group goes, so no test leaves a peer holding a port.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self._log.close()


def http_ok(url: str) -> bool:
    """``GET url`` answers 200 within a second (an HTTP server's readiness check)."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False
