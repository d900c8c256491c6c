"""Damaged input of every kind gives Problems, never an exception (except ParseError)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siptool.capture import Problem, RawMessage, iter_input
from siptool.errors import ParseError
from tests.support.captures import (
    STUN_BINDING_REQUEST,
    STUN_BINDING_SUCCESS,
)
from tests.support.paths import CAPTURES

SEEDS = [path.read_bytes() for path in sorted(CAPTURES.glob("*.pcap*"))] + [
    STUN_BINDING_REQUEST + STUN_BINDING_SUCCESS,
    b"OPTIONS sip:a@x SIP/2.0\r\nContent-Length: 0\r\n\r\n",
    b"00000000: 4f50 5449 4f4e 5320 7369 703a 6140 7820  OPTIONS sip:a@x \n",
]
FORMATS = ["auto", "sip", "stun", "hex", "pcap", "pcapng"]


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        action = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if action == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[pos:]
        elif action == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=40))
        else:
            del data[pos : pos + draw(st.integers(1, 64))]
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged(), st.sampled_from(FORMATS))
def test_damaged_input_never_raises_anything_but_parse_error(
    data: bytes, input_format: str
) -> None:
    try:
        items = list(iter_input(data, input_format=input_format))
    except ParseError:
        return
    for item in items:
        assert isinstance(item, RawMessage | Problem)
        if isinstance(item, Problem):
            assert "\n" not in item.message and item.where
    fatal = [i for i, item in enumerate(items) if isinstance(item, Problem) and item.fatal]
    assert fatal in ([], [len(items) - 1])
