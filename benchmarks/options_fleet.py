"""1,000 OPTIONS transactions to a loopback Kamailio: siptool vs SIPp vs sipsak, in one run.

    python benchmarks/options_fleet.py [--transactions 1000]

siptool: `options-ping -f FILE` with one target per line (sip:pingN@127.0.0.1:PORT), probed
concurrently, each from its own socket.  SIPp: the same number of OPTIONS from
benchmarks/sipp/options-uac.xml at a high call rate with up to 200 in flight.  sipsak: run once
per transaction, one after the other, as a shell loop would.  Each tool's wall time (best of
--runs), replies received and the ratios are printed, and what siptool costs before it sends
anything (one target, and `--version`).  Goal (issue 14): siptool within 1.5x of SIPp, far
ahead of sipsak, no loss.  siptool's bytecode is compiled first, as `pip install` does (an
editable checkout under PYTHONDONTWRITEBYTECODE would compile every module on every run).
Needs kamailio, sipp (sip-tester) and sipsak.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.kamailio import start_kamailio  # noqa: E402
from tests.support.servers import free_port  # noqa: E402


def timed(command: list[str], **kw: object) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    return time.perf_counter() - start, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transactions", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3, help="best of this many (siptool, SIPp)")
    args = parser.parse_args()
    n = args.transactions
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "siptool")], check=True)
    for tool in ("kamailio", "sipp", "sipsak"):
        if shutil.which(tool) is None and shutil.which(tool, path="/usr/sbin") is None:
            print(f"{tool} is not installed", file=sys.stderr)
            return 3
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        kamailio = start_kamailio(tmp)
        try:
            port = kamailio.udp
            targets = tmp / "targets.txt"
            targets.write_text("".join(f"sip:ping{i}@127.0.0.1:{port}\n" for i in range(n)))

            # The console script beside this interpreter, as a user runs it (not a pyenv shim,
            # which alone adds ~80 ms here).
            script = Path(sys.executable).with_name("siptool")
            command = [str(script)] if script.exists() else [sys.executable, "-m", "siptool"]
            runs = [
                timed([*command, "options-ping", "--json", "-f", str(targets)])
                for _ in range(args.runs)
            ]
            ours_s, ours = min(runs, key=lambda r: r[0])
            startup_s, _ = timed([sys.executable, "-c", "pass"])
            version_s = min(timed([*command, "--version"])[0] for _ in range(args.runs))
            one_s = min(
                timed([*command, "options-ping", "--json", f"sip:127.0.0.1:{port}"])[0]
                for _ in range(args.runs)
            )
            doc = json.loads(ours.stdout)
            ours_ok = sum(t["stats"]["received"] for t in doc["targets"])

            sipp_runs = [
                timed(
                    [
                        "sipp",
                        f"127.0.0.1:{port}",
                        "-sf",
                        str(ROOT / "benchmarks/sipp/options-uac.xml"),
                        "-m",
                        str(n),
                        "-r",
                        "5000",
                        "-l",
                        "200",
                        "-i",
                        "127.0.0.1",
                        "-p",
                        str(free_port("udp")),
                        "-nostdin",
                        "-timeout",
                        "60s",
                        "-trace_stat",
                        "-stf",
                        str(tmp / "sipp.csv"),
                    ],
                    cwd=tmp,
                )
                for _ in range(args.runs)
            ]
            sipp_s, sipp = min(sipp_runs, key=lambda r: r[0])
            sipp_ok = n if sipp.returncode == 0 else _sipp_successes(tmp / "sipp.csv")

            start = time.perf_counter()
            sipsak_ok = 0
            for i in range(n):
                r = subprocess.run(
                    ["sipsak", "-s", f"sip:ping{i}@127.0.0.1:{port}"], capture_output=True
                )
                sipsak_ok += r.returncode == 0
            sipsak_s = time.perf_counter() - start
        finally:
            kamailio.stop()

    print(f"{n} OPTIONS transactions to Kamailio on loopback")
    print(f"{'tool':<34}{'wall s':>8}{'replies':>9}{'tx/s':>9}")
    for name, secs, ok in (
        ("siptool options-ping -f (concurrent)", ours_s, ours_ok),
        ("sipp -sf options-uac.xml -r 5000", sipp_s, sipp_ok),
        ("sipsak -s, once per transaction", sipsak_s, sipsak_ok),
    ):
        print(f"{name:<34}{secs:8.2f}{ok:9d}{n / secs:9.0f}")
    print(f"siptool / SIPp wall time  : {ours_s / sipp_s:.2f}x (goal <= 1.5x)")
    print(f"  Python start-up (python -c pass): {startup_s:.2f} s, siptool --version")
    print(f"  {version_s:.2f} s, options-ping to one target {one_s:.2f} s (SIPp's pace: 5000/s)")
    print(f"sipsak / siptool wall time: {sipsak_s / ours_s:.2f}x")
    return 0


def _sipp_successes(stats: Path) -> int:
    try:
        rows = stats.read_text().splitlines()
        header, last = rows[0].split(";"), rows[-1].split(";")
        return int(last[header.index("SuccessfulCall(C)")])
    except (OSError, ValueError, IndexError):
        return -1


if __name__ == "__main__":
    raise SystemExit(main())
