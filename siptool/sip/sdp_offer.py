"""The SDP offer of a test call and the reading of its answer (RFC 3264 offer/answer), pure.

``build_offer`` writes one ``m=audio`` section with the codecs asked for (``--codecs``), the
address and RTP port the caller bound; ``read_answer`` turns the answer into what
``invite-test`` reports (codecs, media address) and the warnings a person should see
(nothing in common, formats that were never offered, a rejected or held stream).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from siptool.numbers import decimal_or_none
from siptool.sip.sdp import (
    Connection,
    MediaDescription,
    Origin,
    SessionDescription,
    Timing,
)

__all__ = [
    "KNOWN_CODECS",
    "AnswerSummary",
    "Codec",
    "build_offer",
    "parse_codec_list",
    "read_answer",
]


@dataclass(frozen=True, slots=True)
class Codec:
    """One payload format we can offer: RFC 3551 static types, telephone-event (RFC 4733)."""

    name: str  # as written in a=rtpmap, e.g. "PCMU"
    payload_type: int
    clock_rate: int = 8000
    fmtp: str | None = None

    @property
    def rtpmap(self) -> str:
        return f"{self.name}/{self.clock_rate}"


# RFC 3551 Table 4 static payload types, and RFC 4733 telephone-event on the customary
# dynamic type 101 (any of 96-127 would do; 101 is what most phones use).
KNOWN_CODECS: dict[str, Codec] = {
    "pcmu": Codec("PCMU", 0),
    "gsm": Codec("GSM", 3),
    "pcma": Codec("PCMA", 8),
    "g722": Codec("G722", 9),  # RFC 3551 §4.5.2: the clock rate is 8000 though it samples 16k
    "g729": Codec("G729", 18, fmtp="annexb=no"),
    "telephone-event": Codec("telephone-event", 101, fmtp="0-16"),
}


def parse_codec_list(text: str) -> list[Codec]:
    """``"PCMU,PCMA,telephone-event"`` -> codecs in that order; ``ValueError`` names a bad one."""
    out: list[Codec] = []
    for item in text.split(","):
        name = item.strip().lower()
        if not name:
            continue
        codec = KNOWN_CODECS.get(name)
        if codec is None:
            known = ", ".join(c.name for c in KNOWN_CODECS.values())
            raise ValueError(f"unknown codec {item.strip()!r} (known: {known})")
        if codec not in out:
            out.append(codec)
    if not out:
        raise ValueError("no codec given")
    if all(c.name == "telephone-event" for c in out):
        raise ValueError("telephone-event alone carries no audio: add PCMU or PCMA")
    return out


def _addrtype(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def build_offer(
    address: str,
    port: int,
    codecs: list[Codec],
    *,
    session_id: str | None = None,
    ptime: int = 20,
) -> SessionDescription:
    """The offer (RFC 3264 §5): ``c=`` ``address``, ``m=audio port RTP/AVP <types>``, an
    rtpmap for every type (even static ones: RFC 3264 §5.1 recommends it), sendrecv."""
    sid = session_id or str(secrets.randbelow(10**9) + 1)
    attributes: list[tuple[str, str | None]] = []
    for codec in codecs:
        attributes.append(("rtpmap", f"{codec.payload_type} {codec.rtpmap}"))
        if codec.fmtp is not None:
            attributes.append(("fmtp", f"{codec.payload_type} {codec.fmtp}"))
    attributes.append(("ptime", str(ptime)))
    attributes.append(("sendrecv", None))
    media = MediaDescription(
        media="audio",
        port=port,
        port_count=None,
        proto="RTP/AVP",
        formats=[str(c.payload_type) for c in codecs],
        attributes=attributes,
    )
    return SessionDescription(
        version=0,
        origin=Origin("siptool", sid, sid, "IN", _addrtype(address), address),
        session_name="siptool invite-test",
        connection=Connection("IN", _addrtype(address), address),
        times=[Timing(0, 0)],
        media=[media],
    )


@dataclass
class AnswerSummary:
    """What the answer says about audio, for the ``sdp_answer`` key."""

    codecs: list[str] = field(default_factory=list)  # "PCMU/8000", in the answer's order
    address: str | None = None
    port: int | None = None
    direction: str | None = None
    payload_types: dict[str, int] = field(default_factory=dict)  # "PCMU" -> 0, upper-cased
    warnings: list[str] = field(default_factory=list)

    @property
    def media_address(self) -> str | None:
        """``ip:port`` (IPv6 in brackets), the contract's address form."""
        if self.address is None or self.port is None:
            return None
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"

    @property
    def rejected(self) -> bool:
        return self.port == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "codecs": self.codecs,
            "media_address": self.media_address,
            "direction": self.direction,
        }


def read_answer(answer: SessionDescription, offered: list[Codec]) -> AnswerSummary:
    """The first audio stream of ``answer`` against what was ``offered``."""
    summary = AnswerSummary()
    audio = next((m for m in answer.media if m.media.lower() == "audio"), None)
    if audio is None:
        summary.warnings.append("the SDP answer has no audio stream (m=audio)")
        return summary
    summary.codecs = audio.codecs
    summary.address = audio.connection_address
    summary.port = audio.port
    summary.direction = audio.direction
    for fmt, codec_text in zip(audio.formats, audio.codecs, strict=True):
        # RFC 8866 §5.14: an RTP format is a payload type number; anything else (a
        # superscript digit included) is not one.
        payload_type = decimal_or_none(fmt, 3)
        if payload_type is not None:
            summary.payload_types.setdefault(codec_text.split("/")[0].upper(), payload_type)
    if audio.port == 0:
        # RFC 3264 §6: a zero port in the answer rejects the stream.
        summary.warnings.append("the answer rejected the audio stream (m=audio port 0)")
        return summary
    offered_names = {c.name.upper() for c in offered}
    answered = [c.split("/")[0].upper() for c in audio.codecs]
    audio_offered = {n for n in offered_names if n != "TELEPHONE-EVENT"}
    if not audio_offered.intersection(answered):
        summary.warnings.append(
            "codec mismatch: the answer has "
            + (", ".join(audio.codecs) or "no codec")
            + " but the offer had "
            + ", ".join(c.rtpmap for c in offered)
        )
    else:
        extra = [c for c, n in zip(audio.codecs, answered, strict=True) if n not in offered_names]
        if extra:
            # RFC 3264 §6.1: an answer lists a subset of the offered formats.
            summary.warnings.append(
                "codec mismatch: the answer lists formats never offered: " + ", ".join(extra)
            )
    if summary.address is None:
        summary.warnings.append("the SDP answer has no connection address (c=)")
    elif summary.address in ("0.0.0.0", "::"):
        summary.warnings.append(
            f"the SDP answer puts the call on hold (c={summary.address}, RFC 3264 §8.4)"
        )
    if audio.direction in ("sendonly", "recvonly", "inactive"):
        summary.warnings.append(f"the answer's audio is {audio.direction}, not sendrecv")
    return summary
