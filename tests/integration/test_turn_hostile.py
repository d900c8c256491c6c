"""`siptool turn-probe` against a hostile TURN server (tests/support/hostile_turn.py): each
wrong answer to Allocate, and a ChannelData with a lying length after a real allocation, is
named on one stderr line with the documented exit code (1: the check failed; 0 when the
relay still works and only a warning is due), never a traceback; what came before and after
the fault is still reported (the allocation, the tests, the deallocation); every run ends
within a few seconds of --timeout; the password is never printed.

The hostile server relays for real (on loopback only) in the modes that allocate, so the
tests also see the probe go on after the fault."""

from __future__ import annotations

import pytest

from tests.support.hostile_turn import hostile_turn
from tests.support.run import siptool

PASSWORD = "pw-hostile-not-printed"
AUTH = ("bad_integrity", "no_nonce", "stale_loop")  # the modes that challenge

# mode -> (exit code, error codes, what the stderr line says, allocated)
CASES = {
    "ok": (0, [], None, True),
    "no_relayed": (1, ["bad_response"], "no XOR-RELAYED-ADDRESS", False),
    "wrong_tid": (1, ["timeout"], "answers rejected: wrong transaction id", False),
    "bad_integrity": (1, ["bad_integrity"], "MESSAGE-INTEGRITY does not verify", True),
    "no_nonce": (1, ["auth_required"], "has no REALM or NONCE", False),
    "stale_loop": (1, ["stale_nonce"], "438 Stale Nonce again", False),
    "truncated": (1, ["timeout"], "STUN attribute 0x8022 (200 bytes) overruns", False),
    "lifetime0": (1, ["bad_lifetime"], "LIFETIME 0", True),
    "garbage": (1, ["timeout"], "not a valid STUN message", False),
    "lying_channel": (0, [], "warning: 5 messages from the server dropped: ChannelData", True),
}


@pytest.mark.parametrize("mode", list(CASES))
def test_hostile_server_fault_is_named_in_one_line(mode: str) -> None:
    code, errors, said, allocated = CASES[mode]
    user = ("--user", "alice") if mode in AUTH else ()
    with hostile_turn(mode) as server:
        result = siptool(
            "turn-probe", "--json", "--timeout", "1", *user, f"turn:{server.address}",
            env={"SIPTOOL_PASSWORD": PASSWORD}, timeout=20,
        )  # fmt: skip
    doc = result.doc
    assert result.returncode == code, (result.stderr, doc["errors"])
    assert [e["code"] for e in doc["errors"]] == errors, doc["errors"]
    lines = result.stderr.splitlines()
    assert len(lines) == len(errors) + len(doc["warnings"]), lines
    if said is None:
        assert lines == []
    else:
        assert len(lines) == 1 and said in lines[0], lines
        assert lines[0].startswith("siptool turn-probe: ")
    assert PASSWORD not in result.stdout + result.stderr
    assert result.seconds < 8
    assert bool(doc["relayed"]) is allocated
    if allocated:  # the rest was still run and reported, and the allocation freed
        for method in ("indication", "channel"):
            assert doc["relay_tests"][method]["received"] == 5, doc["relay_tests"]
        assert doc["deallocated"] is True
        assert server.seen[-1] == 4  # Refresh (lifetime 0) last


def test_lying_channel_data_is_dropped_and_counted() -> None:
    with hostile_turn("lying_channel") as server:
        result = siptool("turn-probe", "--json", "-n", "3", f"turn:{server.address}", timeout=20)
    doc = result.doc
    assert result.returncode == 0, doc["errors"]
    (reason,) = doc["dropped"]
    assert "length 500" in reason and doc["dropped"][reason] == 3
    assert doc["relay_tests"]["channel"]["duplicates"] == 0


def test_text_output_of_a_fault_has_no_traceback() -> None:
    with hostile_turn("no_relayed") as server:
        result = siptool("turn-probe", f"turn:{server.address}", timeout=20)
    assert result.returncode == 1
    assert "relay test failed" in result.stdout and "XOR-RELAYED-ADDRESS" in result.stdout
