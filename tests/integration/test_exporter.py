"""`siptool exporter` against real peers: Kamailio (UDP, TLS, registrar), a SIPp UAS answering
OPTIONS, coturn, and a real Prometheus (Debian ``prometheus``) scraping it every 2 s with
blackbox_exporter's relabelling of a target list into ``target=``.

The exporter runs as a process on a free loopback port, started by the tests and stopped by
PID; its answers are read by prometheus-client's OpenMetrics parser, and the Prometheus HTTP
API is asked what it stored."""

from __future__ import annotations

import concurrent.futures
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_openmetrics import parse, value
from tests.support.kamailio import PASSWORD, Kamailio
from tests.support.paths import ROOT
from tests.support.peers import require_tool
from tests.support.responders import closed_udp_port, idle_udp_socket
from tests.support.run import SIPTOOL, siptool
from tests.support.servers import Server, free_port, http_ok
from tests.support.sipp import Sipp, start_sipp
from tests.support.stun_peers import StunPeer

pytestmark = pytest.mark.peer

OPENMETRICS = "application/openmetrics-text; version=1.0.0"
SCRAPE_INTERVAL = 2.0


@dataclass
class Exporter:
    server: Server
    url: str

    def get(
        self, path: str, headers: dict[str, str] | None = None, **query: str
    ) -> tuple[int, str, str]:
        """(status, Content-Type, body) of ``GET path?query``."""
        url = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        request = urllib.request.Request(url, headers={"Accept": OPENMETRICS, **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, answer.headers["Content-Type"], answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers["Content-Type"], exc.read().decode()

    def probe(self, module: str, target: str, **headers: str) -> dict[str, Any]:
        status, content_type, body = self.get("/probe", headers, module=module, target=target)
        assert status == 200, body
        assert content_type.startswith("application/openmetrics-text; version=1.0.0")
        return parse(body)


def start_exporter(work: Path, config: str, *extra: str) -> Exporter:
    path = work / "siptool-exporter.toml"
    path.write_text(config)
    port = free_port("tcp")
    argv = [*SIPTOOL, "exporter", "--listen", f"127.0.0.1:{port}", "--config", str(path), *extra]
    server = Server(argv, log=work / "exporter.log", cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    server.wait_until(lambda: http_ok(url + "/-/healthy"), what="(answering /-/healthy)")
    return Exporter(server, url)


@dataclass
class Peers:
    exporter: Exporter
    kamailio: Kamailio
    sipp: Sipp
    coturn: StunPeer


@pytest.fixture(scope="module")
def peers(
    tmp_path_factory: pytest.TempPathFactory, kamailio: Kamailio, coturn: StunPeer
) -> Iterator[Peers]:
    work = tmp_path_factory.mktemp("exporter")
    (work / "monitor.password").write_text(PASSWORD + "\n")
    config = f"""
[modules.options]
prober = "options-ping"
timeout = 2

[modules.slow]
prober = "options-ping"
timeout = 1.5

[modules.tls]
prober = "options-ping"
insecure = true

[modules.register]
prober = "register"
user = "monitor"
password_file = "{work / "monitor.password"}"

[modules.stun]
prober = "stun-probe"
count = 2
"""
    (work / "sipp").mkdir()
    sipp = start_sipp(work / "sipp", "options-responder.xml", calls=10_000)
    exporter = start_exporter(work, config, "--max-concurrent", "1", "-v")
    try:
        yield Peers(exporter, kamailio, sipp, coturn)
    finally:
        exporter.server.stop()
        sipp.server.stop()
        assert "Traceback" not in exporter.server.log()
        assert PASSWORD not in exporter.server.log()


def test_a_probe_of_kamailio_answers_its_metrics(peers: Peers) -> None:
    target = peers.kamailio.uri("udp")
    found = peers.exporter.probe("options", target)
    labels = {"target": target, "method": "OPTIONS"}
    assert value(found, "siptool_probe_success", **labels) == 1
    assert value(found, "siptool_sip_status_code", **labels) == 200
    assert value(found, "siptool_probe_duration_seconds") > 0


def test_the_same_probe_as_the_command_line(peers: Peers) -> None:
    target = peers.kamailio.uri("udp")
    ours = peers.exporter.probe("options", target)
    line = parse(siptool("options-ping", "--format", "openmetrics", target).stdout)
    assert set(ours) == set(line)
    for name in ("siptool_probe_success", "siptool_sip_status_code", "siptool_sip_loss_ratio"):
        assert [s.labels for s in ours[name].samples] == [s.labels for s in line[name].samples]


def test_tls_register_stun_and_sipp(peers: Peers) -> None:
    tls = peers.kamailio.uri("tls")
    found = peers.exporter.probe("tls", tls)
    assert value(found, "siptool_tls_cert_expiry_timestamp_seconds", target=tls) > time.time()
    registered = peers.exporter.probe("register", peers.kamailio.uri("udp"))
    assert value(registered, "siptool_probe_success", method="REGISTER") == 1
    stun = peers.exporter.probe("stun", peers.coturn.primary)
    assert value(stun, "siptool_probe_success", server=peers.coturn.primary) == 1
    sipp = peers.exporter.probe("options", peers.sipp.uri())
    assert value(sipp, "siptool_sip_status_code", target=peers.sipp.uri()) == 200


def test_a_closed_port_is_success_0_not_an_http_error(peers: Peers) -> None:
    target = f"sip:127.0.0.1:{closed_udp_port()}"
    found = peers.exporter.probe("options", target)
    assert value(found, "siptool_probe_success", target=target) == 0


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"target": "x"}, "module parameter is missing"),
        ({"module": "nope", "target": "x"}, "unknown module 'nope'"),
        ({"module": "options"}, "target parameter is missing"),
        ({"module": "options", "target": "sip:"}, "bad target"),
        ({"module": "options", "target": "sip:u:secret@127.0.0.1"}, "target has a password"),
        ({"module": "options", "target": "--json"}, "must not start with '-'"),
        ({"module": "options", "target": "x", "debug": "1"}, "unknown parameter 'debug'"),
    ],
)
def test_a_bad_request_is_400_with_one_line(
    peers: Peers, query: dict[str, str], reason: str
) -> None:
    status, _, body = peers.exporter.get("/probe", **query)
    assert status == 400 and body.endswith("\n") and body.count("\n") == 1
    assert reason in body
    assert "secret" not in body


def test_the_scrape_timeout_bounds_the_probe(peers: Peers) -> None:
    with idle_udp_socket() as silent:
        target = f"sip:127.0.0.1:{silent.getsockname()[1]}"
        header = {"X-Prometheus-Scrape-Timeout-Seconds": "1.2"}
        found = peers.exporter.probe("options", target, **header)
    assert value(found, "siptool_probe_success", target=target) == 0
    # The module's timeout is 2 s; the scrape's 1.2 s less the 0.5 s margin wins.
    assert value(found, "siptool_probe_duration_seconds") < 1.2
    status, _, body = peers.exporter.get(
        "/probe", {"X-Prometheus-Scrape-Timeout-Seconds": "soon"}, module="options", target="x"
    )
    assert status == 400 and "X-Prometheus-Scrape-Timeout-Seconds" in body


def test_past_the_concurrency_limit_a_probe_is_503(peers: Peers) -> None:
    # --max-concurrent 1: a slow probe holds the one slot for its 1.5 s; a probe asked with a
    # 1 s scrape timeout (0.5 s to start) gives up waiting.
    with idle_udp_socket() as silent, concurrent.futures.ThreadPoolExecutor(2) as pool:
        target = f"sip:127.0.0.1:{silent.getsockname()[1]}"
        slow = pool.submit(peers.exporter.get, "/probe", None, module="slow", target=target)
        _until_in_flight(peers.exporter, 1)  # the slow probe has the slot (for 1.5 s)
        hurried = peers.exporter.get(
            "/probe", {"X-Prometheus-Scrape-Timeout-Seconds": "1"}, module="options",
            target=target,
        )  # fmt: skip
        assert slow.result()[0] == 200
    assert hurried[0] == 503 and hurried[2] == "too many probes in flight\n"


def _until_in_flight(exporter: Exporter, count: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = parse(exporter.get("/metrics")[2])
        if value(found, "siptool_exporter_probes_in_flight") == count:
            return
        time.sleep(0.02)
    raise AssertionError(f"never {count} probe(s) in flight")


def test_own_metrics_count_probes_and_rejections(peers: Peers) -> None:
    peers.exporter.probe("options", peers.kamailio.uri("udp"))
    status, _, body = peers.exporter.get("/metrics")
    assert status == 200
    found = parse(body)
    assert value(found, "siptool_exporter_probes_total", module="options", result="success") >= 1
    histogram = found["siptool_exporter_probe_duration_seconds"]
    assert histogram.type == "histogram"
    # Without Accept: openmetrics, the Prometheus 0.0.4 text.
    plain = urllib.request.urlopen(peers.exporter.url + "/metrics", timeout=10)
    assert plain.headers["Content-Type"].startswith("text/plain; version=0.0.4")


def test_a_password_in_the_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[modules.r]\nprober = "register"\nuser = "u"\npassword = "hunter2"\n')
    result = siptool("exporter", "--config", str(path), "--listen", f"127.0.0.1:{free_port('tcp')}")
    assert result.returncode == 2
    assert "'password' in the config; put it in a file named by 'password_file'" in result.stderr
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('[modules.o]\nprober = "ping"\n', "prober must be one of"),
        ('[modules.o]\nprober = "options-ping"\ntransprt = "udp"\n', "module 'o': No such option"),
        ('[modules.o]\nprober = "options-ping"\npcap_out = "x"\n', "is the exporter's"),
        ("[modules.o\n", "not TOML"),
    ],
)
def test_a_bad_config_stops_the_exporter_with_its_reason(
    tmp_path: Path, config: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(config)
    result = siptool("exporter", "--config", str(path), "--listen", f"127.0.0.1:{free_port('tcp')}")
    assert result.returncode in (2, 3) and message in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1


# -- a real Prometheus --------------------------------------------------------------------------


def _prometheus_config(exporter: str, jobs: dict[str, list[str]]) -> str:
    """blackbox_exporter's relabelling: each target into ?target=, the exporter as address."""
    out = [
        f"global:\n  scrape_interval: {SCRAPE_INTERVAL:g}s\n  scrape_timeout: 1500ms",
        "scrape_configs:",
    ]
    for module, targets in jobs.items():
        out.append(
            f"  - job_name: siptool_{module}\n    metrics_path: /probe\n"
            f"    params:\n      module: [{module}]\n"
            f"    static_configs:\n      - targets: {json.dumps(targets)}\n"
            "    relabel_configs:\n"
            "      - source_labels: [__address__]\n        target_label: __param_target\n"
            "      - source_labels: [__param_target]\n        target_label: instance\n"
            f"      - target_label: __address__\n        replacement: {exporter}"
        )
    out.append(
        f"  - job_name: siptool_exporter\n    static_configs:\n      - targets: [{exporter}]"
    )
    return "\n".join(out) + "\n"


def _query(url: str, expression: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"query": expression})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=10) as answer:
        document = json.load(answer)
    assert document["status"] == "success", document
    return list(document["data"]["result"])


def _target_errors(url: str) -> list[tuple[str, str]]:
    """What Prometheus says of each scrape target (for a failure's message)."""
    with urllib.request.urlopen(f"{url}/api/v1/targets", timeout=10) as answer:
        targets = json.load(answer)["data"]["activeTargets"]
    return [(t["scrapeUrl"], t["health"] + " " + t["lastError"]) for t in targets]


def _scraped(url: str) -> bool:
    """Prometheus has scraped at least one target."""
    return any(not health.startswith("unknown") for _, health in _target_errors(url))


def test_prometheus_scrapes_live_targets_as_1_and_a_closed_port_as_0(
    peers: Peers, tmp_path: Path
) -> None:
    binary = require_tool("prometheus", "prometheus")
    closed = f"sip:127.0.0.1:{closed_udp_port()}"
    live = {
        "options": [peers.kamailio.uri("udp"), peers.sipp.uri(), closed],
        "stun": [peers.coturn.primary],
    }
    exporter = peers.exporter.url.removeprefix("http://")
    (tmp_path / "prometheus.yml").write_text(_prometheus_config(exporter, live))
    port = free_port("tcp")
    argv = [
        binary, f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
    ]  # fmt: skip
    server = Server(argv, log=tmp_path / "prometheus.log")
    url = f"http://127.0.0.1:{port}"
    try:
        server.wait_until(lambda: http_ok(url + "/-/ready"), timeout=30, what="(ready)")
        # Prometheus hands its scrape pools their targets some seconds after it is ready
        # (its target updates are throttled to one per 5 s): from the first scrape of any of
        # them, every target must be right within two scrape intervals (and a second's slack).
        server.wait_until(lambda: _scraped(url), timeout=30, what="(scraping)")
        deadline = time.monotonic() + 2 * SCRAPE_INTERVAL + 1
        expected = {t: 1.0 for targets in live.values() for t in targets} | {closed: 0.0}
        seen: dict[str, float] = {}
        up: list[dict[str, Any]] = []
        while time.monotonic() < deadline and (seen != expected or not up):
            results = _query(url, "siptool_probe_success")
            seen = {
                r["metric"]["instance"]: float(r["value"][1])
                for r in results
                if r["metric"]["job"].startswith("siptool_")
            }
            # The exporter's own /metrics is a job of its own, scraped at its own offset.
            up = _query(url, 'up{job="siptool_exporter"}')
            time.sleep(0.2)
        assert seen == expected, _target_errors(url)
        assert [u["value"][1] for u in up] == ["1"], _target_errors(url)
        # The series carries the target as the probe named it, beside Prometheus's instance.
        [kamailio] = _query(url, f'siptool_sip_status_code{{instance="{peers.kamailio.uri()}"}}')
        assert (
            kamailio["metric"]["target"] == peers.kamailio.uri() and kamailio["value"][1] == "200"
        )
    finally:
        server.stop()
