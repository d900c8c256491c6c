"""`siptool decode` on hostile input shapes: time per MB, at 1 KB, 100 KB, 1 MB and 10 MB each.

    python benchmarks/pathological_input.py [--sizes 1K,100K,1M,10M] [--shapes NAME,...]
                                            [--views table,json,-v] [--timeout 60]
                                            [--min-rate 1] [--runs 2]

Each shape is a kind of input that once made decode do work growing faster than the input, or
slower than 1 MB/s (issue 8): hex dumps with ``*`` repeats, long lines, blank text, duplicated
lines; damaged pcapng and pcap; SIP text with very many header lines; SIP and STUN over TCP
that never frame; and, for comparison, sane input of the same kinds.  Every shape is built here,
deterministically, at each size, written to a temporary file and decoded by the real
``siptool decode`` process once per view (the table, ``--json``, ``-v``; also ``--flow`` and
``--jsonl`` on request), output to /dev/null.  Hex shapes are given ``--format hex`` so that the
whole input goes through the hex reader whatever the sniffer makes of it.

The table gives the wall time (best of ``--runs`` below 1 MB), the time net of process start-up
(the median of five decodes of one message in the same view, measured first), the net rate in
MB/s (10^6 bytes), the peak RSS of the run, its exit code and the number of its stderr lines.
A run passes when it exits 0 or 1 without a traceback and its net time is within
``size / --min-rate`` plus 0.15 s (start-up noise on a shared machine).  At 1 KB and 100 KB the
start-up dominates: the net rate is shown only when the net time is at least 50 ms.  A run still
going after ``--timeout`` seconds is killed (its whole process group) and fails.  Exit status: 0
when every run passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "tests" / "fixtures" / "captures"
MB = 1_000_000
SLACK = 0.15
SIZES = {"1K": 1_000, "100K": 100_000, "1M": 1_000_000, "10M": 10_000_000}
VIEWS = {"table": [], "json": ["--json"], "-v": ["-v"], "flow": ["--flow"], "jsonl": ["--jsonl"]}


def _repeat(unit: Callable[[int], bytes], size: int, head: bytes = b"", tail: bytes = b"") -> bytes:
    """``head``, then ``unit(0)``, ``unit(1)``, ... up to ``size`` bytes in all, then ``tail``."""
    parts = [head]
    total = len(head) + len(tail)
    index = 0
    while total < size:
        piece = unit(index)
        parts.append(piece)
        total += len(piece)
        index += 1
    parts.append(tail)
    return b"".join(parts)


# -- hex dumps ------------------------------------------------------------------------------


def _hexdump_c(offset: int, chunk: bytes) -> bytes:
    """One line of ``hexdump -C``."""
    left = " ".join(f"{b:02x}" for b in chunk[:8])
    right = " ".join(f"{b:02x}" for b in chunk[8:])
    shown = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
    return f"{offset:08x}  {left:<23}  {right:<23}  |{shown}|\n".encode()


def hex_star_jump(size: int) -> bytes:
    # ``*`` ("same as above") then an offset 1 MiB further: each repeat stands for a megabyte.
    return _repeat(lambda i: _hexdump_c(i << 20, b"A" * 16) + b"*\n", size)


def hex_star_under_cap(size: int) -> bytes:
    # Each ``*`` stands for just under 64 KiB: allowed one by one, a flood of them in total.
    return _repeat(lambda i: _hexdump_c(i * 0xFFF0, b"A" * 16) + b"*\n", size)


def hex_tokens_word(size: int) -> bytes:
    # One line of hex tokens ending in a word that is not hex (nor an ASCII column).
    return b"41 " * ((size - 3) // 3) + b"zz\n"


def hex_spaces_word(size: int) -> bytes:
    # The same with space bytes (0x20), which an ASCII column may trim.
    return b"20 " * ((size - 2) // 3) + b".\n"


def hex_mostly_blank(size: int) -> bytes:
    # Blank and whitespace-only lines with a short hex line now and then.
    return _repeat(lambda i: b"\n" * 40 + b"   \t  \n" * 20 + b"41 42 43 44\n", size)


def hex_blank_odd_digits(size: int) -> bytes:
    # Blank lines around lone odd hex digits: a block and an "odd number of hex digits" problem
    # each (10 MB took 24 s and 1.9 GB).
    return _repeat(lambda i: b"\n" * 50 + b"4\n", size)


def hex_duplicated_lines(size: int) -> bytes:
    # hexdump -Cv of a long run of one byte: the same line over and over with its offset.
    return _repeat(lambda i: _hexdump_c(i * 16, b"A" * 16), size)


def hex_stars_no_offsets(size: int) -> bytes:
    # '*' lines (od's and hexdump's "same as above") before lines whose first column is no
    # offset (od -x style 4-digit words): each line looked past every '*' for the block's head.
    half = size // 2
    return b"*\n" * (half // 2) + b"0000 4142 4344\n" * (half // 15)


def hex_repeated_offset(size: int) -> bytes:
    # The very same line again and again (offset 0 each time): one block per line.
    return _repeat(lambda i: _hexdump_c(0, b"OPTIONS sip:a@b "), size)


def hex_of_sip_text(size: int) -> bytes:
    # A sane large input for comparison: hexdump -C of a long SIP text.
    text = sip_back_to_back(size * 16 // 79)
    return b"".join(_hexdump_c(pos, text[pos : pos + 16]) for pos in range(0, len(text), 16))


# -- SIP text -------------------------------------------------------------------------------


def _sip_head(i: int, method: str = "OPTIONS") -> bytes:
    return (
        f"{method} sip:bob@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK{i:08x}\r\n"
        f"From: <sip:alice@example.com>;tag={i}\r\n"
        f"To: <sip:bob@example.com>\r\n"
        f"Call-ID: {i}@example.com\r\n"
        f"CSeq: 1 {method}\r\n"
    ).encode()


def sip_many_headers(size: int) -> bytes:
    # One message with tens of thousands of header lines.
    return _repeat(
        lambda i: b"X-Header-%d: value %d\r\n" % (i, i),
        size,
        _sip_head(0),
        b"Content-Length: 0\r\n\r\n",
    )


def sip_many_vias(size: int) -> bytes:
    # One message whose header lines are all Vias (every one parsed for the JSON view).
    return _repeat(
        lambda i: (
            b"Via: SIP/2.0/UDP 10.0.%d.%d:5060;branch=z9hG4bK%d\r\n" % (i >> 8 & 255, i & 255, i)
        ),
        size,
        _sip_head(0),
        b"Content-Length: 0\r\n\r\n",
    )


def sip_folded_header(size: int) -> bytes:
    # One header folded over and over (RFC 3261 §7.3.1 continuation lines).
    return _repeat(lambda i: b" folded\r\n", size, _sip_head(0) + b"Subject: x\r\n", b"\r\n")


def sip_back_to_back(size: int) -> bytes:
    # Sane messages, Content-Length framed, one after another.
    return _repeat(lambda i: _sip_head(i) + b"Content-Length: 0\r\n\r\n", size)


def sip_no_blank_lines(size: int) -> bytes:
    # Messages that follow one another without the empty line after their headers.
    return _repeat(lambda i: _sip_head(i), size)


def sip_blank_text(size: int) -> bytes:
    # Blank lines and spaces, then one message (a paste with a lot of white space).
    return b" \r\n" * (size // 3) + _sip_head(0) + b"Content-Length: 0\r\n\r\n"


def sip_log_noise(size: int) -> bytes:
    # A log: many lines that are not SIP, a message now and then.
    noise = b"2024-05-01 12:00:00.000 INFO worker: nothing to report here\n" * 30
    return _repeat(lambda i: noise + _sip_head(i) + b"Content-Length: 0\r\n\r\n", size)


# -- captures -------------------------------------------------------------------------------


def _pcap_header(linktype: int = 1) -> bytes:
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype)


def _pcap_record(frame: bytes, sec: int, usec: int = 0) -> bytes:
    return struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame


def _tcp_frame(seq: int, payload: bytes, sport: int = 5060, dport: int = 40000) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, 0, 5 << 4, 0x18, 65535, 0, 0)
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        total,
        0,
        0x4000,
        64,
        6,
        0,
        bytes([192, 0, 2, 1]),
        bytes([192, 0, 2, 2]),
    )
    ether = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
    return ether + ip + tcp + payload


def _tcp_capture(stream: bytes, segment: int = 1448) -> bytes:
    parts = [_pcap_header()]
    for pos in range(0, len(stream), segment):
        chunk = stream[pos : pos + segment]
        parts.append(_pcap_record(_tcp_frame(1000 + pos, chunk), 1_700_000_000 + pos // MB))
    return b"".join(parts)


def _stream_size(size: int, segment: int = 1448) -> int:
    # Capture bytes per stream byte: 16 (record) + 54 (Ethernet, IPv4, TCP) per segment.
    return max(segment, size * segment // (segment + 70))


def tcp_sip_no_separator(size: int) -> bytes:
    # SIP over TCP whose messages never end their headers with an empty line.
    return _tcp_capture(_repeat(lambda i: _sip_head(i, "INVITE"), _stream_size(size)))


def tcp_sip_header_flood(size: int) -> bytes:
    # One start line, then header lines for ever.
    stream = _repeat(lambda i: b"X-Filler: %08d\r\n" % i, _stream_size(size), _sip_head(0))
    return _tcp_capture(stream)


def tcp_crlf_keepalives(size: int) -> bytes:
    # RFC 5626 keep-alives only, then one message: megabytes of CRLF over TCP.
    stream = b"\r\n" * (_stream_size(size) // 2) + _sip_head(0) + b"Content-Length: 0\r\n\r\n"
    return _tcp_capture(_sip_head(1) + b"Content-Length: 0\r\n\r\n" + stream)


def tcp_sip_start_lines(size: int) -> bytes:
    # Nothing but status lines: each one starts a message whose headers never end.
    return _tcp_capture(_repeat(lambda i: b"SIP/2.0 200 OK\r\n", _stream_size(size)))


def _stun(attributes: list[tuple[int, bytes]], tid: int) -> bytes:
    body = b"".join(_stun_attribute(kind, value) for kind, value in attributes)
    return struct.pack("!HHI12s", 0x0101, len(body), 0x2112A442, tid.to_bytes(12, "big")) + body


def _stun_attribute(kind: int, value: bytes) -> bytes:
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * (-len(value) % 4)


def _stun_flood(size: int) -> bytes:
    # Messages as large as STUN allows (length up to 65532), each a long list of small
    # attributes of every kind; the last message only as large as the size leaves room for.
    rng = random.Random(7)
    kinds: list[tuple[int, Callable[[], bytes]]] = [
        (0x0020, lambda: struct.pack("!HH4s", 1, rng.randrange(65536), rng.randbytes(4))),
        (0x8022, lambda: b"siptool!"),  # SOFTWARE
        (0x8028, lambda: rng.randbytes(4)),  # FINGERPRINT, not the last attribute: bad
        (0x0009, lambda: struct.pack("!HBB", 0, 4, 20) + b"oops"),  # ERROR-CODE
        (0x000A, lambda: b"\x80\x28\x80\x22"),  # UNKNOWN-ATTRIBUTES
        (0x7F01, lambda: rng.randbytes(8)),  # an unknown comprehension-required type
    ]
    messages = []
    total = 0
    while total < size:
        room = min(65532, max(8, size - total - 20))
        body = bytearray()
        while True:
            kind, make = rng.choice(kinds)
            attribute = _stun_attribute(kind, make())
            if len(body) + len(attribute) > room:
                break
            body += attribute
        head = struct.pack("!HHI12s", 0x0101, len(body), 0x2112A442, rng.randbytes(12))
        messages.append(head + body)
        total += len(head) + len(body)
    return b"".join(messages)


def tcp_stun_many_attributes(size: int) -> bytes:
    return _tcp_capture(_stun_flood(_stream_size(size)), segment=1448)


def tcp_stun_fingerprints(size: int) -> bytes:
    # Messages made of FINGERPRINT attributes only (each one checked against a CRC-32?).
    stream = _stream_size(size)
    count = min(8190, max(1, -(-(stream - 20) // 8)))

    def message(i: int) -> bytes:
        return _stun([(0x8028, struct.pack("!I", i * 7919 + k)) for k in range(count)], i)

    return _tcp_capture(_repeat(message, stream))


def stun_raw_many_attributes(size: int) -> bytes:
    return _stun_flood(size)


def _fixture_blocks(name: str) -> list[bytes]:
    data = (FIXTURES / name).read_bytes()
    blocks, pos = [], 0
    while pos < len(data):
        length = struct.unpack_from("<I", data, pos + 4)[0]
        blocks.append(data[pos : pos + length])
        pos += length
    return blocks


def pcapng_damaged(size: int) -> bytes:
    # A real pcapng with, after its first packet, damage full of block types that do not parse
    # (each a type the resynchroniser looks for, with an impossible length).
    blocks = _fixture_blocks("sip-register-digest-auth.pcapng")
    head, tail = b"".join(blocks[:3]), b"".join(blocks[3:])
    damage = (
        struct.pack("<II", 6, 13) + struct.pack("<II", 1, 7) + struct.pack("<II", 0x0A0D0D0A, 5)
    )
    room = max(len(damage), size - len(head) - len(tail))
    return head + damage * (room // len(damage)) + tail


def pcapng_random_damage(size: int) -> bytes:
    blocks = _fixture_blocks("sip-register-digest-auth.pcapng")
    head, tail = b"".join(blocks[:3]), b"".join(blocks[3:])
    room = max(16, size - len(head) - len(tail))
    return head + random.Random(8).randbytes(room) + tail


def pcap_random_damage(size: int) -> bytes:
    # A real pcap whose second record header is overwritten by random bytes up to ``size``.
    data = (FIXTURES / "sip-call-sipp-uac-uas.pcap").read_bytes()
    first = 24 + 16 + struct.unpack_from("<I", data, 24 + 8)[0]
    room = max(16, size - len(data))
    return data[:first] + random.Random(9).randbytes(room) + data[first:]


def pcap_plausible_damage(size: int) -> bytes:
    # Damage made of record headers that look right one at a time but never two in a row.
    data = (FIXTURES / "sip-call-sipp-uac-uas.pcap").read_bytes()
    first = 24 + 16 + struct.unpack_from("<I", data, 24 + 8)[0]
    sec = struct.unpack_from("<I", data, 24)[0]
    fake = struct.pack("<IIII", sec, 1, 24, 24) + b"\xff" * 24
    room = max(len(fake), size - len(data))
    return data[:first] + b"\xff" * 16 + fake * (room // len(fake)) + data[first:]


@dataclass(frozen=True)
class Shape:
    name: str
    build: Callable[[int], bytes]
    suffix: str
    fmt: str = "auto"  # --format: hex shapes are decoded as hex whatever the sniffer thinks


SHAPES = [
    Shape("hex-star-jump", hex_star_jump, ".txt", "hex"),
    Shape("hex-star-under-cap", hex_star_under_cap, ".txt", "hex"),
    Shape("hex-tokens-word", hex_tokens_word, ".txt", "hex"),
    Shape("hex-spaces-word", hex_spaces_word, ".txt", "hex"),
    Shape("hex-mostly-blank", hex_mostly_blank, ".txt", "hex"),
    Shape("hex-blank-odd-digits", hex_blank_odd_digits, ".txt", "hex"),
    Shape("hex-duplicated-lines", hex_duplicated_lines, ".txt", "hex"),
    Shape("hex-stars-no-offsets", hex_stars_no_offsets, ".txt", "hex"),
    Shape("hex-repeated-offset", hex_repeated_offset, ".txt", "hex"),
    Shape("hex-of-sip-text", hex_of_sip_text, ".txt"),
    Shape("sip-many-headers", sip_many_headers, ".txt"),
    Shape("sip-many-vias", sip_many_vias, ".txt"),
    Shape("sip-folded-header", sip_folded_header, ".txt"),
    Shape("sip-back-to-back", sip_back_to_back, ".txt"),
    Shape("sip-no-blank-lines", sip_no_blank_lines, ".txt"),
    Shape("sip-blank-text", sip_blank_text, ".txt"),
    Shape("sip-log-noise", sip_log_noise, ".txt"),
    Shape("tcp-sip-no-separator", tcp_sip_no_separator, ".pcap"),
    Shape("tcp-sip-header-flood", tcp_sip_header_flood, ".pcap"),
    Shape("tcp-sip-start-lines", tcp_sip_start_lines, ".pcap"),
    Shape("tcp-crlf-keepalives", tcp_crlf_keepalives, ".pcap"),
    Shape("tcp-stun-many-attributes", tcp_stun_many_attributes, ".pcap"),
    Shape("tcp-stun-fingerprints", tcp_stun_fingerprints, ".pcap"),
    Shape("stun-raw-many-attributes", stun_raw_many_attributes, ".bin"),
    Shape("pcapng-damaged", pcapng_damaged, ".pcapng"),
    Shape("pcapng-random-damage", pcapng_random_damage, ".pcapng"),
    Shape("pcap-random-damage", pcap_random_damage, ".pcap"),
    Shape("pcap-plausible-damage", pcap_plausible_damage, ".pcap"),
]


# -- running --------------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    exit_code: int | None  # None: killed at the timeout
    stderr_lines: int
    traceback: bool
    peak_mb: float


def siptool_command() -> list[str]:
    # The installed console script, as a user types it (see benchmarks/startup.py).
    script = Path(sys.executable).with_name("siptool")
    return [str(script)] if script.exists() else [sys.executable, "-m", "siptool"]


def run_once(command: list[str], timeout: float, scratch: Path) -> Run:
    errors = scratch / "stderr"
    with open(os.devnull, "wb") as devnull, errors.open("wb") as err:
        start = time.perf_counter()
        pid = os.posix_spawn(
            command[0],
            command,
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, devnull.fileno(), 1),
                (os.POSIX_SPAWN_DUP2, err.fileno(), 2),
            ],
            setsid=True,
        )
        killed = False
        while True:
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                break
            if time.perf_counter() - start > timeout:
                os.killpg(pid, signal.SIGKILL)  # its own session: the run and nothing else
                killed = True
                _, status, usage = os.wait4(pid, 0)
                break
            time.sleep(0.005)
        seconds = time.perf_counter() - start
    text = errors.read_bytes()
    return Run(
        seconds,
        None if killed else os.waitstatus_to_exitcode(status),
        text.count(b"\n"),
        b"Traceback" in text,
        usage.ru_maxrss / 1024,
    )


def startup(base: list[str], view: list[str], scratch: Path, timeout: float) -> float:
    path = scratch / "one.txt"
    path.write_bytes(sip_back_to_back(1))
    return statistics.median(
        run_once([*base, "decode", *view, str(path)], timeout, scratch).seconds for _ in range(5)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--shapes", default="", help="comma-separated names (default: all)")
    parser.add_argument("--views", default="table,json,-v", help=f"of {', '.join(VIEWS)}")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--min-rate", type=float, default=1.0, help="MB/s")
    parser.add_argument("--runs", type=int, default=2, help="best of N below 1 MB")
    parser.add_argument(
        "--build", nargs=3, metavar=("SHAPE", "SIZE", "PATH"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.build:
        shape_name, size_text, out_path = args.build
        built = next(s for s in SHAPES if s.name == shape_name).build(int(size_text))
        Path(out_path).write_bytes(built)
        return 0
    sizes = [(label, SIZES[label]) for label in args.sizes.split(",")]
    wanted = set(filter(None, args.shapes.split(",")))
    shapes = [s for s in SHAPES if not wanted or s.name in wanted]
    views = args.views.split(",")
    base = siptool_command()
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        starts = {view: startup(base, VIEWS[view], scratch, args.timeout) for view in views}
        print("start-up: " + ", ".join(f"{v} {s:.3f} s" for v, s in starts.items()))
        print(
            f"{'shape':<26} {'size':>5} {'view':<5} {'wall s':>7} {'net s':>7} {'MB/s':>8}"
            f" {'peak MB':>8} {'exit':>4} {'stderr':>7}  result"
        )
        for shape in shapes:
            for label, size in sizes:
                path = scratch / f"{shape.name}-{label}{shape.suffix}"
                # Built by a child: a run's peak RSS counts from the RSS of the process that
                # started it (Linux keeps the high-water mark across fork and exec).
                build = [sys.executable, __file__, "--build", shape.name, str(size), str(path)]
                subprocess.run(build, check=True)
                length = path.stat().st_size
                for view in views:
                    command = [*base, "decode", "--format", shape.fmt, *VIEWS[view], str(path)]
                    runs = args.runs if size < MB else 1
                    run = min(
                        (run_once(command, args.timeout, scratch) for _ in range(runs)),
                        key=lambda r: r.seconds,
                    )
                    net = max(0.0, run.seconds - starts[view])
                    rate = f"{length / MB / net:8.1f}" if net >= 0.05 else f"{'-':>8}"
                    if run.exit_code is None:
                        verdict = f"FAIL: killed after {args.timeout:.0f} s"
                    elif run.traceback:
                        verdict = "FAIL: traceback"
                    elif run.exit_code not in (0, 1):
                        verdict = f"FAIL: exit {run.exit_code}"
                    elif net > length / MB / args.min_rate + SLACK:
                        verdict = f"FAIL: below {args.min_rate:g} MB/s"
                    else:
                        verdict = "ok"
                    failures += verdict != "ok"
                    shown = "-" if run.exit_code is None else str(run.exit_code)
                    print(
                        f"{shape.name:<26} {label:>5} {view:<5} {run.seconds:7.2f} {net:7.2f}"
                        f" {rate} {run.peak_mb:8.0f} {shown:>4} {run.stderr_lines:>7}  {verdict}",
                        flush=True,
                    )
                path.unlink()
    print(f"{failures} failing run(s)" if failures else "every run at or above the goal")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
