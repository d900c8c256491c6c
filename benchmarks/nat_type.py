"""NAT type discovery on real Linux NAT: siptool beside turnutils_natdiscovery, stund's `stun`
client and pystun3, on each variant of the tests/nat testbed, in one run.

    sudo python benchmarks/nat_type.py [--runs 3] [--variants masquerade,blocked]

Needs root (network namespaces, iptables), iproute2, iptables, coturn, stun-client and pystun3.
For every variant the testbed is built (client 10.0.0.2 -- router -- coturn on 198.51.100.2
and .3), each tool runs in the client namespace `--runs` times, alternately, with its own
default settings, and the median wall time and the verdict (mapped to the RFC 3489 label) are
printed beside the right answer.  pystun3 is bound to the client's address (it compares its
bound address with the mapped one, and bound to 0.0.0.0 could never say "open internet").
Goal (issue 4): siptool right on all five and faster than every other tool on each.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.nat.testbed import (  # noqa: E402
    CLIENT_IP,
    EXPECTED,
    SERVER_IP,
    STUN_PORT,
    VARIANTS,
    NatTestbed,
    running_testbed,
)

PYSTUN3 = {
    "Blocked": "udp-blocked",
    "Open Internet": "open-internet",
    "Full Cone": "full-cone",
    "Symmetric UDP Firewall": "symmetric-udp-firewall",
    "Restric NAT": "restricted-cone",
    "Restric Port NAT": "port-restricted-cone",
    "Symmetric NAT": "symmetric",
}
CONES = {
    "Endpoint Independent": "full-cone",
    "Address Dependent": "restricted-cone",
    "Address and Port Dependent": "port-restricted-cone",
}
TOOL_TIMEOUT = 60.0


def siptool_verdict(out: str) -> tuple[str, str]:
    doc = json.loads(out)
    return doc["classic"], f"{doc['mapping']} / {doc['filtering']}"


def turnutils_verdict(out: str) -> tuple[str, str]:
    mapping = re.search(r"NAT with (.+?) Mapping!", out)
    filtering = re.search(r"NAT with (.+?) Filtering!", out)
    if mapping is None:
        return "no verdict", "no result printed"
    raw = f"{mapping.group(1)} / {filtering.group(1) if filtering else '?'}"
    if mapping.group(1) != "Endpoint Independent":
        return "symmetric", raw
    if filtering is None:
        return "no verdict", raw
    return CONES.get(filtering.group(1), "no verdict"), raw


def stund_verdict(out: str) -> tuple[str, str]:
    line = re.search(r"Primary: (.*)", out)
    if line is None:
        return "no verdict", "no result printed"
    raw = line.group(1).strip()
    if raw.startswith("Open"):
        return "open-internet", raw
    if raw.startswith("Blocked"):
        return "udp-blocked", raw
    if "Firewall" in raw:
        return "symmetric-udp-firewall", raw
    if raw.startswith("Dependent Mapping"):
        return "symmetric", raw
    if "Independent Filter" in raw:
        return "full-cone", raw
    if "Address Dependent Filter" in raw:
        return "restricted-cone", raw
    if "Port Dependent Filter" in raw:
        return "port-restricted-cone", raw
    return "no verdict", raw


def pystun3_verdict(out: str) -> tuple[str, str]:
    line = re.search(r"NAT Type: (.*)", out)
    if line is None:
        return "no verdict", "no result printed"
    raw = line.group(1).strip()
    return PYSTUN3.get(raw, "no verdict"), raw


def tools() -> list[tuple[str, list[str], Callable[[str], tuple[str, str]]]]:
    server = f"{SERVER_IP}:{STUN_PORT}"
    return [
        ("siptool", [sys.executable, "-m", "siptool", "nat-type", "--json", server],
         siptool_verdict),
        ("turnutils_natdiscovery", ["turnutils_natdiscovery", "-m", "-f", "-p", str(STUN_PORT),
                                    SERVER_IP], turnutils_verdict),
        ("stund stun", ["stun", SERVER_IP], stund_verdict),
        ("pystun3", ["pystun3", "-H", SERVER_IP, "-P", str(STUN_PORT), "-i", CLIENT_IP],
         pystun3_verdict),
    ]  # fmt: skip


def run_tool(
    bed: NatTestbed, argv: list[str], parse: Callable[[str], tuple[str, str]]
) -> tuple[float, str, str]:
    started = time.perf_counter()
    try:
        result = bed.in_client(*argv, timeout=TOOL_TIMEOUT)
    except subprocess.TimeoutExpired:
        return time.perf_counter() - started, "no verdict", f"killed after {TOOL_TIMEOUT:g} s"
    elapsed = time.perf_counter() - started
    try:
        # siptool's JSON is on stdout alone; the others print their verdicts anywhere.
        text = (
            result.stdout
            if argv[-3:-1] == ["nat-type", "--json"]
            else (result.stdout + result.stderr)
        )
        verdict, raw = parse(text)
    except (ValueError, KeyError) as exc:
        verdict, raw = "no verdict", f"unparseable output ({exc})"
    return elapsed, verdict, raw


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    rows: list[tuple[str, str, str, float, str, str]] = []
    with tempfile.TemporaryDirectory() as work:
        for variant in variants:
            with running_testbed(variant, Path(work)) as bed:
                samples: dict[str, list[float]] = {}
                last: dict[str, tuple[str, str]] = {}
                for _ in range(max(1, args.runs)):
                    for name, argv, parse in tools():
                        elapsed, verdict, raw = run_tool(bed, argv, parse)
                        samples.setdefault(name, []).append(elapsed)
                        last[name] = (verdict, raw)
                for name, _, _ in tools():
                    verdict, raw = last[name]
                    rows.append(
                        (variant, EXPECTED[variant][2], name,
                         statistics.median(samples[name]), verdict, raw)
                    )  # fmt: skip
                    print(f"{variant:13} {name:23} {statistics.median(samples[name]):6.2f} s  "
                          f"{verdict}", file=sys.stderr)  # fmt: skip
    print()
    print(
        f"| variant | right answer | tool | wall s (median of {args.runs}) | verdict | ok | raw |"
    )
    print("|---|---|---|---:|---|---|---|")
    for variant, expected, name, seconds, verdict, raw in rows:
        mark = "yes" if verdict == expected else "NO"
        print(f"| {variant} | {expected} | {name} | {seconds:.2f} | {verdict} | {mark} | {raw} |")
    print()
    print("| variant | fastest correct tool | siptool correct and fastest |")
    print("|---|---|---|")
    for variant in variants:
        mine = [r for r in rows if r[0] == variant]
        right = [r for r in mine if r[4] == r[1]]
        fastest = min(right, key=lambda r: r[3])[2] if right else "none"
        ours = next(r for r in mine if r[2] == "siptool")
        best = ours[4] == ours[1] and all(ours[3] < r[3] for r in mine if r[2] != "siptool")
        print(f"| {variant} | {fastest} | {'yes' if best else 'no'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
