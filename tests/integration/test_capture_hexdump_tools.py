"""Hex dumps made by the real tools (xxd, hexdump, od, tcpdump -X) read back to their input."""

from __future__ import annotations

import subprocess

import pytest

from siptool.capture import iter_input
from tests.support.captures import STUN_BINDING_SUCCESS, raw
from tests.support.paths import CAPTURES
from tests.support.peers import require_tool
from tests.unit.test_capture_hexdump import SIP, run


def tool(command: list[str], data: bytes) -> bytes:
    binary = require_tool(command[0], "xxd, bsdextrautils")
    return subprocess.run(
        [binary, *command[1:]], input=data, capture_output=True, check=True
    ).stdout


@pytest.mark.parametrize(
    "command",
    [
        ["xxd"],
        ["xxd", "-p"],
        ["xxd", "-i"],
        ["xxd", "-c", "7"],
        ["xxd", "-g", "1"],
        ["hexdump", "-C"],
        ["hexdump"],
        ["od", "-An", "-tx1"],
        ["od", "-x"],
        ["od", "-Ax", "-tx1"],
    ],
    ids=lambda c: " ".join(c),
)
def test_real_tool_output_decodes_back_to_the_input(command: list[str]) -> None:
    for payload, protocol in [(SIP, "sip"), (STUN_BINDING_SUCCESS, "stun"), (SIP + b"x", "sip")]:
        text = tool(command, payload)
        items = run(text)
        assert [(m.protocol, m.data) for m in raw(items)] == [(protocol, payload)], text.decode()


def test_hexdump_star_lines_are_expanded() -> None:
    body = b"\0" * 200
    message = b"MESSAGE sip:a@x SIP/2.0\r\nContent-Length: 200\r\n\r\n" + body
    text = tool(["hexdump", "-C"], message)
    assert b"*" in text
    assert [m.data for m in raw(run(text))] == [message]
    od = tool(["od", "-Ax", "-tx1"], message)
    assert b"*" in od
    assert [m.data for m in raw(run(od))] == [message]


def test_tcpdump_x_blocks_are_ip_packets() -> None:
    path = CAPTURES / "sip-register-digest-auth.pcapng"
    text = tool(["tcpdump", "-r", str(path), "-X"], b"")
    from_hex = raw(run(text))
    from_pcap = raw(list(iter_input(path.read_bytes())))
    assert [m.data for m in from_hex] == [m.data for m in from_pcap]
    assert [m.src for m in from_hex] == [m.src for m in from_pcap]
