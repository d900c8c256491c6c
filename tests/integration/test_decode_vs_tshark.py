"""`siptool decode --jsonl` against tshark on every real capture in tests/fixtures/captures/.

Message by message, matched by (frame, position in frame): the same messages must be there on
both sides, and each must agree on protocol, transport, src, dst and, for SIP, the request
method or status code, Call-ID, CSeq number and method, From and To tags, top Via branch and
SDP media ports; for STUN, class, method, transaction ID and XOR-MAPPED-ADDRESS.  tshark's view
comes from tests/support/tshark_reference.py, whose EXCEPTIONS name the one place where tshark's own
bytes are decoded by hand (XOR-MAPPED-ADDRESS in classic RFC 3489 messages, which tshark 4.0
shows as an unknown attribute).  New captures are picked up automatically.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.support.captures import (
    STUN_BINDING_REQUEST,
    STUN_BINDING_SUCCESS,
    ether,
    ipv4,
    pcap_file,
    sdp,
    sip_request,
    tcp,
    write,
)
from tests.support.paths import CAPTURE_FILES, CAPTURES
from tests.support.run import siptool
from tests.support.tshark_reference import SIP_FIELDS, STUN_FIELDS, tshark_messages

COMMON_FIELDS = ("protocol", "transport", "src", "dst")

pytestmark = pytest.mark.peer


def siptool_messages(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The message objects and the final summary object of `siptool decode --jsonl PATH`."""
    done = siptool("decode", "--jsonl", str(path), timeout=300)
    assert done.returncode == 0, (
        f"decode exited {done.returncode} on {path.name}; stderr:\n{done.stderr}"
    )
    objects = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert objects, f"decode printed nothing for {path.name}"
    *messages, summary = objects
    assert "summary" in summary, f"the last line is not the summary: {summary}"
    assert all("summary" not in m for m in messages), "a summary before the last line"
    return messages, summary


def view(message: dict[str, Any]) -> dict[str, Any]:
    """One siptool message reduced to the fields tshark_reference extracts, same names."""
    out: dict[str, Any] = {name: message.get(name) for name in COMMON_FIELDS}
    if message.get("protocol") == "sip":
        cseq = message.get("cseq") or {}
        via = message.get("via") or [{}]
        sdp = message.get("sdp") or {}
        out.update(
            method=message.get("method") if message.get("kind") == "request" else None,
            status=message.get("status"),
            call_id=message.get("call_id"),
            cseq_seq=cseq.get("seq"),
            cseq_method=cseq.get("method"),
            from_tag=(message.get("from") or {}).get("tag"),
            to_tag=(message.get("to") or {}).get("tag"),
            via_branch=via[0].get("branch"),
            sdp_media_ports=[m.get("port") for m in sdp.get("media") or []],
        )
    elif message.get("protocol") == "stun":
        stun = message.get("stun") or {}
        out.update(
            stun_class=stun.get("class"),
            stun_method=stun.get("method"),
            transaction_id=(stun.get("transaction_id") or "").lower() or None,
            xor_mapped_address=next(
                (
                    a.get("value")
                    for a in stun.get("attributes") or []
                    if attribute_type(a.get("type")) == 0x0020
                ),
                None,
            ),
        )
    return out


def attribute_type(value: Any) -> int | None:
    """STUN attribute types as int whether the JSON has 32 or "0x0020"."""
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            return None
    return None


def keyed_by_position(messages: Sequence[dict[str, Any]]) -> dict[tuple[int, int], dict[str, Any]]:
    """siptool messages keyed by (frame, 0-based position among that frame's messages)."""
    keyed: dict[tuple[int, int], dict[str, Any]] = {}
    per_frame: dict[int, int] = {}
    for message in sorted(messages, key=lambda m: m["index"]):
        frame = message.get("frame")
        assert isinstance(frame, int), f"message {message.get('index')} has no frame: {frame!r}"
        position = per_frame.get(frame, 0)
        per_frame[frame] = position + 1
        keyed[(frame, position)] = message
    return keyed


def differences(
    ours: dict[tuple[int, int], dict[str, Any]], theirs: dict[tuple[int, int], dict[str, Any]]
) -> list[str]:
    problems = []
    for key in sorted(set(ours) | set(theirs)):
        where = f"frame {key[0]} message {key[1] + 1}"
        if key not in ours:
            t = theirs[key]
            problems.append(
                f"{where}: tshark finds a {t['protocol']} message siptool does not: {t}"
            )
            continue
        if key not in theirs:
            problems.append(f"{where}: siptool finds a message tshark does not: {view(ours[key])}")
            continue
        mine, t = view(ours[key]), theirs[key]
        fields = COMMON_FIELDS + (SIP_FIELDS if t["protocol"] == "sip" else STUN_FIELDS)
        for field in fields:
            if mine.get(field) != t.get(field):
                problems.append(
                    f"{where}: {field}: siptool {mine.get(field)!r}, tshark {t.get(field)!r}"
                )
    return problems


@pytest.mark.parametrize("path", CAPTURE_FILES, ids=[p.name for p in CAPTURE_FILES])
def test_decode_agrees_with_tshark_message_by_message(path: Path) -> None:
    theirs_list = tshark_messages(path)
    assert theirs_list, f"tshark finds no SIP or STUN in {path.name}: a useless fixture"
    theirs = {(m["frame"], m["position"]): m for m in theirs_list}
    messages, summary = siptool_messages(path)
    problems = differences(keyed_by_position(messages), theirs)
    assert not problems, f"{path.name}: {len(problems)} disagreements:\n" + "\n".join(problems)
    counts = summary["summary"]
    assert (counts.get("sip"), counts.get("stun"), counts.get("invalid")) == (
        sum(m["protocol"] == "sip" for m in theirs_list),
        sum(m["protocol"] == "stun" for m in theirs_list),
        0,
    )


def test_several_messages_in_one_tcp_segment_are_matched_by_position(tmp_path: Path) -> None:
    """No real tool here puts two whole messages in one segment, so a synthetic stream does:
    OPTIONS and INVITE whole in frame 1 with the head of a MESSAGE finished in frame 2, and two
    STUN messages in one segment of another connection (RFC 8489 §6.2.2 framing)."""
    stream = (
        sip_request("OPTIONS", "multi-1@example.com", cseq=1)
        + sip_request("INVITE", "multi-2@example.com", body=sdp(2), cseq=2)
        + sip_request("MESSAGE", "multi-3@example.com", body=b"hello", cseq=3)
    )
    cut = stream.index(b"MESSAGE sip:") + 30
    client, server = "192.0.2.1", "192.0.2.2"
    frames = [
        ether(ipv4(client, server, 6, tcp(5060, 5060, 1, stream[:cut]))),
        ether(ipv4(client, server, 6, tcp(5060, 5060, 1 + cut, stream[cut:]))),
        ether(
            ipv4(
                server, client, 6, tcp(3478, 40000, 1, STUN_BINDING_REQUEST + STUN_BINDING_SUCCESS)
            )
        ),
    ]
    path = write(tmp_path, "multi.pcap", pcap_file(frames))
    theirs_list = tshark_messages(path)
    assert [
        (m["frame"], m["position"], m.get("method") or m.get("stun_class")) for m in theirs_list
    ] == [
        (1, 0, "OPTIONS"),
        (1, 1, "INVITE"),
        (2, 0, "MESSAGE"),
        (3, 0, "request"),
        (3, 1, "success_response"),
    ]
    messages, _ = siptool_messages(path)
    theirs = {(m["frame"], m["position"]): m for m in theirs_list}
    assert differences(keyed_by_position(messages), theirs) == []


def test_comparison_catches_a_changed_field_and_a_missing_message() -> None:
    """The comparison itself: one wrong branch and one message too few must both be reported."""
    path = CAPTURES / "sip-call-sipp-uac-uas.pcap"
    theirs = {(m["frame"], m["position"]): m for m in tshark_messages(path)}
    messages, _ = siptool_messages(path)
    ours = keyed_by_position(messages)
    assert differences(ours, theirs) == []
    first = min(ours)
    broken = dict(ours)
    broken[first] = {**ours[first], "via": [{**ours[first]["via"][0], "branch": "z9hG4bK-x"}]}
    del broken[max(ours)]
    problems = differences(broken, theirs)
    assert len(problems) == 2
    assert "via_branch" in problems[0]
    assert "tshark finds a sip message siptool does not" in problems[1]
