"""Hex dump input in every common style; the ASCII column must never be read as hex."""

from __future__ import annotations

from pathlib import Path

import pytest

from siptool.capture import Problem, RawMessage, detect_format, iter_input
from siptool.capture.hexdump import parse_hex_dump
from tests.support.captures import (
    STUN_BINDING_REQUEST,
    STUN_BINDING_SUCCESS,
    raw,
    udp4,
)
from tests.support.spy import record_calls

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


def test_a_single_line_whose_ascii_column_looks_like_hex() -> None:
    text = b"00000000: 6361 6665                                cafe\n"
    assert parse_hex_dump(text).blocks[0].data == b"cafe"
    text = b"00000000  63 61 66 65                                       |cafe|\n00000004\n"
    assert parse_hex_dump(text).blocks[0].data == b"cafe"


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


# -- hostile dumps: the work stays linear in the text (issue 8) --------------------------------


def hexdump_c_line(offset: int, chunk: bytes) -> bytes:
    left = " ".join(f"{b:02x}" for b in chunk[:8])
    right = " ".join(f"{b:02x}" for b in chunk[8:])
    shown = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
    return f"{offset:08x}  {left:<23}  {right:<23}  |{shown}|\n".encode()


def test_a_repeat_that_jumps_far_ahead_is_one_gap_problem_not_megabytes() -> None:
    # hexdump -C's '*' then an offset 1 MiB ahead, 2000 times: 170 KB of text that once
    # expanded to 2 GB, 16 bytes at a time.
    text = b"".join(hexdump_c_line(i << 20, b"A" * 16) + b"*\n" for i in range(2000))
    dump = parse_hex_dump(text)
    assert [b.data for b in dump.blocks] == [b"A" * 16 * 2000]  # the lines, not the repeats
    [problem] = dump.problems
    assert problem.where == "byte 79"
    assert problem.message == (
        "'*' stands for 1048560 bytes, more than the 65536 a repeat may stand for;"
        " read as a gap (and 1998 more in the dump)"
    )


def test_the_lines_after_a_gap_keep_their_place() -> None:
    text = (
        hexdump_c_line(0, b"A" * 16)
        + b"*\n"
        + hexdump_c_line(0x200000, b"B" * 16)
        + hexdump_c_line(0x200010, b"C" * 4)
        + b"00200014\n"
    )
    dump = parse_hex_dump(text)
    assert [b.data for b in dump.blocks] == [b"A" * 16 + b"B" * 16 + b"C" * 4]
    assert len(dump.problems) == 1  # the gap, and no offset jump at each line after it


def test_repeats_under_the_cap_together_stop_at_the_budget_of_the_dump() -> None:
    # Each '*' stands for just under 64 KiB, which one repeat may; 3000 of them may not.
    text = b"".join(hexdump_c_line(i * 0xFFF0, b"A" * 16) + b"*\n" for i in range(3000))
    dump = parse_hex_dump(text)
    [block] = dump.blocks
    budget = max(1 << 20, 4 * len(text))
    assert budget - 0x10000 < len(block.data) - 16 * 3000 <= budget
    [problem] = dump.problems
    assert f" left of the {budget} all repeats of the dump may stand for; read as a gap (and " in (
        problem.message
    )


def test_repeats_of_a_real_packet_are_still_expanded() -> None:
    body = b"\0" * 1000
    text = hexdump_c_line(0, b"MESSAGE sip:a@x ") + hexdump_c_line(16, body[:16]) + b"*\n"
    text += hexdump_c_line(1008, body[:8]) + b"000003f8\n"
    dump = parse_hex_dump(text)
    assert [b.data for b in dump.blocks] == [b"MESSAGE sip:a@x " + body]
    assert dump.problems == []


@pytest.mark.parametrize(
    ("token", "word"), [("41", "zz"), ("20", "."), ("0x41,", "end"), ("20", "  .  ")]
)
def test_a_long_line_of_hex_tokens_ending_in_a_word_checks_two_ascii_columns_at_most(
    monkeypatch: pytest.MonkeyPatch, token: str, word: str
) -> None:
    # Each shorter prefix of the hex tokens was tried as the bytes of an ASCII column: 300 KB
    # took 14 s.  Only a remainder as long as the prefix's bytes can be its ASCII column.
    from siptool.capture import hexdump

    calls = record_calls(monkeypatch, hexdump, "_renders", lambda rest, data: len(data))
    text = (" ".join([token] * 100_000) + " " + word + "\n").encode()
    dump = parse_hex_dump(text)
    assert dump.blocks == [] and dump.other_lines == 1
    assert len(calls) <= 2


def test_a_long_line_with_its_ascii_column_decodes_with_one_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from siptool.capture import hexdump

    calls = record_calls(monkeypatch, hexdump, "_renders", lambda rest, data: len(data))
    # Every printable byte but the bar (hexdump -C's column marker), then spaces, which the
    # ASCII column may trim.
    data = bytes(b for b in range(32, 127) if b != 0x7C) * 100 + b"  "
    text = (" ".join(f"{b:02x}" for b in data) + "   " + data.decode().rstrip() + "\n").encode()
    assert [b.data for b in parse_hex_dump(text).blocks] == [data]
    assert len(calls) == 1


def test_blank_text_makes_no_line_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    # 10 MB of mostly blank text took 1.9 GB: one object per line, blank or not.
    from siptool.capture import hexdump

    made = record_calls(monkeypatch, hexdump, "_Line")
    unit = b"\n" * 40 + b"   \t  \r\n" * 20 + STUN_BINDING_REQUEST.hex().encode() + b"\n"
    dump = parse_hex_dump(unit * 2000)
    assert [b.data for b in dump.blocks] == [STUN_BINDING_REQUEST] * 2000
    assert len(made) == 2000


def test_star_lines_in_a_dump_without_offsets_are_one_problem() -> None:
    # Lines od and hexdump elide as '*' before lines whose first column is no offset: each
    # line looked for the block's first line past all the '*' lines (300 KB took 15 s), and
    # each '*' was a problem line of its own.
    text = b"*\n" * 20_000 + b"0000 4142 4344\n" * 20_000
    dump = parse_hex_dump(text)
    assert [b.data for b in dump.blocks] == [bytes.fromhex("000041424344") * 20_000]
    [problem] = dump.problems
    assert problem.where == "byte 0"
    assert problem.message.endswith("use od -v (and 19999 more in the dump)")


def test_an_offset_jump_is_one_problem_and_the_lines_after_it_follow_it() -> None:
    lines = [hexdump_c_line(i * 16, bytes([65 + i % 26]) * 16) for i in range(100)]
    del lines[10]  # one line lost from a paste
    dump = parse_hex_dump(b"".join(lines))
    [problem] = dump.problems
    assert problem.message == "hex dump offset jumps from 160 to 176"
    assert len(dump.blocks[0].data) == 99 * 16


def test_mostly_blank_text_before_a_message_is_skipped() -> None:
    # Blank text before a message: the sniffer and the SIP splitter skip it with one C call.
    text = b" \r\n" * 300_000 + b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n"
    assert detect_format(text) == "sip"
    [message] = raw(list(iter_input(text)))
    assert message.offset == 900_000


def test_a_run_of_star_lines_is_one_line_object(monkeypatch: pytest.MonkeyPatch) -> None:
    # The second '*' of two in a row stands for nothing more: a flood of them is one line
    # (10 MB of them took 500 MB), still counted line by line in the problem.
    from siptool.capture import hexdump

    made = record_calls(monkeypatch, hexdump, "_Line")
    text = b"0000 4142\n" + b"*\n" * 50_000 + b"0000 4344\n"
    dump = parse_hex_dump(text)
    assert [b.data for b in dump.blocks] == [bytes.fromhex("000041420000" + "4344")]
    assert dump.problems[0].message.endswith("use od -v (and 49999 more in the dump)")
    assert (dump.data_lines, dump.other_lines) == (2, 50_000)
    assert len(made) == 3
    with_offsets = parse_hex_dump(
        hexdump_c_line(0, b"A" * 16) + b"*\n" * 50_000 + hexdump_c_line(48, b"B" * 16)
    )
    assert [b.data for b in with_offsets.blocks] == [b"A" * 48 + b"B" * 16]


def test_lone_odd_digits_between_blank_lines_are_one_problem() -> None:
    # 10 MB of this took 24 s and 1.9 GB: a line object per blank line, a block and a problem
    # line per digit.
    dump = parse_hex_dump((b"\n" * 50 + b"4\n") * 2000)
    assert dump.blocks == []
    [problem] = dump.problems
    assert problem.where == "byte 50"
    assert problem.message == (
        "odd number of hex digits; last digit ignored (and 1999 more in the dump)"
    )
