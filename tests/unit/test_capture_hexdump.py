"""Hex dump input in every common style; the ASCII column must never be read as hex."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from siptool.capture import Problem, RawMessage, detect_format, iter_input
from siptool.capture.hexdump import parse_hex_dump
from tests.peers import require_tool
from tests.unit.test_capture_builders import (
    FIXTURES,
    STUN_BINDING_REQUEST,
    STUN_BINDING_SUCCESS,
    udp4,
)

SIP = (
    b"OPTIONS sip:bob@cafe.example SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKbeef\r\n"
    b"Call-ID: hex@x\r\n"
    b"Content-Length: 4\r\n\r\n"
    b"cafe"  # ends with hex-looking ASCII: the last line's ASCII column is "cafe"
)


def run(text: bytes) -> list[RawMessage | Problem]:
    assert detect_format(text) == "hex"
    return list(iter_input(text))


def raw(items: list[RawMessage | Problem]) -> list[RawMessage]:
    return [item for item in items if isinstance(item, RawMessage)]


def problems(items: list[RawMessage | Problem]) -> list[Problem]:
    return [item for item in items if isinstance(item, Problem)]


def tool(command: list[str], data: bytes) -> bytes:
    if shutil.which(command[0]) is None:
        from tests.peers import unavailable

        unavailable(f"{command[0]} not installed (Debian packages xxd, bsdextrautils)")
    return subprocess.run(command, input=data, capture_output=True, check=True).stdout


def test_plain_hex_with_spaces_and_newlines_is_stun() -> None:
    text = STUN_BINDING_SUCCESS.hex()
    spaced = " ".join(text[i : i + 8] for i in range(0, len(text), 8))
    wrapped = "\n".join(spaced[i : i + 20] for i in range(0, len(spaced), 20)).encode()
    [message] = run(wrapped)
    assert (message.protocol, message.data) == ("stun", STUN_BINDING_SUCCESS)


def test_plain_hex_wrapped_in_the_middle_of_a_byte() -> None:
    text = STUN_BINDING_REQUEST.hex()
    wrapped = (text[:7] + "\n" + text[7:]).encode()
    assert [m.data for m in raw(run(wrapped))] == [STUN_BINDING_REQUEST]


def test_several_blocks_separated_by_blank_lines_are_several_messages() -> None:
    text = (
        STUN_BINDING_REQUEST.hex() + "\n\n" + STUN_BINDING_SUCCESS.hex() + "\n\n\n" + SIP.hex()
    ).encode()
    items = run(text)
    assert [(m.protocol, m.data) for m in raw(items)] == [
        ("stun", STUN_BINDING_REQUEST),
        ("stun", STUN_BINDING_SUCCESS),
        ("sip", SIP),
    ]
    assert [m.offset for m in raw(items)] == [0, 42, 42 + 64 + 3]


def test_two_stun_messages_back_to_back_in_one_block() -> None:
    text = (STUN_BINDING_REQUEST + STUN_BINDING_SUCCESS).hex().encode()
    assert [m.data for m in raw(run(text))] == [STUN_BINDING_REQUEST, STUN_BINDING_SUCCESS]


XXD = b"""\
00000000: 4f50 5449 4f4e 5320 7369 703a 626f 6240  OPTIONS sip:bob@
00000010: 6361 6665 2e65 7861 6d70 6c65 2053 4950  cafe.example SIP
00000020: 2f32 2e30 0d0a 5669 613a 2053 4950 2f32  /2.0..Via: SIP/2
00000030: 2e30 2f55 4450 2031 3932 2e30 2e32 2e31  .0/UDP 192.0.2.1
00000040: 3b62 7261 6e63 683d 7a39 6847 3462 4b62  ;branch=z9hG4bKb
00000050: 6565 660d 0a43 616c 6c2d 4944 3a20 6865  eef..Call-ID: he
00000060: 7840 780d 0a43 6f6e 7465 6e74 2d4c 656e  x@x..Content-Len
00000070: 6774 683a 2034 0d0a 0d0a 6361 6665       gth: 4....cafe
"""

HEXDUMP_C = b"""\
00000000  4f 50 54 49 4f 4e 53 20  73 69 70 3a 62 6f 62 40  |OPTIONS sip:bob@|
00000010  63 61 66 65 2e 65 78 61  6d 70 6c 65 20 53 49 50  |cafe.example SIP|
00000020  2f 32 2e 30 0d 0a 56 69  61 3a 20 53 49 50 2f 32  |/2.0..Via: SIP/2|
00000030  2e 30 2f 55 44 50 20 31  39 32 2e 30 2e 32 2e 31  |.0/UDP 192.0.2.1|
00000040  3b 62 72 61 6e 63 68 3d  7a 39 68 47 34 62 4b 62  |;branch=z9hG4bKb|
00000050  65 65 66 0d 0a 43 61 6c  6c 2d 49 44 3a 20 68 65  |eef..Call-ID: he|
00000060  78 40 78 0d 0a 43 6f 6e  74 65 6e 74 2d 4c 65 6e  |x@x..Content-Len|
00000070  67 74 68 3a 20 34 0d 0a  0d 0a 63 61 66 65        |gth: 4....cafe|
0000007e
"""

TSHARK_STYLE = b"""\
0000  4f 50 54 49 4f 4e 53 20 73 69 70 3a 62 6f 62 40   OPTIONS sip:bob@
0010  63 61 66 65 2e 65 78 61 6d 70 6c 65 20 53 49 50   cafe.example SIP
0020  2f 32 2e 30 0d 0a 56 69 61 3a 20 53 49 50 2f 32   /2.0..Via: SIP/2
0030  2e 30 2f 55 44 50 20 31 39 32 2e 30 2e 32 2e 31   .0/UDP 192.0.2.1
0040  3b 62 72 61 6e 63 68 3d 7a 39 68 47 34 62 4b 62   ;branch=z9hG4bKb
0050  65 65 66 0d 0a 43 61 6c 6c 2d 49 44 3a 20 68 65   eef..Call-ID: he
0060  78 40 78 0d 0a 43 6f 6e 74 65 6e 74 2d 4c 65 6e   x@x..Content-Len
0070  67 74 68 3a 20 34 0d 0a 0d 0a 63 61 66 65         gth: 4....cafe
"""

OD_TX1 = b"""\
 4f 50 54 49 4f 4e 53 20 73 69 70 3a 62 6f 62 40
 63 61 66 65 2e 65 78 61 6d 70 6c 65 20 53 49 50
 2f 32 2e 30 0d 0a 56 69 61 3a 20 53 49 50 2f 32
 2e 30 2f 55 44 50 20 31 39 32 2e 30 2e 32 2e 31
 3b 62 72 61 6e 63 68 3d 7a 39 68 47 34 62 4b 62
 65 65 66 0d 0a 43 61 6c 6c 2d 49 44 3a 20 68 65
 78 40 78 0d 0a 43 6f 6e 74 65 6e 74 2d 4c 65 6e
 67 74 68 3a 20 34 0d 0a 0d 0a 63 61 66 65
"""


@pytest.mark.parametrize(
    "text",
    [XXD, HEXDUMP_C, TSHARK_STYLE, OD_TX1],
    ids=["xxd", "hexdump-C", "tshark-x", "od-An-tx1"],
)
def test_styles_with_ascii_columns_or_offsets_decode_exactly(text: bytes) -> None:
    assert [m.data for m in raw(run(text))] == [SIP]


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


def test_a_single_line_whose_ascii_column_looks_like_hex() -> None:
    text = b"00000000: 6361 6665                                cafe\n"
    assert parse_hex_dump(text).blocks[0].data == b"cafe"
    text = b"00000000  63 61 66 65                                       |cafe|\n00000004\n"
    assert parse_hex_dump(text).blocks[0].data == b"cafe"


def test_tcpdump_x_blocks_are_ip_packets() -> None:
    path = FIXTURES / "sip-register-digest-auth.pcapng"
    text = tool(["tcpdump", "-r", str(path), "-X"], b"")
    from_hex = raw(run(text))
    from_pcap = raw(list(iter_input(path.read_bytes())))
    assert [m.data for m in from_hex] == [m.data for m in from_pcap]
    assert [m.src for m in from_hex] == [m.src for m in from_pcap]


@pytest.mark.parametrize(
    "name",
    ["sip-call-sipp-uac-uas.pcap", "sip-options-tcp.pcap", "sip-register-digest-auth.pcapng"],
)
@pytest.mark.peer
def test_tshark_x_of_a_capture_gives_the_same_messages_as_the_capture(name: str) -> None:
    tshark = require_tool("tshark")
    path = FIXTURES / name
    text = subprocess.run([tshark, "-r", str(path), "-x"], capture_output=True, check=True).stdout
    from_hex = raw(run(text))
    from_pcap = raw(list(iter_input(path.read_bytes())))
    assert [(m.frame, m.data, m.src, m.dst, m.transport) for m in from_hex] == [
        (m.frame, m.data, m.src, m.dst, m.transport) for m in from_pcap
    ]


def test_wireshark_copy_as_hex_dump_without_ascii_and_colon_separated_bytes() -> None:
    packet = udp4(SIP)
    rows = [packet[i : i + 16] for i in range(0, len(packet), 16)]
    dump = "\n".join(
        f"{i * 16:04x}   " + " ".join(f"{b:02x}" for b in row) for i, row in enumerate(rows)
    )
    [message] = raw(run(dump.encode()))
    assert (message.data, message.src, message.transport) == (SIP, "192.0.2.1:5060", "udp")
    colons = ":".join(f"{b:02x}" for b in STUN_BINDING_REQUEST).encode()
    assert [m.data for m in raw(run(colons))] == [STUN_BINDING_REQUEST]


def test_tshark_reassembled_sections_are_not_duplicated(tmp_path: Path) -> None:
    frame_hex = TSHARK_STYLE.decode()
    text = f"Frame (126 bytes):\n{frame_hex}\nReassembled TCP (126 bytes):\n{frame_hex}".encode()
    assert [h.label for h in parse_hex_dump(text).blocks] == ["Frame (126 bytes):"]


def test_block_that_is_no_message_is_a_problem() -> None:
    items = list(iter_input(b"deadbeef 00112233", input_format="hex"))
    assert [type(i) for i in items] == [Problem]
    assert "neither STUN, SIP nor a packet" in items[0].message  # type: ignore[union-attr]


def test_odd_number_of_hex_digits_is_a_problem() -> None:
    text = (STUN_BINDING_REQUEST.hex() + "a").encode()
    items = list(iter_input(text, input_format="hex"))
    assert any(isinstance(i, Problem) and "odd number of hex digits" in i.message for i in items)
