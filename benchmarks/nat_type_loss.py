"""nat-type on a lossy path: how many verdicts are right, inconclusive or wrong, beside
turnutils_natdiscovery and stund's `stun` client on the same path.

    sudo python benchmarks/nat_type_loss.py [--runs 60] [--losses 10,30,50] [--timeout 3]
                                            [--variant masquerade] [--compare-runs 20]

Needs root (network namespaces, iptables), iproute2, iptables and coturn; stun-client and
coturn's turnutils for the comparison (skipped when missing).  The tests/nat testbed is built
once; for each loss level the router drops forwarded UDP at random in each direction
(iptables' ``statistic --mode random``; this kernel has no netem), and each tool runs in the
client namespace.  A verdict is *right* when it is the variant's RFC 3489 label, *inconclusive*
when the tool says it cannot tell (siptool's "inconclusive", no verdict printed), and *wrong*
otherwise (udp-blocked on a path that carries UDP, another label).  Wall times are printed per
loss level: median and maximum, beside the --timeout asked for.

Every loop is bounded: ``--runs`` runs per level (at most 500), each tool killed after
``TOOL_TIMEOUT`` seconds.  Traffic stays inside the namespaces the script makes.
Issue 8's goal: at 30 % loss each way with --timeout 3, at least 95 % right and none wrong.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.nat_type import stund_verdict, turnutils_verdict  # noqa: E402
from tests.nat.testbed import (  # noqa: E402
    EXPECTED,
    SERVER_IP,
    STUN_PORT,
    NatTestbed,
    running_testbed,
)

TOOL_TIMEOUT = 30.0
MAX_RUNS = 500
NO_VERDICT = ("no verdict", "inconclusive")


def siptool_verdict(out: str) -> tuple[str, str]:
    doc = json.loads(out)
    return doc["classic"], "; ".join(doc["reasons"])


def tools(timeout: float) -> list[tuple[str, list[str], Callable[[str], tuple[str, str]]]]:
    server = f"{SERVER_IP}:{STUN_PORT}"
    found = [
        ("siptool", [sys.executable, "-m", "siptool", "nat-type", "--json",
                     "--timeout", f"{timeout:g}", server], siptool_verdict),
    ]  # fmt: skip
    if shutil.which("turnutils_natdiscovery"):
        found.append(
            ("turnutils_natdiscovery",
             ["turnutils_natdiscovery", "-m", "-f", "-p", str(STUN_PORT), SERVER_IP],
             turnutils_verdict)
        )  # fmt: skip
    if shutil.which("stun"):
        found.append(("stund stun", ["stun", SERVER_IP], stund_verdict))
    return found


def run_tool(
    bed: NatTestbed, argv: list[str], parse: Callable[[str], tuple[str, str]]
) -> tuple[float, str, str]:
    started = time.perf_counter()
    try:
        result = bed.in_client(*argv, timeout=TOOL_TIMEOUT)
    except subprocess.TimeoutExpired:
        return time.perf_counter() - started, "no verdict", f"killed after {TOOL_TIMEOUT:g} s"
    elapsed = time.perf_counter() - started
    if "Traceback" in result.stderr:
        return elapsed, "no verdict", "TRACEBACK: " + result.stderr.strip().splitlines()[-1]
    text = result.stdout if argv[1:3] == ["-m", "siptool"] else result.stdout + result.stderr
    try:
        verdict, raw = parse(text)
    except (ValueError, KeyError) as exc:
        verdict, raw = "no verdict", f"unparseable output ({exc})"
    return elapsed, verdict, raw


def grade(verdict: str, expected: str) -> str:
    if verdict == expected:
        return "right"
    return "inconclusive" if verdict in NO_VERDICT else "wrong"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=60, help="siptool runs per loss level")
    parser.add_argument("--compare-runs", type=int, default=20, help="runs of each other tool")
    parser.add_argument("--losses", default="10,30,50", help="loss in %% each way, per level")
    parser.add_argument("--timeout", type=float, default=3.0, help="siptool's --timeout")
    parser.add_argument("--variant", default="masquerade", choices=sorted(EXPECTED))
    args = parser.parse_args()
    runs = max(1, min(args.runs, MAX_RUNS))
    compare_runs = max(0, min(args.compare_runs, MAX_RUNS))
    losses = [float(x) for x in args.losses.split(",") if x.strip()]
    expected = EXPECTED[args.variant][2]
    rows: list[tuple[float, str, int, dict[str, int], list[float], list[str]]] = []
    with tempfile.TemporaryDirectory() as work, running_testbed(args.variant, Path(work)) as bed:
        for loss in losses:
            bed.set_loss(loss / 100)
            for name, argv, parse in tools(args.timeout):
                count = runs if name == "siptool" else compare_runs
                tally = {"right": 0, "inconclusive": 0, "wrong": 0}
                times: list[float] = []
                wrong: list[str] = []
                for _ in range(count):
                    elapsed, verdict, raw = run_tool(bed, argv, parse)
                    tally[grade(verdict, expected)] += 1
                    times.append(elapsed)
                    if grade(verdict, expected) != "right":
                        wrong.append(f"{grade(verdict, expected)}: {verdict} ({raw})")
                if count:
                    rows.append((loss, name, count, tally, times, wrong))
                    print(f"{loss:4g} % {name:23} {tally} median {statistics.median(times):.2f} s"
                          f" max {max(times):.2f} s", file=sys.stderr)  # fmt: skip
        bed.set_loss(0)
    print()
    print(f"variant {args.variant} (right answer: {expected}); siptool --timeout {args.timeout:g}")
    print()
    print("| loss each way | tool | runs | right | inconclusive | wrong | wall median | wall max |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for loss, name, count, tally, times, _ in rows:
        cells = [f"{loss:g} %", name, str(count), *(str(tally[k]) for k in tally)]
        cells += [f"{statistics.median(times):.2f} s", f"{max(times):.2f} s"]
        print("| " + " | ".join(cells) + " |")
    for loss, name, _, _, _, wrong in rows:
        for item in wrong[:5]:
            print(f"- at {loss:g} % ({name}) {item}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
