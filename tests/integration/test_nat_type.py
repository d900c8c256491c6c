"""`siptool nat-type` against real coturn (127.0.0.1 + 127.0.0.2, and ::1 alone) and stund on
loopback, with pystun3 beside it; and against two deliberately broken servers (no
OTHER-ADDRESS; CHANGE-REQUEST ignored) run by the test, which must give "inconclusive"; hostile
servers (wrong transaction id, bad FINGERPRINT, 0.0.0.0:0 mapped, terminal escapes) and a closed
port, none of which is "udp-blocked"; and --timeout as the bound of the whole command."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from siptool.stun.message import StunMessage, binding_response
from tests.support.responders import Address, closed_udp_port, idle_udp_socket
from tests.support.run import siptool
from tests.support.stun_peers import (
    HOSTILE_TEXT,
    PRIMARY,
    StunPeer,
    hostile_stun_server,
    stun_responder,
)

pytestmark = pytest.mark.peer


def nat_type(*args: str, timeout: float = 60) -> tuple[int, dict[str, Any], float]:
    result = siptool("nat-type", "--json", *args, timeout=timeout)
    return result.returncode, result.doc, result.seconds


@contextlib.contextmanager
def fake_server(
    other: tuple[str, int] | None,
    *,
    stray: bool = False,
    mapped: tuple[str, int] | None = None,
) -> Iterator[int]:
    """A one-socket STUN server: answers everything from its one address, CHANGE-REQUEST or
    not, and claims ``other`` as OTHER-ADDRESS.  With ``stray`` it answers CHANGE-REQUEST
    from a third address (127.0.0.3) instead; ``mapped`` replaces the mapped address."""

    def answer(request: StunMessage, peer: Address) -> tuple[bytes, socket.socket | None]:
        sender = third if stray and request.attribute("CHANGE-REQUEST") else None
        reply = binding_response(
            request, mapped or peer, response_origin=(PRIMARY, port), other_address=other
        )
        return reply, sender

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as third:
        third.bind(("127.0.0.3", 0))
        with stun_responder(answer) as port:
            yield port


def test_loopback_against_coturn_is_open_internet_in_well_under_a_second(
    coturn: StunPeer,
) -> None:
    code, doc, elapsed = nat_type(coturn.primary)
    assert code == 0, doc["errors"]
    assert doc["command"] == "nat-type" and doc["ok"] is True
    assert (doc["mapping"], doc["filtering"], doc["classic"]) == ("none", "none", "open-internet")
    assert doc["local"] == doc["mapped"] and doc["local"].startswith(f"{PRIMARY}:")
    assert doc["port_preserved"] is True
    assert doc["hairpinning"] is True  # no NAT: our own address reaches us
    assert doc["other_address"] == coturn.other
    assert doc["advice"] and doc["reasons"] == []
    tests = doc["tests"]
    assert tests["mapping"]["local"] != tests["filtering"]["local"]  # separate sockets
    assert tests["mapping"]["test2"]["destination"] == f"127.0.0.2:{coturn.port}"
    assert tests["mapping"]["test3"]["destination"] == coturn.other
    assert tests["filtering"]["test2"]["source"] == coturn.other
    assert tests["filtering"]["test3"]["source"] == f"{PRIMARY}:{coturn.alt_port}"
    assert doc["elapsed_ms"] < 1000
    assert elapsed < 3  # including the interpreter's start


def test_stund_changed_address_serves_as_other_address(stund: StunPeer) -> None:
    code, doc, _ = nat_type(stund.primary)
    assert code == 0, doc["errors"]
    assert doc["classic"] == "open-internet"
    assert doc["other_address"] == stund.other


def test_ipv6_server_with_one_address_is_inconclusive_with_the_reason(coturn: StunPeer) -> None:
    code, doc, _ = nat_type(f"[::1]:{coturn.port}")
    assert code == 1
    assert doc["mapping"] == "none"  # certain: the server saw our own address
    assert doc["filtering"] == "unknown" and doc["classic"] == "inconclusive"
    assert any("second IP" in r for r in doc["reasons"])
    assert doc["local"].startswith("[::1]:")


def test_server_without_other_address_is_inconclusive() -> None:
    with fake_server(None) as port:
        code, doc, _ = nat_type(f"{PRIMARY}:{port}")
    assert code == 1
    assert doc["classic"] == "inconclusive"
    assert any("no OTHER-ADDRESS" in r for r in doc["reasons"])


def test_server_that_ignores_change_request_is_inconclusive_not_full_cone() -> None:
    with fake_server(("127.0.0.2", 1)) as port:
        code, doc, _ = nat_type("--timeout", "1", f"{PRIMARY}:{port}")
    assert code == 1
    assert doc["classic"] == "inconclusive"
    assert any("ignores CHANGE-REQUEST" in r for r in doc["reasons"])


def test_change_request_answered_from_a_third_address_is_inconclusive_not_open() -> None:
    # Only answers from OTHER-ADDRESS (test II) or the primary IP's other port (test III)
    # count; one from anywhere else is neither a pass nor a drop by the filter.
    with fake_server(("127.0.0.2", 1), stray=True) as port:
        code, doc, _ = nat_type("--timeout", "1", f"{PRIMARY}:{port}")
    assert code == 1
    assert doc["mapping"] == "none"
    assert doc["filtering"] == "unknown" and doc["classic"] == "inconclusive"
    assert any("127.0.0.3:" in r and "127.0.0.2:1" in r for r in doc["reasons"]), doc
    assert doc["tests"]["filtering"]["test2"]["answered"] is False


@pytest.mark.parametrize("mapped", [("::1", 5), ("255.255.255.255", 9)], ids=str)
def test_a_mapped_address_we_cannot_send_to_leaves_hairpinning_unknown(
    mapped: tuple[str, int],
) -> None:
    # The server's word is not a local bind failure (exit 3): the hairpin test is skipped.
    with fake_server(None, mapped=mapped) as port:
        code, doc, _ = nat_type("--timeout", "1", f"{PRIMARY}:{port}")
    assert code == 1, doc["errors"]
    assert doc["classic"] == "inconclusive"
    assert doc["hairpinning"] is None
    assert all(e["code"] != "bind_error" for e in doc["errors"])


def test_silent_server_is_udp_blocked_after_the_timeout() -> None:
    with idle_udp_socket() as silent:
        code, doc, elapsed = nat_type("--timeout", "1", f"{PRIMARY}:{silent.getsockname()[1]}")
    assert code == 1
    assert doc["classic"] == "udp-blocked"
    assert doc["errors"][0]["code"] == "timeout"
    assert 0.9 < elapsed < 5


def test_pystun3_engine_and_compare(coturn: StunPeer) -> None:
    code, doc, _ = nat_type("--engine", "pystun3", coturn.primary)
    assert code == 0, doc["errors"]
    assert doc["engine"] == "pystun3" and doc["classic"] == "open-internet"
    assert doc["pystun3"]["raw"] == "Open Internet"
    code, doc, _ = nat_type("--compare", coturn.primary)
    assert code == 0
    assert doc["compare"]["pystun3"]["classic"] == "open-internet"
    assert doc["compare"]["agree"] is True


def test_pystun3_watchdog_kills_a_slow_run() -> None:
    with idle_udp_socket() as silent:
        # pystun3 waits 4 x 2 s on a silent server; the watchdog ends it after 1 s.
        code, doc, elapsed = nat_type(
            "--engine", "pystun3", "--watchdog", "1", f"{PRIMARY}:{silent.getsockname()[1]}"
        )
    assert code == 1
    assert "watchdog" in doc["pystun3"]["error"]
    assert elapsed < 5


def test_lifetime_search_is_bounded_by_its_maximum(coturn: StunPeer) -> None:
    code, doc, elapsed = nat_type("--lifetime", "--lifetime-max", "1.5", coturn.primary)
    assert code == 0
    life = doc["lifetime"]
    assert life["outlived_search"] is True and life["min_s"] == 1.5 and life["error"] is None
    assert elapsed < 6


def test_text_output_and_usage_errors(coturn: StunPeer) -> None:
    result = siptool("nat-type", "--no-color", coturn.primary, timeout=30)
    assert result.returncode == 0
    assert "open-internet" in result.stdout and "mapping" in result.stdout
    bad = siptool("nat-type", f"stuns:{coturn.primary}", timeout=30)
    assert bad.returncode == 2


# ------------------------------------------------------- hostile servers and bounds (#8)


def test_a_closed_port_is_no_stun_server_not_udp_blocked() -> None:
    port = closed_udp_port()
    code, doc, elapsed = nat_type("--timeout", "20", f"{PRIMARY}:{port}")
    assert code == 1
    assert doc["classic"] == "inconclusive"  # not udp-blocked: the host answered, with ICMP
    assert doc["errors"] == [
        {"code": "unreachable", "message": f"no STUN server at {PRIMARY}:{port}: port unreachable"}
    ]
    assert doc["reasons"] == [f"no STUN server at {PRIMARY}:{port}: port unreachable"]
    assert not any("TURN" in item for item in doc["advice"])
    assert doc["tests"]["mapping"]["test1"]["sends"] == 1  # it did not wait for the timeout
    assert elapsed < 10


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("wrong-tid", "wrong transaction id"), ("bad-fingerprint", "bad FINGERPRINT")],
)
def test_rejected_answers_are_named_and_are_not_udp_blocked(mode: str, reason: str) -> None:
    with hostile_stun_server(mode) as port:
        code, doc, _ = nat_type("--timeout", "1", f"{PRIMARY}:{port}")
    assert code == 1
    assert doc["classic"] == "inconclusive"
    assert doc["reasons"] == [f"answers rejected: {reason}"]
    assert [e["code"] for e in doc["errors"]] == ["rejected"]
    assert not any("TURN" in item for item in doc["advice"])


def test_an_unspecified_mapped_address_is_no_mapping() -> None:
    with hostile_stun_server("mapped", mapped=("0.0.0.0", 0), other=("127.0.0.2", 1)) as port:
        code, doc, _ = nat_type("--timeout", "1", f"{PRIMARY}:{port}")
    assert code == 1
    assert doc["mapping"] == "unknown" and doc["classic"] == "inconclusive"
    assert doc["mapped"] is None and doc["port_preserved"] is None
    assert any(
        "unusable mapped address 0.0.0.0:0: unspecified address" in r for r in doc["reasons"]
    )


def test_terminal_escapes_in_an_error_reason_never_reach_the_terminal() -> None:
    with hostile_stun_server("error") as port:
        target = f"{PRIMARY}:{port}"
        text = siptool("nat-type", "--no-color", "--timeout", "1", target, timeout=30)
        _, doc, _ = nat_type("--timeout", "1", target)
    assert "Traceback" not in text.stderr
    for stream in (text.stdout, text.stderr):
        assert "\x1b" not in stream and "\x07" not in stream
    assert "\\x1b[2J" in text.stdout
    assert any(HOSTILE_TEXT in r for r in doc["reasons"])  # JSON keeps the exact text


@pytest.mark.parametrize("timeout", [1.0, 3.0])
def test_timeout_bounds_the_whole_command(timeout: float) -> None:
    # Issue 8 measured 2.3 s at --timeout 1 and 6.2 s at --timeout 3 against a silent server.
    # The bound is the behaviour: the run's own clock within 10 %, the process's within a
    # generous allowance for a loaded machine.
    with idle_udp_socket() as silent:
        code, doc, elapsed = nat_type(
            "--timeout", f"{timeout:g}", f"{PRIMARY}:{silent.getsockname()[1]}"
        )
    assert code == 1 and doc["classic"] == "udp-blocked"
    assert doc["elapsed_ms"] <= timeout * 1000 * 1.1
    assert elapsed < timeout + 1.5


def test_timeout_bounds_a_run_whose_other_address_never_answers() -> None:
    # Tests II/III to OTHER-ADDRESS (nothing there) once ran past --timeout on their own
    # schedule after test I.
    with fake_server(("127.0.0.2", 9)) as port:
        code, doc, elapsed = nat_type("--timeout", "1", f"{PRIMARY}:{port}")
    assert code == 1 and doc["classic"] == "inconclusive"
    assert doc["elapsed_ms"] <= 1100
    assert elapsed < 2.5
