"""Decimal numbers read from the wire, a capture or a file: ASCII digits only.

Decisions:
- Python's ``str.isdigit()`` accepts superscripts (``²``) that ``int()`` refuses with a bare
  ValueError, and ``int()`` itself accepts every Unicode decimal digit (``٣`` is 3).  The ABNF of
  every protocol siptool reads says ``DIGIT`` = %x30-39 (RFC 5234 Appendix B.1; RFC 3261 §25.1,
  RFC 8866 §9), so anything else is a parse error, never a number and never a traceback.
- Lengths are bounded before ``int()`` runs, so a hostile 100 000-digit "number" costs nothing
  (CPython refuses such conversions with a ValueError of its own since 3.11 anyway).
"""

from __future__ import annotations

from siptool.errors import ParseError


def is_decimal(text: str, max_digits: int = 20) -> bool:
    """True when ``text`` is 1 to ``max_digits`` ASCII digits (leading zeros allowed)."""
    return 0 < len(text) <= max_digits and text.isascii() and text.isdigit()


def decimal_or_none(text: str, max_digits: int = 20) -> int | None:
    """``text`` as a non-negative integer, or None when it is not ASCII digits."""
    return int(text) if is_decimal(text, max_digits) else None


def parse_decimal(text: str, what: str, *, max_digits: int = 20, offset: int | None = None) -> int:
    """``text`` as a non-negative integer; a ParseError naming ``what`` otherwise."""
    if not is_decimal(text, max_digits):
        raise ParseError(f"bad {what} {text[:40]!r}", offset=offset)
    return int(text)


def signed32(delta: int) -> int:
    """The difference of two 32-bit sequence numbers (a TCP sequence, an RTP timestamp) as
    the signed distance RFC 1982 serial-number arithmetic gives: in [-2^31, 2^31)."""
    delta &= 0xFFFFFFFF
    return delta - (1 << 32) if delta >= 1 << 31 else delta
