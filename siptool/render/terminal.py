"""Moved to :mod:`siptool.terminal` (net/'s wire log needs it too); kept for one session."""

from siptool.terminal import one_line, terminal_safe

__all__ = ["one_line", "terminal_safe"]
