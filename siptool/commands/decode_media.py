"""The media half of `siptool decode --rtp`: which RTP streams belong to which call, and per
call a verdict on its audio, with the reasons ("why is my audio one-way?").

The SIP side is read as the messages stream past (``CallMedia.sdp``): each SDP offer or answer
(RFC 3264) says, per m= line, where its sender wants to receive media (``c=`` address and
port), which payload types it accepts, and its direction (RFC 3264 §5.1: sendrecv, sendonly,
recvonly, inactive).  The RTP side is the media tracker's streams (siptool.media), matched
to the calls at the end by address: a stream toward an address a call announced belongs to
that call.

Decisions:

- A call has two sides: the one that sent the INVITE (the caller) and the other.  A side's
  announcements accumulate over the call (re-INVITE, UPDATE, early media in a 183 all add
  addresses), and its latest SDP gives the direction in force at the end.
- Media "from a side" is a stream toward the other side's announced address.  A stream that
  comes from a side's announced address but goes somewhere the other side never announced is
  named (sent to an address the SDP did not announce): the usual result of a proxy or SBC
  that rewrote the SDP one way only.
- The verdict: ``none`` when nothing flowed; ``held`` when the SDP in force says that a side
  does not send (sendonly / recvonly / inactive, RFC 3264 §8.4) and the expected directions
  flowed; ``both-ways`` when each side sent; ``one-way`` when one of the expected directions is
  missing.  Reasons that explain a verdict come first.
- The NAT hints (RFC 3261 has none; they are what every SBC vendor's troubleshooting guide
  checks): an SDP address in private space (RFC 1918, RFC 6598) while the message that carried
  it came from a public address; RTP that arrives from a source other than the address its
  sender announced (NAT, or an SBC latching onto the source, RFC 7362).
- Payload types: a stream whose payload type is in neither side's final m= line formats (and
  is not telephone-event or comfort noise) is named: "codec not in the answer".
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from siptool.addr import format_address, is_private_address, is_public_address, split_address
from siptool.capture.layers import endpoint
from siptool.errors import ParseError
from siptool.media.codecs import payload_types_of
from siptool.sip.message import SipMessage

__all__ = ["Announcement", "CallMedia", "MediaStream", "MediaVerdict"]

# RFC 3264 §5.1: who may send on a stream, by the direction attribute of the SDP that says it.
_SENDS = frozenset({"sendrecv", "sendonly"})
_RECEIVES = frozenset({"sendrecv", "recvonly"})
# Payload names that are not the call's codec: events and comfort noise ride beside it.
_SIDE_CODECS = frozenset({"telephone-event", "cn"})


class MediaStream(Protocol):
    """What the verdict reads of a media tracker's stream (siptool.media.rtp.RtpStream)."""

    @property
    def src(self) -> str: ...

    @property
    def dst(self) -> str: ...

    @property
    def packets(self) -> int: ...

    @property
    def payload_type(self) -> int | None: ...

    @property
    def last_time(self) -> float | None: ...


@dataclass(frozen=True)
class Announcement:
    """One m= line of one SDP: where its sender wants media, what it accepts."""

    call_id: str
    caller: bool  # sent by the side that sent the INVITE
    address: str  # the c= address
    port: int
    media: str  # "audio", "video", ...
    direction: str
    payload_types: dict[int, tuple[str, int]]  # number -> (encoding, clock rate)
    signalled_from: str | None  # the source "ip:port" of the message that carried it
    time: float | None = None  # the capture time of that message

    @property
    def endpoint(self) -> str:
        """As the capture names the stream's ends (``capture.layers.endpoint``), so that an
        SDP's ``2001:DB8:0::1`` meets the stream's ``[2001:db8::1]``."""
        try:
            ip = ipaddress.ip_address(self.address)
        except ValueError:
            return format_address(self.address, self.port)  # a name in c=: compared as written
        return endpoint(ip.packed, self.port)


def _host(where: str) -> str:
    return split_address(where)[0]


@dataclass
class MediaVerdict:
    """The verdict of one call's media (shared/cli-contract.md, decode ``media``)."""

    call_id: str
    verdict: str  # both-ways, one-way, none, held
    reasons: list[str] = field(default_factory=list)
    streams: list[str] = field(default_factory=list)  # "src -> dst" of the call's streams
    dtmf: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "verdict": self.verdict,
            "reasons": self.reasons,
            "streams": self.streams,
            "dtmf": self.dtmf,
        }


def announcements(
    msg: SipMessage, src: str | None, caller: bool, time: float | None = None
) -> list[Announcement]:
    """The m= lines of ``msg``'s SDP (none when it has no SDP or its SDP does not parse:
    decode reports that on its own)."""
    try:
        sdp = msg.sdp
    except ParseError:
        return []
    if sdp is None or msg.call_id is None:
        return []
    out = []
    for media in sdp.media:
        address = media.connection_address
        if address is None or media.port == 0:
            continue  # RFC 3264 §6: port 0 rejects (or removes) the stream
        types = payload_types_of(media)
        out.append(
            Announcement(
                msg.call_id,
                caller,
                address,
                media.port,
                media.media,
                media.direction,
                types,
                src,
                time,
            )
        )
    return out


class CallMedia:
    """Every call's SDP announcements, in order of each call's first one."""

    def __init__(self) -> None:
        self.calls: dict[str, list[Announcement]] = {}
        self._callers: dict[str, str | None] = {}  # call_id -> the first INVITE's From tag

    def sdp(
        self, msg: SipMessage, src: str | None, time: float | None = None
    ) -> list[Announcement]:
        """Record what ``msg`` (sent from ``src`` at ``time``) announces; the new ones."""
        call_id = msg.call_id
        if call_id is None:
            return []
        tag = _from_tag(msg)
        if msg.method == "INVITE" and call_id not in self._callers:
            self._callers[call_id] = tag
        found = announcements(msg, src, self._from_caller(msg, tag), time)
        if found:
            self.calls.setdefault(call_id, []).extend(found)
        return found

    def _from_caller(self, msg: SipMessage, tag: str | None) -> bool:
        """Whether ``msg``'s SDP is the caller's.  Not by address: a proxy forwards the offer
        and the answer from its own.  By dialog: a request whose From tag is the caller's
        comes from the caller (RFC 3261 §12.2.1.1: each side keeps its own tag in From), and
        a response carries its request's From, so its SDP is the other side's."""
        caller_tag = self._callers.get(msg.call_id or "")
        if caller_tag is None or tag is None:
            # No tags (RFC 2543) or no INVITE seen: a request from the caller, a response
            # from the callee, which holds for every call without a callee re-INVITE.
            return msg.method is not None
        sent_by_caller = tag == caller_tag
        return sent_by_caller if msg.method is not None else not sent_by_caller

    def verdicts(self, streams: Iterable[MediaStream]) -> list[MediaVerdict]:
        """One verdict per call that announced media."""
        by_end: dict[str, list[tuple[int, MediaStream]]] = {}
        for index, s in enumerate(streams):
            by_end.setdefault(s.dst, []).append((index, s))
            if s.src != s.dst:
                by_end.setdefault(s.src, []).append((index, s))
        out = []
        for call_id, said in self.calls.items():
            mine: dict[int, MediaStream] = {}  # the streams to or from its addresses, each once
            for end in {a.endpoint for a in said}:
                mine.update(by_end.get(end, ()))
            ordered = [mine[index] for index in sorted(mine)]  # in the order they came
            out.append(_verdict(call_id, said, ordered))
        return out


def _from_tag(msg: SipMessage) -> str | None:
    try:
        sender = msg.from_
    except ParseError:
        return None
    return None if sender is None else sender.tag


def _latest(said: list[Announcement], caller: bool) -> dict[str, Announcement]:
    """Per media kind, the side's SDP in force at the end."""
    out: dict[str, Announcement] = {}
    for a in said:
        if a.caller is caller:
            out[a.media] = a
    return out


def _verdict(call_id: str, said: list[Announcement], streams: list[MediaStream]) -> MediaVerdict:
    sides = {True: "caller", False: "callee"}
    ends = {side: {a.endpoint for a in said if a.caller is side} for side in (True, False)}
    verdict = MediaVerdict(call_id, "none")
    reasons: list[str] = []
    sent: dict[bool, list[MediaStream]] = {True: [], False: []}
    for s in streams:
        for side in (True, False):
            if s.dst in ends[not side] and s.packets:
                sent[side].append(s)
                verdict.streams.append(f"{s.src} -> {s.dst}")
            elif s.src in ends[side] and s.dst not in ends[not side] and s.packets:
                verdict.streams.append(f"{s.src} -> {s.dst}")
                reasons.append(
                    f"the {sides[side]} sends RTP from {s.src} to {s.dst}, an address the "
                    f"{sides[not side]}'s SDP never announced ({_names(ends[not side])})"
                )
    latest = {side: _latest(said, side) for side in (True, False)}
    expected = {side: _expects(latest[side], latest[not side]) for side in (True, False)}
    held = [side for side in (True, False) if not expected[side]]
    missing = [side for side in (True, False) if expected[side] and not sent[side]]
    for side in missing:
        where = (
            f"to the {sides[not side]}'s announced {_names(ends[not side])}"
            if ends[not side]
            else f"(no SDP from the {sides[not side]} was seen)"
        )
        reasons.insert(0, f"the {sides[side]} never sent RTP {where}")
    for side in held:
        mine, theirs = _main(latest[side]), _main(latest[not side])
        why = mine.direction if mine is not None and mine.direction not in _SENDS else None
        if why is None and theirs is not None:
            why = f"the {sides[not side]}'s {theirs.direction}"
        reasons.append(f"the {sides[side]} is not to send ({why}): the call is on hold")
        if _sent_after(sent[side], mine, theirs):
            reasons.append(f"hold not respected: the {sides[side]} still sends RTP")
    if not sent[True] and not sent[False]:
        verdict.verdict = "held" if held and not missing else "none"
    elif held and not missing:
        verdict.verdict = "held"
    elif missing:
        verdict.verdict = "one-way"
    else:
        verdict.verdict = "both-ways"
    reasons += _nat_reasons(said, sent)
    reasons += _codec_reasons(latest, sent, sides)
    verdict.reasons = reasons
    return verdict


# A held side may take a moment to stop once the re-INVITE or its answer arrives.
_HOLD_GRACE = 0.25


def _sent_after(
    streams: list[MediaStream], mine: Announcement | None, theirs: Announcement | None
) -> bool:
    """Whether the side sent RTP after the SDP that put it on hold (both SDPs are in force
    from the later one); without times, any RTP it sent counts."""
    times = [a.time for a in (mine, theirs) if a is not None and a.time is not None]
    if not times:
        return bool(streams)
    since = max(times) + _HOLD_GRACE
    return any(s.last_time is None or s.last_time > since for s in streams)


def _main(latest: dict[str, Announcement]) -> Announcement | None:
    """A side's m= line the verdict judges: its audio, else its first."""
    return latest.get("audio") or next(iter(latest.values()), None)


def _expects(mine: dict[str, Announcement], theirs: dict[str, Announcement]) -> bool:
    """Whether a side is to send on its audio (else its first) m= line (RFC 3264 §5.1)."""
    a, b = _main(mine), _main(theirs)
    if a is None or b is None:
        return a is not None or b is not None  # one side's SDP seen: assume it both ways
    return a.direction in _SENDS and b.direction in _RECEIVES


def _names(endpoints: set[str]) -> str:
    return ", ".join(sorted(endpoints))


def _nat_reasons(said: list[Announcement], sent: dict[bool, list[MediaStream]]) -> list[str]:
    sides = {True: "caller", False: "callee"}
    out: list[str] = []
    seen: set[tuple[bool, str]] = set()
    for a in said:
        key = (a.caller, a.address)
        if key in seen:
            continue
        seen.add(key)
        signalled = a.signalled_from
        if is_private_address(a.address) and signalled and is_public_address(_host(signalled)):
            out.append(
                f"the {sides[a.caller]}'s SDP announces private {a.address} while its "
                f"signalling came from public {_host(signalled)}: RTP sent there cannot "
                "arrive without an SBC or NAT fix-up"
            )
    for side in (True, False):
        announced = {a.endpoint for a in said if a.caller is side}
        for s in sent[side]:
            if announced and s.src not in announced:
                out.append(
                    f"the {sides[side]}'s RTP comes from {s.src}, not from its announced "
                    f"{_names(announced)}: a NAT or a latching SBC rewrote the source"
                )
    return out


def _codec_reasons(
    latest: dict[bool, dict[str, Announcement]],
    sent: dict[bool, list[MediaStream]],
    sides: dict[bool, str],
) -> list[str]:
    out: list[str] = []
    for side in (True, False):
        allowed: dict[int, tuple[str, int]] = {}
        for a in (*latest[side].values(), *latest[not side].values()):
            allowed.update(a.payload_types)
        answer_types = set()
        for a in latest[False].values():  # the callee answers (or offers late: same test)
            answer_types |= set(a.payload_types)
        for s in sent[side]:
            pt = s.payload_type
            if pt is None or not answer_types or pt in answer_types:
                continue
            name = allowed.get(pt, (str(pt), 0))[0]
            if name.lower() in _SIDE_CODECS:
                continue
            out.append(
                f"the {sides[side]} sends payload type {pt} ({name}), which the answer did "
                f"not include ({', '.join(str(p) for p in sorted(answer_types))})"
            )
    return out


@dataclass
class MediaReport:
    """What --rtp adds to decode's result: the streams (contract dicts, a MOS estimate in
    each), one verdict per call, and the bad media counted per kind."""

    streams: list[dict[str, Any]]
    calls: list[MediaVerdict]
    problems: dict[str, int]
    problem_places: dict[str, str] = field(default_factory=dict)  # where each kind came first


class MediaAnalysis:
    """The RTP tracker the capture feeds, and the SDP that tells it what each call announced."""

    def __init__(self) -> None:
        from siptool.media.rtp import RtpTracker  # only --rtp pays for the media engine

        self.tracker = RtpTracker()
        self.calls = CallMedia()

    def sip(self, msg: SipMessage, src: str | None, time: float | None = None) -> None:
        """A SIP message as it streams past: its SDP, if any, is announced to the tracker."""
        try:
            sdp = msg.sdp
        except ParseError:
            return  # decode reports it; nothing announced
        if sdp is None:
            if msg.method == "INVITE":
                self.calls.sdp(msg, src, time)  # remember the caller of a late offer
            return
        self.tracker.announce_sdp(sdp, msg.call_id)
        self.calls.sdp(msg, src, time)

    def report(self, call_ids: frozenset[str] = frozenset()) -> MediaReport:
        """The streams, the verdicts (of ``call_ids`` only, when given) and the problems."""
        from siptool.media.mos import estimate

        streams = self.tracker.streams()
        verdicts = self.calls.verdicts(streams)
        if call_ids:
            verdicts = [v for v in verdicts if v.call_id in call_ids]
            streams = [s for s in streams if s.call_id in call_ids]
        dicts: list[dict[str, Any]] = []
        for s in streams:
            d = s.to_dict()
            expected = s.expected
            jitter = d["jitter_max_ms"]
            rtt = d["rtcp"]["rtt_ms"] if isinstance(d["rtcp"], dict) else None
            if expected > 0 and isinstance(jitter, float) and s.codec is not None:
                ptime = d["mean_delta_ms"]
                d["mos_estimate"] = estimate(
                    s.codec,
                    max(0, s.lost) / expected,
                    jitter,
                    rtt if isinstance(rtt, float) else None,
                    ptime if isinstance(ptime, float) and ptime > 0 else None,
                ).to_dict()
            dicts.append(d)
        by_call: dict[str, list[dict[str, Any]]] = {}
        for d in dicts:
            events = d["dtmf"]
            assert isinstance(events, list)
            for event in events:
                by_call.setdefault(str(d["call_id"]), []).append(
                    {**event, "src": d["src"], "dst": d["dst"]}
                )
        for v in verdicts:
            v.dtmf = sorted(by_call.get(v.call_id, []), key=lambda e: e["time"] or 0.0)
        tracker = self.tracker
        return MediaReport(dicts, verdicts, tracker.problems(), tracker.problem_places())
