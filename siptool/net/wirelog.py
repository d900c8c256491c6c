"""-v output: what went over the wire, each entry stamped with the seconds since the run began.

``WireLog`` (SIP, the messages as text) and ``StunLog`` (STUN, decoded) write through
``TimedLog``, so both logs keep one format: ``[   0.001234] send UDP 192.0.2.1:5060 -> ...``.
"""

from __future__ import annotations

import sys
import time
from typing import IO

from siptool.addr import Address, format_address
from siptool.terminal import terminal_safe

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

    def __call__(
        self, direction: str, transport: str, local: Address, remote: Address, data: bytes
    ) -> None:
        """One message sent (``direction`` "send") or received: the transport, both addresses
        with an arrow the way it went, then the message as ``describe`` shows it (a peer's
        bytes go to the user's terminal: controls shown as \\xNN, siptool.terminal) and an
        empty line."""
        if not self.enabled:
            return
        text = terminal_safe(self.describe(data))
        arrow = "->" if direction == "send" else "<-"
        ours, theirs = format_address(*local), format_address(*remote)
        self.write(f"{direction} {transport.upper()} {ours} {arrow} {theirs}\n{text}\n")

    def describe(self, data: bytes) -> str:
        """A message's bytes as the log shows them."""
        raise NotImplementedError
