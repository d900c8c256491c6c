"""invite-test's call driver and its RTP session against local UDP sockets: what the driver
leaves open on failure, the pacing and counting of the session."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from siptool.commands.invite_call import run_invite
from siptool.commands.invite_test import InviteOptions
from siptool.commands.sip_common import SipSettings
from siptool.commands.sip_common import flow_opener as real_opener
from siptool.errors import LocalBindError, TransportError
from siptool.net.resolver import Candidate
from siptool.net.rtp import RtpSession
from siptool.net.sip_transport import SipFlow
from siptool.sip.sdp_offer import parse_codec_list
from siptool.sip.target import parse_target


def test_rtp_bind_failure_cannot_run_and_closes_the_sip_flow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flows: list[SipFlow] = []

    def flow_opener(*args: Any, **kw: Any) -> Any:
        open_flow = real_opener(*args, **kw)

        async def opened(candidate: Candidate) -> SipFlow:
            flow = await open_flow(candidate)
            flows.append(flow)
            return flow

        return opened

    async def no_rtp(cls: Any, host: str, port: int = 0) -> Any:
        raise LocalBindError(f"cannot bind the RTP port {host}:{port}: test")

    # The call opens its flows through invite_call's flow_opener (net/failover.py's loop).
    monkeypatch.setattr("siptool.commands.invite_call.flow_opener", flow_opener)
    monkeypatch.setattr(RtpSession, "open", classmethod(no_rtp))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        target = parse_target(f"sip:x@127.0.0.1:{peer.getsockname()[1]}")
        codecs = tuple(parse_codec_list("PCMU"))
        result = asyncio.run(run_invite(InviteOptions(target, SipSettings(timeout=0.5), codecs)))
    assert result.exit_code == 3 and result.errors[0].code == "bind_error"
    assert len(flows) == 1
    with pytest.raises(TransportError, match="is closed"):
        flows[0].send(b"x")


def test_session_sends_paced_packets_and_counts_an_echo() -> None:
    async def scenario() -> tuple[int, int, float | None, int]:
        loop = asyncio.get_running_loop()

        class Echo(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                self.transport.sendto(data, addr)  # type: ignore[attr-defined]

        echo_transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        session = await RtpSession.open("127.0.0.1")
        port = session.port
        start = loop.time()
        session.start(echo_transport.get_extra_info("sockname")[:2], duration=0.2)
        await asyncio.sleep(0.3)
        await session.stop(0.05)
        elapsed = loop.time() - start
        stats = session.stats()
        session.close()
        echo_transport.close()
        assert elapsed < 1.0
        return stats.sent, stats.received, stats.jitter_ms, port

    sent, received, jitter, port = asyncio.run(scenario())
    assert sent == 10  # 0.2 s of 20 ms packets, then it stops by itself
    assert received == sent
    assert jitter is not None and jitter >= 0
    assert port % 2 == 0  # RFC 3550 §11: RTP on an even port
