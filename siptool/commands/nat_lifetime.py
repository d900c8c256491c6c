"""`siptool nat-type --lifetime`: how long an idle UDP binding lives (RFC 5780 §4.6).

One socket per probe time (1, 2, 4, 8 ... s up to --lifetime-max), each with a fresh binding
toward the server; at its time another socket asks the server to answer to that binding's port
(RESPONSE-PORT, RFC 5780 §7.5).  The first binding that no longer gets the answer ends the
search: the lifetime lies between its time and the previous one's.  The run takes about the
lifetime, never more than the maximum.

Decisions:

* Each question is one STUN transaction on the engine, sent from the asking socket and answered
  on the binding's socket (``UdpEndpoint.request(receive_on=...)``), its RTO a quarter of the
  wait: it goes out at 0, 1/4 and 3/4 of the wait, which ends it.
* An answer that reaches the asking socket instead means the server ignores RESPONSE-PORT:
  that is reported, never taken for an expired binding.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from siptool.addr import split_address
from siptool.net.stun_transport import Schedule, StunLog, UdpEndpoint
from siptool.stun.message import binding_request

Address = tuple[str, int]

LIFETIME_STEPS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0)


@dataclass
class Lifetime:
    alive_s: float | None = None  # the longest wait after which the binding still worked
    expired_s: float | None = None  # the shortest wait after which it no longer did
    max_s: float = 0.0
    error: str | None = None

    @property
    def estimate_s(self) -> float | None:
        if self.expired_s is None:
            return None
        return self.expired_s if self.alive_s is None else (self.alive_s + self.expired_s) / 2

    @property
    def outlived_search(self) -> bool:
        """Every binding still worked at the longest probe time."""
        return self.expired_s is None and self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_s": self.alive_s,
            "max_s": self.expired_s,
            "estimate_s": self.estimate_s,
            "search_max_s": self.max_s,
            "outlived_search": self.outlived_search,
            "error": self.error,
        }


@dataclass(frozen=True)
class LifetimeSearch:
    """Where and how long to search."""

    primary: Address
    family: int
    search_max: float
    wait: float  # for each answer: the filter wait
    timeout: float  # for the bindings' first answers
    local_address: str | None = None


async def binding_lifetime(search: LifetimeSearch, log: StunLog) -> Lifetime:
    """The search; every socket it opened is closed when it returns or is cancelled."""
    steps = [s for s in LIFETIME_STEPS if s < search.search_max] + [search.search_max]
    result = Lifetime(max_s=search.search_max)
    sockets: list[UdpEndpoint] = []
    asker = await UdpEndpoint.open(search.family, local_address=search.local_address, log=log)
    try:
        for _ in steps:
            sockets.append(
                await UdpEndpoint.open(search.family, local_address=search.local_address, log=log)
            )
        await _probe_steps(search, asker, steps, sockets, result)
        return result
    finally:
        asker.close()
        for endpoint in sockets:
            endpoint.close()


async def _probe_steps(
    search: LifetimeSearch,
    asker: UdpEndpoint,
    steps: list[float],
    sockets: list[UdpEndpoint],
    result: Lifetime,
) -> None:
    schedule = Schedule(cap=search.timeout)
    created = await asyncio.gather(
        *(s.request(search.primary, *_swap(binding_request()), schedule) for s in sockets)
    )
    start = time.monotonic()
    if not all(e.ok for e in created):
        result.error = "a binding for the lifetime test got no answer"
        return
    for step, endpoint, exchange in zip(steps, sockets, created, strict=True):
        assert exchange.response is not None
        mapped = exchange.response.reflexive_address
        if mapped is None:
            result.error = "the server's answer carries no mapped address"
            return
        await asyncio.sleep(max(0.0, start + step - time.monotonic()))
        bound = await _still_bound(asker, search.primary, endpoint, mapped, search.wait)
        if bound is None:
            result.error = "the server ignores RESPONSE-PORT (RFC 5780 §7.5)"
            return
        if not bound:
            result.expired_s = step
            return
        result.alive_s = step
        endpoint.close()


async def _still_bound(
    asker: UdpEndpoint, primary: Address, endpoint: UdpEndpoint, mapped: str, wait: float
) -> bool | None:
    """Whether the server's answer to ``asker``, sent to ``mapped`` (RESPONSE-PORT), reached
    ``endpoint`` within ``wait``; None when it came to ``asker`` instead."""
    tid, wire = binding_request(response_port=split_address(mapped)[1])
    got = False
    if wait > 0:
        exchange = await asker.request(
            primary,
            wire,
            tid,
            Schedule(cap=wait, rto=wait / 4),
            accept_any_source=True,
            receive_on=endpoint,
        )
        got = exchange.response is not None
    if not got and tid in {t for t, _ in asker.late}:
        return None
    return got


def _swap(pair: tuple[bytes, bytes]) -> tuple[bytes, bytes]:
    tid, wire = pair
    return wire, tid
