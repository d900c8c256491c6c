"""siptool decode against tshark on a capture-scale SIP+RTP pcap: wall time and peak memory.

    python benchmarks/decode_scale.py [--capture FILE] [--scale K] [--runs N]
        [--views table,verbose,jsonl,json,flow,rtp] [--timeout S]

The capture is benchmarks/build_media_capture.py's (SIPp calls with RTP through Kamailio, an
OPTIONS flood, digest REGISTERs, recorded by tcpdump): --capture FILE reuses FILE, or builds it
there when it does not exist; without --capture one is built in a temporary directory at
--scale.  Then, in this one run, each view's siptool command and its tshark pair read the same
file, output to /dev/null, and the script prints a Markdown table to paste into a note:
best wall time of --runs (time.perf_counter around the child), the child's peak RSS (os.wait4's
ru_maxrss, KiB on Linux; the largest of the runs), the ratio siptool/tshark and the goal.

Goals (issue 10): table <= 0.5x `tshark -Y sip`, -v <= 0.5x `tshark -Y sip -V`, --jsonl <= 0.1x
`tshark -Y sip -T json`, --rtp <= 0.5x `tshark -q -z rtp,streams`; every siptool view under
100 MB peak RSS (--json and --flow have no tshark pair: RSS only).

Decisions:
- siptool runs as the console script beside this interpreter (what users run; not a pyenv
  shim, which adds its own start-up), else `python -m siptool`, or as --siptool COMMAND says
  (another checkout: `--siptool "python -m siptool"` with PYTHONPATH set); the table says
  which, and the version line is that command's `--version`.
- Each siptool view is run once on a small fixture capture first, with PYTHONDONTWRITEBYTECODE
  unset in the children's environment, so the timed runs start from cached bytecode as an
  installed siptool does.
- A view siptool rejects as a usage error (exit 2: --rtp before it exists) is "not available",
  and its tshark pair is not run.  Any other siptool exit but 0 and 1 (1: some input invalid)
  is shown in the table: a crashed run's time means nothing.
- Every child has a wall-clock bound (--timeout), enforced by killing it by PID.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WARM_UP = ROOT / "tests" / "fixtures" / "captures" / "sip-call-sipp-uac-uas.pcap"
RSS_GOAL_MB = 100.0
USAGE_ERROR = 2


@dataclass(frozen=True)
class View:
    name: str
    flags: tuple[str, ...]  # siptool decode flags
    tshark: tuple[str, ...] | None  # tshark arguments after -r FILE; None: no pair
    ratio_goal: float | None


VIEWS = {
    v.name: v
    for v in (
        View("table", (), ("-Y", "sip"), 0.5),
        View("verbose", ("-v",), ("-Y", "sip", "-V"), 0.5),
        View("jsonl", ("--jsonl",), ("-Y", "sip", "-T", "json"), 0.1),
        View("json", ("--json",), None, None),
        View("flow", ("--flow",), None, None),
        View("rtp", ("--rtp",), ("-q", "-z", "rtp,streams"), 0.5),
    )
}


@dataclass(frozen=True)
class Measured:
    wall: float  # best of the runs, seconds
    rss_mb: float  # largest peak RSS of the runs
    exit_code: int


@dataclass(frozen=True)
class Row:
    view: View
    ours: Measured
    theirs: Measured | None


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_once(argv: Sequence[str], timeout: float, env: dict[str, str]) -> Measured:
    """One child, output to /dev/null: wall time, peak RSS (os.wait4), exit status."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env
        )
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped by wait4
        if proc.returncode < 0:
            err.seek(0)
            tail = err.read()[-400:].decode(errors="replace")
            print(
                f"{argv[0]} killed ({-proc.returncode}) after {wall:.0f} s: {tail}", file=sys.stderr
            )
    return Measured(wall, usage.ru_maxrss / 1024, proc.returncode)


def measure(argv: Sequence[str], runs: int, timeout: float, env: dict[str, str]) -> Measured:
    results = [run_once(argv, timeout, env) for _ in range(runs)]
    return Measured(
        min(r.wall for r in results),
        max(r.rss_mb for r in results),
        max((r.exit_code for r in results), key=abs),
    )


def siptool_command(given: str | None) -> tuple[list[str], str]:
    if given:
        return shlex.split(given), f"command `{given}`"
    script = Path(sys.executable).with_name("siptool")
    if script.exists():
        return [str(script)], "console script " + str(script)
    return [sys.executable, "-m", "siptool"], f"{sys.executable} -m siptool"


def warm_up(siptool: list[str], views: Sequence[View], env: dict[str, str]) -> None:
    for view in views:
        subprocess.run(
            [*siptool, "decode", *view.flags, str(WARM_UP)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            timeout=60,
            check=False,
        )


def bench_view(
    view: View, capture: Path, siptool: list[str], args: argparse.Namespace, env: dict[str, str]
) -> Row:
    print(f"running {view.name} ...", file=sys.stderr, flush=True)
    ours = measure([*siptool, "decode", *view.flags, str(capture)], args.runs, args.timeout, env)
    theirs = None
    if view.tshark is not None and ours.exit_code != USAGE_ERROR:
        tshark = ["tshark", "-r", str(capture), *view.tshark]
        theirs = measure(tshark, args.runs, args.timeout, env)
    return Row(view, ours, theirs)


def goal_text(row: Row) -> str:
    """The goal and whether this run met it."""
    view, ours, theirs = row.view, row.ours, row.theirs
    if ours.exit_code == USAGE_ERROR:
        return "not available"
    parts, met = [], ours.rss_mb < RSS_GOAL_MB
    if view.ratio_goal is not None:
        parts.append(f"<= {view.ratio_goal:g}x")
        met = met and theirs is not None and ours.wall / theirs.wall <= view.ratio_goal
    parts.append(f"< {RSS_GOAL_MB:.0f} MB")
    verdict = "met" if met else "MISSED"
    if ours.exit_code not in (0, 1):
        verdict = f"siptool exit {ours.exit_code}"
    elif theirs is not None and theirs.exit_code != 0:
        verdict = f"tshark exit {theirs.exit_code}"
    return f"{', '.join(parts)}: {verdict}"


def table_row(row: Row) -> str:
    name = f"`{' '.join(('decode', *row.view.flags))}`"
    if row.ours.exit_code == USAGE_ERROR:
        cells = [name, "not available", "", "", "", "", goal_text(row)]
        return "| " + " | ".join(cells) + " |"
    ours, theirs = row.ours, row.theirs
    cells = [name, f"{ours.wall:.2f}", f"{ours.rss_mb:.0f}"]
    if theirs is None:
        cells += ["", "", ""]
    else:
        cells += [f"{theirs.wall:.2f}", f"{theirs.rss_mb:.0f}", f"{ours.wall / theirs.wall:.2f}"]
    cells.append(goal_text(row))
    return "| " + " | ".join(cells) + " |"


def capture_summary(capture: Path) -> str:
    """Packets, SIP and RTP as tshark's protocol hierarchy counts them (tool-neutral)."""
    out = subprocess.run(
        ["tshark", "-r", str(capture), "-q", "-z", "io,phs"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    ).stdout
    frames = {m[1]: int(m[2]) for m in re.finditer(r"^\s*(\w+)\s+frames:(\d+)", out, re.M)}
    size = capture.stat().st_size / 1e6
    return (
        f"{frames.get('eth', frames.get('sll', 0)):,} packets, {frames.get('sip', 0):,} SIP, "
        f"{frames.get('rtp', 0):,} RTP ({size:.0f} MB)"
    )


def tool_version(argv: Sequence[str]) -> str:
    out = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False)
    return (out.stdout or out.stderr).splitlines()[0].strip() if (out.stdout or out.stderr) else "?"


def checkout() -> str:
    """This checkout's commit, and whether its siptool/ differs from it (work in progress)."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "siptool"], capture_output=True, text=True
    ).stdout.strip()
    state = " with uncommitted changes in siptool/" if dirty else ""
    return f"checkout {ROOT} at {head.stdout.strip()}{state}"


def print_table(
    rows: list[Row], capture: Path, siptool: list[str], how: str, runs: int, load: float
) -> None:
    print()
    print(f"capture: {capture}: {capture_summary(capture)}")
    print(
        f"siptool: {tool_version([*siptool, '--version'])} "
        f"({checkout() if how.startswith('console') else 'as given'}), run as the {how}; "
        f"tshark: {tool_version(['tshark', '-v'])}"
    )
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, load average {load:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end (other work on the machine slows both tools)"
    )
    print(
        f"best wall of {runs} run(s), output to /dev/null; peak RSS of the child from os.wait4 "
        "ru_maxrss (MB = 2^20 bytes); ratio = siptool wall / tshark wall"
    )
    print()
    print(
        "| view | siptool wall s | siptool peak RSS MB | tshark wall s | tshark peak RSS MB "
        "| ratio | goal |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    for row in rows:
        print(table_row(row))
    pairs = [
        f"{r.view.name}: tshark -r FILE {' '.join(r.view.tshark)}" for r in rows if r.view.tshark
    ]
    print()
    print("tshark pairs: " + "; ".join(pairs))
    print()
    print(rss_verdict(rows))


def rss_verdict(rows: list[Row]) -> str:
    """The RSS goal over every view that ran to the end (a crashed run's peak means nothing)."""
    ran = [r for r in rows if r.ours.exit_code in (0, 1)]
    failed = [r.view.name for r in rows if r not in ran and r.ours.exit_code != USAGE_ERROR]
    over = [r.view.name for r in ran if r.ours.rss_mb >= RSS_GOAL_MB]
    verdict = "met" if not over else "MISSED by " + ", ".join(over)
    if failed:
        verdict += f" (not measured: {', '.join(failed)} failed)"
    return f"RSS goal (every siptool view < {RSS_GOAL_MB:.0f} MB): {verdict}"


def ensure_capture(path: Path, scale: float) -> None:
    if path.exists():
        return
    print(f"building {path} (scale {scale:g})", file=sys.stderr, flush=True)
    subprocess.run(
        [sys.executable, str(HERE / "build_media_capture.py"), str(path), "--scale", f"{scale:g}"],
        check=True,
        timeout=1800,
    )


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--capture", type=Path, help="reuse FILE, or build it there if missing")
    p.add_argument("--scale", type=float, default=1.0, help="capture size when building one")
    p.add_argument(
        "--views", default=",".join(VIEWS), help="comma-separated, of: " + ",".join(VIEWS)
    )
    p.add_argument("--runs", type=int, default=1, help="runs per command; the best time is kept")
    p.add_argument(
        "--siptool",
        metavar="COMMAND",
        help="how to run siptool (default: the console script beside this Python)",
    )
    p.add_argument("--timeout", type=float, default=1200.0, help="seconds per child at most")
    args = p.parse_args()
    unknown = [v for v in args.views.split(",") if v not in VIEWS]
    if unknown:
        p.error(f"unknown view(s): {', '.join(unknown)}")
    if args.runs < 1:
        p.error("--runs must be at least 1")
    return args


def run(capture: Path, args: argparse.Namespace) -> None:
    env = child_env()
    siptool, how = siptool_command(args.siptool)
    views = [VIEWS[v] for v in args.views.split(",")]
    load = os.getloadavg()[0]
    warm_up(siptool, views, env)
    rows = [bench_view(view, capture, siptool, args, env) for view in views]
    print_table(rows, capture, siptool, how, args.runs, load)


def main() -> int:
    args = parse_args()
    if shutil.which("tshark") is None:
        print("tshark is not installed (Debian package tshark)", file=sys.stderr)
        return 3
    if args.capture is not None:
        ensure_capture(args.capture, args.scale)
        run(args.capture, args)
        return 0
    with tempfile.TemporaryDirectory(prefix="decode-scale-") as tmp:
        capture = Path(tmp) / "media.pcap"
        ensure_capture(capture, args.scale)
        run(capture, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
