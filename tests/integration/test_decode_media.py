"""`siptool decode --rtp` on calls made by real peers: the media verdict, DTMF and RTCP (issue
10, "Media").

Every capture is tcpdump's recording of third-party software (tests/support/media_calls.py):
SIPp calls through Kamailio with Debian sip-tester's g711a.pcap and RFC 4733 recordings
played by ``play_pcap_audio``, a SIPp call from behind an iptables MASQUERADE NAT in network
namespaces, and GStreamer's RTP sessions exchanging RTCP SR/RR under iptables loss.  The
assertions are on ``decode --rtp --json``: the verdict and its reasons by what the peers were
told to do, the figures by what tshark 4.0 reads in the same file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.kamailio import Kamailio
from tests.support.media_calls import (
    PRIVATE_IP,
    PUBLIC_IP,
    ROUTER_WAN,
    RTP_PORT,
    SENDER_RTCP_PORT,
    Call,
    call_across_nat,
    call_through,
    decode_rtp,
    masquerading_nat,
    rtcp_exchange,
    tshark_rows,
    tshark_rtcp,
    tshark_rtp_streams,
)
from tests.support.peers import require_root
from tests.support.run import siptool

pytestmark = [pytest.mark.peer, pytest.mark.root]

AUDIO = 34  # packets of g711a.pcap a side plays: 34 x 30 ms, about 1 s
PCMA_SSRC = "0xDEE0EE8F"  # g711a.pcap's; SIPp keeps a recording's SSRC
DIGITS = "0123456789*#ABCD"  # RFC 4733 §3.2: events 0-15


@pytest.fixture(autouse=True)
def _root() -> None:
    require_root()  # tcpdump, and the namespaces


def the_call(doc: dict[str, Any]) -> dict[str, Any]:
    calls = doc["media"]
    assert len(calls) == 1, calls
    call: dict[str, Any] = calls[0]
    return call


def assert_streams_as_tshark(doc: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    """Every RTP stream siptool reports is one tshark reports, with the same packets and lost,
    and the other way round; the streams (in siptool's order)."""
    ours = {(s["src"], s["dst"], s["ssrc"]): s for s in doc["rtp_streams"]}
    theirs = {(t.src, t.dst, t.ssrc): t for t in tshark_rtp_streams(path)}
    assert set(ours) == set(theirs)
    for key, t in theirs.items():
        assert (ours[key]["packets"], ours[key]["lost"]) == (t.packets, t.lost), key
    streams: list[dict[str, Any]] = doc["rtp_streams"]
    return streams


# -- 1. both ways ------------------------------------------------------------------------------


def test_call_through_kamailio_with_audio_both_ways_is_both_ways(
    kamailio: Kamailio, tmp_path: Path
) -> None:
    call = call_through(kamailio, tmp_path, "media-call-uac.xml", "media-call-uas.xml",
                        caller_audio=AUDIO, callee_audio=AUDIO, pause_ms=1300)  # fmt: skip
    doc = decode_rtp(call.path)
    verdict = the_call(doc)
    assert (verdict["verdict"], verdict["reasons"]) == ("both-ways", [])
    caller, callee = call.caller.rtp, call.callee.rtp
    assert sorted(verdict["streams"]) == sorted([f"{caller} -> {callee}", f"{callee} -> {caller}"])
    streams = assert_streams_as_tshark(doc, call.path)
    assert len(streams) == 2
    for s in streams:
        assert (s["codec"], s["ssrc"], s["call_id"]) == ("PCMA", PCMA_SSRC, verdict["call_id"])
        assert (s["packets"], s["lost"]) == (AUDIO, 0)
    text = siptool("decode", "--rtp", str(call.path))
    assert text.returncode == 0, text.stderr
    assert f"Call-ID {verdict['call_id']}: media both-ways" in text.stdout


# -- 2. one way --------------------------------------------------------------------------------


def test_callee_that_never_sends_makes_the_call_one_way(kamailio: Kamailio, tmp_path: Path) -> None:
    call = call_through(kamailio, tmp_path, "media-call-uac.xml", "media-silent-uas.xml",
                        caller_audio=AUDIO, callee_audio=None, pause_ms=1300)  # fmt: skip
    doc = decode_rtp(call.path)
    verdict = the_call(doc)
    assert verdict["verdict"] == "one-way"
    assert verdict["reasons"][0] == (
        f"the callee never sent RTP to the caller's announced {call.caller.rtp}"
    )
    assert verdict["streams"] == [f"{call.caller.rtp} -> {call.callee.rtp}"]
    (stream,) = assert_streams_as_tshark(doc, call.path)
    assert (stream["packets"], stream["call_id"]) == (AUDIO, verdict["call_id"])


# -- 3. hold -----------------------------------------------------------------------------------


def hold_times(call: Call) -> tuple[float, float, float]:
    """(the re-INVITE's time, the callee's first and last RTP packet's time), by tshark.
    The re-INVITE is in the capture twice (to Kamailio and from it): the first counts."""
    reinvite, *_ = tshark_rows(call.path, 'sip.Method == "INVITE" && sip.CSeq.seq == 2',
                              ["frame.time_epoch"])  # fmt: skip
    src = call.callee.rtp.split(":")
    rtp = tshark_rows(call.path, f"rtp && ip.src == {src[0]} && udp.srcport == {src[1]}",
                      ["frame.time_epoch"])  # fmt: skip
    assert rtp, "the callee sent no RTP at all"
    return float(reinvite[0]), float(rtp[0][0]), float(rtp[-1][0])


def hold_call(kamailio: Kamailio, work: Path, callee_audio: int) -> tuple[Call, dict[str, Any]]:
    call = call_through(kamailio, work, "media-hold-uac.xml", "media-hold-uas.xml",
                        caller_audio=AUDIO, callee_audio=callee_audio, pause_ms=1200)  # fmt: skip
    doc = decode_rtp(call.path)
    verdict = the_call(doc)
    assert verdict["verdict"] == "held", verdict
    assert "the callee is not to send (recvonly): the call is on hold" in verdict["reasons"]
    assert_streams_as_tshark(doc, call.path)
    return call, verdict


def test_hold_respected_when_the_held_callee_stops_before_the_reinvite(
    kamailio: Kamailio, tmp_path: Path
) -> None:
    call, verdict = hold_call(kamailio, tmp_path, callee_audio=AUDIO)
    reinvite, _, last = hold_times(call)
    assert last < reinvite  # the premise: the callee's 1 s of audio ended before the hold
    assert not [r for r in verdict["reasons"] if "hold not respected" in r], verdict["reasons"]


def test_hold_not_respected_when_the_held_callee_keeps_sending(
    kamailio: Kamailio, tmp_path: Path
) -> None:
    call, verdict = hold_call(kamailio, tmp_path, callee_audio=100)  # 3 s: past the re-INVITE
    reinvite, _, last = hold_times(call)
    assert last > reinvite + 0.5
    assert "hold not respected: the callee still sends RTP" in verdict["reasons"]


# -- 4. DTMF -----------------------------------------------------------------------------------


def tshark_digits(call: Call) -> list[dict[str, Any]]:
    """RFC 4733 events as tshark decodes them (the SDP maps 101 to telephone-event), one per
    (SSRC, RTP timestamp) in order of the first packet: digit, time, duration, end seen."""
    fields = ["frame.time_epoch", "rtp.ssrc", "rtp.timestamp", "rtpevent.event_id",
              "rtpevent.end_of_event", "rtpevent.duration", "rtpevent.volume"]  # fmt: skip
    events: dict[tuple[str, str], dict[str, Any]] = {}
    for t, ssrc, ts, event, end, duration, volume in tshark_rows(call.path, "rtpevent", fields):
        e = events.setdefault((ssrc, ts), {"digit": DIGITS[int(event)], "time": float(t),
                                           "duration": 0, "ended": False,
                                           "volume": -int(volume)})  # fmt: skip
        e["duration"] = max(e["duration"], int(duration))
        e["ended"] = e["ended"] or end == "1"
    return list(events.values())


def test_dtmf_digits_in_the_order_sent_as_tshark_decodes_them(
    kamailio: Kamailio, tmp_path: Path
) -> None:
    call = call_through(kamailio, tmp_path, "media-dtmf-uac.xml", "media-call-uas.xml",
                        caller_audio=AUDIO, callee_audio=AUDIO, pause_ms=400)  # fmt: skip
    doc = decode_rtp(call.path)
    verdict = the_call(doc)
    theirs = tshark_digits(call)
    assert [e["digit"] for e in theirs] == ["1", "#", "*"]  # what the scenario played
    ours = verdict["dtmf"]
    assert [e["digit"] for e in ours] == ["1", "#", "*"]
    for mine, t in zip(ours, theirs, strict=True):
        assert mine["time"] == pytest.approx(t["time"], abs=1e-6)
        assert mine["duration_ms"] == pytest.approx(t["duration"] / 8.0)  # 8000 Hz clock
        assert (mine["ended"], mine["volume_dbm0"]) == (t["ended"], t["volume"])
        assert (mine["src"], mine["dst"]) == (call.caller.rtp, call.callee.rtp)
    assert verdict["verdict"] == "both-ways" and verdict["reasons"] == []
    events = [s for s in assert_streams_as_tshark(doc, call.path) if s["dtmf"]]
    assert [(s["codec"], s["payload_type"]) for s in events] == [("telephone-event", 101)]
    text = siptool("decode", "--rtp", str(call.path))
    assert text.returncode == 0, text.stderr
    line = next(x for x in text.stdout.splitlines() if "DTMF (RFC 4733):" in x)
    assert re.fullmatch(r"  DTMF \(RFC 4733\): 1 \(280 ms\) # \(280 ms\) \* \(280 ms\)", line)


# -- 5. NAT ------------------------------------------------------------------------------------


@pytest.fixture
def nat() -> Iterator[tuple[str, str]]:
    with masquerading_nat() as pair:
        yield pair


def test_caller_behind_masquerade_nat_private_sdp_and_rewritten_source_are_named(
    nat: tuple[str, str], tmp_path: Path
) -> None:
    call = call_across_nat(tmp_path, *nat, audio=AUDIO, pause_ms=1300)
    doc = decode_rtp(call.path)
    verdict = the_call(doc)
    (stream,) = assert_streams_as_tshark(doc, call.path)
    # MASQUERADE rewrote the caller's RTP source to the router's public address.
    assert stream["src"].startswith(f"{ROUTER_WAN}:") and stream["dst"] == call.callee.rtp
    announced = call.caller.rtp
    assert announced.startswith(f"{PRIVATE_IP}:")
    reasons = verdict["reasons"]
    # The callee sent toward 10.0.0.2, which no route on the public side reaches.
    assert verdict["verdict"] == "one-way"
    assert reasons[0] == f"the callee never sent RTP to the caller's announced {announced}"
    assert any(
        f"the caller's SDP announces private {PRIVATE_IP} while its signalling came from "
        f"public {ROUTER_WAN}" in r
        for r in reasons
    ), reasons
    assert any(
        f"the caller's RTP comes from {stream['src']}, not from its announced {announced}" in r
        for r in reasons
    ), reasons
    assert not [r for r in reasons if r.startswith("the callee's")], reasons  # public, direct
    assert call.callee.rtp.startswith(f"{PUBLIC_IP}:")


# -- 6. RTCP -----------------------------------------------------------------------------------


def test_rtcp_sender_and_receiver_reports_as_tshark_decodes_them(tmp_path: Path) -> None:
    path = rtcp_exchange(tmp_path, packets=100, drop_every=10)
    doc = decode_rtp(path)
    (stream,) = assert_streams_as_tshark(doc, path)  # RTCP is not a stream of its own
    assert stream["dst"] == f"127.0.0.1:{RTP_PORT}"
    assert (stream["packets"], stream["lost"]) == (90, 10)  # the capture sees the drops too
    rtcp = stream["rtcp"]
    assert rtcp is not None, stream
    t = tshark_rtcp(path, int(stream["ssrc"], 16), RTP_PORT + 1, SENDER_RTCP_PORT)
    assert t.sender_reports >= 2 and len(t.blocks) >= 2 and t.rtts_ms, t
    assert max(b["fraction"] for b in t.blocks) > 0 and t.blocks[-1]["cumulative"] > 0
    last = t.blocks[-1]
    assert (rtcp["sender_reports"], rtcp["receiver_reports"]) == (t.sender_reports, len(t.blocks))
    assert (rtcp["sender_packets"], rtcp["sender_octets"]) == (t.sender_packets, t.sender_octets)
    assert rtcp["fraction_lost"] == pytest.approx(last["fraction"] / 256)
    assert rtcp["cumulative_lost"] == last["cumulative"]
    assert rtcp["highest_seq"] == last["highest"]
    assert rtcp["jitter_ms"] == pytest.approx(last["jitter"] / 8.0, abs=5e-4)  # 8000 Hz
    assert rtcp["rtt_ms"] == pytest.approx(t.rtts_ms[-1], abs=2e-3)
    assert rtcp["rtt_max_ms"] == pytest.approx(max(t.rtts_ms), abs=2e-3)
    assert rtcp["bye"] is t.bye is True
