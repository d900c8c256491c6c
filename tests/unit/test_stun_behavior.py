"""The RFC 5780 / RFC 3489 decision logic over probe outcomes (no sockets)."""

from __future__ import annotations

import pytest

from siptool.stun.behavior import (
    NO_ANSWER,
    Classic,
    FilteringObservations,
    Mapping,
    MappingObservations,
    Probe,
    decide,
)

SERVER = "198.51.100.2:3478"
OTHER = "198.51.100.3:3479"
LOCAL = "10.0.0.2:40000"
PUBLIC = "203.0.113.1:40000"


def first(mapped: str, other: str | None = OTHER) -> Probe:
    return Probe(True, mapped=mapped, source=SERVER, response_origin=SERVER, other_address=other)


def answer(mapped: str, source: str) -> Probe:
    return Probe(True, mapped=mapped, source=source, response_origin=source)


def mapping(t2: str | None, t3: str | None, t1: str = PUBLIC) -> MappingObservations:
    return MappingObservations(
        LOCAL,
        SERVER,
        first(t1),
        answer(t2, "198.51.100.3:3478") if t2 else NO_ANSWER,
        answer(t3, OTHER) if t3 else NO_ANSWER,
    )


def filtering(t2: bool, t3: bool, mapped: str = "203.0.113.1:40001") -> FilteringObservations:
    return FilteringObservations(
        SERVER,
        first(mapped),
        answer(mapped, OTHER) if t2 else NO_ANSWER,
        answer(mapped, "198.51.100.2:3479") if t3 else NO_ANSWER,
    )


EIM = ("203.0.113.1:40000", "203.0.113.1:40000")
ADM = ("203.0.113.1:40002", "203.0.113.1:40002")
APDM = ("203.0.113.1:40002", "203.0.113.1:40003")


@pytest.mark.parametrize(
    ("mapped", "filters", "expected"),
    [
        (EIM, (True, True), ("endpoint-independent", "endpoint-independent", "full-cone")),
        (EIM, (False, True), ("endpoint-independent", "address-dependent", "restricted-cone")),
        (
            EIM,
            (False, False),
            ("endpoint-independent", "address-and-port-dependent", "port-restricted-cone"),
        ),
        (ADM, (False, False), ("address-dependent", "address-and-port-dependent", "symmetric")),
        (APDM, (True, True), ("address-and-port-dependent", "endpoint-independent", "symmetric")),
    ],
)
def test_rfc5780_behaviour_gives_the_rfc3489_label(
    mapped: tuple[str, str], filters: tuple[bool, bool], expected: tuple[str, str, str]
) -> None:
    verdict = decide(mapping(*mapped), filtering(*filters))
    assert (verdict.mapping.value, verdict.filtering.value, verdict.classic.value) == expected
    assert verdict.reasons == []
    assert verdict.mapped == PUBLIC
    assert verdict.advice


def test_no_nat_and_no_filter_is_open_internet() -> None:
    obs = MappingObservations(LOCAL, SERVER, first(LOCAL))
    verdict = decide(obs, filtering(True, True, mapped="10.0.0.2:40001"))
    assert (verdict.mapping, verdict.filtering) == (Mapping.NONE, Mapping.NONE)
    assert verdict.classic is Classic.OPEN_INTERNET
    assert verdict.port_preserved is True


def test_no_nat_with_a_stateful_firewall_is_a_symmetric_udp_firewall() -> None:
    obs = MappingObservations(LOCAL, SERVER, first(LOCAL))
    verdict = decide(obs, filtering(False, False, mapped="10.0.0.2:40001"))
    assert verdict.filtering is Mapping.ADDRESS_AND_PORT_DEPENDENT
    assert verdict.classic is Classic.SYMMETRIC_UDP_FIREWALL


def test_no_answer_at_all_is_udp_blocked() -> None:
    verdict = decide(
        MappingObservations(LOCAL, SERVER, NO_ANSWER), FilteringObservations(SERVER, NO_ANSWER)
    )
    assert verdict.classic is Classic.UDP_BLOCKED
    assert (verdict.mapping, verdict.filtering) == (Mapping.UNKNOWN, Mapping.UNKNOWN)
    assert "TCP" in verdict.advice[0]


def test_a_server_without_other_address_is_inconclusive_not_a_guess() -> None:
    verdict = decide(
        MappingObservations(LOCAL, SERVER, first(PUBLIC, other=None)),
        FilteringObservations(SERVER, first(PUBLIC, other=None)),
    )
    assert verdict.classic is Classic.INCONCLUSIVE
    assert verdict.mapping is Mapping.UNKNOWN and verdict.filtering is Mapping.UNKNOWN
    assert any("OTHER-ADDRESS" in r for r in verdict.reasons)


def test_a_server_with_one_ip_is_inconclusive_for_a_cone() -> None:
    one_ip_other = "198.51.100.2:3479"
    verdict = decide(
        MappingObservations(
            LOCAL, SERVER, first(PUBLIC, one_ip_other), None, answer(PUBLIC, one_ip_other)
        ),
        FilteringObservations(
            SERVER, first(PUBLIC, one_ip_other), None, answer(PUBLIC, one_ip_other)
        ),
    )
    assert verdict.classic is Classic.INCONCLUSIVE
    assert any("second IP" in r for r in verdict.reasons)


def test_a_server_with_one_ip_still_shows_a_port_dependent_mapping_and_filter() -> None:
    one_ip_other = "198.51.100.2:3479"
    verdict = decide(
        MappingObservations(
            LOCAL, SERVER, first(PUBLIC, one_ip_other), None, answer(APDM[1], one_ip_other)
        ),
        FilteringObservations(SERVER, first(PUBLIC, one_ip_other), None, NO_ANSWER),
    )
    assert verdict.mapping is Mapping.ADDRESS_AND_PORT_DEPENDENT
    assert verdict.filtering is Mapping.ADDRESS_AND_PORT_DEPENDENT
    assert verdict.classic is Classic.SYMMETRIC


def test_a_change_request_answered_from_the_primary_address_is_not_trusted() -> None:
    lying = FilteringObservations(
        SERVER, first(PUBLIC), answer(PUBLIC, SERVER), answer(PUBLIC, SERVER)
    )
    verdict = decide(mapping(*EIM), lying)
    assert verdict.filtering is Mapping.UNKNOWN
    assert verdict.classic is Classic.INCONCLUSIVE
    assert any("ignores CHANGE-REQUEST" in r for r in verdict.reasons)


def test_response_origin_must_agree_with_the_change_too() -> None:
    # Source looks right but the server says it sent from its primary address.
    probe = Probe(True, mapped=PUBLIC, source=OTHER, response_origin=SERVER)
    verdict = decide(mapping(*EIM), FilteringObservations(SERVER, first(PUBLIC), probe, NO_ANSWER))
    assert verdict.filtering is Mapping.UNKNOWN


def test_an_error_response_to_change_request_is_inconclusive() -> None:
    rejected = Probe(True, source=SERVER, error="420 Unknown Attribute")
    verdict = decide(mapping(*EIM), FilteringObservations(SERVER, first(PUBLIC), rejected, None))
    assert verdict.filtering is Mapping.UNKNOWN
    assert any("420" in r for r in verdict.reasons)


def test_a_lost_test3_keeps_the_mapping_unknown_but_the_label_symmetric() -> None:
    verdict = decide(mapping(ADM[0], None), filtering(False, False))
    assert verdict.mapping is Mapping.UNKNOWN
    assert verdict.classic is Classic.SYMMETRIC


def test_no_answer_from_the_other_address_leaves_mapping_unknown() -> None:
    verdict = decide(mapping(None, None), filtering(False, False))
    assert verdict.mapping is Mapping.UNKNOWN
    assert verdict.classic is Classic.INCONCLUSIVE
    assert any("test II" in r for r in verdict.reasons)


def test_port_preservation_and_advice_for_a_port_changing_symmetric_nat() -> None:
    t1 = "203.0.113.1:51000"
    verdict = decide(
        mapping("203.0.113.1:51001", "203.0.113.1:51002", t1=t1),
        filtering(False, False),
        hairpinning=False,
        lifetime_s=30,
    )
    assert verdict.port_preserved is False
    text = " ".join(verdict.advice)
    assert "TURN" in text and "hairpinning" in text and "rport" in text and "30 s" in text
    assert "source port" in text


def test_filtering_alone_is_decided_on_its_own_socket_observations() -> None:
    # The mapping socket saw no NAT of the port (port preserved) yet the filtering socket's
    # own answers decide the filter.
    verdict = decide(mapping(*EIM), filtering(False, True))
    assert verdict.filtering is Mapping.ADDRESS_DEPENDENT


def test_a_change_request_answered_only_from_a_stray_address_is_unknown_not_a_filter() -> None:
    # Test II's answer came from a third address (not OTHER-ADDRESS): the caller ignored it,
    # and the filter must not be taken to have dropped it.
    stray = Probe(False, stray="198.51.100.9:5555")
    verdict = decide(mapping(*EIM), FilteringObservations(SERVER, first(PUBLIC), stray, stray))
    assert verdict.filtering is Mapping.UNKNOWN
    assert verdict.classic is Classic.INCONCLUSIVE
    assert any("198.51.100.9:5555" in r and OTHER in r for r in verdict.reasons)
    # Test III's alone: the expected source is the primary IP with the other port.
    verdict = decide(mapping(*EIM), FilteringObservations(SERVER, first(PUBLIC), NO_ANSWER, stray))
    assert verdict.filtering is Mapping.UNKNOWN
    assert any("198.51.100.2:3479" in r for r in verdict.reasons)


def test_an_other_address_of_another_family_is_inconclusive() -> None:
    other6 = "[2001:db8::3]:3479"
    verdict = decide(
        MappingObservations(LOCAL, SERVER, first(PUBLIC, other6)),
        FilteringObservations(SERVER, first(PUBLIC, other6)),
    )
    assert verdict.classic is Classic.INCONCLUSIVE
    assert any("address family" in r for r in verdict.reasons)


def test_an_answer_without_a_mapped_address_is_not_called_no_answer() -> None:
    bare = Probe(True, source=SERVER, other_address=OTHER)
    verdict = decide(MappingObservations(LOCAL, SERVER, bare), filtering(False, False))
    assert verdict.mapping is Mapping.UNKNOWN and verdict.classic is Classic.INCONCLUSIVE
    assert any("XOR-MAPPED-ADDRESS" in r for r in verdict.reasons)
    assert not any("no answer" in r for r in verdict.reasons)
