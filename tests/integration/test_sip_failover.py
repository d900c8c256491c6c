"""RFC 3263 §4.3 failover in register and invite-test: the first SRV target never answers
(a UDP socket that reads nothing), the second is the real server; dnsmasq serves the SRV."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from siptool.sip.message import SipMessage, parse_message
from tests.support.dns import dnsmasq, srv_zone
from tests.support.kamailio import PASSWORD, Kamailio
from tests.support.responders import idle_udp_socket
from tests.support.run import siptool_json


@pytest.fixture
def silent() -> Iterator[int]:
    with idle_udp_socket() as sock:
        yield sock.getsockname()[1]


def failover_json(
    tmp_path: Path, silent_port: int, live_port: int, command: str, *args: str
) -> tuple[int, dict[str, Any]]:
    """``siptool COMMAND --json --timeout 1 ARGS`` with a DNS server in which voip.test's
    first SRV target is ``silent_port`` and the second ``live_port``."""
    zone = srv_zone("voip.test", [("silent", silent_port), ("live", live_port)])
    with dnsmasq(tmp_path, zone, "live.voip.test") as dns:
        options = ("--timeout", "1", "--dns-server", dns)
        return siptool_json(command, *options, *args, env={"SIPTOOL_PASSWORD": PASSWORD})


def test_register_fails_over_to_the_second_srv_target(
    kamailio: Kamailio, silent: int, tmp_path: Any
) -> None:
    code, doc = failover_json(
        tmp_path, silent, kamailio.udp, "register", "--user", "gina", "sip:voip.test"
    )
    assert code == 0, doc["errors"]
    assert doc["resolved"]["address"] == f"127.0.0.1:{kamailio.udp}"
    assert doc["status"] == 200 and doc["expires"] == 300
    assert doc["errors"][0]["code"] == "timeout"
    assert doc["errors"][0]["message"].startswith(f"127.0.0.1:{silent}: ")


def test_invite_test_fails_over_to_the_second_srv_target(
    sipp: Any,
    silent: int,
    tmp_path: Any,
) -> None:
    peer = sipp()
    code, doc = failover_json(
        tmp_path, silent, peer.port, "invite-test", "--hold", "0.2", "sip:service@voip.test"
    )
    assert code == 0, doc["errors"]
    assert doc["answered"] is True and doc["bye_status"] == 200
    assert doc["errors"][0]["code"] == "timeout"
    assert doc["errors"][0]["message"].startswith(f"127.0.0.1:{silent}: ")


def test_invite_test_failover_offers_the_rtp_socket_it_listens_on(
    silent: int, tmp_path: Any
) -> None:
    """On failover the first attempt's RTP socket is closed: the INVITE to the next server
    must offer the new socket.  This UAS sends its RTP to the offer's m= port, as a phone
    does (SIPp's -rtp_echo answers the packets' source and would not notice)."""
    sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for s in (sip, rtp):
        s.bind(("127.0.0.1", 0))
    live, rtp_port = sip.getsockname()[1], rtp.getsockname()[1]

    def respond(request: SipMessage, peer: Any, sdp: str = "") -> None:
        via = "".join(f"Via: {v}\r\n" for v in request.header_values("Via"))
        to = request.header("To") or ""
        sip.sendto(
            (
                f"SIP/2.0 200 OK\r\n{via}From: {request.header('From')}\r\n"
                f"To: {to if 'tag=' in to else to + ';tag=live1'}\r\n"
                f"Call-ID: {request.call_id}\r\nCSeq: {request.header('CSeq')}\r\n"
                f"Contact: <sip:uas@127.0.0.1:{live}>\r\nContent-Type: application/sdp\r\n"
                f"Content-Length: {len(sdp)}\r\n\r\n{sdp}"
            ).encode(),
            peer,
        )

    def uas() -> None:
        offered = 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ready, _, _ = select.select([sip, rtp], [], [], 0.5)
            if rtp in ready:
                packet, _ = rtp.recvfrom(2048)
                rtp.sendto(packet, ("127.0.0.1", offered))
            if sip in ready:
                data, peer = sip.recvfrom(65535)
                request = parse_message(data)
                if request.method == "INVITE" and request.sdp is not None:
                    offered = request.sdp.media[0].port
                    respond(
                        request,
                        peer,
                        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                        f"t=0 0\r\nm=audio {rtp_port} RTP/AVP 0\r\n",
                    )
                elif request.method == "BYE":
                    respond(request, peer)
                    return

    thread = threading.Thread(target=uas, daemon=True)
    thread.start()
    try:
        code, doc = failover_json(
            tmp_path, silent, live, "invite-test", "--hold", "0.5", "--rtp", "sip:service@voip.test"
        )
    finally:
        thread.join(15)
        sip.close()
        rtp.close()
    assert doc["resolved"]["address"] == f"127.0.0.1:{live}"
    assert code == 0, doc["errors"]
    assert doc["rtp"]["received"] > 0 and doc["rtp"]["verdict"] == "ok"
