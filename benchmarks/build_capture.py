"""Build a large pcap of real SIP messages by repeating the packets of the fixture captures.

Each copy of a fixture's packets gets its own Call-ID suffix and shifted timestamps, so the
result looks like many calls rather than one call replayed; the bytes otherwise stay exactly as
SIPp and Kamailio sent them.  Only UDP-carried SIP from classic pcap fixtures with Ethernet
framing is used, so every packet holds exactly one message.

Usage: python benchmarks/build_capture.py OUT.pcap [--messages N]
"""

from __future__ import annotations

import argparse
import struct
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "captures"
SOURCES = ["sip-call-sipp-uac-uas.pcap"]


def read_pcap(path: Path) -> tuple[bytes, list[tuple[int, int, bytes]]]:
    data = path.read_bytes()
    magic = struct.unpack_from("<I", data, 0)[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    header = data[:24]
    records = []
    offset = 24
    while offset + 16 <= len(data):
        sec, usec, incl, _orig = struct.unpack_from(endian + "IIII", data, offset)
        offset += 16
        records.append((sec, usec, data[offset : offset + incl]))
        offset += incl
    return header, records


def fix_udp_lengths(frame: bytes) -> bytes:
    """Recompute IPv4 total length and UDP length after the payload changed size.

    The UDP checksum is zeroed (legal for UDP over IPv4, RFC 768) and the IPv4 header checksum
    recomputed, so tshark does not flag the rewritten packets.
    """
    ip = 14
    ihl = (frame[ip] & 0x0F) * 4
    total = len(frame) - ip
    udp_len = total - ihl
    out = bytearray(frame)
    struct.pack_into("!H", out, ip + 2, total)
    struct.pack_into("!H", out, ip + 10, 0)
    csum = 0
    for i in range(0, ihl, 2):
        csum += (out[ip + i] << 8) + out[ip + i + 1]
    while csum >> 16:
        csum = (csum & 0xFFFF) + (csum >> 16)
    struct.pack_into("!H", out, ip + 10, ~csum & 0xFFFF)
    struct.pack_into("!HH", out, ip + ihl + 4, udp_len, 0)
    return bytes(out)


def build(out: Path, messages: int) -> int:
    header = b""
    templates: list[tuple[int, int, bytes]] = []
    for name in SOURCES:
        header, records = read_pcap(FIXTURES / name)
        templates.extend(records)
    first_sec = templates[0][0]
    written = 0
    with out.open("wb") as fh:
        fh.write(header)
        copy = 0
        while written < messages:
            suffix = b"-%d" % copy
            for sec, usec, frame in templates:
                if written >= messages:
                    break
                head, sep, rest = frame.partition(b"Call-ID: ")
                if sep:
                    call_id, crlf, tail = rest.partition(b"\r\n")
                    frame = fix_udp_lengths(head + sep + call_id + suffix + crlf + tail)
                new_sec = sec - first_sec + 1_700_000_000 + copy
                fh.write(struct.pack("<IIII", new_sec, usec, len(frame), len(frame)))
                fh.write(frame)
                written += 1
            copy += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    count = build(args.out, args.messages)
    print(f"wrote {count} SIP messages to {args.out}")


if __name__ == "__main__":
    main()
