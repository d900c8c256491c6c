"""ICE candidates (stun/ice.py): RFC 8445 priority and foundation, RFC 8839 SDP lines, and the
verdict on a gathered set."""

from __future__ import annotations

from siptool.stun.ice import (
    CandidateType,
    Mapping,
    foundation,
    local_preference,
    make_candidate,
    priority,
    verdict,
)


def test_priority_is_rfc_8445_formula() -> None:
    # 2^24 * 126 + 2^8 * 65535 + (256 - 1)
    assert priority(CandidateType.HOST, 65535) == 2130706431
    assert priority(CandidateType.SRFLX, 65535) == (100 << 24) + (65535 << 8) + 255
    assert priority(CandidateType.RELAY, 0) == 255


def test_host_beats_srflx_beats_relay_and_udp_relay_beats_tls() -> None:
    host = make_candidate(CandidateType.HOST, "192.0.2.10", 50000, base="192.0.2.10")
    srflx = make_candidate(
        CandidateType.SRFLX, "198.51.100.7", 61000, base="192.0.2.10", related=("192.0.2.10", 50000)
    )
    relays = {
        proto: make_candidate(
            CandidateType.RELAY,
            "198.51.100.1",
            49152,
            base="192.0.2.10",
            related=("198.51.100.7", 61000),
            server="198.51.100.1:3478",
            relay_protocol=proto,
        )
        for proto in ("udp", "tcp", "tls")
    }
    assert host.priority > srflx.priority > relays["udp"].priority
    assert relays["udp"].priority > relays["tcp"].priority > relays["tls"].priority
    assert local_preference("2001:db8::1") > local_preference("192.0.2.1")


def test_foundation_is_equal_exactly_for_equal_type_base_server_and_transport() -> None:
    a = foundation(CandidateType.SRFLX, "192.0.2.10", "198.51.100.1", "udp")
    assert a == foundation(CandidateType.SRFLX, "192.0.2.10", "198.51.100.1", "udp")
    assert a != foundation(CandidateType.SRFLX, "192.0.2.11", "198.51.100.1", "udp")
    assert a != foundation(CandidateType.RELAY, "192.0.2.10", "198.51.100.1", "udp")
    assert a.isdigit()


def test_sdp_line_has_raddr_and_rport_for_reflexive_candidates() -> None:
    c = make_candidate(
        CandidateType.SRFLX, "198.51.100.7", 61000, base="192.0.2.10", related=("192.0.2.10", 50000)
    )
    fields = c.sdp().split()
    assert fields[0] == f"a=candidate:{c.foundation}"
    assert fields[1:8] == ["1", "udp", str(c.priority), "198.51.100.7", "61000", "typ", "srflx"]
    assert fields[8:] == ["raddr", "192.0.2.10", "rport", "50000"]
    host = make_candidate(CandidateType.HOST, "192.0.2.10", 50000, base="192.0.2.10")
    assert "raddr" not in host.sdp()


BASE = ("192.0.2.10", 50000)


def _seen(port: int, server: str) -> Mapping:
    return Mapping(BASE, server, ("198.51.100.7", port))


def test_two_mappings_of_one_base_are_address_dependent_and_need_the_relay() -> None:
    seen = [_seen(61000, "198.51.100.1:3478"), _seen(61002, "198.51.100.2:3478")]
    without = verdict([], seen, stun_asked=2, turn_asked={"udp": 1})
    assert without.mapping == "address-dependent"
    assert "no working relay: calls to peers behind NAT will fail" in " ".join(without.findings)
    relay = make_candidate(
        CandidateType.RELAY,
        "198.51.100.1",
        49152,
        base="192.0.2.10",
        related=("198.51.100.7", 61000),
        server="198.51.100.1:3478",
        relay_protocol="udp",
    )
    with_relay = verdict([relay], seen, stun_asked=2, turn_asked={"udp": 1})
    assert with_relay.relays == {"udp": True}
    assert "works over udp" in " ".join(with_relay.findings)


def test_one_mapping_seen_by_two_servers_is_endpoint_independent() -> None:
    seen = [_seen(61000, "198.51.100.1:3478"), _seen(61000, "198.51.100.2:3478")]
    assert verdict([], seen, 2, {}).mapping == "endpoint-independent"


def test_mappings_equal_to_their_base_mean_no_nat() -> None:
    seen = [Mapping(BASE, "198.51.100.1:3478", BASE)]
    found = verdict([], seen, 1, {})
    assert found.mapping == "none" and "no NAT" in found.findings[0]


def test_no_srflx_says_udp_may_be_blocked() -> None:
    host = make_candidate(CandidateType.HOST, "192.0.2.10", 50000, base="192.0.2.10")
    found = verdict([host], [], stun_asked=1, turn_asked={"tcp": 1})
    assert found.mapping == "unknown"
    assert any("no STUN server answered" in f for f in found.findings)
    assert found.relays == {"tcp": False}
