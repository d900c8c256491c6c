"""The bytes of a decode input, held so that memory does not grow with the input's size.

A regular file is memory-mapped, not read: the capture readers walk one buffer by offsets
(``capture.pcap``), and a mapping gives them that buffer without a copy of the file.  Pages of
a file mapping still count as the process's resident memory once touched, so the readers call
``release(offset)`` as they go and the pages already walked are dropped from the mapping
(``MADV_DONTNEED``; the kernel keeps them in its page cache, and a later access, which the
readers do not make, would fault them back in).  Peak memory is then a window of the file,
whatever its size.

Decisions:

- Standard input, and anything else that cannot be mapped (a pipe, an empty file, a file
  system without mmap), is read whole, as before: a capture piped in is bounded by memory.
- Every slice the readers keep (a message, a TCP segment, an IP fragment) is a copy
  (``bytes`` slicing of a mapping copies), so no page is needed again after its release.
"""

from __future__ import annotations

import mmap
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["InputSource", "open_source"]

# Drop the walked pages once this much lies behind the readers: a few madvise calls per
# hundred megabytes, and a window small beside the 100 MB a capture of any size may use.
_RELEASE_STEP = 16 << 20


@dataclass
class InputSource:
    """``data`` (bytes or a read-only mapping) and the name to show for it."""

    name: str
    data: bytes | mmap.mmap
    _released: int = 0

    def release(self, offset: int) -> None:
        """The readers are past ``offset``: pages wholly before it may go."""
        data = self.data
        if not isinstance(data, mmap.mmap) or offset - self._released < _RELEASE_STEP:
            return
        end = offset - offset % mmap.PAGESIZE
        if end > self._released:
            data.madvise(mmap.MADV_DONTNEED, self._released, end - self._released)
            self._released = end


@contextmanager
def open_source(source: str) -> Iterator[InputSource]:
    """The input named ``source`` (``-`` is standard input); OSError when it cannot be read."""
    if source == "-":
        yield InputSource("<stdin>", sys.stdin.buffer.read())
        return
    with open(source, "rb") as handle:
        mapped = _mapped(handle.fileno())
        if mapped is None:
            yield InputSource(source, handle.read())
            return
        with mapped:
            yield InputSource(source, mapped)


def _mapped(fd: int) -> mmap.mmap | None:
    try:
        if os.fstat(fd).st_size == 0:
            return None  # an empty file cannot be mapped; a FIFO or /dev/stdin reports 0 too
        mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None
    if hasattr(mapped, "madvise"):
        mapped.madvise(mmap.MADV_SEQUENTIAL)
    return mapped
