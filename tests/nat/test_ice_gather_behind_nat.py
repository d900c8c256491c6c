"""ice-gather behind real Linux NAT (the issue 4 namespace testbeds, tests/nat/testbed.py), the
proof of issue 12 that a symmetric NAT still gets a working relay.

In the public namespace: coturn as a TURN server on 198.51.100.2:3478 (UDP, TCP, and TLS on
3479; it answers Binding requests too, RFC 8656 §5) and a second, STUN-only coturn on
198.51.100.3:3480.  siptool runs in the client namespace (10.0.0.2, behind the router's
198.51.100.1) and asks both STUN servers from its one host socket, and the TURN server over each
transport.  What each variant must give (RFC 8445 §5.1.1, RFC 4787 §4.1):

* ``random-fully`` (address-and-port-dependent mapping): two server-reflexive candidates at
  198.51.100.1 with different ports, mapping "address-dependent", every relay working and the
  finding that calls need the relay;
* ``masquerade`` and ``full-cone`` (endpoint-independent mapping): one server-reflexive
  candidate that both servers saw;
* ``blocked`` (forwarded UDP dropped): no server-reflexive candidate, both STUN servers and the
  UDP relay named as not answering (exit 1), but the relays over TCP and TLS still made;
* ``routed`` (no NAT): both servers see the host address itself, mapping "none".

Decisions:
- The second STUN server is a coturn of its own rather than the TURN server's second address:
  two servers that share nothing, as two public STUN servers would be.  It listens on .3 and,
  for its RFC 5780 alternate, .2 at ports 3480/3481, which the TURN server (.2:3478/3479 and
  its relay ports from 49152) does not use.
- Every relay goes to the router's public address only (TurnNatTestbed), and no allocation is
  used for data here: ice-gather frees each one at once, which coturn's log shows.
- ``--timeout 2`` keeps the blocked variant, where every UDP server is waited out, well under
  the 20 s a test may take.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.nat.test_turn_behind_nat import TurnNatTestbed
from tests.nat.testbed import (
    CLIENT_IP,
    ROUTER_WAN,
    SERVER_ALT_IP,
    SERVER_IP,
    STATIC_PUBLIC,
    require_testbed_tools,
)
from tests.support.run import SIPTOOL
from tests.support.stun_peers import StunPeer, start_coturn
from tests.support.turn_peers import USERS, start_turn_server

pytestmark = [pytest.mark.root, pytest.mark.peer]

SECOND_STUN_PORT = 3480
TIMEOUT_S = 2
TRANSPORTS = ("udp", "tcp", "tls")
# RFC 8839 §5.1: foundation component transport priority address port typ type [raddr rport]
CANDIDATE = re.compile(
    r"a=candidate:\d+ 1 udp \d+ \S+ \d+ typ (host|srflx|relay)( raddr \S+ rport \d+)?\Z"
)


class IceNatTestbed(TurnNatTestbed):
    """TurnNatTestbed with TLS on the TURN server and a second, STUN-only coturn on .3."""

    stun: StunPeer | None = None

    def _start_coturn(self) -> None:
        self.turn = start_turn_server(
            self.work, host=SERVER_IP, netns=self.public, allowed_peers=(ROUTER_WAN,), tls=True
        )
        self.coturn = self.turn.server  # stopped by destroy()
        assert self.turn.tls_port is not None
        tls_port = self.turn.tls_port
        self.turn.server.wait_until(lambda: self._listening(tls_port), what="(coturn TLS)")
        work = self.work / "stun"
        work.mkdir(exist_ok=True)
        self.stun = start_coturn(
            work,
            primary=SERVER_ALT_IP,
            alternate=SERVER_IP,
            netns=self.public,
            port=SECOND_STUN_PORT,
            log=self.work / f"stun-{self.variant}.log",
        )
        probe = [*SIPTOOL, "stun-probe", "--json", "--timeout", "0.3", self.second_stun]
        self.stun.server.wait_until(
            lambda: self.ns(self.public, *probe, check=False).returncode == 0,
            what="(second STUN server in the public namespace)",
        )

    def _listening(self, port: int) -> bool:
        """A TCP socket listens on ``port`` in the public namespace (``ss``)."""
        listing = self.ns(self.public, "ss", "-Hltn", f"sport = :{port}", check=False)
        return bool(listing.stdout.strip())

    @property
    def first_stun(self) -> str:
        assert self.turn is not None
        return f"{SERVER_IP}:{self.turn.port}"

    @property
    def second_stun(self) -> str:
        return f"{SERVER_ALT_IP}:{SECOND_STUN_PORT}"

    def destroy(self) -> None:
        if self.stun is not None:
            self.stun.stop()
            self.stun = None
        super().destroy()


@pytest.fixture(scope="module")
def bed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One testbed per variant (tests take it ``indirect``ly, pytest groups them by it)."""
    require_testbed_tools()
    variant = str(request.param)
    built = IceNatTestbed(variant, tmp_path_factory.mktemp(f"ice-nat-{variant}")).build()
    try:
        yield built
    finally:
        built.destroy()


def ice_gather(bed: IceNatTestbed) -> tuple[int, dict[str, Any]]:
    """``siptool ice-gather --json`` in the client namespace with both STUN servers and the
    TURN server over UDP, TCP and TLS, as alice."""
    turn = bed.turn
    assert turn is not None and turn.ca is not None
    password = bed.work / "password"
    password.write_text(USERS["alice"])
    argv = [*SIPTOOL, "ice-gather", "--json", "--timeout", str(TIMEOUT_S)]
    argv += ["--stun", f"stun:{bed.first_stun}", "--stun", f"stun:{bed.second_stun}"]
    for transport in TRANSPORTS:
        argv += ["--turn", turn.uri(transport)]
    argv += ["--ca-file", str(turn.ca), "--user", "alice", "--password-file", str(password)]
    result = bed.in_client(*argv, timeout=20)
    assert "Traceback" not in result.stderr, result.stderr
    assert USERS["alice"] not in result.stdout + result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    assert all(CANDIDATE.match(line) for line in doc["sdp"]), doc["sdp"]
    return result.returncode, doc


def of_type(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [c for c in doc["candidates"] if c["type"] == kind]


def stun_outcomes(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["server"]: s for s in doc["servers"] if s["kind"] == "stun"}


def findings(doc: dict[str, Any]) -> str:
    return " | ".join(doc["verdict"]["findings"])


def host_only_at_client(doc: dict[str, Any]) -> str:
    """The one host candidate, at 10.0.0.2 (the client namespace has no other address up)."""
    (host,) = of_type(doc, "host")
    assert host["address"].startswith(f"{CLIENT_IP}:"), host
    return str(host["address"])


def assert_relays(doc: dict[str, Any], working: tuple[str, ...], mapped_ip: str) -> None:
    """A relayed candidate on the TURN server for each of ``working``, related to the NAT's
    public address; no other relay."""
    relays = {c["relay_protocol"]: c for c in of_type(doc, "relay")}
    assert set(relays) == set(working), doc["servers"]
    for relay in relays.values():
        assert relay["address"].startswith(f"{SERVER_IP}:"), relay
        assert str(relay["related"]).startswith(f"{mapped_ip}:"), relay
    assert doc["verdict"]["relays"] == {t: t in working for t in TRANSPORTS}


def assert_freed(bed: IceNatTestbed, doc: dict[str, Any], since: int) -> None:
    """coturn closed and deleted the session of every allocation ice-gather made."""
    assert bed.turn is not None
    for server in doc["servers"]:
        if server["kind"] == "turn" and server["ok"]:
            (mapped,) = server["mapped"]
            bed.turn.closed_session(mapped, since=since)


@pytest.mark.parametrize("bed", ["random-fully"], indirect=True)
def test_symmetric_nat_two_mappings_and_the_relay_is_the_answer(bed: IceNatTestbed) -> None:
    assert bed.turn is not None
    since = bed.turn.mark()
    code, doc = ice_gather(bed)
    assert code == 0, doc["errors"]
    base = host_only_at_client(doc)
    srflx = of_type(doc, "srflx")
    assert len(srflx) == 2, srflx
    assert {c["related"] for c in srflx} == {base}
    assert all(c["address"].startswith(f"{ROUTER_WAN}:") for c in srflx), srflx
    assert len({c["address"] for c in srflx}) == 2  # a port of its own per server
    assert {c["server"] for c in srflx} == {bed.first_stun, bed.second_stun}
    assert doc["verdict"]["mapping"] == "address-dependent"
    assert_relays(doc, TRANSPORTS, ROUTER_WAN)
    assert "symmetric NAT" in findings(doc) and "calls need the relay" in findings(doc)
    assert_freed(bed, doc, since)


@pytest.mark.parametrize(
    ("bed", "public"), [("masquerade", ROUTER_WAN), ("full-cone", STATIC_PUBLIC)], indirect=["bed"]
)
def test_cone_nat_one_mapping_seen_by_both_servers(bed: IceNatTestbed, public: str) -> None:
    code, doc = ice_gather(bed)
    assert code == 0, doc["errors"]
    base = host_only_at_client(doc)
    (srflx,) = of_type(doc, "srflx")
    assert srflx["address"].startswith(f"{public}:") and srflx["related"] == base
    outcomes = stun_outcomes(doc)
    assert [s["mapped"] for s in outcomes.values()] == [[srflx["address"]]] * 2, outcomes
    assert doc["verdict"]["mapping"] == "endpoint-independent"
    assert "endpoint-independent mapping" in findings(doc)
    assert_relays(doc, TRANSPORTS, public)


@pytest.mark.parametrize("bed", ["blocked"], indirect=True)
def test_udp_blocked_no_stun_answer_but_relays_over_tcp_and_tls(bed: IceNatTestbed) -> None:
    assert bed.turn is not None
    since = bed.turn.mark()
    code, doc = ice_gather(bed)
    assert code == 1
    host_only_at_client(doc)
    assert of_type(doc, "srflx") == []
    outcomes = stun_outcomes(doc)
    assert set(outcomes) == {f"stun:{bed.first_stun}", f"stun:{bed.second_stun}"}
    for outcome in outcomes.values():
        assert outcome["ok"] is False and "no answer" in outcome["error"], outcome
    (udp_turn,) = [s for s in doc["servers"] if s["kind"] == "turn" and s["transport"] == "udp"]
    assert udp_turn["ok"] is False
    assert doc["verdict"]["mapping"] == "unknown"
    assert "no STUN server answered" in findings(doc)
    assert "no relay over udp" in findings(doc)
    # TCP is forwarded: the relays over TCP and TLS still come, mapped at the NAT.
    assert_relays(doc, ("tcp", "tls"), ROUTER_WAN)
    assert {e["code"] for e in doc["errors"]} >= {"timeout"}
    assert_freed(bed, doc, since)


@pytest.mark.parametrize("bed", ["routed"], indirect=True)
def test_no_nat_mapping_none(bed: IceNatTestbed) -> None:
    code, doc = ice_gather(bed)
    assert code == 0, doc["errors"]
    base = host_only_at_client(doc)
    assert of_type(doc, "srflx") == []  # RFC 8445 §5.1.3: equal to its base, redundant
    assert [s["mapped"] for s in stun_outcomes(doc).values()] == [[base]] * 2
    assert doc["verdict"]["mapping"] == "none"
    assert "no NAT" in findings(doc)
    assert_relays(doc, TRANSPORTS, CLIENT_IP)
