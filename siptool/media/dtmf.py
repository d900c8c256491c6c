"""RFC 4733 telephone-events: the DTMF digits a stream carried, with time and duration.

RFC 4733 §2.3: a named event travels as packets of a payload type the SDP maps to
``telephone-event``, each carrying event (8 bits), E (end), R, volume (6 bits) and duration
(16 bits, in timestamp units).  Every packet of one event carries the same RTP timestamp
(the event's start, §2.3.5) with a growing duration; the last three repeat with E set
(§2.5.1.4).  So an event is keyed by its RTP timestamp: the first packet gives its arrival
time, the largest duration its length.

Decisions:

- An event whose end packets were all lost still counts, with the largest duration seen
  (§2.5.2.2 says a receiver ends it at a timeout; a capture has no timeout to wait for).
- Events 0-15 are the DTMF digits of RFC 4733 §3.2 (0-9, *, #, A-D); 16 is flash; any other
  number is kept as its number.
- A payload shorter than the 4-byte event block is counted as bad, never raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DtmfEvent", "TelephoneEvents", "event_name"]

_DIGITS = "0123456789*#ABCD"
_FLASH = 16


def event_name(event: int) -> str:
    if event < len(_DIGITS):
        return _DIGITS[event]
    return "flash" if event == _FLASH else str(event)


@dataclass
class DtmfEvent:
    digit: str
    time: float | None  # arrival of the event's first packet
    duration_ms: float
    volume_dbm0: int  # RFC 4733 §2.3.4: 0 to -63 dBm0
    ended: bool  # an end packet (E bit) was seen

    def to_dict(self) -> dict[str, Any]:
        return {
            "digit": self.digit,
            "time": self.time,
            "duration_ms": round(self.duration_ms, 1),
            "volume_dbm0": self.volume_dbm0,
            "ended": self.ended,
        }


class TelephoneEvents:
    """The events of one stream, fed one RTP payload at a time."""

    __slots__ = ("_by_timestamp", "bad", "clock_rate")

    def __init__(self, clock_rate: int = 8000) -> None:
        self.clock_rate = clock_rate or 8000
        self._by_timestamp: dict[int, list[Any]] = {}  # timestamp -> [event, time, dur, vol, E]
        self.bad = 0

    def add(self, buf: bytes, p: int, end: int, timestamp: int, time: float | None) -> None:
        """One packet's payload ``buf[p:end]`` with its RTP ``timestamp``."""
        if end - p < 4:
            self.bad += 1
            return
        event = buf[p]
        flags = buf[p + 1]
        duration = (buf[p + 2] << 8) | buf[p + 3]
        known = self._by_timestamp.get(timestamp)
        if known is None or known[0] != event:
            self._by_timestamp[timestamp] = [
                event,
                time,
                duration,
                flags & 0x3F,
                bool(flags & 0x80),
            ]
            return
        if duration > known[2]:
            known[2] = duration
        if flags & 0x80:
            known[4] = True

    def events(self) -> list[DtmfEvent]:
        rate = self.clock_rate
        return [
            DtmfEvent(event_name(e), t, d * 1000.0 / rate, -v, ended)
            for e, t, d, v, ended in self._by_timestamp.values()
        ]
