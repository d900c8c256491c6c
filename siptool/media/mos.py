"""A listening-quality estimate per RTP stream: the ITU-T G.107 E-model, simplified.

It is an estimate, labelled so everywhere it is shown: the E-model predicts what an average
listener would rate a connection from its parameters; siptool knows only what a capture
shows.  The formula (README, "MOS estimate"):

    R   = 93.2 - Id - Ie_eff                         (G.107 §7: R0 - Is with default values)
    Id  = 0.024 d + 0.11 (d - 177.3) H(d - 177.3)     (delay impairment; Cole & Rosenbluth's
                                                      fit of G.107's Idd for one-way delay d)
    Ie_eff = Ie + (95 - Ie) Ppl / (Ppl + Bpl)        (G.107 §7.4 with BurstR = 1, random loss)
    MOS = 1 + 0.035 R + 7e-6 R (R - 60) (100 - R)    (G.107 Annex B; 1 below R = 0, 4.5 above 100)

Assumptions (they are what makes it "simplified"):

- d, the one-way mouth-to-ear delay, is the network delay plus packetisation plus the jitter
  buffer.  The network delay is half the RTCP round-trip time when the capture has one (RFC
  3550 §6.4.1, LSR/DLSR), else 0: a capture on loopback or at one end does not see it.
  Packetisation is one packet time (``ptime``, 20 ms unless the SDP says).  The jitter buffer
  is assumed to hold twice the largest interarrival jitter seen, and at least 20 ms.
- Ppl is the stream's loss in percent (lost over expected); losses count as random (BurstR 1).
- Ie and Bpl per codec are ITU-T G.113 Appendix I's values (G.711 with packet-loss
  concealment, Bpl 25.1); a codec not in the table is taken as G.711 and said so.
- Echo, noise and the loudness ratings are G.107's defaults (that is what 93.2 is).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CODEC_IMPAIRMENTS", "MosEstimate", "estimate"]

# G.113 Appendix I (11/2007), Tables I.1 and I.3: equipment impairment Ie and packet-loss
# robustness Bpl.  G.711 is taken with its Appendix I concealment (Bpl 25.1; 4.3 without).
CODEC_IMPAIRMENTS: dict[str, tuple[float, float]] = {
    "pcmu": (0.0, 25.1),
    "pcma": (0.0, 25.1),
    "g722": (0.0, 25.1),  # wideband: rated here on the narrowband scale, as G.711
    "g729": (11.0, 19.0),
    "g723": (15.0, 16.1),
    "gsm": (20.0, 10.0),  # GSM-FR
    "ilbc": (11.0, 32.0),
    "g726": (7.0, 25.1),
    "opus": (0.0, 30.0),  # not in G.113: a codec at least as good as G.711 with concealment
    "speex": (11.0, 19.0),
}
_R0 = 93.2
_MIN_JITTER_BUFFER_MS = 20.0


@dataclass(frozen=True)
class MosEstimate:
    r_factor: float
    mos: float
    delay_ms: float  # the assumed one-way delay d
    codec_assumed: str | None  # the codec whose Ie/Bpl was used when the stream's is unknown

    def to_dict(self) -> dict[str, object]:
        return {
            "estimate": True,
            "r_factor": round(self.r_factor, 1),
            "mos": round(self.mos, 2),
            "delay_ms": round(self.delay_ms, 1),
            "codec_assumed": self.codec_assumed,
        }


def mos_from_r(r: float) -> float:
    """G.107 Annex B: the mean opinion score (conversational, estimated) for a rating R."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r)


def estimate(
    codec: str | None,
    loss_ratio: float,
    jitter_max_ms: float,
    rtt_ms: float | None = None,
    ptime_ms: float | None = None,
) -> MosEstimate:
    """The E-model estimate for one stream (see the module docstring for every assumption)."""
    name = (codec or "").split("/")[0].lower()
    assumed = None
    if name not in CODEC_IMPAIRMENTS:
        assumed = "PCMU"
        name = "pcmu"
    ie, bpl = CODEC_IMPAIRMENTS[name]
    ppl = max(0.0, min(100.0, loss_ratio * 100.0))
    ie_eff = ie + (95.0 - ie) * ppl / (ppl + bpl)
    buffer = max(_MIN_JITTER_BUFFER_MS, 2.0 * max(0.0, jitter_max_ms))
    d = (rtt_ms / 2.0 if rtt_ms and rtt_ms > 0 else 0.0) + (ptime_ms or 20.0) + buffer
    idd = 0.024 * d + (0.11 * (d - 177.3) if d > 177.3 else 0.0)
    r = _R0 - idd - ie_eff
    return MosEstimate(r, mos_from_r(r), d, assumed)
