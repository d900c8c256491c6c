"""`--format openmetrics` and `--textfile` on the probes, against real peers: Kamailio (UDP
and TLS, its test CA's certificate), a SIPp UAS, coturn and stund.  The text is read by
prometheus-client's OpenMetrics parser (the reference parser of the format, strict about
names, types, units, label escaping and ``# EOF``) and the --textfile by a real node_exporter
(Debian ``prometheus-node-exporter``) whose textfile collector serves it on its /metrics."""

from __future__ import annotations

import datetime
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.kamailio import PASSWORD, Kamailio
from tests.support.peers import require_tool, unavailable
from tests.support.run import siptool
from tests.support.servers import Server, free_port, http_ok
from tests.support.stun_peers import StunPeer
from tests.support.turn_peers import TurnServer, start_turn_server

pytestmark = pytest.mark.peer

TURN_PASSWORD = "pw-metrics-not-printed"


def parse(text: str) -> dict[str, Any]:
    """The families of an OpenMetrics exposition by name; the parser raises on any fault."""
    try:
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
    except ImportError:
        unavailable("prometheus-client is not installed (pip install -e '.[test]')")
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(families: dict[str, Any], name: str, **labels: str) -> float:
    """The one sample of ``name`` whose labels include ``labels``."""
    # A family is named without the _info or _total of its samples (OpenMetrics).
    family = families.get(name) or families[name.removesuffix("_info").removesuffix("_total")]
    found = [s for s in family.samples if s.name == name and labels.items() <= s.labels.items()]
    assert len(found) == 1, (name, labels, family.samples)
    return float(found[0].value)


def metrics(*args: str, code: int = 0, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = siptool(*args, "--format", "openmetrics", env=env)
    assert result.returncode == code, result.stderr
    assert result.stdout.endswith("# EOF\n")
    return parse(result.stdout)


def test_options_ping_over_udp_gives_success_status_rtt_and_server(kamailio: Kamailio) -> None:
    target = kamailio.uri("udp")
    found = metrics("options-ping", "-n", "3", "-i", "0.05", target)
    labels = {"target": target, "transport": "udp", "method": "OPTIONS"}
    assert value(found, "siptool_probe_success", **labels) == 1
    assert value(found, "siptool_sip_status_code", **labels) == 200
    assert 0 < value(found, "siptool_sip_rtt_seconds", **labels) < 1
    assert value(found, "siptool_sip_loss_ratio", **labels) == 0
    assert value(found, "siptool_sip_requests_sent", **labels) == 3
    server = found["siptool_sip_server"].samples[0]
    assert server.name == "siptool_sip_server_info" and server.labels["user_agent"]
    duration = found["siptool_probe_duration_seconds"]
    assert duration.type == "gauge" and duration.unit == "seconds"
    assert 0 < duration.samples[0].value < 10


def test_a_closed_port_is_success_0_with_no_rtt(kamailio: Kamailio) -> None:
    target = f"sip:127.0.0.1:{free_port('udp')}"
    found = metrics("options-ping", "--timeout", "1", target, code=1)
    assert value(found, "siptool_probe_success", target=target) == 0
    assert "siptool_sip_rtt_seconds" not in found  # unknown is no sample, never a 0
    assert value(found, "siptool_sip_loss_ratio", target=target) == 1


def _not_after(cert: str) -> float:
    openssl = require_tool("openssl")
    done = subprocess.run(
        [openssl, "x509", "-noout", "-enddate", "-in", cert],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    text = done.stdout.strip().split("=", 1)[1]
    parsed = datetime.datetime.strptime(text, "%b %d %H:%M:%S %Y %Z")
    return parsed.replace(tzinfo=datetime.UTC).timestamp()


@pytest.mark.parametrize("verify", ["ca-file", "insecure"])
def test_tls_gives_the_certificate_s_expiry(kamailio: Kamailio, verify: str) -> None:
    assert kamailio.ca is not None
    trust = ("--ca-file", str(kamailio.ca.ca_cert)) if verify == "ca-file" else ("--insecure",)
    target = kamailio.uri("tls")
    found = metrics("options-ping", *trust, target)
    expiry = value(found, "siptool_tls_cert_expiry_timestamp_seconds", target=target)
    assert expiry == _not_after(str(kamailio.ca.server_cert))
    version = found["siptool_tls_version"].samples[0].labels
    assert version["version"] in ("TLSv1.2", "TLSv1.3") and version["cipher"]


def test_register_and_send_name_their_method(kamailio: Kamailio) -> None:
    auth = {"SIPTOOL_PASSWORD": PASSWORD}
    target = kamailio.uri("udp")
    found = metrics("register", "--user", "metrics", target, env=auth)
    assert value(found, "siptool_probe_success", method="REGISTER") == 1
    assert value(found, "siptool_sip_auth_rounds", method="REGISTER") == 1
    assert value(found, "siptool_sip_registered_bindings", method="REGISTER") >= 1
    sent = metrics("send", "OPTIONS", target)
    assert value(sent, "siptool_sip_status_code", method="OPTIONS", target=target) == 200


def test_invite_test_to_a_sipp_uas_gives_rtp_figures(sipp: Any) -> None:
    uas = sipp(rtp_echo=True)
    found = metrics("invite-test", "--rtp", "--hold", "1", uas.uri())
    labels = {"method": "INVITE"}
    assert value(found, "siptool_probe_success", **labels) == 1
    assert value(found, "siptool_sip_status_code", **labels) == 200
    assert value(found, "siptool_sip_answer_seconds", **labels) > 0
    assert value(found, "siptool_rtp_packets_received", **labels) > 0
    assert 0 <= value(found, "siptool_rtp_loss_ratio", **labels) <= 1
    assert found["siptool_rtp_jitter_seconds"].unit == "seconds"


def test_stun_probe_and_nat_type_give_the_mapped_address(coturn: StunPeer, stund: StunPeer) -> None:
    server = coturn.primary
    found = metrics("stun-probe", "-n", "2", server)
    assert value(found, "siptool_probe_success", server=server) == 1
    assert value(found, "siptool_stun_loss_ratio", server=server) == 0
    mapped = found["siptool_stun_mapped"]
    assert mapped.type == "info" and mapped.samples[0].labels["mapped"].startswith("127.0.0.1:")
    nat = metrics("nat-type", stund.primary)
    facts = found_labels(nat, "siptool_nat_info")
    assert facts["mapping"] == "none" and facts["classic"] == "open-internet", facts


def found_labels(families: dict[str, Any], sample: str) -> dict[str, str]:
    [one] = [s for s in families[sample.removesuffix("_info")].samples if s.name == sample]
    return dict(one.labels)


@pytest.fixture(scope="module")
def turn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TurnServer]:
    peer = start_turn_server(tmp_path_factory.mktemp("turn"), users={"alice": TURN_PASSWORD})
    try:
        yield peer
    finally:
        peer.stop()


def test_turn_probe_gives_allocation_and_relay_figures(turn: TurnServer) -> None:
    server = turn.uri("udp")
    env = {"SIPTOOL_PASSWORD": TURN_PASSWORD}
    found = metrics("turn-probe", "--user", "alice", server, env=env)
    assert value(found, "siptool_probe_success", server=server) == 1
    assert value(found, "siptool_turn_allocate_seconds", server=server) > 0
    assert value(found, "siptool_turn_relay_loss_ratio", server=server, test="channel") == 0


def test_usage_errors_name_the_clash(kamailio: Kamailio) -> None:
    for clash in ("--json", "--nagios"):
        result = siptool("options-ping", "--format", "openmetrics", clash, kamailio.uri())
        assert result.returncode == 2
        assert f"--format openmetrics prints metrics: not with {clash}" in result.stderr


# -- --textfile, read by node_exporter ---------------------------------------------------------


@pytest.fixture
def node_exporter(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """node_exporter with only its textfile collector, reading a directory of ours."""
    binary = require_tool("prometheus-node-exporter", "prometheus-node-exporter")
    directory = tmp_path / "textfiles"
    directory.mkdir()
    port = free_port("tcp")
    argv = [binary, "--collector.disable-defaults", "--collector.textfile",
            f"--collector.textfile.directory={directory}",
            f"--web.listen-address=127.0.0.1:{port}"]  # fmt: skip
    server = Server(argv, log=tmp_path / "node_exporter.log")
    url = f"http://127.0.0.1:{port}/metrics"
    server.wait_until(lambda: http_ok(url), what="(serving /metrics)")
    try:
        yield directory, url
    finally:
        server.stop()


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return str(answer.read().decode())
    except OSError:
        return None


def test_textfile_is_read_by_node_exporter(
    kamailio: Kamailio, node_exporter: tuple[Path, str]
) -> None:
    directory, url = node_exporter
    path = directory / "siptool.prom"
    target = kamailio.uri("udp")
    result = siptool("options-ping", "--json", "--textfile", str(path), target)
    assert result.returncode == 0 and result.doc["targets"][0]["alive"], result.stderr
    assert not list(directory.glob(".siptool-*")), "the temporary file was left behind"
    text = _get(url)
    assert text is not None
    lines = text.splitlines()
    # node_exporter read the file without an error and serves our samples as its own.
    assert "node_textfile_scrape_error 0" in lines
    success = [line for line in lines if line.startswith("siptool_probe_success{")]
    assert success == [
        f'siptool_probe_success{{method="OPTIONS",target="{target}",transport="udp"}} 1'
    ]
    assert "# TYPE siptool_sip_server_info gauge" in lines
    # A failed probe rewrites the file in place: node_exporter sees 0 now.
    closed = f"sip:127.0.0.1:{free_port('udp')}"
    siptool("options-ping", "--timeout", "1", "--textfile", str(path), closed)
    again = _get(url) or ""
    assert f'siptool_probe_success{{method="OPTIONS",target="{closed}",transport="udp"}} 0' in again


def test_an_unwritable_textfile_is_exit_3_after_the_output(
    kamailio: Kamailio, tmp_path: Path
) -> None:
    path = tmp_path / "missing" / "siptool.prom"
    result = siptool("options-ping", "--json", "--textfile", str(path), kamailio.uri())
    assert result.returncode == 3
    assert result.doc["targets"][0]["alive"]  # the check ran and was shown
    assert f"cannot write --textfile {path}: No such file or directory" in result.stderr
