"""-v output: what went over the wire, each entry stamped with the seconds since the run began.

``WireLog`` (SIP, the messages as text) and ``StunLog`` (STUN, decoded) write through
``TimedLog``, so both logs keep one format: ``[   0.001234] send UDP 192.0.2.1:5060 -> ...``.
"""

from __future__ import annotations

import sys
import time
from typing import IO

__all__ = ["TimedLog"]


class TimedLog:
    """Entries on ``out`` (stderr by default) when enabled; nothing at all otherwise."""

    def __init__(self, enabled: bool, out: IO[str] | None = None) -> None:
        self.enabled = enabled
        self.out = out or sys.stderr
        self.start = time.monotonic()

    def write(self, text: str) -> None:
        """One entry: the stamp, ``text`` and a newline, flushed at once (a run may hang)."""
        self.out.write(f"[{time.monotonic() - self.start:9.6f}] {text}\n")
        self.out.flush()

    def message(self, direction: str, transport: str, local: str, remote: str, text: str) -> None:
        """One message sent (``direction`` "send") or received: the transport, both addresses
        with an arrow the way it went, then ``text`` (made safe for a terminal by the caller)
        and an empty line."""
        arrow = "->" if direction == "send" else "<-"
        self.write(f"{direction} {transport.upper()} {local} {arrow} {remote}\n{text}\n")
