"""Every real capture in tests/fixtures/captures against tshark: same SIP messages, same frames.

New fixtures are picked up automatically.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from siptool.capture import Problem, RawMessage, iter_input
from tests.unit.test_capture_builders import FIXTURES, tshark_fields

CAPTURES = sorted(p for p in FIXTURES.glob("*") if p.suffix in {".pcap", ".pcapng", ".cap"})


def call_id(message: bytes) -> str:
    for line in message.split(b"\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"call-id", b"i"):
            return value.strip().decode("utf-8", "replace")
    return ""


@pytest.mark.peer
@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_sip_messages_and_frames_match_tshark(path: Path) -> None:
    items = list(iter_input(path.read_bytes()))
    assert [p for p in items if isinstance(p, Problem)] == []
    ours: dict[int, list[str]] = {}
    for item in items:
        if isinstance(item, RawMessage) and item.protocol == "sip":
            assert item.frame is not None
            ours.setdefault(item.frame, []).append(call_id(item.data))
    rows = tshark_fields(
        path, "frame.number", "sip.Call-ID", display_filter="sip && !icmp && !icmpv6"
    )
    assert sorted((int(frame), ids) for frame, ids in rows) == sorted(
        (frame, ",".join(ids)) for frame, ids in ours.items()
    )


@pytest.mark.peer
@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_stun_frames_match_tshark(path: Path) -> None:
    ours = sorted(
        {
            item.frame
            for item in iter_input(path.read_bytes())
            if isinstance(item, RawMessage) and item.protocol == "stun" and item.frame is not None
        }
    )
    rows = tshark_fields(
        path, "frame.number", display_filter="(stun || classicstun) && !icmp && !icmpv6"
    )
    assert ours == sorted(int(row[0]) for row in rows)
