"""Text a peer or a capture controls, made safe for a terminal.

Decisions:
- Every string that came from the network or a file (reason phrases, Server/User-Agent,
  Contact, SOFTWARE, ERROR-CODE reasons, Warning, display names, whole messages under ``-v``)
  goes through :func:`terminal_safe` before a text or Nagios renderer prints it: a hostile
  peer must not clear the screen (``ESC[2J``), retitle the terminal (``ESC]0;…BEL``) or move
  the cursor of the person reading.  JSON keeps the exact string (``json.dumps`` escapes
  controls itself).
- C0 controls but TAB and LF, DEL and the C1 controls are shown as ``\\xNN``; undecodable bytes
  (lone surrogates left by ``surrogateescape``) become U+FFFD so a strict UTF-8 stdout does
  not refuse them.
"""

from __future__ import annotations

from siptool.sip.message import clean_text

_CONTROLS = {
    code: f"\\x{code:02x}"
    for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))
    if code not in (0x09, 0x0A)
}

# One-line contexts (a table cell, a Nagios status line) show LF as \x0a too: a peer must not
# forge a second Nagios line or a fake table row.
_CONTROLS_ONE_LINE = {**_CONTROLS, 0x0A: "\\x0a"}


def terminal_safe(text: str) -> str:
    """``text`` with control characters shown as ``\\xNN`` (TAB and LF kept)."""
    if text.isprintable():
        return text
    return clean_text(text).translate(_CONTROLS)


def one_line(text: str) -> str:
    """``text`` safe for a single output line: every control, LF included, shown as ``\\xNN``."""
    if text.isprintable():
        return text
    return clean_text(text).translate(_CONTROLS_ONE_LINE)


def markup_one_line(text: str) -> str:
    """``one_line(text)`` escaped for rich markup too: peer text in a rich table or line."""
    from rich.markup import escape  # only renderers that already use rich call this

    return escape(one_line(text))
