"""Which codec and clock rate an RTP payload type stands for (RFC 3551 §6, RFC 8866 §6.6).

A stream's payload type means what the call's SDP said (``a=rtpmap``), else what the RFC 3551
static table says.  The clock rate matters for more than the label: interarrival jitter
(RFC 3550 §6.4.1) is measured in timestamp units, so a stream whose clock is unknown has no
jitter.  ``analysis_clock`` gives the rate the way Wireshark's RTP analysis takes it, because
users compare siptool's figures with ``tshark -z rtp,streams``.

Decisions:
- One home for the static table: ``siptool.sip.sdp.STATIC_PAYLOAD_TYPES`` (RFC 3551 Tables 4
  and 5, as the SDP parser needs them); ``STATIC_CODECS`` is that table read as
  ``(encoding, clock rate)``, plus the three types RFC 3551 lists as reserved that Wireshark
  still clocks at 8000 Hz (1 and 2, RFC 1890's "1016" and "G721"; 19, an old comfort noise).
- Static payload types (below 96) are clocked by the static table even when an SDP maps them
  to something else, and dynamic ones by the SDP's rtpmap only: that is Wireshark's rule
  (``ui/tap-rtp-analysis.c``), and a stream tshark gives no jitter gets none here either.
- RFC 4733 telephone-event is clocked 0 (no jitter): its timestamp stays at the start of the
  event while the packets of one digit arrive (RFC 4733 §2.3.5), so arrival and timestamp
  spacing are unrelated.  Comfort noise (13 and 19) is flagged by ``COMFORT_NOISE``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from siptool.numbers import decimal_or_none
from siptool.sip.sdp import STATIC_PAYLOAD_TYPES

if TYPE_CHECKING:
    from siptool.sip.sdp import MediaDescription

__all__ = [
    "COMFORT_NOISE",
    "STATIC_CODECS",
    "TELEPHONE_EVENT",
    "analysis_clock",
    "codec_clock",
    "codec_name",
    "payload_types_of",
]

TELEPHONE_EVENT = "telephone-event"  # RFC 4733 §7.1.1
COMFORT_NOISE = frozenset((13, 19))  # RFC 3389 (13); 19 was CN before RFC 3551 reserved it


def _static_codecs() -> dict[int, tuple[str, int]]:
    table: dict[int, tuple[str, int]] = {}
    for pt, text in STATIC_PAYLOAD_TYPES.items():
        encoding, clock = text.split("/")[:2]
        table[int(pt)] = (encoding, int(clock))
    table.update({1: ("1016", 8000), 2: ("G721", 8000), 19: ("CN", 8000)})
    return dict(sorted(table.items()))


STATIC_CODECS: Mapping[int, tuple[str, int]] = _static_codecs()


def codec_name(pt: int, announced: Mapping[int, tuple[str, int]] | None) -> str | None:
    """The encoding name of payload type ``pt``: the SDP's, else the static table's."""
    if announced is not None:
        mapped = announced.get(pt)
        if mapped is not None:
            return mapped[0]
    static = STATIC_CODECS.get(pt)
    return None if static is None else static[0]


def codec_clock(pt: int, announced: Mapping[int, tuple[str, int]] | None) -> int | None:
    """The clock rate (Hz) of payload type ``pt``: the SDP's, else the static table's."""
    mapped = None if announced is None else announced.get(pt)
    if mapped is None:
        mapped = STATIC_CODECS.get(pt)
    return mapped[1] if mapped is not None and mapped[1] > 0 else None


def analysis_clock(pt: int, announced: Mapping[int, tuple[str, int]] | None) -> int:
    """The clock rate (Hz) jitter is measured with for ``pt``; 0 when there is none."""
    if pt < 96:
        static = STATIC_CODECS.get(pt)
        return 0 if static is None else static[1]
    mapped = None if announced is None else announced.get(pt)
    if mapped is None:
        return 0
    name, clock = mapped
    if name.lower().startswith(TELEPHONE_EVENT):
        return 0
    return max(clock, 0)


def payload_types_of(media: MediaDescription) -> dict[int, tuple[str, int]]:
    """An ``m=`` line's formats as ``{payload type: (encoding, clock rate)}``: its rtpmap, else
    the static table; formats that are neither (or not numbers) are left out."""
    out: dict[int, tuple[str, int]] = {}
    for fmt in media.formats:
        pt = decimal_or_none(fmt)
        if pt is None or pt > 127:
            continue
        mapping = media.rtpmap.get(fmt)
        static = STATIC_CODECS.get(pt)
        if mapping is not None:
            clock = mapping.clock_rate
            if clock is None:
                clock = static[1] if static is not None else 0
            out[pt] = (mapping.encoding, clock)
        elif static is not None:
            out[pt] = static
    return out
