"""What tshark makes of a capture: one dict per SIP or STUN message, to check `siptool decode` by;
and ``tshark_fields``, the rows of ``tshark -T fields``, to check the capture reader by.

``tshark_messages(path)`` runs tshark once over the file with TCP reassembly, IP defragmentation
and the SIP/STUN heuristic dissectors on (so SIP is found on any port, not just 5060), reads its
PDML and returns the messages in capture order.  PDML rather than ``-T fields`` because it keeps
the tree: a TCP segment carrying two SIP messages gives two ``<proto name="sip">`` elements, an
SDP body sits inside its SIP message, and each STUN attribute keeps its own address and port
(``-T fields`` would flatten MAPPED-, XOR-MAPPED-, RESPONSE-ORIGIN and OTHER-ADDRESS together).

Each dict has:

- ``frame`` (tshark's 1-based frame.number of the packet that completed the message) and
  ``position`` (0-based place among the SIP/STUN messages of that frame);
- ``protocol`` (``"sip"``/``"stun"``), ``transport`` (``"udp"``/``"tcp"``), ``src``/``dst``
  (``"ip:port"``, IPv6 in brackets);
- SIP: ``method`` (requests), ``status`` (responses, int), ``call_id``, ``cseq_seq`` (int),
  ``cseq_method``, ``from_tag``, ``to_tag``, ``via_branch`` (top Via), ``sdp_media_ports``
  (list of int, every m= line in order; empty without SDP);
- STUN: ``stun_class`` (``request``, ``indication``, ``success_response``, ``error_response``),
  ``stun_method`` (``binding``, ...), ``transaction_id`` (lowercase hex: 96 bits for RFC 8489,
  128 for classic RFC 3489 messages), ``xor_mapped_address`` (``"ip:port"`` or None), ``legacy``
  (True for an RFC 3489 message, which tshark calls ``classicstun``).

Where tshark stops short the gap is filled from tshark's own bytes and named in ``EXCEPTIONS``.
"""

from __future__ import annotations

import ipaddress
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tests.support.peers import require_tool

__all__ = ["EXCEPTIONS", "SIP_FIELDS", "STUN_FIELDS", "tshark_fields", "tshark_messages"]

SIP_FIELDS = (
    "method",
    "status",
    "call_id",
    "cseq_seq",
    "cseq_method",
    "from_tag",
    "to_tag",
    "via_branch",
    "sdp_media_ports",
)
STUN_FIELDS = ("stun_class", "stun_method", "transaction_id", "xor_mapped_address")

EXCEPTIONS = {
    # tshark 4.0's classicstun dissector knows only the RFC 3489 attribute set and shows type
    # 0x0020 as "Unknown", although stund 0.97 and other RFC 3489 servers send it (the
    # XOR-MAPPED-ADDRESS of the RFC 3489bis drafts that became RFC 5389).  Its value is then
    # decoded here from tshark's raw attribute bytes, per RFC 8489 §14.2 with the first 32 bits
    # of the 128-bit RFC 3489 transaction ID in the place of the magic cookie (which is what
    # those servers XOR with; in RFC 5389 the cookie *is* those 32 bits).
    "classic-stun-xor-mapped-address": "decoded from tshark's raw bytes of attribute 0x0020",
}

TSHARK_OPTIONS = (
    "-o",
    "tcp.desegment_tcp_streams:TRUE",
    "-o",
    "ip.defragment:TRUE",
    "-o",
    "ipv6.defragment:TRUE",
    "-o",
    "sip.desegment_headers:TRUE",
    "-o",
    "sip.desegment_body:TRUE",
    # Heuristics find SIP and STUN off their registered ports (SIPp on 5070/5080, stund's
    # second port 3479); they are on by default in tshark 4.0, named here so that a changed
    # default or a user profile cannot turn them off.
    "--enable-heuristic",
    "sip_udp",
    "--enable-heuristic",
    "sip_tcp",
    "--enable-heuristic",
    "stun_udp",
    "--enable-heuristic",
    "stun_tcp",
    "--enable-heuristic",
    "classicstun_udp",
    "--enable-heuristic",
    "classicstun_tcp",
)

DISPLAY_FILTER = "sip || stun || classicstun"

# RFC 8489 §5: the class is bits C1 (0x100) and C0 (0x010) of the message type.
STUN_CLASSES = {0: "request", 1: "indication", 2: "success_response", 3: "error_response"}
# IANA "STUN Methods" (RFC 8489 §18.2, RFC 8656, RFC 6062; 0x002 was RFC 3489's Shared Secret).
STUN_METHODS = {
    0x001: "binding",
    0x002: "shared_secret",
    0x003: "allocate",
    0x004: "refresh",
    0x006: "send",
    0x007: "data",
    0x008: "create_permission",
    0x009: "channel_bind",
    0x00A: "connect",
    0x00B: "connection_bind",
    0x00C: "connection_attempt",
}
XOR_MAPPED_ADDRESS = 0x0020
MAGIC_COOKIE = bytes.fromhex("2112a442")


def tshark_fields(path: Path, *fields: str, display_filter: str = "sip") -> list[list[str]]:
    """Rows of ``tshark -T fields`` for the packets matching ``display_filter``."""
    tshark = require_tool("tshark")
    args = [tshark, "-r", str(path), "-Y", display_filter, "-T", "fields"]
    for name in fields:
        args += ["-e", name]
    done = subprocess.run(args, capture_output=True, text=True, check=True, timeout=120)
    return [line.split("\t") for line in done.stdout.splitlines() if line.strip()]


def tshark_messages(
    path: Path | str, decode_as: Sequence[str] = (), keylog: Path | None = None
) -> list[dict[str, Any]]:
    """The SIP and STUN messages tshark finds in a capture, in frame order.

    ``decode_as`` adds ``-d`` rules (``"udp.port==5070,sip"``) for ports the heuristics miss;
    ``keylog`` is an NSS key log tshark decrypts TLS with (``-o tls.keylog_file:``).
    """
    tshark = require_tool("tshark", "tshark")
    args = [tshark, "-n", "-r", str(path), *TSHARK_OPTIONS]
    if keylog is not None:
        args += ["-o", f"tls.keylog_file:{keylog}"]
    for rule in decode_as:
        args += ["-d", rule]
    args += ["-Y", DISPLAY_FILTER, "-T", "pdml"]
    done = subprocess.run(args, capture_output=True, check=False, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(
            f"tshark failed on {path} ({done.returncode}): {done.stderr.decode(errors='replace')}"
        )
    root = ET.fromstring(done.stdout)
    messages: list[dict[str, Any]] = []
    for packet in root.iter("packet"):
        messages.extend(_packet_messages(packet))
    return messages


# -- one packet ---------------------------------------------------------------------------------


def _packet_messages(packet: ET.Element) -> Iterable[dict[str, Any]]:
    protos = [p for p in packet if p.tag == "proto"]
    names = [p.get("name") for p in protos]
    if "icmp" in names or "icmpv6" in names:
        return  # SIP or STUN quoted inside an ICMP error is not a message on the wire
    frame = int(_show(_field(_proto(protos, "frame"), "frame.number")) or "0")
    transport, src_port, dst_port = _transport(protos)
    src_ip, dst_ip = _addresses(protos)
    position = 0
    for proto in protos:
        name = proto.get("name")
        if name == "sip":
            message = _sip(proto)
        elif name == "stun":
            message = _stun(proto)
        elif name == "classicstun":
            message = _classic_stun(proto)
        else:
            continue
        if message is None:
            continue  # a continuation, not a message
        message.update(
            frame=frame,
            position=position,
            transport=transport,
            src=_endpoint(src_ip, src_port),
            dst=_endpoint(dst_ip, dst_port),
        )
        position += 1
        yield message


def _proto(protos: Sequence[ET.Element], name: str) -> ET.Element:
    for proto in protos:
        if proto.get("name") == name:
            return proto
    raise ValueError(f"no {name} layer")


def _transport(protos: Sequence[ET.Element]) -> tuple[str | None, str | None, str | None]:
    # The last UDP/TCP layer before the message (an IP-in-IP tunnel would show two).
    found: tuple[str | None, str | None, str | None] = (None, None, None)
    for proto in protos:
        name = proto.get("name")
        if name in ("udp", "tcp"):
            found = (
                name,
                _show(_field(proto, f"{name}.srcport")),
                _show(_field(proto, f"{name}.dstport")),
            )
    return found


def _addresses(protos: Sequence[ET.Element]) -> tuple[str | None, str | None]:
    found: tuple[str | None, str | None] = (None, None)
    for proto in protos:
        name = proto.get("name")
        if name in ("ip", "ipv6"):
            found = (_show(_field(proto, f"{name}.src")), _show(_field(proto, f"{name}.dst")))
    return found


def _endpoint(ip: str | None, port: str | None) -> str | None:
    if ip is None or port is None:
        return None
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


# -- SIP ---------------------------------------------------------------------------------------


def _sip(proto: ET.Element) -> dict[str, Any] | None:
    request_line = _field(proto, "sip.Request-Line")
    status_line = _field(proto, "sip.Status-Line")
    if request_line is None and status_line is None:
        return None
    status = _show(_field(status_line, "sip.Status-Code")) if status_line is not None else None
    cseq = _field(proto, "sip.CSeq")
    seq = _show(_field(cseq, "sip.CSeq.seq"))
    via = _field(proto, "sip.Via")
    return {
        "protocol": "sip",
        "method": _show(_field(request_line, "sip.Method")) if request_line is not None else None,
        "status": int(status) if status is not None else None,
        "call_id": _show(_field(proto, "sip.Call-ID")),
        "cseq_seq": int(seq) if seq is not None else None,
        "cseq_method": _show(_field(cseq, "sip.CSeq.method")),
        "from_tag": _show(_field(_field(proto, "sip.From"), "sip.from.tag")),
        "to_tag": _show(_field(_field(proto, "sip.To"), "sip.to.tag")),
        "via_branch": _show(_field(via, "sip.Via.branch")),
        "sdp_media_ports": [
            int(port)
            for sdp in proto.iter("proto")
            if sdp.get("name") == "sdp"
            for port in _shows(sdp, "sdp.media.port")
        ],
    }


# -- STUN --------------------------------------------------------------------------------------


def _type_names(message_type: int) -> tuple[str, str]:
    klass = ((message_type >> 7) & 0x2) | ((message_type >> 4) & 0x1)
    method = (
        (message_type & 0x000F) | ((message_type >> 1) & 0x0070) | ((message_type >> 2) & 0x0F80)
    )
    return STUN_CLASSES[klass], STUN_METHODS.get(method, f"0x{method:03x}")


def _stun(proto: ET.Element) -> dict[str, Any] | None:
    message_type = _field(proto, "stun.type")
    if message_type is None:
        return None
    klass, method = _type_names(int(_show(message_type) or "0", 16))
    xor_mapped = None
    for attribute in _all(proto, "stun.attribute"):
        if int(attribute.get("show") or "0", 16) == XOR_MAPPED_ADDRESS:
            ip = _show(_field(attribute, "stun.att.ipv4")) or _show(
                _field(attribute, "stun.att.ipv6")
            )
            xor_mapped = _endpoint(ip, _show(_field(attribute, "stun.att.port")))
            break
    return {
        "protocol": "stun",
        "legacy": False,
        "stun_class": klass,
        "stun_method": method,
        "transaction_id": _raw(_field(proto, "stun.id")).hex(),
        "xor_mapped_address": xor_mapped,
    }


def _classic_stun(proto: ET.Element) -> dict[str, Any] | None:
    message_type = _field(proto, "classicstun.type")
    if message_type is None:
        return None
    klass, method = _type_names(int(_show(message_type) or "0", 16))
    transaction_id = _raw(_field(proto, "classicstun.id"))
    xor_mapped = None
    for attribute_type in _all(proto, "classicstun.att.type"):
        if int(attribute_type.get("show") or "0", 16) != XOR_MAPPED_ADDRESS:
            continue
        # EXCEPTIONS["classic-stun-xor-mapped-address"]: the enclosing unnamed field holds the
        # attribute's raw bytes (type, length, value).
        raw = _raw_attribute(proto, attribute_type)
        xor_mapped = _xor_address(raw[4:], transaction_id)
        break
    return {
        "protocol": "stun",
        "legacy": True,
        "stun_class": klass,
        "stun_method": method,
        "transaction_id": transaction_id.hex(),
        "xor_mapped_address": xor_mapped,
    }


def _raw_attribute(proto: ET.Element, attribute_type: ET.Element) -> bytes:
    for parent in proto.iter("field"):
        if attribute_type in list(parent):
            return _raw(parent)
    raise ValueError("attribute without an enclosing field")


def _xor_address(value: bytes, transaction_id: bytes) -> str | None:
    # RFC 8489 §14.2, with the first 32 bits of ``transaction_id`` as the cookie.
    if len(value) < 8:
        return None
    family = value[1]
    port = int.from_bytes(value[2:4], "big") ^ int.from_bytes(transaction_id[:2], "big")
    if family == 0x01:
        raw = bytes(a ^ b for a, b in zip(value[4:8], transaction_id[:4], strict=True))
        return f"{ipaddress.IPv4Address(raw)}:{port}"
    if family == 0x02 and len(value) >= 20:
        raw = bytes(a ^ b for a, b in zip(value[4:20], transaction_id[:16], strict=True))
        return f"[{ipaddress.IPv6Address(raw)}]:{port}"
    return None


# -- PDML helpers --------------------------------------------------------------------------------


def _field(element: ET.Element | None, name: str) -> ET.Element | None:
    """The first field called ``name`` at or under ``element`` (document order)."""
    if element is None:
        return None
    for field in element.iter("field"):
        if field.get("name") == name:
            return field
    return None


def _all(element: ET.Element, name: str) -> list[ET.Element]:
    return [field for field in element.iter("field") if field.get("name") == name]


def _show(field: ET.Element | None) -> str | None:
    return None if field is None else field.get("show")


def _raw(field: ET.Element | None) -> bytes:
    """The bytes a field covers (PDML's ``value``, hex)."""
    return bytes.fromhex("" if field is None else field.get("value") or "")


def _shows(element: ET.Element, name: str) -> list[str]:
    return [field.get("show") or "" for field in _all(element, name)]
