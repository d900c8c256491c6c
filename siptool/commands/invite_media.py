"""What invite-test reads from the far end's answer: the SDP answer (RFC 3264), whether and
where the test RTP may be sent, and the far-end NAT problems the answer gives away.  Pure: no
sockets, no clock.

Decisions:

- The SDP answer is the 2xx's; a 2xx without SDP falls back to the 18x's (without 100rel it
  is only a preview, but it is the answer a phone that leaves it out of the 2xx means, RFC
  3261 §13.2.1), with a warning.
- No RTP is sent to an answer that puts the call on hold (c=0.0.0.0, RFC 3264 §8.4), that
  will not receive (sendonly, inactive, RFC 3264 §6.1), that rejected the stream (port 0) or
  whose c= is a name (it would be looked up, blocking, for every packet).
- The test RTP is PCMU, PCMA when the answer took only PCMA (20 ms packets either way).
"""

from __future__ import annotations

import contextlib
import ipaddress
from dataclasses import dataclass, field

from siptool.addr import is_private_address, is_public_address
from siptool.errors import ParseError
from siptool.sip.message import SipMessage
from siptool.sip.sdp import SessionDescription
from siptool.sip.sdp_offer import AnswerSummary, Codec, read_answer

__all__ = [
    "AnswerReading",
    "no_rtp_reason",
    "private_address_warnings",
    "read_sdp_answer",
    "rtp_payload_type",
]


@dataclass
class AnswerReading:
    """The SDP answer of a 2xx as invite-test reads it, and what it warns about."""

    summary: AnswerSummary | None = None
    warnings: list[str] = field(default_factory=list)


def read_sdp_answer(
    final: SipMessage,
    early_sdp: SessionDescription | None,
    offered: list[Codec],
    peer_ip: str,
) -> AnswerReading:
    """The 2xx's SDP answer (else the 18x's) against the ``offered`` codecs, and the far-end
    NAT warnings for a public ``peer_ip``."""
    reading = AnswerReading()
    sdp = None
    try:
        sdp = final.sdp
    except ParseError as exc:
        reading.warnings.append(f"the SDP answer does not parse: {exc.message}")
    else:
        if sdp is None and early_sdp is not None:
            sdp = early_sdp
            reading.warnings.append("the 2xx has no SDP; the 18x's was used as the answer")
        elif sdp is None:
            reading.warnings.append("the 2xx carries no SDP answer (RFC 3264 §4)")
    contact_host = None
    with contextlib.suppress(ParseError, IndexError):
        contact_host = final.contacts[0].uri.host
    if sdp is not None:
        reading.summary = read_answer(sdp, offered)
        reading.warnings += reading.summary.warnings
    sdp_host = None if reading.summary is None else reading.summary.address
    reading.warnings += private_address_warnings(peer_ip, contact_host, sdp_host)
    return reading


def private_address_warnings(
    peer_ip: str, contact_host: str | None, sdp_host: str | None
) -> list[str]:
    """A public signalling peer whose answer points at a private address: the classic
    far-end NAT problem (ACK/BYE or audio sent to an address nobody can reach)."""
    if not is_public_address(peer_ip):
        return []
    out = []
    if contact_host and is_private_address(contact_host):
        out.append(
            f"the answer's Contact has the private address {contact_host} while the peer "
            f"{peer_ip} is public: ACK and BYE may not reach it (far-end NAT)"
        )
    if sdp_host and is_private_address(sdp_host):
        out.append(
            f"the SDP answer's c= has the private address {sdp_host} while the peer {peer_ip} "
            "is public: audio toward it will be lost (far-end NAT, no media relay)"
        )
    return out


def no_rtp_reason(answer: AnswerSummary | None) -> str | None:
    """Why the answer gives no address to send the test RTP to, or None when it does."""
    if answer is None or answer.address is None or not answer.port:
        return "no usable media address in the answer"
    if answer.rejected:
        return "the answer rejected the audio stream"
    try:
        address = ipaddress.ip_address(answer.address)
    except ValueError:
        return f"the answer's c= {answer.address} is not an IP address"
    if address.is_unspecified:
        # Sent anyway, it lands on this host.
        return f"the answer puts the call on hold (c={answer.address})"
    if answer.direction in ("sendonly", "inactive"):
        return f"the answer's audio is {answer.direction}"
    return None


def rtp_payload_type(answer: AnswerSummary) -> int:
    """The payload type of the test RTP: the answer's PCMU, else its PCMA, else PCMU's 0."""
    types = answer.payload_types
    if "PCMU" not in types and "PCMA" in types:
        return types["PCMA"]
    return types.get("PCMU", 0)
