"""Start-up cost: `siptool --version` against `python -c "import click"`.

    python benchmarks/startup.py [--runs 30]

Both run in fresh interpreters, alternately, `--runs` times each in this one run; the median
wall times and their ratio are printed.  Goal (issue 2): siptool within 1.3x of importing click.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path


def sample(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    # The installed console script, as a user types it; `python -m siptool` when not installed.
    # (Not shutil.which: a pyenv shim in front of it is a bash script that costs ~80 ms.)
    script = Path(sys.executable).with_name("siptool")
    if script.exists():
        ours_cmd = [str(script), "--version"]
    else:
        ours_cmd = [sys.executable, "-m", "siptool", "--version"]
    click_cmd = [sys.executable, "-c", "import click"]
    ours: list[float] = []
    theirs: list[float] = []
    sample(ours_cmd)  # warm the file cache and .pyc files
    sample(click_cmd)
    for _ in range(args.runs):
        ours.append(sample(ours_cmd))
        theirs.append(sample(click_cmd))
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"siptool --version     : {a * 1000:7.1f} ms (median of {args.runs})")
    print(f'python -c "import click": {b * 1000:7.1f} ms')
    print(f"ratio                 : {a / b:7.2f}x (goal <= 1.3x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
