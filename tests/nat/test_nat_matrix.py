"""siptool nat-type on real Linux NAT: five variants built from network namespaces and
iptables (tests/nat/testbed.py), coturn on two public addresses, siptool run in the client
namespace.  The same matrix with pystun3 beside it records where pystun3 is wrong."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.nat.testbed import (
    EXPECTED,
    SERVER_ALT_IP,
    STUN_PORT,
    VARIANTS,
    NatTestbed,
    require_testbed_tools,
    running_testbed,
)

pytestmark = [pytest.mark.root, pytest.mark.peer]

# What pystun3 2.0.0 answers on each variant, as measured here.  On MASQUERADE it says
# "Symmetric NAT": its test II (change IP and port) is dropped by the NAT, the dropped reply
# leaves a conntrack entry for (other address -> router:port), and its next request, to that
# very other address from the same socket, collides with it, so netfilter picks a new port
# and pystun3 takes the new port for endpoint-dependent mapping.  siptool runs its mapping and
# filtering tests on separate sockets, which is why it is not fooled.
PYSTUN3_RECORDED = {
    "routed": "open-internet",
    "full-cone": "full-cone",
    "masquerade": "symmetric",
    "random-fully": "symmetric",
    "blocked": "udp-blocked",
}


_require_testbed_tools = require_testbed_tools


@pytest.fixture(scope="module", params=VARIANTS)
def bed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    _require_testbed_tools()
    variant = str(request.param)
    with running_testbed(variant, tmp_path_factory.mktemp(f"nat-{variant}")) as built:
        yield built


def test_siptool_finds_the_behaviour_of_each_nat(bed: NatTestbed) -> None:
    code, doc, elapsed = bed.siptool("nat-type", bed.server)
    mapping, filtering, classic = EXPECTED[bed.variant]
    assert (doc["mapping"], doc["filtering"], doc["classic"]) == (mapping, filtering, classic), doc
    if bed.variant == "blocked":
        assert code == 1 and doc["mapped"] is None
        assert 0.9 < elapsed < 3  # the 1 s default timeout of nat-type
        return
    assert code == 0, doc["errors"]
    assert doc["reasons"] == []
    assert doc["local"].startswith("10.0.0.2:")
    expected_ip = {"routed": "10.0.0.2", "full-cone": "198.51.100.10"}.get(
        bed.variant, "198.51.100.1"
    )
    assert str(doc["mapped"]).startswith(f"{expected_ip}:")
    assert doc["port_preserved"] is (bed.variant != "random-fully")
    # No variant has hairpin NAT rules; without NAT our own address reaches us directly.
    assert doc["hairpinning"] is (bed.variant == "routed")
    assert doc["elapsed_ms"] < 1500  # LAN latency: about the 0.3 s filter wait
    assert elapsed < 5


def test_pystun3_verdicts_beside_siptool(bed: NatTestbed) -> None:
    """Documents pystun3's answers: wrong on MASQUERADE (port-restricted cone)."""
    _, doc, _ = bed.siptool("nat-type", "--compare", "--watchdog", "40", bed.server)
    assert doc["classic"] == EXPECTED[bed.variant][2]
    compare = doc["compare"]
    assert compare["pystun3"]["error"] is None
    assert compare["pystun3"]["classic"] == PYSTUN3_RECORDED[bed.variant], compare
    assert compare["agree"] is (PYSTUN3_RECORDED[bed.variant] == EXPECTED[bed.variant][2])


@pytest.mark.parametrize("variant", ["routed", "full-cone"])
def test_pystun3_engine_alone_reports_its_own_label(tmp_path: Path, variant: str) -> None:
    _require_testbed_tools()
    with running_testbed(variant, tmp_path) as bed:
        code, doc, _ = bed.siptool("nat-type", "--engine", "pystun3", bed.server)
    assert code == 0
    assert doc["engine"] == "pystun3" and doc["classic"] == PYSTUN3_RECORDED[variant]
    assert doc["pystun3"]["raw"] in ("Open Internet", "Full Cone")


@pytest.mark.parametrize(("variant", "consistent"), [("masquerade", True), ("random-fully", False)])
def test_stun_probe_sees_a_symmetric_nat_without_rfc5780(
    tmp_path: Path, variant: str, consistent: bool
) -> None:
    _require_testbed_tools()
    with running_testbed(variant, tmp_path) as bed:
        other = f"{SERVER_ALT_IP}:{STUN_PORT}"
        code, doc, _ = bed.siptool("stun-probe", bed.server, other)
    assert code == 0
    assert doc["behind_nat"] is True
    assert doc["mapping_consistent"] is consistent
    assert doc["port_preserved"] is consistent


def test_binding_lifetime_is_found_between_two_probe_times(tmp_path: Path) -> None:
    _require_testbed_tools()
    with running_testbed("masquerade", tmp_path) as bed:
        bed.set_udp_timeout(3)
        code, doc, elapsed = bed.siptool(
            "nat-type", "--lifetime", "--lifetime-max", "10", bed.server
        )
    assert code == 0
    life = doc["lifetime"]
    assert life["error"] is None
    assert (life["min_s"], life["max_s"]) == (2.0, 4.0)
    assert life["estimate_s"] == 3.0
    assert any("3 s" in item for item in doc["advice"])
    assert elapsed < 10  # the search stops at the first expired binding
