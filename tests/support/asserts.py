"""Assertions the unit tests share.  Imports pytest: for tests only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from siptool.errors import ParseError


def parse_error(parse: Callable[[Any], object], text: Any, match: str | None = None) -> ParseError:
    """The ParseError that ``parse(text)`` raises; the test fails if it raises none, or one
    whose message does not match the regular expression ``match``."""
    with pytest.raises(ParseError, match=match) as info:
        parse(text)
    return info.value
