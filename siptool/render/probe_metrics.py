"""The samples the probes share, so that options-ping, register, invite-test and send (and
the STUN commands) name a target, a transport and a method the same way: labels ``target``,
``transport`` and ``method`` on SIP, ``server`` and ``transport`` on STUN and TURN
(render/openmetrics.py has the names; this module only fills them in)."""

from __future__ import annotations

from collections.abc import Sequence

from siptool.commands.sip_common import Reached
from siptool.net.tls import TlsPeer
from siptool.render.openmetrics import Labels, Metrics

MS = 1000.0


def seconds(value_ms: float | None) -> float | None:
    """Milliseconds (the JSON's unit) in seconds (Prometheus's base unit), to the nanosecond
    (so 0.904 ms is 0.000904, not 0.0009040000000000001)."""
    return None if value_ms is None else round(value_ms / MS, 9)


def ratio(pct: float | None) -> float | None:
    """A percentage (the JSON's loss_pct) as a ratio of 0 to 1."""
    return None if pct is None else pct / 100.0


def sip_labels(reached: Reached, method: str) -> dict[str, str | int | None]:
    return {"target": reached.target, "transport": reached.transport, "method": method}


def sip_exchange(
    found: Metrics,
    labels: Labels,
    *,
    passed: bool,
    status: int | None,
    rtts_ms: Sequence[float] = (),
    sent: int | None = None,
    received: int | None = None,
) -> None:
    """Whether the check passed, the last final status, RTT (mean and max) and loss."""
    found.add("siptool_probe_success", passed, labels)
    found.add("siptool_sip_status_code", status, labels)
    if rtts_ms:
        found.add("siptool_sip_rtt_seconds", seconds(sum(rtts_ms) / len(rtts_ms)), labels)
        found.add("siptool_sip_rtt_max_seconds", seconds(max(rtts_ms)), labels)
    if sent:
        found.add("siptool_sip_requests_sent", sent, labels)
        if received is not None:
            found.add("siptool_sip_loss_ratio", (sent - received) / sent, labels)


def server_info(found: Metrics, labels: Labels, server: str | None) -> None:
    target = {k: v for k, v in labels.items() if k in ("target", "server")}
    found.info("siptool_sip_server", target, {"user_agent": server})


def tls(found: Metrics, labels: Labels, peer: TlsPeer | None) -> None:
    """The TLS/WSS connection's certificate expiry and what it negotiated."""
    if peer is None:
        return
    where = {k: v for k, v in labels.items() if k in ("target", "server", "transport")}
    found.add("siptool_tls_cert_expiry_timestamp_seconds", peer.certificate_expires, where)
    found.info("siptool_tls_version", where, {"version": peer.version, "cipher": peer.cipher})
