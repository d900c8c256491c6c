"""Finding the real third-party peers the tests run against.

On a laptop a missing peer or privilege skips the test with the reason; under CI=true it fails
instead, so a hole in .ci/run can never hide behind a silent skip.  Outside pytest (a
benchmark) it is a plain error: pytest is imported only when a peer is missing.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


class PeerUnavailable(RuntimeError):
    """A peer or privilege is missing and pytest is not there to skip or fail."""


def unavailable(reason: str) -> NoReturn:
    """Skip (laptop) or fail (CI) a test whose peer or privilege is missing."""
    try:
        import pytest
    except ImportError:
        raise PeerUnavailable(reason) from None
    if IN_CI:
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


def require_tool(name: str, package: str | None = None) -> str:
    """Return the path of a peer program, or skip/fail naming the Debian package."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")
    if path is None:
        unavailable(f"{name} not installed (Debian package {package or name})")
    return path


def require_root() -> None:
    """Network namespaces and iptables need root."""
    if os.geteuid() != 0:
        unavailable("needs root (network namespaces, iptables)")
