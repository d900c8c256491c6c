"""Counting the calls into one of siptool's internals: the linear-work tests (issue 8) bound
how often a scan, a check or an object is made, not only how long it takes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _one(*args: Any, **kwargs: Any) -> Any:
    return 1


def record_calls(
    monkeypatch: Any, owner: object, name: str, what: Callable[..., Any] = _one
) -> list[Any]:
    """Wrap ``owner.name`` (for the test) so that each call first records ``what(*args,
    **kwargs)`` (1 unless told), then runs the real one; the records, in order."""
    records: list[Any] = []
    real = getattr(owner, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        records.append(what(*args, **kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, spy)
    return records
