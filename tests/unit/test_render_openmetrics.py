"""render/openmetrics.py: the exposition's rules (names, types, units, escaping, values) in
both formats, checked by prometheus-client's parsers where it is installed; the samples of
real probes are checked in tests/integration/test_openmetrics.py."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from siptool.render.openmetrics import METRICS, Metrics, MetricType, write_textfile
from tests.support.peers import unavailable

NAME = re.compile(r"^siptool_[a-z0-9_]+$")


def sample_metrics() -> Metrics:
    found = Metrics()
    found.add("siptool_probe_success", True, {"target": 'sip:"odd"\\name\n', "transport": "udp"})
    found.add("siptool_sip_rtt_seconds", 0.0123, {"target": "a", "transport": None})
    found.add("siptool_sip_status_code", None, {"target": "a"})  # unknown: no sample
    found.add("siptool_sip_loss_ratio", float("nan"))  # unknown too
    found.info("siptool_stun_mapped", {"server": "s"}, {"mapped": "192.0.2.1:4000"})
    found.info("siptool_sip_server", {"target": "a"}, {"user_agent": None})  # nothing known
    found.add("siptool_exporter_probes", 3, {"module": "options", "result": "success"})
    found.histogram(
        "siptool_exporter_probe_duration_seconds", [(0.01, 1), (0.1, 3), (float("inf"), 3)], 0.2, 3
    )
    return found


def test_names_follow_the_conventions() -> None:
    for name, spec in METRICS.items():
        assert NAME.match(name), name
        assert not name.endswith(("_total", "_info")), "a family is named without its suffix"
        if spec.unit:
            assert name.endswith("_" + spec.unit), name
        assert "_ms" not in name and "_pct" not in name, "base units only"
        assert spec.help.endswith("."), name


def test_openmetrics_text() -> None:
    text = sample_metrics().openmetrics()
    assert text.endswith("# EOF\n")
    lines = text.splitlines()
    assert 'siptool_probe_success{target="sip:\\"odd\\"\\\\name\\n",transport="udp"} 1' in lines
    assert 'siptool_sip_rtt_seconds{target="a"} 0.0123' in lines
    assert "# UNIT siptool_sip_rtt_seconds seconds" in lines
    assert "siptool_sip_status_code" not in text and "siptool_sip_loss_ratio" not in text
    assert "# TYPE siptool_stun_mapped info" in lines
    assert 'siptool_stun_mapped_info{server="s",mapped="192.0.2.1:4000"} 1' in lines
    assert "siptool_sip_server" not in text
    assert "# TYPE siptool_exporter_probes counter" in lines
    assert 'siptool_exporter_probes_total{module="options",result="success"} 3' in lines
    assert 'siptool_exporter_probe_duration_seconds_bucket{le="+Inf"} 3' in lines
    assert "siptool_exporter_probe_duration_seconds_count 3" in lines


def test_prometheus_text_for_node_exporter() -> None:
    text = sample_metrics().prometheus()
    lines = text.splitlines()
    assert "# EOF" not in text and "# UNIT" not in text
    assert "# TYPE siptool_stun_mapped_info gauge" in lines
    assert "# TYPE siptool_exporter_probes_total counter" in lines


def test_the_reference_parsers_read_both() -> None:
    try:  # a test extra: skipped on a laptop without it, a failure under CI=true
        import prometheus_client.openmetrics.parser as parser
        import prometheus_client.parser as text_parser
    except ImportError:
        unavailable("prometheus-client is not installed (pip install -e '.[test]')")
    om = {f.name: f for f in parser.text_string_to_metric_families(sample_metrics().openmetrics())}
    assert om["siptool_stun_mapped"].type == "info"
    assert om["siptool_sip_rtt_seconds"].unit == "seconds"
    [success] = om["siptool_probe_success"].samples
    assert success.labels["target"] == 'sip:"odd"\\name\n'
    plain = sample_metrics().prometheus()
    families = {f.name: f for f in text_parser.text_string_to_metric_families(plain)}
    assert families["siptool_stun_mapped_info"].type == "gauge"
    assert families["siptool_exporter_probes"].type == "counter"


def test_a_peer_s_long_text_is_cut_in_a_label() -> None:
    found = Metrics()
    found.info("siptool_sip_server", {"target": "a"}, {"user_agent": "x" * 1000})
    lines = found.openmetrics().splitlines()
    [line] = [x for x in lines if x.startswith("siptool_sip_server")]
    assert line.count("x") == 128


def test_values() -> None:
    found = Metrics()
    found.add("siptool_sip_rtt_seconds", 1e-7)
    found.add("siptool_turn_lifetime_seconds", 600.0)
    found.add("siptool_tls_cert_expiry_timestamp_seconds", float("inf"))
    lines = found.openmetrics().splitlines()
    assert "siptool_sip_rtt_seconds 1e-07" in lines
    assert "siptool_turn_lifetime_seconds 600" in lines
    assert "siptool_tls_cert_expiry_timestamp_seconds +Inf" in lines
    assert all(spec.type in MetricType for spec in METRICS.values())


def test_textfile_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "siptool.prom"
    path.write_text("old\n")
    write_textfile(str(path), "new\n")
    assert path.read_text() == "new\n"
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["siptool.prom"]
    with pytest.raises(OSError):
        write_textfile(str(tmp_path / "no" / "such.prom"), "x\n")


def test_the_readme_lists_every_metric() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for name, spec in METRICS.items():
        suffix = {MetricType.COUNTER: "_total", MetricType.INFO: "_info"}.get(spec.type, "")
        sample = name + suffix
        assert f"| `{sample}` | {spec.type.value} |" in readme, sample
