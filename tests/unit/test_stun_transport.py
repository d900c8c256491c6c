"""siptool.net.stun_transport on loopback sockets: the RFC 8489 §6.2.2 Ti bound over TCP,
answers from unexpected addresses, and a connect failure that is not a bind failure."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from siptool.errors import TransportError
from siptool.net import stun_transport
from siptool.net.stun_transport import (
    LocalBindError,
    Schedule,
    StreamEndpoint,
    UdpEndpoint,
)
from siptool.stun.message import binding_request, binding_response, parse_stun


def test_tcp_gives_up_at_ti_even_when_the_timeout_is_longer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # --timeout caps the wait; it must not stretch it past Ti (39.5 s, here 0.3 s).
    monkeypatch.setattr(stun_transport, "DEFAULT_TI", 0.3)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # the kernel completes the handshake; nobody ever answers

    async def run() -> tuple[str | None, float]:
        endpoint = await StreamEndpoint.open("tcp", listener.getsockname(), timeout=2)
        try:
            tid, wire = binding_request()
            started = time.monotonic()
            exchange = await asyncio.wait_for(
                endpoint.request(endpoint.remote, wire, tid, Schedule(cap=100.0)), 5
            )
            return exchange.error, time.monotonic() - started
        finally:
            endpoint.close()

    try:
        error, elapsed = asyncio.run(run())
    finally:
        listener.close()
    assert error == "timeout"
    assert elapsed < 2


def test_an_answer_from_an_address_not_accepted_is_kept_as_a_stray() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    elsewhere = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    elsewhere.bind(("127.0.0.1", 0))
    server.settimeout(2)

    async def run() -> stun_transport.Exchange:
        endpoint = await UdpEndpoint.open(socket.AF_INET, local_address="127.0.0.1")
        try:
            tid, wire = binding_request()
            task = asyncio.ensure_future(
                endpoint.request(server.getsockname(), wire, tid, Schedule(cap=0.5))
            )
            data, peer = await asyncio.get_running_loop().run_in_executor(
                None, server.recvfrom, 2048
            )
            elsewhere.sendto(binding_response(parse_stun(data), peer), peer)
            return await task
        finally:
            endpoint.close()

    stray = elsewhere.getsockname()
    try:
        exchange = asyncio.run(run())
    finally:
        server.close()
        elsewhere.close()
    assert exchange.response is None and exchange.error == "timeout"
    assert exchange.strays == [stray]


def test_a_destination_that_cannot_be_connected_to_is_not_a_bind_error() -> None:
    async def run() -> None:
        await UdpEndpoint.open(socket.AF_INET, connect_to=("::1", 3478))

    with pytest.raises(TransportError) as caught:
        asyncio.run(run())
    assert not isinstance(caught.value, LocalBindError)
