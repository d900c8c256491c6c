"""Network namespaces a test makes for itself and takes away whatever happened (their veths,
rules and sockets go with them).  The NAT, media and sniffer testbeds all build on these."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tests.support.run import checked


def add_namespace(name: str, made: list[str]) -> None:
    """A new namespace ``name`` with its loopback up, recorded in ``made`` as soon as it
    exists, so that a failure after that still deletes it."""
    checked("ip", "netns", "add", name)
    made.append(name)
    checked("ip", "-n", name, "link", "set", "lo", "up")


def delete_namespaces(made: list[str]) -> None:
    """Delete every namespace in ``made``, the last made first; one already gone is fine."""
    while made:
        checked("ip", "netns", "del", made.pop(), check=False)


@contextlib.contextmanager
def namespaces(*names: str) -> Iterator[list[str]]:
    """The namespaces ``names``, made for the block and deleted after it."""
    made: list[str] = []
    try:
        for name in names:
            add_namespace(name, made)
        yield list(names)
    finally:
        delete_namespaces(made)
