"""RFC 3263 decisions of the resolver, over an in-memory zone (the real-DNS test is
tests/integration/test_resolver_dnsmasq.py)."""

from __future__ import annotations

import asyncio
import random
import socket
from collections import Counter

import pytest

from siptool.errors import ResolveError
from siptool.net.resolver import NaptrRecord, Resolver, SrvRecord, order_srv
from siptool.sip.target import parse_target


class Zone:
    def __init__(self) -> None:
        self.naptrs: dict[str, list[NaptrRecord]] = {}
        self.srvs: dict[str, list[SrvRecord]] = {}
        self.a: dict[str, list[str]] = {}
        self.aaaa: dict[str, list[str]] = {}
        self.asked: list[str] = []

    async def naptr(self, name: str) -> list[NaptrRecord]:
        self.asked.append(f"NAPTR {name}")
        return self.naptrs.get(name, [])

    async def srv(self, name: str) -> list[SrvRecord]:
        self.asked.append(f"SRV {name}")
        return self.srvs.get(name, [])

    async def addresses(self, name: str, family: int) -> list[str]:
        kind = "A" if family == socket.AF_INET else "AAAA"
        self.asked.append(f"{kind} {name}")
        return (self.a if family == socket.AF_INET else self.aaaa).get(name, [])


def resolve(zone: Zone, text: str, transport: str | None = None, **kw: object):  # type: ignore[no-untyped-def]
    resolver = Resolver(zone, hosts={"pbx.local": ["192.0.2.9"]}, rng=random.Random(1), **kw)  # type: ignore[arg-type]
    return asyncio.run(resolver.resolve(parse_target(text, transport)))


def test_numeric_host_asks_no_dns() -> None:
    zone = Zone()
    r = resolve(zone, "sip:127.0.0.1:5070;transport=tcp")
    assert [c.hostport for c in r.candidates] == ["127.0.0.1:5070"]
    assert r.candidates[0].transport == "tcp" and zone.asked == []


def test_sips_numeric_defaults_to_tls_5061() -> None:
    r = resolve(Zone(), "sips:[::1]")
    assert (r.candidates[0].transport, r.candidates[0].port) == ("tls", 5061)


def test_hosts_file_name_skips_dns() -> None:
    zone = Zone()
    r = resolve(zone, "pbx.local:5080")
    assert r.candidates[0].hostport == "192.0.2.9:5080" and zone.asked == []


def test_explicit_port_means_address_records_only() -> None:
    zone = Zone()
    zone.a["example.test"] = ["192.0.2.1"]
    r = resolve(zone, "example.test:5099")
    assert zone.asked == ["A example.test", "AAAA example.test"]
    assert r.candidates[0].hostport == "192.0.2.1:5099"


def test_naptr_then_srv_then_a_in_order_and_preference() -> None:
    zone = Zone()
    zone.naptrs["example.test"] = [
        NaptrRecord(20, 10, "s", "SIP+D2U", "_sip._udp.example.test."),
        NaptrRecord(10, 10, "s", "SIP+D2T", "_sip._tcp.example.test."),
        NaptrRecord(5, 10, "s", "E2U+sip", "ignored.example.test."),
    ]
    zone.srvs["_sip._tcp.example.test."] = [SrvRecord(10, 0, 5070, "tcp1.example.test.")]
    zone.srvs["_sip._udp.example.test."] = [SrvRecord(10, 0, 5080, "udp1.example.test.")]
    zone.a["tcp1.example.test."] = ["192.0.2.10"]
    zone.a["udp1.example.test."] = ["192.0.2.11"]
    r = resolve(zone, "sip:alice@example.test")
    assert [(c.transport, c.hostport) for c in r.candidates] == [
        ("tcp", "192.0.2.10:5070"),
        ("udp", "192.0.2.11:5080"),
    ]
    assert r.path[0].startswith("NAPTR example.test -> 10 10 SIP+D2T")


def test_no_naptr_tries_srv_for_each_transport_then_a() -> None:
    zone = Zone()
    zone.a["example.test"] = ["192.0.2.1"]
    r = resolve(zone, "example.test")
    assert zone.asked[:4] == [
        "NAPTR example.test",
        "SRV _sip._udp.example.test",
        "SRV _sip._tcp.example.test",
        "SRV _sips._tcp.example.test",
    ]
    assert [(c.transport, c.hostport) for c in r.candidates] == [("udp", "192.0.2.1:5060")]


def test_transport_flag_goes_straight_to_its_srv() -> None:
    zone = Zone()
    zone.srvs["_sips._tcp.example.test"] = [SrvRecord(1, 1, 5061, "tls.example.test.")]
    zone.a["tls.example.test."] = ["192.0.2.5"]
    r = resolve(zone, "example.test", "tls")
    assert zone.asked[0] == "SRV _sips._tcp.example.test"
    assert r.candidates[0].hostname == "tls.example.test"


def test_srv_priority_orders_failover_candidates() -> None:
    zone = Zone()
    zone.srvs["_sip._udp.example.test"] = [
        SrvRecord(20, 100, 5060, "backup.example.test."),
        SrvRecord(10, 100, 5060, "primary.example.test."),
    ]
    zone.a["backup.example.test."] = ["192.0.2.2"]
    zone.a["primary.example.test."] = ["192.0.2.1"]
    r = resolve(zone, "example.test", "udp")
    assert [c.address for c in r.candidates] == ["192.0.2.1", "192.0.2.2"]


def test_srv_dot_target_means_no_service() -> None:
    zone = Zone()
    zone.srvs["_sip._udp.example.test"] = [SrvRecord(0, 0, 0, ".")]
    zone.a["example.test"] = ["192.0.2.1"]
    r = resolve(zone, "example.test", "udp")
    assert "service not offered" in r.path[0]
    assert r.candidates[0].hostport == "192.0.2.1:5060"


def test_ipv4_only_flag_drops_aaaa() -> None:
    zone = Zone()
    zone.aaaa["example.test"] = ["2001:db8::1"]
    with pytest.raises(ResolveError, match=r"cannot resolve example\.test"):
        resolve(zone, "example.test:5060", families=(socket.AF_INET,))


def test_srv_weights_share_load_in_proportion() -> None:
    records = [SrvRecord(1, 90, 1, "heavy."), SrvRecord(1, 10, 1, "light.")]
    rng = random.Random(7)
    firsts = Counter(order_srv(records, rng)[0].target for _ in range(2000))
    assert 0.85 < firsts["heavy."] / 2000 < 0.95
