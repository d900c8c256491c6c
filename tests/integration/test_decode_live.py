"""`siptool decode -i IFACE` (issue 10, "Live capture"), run as users run it, with tcpdump
recording beside it: siptool's own options-ping against Kamailio (UDP, TCP, IPv6) and a SIPp
call on loopback give the same messages, in the same order, as `siptool decode` of tcpdump's
file; `--write` saves a pcapng that decodes to them too; Ctrl-C prints the summary and exits 0;
`--count` and `--duration` stop by themselves; `--flow` prints a call's ladder once it has
ended, before Ctrl-C; a missing interface or privilege is one line and exit 3.

decode says "capturing on IFACE" on stderr once its capture runs (as tcpdump says "listening
on"); the tests wait for that line, never a sleep.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest

from tests.support.kamailio import Kamailio
from tests.support.live_capture import tcpdump, traffic
from tests.support.peers import require_root, require_tool
from tests.support.run import siptool, spawn
from tests.support.sipp import Sipp

pytestmark = pytest.mark.peer


@pytest.fixture(autouse=True)
def _root() -> None:
    require_root()
    require_tool("tcpdump")


def read_until(stream: IO[str] | None, text: str, seconds: float) -> str:
    """What ``stream`` (a child's pipe, not read before) gives until ``text`` shows in it."""
    assert stream is not None
    fd, seen = stream.fileno(), b""
    deadline = time.monotonic() + seconds
    while text.encode() not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {text!r} within {seconds} s: {seen!r}"
        ready, _, _ = select.select([fd], [], [], min(left, 0.2))
        if ready:
            chunk = os.read(fd, 65536)
            assert chunk, f"the pipe closed before {text!r}: {seen!r}"
            seen += chunk
    return seen.decode()


def started(*args: str) -> subprocess.Popen[str]:
    """`siptool decode ARGS` running, its capture ready (its stderr line read, 10 s at most)."""
    process = spawn("decode", *args)
    read_until(process.stderr, "capturing on", 10)
    return process


def interrupted(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Ctrl-C, as a person stops it; exit code, stdout, stderr."""
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    return process.returncode, out, err


def messages(jsonl: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    *lines, summary = [json.loads(line) for line in jsonl.splitlines()]
    return lines, summary


# The decoded fields a live capture and tcpdump's file must agree on.  Times as floats of
# epoch seconds hold about 0.2 µs (the nanoseconds of both are the same for UDP), and a TCP
# segment's time differs by a microsecond between two packet sockets (test_sniffer_vs_tcpdump).
def same(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k != "time"}


def same_times(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> bool:
    for a, b in zip(ours, theirs, strict=True):
        allowed = 1e-6 if a["transport"] == "udp" else 1e-3
        if abs(a["time"] - b["time"]) > allowed:
            return False
    return True


def decoded_file(path: Path) -> list[dict[str, Any]]:
    result = siptool("decode", "--jsonl", str(path))
    assert result.returncode == 0, result.stderr
    return messages(result.stdout)[0]


def test_live_decode_is_decode_of_tcpdumps_file_and_ctrl_c_prints_the_summary(
    kamailio: Kamailio, sipp: Callable[..., Sipp], tmp_path: Path
) -> None:
    uas = sipp()
    ports = sorted({kamailio.udp, kamailio.ports6["udp"], uas.port})
    flags = [arg for port in ports for arg in ("--port", str(port))]
    saved = tmp_path / "live.pcapng"
    with tcpdump("lo", ports, tmp_path / "tcpdump.pcap") as written:
        process = started("-i", "lo", *flags, "--jsonl", "--write", str(saved))
        traffic(kamailio, uas, tmp_path)
        frames = written(1)
        # Ctrl-C once decode has seen what tcpdump wrote: its output is JSONL, one line each.
        deadline = time.monotonic() + 10
        while saved.stat().st_size < sum(len(f) for _, f in frames):
            assert time.monotonic() < deadline, "decode did not save what tcpdump recorded"
            time.sleep(0.05)
        code, out, err = interrupted(process)
    assert code == 0, err
    assert "Traceback" not in err
    live, summary = messages(out)
    theirs = decoded_file(tmp_path / "tcpdump.pcap")
    # 3 x 2 OPTIONS and their 200s, and SIPp's call: INVITE, 180, 200, ACK, BYE, 200.
    assert len(live) == 12 + 6
    assert [same(m) for m in live] == [same(m) for m in theirs]
    assert same_times(live, theirs)
    assert {m["transport"] for m in live} == {"udp", "tcp"}
    assert summary["summary"]["sip"] == 18 and summary["exit_code"] == 0
    assert summary["input"] == "live capture on lo"
    # What --write saved is what was decoded, and tshark reads it without a warning.
    written_back = decoded_file(saved)
    assert [same(m) for m in written_back] == [same(m) for m in live]
    assert same_times(written_back, live)
    tshark = require_tool("tshark")
    done = subprocess.run([tshark, "-r", str(saved)], capture_output=True, text=True, timeout=60)
    noise = 'Running as user "root" and group "root". This could be dangerous.'
    assert done.returncode == 0 and done.stderr.strip() in ("", noise), done.stderr


def test_count_and_duration_stop_the_capture_by_themselves(kamailio: Kamailio) -> None:
    process = started("-i", "lo", "--port", str(kamailio.udp), "-n", "4", "--jsonl")
    result = siptool("options-ping", "-n", "3", "-i", "0.05", kamailio.uri("udp"))
    assert result.returncode == 0, result.stderr
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    live, _ = messages(out)
    assert [m["cseq"]["seq"] for m in live] == [1, 1, 2, 2]  # 4 packets: 2 OPTIONS, 2 200s
    timed = siptool("decode", "-i", "lo", "--port", "9", "--duration", "0.3", timeout=20)
    assert timed.returncode == 0, timed.stderr
    assert timed.stdout.splitlines()[-1] == "0 SIP, 0 STUN, 0 invalid"


def test_a_calls_ladder_is_printed_once_the_call_has_ended(
    sipp: Callable[..., Sipp], tmp_path: Path
) -> None:
    from tests.support.live_capture import sipp_call

    uas = sipp()
    process = started("-i", "lo", "--port", str(uas.port), "--flow")
    sipp_call(uas, tmp_path)
    # The call ended with BYE / 200: its ladder comes after the linger, while decode runs.
    shown = read_until(process.stdout, "BYE", 15)
    assert process.poll() is None
    assert shown.startswith("Call-ID: ") and "6 messages" in shown.splitlines()[0]
    code, out, err = interrupted(process)
    assert code == 0, err
    assert (shown + out).count("Call-ID: ") == 1
    assert (shown + out).splitlines()[-1] == "6 SIP, 0 STUN, 0 invalid"


def test_a_missing_interface_or_privilege_is_one_line_and_exit_3(tmp_path: Path) -> None:
    saved = tmp_path / "never.pcapng"
    missing = siptool("decode", "-i", "nosuch0", "--write", str(saved))
    assert missing.returncode == 3 and missing.stdout == ""
    assert missing.stderr == "siptool decode: no such interface: nosuch0\n"
    assert not saved.exists()  # no empty file left behind
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("setpriv (util-linux) is needed to drop CAP_NET_RAW")
    from tests.support.run import SIPTOOL, environment

    done = subprocess.run(
        [setpriv, "--inh-caps=-all", "--bounding-set=-net_raw", *SIPTOOL, "decode", "-i", "lo"],
        capture_output=True,
        text=True,
        timeout=30,
        env=environment(None),
    )
    assert done.returncode == 3, done.stderr
    assert done.stderr == (
        "siptool decode: capturing on lo needs root or the CAP_NET_RAW capability\n"
    )


def test_decode_refuses_a_file_and_an_interface_together_and_live_flags_without_one() -> None:
    both = siptool("decode", "-i", "lo", "capture.pcap")
    assert both.returncode == 2 and "not both" in both.stderr
    alone = siptool("decode", "--count", "3", "capture.pcap")
    assert alone.returncode == 2 and "--count only apply to a live capture" in alone.stderr
    bad = siptool("decode", "-i", "lo", "--port", "70000")
    assert bad.returncode == 2 and "bad port '70000'" in bad.stderr


def test_live_rtp_gives_the_streams_and_verdict_of_the_recorded_call(
    kamailio: Kamailio, tmp_path: Path
) -> None:
    from tests.support.media_calls import call_through

    # --rtp with no --port captures every port: the media ports are only known from the SDP.
    process = started("-i", "lo", "--rtp", "--json")
    call = call_through(kamailio, tmp_path, "media-call-uac.xml", "media-call-uas.xml",
                        caller_audio=34, callee_audio=34, pause_ms=400)  # fmt: skip
    code, out, err = interrupted(process)
    assert code == 0, err
    live = json.loads(out)
    recorded = json.loads(siptool("decode", "--rtp", "--json", str(call.path)).stdout)
    [theirs] = recorded["media"]
    [ours] = [m for m in live["media"] if m["call_id"] == theirs["call_id"]]
    assert (ours["verdict"], ours["reasons"]) == (theirs["verdict"], theirs["reasons"])
    assert ours["verdict"] == "both-ways"

    def figures(doc: dict[str, Any]) -> list[tuple[object, ...]]:
        return sorted(
            (s["src"], s["dst"], s["ssrc"], s["codec"], s["packets"], s["lost"])
            for s in doc["rtp_streams"]
            if s["call_id"] == theirs["call_id"]
        )

    assert figures(live) == figures(recorded) and len(figures(live)) == 2
