"""The RFC 5780 / RFC 3489 decision logic over probe outcomes (no sockets)."""

from __future__ import annotations

import pytest

from siptool.stun.behavior import (
    NO_ANSWER,
    Classic,
    FilteringObservations,
    Mapping,
    MappingObservations,
    NatVerdict,
    PathLoss,
    Probe,
    decide,
    mapped_address_problem,
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


# ------------------------------------------ silence, ICMP, rejected answers, loss (#8)


def silent(sends: int = 2, **fields: object) -> Probe:
    return Probe(False, sends=sends, **fields)  # type: ignore[arg-type]


def unanswered(mapping_t1: Probe, filtering_t1: Probe | None = None) -> NatVerdict:
    return decide(
        MappingObservations(LOCAL, SERVER, mapping_t1),
        FilteringObservations(SERVER, filtering_t1 or mapping_t1),
    )


def test_silence_on_every_probe_is_udp_blocked_with_turn_advice() -> None:
    verdict = unanswered(silent(3))
    assert verdict.classic is Classic.UDP_BLOCKED and verdict.failure == "timeout"
    assert verdict.reasons == ["no answer to any Binding request over UDP (6 requests)"]
    assert "TURN" in verdict.advice[0]


def test_port_unreachable_from_the_server_is_no_server_not_udp_blocked() -> None:
    icmp = silent(1, unreachable="port unreachable", unreachable_from="198.51.100.2")
    verdict = unanswered(icmp)
    assert verdict.classic is Classic.INCONCLUSIVE and verdict.failure == "unreachable"
    assert verdict.reasons == [f"no STUN server at {SERVER}: port unreachable"]
    assert not any("TURN" in a for a in verdict.advice)


def test_port_unreachable_from_a_firewall_on_the_path_is_udp_blocked_naming_it() -> None:
    icmp = silent(1, unreachable="port unreachable", unreachable_from="10.0.0.1")
    verdict = unanswered(icmp)
    assert verdict.classic is Classic.UDP_BLOCKED and verdict.failure == "unreachable"
    assert "10.0.0.1" in verdict.reasons[0] and "refused on the path" in verdict.reasons[0]


def test_host_unreachable_is_inconclusive_with_the_reason() -> None:
    icmp = silent(1, unreachable="host unreachable", unreachable_from="10.0.0.1")
    verdict = unanswered(icmp)
    assert verdict.classic is Classic.INCONCLUSIVE
    assert verdict.reasons == [f"{SERVER} cannot be reached: host unreachable (ICMP from 10.0.0.1)"]


@pytest.mark.parametrize("why", ["bad FINGERPRINT", "wrong transaction id"])
def test_rejected_answers_are_inconclusive_with_the_reason_not_udp_blocked(why: str) -> None:
    verdict = unanswered(silent(3, rejected=(why,)), silent(3))
    assert verdict.classic is Classic.INCONCLUSIVE and verdict.failure == "rejected"
    assert verdict.reasons == [f"answers rejected: {why}"]
    assert not any("TURN" in a for a in verdict.advice)


def test_one_socket_rejected_the_other_answered_names_the_rejection() -> None:
    verdict = decide(
        MappingObservations(LOCAL, SERVER, silent(3, rejected=("bad FINGERPRINT",))),
        filtering(False, False),
    )
    assert verdict.classic is Classic.INCONCLUSIVE and verdict.failure is None
    assert "mapping: test I: answers rejected: bad FINGERPRINT" in verdict.reasons


LOSSY = PathLoss(sent=10, unanswered=5)


def lossy_filtering(sends: int) -> FilteringObservations:
    return FilteringObservations(SERVER, first(PUBLIC), silent(sends), silent(sends))


def test_a_silence_that_loss_may_explain_is_not_taken_for_a_filter() -> None:
    verdict = decide(mapping(*EIM), lossy_filtering(2), loss=LOSSY)
    assert verdict.filtering is Mapping.UNKNOWN
    assert verdict.classic is Classic.INCONCLUSIVE
    assert any(
        "lossy path: 5 of 10 probes unanswered" in r and "test II" in r for r in verdict.reasons
    ), verdict.reasons


def test_a_silence_of_enough_requests_is_a_filter_even_on_a_lossy_path() -> None:
    # 0.5 ** 14 is far below LOSS_RISK: loss cannot explain fourteen silent requests.
    verdict = decide(mapping(*EIM), lossy_filtering(14), loss=LOSSY)
    assert verdict.classic is Classic.PORT_RESTRICTED_CONE
    assert verdict.reasons == []


def test_without_loss_seen_a_short_silence_is_a_filter() -> None:
    verdict = decide(mapping(*EIM), lossy_filtering(1), loss=PathLoss(sent=4, unanswered=0))
    assert verdict.classic is Classic.PORT_RESTRICTED_CONE


def test_answers_prove_what_they_show_whatever_the_loss() -> None:
    verdict = decide(mapping(*EIM), filtering(True, True), loss=PathLoss(20, 15))
    assert verdict.classic is Classic.FULL_CONE


def test_a_lost_test3_after_a_silent_test2_is_still_unknown_on_a_lossy_path() -> None:
    obs = FilteringObservations(SERVER, first(PUBLIC), silent(14), silent(2))
    verdict = decide(mapping(*EIM), obs, loss=LOSSY)
    assert verdict.filtering is Mapping.UNKNOWN
    assert any("test III" in r and "lossy path" in r for r in verdict.reasons)


def test_a_silent_hairpin_test_on_a_lossy_path_is_unknown_but_icmp_is_an_answer() -> None:
    verdict = decide(
        mapping(*EIM), lossy_filtering(14), hairpinning=False, hairpin_sends=3, loss=LOSSY
    )
    assert verdict.hairpinning is None
    assert any(r.startswith("hairpinning: lossy path: 5 of 10") for r in verdict.reasons)
    refused = decide(
        mapping(*EIM), lossy_filtering(14), hairpinning=False, hairpin_sends=0, loss=LOSSY
    )
    assert refused.hairpinning is False and refused.reasons == []


def test_an_inconclusive_verdict_on_a_lossy_path_says_so() -> None:
    verdict = decide(MappingObservations(LOCAL, SERVER, silent(3)), lossy_filtering(14),
                     loss=LOSSY)  # fmt: skip
    assert verdict.classic is Classic.INCONCLUSIVE
    assert LOSSY.text in verdict.reasons


def test_path_loss_estimate_never_reaches_zero_or_one() -> None:
    assert 0 < PathLoss(3, 0).estimate < PathLoss(3, 3).estimate < 1
    assert not PathLoss(3, 0).lossy and PathLoss(3, 1).lossy
    assert PathLoss(10, 5).explains(2) and not PathLoss(10, 5).explains(14)


@pytest.mark.parametrize(
    ("mapped", "why"),
    [
        ("0.0.0.0:0", "unspecified address"),
        ("0.1.2.3:4000", "unspecified address"),
        ("203.0.113.1:0", "port 0"),
        ("255.255.255.255:4000", "broadcast address"),
        ("239.1.1.1:4000", "multicast address"),
        ("[2001:db8::1]:4000", "not in the address family"),
        ("203.0.113.1:4000", None),
    ],
)
def test_mapped_address_problem(mapped: str, why: str | None) -> None:
    problem = mapped_address_problem(mapped, SERVER)
    if why is None:
        assert problem is None
    else:
        assert problem is not None and why in problem and mapped in problem
    assert mapped_address_problem("[::]:4000", "[2001:db8::2]:3478") is not None


def test_an_unusable_mapped_address_from_test_i_is_no_mapping() -> None:
    verdict = decide(
        MappingObservations(LOCAL, SERVER, first("0.0.0.0:0")), filtering(False, False)
    )
    assert verdict.mapping is Mapping.UNKNOWN and verdict.classic is Classic.INCONCLUSIVE
    assert verdict.mapped is None and verdict.port_preserved is None
    assert any("unusable mapped address 0.0.0.0:0" in r for r in verdict.reasons)


def test_icmp_on_test_ii_is_named() -> None:
    t2 = silent(1, unreachable="port unreachable", unreachable_from="198.51.100.3",
                destination="198.51.100.3:3478")  # fmt: skip
    obs = MappingObservations(LOCAL, SERVER, first(PUBLIC), t2, NO_ANSWER)
    verdict = decide(obs, filtering(False, False))
    assert verdict.mapping is Mapping.UNKNOWN
    assert any("test II: port unreachable at 198.51.100.3:3478" in r for r in verdict.reasons)


def test_nat_type_gives_a_silent_test_more_probes_once_loss_is_seen() -> None:
    from siptool.commands.nat_probes import LOSSY_SILENCE_PROBES, PROBES, silence_probes

    assert silence_probes(PathLoss(4, 0)) == PROBES
    assert PROBES < silence_probes(PathLoss(10, 5)) == LOSSY_SILENCE_PROBES
    # At 30 % loss each way (half the requests unanswered) their silence counts as a filter.
    assert not PathLoss(10, 5).explains(LOSSY_SILENCE_PROBES * 7)
