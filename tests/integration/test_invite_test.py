"""`siptool invite-test` against real peers: SIPp as the called UAS (its built-in ``uas``
scenario, with ``-rtp_echo`` for the media check, and the scenarios in tests/sipp/), directly
and through Kamailio (record-routed), over UDP, TCP and IPv6; a Python UAS for 2xx
retransmissions.  Every SIPp is started on loopback at free ports and stopped by PID; the
scenarios that must see our ACK end only once it came, so SIPp's exit status 0 proves it."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from siptool.sip.auth import AuthState, DigestCredentials
from siptool.sip.builders import LocalEndpoint, build_request, new_call_id, new_tag
from siptool.sip.message import parse_message
from tests.support.hostile_sip import HostileUas, Script, hostile_peer, hostile_uas, response
from tests.support.kamailio import PASSWORD, Kamailio
from tests.support.responders import idle_udp_socket
from tests.support.run import ENVELOPE, SIPTOOL, Env, siptool, siptool_on_a_busy_port
from tests.support.servers import free_port

pytestmark = pytest.mark.peer

CONTRACT_KEYS = (
    "final_status",
    "final_reason",
    "answered",
    "timings_ms",
    "cancelled",
    "bye_status",
    "sdp_answer",
    "rtp",
    "warnings",
    "nat",
    "call_id",
    "auth",
)


def call_json(*args: str, env: Env | None = None) -> tuple[int, dict[str, Any]]:
    result = siptool("invite-test", "--json", *args, env=env)
    return result.returncode, result.doc


def _assert_contract(doc: dict[str, Any]) -> None:
    for key in (*ENVELOPE, *CONTRACT_KEYS):
        assert key in doc, key
    assert doc["command"] == "invite-test"
    assert set(doc["timings_ms"]) >= {"trying", "ringing", "early_media", "answer", "pdd"}


def test_direct_call_answered_by_sipp_uas(sipp: Any) -> None:
    peer = sipp()
    code, doc = call_json("--hold", "0.3", peer.uri())
    assert code == 0, doc["errors"]
    _assert_contract(doc)
    assert doc["ok"] is True and doc["answered"] is True
    assert (doc["final_status"], doc["final_reason"]) == (200, "OK")
    t = doc["timings_ms"]
    # The built-in uas scenario sends 180 then 200, no 100.
    assert t["trying"] is None and t["early_media"] is None
    assert 0 < t["ringing"] <= t["answer"]
    assert t["pdd"] == t["ringing"]
    assert "PCMU/8000" in doc["sdp_answer"]["codecs"]
    assert doc["sdp_answer"]["media_address"] == f"127.0.0.1:{peer.media_port}"
    assert doc["bye_status"] == 200
    assert doc["rtp"] is None and doc["cancelled"] is False
    assert doc["auth"]["rounds"] == 0
    assert doc["nat"]["local"].startswith("127.0.0.1:") and doc["nat"]["behind_nat"] is False
    sent = [e["message"] for e in doc["events"] if e["direction"] == "send"]
    assert sent == ["INVITE", "ACK", "BYE"]
    assert doc["warnings"] == []


def test_rtp_comes_back_from_sipp_rtp_echo(sipp: Any) -> None:
    peer = sipp(rtp_echo=True)
    code, doc = call_json("--rtp", "--hold", "1", peer.uri())
    assert code == 0, doc["errors"]
    rtp = doc["rtp"]
    # 1 s of 20 ms packets.
    assert 45 <= rtp["sent"] <= 51
    assert rtp["received"] > 0 and rtp["echoed"] is True
    assert rtp["loss_pct"] <= 5.0
    assert isinstance(rtp["jitter_ms"], float) and 0 <= rtp["jitter_ms"] < 20
    assert rtp["verdict"] == "ok"
    assert rtp["remote"] == f"127.0.0.1:{peer.media_port}"
    print(f"RTP {rtp}")


def test_rtp_without_echo_is_one_way_audio(sipp: Any) -> None:
    peer = sipp()  # no -rtp_echo: nothing comes back
    code, doc = call_json("--rtp", "--hold", "0.3", peer.uri())
    assert code == 1
    assert doc["answered"] is True and doc["bye_status"] == 200
    assert doc["rtp"]["received"] == 0 and doc["rtp"]["verdict"] == "one-way: nothing came back"
    assert "RTP: one-way: nothing came back" in doc["warnings"]
    assert doc["errors"][0]["code"] == "one_way_audio"


def test_busy_fails_and_the_486_is_acked(sipp: Any) -> None:
    peer = sipp("busy.xml")
    code, doc = call_json(peer.uri())
    assert code == 1
    assert doc["final_status"] == 486 and doc["answered"] is False
    assert doc["timings_ms"]["trying"] is not None
    assert doc["timings_ms"]["pdd"] == doc["timings_ms"]["final"]  # no 18x: PDD is the final
    assert doc["bye_status"] is None and doc["sdp_answer"] is None
    assert doc["errors"][0]["code"] == "not_answered"
    # The scenario ends only after receiving the ACK for its 486.
    assert peer.finished() == 0, peer.server.log()


def test_expect_486_passes_on_busy(sipp: Any) -> None:
    peer = sipp("busy.xml")
    code, doc = call_json("--expect", "486", peer.uri())
    assert code == 0 and doc["ok"] is True and doc["errors"] == []
    assert peer.finished() == 0, peer.server.log()


def test_ring_timeout_cancels_and_gets_487(sipp: Any) -> None:
    peer = sipp("never-answer.xml")
    code, doc = call_json("--timeout", "0.2", "--ring-timeout", "0.5", peer.uri())
    assert code == 0, doc["errors"]
    assert doc["cancelled"] is True and doc["cancel_reason"] == "ring-timeout"
    assert doc["cancel_status"] == 200
    assert (doc["final_status"], doc["answered"]) == (487, False)
    assert doc["timings_ms"]["ringing"] is not None
    cancel = next(e for e in doc["events"] if e["message"].startswith("CANCEL"))
    assert 500 <= cancel["t_ms"] < 1500
    # 200 to the CANCEL, 487 to the INVITE, then SIPp waited for the ACK of the 487.
    assert peer.finished() == 0, peer.server.log()


def test_timeout_while_ringing_cancels_and_fails(sipp: Any) -> None:
    peer = sipp("never-answer.xml")
    code, doc = call_json("--timeout", "0.5", peer.uri())
    assert code == 1
    assert doc["cancelled"] is True and doc["cancel_reason"] == "timeout"
    assert doc["errors"][0]["code"] == "not_answered"
    assert peer.finished() == 0, peer.server.log()


def test_slow_answer_timings_are_in_order(sipp: Any) -> None:
    peer = sipp("slow.xml")
    code, doc = call_json("--hold", "0.2", peer.uri())
    assert code == 0, doc["errors"]
    t = doc["timings_ms"]
    assert t["trying"] < t["ringing"] < t["answer"]
    assert t["trying"] < 100
    assert 280 <= t["ringing"] < 800
    assert 580 <= t["answer"] < 1500
    assert t["pdd"] == t["ringing"]
    assert doc["sdp_answer"]["codecs"] == ["PCMU/8000", "telephone-event/8000"]
    assert doc["bye_status"] == 200
    assert peer.finished() == 0, peer.server.log()


def test_far_end_bye_is_answered_and_ends_the_hold(sipp: Any) -> None:
    peer = sipp("remote-bye.xml")
    start = time.monotonic()
    code, doc = call_json("--hold", "10", peer.uri())
    assert code == 0, doc["errors"]
    assert time.monotonic() - start < 8
    assert doc["bye_status"] == "remote"
    assert 250 <= doc["hold_ms"] < 3000
    assert [e["message"] for e in doc["events"] if e["direction"] == "send"][-1] == ("200 OK (BYE)")
    # SIPp's BYE got our 200.
    assert peer.finished() == 0, peer.server.log()


def test_challenge_is_answered_with_digest_credentials_sipp_verifies(sipp: Any) -> None:
    peer = sipp("auth.xml")
    code, doc = call_json(
        "--user", "alice", "--hold", "0.2", peer.uri(), env={"SIPTOOL_PASSWORD": "secret"}
    )
    assert code == 0, doc["errors"]
    assert doc["auth"] == {"scheme": "Digest", "algorithm": "MD5", "qop": None, "rounds": 1}
    assert doc["final_status"] == 200 and doc["bye_status"] == 200
    assert "secret" not in json.dumps(doc)
    assert peer.finished() == 0, peer.server.log()


def test_wrong_password_gets_403(sipp: Any) -> None:
    peer = sipp("auth.xml")
    code, doc = call_json("--user", "alice", peer.uri(), env={"SIPTOOL_PASSWORD": "wrong"})
    assert code == 1 and doc["final_status"] == 403


def test_challenge_without_credentials_fails_clearly(sipp: Any) -> None:
    peer = sipp("auth.xml")
    code, doc = call_json(peer.uri(), env={"SIPTOOL_PASSWORD": ""})
    assert code == 1 and doc["final_status"] == 401
    assert doc["errors"][0]["code"] == "auth_required"


def test_unreadable_password_file_asked_for_by_a_challenge_cannot_run(
    sipp: Any, tmp_path: Path
) -> None:
    peer = sipp("auth.xml")
    missing = tmp_path / "no-such-secret"
    result = siptool(
        "invite-test", "--json", "--user", "alice", "--password-file", str(missing), peer.uri()
    )
    doc = result.doc
    assert result.returncode == 3 and doc["exit_code"] == 3 and doc["ok"] is False
    assert doc["errors"][0]["code"] == "input_error"
    assert f"cannot read --password-file {missing}" in doc["errors"][0]["message"]
    assert f"siptool invite-test: cannot read --password-file {missing}" in result.stderr


def test_password_file_is_read_only_when_a_challenge_asks(sipp: Any, tmp_path: Path) -> None:
    peer = sipp()
    missing = tmp_path / "no-such-secret"
    code, doc = call_json("--hold", "0", "--password-file", str(missing), peer.uri())
    assert code == 0, doc["errors"]
    assert doc["errors"] == []


def test_ipv6_loopback_call(sipp: Any) -> None:
    peer = sipp(host="::1", rtp_echo=True)
    code, doc = call_json("--hold", "0.3", "--rtp", peer.uri())
    assert code == 0, doc["errors"]
    assert doc["resolved"]["address"] == f"[::1]:{peer.port}"
    assert doc["nat"]["local"].startswith("[::1]:")
    assert doc["sdp_answer"]["media_address"] == f"[::1]:{peer.media_port}"
    assert doc["bye_status"] == 200 and doc["rtp"]["received"] > 0


def test_tcp_call(sipp: Any) -> None:
    peer = sipp(transport="tcp")
    code, doc = call_json("--hold", "0.3", peer.uri())
    assert code == 0, doc["errors"]
    assert doc["resolved"]["transport"] == "tcp"
    assert doc["final_status"] == 200 and doc["bye_status"] == 200


def test_nagios_status_line(sipp: Any) -> None:
    peer = sipp()
    ok = siptool("invite-test", "--nagios", "--hold", "0", "-w", "1000", "-c", "2000", peer.uri())
    assert ok.returncode == 0, ok.stdout
    assert re.match(
        r"SIP OK - 200 OK from sip:callee@127\.0\.0\.1:\d+, answered in [\d.]+ ms \| "
        r"pdd=[\d.]+ms;1000;2000;0 answer=[\d.]+ms$",
        ok.stdout.strip(),
    ), ok.stdout
    busy = sipp("busy.xml")
    critical = siptool("invite-test", "--nagios", busy.uri())
    assert critical.returncode == 2
    assert critical.stdout.startswith("SIP CRITICAL - 486 Busy Here from ")


def test_text_summary(sipp: Any) -> None:
    peer = sipp()
    result = siptool("invite-test", "--hold", "0", "--no-color", peer.uri())
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "200 OK" in out and "PDD" in out and "BYE got 200" in out
    assert "PCMU/8000 at 127.0.0.1:" in out


def test_silent_peer_is_no_answer() -> None:
    with idle_udp_socket() as silent:
        port = silent.getsockname()[1]
        code, doc = call_json("--timeout", "0.6", f"sip:x@127.0.0.1:{port}")
    assert code == 1
    assert doc["final_status"] is None and doc["errors"][0]["code"] == "timeout"
    assert doc["cancelled"] is False


def test_busy_local_port_cannot_run() -> None:
    result = siptool_on_a_busy_port("invite-test", f"sip:x@127.0.0.1:{free_port()}")
    assert result.returncode == 3 and "cannot bind" in result.stderr


def test_usage_errors() -> None:
    assert siptool("invite-test", "--codecs", "opus", "sip:x@127.0.0.1").returncode == 2
    assert siptool("invite-test", "sip:[bad").returncode == 2
    assert siptool("invite-test", "--expect", "99", "sip:x@127.0.0.1").returncode == 2


# -- Python UASes: a 2xx retransmitted, a held answer, a Contact elsewhere -----------------

OK_TO_BYE: Script = {"BYE": [(200, "OK", [], b"")]}


def test_retransmitted_2xx_is_acked_again() -> None:
    """RFC 3261 §13.2.2.4: the UAC re-sends the ACK for every retransmission of the 2xx,
    although its INVITE transaction is over.  This UAS sends its 200 twice."""
    sent: list[bytes] = []

    def answer(request: bytes, uas: HostileUas) -> list[tuple[float, bytes]]:
        method = request.split(b" ", 1)[0]
        if method == b"INVITE" and not sent:
            contact = f"Contact: <sip:uas@127.0.0.1:{uas.port}>"
            sent.append(response(request, 200, "OK", [contact], tag="uas1"))
            return [(0.0, sent[0])]
        acks = sum(m.startswith(b"ACK ") for m in uas.received)
        if method == b"ACK" and acks == 1:
            return [(0.0, sent[0])]  # as if the first ACK had been lost
        if method == b"BYE":
            return [(0.0, response(request, 200, "OK", tag="uas1"))]
        return []

    with hostile_peer(answer) as uas:
        code, doc = call_json("--hold", "0.5", uas.uri("uas"))
    seen = [parse_message(data) for data in uas.received]
    assert code == 0, doc["errors"]
    acks = [m for m in seen if m.method == "ACK"]
    assert len(acks) == 2 and acks[0].serialize() == acks[1].serialize()
    assert acks[0].header("CSeq") == "1 ACK"
    assert doc["ack_retransmissions"] == 1
    assert doc["bye_status"] == 200
    # No SDP in this 200: reported, not fatal.
    assert doc["sdp_answer"] is None and any("no SDP" in w for w in doc["warnings"])


def test_rtp_is_not_sent_to_a_held_answer() -> None:
    """RFC 3264 §8.4: an answer with c=0.0.0.0 means "do not send".  Sent anyway, the packets
    land on this very host (Linux delivers 0.0.0.0 locally), here on a socket at that port."""
    with idle_udp_socket() as media:
        sdp = (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
            f"m=audio {media.getsockname()[1]} RTP/AVP 0\r\n"
        ).encode()
        held = (200, "OK", ["Content-Type: application/sdp"], sdp)
        with hostile_uas({"INVITE": [held], **OK_TO_BYE}) as uas:
            code, doc = call_json("--rtp", "--hold", "0.3", uas.uri("uas"))
        media.settimeout(0.2)
        with pytest.raises(TimeoutError):
            media.recvfrom(2048)
    assert doc["answered"] is True and doc["bye_status"] == 200
    assert doc["rtp"]["sent"] == 0 and doc["rtp"]["verdict"] == "no media sent"
    assert "the answer puts the call on hold (c=0.0.0.0): no RTP sent" in doc["warnings"]
    # --rtp asked for a media check that could not be made.
    assert code == 1


def test_contact_elsewhere_gets_ack_and_bye_directly() -> None:
    """No Record-Route and a Contact that is not the peer the INVITE went to (a proxy that
    does not record-route): the route set is empty, so ACK and BYE go to the Contact (RFC 3261
    §12.2.1.1) from a flow of their own."""
    with hostile_uas(OK_TO_BYE) as back:
        contact = f"Contact: <sip:uas@127.0.0.1:{back.port}>"
        with hostile_uas({"INVITE": [(200, "OK", [contact], b"")]}) as front:
            code, doc = call_json("--hold", "0.2", front.uri("uas"))
    at_back = [data.split(b" ", 1)[0].decode() for data in back.received]
    assert code == 0, doc["errors"]
    assert at_back == ["ACK", "BYE"] and doc["bye_status"] == 200
    assert any(f"go to 127.0.0.1:{back.port} (the answer's Contact)" in w for w in doc["warnings"])


# -- through Kamailio ----------------------------------------------------------------------


def register_contact(kamailio: Kamailio, user: str, contact: str) -> None:
    """REGISTER ``contact`` for ``user`` at the Kamailio registrar (digest, UDP)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(3)
        local = LocalEndpoint("udp", "127.0.0.1", sock.getsockname()[1])
        registrar = f"sip:{kamailio.host}:{kamailio.udp}"
        aor = f"sip:{user}@{kamailio.host}"
        call_id, tag = new_call_id("127.0.0.1"), new_tag()
        auth = AuthState(DigestCredentials(user, PASSWORD))
        for seq in (1, 2, 3):
            request = build_request(
                "REGISTER",
                registrar,
                local=local,
                from_uri=aor,
                from_tag=tag,
                to_uri=aor,
                call_id=call_id,
                cseq=seq,
                contact=f"<{contact}>",
                extra=[("Expires", "120")],
            )
            auth.apply(request)
            sock.sendto(request.serialize(), (kamailio.host, kamailio.udp))
            response = parse_message(sock.recv(65535))
            if response.status == 200:
                return
            assert response.status == 401 and auth.on_challenge(response) == "retry"
    pytest.fail("Kamailio did not accept the REGISTER")


def test_call_through_kamailio_record_routes_ack_and_bye(sipp: Any, kamailio: Kamailio) -> None:
    peer = sipp("answer-rr.xml")
    register_contact(kamailio, "sippuser", f"sip:sippuser@127.0.0.1:{peer.port}")
    target = f"sip:sippuser@{kamailio.host}:{kamailio.udp}"
    result = siptool("invite-test", "--json", "-v", "--hold", "0.3", target)
    doc = result.doc
    assert result.returncode == 0, (doc["errors"], result.stderr[-3000:])
    assert doc["final_status"] == 200 and doc["bye_status"] == 200
    assert doc["resolved"]["address"] == f"127.0.0.1:{kamailio.udp}"
    # The ACK and the BYE went to Kamailio (the Record-Route), with a Route header, and their
    # Request-URI is SIPp's Contact.
    wire = result.stderr
    for method in ("ACK", "BYE"):
        block = re.search(
            rf"send UDP \S+ -> 127\.0\.0\.1:{kamailio.udp}\n{method} (\S+) SIP/2.0\n(.*?)\n\n",
            wire,
            re.S,
        )
        assert block is not None, f"no {method} sent to Kamailio"
        assert block.group(1) == f"sip:127.0.0.1:{peer.port};transport=UDP"
        assert re.search(rf"^Route: <sip:127\.0\.0\.1:{kamailio.udp};lr", block.group(2), re.M)
    assert doc["warnings"] == []
    # SIPp saw the ACK and the BYE (relayed by Kamailio) and answered the BYE.
    assert peer.finished() == 0, peer.server.log()


def test_tls_call_through_kamailio(sipp: Any, kamailio: Kamailio) -> None:
    """TLS to Kamailio, UDP from Kamailio to SIPp: Kamailio record-routes twice (one entry per
    side, RFC 3261 §16.6 step 4); ACK and BYE go back over our TLS connection."""
    assert kamailio.ca is not None
    peer = sipp("answer-rr.xml")
    register_contact(kamailio, "tlsuser", f"sip:tlsuser@127.0.0.1:{peer.port}")
    code, doc = call_json(
        "--ca-file", str(kamailio.ca.ca_cert), "--hold", "0.2", kamailio.uri("tls", "tlsuser")
    )
    assert code == 0, doc["errors"]
    assert doc["resolved"]["transport"] == "tls"
    assert doc["final_status"] == 200 and doc["bye_status"] == 200
    assert doc["warnings"] == []
    assert peer.finished() == 0, peer.server.log()


def test_ctrl_c_during_the_hold_hangs_up_with_bye(sipp: Any) -> None:
    peer = sipp()
    process = subprocess.Popen(
        [*SIPTOOL, "invite-test", "--hold", "30", peer.uri()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)  # answered by then (loopback), holding
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130 and "Traceback" not in err, err
    # SIPp got the BYE (and answered it): its one call ended normally.
    assert peer.finished(10) == 0, peer.server.log()
