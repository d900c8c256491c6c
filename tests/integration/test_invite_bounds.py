"""`invite-test --timeout` bounds the whole command, cleanup included: against peers that never
end what they started (a 100 or a 180 and then silence, a BYE never answered, several silent
servers), the process ends within --timeout (+ --hold) * 1.1 + the documented 1 s cleanup
allowance + the time this machine takes to start and stop siptool, and the JSON says when the
cleanup was cut short.  The wall time is the behaviour under test, so it is measured on the
whole process."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from siptool.commands.invite_call import CANCEL_CUT_SHORT
from siptool.commands.invite_dialog import BYE_CUT_SHORT
from siptool.commands.invite_state import CLEANUP_ALLOWANCE
from tests.support.dns import dnsmasq, srv_zone
from tests.support.hostile_sip import HostileUas, hostile_uas
from tests.support.responders import closed_udp_port, idle_udp_socket
from tests.support.run import siptool

pytestmark = pytest.mark.peer


def timed_call(*args: str) -> tuple[float, int, dict[str, Any]]:
    """(wall seconds of the whole process, exit code, JSON document)."""
    result = siptool("invite-test", "--json", *args, env={"SIPTOOL_PASSWORD": ""})
    return result.seconds, result.returncode, result.doc


@pytest.fixture(scope="module")
def start_up() -> float:
    """What starting and stopping siptool costs here: a call to a closed port fails at once
    on the ICMP error, so its wall time is all process start-up and shutdown."""
    port = closed_udp_port()
    runs = [timed_call("--timeout", "5", f"sip:x@127.0.0.1:{port}")[0] for _ in range(2)]
    return min(runs)


def allowed(bound: float, start_up: float, cleanup: float = CLEANUP_ALLOWANCE) -> float:
    # 10 % on the user's bound, the documented cleanup allowance, start-up and a half second
    # for a loaded machine.
    return bound * 1.1 + cleanup + start_up + 0.5


@pytest.mark.parametrize("scenario", ["ringing-then-silence.xml", "trying-then-silence.xml"])
def test_cancel_never_answered_ends_within_the_timeout(
    sipp: Any, start_up: float, scenario: str
) -> None:
    """The CANCEL's 487 never comes: RFC 3261 §9.1 would wait up to 64*T1 for it; siptool
    stops at --timeout plus the cleanup allowance (6.2 s at --timeout 3 before)."""
    peer = sipp(scenario)
    wall, code, doc = timed_call("--timeout", "3", peer.uri())
    print(f"{scenario}: {wall:.2f} s wall, start-up {start_up:.2f} s")
    assert wall <= allowed(3, start_up), wall
    assert code == 1 and doc["ok"] is False
    assert doc["cancel_reason"] == "timeout" and doc["cancelled"] is False
    assert doc["final_status"] is None
    assert CANCEL_CUT_SHORT in doc["warnings"]
    sent = [e for e in doc["events"] if e["direction"] == "send"]
    assert [e["message"] for e in sent] == ["INVITE", "CANCEL (timeout)"]
    assert 2900 <= sent[1]["t_ms"] <= 3300  # cancelled at the timeout, not before


def test_ring_test_whose_cancel_is_never_answered_ends_within_the_ring_timeout(
    sipp: Any, start_up: float
) -> None:
    """A ring test rings for --ring-timeout even past --timeout; the cleanup allowance comes
    after the ring timeout."""
    peer = sipp("ringing-then-silence.xml")
    wall, code, doc = timed_call("--timeout", "0.5", "--ring-timeout", "2", peer.uri())
    assert wall <= allowed(2, start_up), wall
    assert code == 1 and doc["cancel_reason"] == "ring-timeout"
    assert CANCEL_CUT_SHORT in doc["warnings"]


def test_cancel_answered_in_time_is_not_cut_short(sipp: Any) -> None:
    peer = sipp("never-answer.xml")
    _, code, doc = timed_call("--timeout", "1", peer.uri())
    assert code == 1 and doc["cancelled"] is True and doc["final_status"] == 487
    assert CANCEL_CUT_SHORT not in doc["warnings"]
    assert peer.finished() == 0, peer.server.log()


def sdp_toward(media_port: int) -> bytes:
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
        f"t=0 0\r\nm=audio {media_port} RTP/AVP 0\r\n"
    ).encode()


@pytest.fixture
def bye_ignoring_uas() -> Iterator[Callable[..., int]]:
    """``start(answer_after, media_port=None)``: a UAS that sends 100 Trying at once, 200 OK
    ``answer_after`` seconds later (with an SDP answer toward ``media_port`` if given), and
    then ignores everything (the ACK, every BYE); returns its port."""
    with contextlib.ExitStack() as stack:

        def start(answer_after: float, media_port: int | None = None) -> int:
            ok: tuple[int, str, list[str], bytes] = (200, "OK", [], b"")
            if media_port is not None:
                ok = (200, "OK", ["Content-Type: application/sdp"], sdp_toward(media_port))
            script = {"INVITE": [(100, "Trying", [], b""), ok]}
            peer: HostileUas = stack.enter_context(hostile_uas(script, delays={200: answer_after}))
            return peer.port

        yield start


def test_bye_never_answered_waits_timeout_as_before(bye_ignoring_uas: Any, start_up: float) -> None:
    """Answered at once: the BYE gets --timeout, as every request, which the bound allows."""
    port = bye_ignoring_uas(0.0)
    wall, code, doc = timed_call("--timeout", "1.5", "--hold", "0.5", f"sip:deaf@127.0.0.1:{port}")
    print(f"bye wall {wall:.2f}")
    assert wall <= allowed(1.5 + 0.5, start_up, cleanup=0.0), wall
    assert code == 1 and doc["answered"] is True and doc["bye_status"] is None
    assert any(e["code"] == "bye_failed" for e in doc["errors"]), doc["errors"]
    assert BYE_CUT_SHORT not in doc["warnings"]
    assert 400 <= doc["hold_ms"] <= 700


def test_bye_never_answered_after_a_late_answer_is_cut_short(
    bye_ignoring_uas: Any, start_up: float
) -> None:
    """Answered 1.2 s into --timeout 1.5: the BYE cannot have its 1.5 s, it gets what is left
    of the bound and the cleanup allowance, and the warning says so."""
    port = bye_ignoring_uas(1.2)
    wall, code, doc = timed_call("--timeout", "1.5", "--hold", "0.5", f"sip:deaf@127.0.0.1:{port}")
    print(f"late bye wall {wall:.2f}")
    assert wall <= allowed(1.5 + 0.5, start_up), wall
    assert code == 1 and doc["answered"] is True and doc["bye_status"] is None
    assert 1100 <= doc["timings_ms"]["answer"] <= 1400
    assert BYE_CUT_SHORT in doc["warnings"]


def test_rtp_phase_and_bye_stay_within_the_bound(bye_ignoring_uas: Any, start_up: float) -> None:
    """--rtp toward a media port that sends nothing back, answered late: the hold, the RTP
    grace and the BYE all fit in --timeout + --hold + the cleanup allowance."""
    with idle_udp_socket() as media:
        port = bye_ignoring_uas(1.7, media.getsockname()[1])
        wall, code, doc = timed_call(
            "--rtp", "--timeout", "2", "--hold", "0.3", f"sip:deaf@127.0.0.1:{port}"
        )
    assert wall <= allowed(2 + 0.3, start_up), wall
    assert code == 1 and doc["rtp"]["sent"] > 0 and doc["rtp"]["received"] == 0
    assert BYE_CUT_SHORT in doc["warnings"]


@pytest.fixture
def two_silent_servers(tmp_path: Path) -> Iterator[str]:
    """sip:service@voip.test with two SRV targets that read everything and answer nothing."""
    with idle_udp_socket() as one, idle_udp_socket() as two:
        ports = [("one", one.getsockname()[1]), ("two", two.getsockname()[1])]
        with dnsmasq(tmp_path, srv_zone("voip.test", ports), "one.voip.test") as dns:
            yield dns


def test_failover_shares_the_timeout(two_silent_servers: str, start_up: float) -> None:
    """RFC 3263 failover over two silent servers: each gets its share of --timeout, the whole
    command takes --timeout (4 s at --timeout 2 before)."""
    wall, code, doc = timed_call(
        "--timeout", "2", "--dns-server", two_silent_servers, "sip:service@voip.test"
    )
    assert wall <= allowed(2, start_up, cleanup=0.0), wall
    assert code == 1
    timeouts = [e for e in doc["errors"] if e["code"] == "timeout"]
    assert len(timeouts) == 2, doc["errors"]  # both servers were tried
