"""IPv4 and IPv6 fragment reassembly (RFC 791 §3.2, RFC 8200 §4.5), bounded in memory.

Big SIP INVITEs over UDP are fragmented on real networks; tshark reassembles them, so must we.
Fragments are keyed by the caller (source, destination, identification and, for IPv4, the
protocol).  Overlaps keep the bytes that arrived first.  A datagram still incomplete after
``timeout`` seconds of capture time (Linux's ipfrag_time is 30 s) or pushed out by the
``max_datagrams`` bound is given up; the caller reports what was lost at the end.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

__all__ = ["Datagram", "FragmentReassembler"]

# RFC 791: at most 65535 bytes of datagram; IPv6 jumbograms are never fragmented.
MAX_DATAGRAM = 65535


class Datagram:
    """Fragments of one datagram collected so far."""

    __slots__ = (
        "covered",
        "first_frame",
        "first_offset",
        "first_time",
        "have",
        "head",
        "pieces",
        "proto",
        "total",
    )

    def __init__(self, frame: int, offset: int, time: float | None) -> None:
        # Disjoint pieces: of each fragment only the bytes no earlier fragment brought are
        # kept, so that duplicates cost nothing and memory stays within one datagram.
        self.pieces: list[tuple[int, bytes]] = []
        self.covered: list[tuple[int, int]] = []  # sorted, disjoint, merged [start, end)
        self.total = -1  # known once the last fragment (MF clear) arrives
        self.have = 0  # bytes covered
        self.proto = -1  # known once the fragment at offset 0 arrives
        self.head = b""  # the fragment at offset 0, for the caller's report of a loss
        self.first_frame = frame
        self.first_offset = offset
        self.first_time = time

    def add(self, offset: int, data: bytes) -> None:
        """Keep the bytes of ``data`` (at ``offset``) that no earlier fragment covered."""
        end = offset + len(data)
        if end == offset:
            return
        covered = self.covered
        # The intervals that touch or overlap [offset, end) are covered[lo:hi].
        lo = bisect_left(covered, offset, key=lambda iv: iv[1])
        hi = bisect_right(covered, end, key=lambda iv: iv[0])
        pos = offset
        for start, stop in covered[lo:hi]:
            if start > pos:
                self.pieces.append((pos, data[pos - offset : start - offset]))
                self.have += start - pos
            pos = max(pos, stop)
        if pos < end:
            self.pieces.append((pos, data[pos - offset :]))
            self.have += end - pos
        if lo < hi:
            offset = min(offset, covered[lo][0])
            end = max(end, covered[hi - 1][1])
        covered[lo:hi] = [(offset, end)]

    def complete(self) -> bool:
        """Every byte up to ``total`` is there (``total`` must be known)."""
        covered = self.covered
        if not covered:
            return self.total == 0
        return covered[0][0] == 0 and covered[0][1] >= self.total

    def assemble(self) -> bytes:
        out = bytearray(self.total)
        for start, data in self.pieces:
            if start < self.total:
                chunk = data[: self.total - start]
                out[start : start + len(chunk)] = chunk
        return bytes(out)


class FragmentReassembler:
    """Collects fragments; ``add`` returns the reassembled payload once it is complete."""

    __slots__ = ("_max", "_pending", "_timeout", "lost")

    def __init__(self, *, max_datagrams: int = 1024, timeout: float = 30.0) -> None:
        self._pending: dict[bytes, Datagram] = {}
        self._max = max_datagrams
        self._timeout = timeout
        self.lost: list[Datagram] = []

    def add(
        self,
        key: bytes,
        offset: int,
        more: bool,
        data: bytes,
        proto: int,
        frame: int,
        record_offset: int,
        time: float | None,
    ) -> tuple[bytes, int, Datagram] | None:
        """Add one fragment; ``(payload, protocol, datagram)`` when it completes one.

        ``offset`` is in bytes; ``proto`` is the protocol of the payload as given by this
        fragment (IPv4: every fragment; IPv6: meaningful only at offset 0).
        """
        pending = self._pending
        dgram = pending.get(key)
        if dgram is not None and (
            time is not None
            and dgram.first_time is not None
            and time - dgram.first_time > self._timeout
        ):
            self.lost.append(pending.pop(key))
            dgram = None
        if dgram is None:
            if len(pending) >= self._max:
                oldest = next(iter(pending))
                self.lost.append(pending.pop(oldest))
            dgram = pending[key] = Datagram(frame, record_offset, time)
        end = offset + len(data)
        if end > MAX_DATAGRAM:
            return None
        if offset == 0:
            dgram.proto = proto
            dgram.head = data
            dgram.first_frame = frame
            dgram.first_offset = record_offset
        if not more:
            dgram.total = end
        dgram.add(offset, data)
        if dgram.total < 0 or dgram.proto < 0 or not dgram.complete():
            return None
        payload = dgram.assemble()
        del pending[key]
        return payload, dgram.proto, dgram

    def drain(self) -> list[Datagram]:
        """Every datagram given up or still incomplete; clears the reassembler."""
        lost = self.lost + list(self._pending.values())
        self.lost = []
        self._pending.clear()
        return lost
