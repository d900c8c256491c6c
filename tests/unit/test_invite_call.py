"""invite-test's call driver against a local UDP socket: what it leaves open on failure."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

import siptool.commands.invite_test as invite_test
from siptool.commands.invite_test import InviteOptions, run_invite
from siptool.commands.sip_common import SipSettings
from siptool.errors import LocalBindError, TransportError
from siptool.net.sip_transport import SipFlow, WireLog
from siptool.sip.sdp_offer import parse_codec_list
from siptool.sip.target import parse_target


def test_rtp_bind_failure_cannot_run_and_closes_the_sip_flow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flows: list[SipFlow] = []
    real_connect = invite_test.connect

    async def connect(*args: Any, **kw: Any) -> Any:
        resolution, tried = await real_connect(*args, **kw)
        flows.extend(a for _, a in tried if isinstance(a, SipFlow))
        return resolution, tried

    async def no_rtp(cls: Any, host: str, port: int = 0) -> Any:
        raise LocalBindError(f"cannot bind the RTP port {host}:{port}: test")

    monkeypatch.setattr(invite_test, "connect", connect)
    monkeypatch.setattr(invite_test.RtpSession, "open", classmethod(no_rtp))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        target = parse_target(f"sip:x@127.0.0.1:{peer.getsockname()[1]}")
        options = InviteOptions(target, SipSettings(timeout=0.5), parse_codec_list("PCMU"))
        result = asyncio.run(run_invite(options, WireLog(False)))
    assert result.exit_code == 3 and result.errors[0]["code"] == "bind_error"
    assert len(flows) == 1
    with pytest.raises(TransportError, match="is closed"):
        flows[0].send(b"x")
