"""siptool.net.stun_transport on loopback sockets: the RFC 8489 §6.2.2 Ti bound over TCP,
answers from unexpected addresses, a connect failure that is not a bind failure, ICMP errors on
unconnected sockets, rejected answers (wrong transaction id, bad FINGERPRINT, garbage) and late
ones, and the per-transaction counters (ICMP error parsing and the -v log:
tests/unit/test_stun_transport_pure.py)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from siptool.errors import LocalBindError, TransportError
from siptool.net import stun_transport
from siptool.net.settings import LocalSettings
from siptool.net.stun_transport import (
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
        endpoint = await StreamEndpoint.open(
            "tcp", listener.getsockname(), settings=LocalSettings(timeout=2)
        )
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


# ----------------------------------------- ICMP, rejected answers, counters, -v (#8)


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_icmp_port_unreachable_ends_the_exchange_at_once_on_an_unconnected_socket() -> None:
    port = _closed_port()

    async def run() -> stun_transport.Exchange:
        endpoint = await UdpEndpoint.open(socket.AF_INET)
        try:
            assert not endpoint.connected
            tid, wire = binding_request()
            return await endpoint.request(("127.0.0.1", port), wire, tid, Schedule(cap=30.0))
        finally:
            endpoint.close()

    exchange = asyncio.run(asyncio.wait_for(run(), 10))
    assert exchange.unreachable == "port unreachable" == exchange.error
    assert exchange.unreachable_from == "127.0.0.1"
    assert exchange.sends == 1


def _serve_once(server: socket.socket, reply: Callable[[bytes], bytes]) -> threading.Thread:
    def serve() -> None:
        server.settimeout(3)
        with contextlib.suppress(OSError):
            data, peer = server.recvfrom(2048)
            server.sendto(reply(data), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def _exchange_with(reply: Callable[[bytes], bytes], cap: float = 0.4) -> stun_transport.Exchange:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    thread = _serve_once(server, reply)

    async def run() -> stun_transport.Exchange:
        endpoint = await UdpEndpoint.open(socket.AF_INET, local_address="127.0.0.1")
        try:
            tid, wire = binding_request(fingerprint=True)
            return await endpoint.request(server.getsockname(), wire, tid, Schedule(cap=cap))
        finally:
            endpoint.close()

    try:
        return asyncio.run(run())
    finally:
        thread.join(timeout=5)
        server.close()


def _response(data: bytes) -> bytes:
    return binding_response(parse_stun(data), ("192.0.2.1", 4000))


def test_a_response_with_another_transaction_id_is_a_rejected_answer() -> None:
    def wrong_tid(data: bytes) -> bytes:
        flipped = bytes(b ^ 0xFF for b in data[8:20])
        return _response(data[:8] + flipped + data[20:])

    exchange = _exchange_with(wrong_tid)
    assert exchange.response is None and exchange.error == "timeout"
    assert exchange.rejected == ["wrong transaction id"]


def test_a_bad_fingerprint_is_a_rejected_answer() -> None:
    def bad(data: bytes) -> bytes:
        good = _response(data)
        return good[:-1] + bytes((good[-1] ^ 1,))

    exchange = _exchange_with(bad)
    assert exchange.response is None and exchange.rejected == ["bad FINGERPRINT"]


def test_garbage_from_the_server_is_a_rejected_answer() -> None:
    exchange = _exchange_with(lambda data: b"\xffnot stun at all")
    assert exchange.rejected and exchange.rejected[0].startswith("not a valid STUN message")


def test_a_late_answer_to_an_earlier_transaction_is_not_a_rejection() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(3)

    async def run() -> tuple[stun_transport.Exchange, stun_transport.Exchange, Any]:
        endpoint = await UdpEndpoint.open(socket.AF_INET, local_address="127.0.0.1")
        loop = asyncio.get_running_loop()
        try:
            tid1, wire1 = binding_request()
            first = await endpoint.request(
                server.getsockname(), wire1, tid1, Schedule(cap=0.05, rto=1.0)
            )
            data, peer = await loop.run_in_executor(None, server.recvfrom, 2048)
            tid2, wire2 = binding_request()
            task = asyncio.ensure_future(
                endpoint.request(server.getsockname(), wire2, tid2, Schedule(cap=0.3, rto=1.0))
            )
            await asyncio.sleep(0.05)
            server.sendto(_response(data), peer)  # the answer to the first, too late
            return first, await task, endpoint
        finally:
            endpoint.close()

    try:
        first, second, endpoint = asyncio.run(run())
    finally:
        server.close()
    assert first.error == "timeout" and second.error == "timeout"
    assert second.rejected == []
    assert endpoint.responses[first.transaction_id] == 1  # counted as a late response
    assert endpoint.sent[first.transaction_id] == 1 and endpoint.sent[second.transaction_id] == 1
