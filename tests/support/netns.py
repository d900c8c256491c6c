"""Network namespaces a test makes for itself and takes away whatever happened (their veths,
rules and sockets go with them).  The NAT, media and sniffer testbeds all build on these."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from typing import Self

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


class NamespaceBed:
    """What the testbeds made of namespaces share (tests/nat/testbed.py, media_bed.py): a
    command run inside one, and a build that takes everything away again if it fails."""

    namespaces: list[str]

    def ns(
        self, namespace: str, *argv: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return checked("ip", "netns", "exec", namespace, *argv, check=check)

    def build(self) -> Self:
        try:
            self._build()
        except BaseException:
            self.destroy()
            raise
        return self

    def _build(self) -> None:
        raise NotImplementedError

    def destroy(self) -> None:
        raise NotImplementedError
