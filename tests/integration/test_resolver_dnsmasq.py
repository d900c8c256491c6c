"""RFC 3263 resolution against a real DNS server (dnsmasq) on loopback with local records."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from siptool.net.resolver import resolve_target
from siptool.sip.target import parse_target
from tests.support.dns import dnsmasq

ZONE = [
    # NAPTR example.test: TCP preferred (order 10) over UDP (order 20), RFC 3263 §4.1.
    "--naptr-record=example.test,10,10,S,SIP+D2T,,_sip._tcp.example.test",
    "--naptr-record=example.test,20,10,S,SIP+D2U,,_sip._udp.example.test",
    "--srv-host=_sip._tcp.example.test,proxy1.example.test,5070,10,50",
    "--srv-host=_sip._udp.example.test,proxy2.example.test,5080,10,50",
    "--host-record=proxy1.example.test,127.0.0.11",
    "--host-record=proxy2.example.test,127.0.0.12,::1",
    # No NAPTR: SRV with two priorities for failover.
    "--srv-host=_sip._udp.srv.test,primary.srv.test,5060,10,0",
    "--srv-host=_sip._udp.srv.test,backup.srv.test,5062,20,0",
    "--host-record=primary.srv.test,127.0.0.21",
    "--host-record=backup.srv.test,127.0.0.22",
    # Neither NAPTR nor SRV: A only.
    "--host-record=plain.test,127.0.0.31",
]


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with dnsmasq(tmp_path_factory.mktemp("dnsmasq"), ZONE, "plain.test") as address:
        yield address


def run(
    text: str, dns: str, transport: str | None = None, families=(socket.AF_INET, socket.AF_INET6)
):  # type: ignore[no-untyped-def]
    return asyncio.run(
        resolve_target(parse_target(text, transport), dns_server=dns, families=families, timeout=2)
    )


def test_naptr_orders_tcp_before_udp(dns_server: str) -> None:
    r = run("sip:alice@example.test", dns_server)
    assert [(c.transport, c.hostport) for c in r.candidates] == [
        ("tcp", "127.0.0.11:5070"),
        ("udp", "127.0.0.12:5080"),
        ("udp", "[::1]:5080"),
    ]
    assert r.path[0] == "NAPTR example.test -> 10 10 SIP+D2T _sip._tcp.example.test."


def test_srv_priorities_give_failover_order(dns_server: str) -> None:
    r = run("srv.test", dns_server)
    assert [c.hostport for c in r.candidates] == ["127.0.0.21:5060", "127.0.0.22:5062"]
    assert any(step.startswith("SRV _sip._udp.srv.test -> 10 0 5060") for step in r.path)


def test_plain_name_falls_back_to_a_record_default_port(dns_server: str) -> None:
    r = run("plain.test", dns_server)
    assert [(c.transport, c.hostport) for c in r.candidates] == [("udp", "127.0.0.31:5060")]


def test_ipv6_only_flag_keeps_aaaa(dns_server: str) -> None:
    r = run("sip:alice@example.test;transport=udp", dns_server, families=(socket.AF_INET6,))
    assert [c.hostport for c in r.candidates] == ["[::1]:5080"]


def test_unknown_name_is_a_resolve_error(dns_server: str) -> None:
    from siptool.errors import ResolveError

    with pytest.raises(ResolveError, match=r"cannot resolve nowhere\.test"):
        run("nowhere.test", dns_server)
