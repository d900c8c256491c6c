"""Metrics as text for Prometheus: the OpenMetrics 1.0 exposition (``--format openmetrics``,
the exporter's answers) and the Prometheus text format 0.0.4 that node_exporter's textfile
collector reads (``--textfile``).  One table, ``METRICS``, names every metric siptool exposes,
its type, unit and help; the README's metric table is made from the same names.

Decisions:

- Names follow Prometheus's conventions (https://prometheus.io/docs/practices/naming/):
  ``siptool_`` then what is measured, base units in the name (seconds, ratios as 0..1, not
  milliseconds or percent), ``_total`` on counters, ``_info`` on a metric whose value is 1 and
  whose labels carry the facts.
- A value siptool does not know (no answer, so no RTT) is no sample at all, as blackbox_exporter
  does: a 0 would be read as a measurement.
- OpenMetrics names a counter's family without ``_total`` and writes ``# UNIT`` and ``# EOF``;
  an info metric is the family ``X`` of type info with the sample ``X_info``.  The 0.0.4 text
  knows neither info nor UNIT, so there the same sample is a gauge named ``X_info``, and a
  counter's TYPE line names it with ``_total``: the samples are the same lines in both.
- Label values are escaped as both formats say (backslash, double quote, newline); a peer's
  text (a User-Agent) is cut to 128 characters so one server cannot blow up a series.
- Values: integers without a point, floats as Python's repr (shortest round-trip), NaN and
  +Inf/-Inf spelled as the formats spell them.
"""

from __future__ import annotations

import enum
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

LABEL_VALUE_LIMIT = 128


class MetricType(enum.Enum):
    GAUGE = "gauge"
    COUNTER = "counter"
    INFO = "info"
    HISTOGRAM = "histogram"


@dataclass(frozen=True)
class MetricSpec:
    type: MetricType
    help: str
    unit: str = ""


_G, _C, _I, _H = MetricType.GAUGE, MetricType.COUNTER, MetricType.INFO, MetricType.HISTOGRAM

# Every metric siptool exposes: the family name (a counter's without _total, an info metric's
# without _info), its type, its help and its unit.
METRICS: dict[str, MetricSpec] = {
    # Every probe (as blackbox_exporter's probe_success and probe_duration_seconds).
    "siptool_probe_success": MetricSpec(_G, "1 when the check passed (exit code 0), else 0."),
    "siptool_probe_duration_seconds": MetricSpec(
        _G, "How long the whole check took, resolution included.", "seconds"
    ),
    # SIP (options-ping, register, invite-test, send).
    "siptool_sip_rtt_seconds": MetricSpec(
        _G, "Mean time from a request's first transmission to its final response.", "seconds"
    ),
    "siptool_sip_rtt_max_seconds": MetricSpec(
        _G, "Longest time from a request's first transmission to its final response.", "seconds"
    ),
    "siptool_sip_status_code": MetricSpec(_G, "The last final response's status code."),
    "siptool_sip_loss_ratio": MetricSpec(
        _G, "Requests that got no final response, 0 to 1.", "ratio"
    ),
    "siptool_sip_requests_sent": MetricSpec(_G, "Requests sent (not counting retransmissions)."),
    "siptool_sip_server": MetricSpec(_I, "The server's User-Agent or Server header."),
    "siptool_sip_auth_rounds": MetricSpec(_G, "Digest challenges answered (RFC 3261 §22)."),
    "siptool_sip_registered_bindings": MetricSpec(_G, "Contacts bound to the AOR after REGISTER."),
    "siptool_sip_pdd_seconds": MetricSpec(
        _G, "Post-dial delay: INVITE to the first ringing or answer.", "seconds"
    ),
    "siptool_sip_answer_seconds": MetricSpec(_G, "INVITE to the 200 OK answer.", "seconds"),
    # TLS and WSS toward any server.
    "siptool_tls_cert_expiry_timestamp_seconds": MetricSpec(
        _G, "When the server's certificate expires (Unix time, its notAfter).", "seconds"
    ),
    "siptool_tls_version": MetricSpec(_I, "The TLS version and cipher suite negotiated."),
    # RTP (invite-test --rtp).
    "siptool_rtp_packets_sent": MetricSpec(_G, "RTP packets sent toward the answerer."),
    "siptool_rtp_packets_received": MetricSpec(_G, "RTP packets received from the answerer."),
    "siptool_rtp_loss_ratio": MetricSpec(_G, "RTP packets lost, 0 to 1 (RFC 3550 A.3).", "ratio"),
    "siptool_rtp_jitter_seconds": MetricSpec(
        _G, "RTP interarrival jitter (RFC 3550 §6.4.1).", "seconds"
    ),
    # STUN (stun-probe, nat-type) and TURN (turn-probe).
    "siptool_stun_rtt_seconds": MetricSpec(
        _G, "Mean STUN transaction time, first transmission to answer.", "seconds"
    ),
    "siptool_stun_loss_ratio": MetricSpec(_G, "STUN requests that got no answer, 0 to 1.", "ratio"),
    "siptool_stun_mapped": MetricSpec(_I, "The address the server saw (XOR-MAPPED-ADDRESS)."),
    "siptool_nat": MetricSpec(
        _I, "NAT mapping and filtering (RFC 5780 §4.3, §4.4) and the classic label."
    ),
    "siptool_nat_hairpinning": MetricSpec(
        _G, "1 when the NAT hairpins (RFC 5780 §4.5), 0 when not."
    ),
    "siptool_turn_allocate_seconds": MetricSpec(_G, "Time to a successful Allocate.", "seconds"),
    "siptool_turn_lifetime_seconds": MetricSpec(_G, "The allocation's LIFETIME.", "seconds"),
    "siptool_turn_relay_loss_ratio": MetricSpec(
        _G, "Data sent through the relay that did not come back, 0 to 1.", "ratio"
    ),
    "siptool_turn_relay_rtt_seconds": MetricSpec(
        _G, "Mean round trip through the relay.", "seconds"
    ),
    # The exporter's own (GET /metrics).
    "siptool_exporter_probes": MetricSpec(_C, "Probes run, by module and result."),
    "siptool_exporter_probe_duration_seconds": MetricSpec(
        _H, "How long the exporter's probes took.", "seconds"
    ),
    "siptool_exporter_requests_rejected": MetricSpec(
        _C, "/probe requests answered 400 or 503, by reason."
    ),
    "siptool_exporter_probes_in_flight": MetricSpec(_G, "Probes running now."),
}

Labels = Mapping[str, str | int | None]


@dataclass(frozen=True)
class Sample:
    suffix: str  # "", "_total", "_info", "_bucket", "_sum", "_count"
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass
class Metrics:
    """The samples of one exposition, in the order they were added, grouped by family."""

    families: dict[str, list[Sample]] = field(default_factory=dict)

    def add(self, name: str, value: float | bool | None, labels: Labels | None = None) -> None:
        """One sample of ``name`` (a family of ``METRICS``); None adds nothing.  A label whose
        value is None is left out."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return
        spec = METRICS[name]
        suffix = {MetricType.COUNTER: "_total", MetricType.INFO: "_info"}.get(spec.type, "")
        self._put(name, Sample(suffix, _labels(labels), float(value)))

    def info(self, name: str, where: Labels, facts: Labels) -> None:
        """An info metric: value 1, ``where`` and the ``facts`` in its labels (no fact
        known: no sample)."""
        if any(v is not None for v in facts.values()):
            self.add(name, 1, {**where, **facts})

    def histogram(
        self, name: str, buckets: Iterable[tuple[float, int]], total: float, count: int,
        labels: Labels | None = None,
    ) -> None:  # fmt: skip
        """A histogram's cumulative ``(upper bound, count)`` buckets, +Inf included."""
        base = _labels(labels)
        for bound, n in buckets:
            le = (("le", _number(bound)),)
            self._put(name, Sample("_bucket", base + le, float(n)))
        self._put(name, Sample("_sum", base, total))
        self._put(name, Sample("_count", base, float(count)))

    def _put(self, name: str, sample: Sample) -> None:
        self.families.setdefault(name, []).append(sample)

    def openmetrics(self) -> str:
        """The OpenMetrics 1.0 text exposition, ``# EOF`` last."""
        return self._text(openmetrics=True) + "# EOF\n"

    def prometheus(self) -> str:
        """The Prometheus 0.0.4 text format (node_exporter's textfile collector)."""
        return self._text(openmetrics=False)

    def _text(self, *, openmetrics: bool) -> str:
        lines: list[str] = []
        for name, samples in self.families.items():
            spec = METRICS[name]
            kind = spec.type
            family = name
            if not openmetrics and kind is MetricType.INFO:
                family, kind = name + "_info", MetricType.GAUGE
            elif not openmetrics and kind is MetricType.COUNTER:
                family = name + "_total"
            lines.append(f"# HELP {family} {_escape_help(spec.help)}")
            lines.append(f"# TYPE {family} {kind.value}")
            if openmetrics and spec.unit:
                lines.append(f"# UNIT {family} {spec.unit}")
            for s in samples:
                labels = ",".join(f'{k}="{v}"' for k, v in s.labels)
                braces = "{" + labels + "}" if labels else ""
                lines.append(f"{name}{s.suffix}{braces} {_number(s.value)}")
        return "".join(line + "\n" for line in lines)


def _labels(labels: Labels | None) -> tuple[tuple[str, str], ...]:
    if not labels:
        return ()
    return tuple((k, _escape_label(str(v))) for k, v in labels.items() if v is not None)


def _escape_label(value: str) -> str:
    value = value[:LABEL_VALUE_LIMIT]
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def write_textfile(path: str, text: str) -> None:
    """``text`` into ``path`` atomically: a temporary file in the same directory, flushed, then
    renamed over it (rename(2) is atomic on one file system), so node_exporter never reads half
    a file.  OSError for the caller to name."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".siptool-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide it from node_exporter's user
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
