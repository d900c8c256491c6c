"""NAT behaviour from probe outcomes: RFC 5780 §4.3 mapping, §4.4 filtering, the RFC 3489 label.

Pure: the caller runs the Binding requests and hands over what each one got (``Probe``); the
functions here only decide.  Every "unknown" carries the reason, and nothing is inferred past
what the probes show: a server without a second IP address gives an inconclusive answer, never
a guess.

Decisions:

* Mapping "none" means the server saw our socket's own address (no NAT on the path).  Filtering
  is then "none" when the server's unsolicited answers from its other address and port get
  through (open internet), and address(-and-port)-dependent when a firewall stops them
  (RFC 3489's "symmetric UDP firewall").
* A CHANGE-REQUEST answer counts only when it visibly came from where it was asked to come
  from: the source (and RESPONSE-ORIGIN when present) must differ from the primary address in
  IP and port (test II) or in port only (test III).  A server that answers from the primary
  address ignored CHANGE-REQUEST, and the filtering test is then unknown.  The caller accepts
  answers only from the primary address and the expected one (OTHER-ADDRESS for test II, the
  primary IP with the other port for test III); a test that got no answer but saw one from
  anywhere else (``Probe.stray``) is unknown too, not a filter that dropped it.
* With a server whose OTHER-ADDRESS shares its IP (one address, two ports) the tests that need
  a second IP cannot run; what the one-IP tests do show is still used: a mapping that changes
  with the destination port is address-and-port-dependent, and a filter that drops a reply
  from another port of the same host is address-and-port-dependent.
* When test II shows the mapping depends on the destination but test III got no answer, the
  mapping stays unknown (address- or address-and-port-dependent) while the RFC 3489 label is
  already certain: symmetric.
* RFC 3489 labels from RFC 5780's terms (RFC 5780 §2 and RFC 4787 §4): full cone is
  endpoint-independent mapping and filtering, restricted cone is endpoint-independent mapping
  with address-dependent filtering, port-restricted cone the same with address-and-port-
  dependent filtering, symmetric any endpoint-dependent mapping.
* Silence, an ICMP error and a rejected answer are three facts.  "udp-blocked" needs silence:
  no probe at all answered, no ICMP error from the server and no answer from it that was
  refused.  An ICMP port-unreachable from the server's own address means no STUN server
  listens there; answers refused (wrong transaction id, bad FINGERPRINT, not STUN) mean
  something answers, wrongly: both are inconclusive with the reason, never udp-blocked and
  never TURN advice.  An ICMP port-unreachable or administratively-prohibited from another host
  (a firewall that rejects instead of dropping) is udp-blocked, with that host named.
* A mapped address nobody can send to (unspecified, port 0, broadcast, multicast, another
  address family than the server's) is no mapping: the test that got it is unknown
  (``mapped_address_problem``).
* Loss (``PathLoss``): answers prove what they show whatever the loss, but silence proves a
  filter only when loss cannot explain it.  The caller counts every request it sent and every
  response that came back (duplicates and late ones included) in the tests whose answers must
  come; with loss seen, a silent test whose requests could all have been lost with a
  probability above ``LOSS_RISK`` (estimated loss to the power of its requests) is unknown with
  "lossy path: N of M probes unanswered" instead of a filter, and the same for a silent
  hairpin test.  Inconclusive is better than a wrong label.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field

from siptool.addr import format_address, split_address

__all__ = [
    "LOSS_RISK",
    "Classic",
    "Filtering",
    "FilteringObservations",
    "Mapping",
    "MappingObservations",
    "NatVerdict",
    "PathLoss",
    "Probe",
    "Unanswered",
    "advice",
    "classic_label",
    "classify_filtering",
    "classify_mapping",
    "decide",
    "mapped_address_problem",
]

# The chance, above which a silent test is not taken as a filter, that loss alone silenced it.
LOSS_RISK = 0.01


class Mapping(enum.Enum):
    NONE = "none"
    ENDPOINT_INDEPENDENT = "endpoint-independent"
    ADDRESS_DEPENDENT = "address-dependent"
    ADDRESS_AND_PORT_DEPENDENT = "address-and-port-dependent"
    UNKNOWN = "unknown"


Filtering = Mapping  # the same five values (shared/cli-contract.md)


class Classic(enum.Enum):
    OPEN_INTERNET = "open-internet"
    FULL_CONE = "full-cone"
    RESTRICTED_CONE = "restricted-cone"
    PORT_RESTRICTED_CONE = "port-restricted-cone"
    SYMMETRIC = "symmetric"
    SYMMETRIC_UDP_FIREWALL = "symmetric-udp-firewall"
    UDP_BLOCKED = "udp-blocked"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Probe:
    """What one Binding request got.  Addresses are ``"ip:port"`` strings."""

    answered: bool
    mapped: str | None = None
    source: str | None = None
    response_origin: str | None = None
    other_address: str | None = None  # OTHER-ADDRESS, else RFC 3489 CHANGED-ADDRESS
    error: str | None = None  # an error response, e.g. "420 Unknown Attribute"
    stray: str | None = None  # unanswered, but a response came from an address not asked for
    sends: int = 0  # requests sent for this test (retransmissions and parallel probes)
    rejected: tuple[str, ...] = ()  # unanswered, but answers were refused: "bad FINGERPRINT"
    unreachable: str | None = None  # unanswered: an ICMP error, "port unreachable"
    unreachable_from: str | None = None  # the IP of the host that sent the ICMP error
    destination: str | None = None  # where the requests went

    @property
    def succeeded(self) -> bool:
        return self.answered and self.error is None


@dataclass(frozen=True)
class PathLoss:
    """Requests sent in the tests whose answers must come, and how many got no response."""

    sent: int
    unanswered: int

    @property
    def lossy(self) -> bool:
        return self.unanswered > 0

    @property
    def estimate(self) -> float:
        """The chance a request goes unanswered (Laplace's rule: never 0 or 1 from few)."""
        return (self.unanswered + 1) / (self.sent + 2)

    @property
    def text(self) -> str:
        return f"lossy path: {self.unanswered} of {self.sent} probes unanswered"

    def explains(self, sends: int) -> bool:
        """Whether loss may well have silenced a test of ``sends`` requests."""
        return self.lossy and self.estimate ** max(sends, 1) > LOSS_RISK


def mapped_address_problem(mapped: str, server: str) -> str | None:
    """Why ``mapped`` (what a server says it saw) is no address anyone can send to, or None."""
    try:
        ip_text, port = split_address(mapped)
        ip = ipaddress.ip_address(ip_text)
    except ValueError:
        return f"unusable mapped address {mapped}: not an address"
    why = None
    server_v6 = ":" in split_address(server)[0]
    if ip.version != (6 if server_v6 else 4):
        why = f"not in the address family of {server}"
    elif ip.is_unspecified or (ip.version == 4 and ip in _THIS_NETWORK):
        why = "unspecified address"
    elif ip.is_multicast:
        why = "multicast address"
    elif ip.version == 4 and ip == _BROADCAST:
        why = "broadcast address"
    elif port == 0:
        why = "port 0"
    return None if why is None else f"unusable mapped address {mapped}: {why}"


_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # RFC 1122 §3.2.1.3: "this host on this net"
_BROADCAST = ipaddress.ip_address("255.255.255.255")


def _silence(probe: Probe, test: str, where: str | None = None) -> str:
    """Why ``probe`` (unanswered) got no answer, as a reason."""
    target = probe.destination or where
    if probe.unreachable:
        sender = f" (ICMP from {probe.unreachable_from})" if probe.unreachable_from else ""
        at = f" at {target}" if target else ""
        return f"test {test}: {probe.unreachable}{at}{sender}"
    if probe.rejected:
        return f"test {test}: answers rejected: {', '.join(probe.rejected)}"
    return f"no answer to test {test}" + (f" from {target}" if where and target else "")


NO_ANSWER = Probe(answered=False)


@dataclass(frozen=True)
class MappingObservations:
    """RFC 5780 §4.3 on one socket: test I to the server's primary address, test II to its
    other IP with the primary port, test III to the other IP and other port."""

    local: str  # our socket as the server would see it without NAT
    server: str
    test1: Probe
    test2: Probe | None = None
    test3: Probe | None = None


@dataclass(frozen=True)
class FilteringObservations:
    """RFC 5780 §4.4 on its own socket: test I to the primary address, test II asks for the
    answer from the other IP and port, test III from the other port only."""

    server: str
    test1: Probe
    test2: Probe | None = None
    test3: Probe | None = None


@dataclass(frozen=True)
class Finding:
    value: Mapping
    reason: str | None = None
    endpoint_dependent: bool = False  # known dependent even when ``value`` is unknown


class Unanswered(enum.StrEnum):
    """Why no probe was answered; the value is the JSON ``errors[].code``."""

    TIMEOUT = "timeout"  # silence
    UNREACHABLE = "unreachable"  # an ICMP error came back
    REJECTED = "rejected"  # answers came, but not valid STUN responses to our requests


@dataclass
class NatVerdict:
    mapping: Mapping
    filtering: Mapping
    classic: Classic
    mapped: str | None
    port_preserved: bool | None
    hairpinning: bool | None
    reasons: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)
    failure: Unanswered | None = None  # when no probe was answered, why


def other_of(*probes: Probe | None) -> str | None:
    for probe in probes:
        if probe is not None and probe.other_address:
            return probe.other_address
    return None


def _same_ip(a: str, b: str) -> bool:
    return split_address(a)[0] == split_address(b)[0]


def _unusable_other(server: str, other: str | None) -> str | None:
    """Why the server's OTHER-ADDRESS cannot serve the two-IP tests, or None when it can."""
    if other is None:
        return "the server sent no OTHER-ADDRESS (it does not support RFC 5780)"
    if (":" in split_address(server)[0]) != (":" in split_address(other)[0]):
        return f"the server's OTHER-ADDRESS {other} is not in the address family of {server}"
    if _same_ip(server, other):
        return (
            f"the server's OTHER-ADDRESS {other} has the same IP as {server}: "
            "RFC 5780 needs a second IP address"
        )
    if split_address(server)[1] == split_address(other)[1]:
        return f"the server's OTHER-ADDRESS {other} has the same port as {server}"
    return None


def classify_mapping(obs: MappingObservations) -> Finding:
    """RFC 5780 §4.3."""
    t1 = obs.test1
    if not t1.succeeded or t1.mapped is None:
        if t1.error:
            why = f"test I got {t1.error}"
        elif t1.answered:
            why = "the answer to test I has neither XOR-MAPPED-ADDRESS nor MAPPED-ADDRESS"
        else:
            why = _silence(t1, "I")
        return Finding(Mapping.UNKNOWN, why)
    problem = mapped_address_problem(t1.mapped, obs.server)
    if problem is not None:
        return Finding(Mapping.UNKNOWN, f"test I: {problem}")
    if t1.mapped == obs.local:
        return Finding(Mapping.NONE)
    other = other_of(t1)
    problem = _unusable_other(obs.server, other)
    if problem is not None:
        t3 = obs.test3
        if (
            other is not None
            and _same_ip(obs.server, other)
            and t3 is not None
            and t3.succeeded
            and t3.mapped is not None
            and t3.mapped != t1.mapped
        ):
            # Another port of the same host already got another mapping.
            return Finding(Mapping.ADDRESS_AND_PORT_DEPENDENT, endpoint_dependent=True)
        return Finding(Mapping.UNKNOWN, problem)
    t2 = obs.test2
    if t2 is None or not t2.succeeded or t2.mapped is None:
        if t2 is not None and not t2.answered and (t2.unreachable or t2.rejected):
            return Finding(Mapping.UNKNOWN, _silence(t2, "II"))
        return Finding(Mapping.UNKNOWN, f"no answer from the other address ({other}) to test II")
    problem = mapped_address_problem(t2.mapped, obs.server)
    if problem is not None:
        return Finding(Mapping.UNKNOWN, f"test II: {problem}")
    if t2.mapped == t1.mapped:
        return Finding(Mapping.ENDPOINT_INDEPENDENT)
    t3 = obs.test3
    if t3 is not None and t3.succeeded and t3.mapped is not None:
        problem = mapped_address_problem(t3.mapped, obs.server)
        if problem is not None:
            return Finding(Mapping.UNKNOWN, f"test III: {problem}", endpoint_dependent=True)
    if t3 is None or not t3.succeeded or t3.mapped is None:
        return Finding(
            Mapping.UNKNOWN,
            "the mapping changes with the destination address, but test III got no answer "
            "to tell address- from address-and-port-dependent",
            endpoint_dependent=True,
        )
    if t3.mapped == t2.mapped:
        return Finding(Mapping.ADDRESS_DEPENDENT, endpoint_dependent=True)
    return Finding(Mapping.ADDRESS_AND_PORT_DEPENDENT, endpoint_dependent=True)


def _came_from(probe: Probe, server: str, *, ip_changed: bool) -> str | None:
    """Why ``probe`` (a CHANGE-REQUEST answer) does not prove the change, or None when it does."""
    server_ip, server_port = split_address(server)
    for label, address in (("source", probe.source), ("RESPONSE-ORIGIN", probe.response_origin)):
        if address is None:
            continue
        ip, port = split_address(address)
        if port == server_port or (ip != server_ip) != ip_changed:
            return (
                f"the server answered CHANGE-REQUEST from {address} ({label}), not from its "
                f"other {'address' if ip_changed else 'port'}: it ignores CHANGE-REQUEST"
            )
    return None


def classify_filtering(obs: FilteringObservations, loss: PathLoss | None = None) -> Finding:
    """RFC 5780 §4.4; with ``loss``, a silence that loss may explain is unknown."""
    t1 = obs.test1
    if not t1.succeeded:
        why = f"test I got {t1.error}" if t1.error else _silence(t1, "I")
        return Finding(Mapping.UNKNOWN, why)
    other = other_of(t1)
    problem = _unusable_other(obs.server, other)
    one_ip = other is not None and _same_ip(obs.server, other)
    if problem is not None and not one_ip:
        return Finding(Mapping.UNKNOWN, problem)
    t2, t3 = obs.test2, obs.test3
    for name, probe in (("II", t2), ("III", t3)):
        if probe is not None and probe.answered and probe.error:
            return Finding(Mapping.UNKNOWN, f"test {name}: the server rejected it: {probe.error}")
    if not one_ip:
        if t2 is None:
            return Finding(Mapping.UNKNOWN, "test II was not run")
        unproven = _unproven(t2, "II", obs.server, str(other), loss, ip_changed=True)
        if unproven:
            return Finding(Mapping.UNKNOWN, unproven)
        if t2.answered:
            return Finding(Mapping.ENDPOINT_INDEPENDENT)
    if t3 is None:
        return Finding(Mapping.UNKNOWN, "test III was not run")
    expected = format_address(split_address(obs.server)[0], split_address(str(other))[1])
    unproven = _unproven(t3, "III", obs.server, expected, loss, ip_changed=False)
    if unproven:
        return Finding(Mapping.UNKNOWN, unproven)
    if t3.answered:
        return Finding(Mapping.UNKNOWN, problem) if one_ip else Finding(Mapping.ADDRESS_DEPENDENT)
    return Finding(Mapping.ADDRESS_AND_PORT_DEPENDENT)


def _unproven(
    probe: Probe, test: str, server: str, expected: str, loss: PathLoss | None, *, ip_changed: bool
) -> str | None:
    """Why the CHANGE-REQUEST test ``test`` (§4.4 test II or III) shows nothing of the filter,
    or None when its answer, or its silence, does: the answer came from elsewhere than asked
    (not from ``expected``), or loss may explain the silence."""
    if probe.answered:
        return _came_from(probe, server, ip_changed=ip_changed)
    if probe.stray:
        return _stray(probe.stray, test, expected)
    if loss is not None and loss.explains(probe.sends):
        return _lost(loss, probe, test)
    return None


def _lost(loss: PathLoss, probe: Probe, test: str) -> str:
    return (
        f"{loss.text}: the silence of test {test} ({probe.sends} request"
        f"{'' if probe.sends == 1 else 's'}) may be loss, not a filter"
    )


def _stray(source: str, test: str, expected: str) -> str:
    return (
        f"the answer to test {test} came from {source}, not from {expected} where the server "
        "should send it: the server (or something on the path) answers from elsewhere"
    )


def classic_label(
    mapping: Finding, filtering: Finding, *, udp_blocked: bool = False
) -> tuple[Classic, str | None]:
    """The RFC 3489 §10.1 label, and why it is inconclusive when it is."""
    if udp_blocked:
        return Classic.UDP_BLOCKED, None
    m, f = mapping.value, filtering.value
    if m is Mapping.NONE:
        if f in (Mapping.NONE, Mapping.ENDPOINT_INDEPENDENT):
            return Classic.OPEN_INTERNET, None
        if f in (Mapping.ADDRESS_DEPENDENT, Mapping.ADDRESS_AND_PORT_DEPENDENT):
            return Classic.SYMMETRIC_UDP_FIREWALL, None
        return Classic.INCONCLUSIVE, f"filtering unknown: {filtering.reason}"
    if mapping.endpoint_dependent:
        return Classic.SYMMETRIC, None
    if m is Mapping.ENDPOINT_INDEPENDENT:
        if f is Mapping.ENDPOINT_INDEPENDENT:
            return Classic.FULL_CONE, None
        if f is Mapping.ADDRESS_DEPENDENT:
            return Classic.RESTRICTED_CONE, None
        if f is Mapping.ADDRESS_AND_PORT_DEPENDENT:
            return Classic.PORT_RESTRICTED_CONE, None
        return Classic.INCONCLUSIVE, f"filtering unknown: {filtering.reason}"
    return Classic.INCONCLUSIVE, f"mapping unknown: {mapping.reason}"


def advice(
    mapping: Mapping,
    filtering: Mapping,
    classic: Classic,
    *,
    hairpinning: bool | None,
    port_preserved: bool | None,
    lifetime_s: float | None = None,
) -> list[str]:
    """What the result means for SIP signalling and media."""
    out: list[str] = []
    if classic is Classic.UDP_BLOCKED:
        return [
            "UDP to the STUN server gets no answer: SIP over UDP and RTP will fail; use SIP over "
            "TCP or TLS and a TURN relay over TCP/TLS (port 443 passes most firewalls); test "
            "it with siptool turn-probe turns:HOST, or siptool ice-gather --turn for each",
        ]
    if classic is Classic.INCONCLUSIVE:
        out.append(
            "use an RFC 5780 server with two IP addresses (coturn with two --listening-ip and "
            "--alt-listening-port, or stuntman) for a complete answer"
        )
    if mapping is Mapping.NONE:
        out.append(
            "no NAT: the local address is the public one; Contact and SDP addresses work as they "
            "are"
        )
    elif mapping is Mapping.ENDPOINT_INDEPENDENT:
        out.append(
            "endpoint-independent mapping: the address STUN learns is the one every peer sees; "
            "STUN-learnt Contact/SDP addresses and ICE server-reflexive candidates work"
        )
    elif mapping in (Mapping.ADDRESS_DEPENDENT, Mapping.ADDRESS_AND_PORT_DEPENDENT) or (
        classic is Classic.SYMMETRIC
    ):
        out.append(
            "symmetric (endpoint-dependent) mapping: each destination sees another address, so "
            "a STUN-learnt address is wrong for anyone but the STUN server; media needs a relay "
            "(TURN) or an SBC / media proxy that latches on to the source (symmetric RTP, "
            "comedia); test the relay with siptool turn-probe, and what a client here offers "
            "with siptool ice-gather"
        )
    if filtering in (Mapping.ADDRESS_DEPENDENT, Mapping.ADDRESS_AND_PORT_DEPENDENT):
        who = "hosts" if filtering is Mapping.ADDRESS_DEPENDENT else "hosts and ports"
        out.append(
            f"{filtering.value} filtering: only {who} we sent to get in; the SIP client needs "
            "rport (RFC 3581) and keepalives (RFC 5626 CRLF or OPTIONS) more often than the "
            "binding lifetime, and each side must send media first (or use ICE)"
        )
    elif filtering is Mapping.ENDPOINT_INDEPENDENT:
        out.append(
            "endpoint-independent filtering: anyone can reach the mapping while it lives; "
            "keepalives still keep it alive"
        )
    if hairpinning is False:
        out.append(
            "no hairpinning: two devices behind this NAT cannot reach each other at their public "
            "addresses; the PBX/SBC must relay media between them or use their local addresses"
        )
    if port_preserved is False and mapping is not Mapping.NONE:
        out.append(
            "the NAT changes the source port: never derive the public port from the local one; "
            "rely on rport/received and STUN"
        )
    if lifetime_s is not None:
        out.append(
            f"UDP bindings last about {lifetime_s:g} s: refresh them (SIP keepalives, REGISTER) "
            f"at most every {max(1.0, lifetime_s / 2):g} s"
        )
    return out


def _udp_blocked_advice() -> list[str]:
    return advice(
        Mapping.UNKNOWN, Mapping.UNKNOWN, Classic.UDP_BLOCKED, hairpinning=None, port_preserved=None
    )


def _unanswered_verdict(
    mapping_obs: MappingObservations, filtering_obs: FilteringObservations
) -> tuple[Classic, list[str], list[str], Unanswered] | None:
    """When no probe at all was answered: the label, the reasons and the advice; None when
    some probe was answered."""
    probes = [
        p
        for p in (
            mapping_obs.test1,
            mapping_obs.test2,
            mapping_obs.test3,
            filtering_obs.test1,
            filtering_obs.test2,
            filtering_obs.test3,
        )
        if p is not None
    ]
    if any(p.answered for p in probes):
        return None
    server = mapping_obs.server
    server_ip = split_address(server)[0]
    for probe in probes:
        if not probe.unreachable:
            continue
        sender = probe.unreachable_from
        refused = probe.unreachable in ("port unreachable",) or "prohibited" in probe.unreachable
        if sender is not None and sender != server_ip and refused:
            return (
                Classic.UDP_BLOCKED,
                [f"UDP to {server} refused on the path: {probe.unreachable} (ICMP from {sender})"],
                _udp_blocked_advice(),
                Unanswered.UNREACHABLE,
            )
        if probe.unreachable == "port unreachable":
            why = f"no STUN server at {server}: port unreachable"
            hint = (
                f"nothing listens on UDP {server}: check the server's address and port "
                "(STUN uses 3478, or 5349 for TLS)"
            )
        else:
            via = f" (ICMP from {sender})" if sender else ""
            why = f"{server} cannot be reached: {probe.unreachable}{via}"
            hint = f"check the route to {server_ip} and the server's address"
        return Classic.INCONCLUSIVE, [why], [hint], Unanswered.UNREACHABLE
    rejected: list[str] = []
    for probe in probes:
        rejected += [r for r in probe.rejected if r not in rejected]
    if rejected:
        return (
            Classic.INCONCLUSIVE,
            [f"answers rejected: {', '.join(rejected)}"],
            [
                f"something answers on {server}, but not with valid STUN responses to our "
                "requests: check that it is a STUN server, and that nothing on the path "
                "rewrites the packets"
            ],
            Unanswered.REJECTED,
        )
    sent = sum(p.sends for p in probes)
    counted = f" ({sent} requests)" if sent else ""
    return (
        Classic.UDP_BLOCKED,
        [f"no answer to any Binding request over UDP{counted}"],
        _udp_blocked_advice(),
        Unanswered.TIMEOUT,
    )


def _answered_verdict(
    mapping_obs: MappingObservations,
    filtering_obs: FilteringObservations,
    hairpinning: bool | None,
    loss: PathLoss | None,
    hairpin_sends: int,
) -> tuple[Mapping, Mapping, Classic, list[str], bool | None]:
    """When some probe was answered: the mapping, the filtering, the label, the reasons, and
    the hairpinning (None when loss may explain the hairpin test's silence)."""
    mapping = classify_mapping(mapping_obs)
    filtering = classify_filtering(filtering_obs, loss)
    if mapping.value is Mapping.NONE and filtering.value is Mapping.ENDPOINT_INDEPENDENT:
        filtering = Finding(Mapping.NONE)
    classic, why = classic_label(mapping, filtering)
    reasons: list[str] = []
    for label, finding in (("mapping", mapping), ("filtering", filtering)):
        if finding.value is Mapping.UNKNOWN and finding.reason:
            reasons.append(f"{label}: {finding.reason}")
    if why and not reasons:
        reasons.append(why)
    if hairpinning is False and hairpin_sends and loss is not None and loss.explains(hairpin_sends):
        hairpinning = None
        reasons.append(
            f"hairpinning: {loss.text}: the silence of the hairpin test ({hairpin_sends} "
            "requests) may be loss"
        )
    if (
        loss is not None
        and loss.lossy
        and classic is Classic.INCONCLUSIVE
        and not any(loss.text in r for r in reasons)
    ):
        reasons.append(loss.text)
    return mapping.value, filtering.value, classic, reasons, hairpinning


def decide(
    mapping_obs: MappingObservations,
    filtering_obs: FilteringObservations,
    *,
    hairpinning: bool | None = None,
    lifetime_s: float | None = None,
    loss: PathLoss | None = None,
    hairpin_sends: int = 0,
) -> NatVerdict:
    """The whole verdict from both tests' observations.

    ``loss`` is what the tests whose answers must come measured of the path; ``hairpin_sends``
    the requests of a hairpin test that found no hairpinning by silence (0 when it did not
    rest on silence)."""
    t1 = mapping_obs.test1
    mapped = t1.mapped if t1.succeeded else None
    if mapped is not None and mapped_address_problem(mapped, mapping_obs.server):
        mapped = None
    port_preserved = None
    if mapped is not None:
        port_preserved = split_address(mapped)[1] == split_address(mapping_obs.local)[1]
    failure: Unanswered | None = None
    nothing = _unanswered_verdict(mapping_obs, filtering_obs)
    if nothing is not None:
        # Nothing answered, so test I gave no mapped address either (mapped is None).
        mapping = filtering = Mapping.UNKNOWN
        classic, reasons, tips, failure = nothing
    else:
        mapping, filtering, classic, reasons, hairpinning = _answered_verdict(
            mapping_obs, filtering_obs, hairpinning, loss, hairpin_sends
        )
        tips = advice(
            mapping,
            filtering,
            classic,
            hairpinning=hairpinning,
            port_preserved=port_preserved,
            lifetime_s=lifetime_s,
        )
    return NatVerdict(
        mapping=mapping,
        filtering=filtering,
        classic=classic,
        mapped=mapped,
        port_preserved=port_preserved,
        hairpinning=hairpinning,
        reasons=reasons,
        advice=tips,
        failure=failure,
    )
