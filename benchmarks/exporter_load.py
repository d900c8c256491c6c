"""The exporter under a fleet's load: 1,000 /probe requests (module=options) in 10 s against a
loopback Kamailio, as Prometheus would send them from many scrape targets.

    python benchmarks/exporter_load.py [--requests 1000] [--seconds 10] [--connections 8]

The exporter is started as a user starts it (the console script) and timed until /-/healthy
answers (the issue's "starts in under a second").  Then ``--connections`` keep-alive clients
send the requests on a fixed schedule (one every seconds/requests), each timed from its send to
the last byte of the answer; a probe counts as failed when the answer is not 200 or says
siptool_probe_success 0.  Printed: start-up, requests answered, failures, p50/p95/p99/max
latency and the probe rate reached.  Goal (issue 14): p99 under 50 ms, no failed probe.
Bounded: at most ``--requests`` requests, and the run gives up after twice ``--seconds``.
Needs kamailio.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.kamailio import start_kamailio  # noqa: E402
from tests.support.servers import free_port, http_ok  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        kamailio = start_kamailio(tmp)
        config = tmp / "exporter.toml"
        config.write_text('[modules.options]\nprober = "options-ping"\ntimeout = 2\n')
        port = free_port("tcp")
        script = Path(sys.executable).with_name("siptool")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "siptool"]
        argv = [*command, "exporter", "--listen", f"127.0.0.1:{port}", "--config", str(config)]
        url = f"http://127.0.0.1:{port}"
        started = time.perf_counter()
        exporter = subprocess.Popen(argv, stderr=subprocess.DEVNULL, cwd=ROOT)
        try:
            while not http_ok(url + "/-/healthy"):
                if exporter.poll() is not None or time.perf_counter() - started > 10:
                    print("the exporter did not start", file=sys.stderr)
                    return 3
                time.sleep(0.005)
            startup = time.perf_counter() - started
            latencies, failures = drive(port, kamailio.uri("udp"), args)
        finally:
            exporter.terminate()
            exporter.wait(10)
            kamailio.stop()
    latencies.sort()
    answered = len(latencies)

    def pct(p: float) -> float:
        return latencies[min(answered - 1, int(p * answered))] * 1000

    print(f"exporter start-up (to /-/healthy): {startup * 1000:.0f} ms")
    print(f"requests: {args.requests} over {args.seconds:g} s on {args.connections} connections")
    print(f"answered: {answered}, failed probes: {failures}")
    if answered:
        print(
            f"latency ms: p50 {pct(0.50):.1f}  p95 {pct(0.95):.1f}  p99 {pct(0.99):.1f}  "
            f"max {latencies[-1] * 1000:.1f}  mean {statistics.fmean(latencies) * 1000:.1f}"
        )
    goal = answered == args.requests and failures == 0 and answered and pct(0.99) < 50
    print("goal (p99 < 50 ms, no failure):", "met" if goal else "NOT met")
    return 0 if goal else 1


def drive(port: int, target: str, args: argparse.Namespace) -> tuple[list[float], int]:
    path = "/probe?" + urllib.parse.urlencode({"module": "options", "target": target})
    gap = args.seconds / args.requests
    begin = time.perf_counter() + 0.1
    give_up = begin + 2 * args.seconds
    lock = threading.Lock()
    state = {"next": 0, "failures": 0}
    latencies: list[float] = []

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while True:
            with lock:
                index = state["next"]
                state["next"] += 1
            if index >= args.requests or time.perf_counter() > give_up:
                break
            due = begin + index * gap
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent = time.perf_counter()
            try:
                connection.request("GET", path, headers={"Accept": "application/openmetrics-text"})
                answer = connection.getresponse()
                body = answer.read()
                ok = answer.status == 200 and any(
                    line.startswith(b"siptool_probe_success{") and line.endswith(b"} 1")
                    for line in body.splitlines()
                )
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            took = time.perf_counter() - sent
            with lock:
                latencies.append(took)
                if not ok:
                    state["failures"] += 1
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(args.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, state["failures"]


if __name__ == "__main__":
    raise SystemExit(main())
