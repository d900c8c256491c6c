"""Damaged input through the whole decode path: capture layer, parsers, lint, every renderer.

The rule (shared/cli-contract.md, DESIGN.md "Errors"): bad input gives one line per problem on
stderr naming the input and the packet or byte, exit code 1 (0 when clean), the rest of the
input still decoded, and never a traceback.  The renderers write to a strict UTF-8 stream, as
stdout is under a UTF-8 locale, so that undecodable bytes in a message cannot crash them.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siptool.capture import RawMessage, iter_input
from siptool.cli.decode import renderer_for
from siptool.commands.callflow import build_flows
from siptool.commands.decode import (
    DecodedMessage,
    DecodeOptions,
    DecodeView,
    InputFormat,
    decode_items,
    run_decode,
)
from siptool.render.flow import render_flows
from siptool.render.output import Output, OutputMode
from tests.support.captures import (
    ether,
    pcap_file,
    pcapng_epb,
    pcapng_idb,
    pcapng_shb,
    sip_request,
    sip_response,
    udp4,
    udp6,
)
from tests.support.paths import FIXTURES

SEEDS = sorted(
    path
    for folder in ("captures", "text", "broken")
    for path in (FIXTURES / folder).iterdir()
    if path.is_file()
)
SEED_BYTES = [path.read_bytes() for path in SEEDS]
OPTION_SETS: list[dict[str, Any]] = [
    {},
    {"verbose": True},
    {"flow": True, "lint": True},
    {"output": "json", "flow": True, "lint": True},
    {"output": "jsonl", "flow": True},
]
FORMATS = ["auto", "auto", "auto", "sip", "stun", "hex", "pcap", "pcapng"]


def decode_in_process(path: Path, **options: Any) -> tuple[int, str, str]:
    """The command and the renderer the CLI would pick, with stdout and stderr that refuse
    what a UTF-8 terminal cannot take."""
    out_bytes, err_bytes = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(out_bytes, encoding="utf-8", errors="strict")
    err = io.TextIOWrapper(err_bytes, encoding="utf-8", errors="strict")
    mode = OutputMode(options.get("output", "text"))
    shown = Output("decode", mode=mode, color=False, out=out, err=err)
    decode_options = DecodeOptions(
        source=str(path),
        input_format=InputFormat(options.get("input_format", "auto")),
        view=DecodeView.of(verbose=options.get("verbose", False), flow=options.get("flow", False)),
        lint=options.get("lint", False),
    )
    renderer = renderer_for(shown, decode_options)
    result = run_decode(decode_options, renderer.message, renderer.problem)
    renderer.finish(result)
    code = int(result.exit_code)
    out.flush()
    err.flush()
    return code, out_bytes.getvalue().decode(), err_bytes.getvalue().decode()


def check_outcome(path: Path, options: dict[str, Any], code: int, out: str, err: str) -> None:
    assert code in (0, 1)
    lines = err.splitlines()
    assert all(line.startswith(f"siptool decode: {path}") for line in lines), lines
    assert (code == 1) == bool(lines)
    output = options.get("output", "text")
    if output == "json":
        assert json.loads(out)["exit_code"] == code
    elif output == "jsonl":
        documents = [json.loads(line) for line in out.splitlines()]
        assert documents[-1]["exit_code"] == code
        assert len(documents) - 1 == sum(documents[-1]["summary"][k] for k in ("sip", "stun"))


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEED_BYTES)))
    for _ in range(draw(st.integers(1, 6))):
        action = draw(st.sampled_from(["byte", "bit", "cut", "insert", "delete", "repeat"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if action == "byte" and data:
            data[pos] = draw(st.integers(0, 255))
        elif action == "bit" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif action == "cut":
            del data[pos:]
        elif action == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=40))
        elif action == "repeat":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 200))]
        else:
            del data[pos : pos + draw(st.integers(1, 64))]
    return bytes(data)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged(), st.sampled_from(OPTION_SETS), st.sampled_from(FORMATS))
def test_damaged_fixtures_never_crash_any_renderer(
    tmp_path_factory: pytest.TempPathFactory,
    data: bytes,
    options: dict[str, Any],
    input_format: str,
) -> None:
    path = tmp_path_factory.mktemp("damaged") / "input.bin"
    path.write_bytes(data)
    options = {**options, "input_format": input_format}
    check_outcome(path, options, *decode_in_process(path, **options))


SMALL_FRAMES = [
    ether(udp4(sip_request("OPTIONS", "cut-1@x"))),
    ether(udp6(sip_response(200, "cut-1@x", method="OPTIONS"))),
    ether(udp4(sip_request("BYE", "cut-2@x", cseq=2))),
]


def small_pcap() -> tuple[bytes, set[int]]:
    """The file and the sizes at which a cut leaves a valid, shorter file."""
    records = [pcap_file([frame])[24:] for frame in SMALL_FRAMES]
    sizes = {24 + sum(len(r) for r in records[:n]) for n in range(len(records) + 1)}
    return pcap_file(SMALL_FRAMES), sizes


def small_pcapng() -> tuple[bytes, set[int]]:
    blocks = [pcapng_shb(), pcapng_idb()]
    blocks += [pcapng_epb(0, i, frame) for i, frame in enumerate(SMALL_FRAMES)]
    sizes = {sum(len(b) for b in blocks[:n]) for n in range(1, len(blocks) + 1)}
    return b"".join(blocks), sizes


@pytest.mark.parametrize(
    ("made", "input_format"), [(small_pcap(), "pcap"), (small_pcapng(), "pcapng")], ids=str
)
def test_truncation_at_every_offset_keeps_the_messages_before_the_cut(
    made: tuple[bytes, set[int]], input_format: str
) -> None:
    data, whole_files = made
    whole = [i.data for i in iter_input(data) if isinstance(i, RawMessage)]
    assert len(whole) == len(SMALL_FRAMES)
    for size in range(len(data)):
        items = list(decode_items(iter_input(data[:size], input_format=input_format), lint=True))
        decoded = [i.raw.data for i in items if isinstance(i, DecodedMessage)]
        # Nothing invented, nothing reordered: what survives is a prefix of the whole.
        assert decoded == whole[: len(decoded)], size
        reported = [i for i in items if not isinstance(i, DecodedMessage)]
        assert bool(reported) == (size not in whole_files), size


def text_message(request_uri: str, call_id: bytes = b"c1", reason: bytes = b"OK") -> bytes:
    request = sip_request("INVITE", "c1", uri=request_uri).replace(b"c1", call_id)
    response = sip_response(200, "c1", method="INVITE").replace(b"c1", call_id)
    return request + response.replace(b"200 OK", b"200 " + reason, 1)


def test_flow_of_text_with_a_malformed_request_uri_draws_it_toward_a_question_mark() -> None:
    data = text_message("sip:bob@[2001:db8::1")
    decoded = [
        d for d in decode_items(iter_input(data), lint=True) if isinstance(d, DecodedMessage)
    ]
    [flow] = build_flows(decoded)
    assert flow.arrows[0].label == "INVITE" and flow.arrows[0].dst == "?"
    assert "INVITE" in render_flows([flow])


@pytest.mark.parametrize("options", OPTION_SETS, ids=lambda o: ",".join(o) or "table")
def test_undecodable_bytes_in_a_message_are_shown_not_a_crash(
    tmp_path: Path, options: dict[str, Any]
) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(text_message("sip:bob@example.com", b"caf\xe9-1", b"O\xffK"))
    code, out, err = decode_in_process(path, **options)
    check_outcome(path, options, code, out, err)
    assert code == 0
    if options.get("output") != "json" and not options.get("flow"):
        assert "\N{REPLACEMENT CHARACTER}" in out


@pytest.mark.parametrize("options", [o for o in OPTION_SETS if "output" not in o], ids=str)
def test_terminal_control_sequences_in_a_message_are_shown_escaped(
    tmp_path: Path, options: dict[str, Any]
) -> None:
    evil = b"\x1b]0;owned\x07\x1b[2J"
    data = text_message("sip:bob@example.com", b"c1" + evil, b"OK" + evil)
    path = tmp_path / "evil.txt"
    path.write_bytes(data.replace(b"Max-Forwards: 70", b"Max-Forwards: 70\r\nX-Evil: " + evil))
    code, out, err = decode_in_process(path, **options)
    check_outcome(path, options, code, out, err)
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b]0;owned" in out


def test_an_error_inside_a_hex_block_names_the_block_and_the_byte_of_the_message() -> None:
    message = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nBad Header\r\n\r\n"
    rows = [
        f"{i:08x}: "
        + " ".join(message[j : j + 2].hex() for j in range(i, min(i + 16, len(message)), 2))
        for i in range(0, len(message), 16)
    ]
    text = ("some preamble line\n" + "\n".join(rows) + "\n").encode()
    [problem] = [
        p for p in decode_items(iter_input(text), lint=False) if not isinstance(p, DecodedMessage)
    ]
    block = text.index(b"00000000")
    assert (
        problem.where == f"hex block at byte {block}, byte {message.index(b'Bad')} of the message"
    )


def test_ladder_keeps_long_ipv6_names_whole_and_apart() -> None:
    a, b = "2001:db8:abcd:1234:5678:9abc:def0:1234", "2001:db8:abcd:1234:5678:9abc:def0:1235"
    capture = pcap_file(
        [
            ether(udp6(sip_request("OPTIONS", "v6"), src=a, dst=b, sport=50600)),
            ether(udp6(sip_response(200, "v6", method="OPTIONS"), src=b, dst=a, dport=50600)),
        ]
    )
    decoded = [
        d for d in decode_items(iter_input(capture), lint=False) if isinstance(d, DecodedMessage)
    ]
    lines = render_flows(build_flows(decoded)).splitlines()
    header = lines[1]
    first, second = f"[{a}]:50600", f"[{b}]:5060"
    assert header.startswith("ms ") and first in header and second in header
    assert header.index(second) > header.index(first) + len(first)
    # Each arrow runs between the two names' centres.
    left = header.index(first) + len(first) // 2
    right = header.index(second) + len(second) // 2
    assert lines[2].index("|") == left and lines[2].rindex("|") == right


def test_a_truncated_record_is_named_by_its_packet_and_byte_offset() -> None:
    data, _ = small_pcap()
    record = len(data) - len(SMALL_FRAMES[-1]) - 16
    items = list(decode_items(iter_input(data[:-30]), lint=False))
    assert [type(i) for i in items] == [DecodedMessage, DecodedMessage, type(items[-1])]
    assert items[-1].where == f"packet 3, byte {record}"  # type: ignore[union-attr]


@pytest.mark.parametrize("exists", [True, False])
@pytest.mark.parametrize("output", ["json", "jsonl", "text"])
def test_a_file_name_that_is_not_utf8_is_shown_with_a_replacement_character(
    tmp_path: Path, exists: bool, output: str
) -> None:
    path = tmp_path / os.fsdecode(b"caf\xe9.txt")
    if exists:
        path.write_bytes(b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n")
    code, out, err = decode_in_process(path, output=output)
    assert code == (1 if exists else 3)
    shown = str(tmp_path / "caf\N{REPLACEMENT CHARACTER}.txt")
    assert err.startswith(f"siptool decode: {shown}") or err.startswith(
        f"siptool decode: cannot read {shown}"
    )
    if output != "text":
        assert json.loads(out.splitlines()[-1])["input"] == shown
