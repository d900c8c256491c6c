"""turn-probe behind real Linux NAT (the issue 4 namespace testbeds, tests/nat/testbed.py):
coturn as a TURN server in the "public" namespace on 198.51.100.2, siptool in the private one
behind the router.  Behind a symmetric NAT (MASQUERADE --random-fully: address-and-port-
dependent mapping, the case where STUN alone fails and calls need a relay, RFC 8656 §1) and
behind a port-restricted cone, the allocation is made, ``mapped`` is the router's public
address, and data goes through the relay both ways by both methods: the peer socket, behind
the same NAT, sends first and the relay's Data indication names its public address (§9:
permissions are by IP only).

coturn relays only to the router's public address (198.51.100.1); nothing leaves the
namespaces the test made."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.nat.testbed import ROUTER_WAN, SERVER_IP, NatTestbed, require_testbed_tools
from tests.support.run import SIPTOOL
from tests.support.turn_peers import USERS, TurnServer, start_turn_server

pytestmark = [pytest.mark.root, pytest.mark.peer]

VARIANTS = ("random-fully", "masquerade")


class TurnNatTestbed(NatTestbed):
    """The NAT testbed with coturn as a TURN server (not STUN-only) in the public namespace,
    relaying to peers at the router's public address only."""

    turn: TurnServer | None = None

    def _start_coturn(self) -> None:
        self.turn = start_turn_server(
            self.work, host=SERVER_IP, netns=self.public, allowed_peers=(ROUTER_WAN,)
        )
        self.coturn = self.turn.server  # stopped by destroy()


@pytest.fixture(scope="module", params=VARIANTS)
def bed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    require_testbed_tools()
    variant = str(request.param)
    built = TurnNatTestbed(variant, tmp_path_factory.mktemp(f"turn-nat-{variant}")).build()
    try:
        yield built
    finally:
        built.destroy()


def turn_probe(bed: TurnNatTestbed, *args: str) -> tuple[int, dict[str, Any]]:
    """``siptool turn-probe --json --user alice ARGS`` in the client namespace."""
    password = bed.work / "password"
    password.write_text(USERS["alice"])
    argv = (*SIPTOOL, "turn-probe", "--json", "--user", "alice", "--password-file", str(password))
    result = bed.in_client(*argv, *args, timeout=30)
    assert "Traceback" not in result.stderr, result.stderr
    assert USERS["alice"] not in result.stdout + result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return result.returncode, doc


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_relay_works_behind_the_nat(bed: TurnNatTestbed, transport: str) -> None:
    assert bed.turn is not None
    since = bed.turn.mark()
    code, doc = turn_probe(bed, bed.turn.uri(transport))
    assert code == 0, doc["errors"]
    assert doc["mapped"].startswith(f"{ROUTER_WAN}:")  # the NAT's public address
    (relayed,) = doc["relayed"]
    assert relayed.startswith(f"{SERVER_IP}:")
    assert doc["peer"].startswith(f"{ROUTER_WAN}:")  # the peer socket as the relay saw it
    for method in ("indication", "channel"):
        stats = doc["relay_tests"][method]
        assert (stats["sent"], stats["received"], stats["loss_pct"]) == (5, 5, 0.0), stats
    assert doc["deallocated"] is True
    # coturn saw the client at the NAT's address and freed its allocation.
    bed.turn.closed_session(doc["mapped"], since=since)
