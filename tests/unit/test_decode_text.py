"""decode's text views without colours are laid out by siptool, exactly as rich lays them out.

rich costs about 0.1 ms a printed line; a 10 MB message of header lines under -v took a minute,
a table of 40,000 messages 20 s (issue 8).  Without colours (a pipe, a file) the renderer writes
the lines itself; these tests prove that the output is the same as rich's, byte for byte, and
that rich is no longer called once per line.
"""

from __future__ import annotations

import io
import random
import struct
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from siptool.capture import iter_input
from siptool.commands.callflow import build_flows
from siptool.commands.decode import (
    DecodedMessage,
    DecodeResult,
    DecodeView,
    Summary,
    decode_items,
)
from siptool.render import decode_text
from siptool.render.output import Output
from tests.support.paths import FIXTURES
from tests.support.spy import record_calls

VIEWS: list[dict[str, Any]] = [
    {},
    {"verbose": True},
    {"lint": True},
    {"flow": True},
    {"verbose": True, "lint": True},
]


def decoded(data: bytes, *, lint: bool = True) -> list[DecodedMessage]:
    items = decode_items(iter_input(data), lint=lint)
    return [d for d in items if isinstance(d, DecodedMessage)]


def render(
    messages: list[DecodedMessage],
    *,
    rich: bool = False,
    verbose: bool = False,
    flow: bool = False,
    lint: bool = False,
) -> str:
    out = io.StringIO()  # not a terminal: no colours, the plain writer
    view = DecodeView.of(verbose=verbose, flow=flow)
    renderer = decode_text.TextRenderer(Output("decode", out=out), view=view, lint=lint)
    assert isinstance(renderer.out, decode_text._PlainWriter)
    if rich:
        renderer.out = decode_text._RichWriter(renderer.console)
    for message in messages:
        renderer.message(message)
    flows = build_flows(messages) if view is DecodeView.FLOW else None
    renderer.finish(DecodeResult("x", Summary(sip=len(messages)), flows=flows))
    return out.getvalue()


FIXTURE_FILES = [
    path
    for folder in ("captures", "text", "broken")
    for path in sorted((FIXTURES / folder).iterdir())
    if path.is_file() and path.name != "garbage.bin"
]


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.name)
def test_every_view_of_the_fixtures_is_what_rich_prints(path: Path) -> None:
    messages = decoded(path.read_bytes())
    for view in VIEWS:
        assert render(messages, **view) == render(messages, rich=True, **view), view


def _words(rng: random.Random) -> str:
    pool = ["alpha", "b", "sip:a@b", "--", "x" * 70, "\t", "[bold]", "é", "世界" * 30, "🙂"]
    return " ".join(rng.choice(pool) for _ in range(rng.randrange(0, 40)))


def _sip(rng: random.Random, index: int) -> bytes:
    user = "u" * rng.choice([1, 100, 200])  # a long Request-URI makes the table collapse
    start = rng.choice(
        [f"INVITE sip:{user}@h SIP/2.0", f"SIP/2.0 404 {_words(rng)[:300] or 'Not Found'}"]
    )
    headers = [
        "Via: SIP/2.0/UDP h;branch=z9hG4bK" + str(index),
        f"From: <sip:a@b>;tag={index}",
        "To: <sip:b@c>",
        f"Call-ID: {index}@x",
        "CSeq: 1 INVITE",
        *(f"X-{k}: {_words(rng)}" for k in range(rng.randrange(0, 5))),
    ]
    body = ""
    if rng.random() < 0.3:
        body = f"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns={_words(rng)[:200]}\r\n"
        body += "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    elif rng.random() < 0.2:
        body = _words(rng) + "\n" + _words(rng)
    headers.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join([start, *headers]) + "\r\n\r\n" + body).encode()


def _stun(rng: random.Random) -> bytes:
    attributes = b""
    for _ in range(rng.randrange(0, 8)):
        kind = rng.choice([0x8022, 0x0019, 0x7F01, 0x0020])
        if kind == 0x8022:
            value = _words(rng).encode()[:500]  # SOFTWARE: long text wraps in its column
        elif kind == 0x0020:
            value = struct.pack("!HH4s", 1, 1234, bytes(4))
        else:
            value = rng.randbytes(rng.choice([4, 40, 400]))
        attributes += struct.pack("!HH", kind, len(value)) + value + b"\0" * (-len(value) % 4)
    return struct.pack("!HHI12s", 0x0101, len(attributes), 0x2112A442, bytes(12)) + attributes


@pytest.mark.parametrize("seed", range(40))
def test_wrapped_lines_and_collapsed_tables_are_what_rich_prints(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(5):
        if rng.random() < 0.3:
            data = _stun(rng)
        else:
            data = b"".join(_sip(rng, k) for k in range(rng.randrange(1, 5)))
        messages = decoded(data, lint=rng.random() < 0.5)
        for view in VIEWS[:3]:
            assert render(messages, **view) == render(messages, rich=True, **view), view


def count_rich_prints(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    return record_calls(monkeypatch, Console, "print")


def test_a_message_of_many_header_lines_is_written_without_rich_per_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    head = b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: many@x\r\nCSeq: 1 OPTIONS\r\n"
    lines = b"".join(b"X-Header-%d: value %d\r\n" % (k, k) for k in range(20_000))
    messages = decoded(head + lines + b"Content-Length: 0\r\n\r\n", lint=False)
    calls = count_rich_prints(monkeypatch)
    text = render(messages, verbose=True)
    assert sum(line.startswith("X-Header-") for line in text.splitlines()) == 20_000
    assert calls == []


def test_a_table_of_many_messages_is_written_without_rich_per_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = b"".join(
        b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: %d@x\r\nCSeq: 1 OPTIONS\r\n"
        b"Content-Length: 0\r\n\r\n" % k
        for k in range(5_000)
    )
    messages = decoded(data, lint=False)
    calls = count_rich_prints(monkeypatch)
    text = render(messages)
    assert len(text.splitlines()) == 5_000 + 2  # the header, the rows, the summary line
    assert calls == []


def test_a_stun_message_of_many_attributes_is_written_without_rich_per_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = b"".join(struct.pack("!HH4s", 0x8022, 4, b"tool") for _ in range(8_000))
    data = struct.pack("!HHI12s", 0x0101, len(body), 0x2112A442, bytes(12)) + body
    messages = decoded(data, lint=False)
    calls = count_rich_prints(monkeypatch)
    text = render(messages, verbose=True)
    assert text.splitlines().count("SOFTWARE  tool") == 8_000
    assert calls == []


def test_a_header_longer_than_the_width_is_wrapped_as_rich_wraps_it_without_printing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # console.print split its wrapped lines out of one string again for each line: a 10 MB
    # folded header took 16 s under -v.
    folded = b"".join(b" word%d\r\n" % k for k in range(20_000))
    data = b"OPTIONS sip:a@b SIP/2.0\r\nSubject: x\r\n" + folded + b"Content-Length: 0\r\n\r\n"
    messages = decoded(data, lint=False)
    expected = render(messages, rich=True, verbose=True)
    calls = count_rich_prints(monkeypatch)
    assert render(messages, verbose=True) == expected
    assert calls == []


def _many(count: int, wide_from: int | None = None) -> bytes:
    """``count`` OPTIONS; from ``wide_from`` on, a much longer source address and summary."""
    out = []
    for k in range(count):
        user = "u" * (150 if wide_from is not None and k >= wide_from else 3)
        out.append(
            b"OPTIONS sip:%s@b SIP/2.0\r\nCall-ID: %d@x\r\nCSeq: %d OPTIONS\r\n"
            b"Content-Length: 0\r\n\r\n" % (user.encode(), k, k)
        )
    return b"".join(out)


def test_a_long_table_streamed_is_the_same_from_both_writers() -> None:
    messages = decoded(_many(1_500, wide_from=900), lint=False)
    plain = render(messages)
    assert plain == render(messages, rich=True)
    lines = plain.splitlines()
    assert len(lines) > 1_500 + 2  # the wide summaries fold onto a second line
    assert [line.split()[0] for line in lines[:-1] if line.split()[0].isdigit()] == [
        str(k) for k in range(1, 1_501)
    ]  # every row, in order, each once


def test_the_table_starts_before_the_input_ends_and_keeps_no_messages() -> None:
    out = io.StringIO()
    renderer = decode_text.TextRenderer(
        Output("decode", out=out), view=DecodeView.TABLE, lint=False
    )
    messages = decoded(_many(decode_text._TableStream.SAMPLE), lint=False)
    for message in messages[:-1]:
        renderer.message(message)
    assert out.getvalue() == ""  # the sample is held: its widths are not known yet
    renderer.message(messages[-1])
    written = out.getvalue().splitlines()
    assert len(written) == decode_text._TableStream.SAMPLE + 1  # the header, every row
    assert renderer.rows is not None and len(renderer.rows.held) == 0


def test_verbose_writes_each_message_as_it_comes() -> None:
    out = io.StringIO()
    renderer = decode_text.TextRenderer(
        Output("decode", out=out), view=DecodeView.VERBOSE, lint=False
    )
    messages = decoded(_many(3), lint=False)
    renderer.message(messages[0])
    assert "Call-ID: 0@x" in out.getvalue().splitlines()
    assert "Call-ID: 1@x" not in out.getvalue()


def test_an_address_wider_than_the_sample_pushes_its_row_and_loses_nothing() -> None:
    messages = decoded(_many(decode_text._TableStream.SAMPLE + 10), lint=False)
    wide = messages[-1]
    wide.raw.src = "[2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff]:65535"
    text = render(messages)
    row = next(line for line in text.splitlines() if "2001:db8" in line)
    assert f"{wide.raw.src} -> {wide.raw.dst}" in row
    assert render(messages, rich=True).count("2001:db8") == 1


def test_the_wall_clock_of_each_message_is_datetimes_to_the_microsecond() -> None:
    import datetime

    from siptool.capture.model import time_in_range

    rng = random.Random(1)
    times = [rng.uniform(-6e10, 2.5e11) for _ in range(5_000)]
    times += [rng.uniform(1.7e9, 1.8e9) for _ in range(5_000)]
    # Rounding to the microsecond carries into the next second (and below zero, the last).
    times += [1e9 + 0.9999995, 1e9 + 0.9999996, -0.0000004, -1.9999996, 1.5e-7, 253402300799.0]
    for t in times:
        if time_in_range(t):
            stamp = datetime.datetime.fromtimestamp(t, datetime.UTC)
            assert decode_text._wall_clock(t) == f"{stamp:%Y-%m-%d %H:%M:%S.%f} UTC", t


def test_the_rtp_streams_table_folds_on_a_narrow_terminal_and_cuts_nothing() -> None:
    from siptool.commands.decode import DecodeOptions, run_decode
    from tests.support.paths import ROOT

    path = ROOT / "examples" / "call-rtp-dtmf.pcap"
    result = run_decode(
        DecodeOptions(source=str(path), view=DecodeView.RTP, rtp=True), lambda m: None, print
    )
    out = io.StringIO()
    renderer = decode_text.TextRenderer(Output("decode", out=out), view=DecodeView.RTP, lint=False)
    renderer.out = decode_text._RichWriter(Console(file=out, width=80, color_system=None))
    renderer.finish(result)
    text = out.getvalue()
    assert "\u2026" not in text  # rich's ellipsis: nothing was cut
    assert max(len(line) for line in text.splitlines()) <= 80
    squeezed = "".join(text.split())
    assert result.media is not None and len(result.media.streams) == 3
    assert all(s["src"] in squeezed and s["call_id"] in squeezed for s in result.media.streams)
