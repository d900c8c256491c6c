"""pcapng clocks that are no date, through the real `siptool decode` in every view (issue 8).

The fixtures (tests/fixtures/broken/wrong-time-*.pcapng, made by
tests/fixtures/make_broken_timestamps.py) are the real REGISTER capture with a damaged
interface block or packet timestamp.  `decode -v` died on them with ValueError ("year 11533 is
out of range") or OSError; now each gives one stderr line naming the input, the packet and the
byte, exit code 1 (invalid input, shared/cli-contract.md), and all four messages, the time that
is no date shown as seconds since the epoch.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import FIXTURES, ROOT
from tests.support.run import STRICT_UTF8, Run, siptool

BROKEN = FIXTURES / "broken"
# fixture -> (the packet reported, the byte where its block starts, its time in the -v view)
CASES = {
    "wrong-time-if-tsoffset.pcapng": (1, 144, "301795486894.29895 s since the epoch"),
    "wrong-time-negative.pcapng": (1, 144, "-4.6116860166319012e+18 s since the epoch"),
    "wrong-time-if-tsresol.pcapng": (1, 140, "1795486894298939 s since the epoch"),
    "wrong-time-packet.pcapng": (2, 536, "18446744073709.551 s since the epoch"),
}
VIEWS = [["-v"], ["--json"], ["--jsonl"], ["--flow"], [], ["-v", "--lint"], ["--json", "--flow"]]


def decode(*args: str) -> Run:
    return siptool("decode", *args, env=STRICT_UTF8)


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: " ".join(v) or "table")
@pytest.mark.parametrize("name", sorted(CASES))
def test_a_time_that_is_no_date_is_one_line_exit_1_and_every_message_shown(
    name: str, view: list[str]
) -> None:
    path = BROKEN / name
    packet, byte, shown = CASES[name]
    result = decode(*view, str(path))
    assert "Traceback" not in result.stderr
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(
        f"siptool decode: {path}: packet {packet}, byte {byte}: timestamp out of range: "
    )
    if "--json" in view:
        doc = json.loads(result.stdout)
        assert doc["exit_code"] == 1 and [e["message"] for e in doc["errors"]] == [line[16:]]
        assert [m["frame"] for m in doc["messages"]] == [1, 2, 3, 4]
        if "--flow" in view:
            assert len(doc["flows"]) == 1
    elif "--jsonl" in view:
        *messages, summary = (json.loads(text) for text in result.stdout.splitlines())
        assert [m["frame"] for m in messages] == [1, 2, 3, 4] and summary["exit_code"] == 1
    elif "-v" in view:
        headings = [text for text in result.stdout.splitlines() if text.startswith("#")]
        assert len(headings) == 4
        assert shown in headings[packet - 1]
        if name == "wrong-time-packet.pcapng":  # the other packets keep their dates
            assert all(" UTC  127.0.0.1:" in headings[k] for k in (0, 2, 3))
    elif "--flow" in view:
        assert "REGISTER" in result.stdout and "200 OK" in result.stdout
    else:
        assert result.stdout.count("REGISTER sip:127.0.0.1") == 2


def test_the_fixtures_are_what_the_script_makes(tmp_path: Path) -> None:
    script = ROOT / "tests" / "fixtures" / "make_broken_timestamps.py"
    source = FIXTURES / "captures" / "sip-register-digest-auth.pcapng"
    subprocess.run([sys.executable, str(script), str(source), str(tmp_path)], check=True)
    for name in CASES:
        assert (BROKEN / name).read_bytes() == (tmp_path / name).read_bytes(), name
