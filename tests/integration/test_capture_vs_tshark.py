"""The capture reader against tshark: every real capture in tests/fixtures/captures (same SIP
messages, same frames; new fixtures are picked up automatically), the synthetic captures the
unit tests build (link types, pcap and pcapng clocks, IP fragments, TCP streams), the raw
payloads and hex dumps tshark exports, and the builders themselves."""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path

import pytest

from siptool.capture import RawMessage, detect_format, iter_input
from siptool.capture.layers import endpoint
from siptool.capture.pcap import iter_pcap
from tests.support import captures as build
from tests.support.captures import problems, raw, write
from tests.support.paths import CAPTURE_FILES, CAPTURES
from tests.support.peers import require_tool
from tests.support.tshark_reference import tshark_fields
from tests.unit.test_capture_hexdump import run as read_hex
from tests.unit.test_capture_ipfrag import v4_fragments, v6_fragments
from tests.unit.test_capture_layers import LINKS, Wrap
from tests.unit.test_capture_pcap import CALL, FRAMES, REGISTER_NG, call_ids, multi_interface
from tests.unit.test_capture_tcp import INVITE, ISN_C, ISN_S, OK, OPTIONS, handshake, s2c, segments
from tests.unit.test_capture_textsplit import datas, lf, split

pytestmark = pytest.mark.peer


def call_id(message: bytes) -> str:
    for line in message.split(b"\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"call-id", b"i"):
            return value.strip().decode("utf-8", "replace")
    return ""


def header_call_id(message: RawMessage) -> str:
    return message.data.split(b"Call-ID: ")[1].split(b"\r\n")[0].decode()


def link_capture(
    tmp_path: Path, name: str, linktype: int, wrap: Wrap, packets: list[bytes]
) -> Path:
    """A pcap of ``linktype`` whose frames are ``packets`` in ``wrap``'s link layer."""
    frames = [wrap(packet) for packet in packets]
    return write(tmp_path, f"{name}.pcap", build.pcap_file(frames, linktype=linktype))


def udp_payloads(path: Path, display_filter: str) -> list[bytes]:
    """The UDP payloads of the packets tshark matches with ``display_filter``."""
    rows = tshark_fields(path, "udp.payload", display_filter=display_filter)
    return [bytes.fromhex(row[0].strip()) for row in rows]


# -- every real capture ------------------------------------------------------------------------


@pytest.mark.parametrize("path", CAPTURE_FILES, ids=[p.name for p in CAPTURE_FILES])
def test_sip_messages_and_frames_match_tshark(path: Path) -> None:
    items = list(iter_input(path.read_bytes()))
    assert problems(items) == []
    ours: dict[int, list[str]] = {}
    for item in raw(items):
        if item.protocol == "sip":
            assert item.frame is not None
            ours.setdefault(item.frame, []).append(call_id(item.data))
    rows = tshark_fields(
        path, "frame.number", "sip.Call-ID", display_filter="sip && !icmp && !icmpv6"
    )
    assert sorted((int(frame), ids) for frame, ids in rows) == sorted(
        (frame, ",".join(ids)) for frame, ids in ours.items()
    )


@pytest.mark.parametrize("path", CAPTURE_FILES, ids=[p.name for p in CAPTURE_FILES])
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


def test_real_pcap_records_have_tsharks_frame_numbers_and_times() -> None:
    rows = tshark_fields(CALL, "frame.number", "frame.time_epoch", display_filter="frame")
    records = list(iter_pcap(CALL.read_bytes()))
    assert all(isinstance(r, tuple) for r in records)
    assert [(str(r[0]), f"{r[1]:.6f}") for r in records if isinstance(r, tuple)] == [
        (n, f"{float(t):.6f}") for n, t in rows
    ]


def test_real_pcapng_matches_tshark() -> None:
    items = list(iter_input(REGISTER_NG.read_bytes()))
    assert problems(items) == []
    rows = tshark_fields(REGISTER_NG, "frame.number", "sip.Call-ID", "frame.time_epoch")
    assert [(str(m.frame), cid) for m, cid in zip(raw(items), call_ids(items), strict=True)] == [
        (n, c) for n, c, _ in rows
    ]
    assert [f"{m.time:.6f}" for m in raw(items)] == [f"{float(t):.6f}" for _, _, t in rows]


def test_real_tcp_fixture_matches_tshark() -> None:
    path = CAPTURES / "sip-options-tcp.pcap"
    items = list(iter_input(path.read_bytes()))
    assert problems(items) == []
    rows = tshark_fields(path, "frame.number", "sip.Call-ID", "tcp.srcport")
    messages = raw(items)
    assert [
        [str(m.frame), header_call_id(m), m.src.rsplit(":", 1)[1]] for m in messages if m.src
    ] == rows
    assert {m.transport for m in messages} == {"tcp"}
    assert messages[2].src == "[::1]:5081"


# -- the builders ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "linktype", "wrap"),
    [
        ("ethernet", 1, build.ether),
        ("vlan", 1, lambda p: build.ether(p, vlans=[100])),
        ("qinq", 1, lambda p: build.ether(p, vlans=[100, 200], tpid=0x88A8)),
        ("sll", 113, build.sll),
        ("sll2", 276, build.sll2),
        ("null", 0, build.null_link),
        ("loop", 108, build.loop_link),
        ("raw", 101, lambda p: p),
        ("raw-ipv4", 228, lambda p: p),
    ],
)
def test_synthetic_link_types_are_read_by_tshark_as_sip(
    tmp_path: Path, name: str, linktype: int, wrap: Wrap
) -> None:
    request, response = (m(call_id=f"{name}-1") for m in (build.sip_request, build.sip_response))
    path = link_capture(tmp_path, name, linktype, wrap, [build.udp4(request), build.udp4(response)])
    assert tshark_fields(path, "frame.number", "sip.Call-ID") == [
        ["1", f"{name}-1"],
        ["2", f"{name}-1"],
    ]


def test_synthetic_ipv4_fragments_are_reassembled_by_tshark(tmp_path: Path) -> None:
    message = build.sip_request("INVITE", "frag-1", build.sdp(40))
    frames = [
        build.ether(p)
        for p in build.fragment_ipv4(
            "192.0.2.1", "192.0.2.2", 17, build.udp(5060, 5060, message), ident=7, size=1480
        )
    ]
    assert len(frames) > 2
    path = write(tmp_path, "frag.pcap", build.pcap_file(frames))
    assert tshark_fields(path, "frame.number", "sip.Call-ID") == [[str(len(frames)), "frag-1"]]


# -- what the unit tests build -----------------------------------------------------------------


@pytest.mark.parametrize(("name", "linktype", "wrap"), LINKS, ids=[n for n, _, _ in LINKS])
def test_every_link_type_agrees_with_tshark(
    tmp_path: Path, name: str, linktype: int, wrap: Wrap
) -> None:
    request = build.udp4(build.sip_request(call_id=f"{name}-4"))
    response = build.udp6(build.sip_response(call_id=f"{name}-6"))
    path = link_capture(tmp_path, name, linktype, wrap, [request, response])
    rows = tshark_fields(path, "frame.number", "ip.src", "ipv6.src", "udp.srcport")
    got = raw(list(iter_input(path.read_bytes())))
    expected = [
        (int(n), endpoint(ipaddress.ip_address(v4 or v6).packed, int(port)))
        for n, v4, v6, port in rows
    ]
    assert [(m.frame, m.src) for m in got] == expected


def test_pcap_nanosecond_times_match_tshark(tmp_path: Path) -> None:
    path = write(tmp_path, "ns.pcap", build.pcap_file(FRAMES, nanos=True, step=0.000000007))
    rows = tshark_fields(path, "frame.number", "frame.time_epoch")
    assert [
        (str(m.frame), f"{m.time:.9f}"[:-3]) for m in raw(list(iter_input(path.read_bytes())))
    ] == [(n, t[:-3]) for n, t in rows]


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_multi_interface_agrees_with_tshark(tmp_path: Path, order: str) -> None:
    path = write(tmp_path, "multi.pcapng", multi_interface(order))
    rows = tshark_fields(path, "frame.number", "sip.Call-ID")
    items = list(iter_input(path.read_bytes()))
    assert [[str(m.frame), c] for m, c in zip(raw(items), call_ids(items), strict=True)] == rows


@pytest.mark.parametrize("version", [4, 6])
def test_fragment_reassembly_agrees_with_tshark(tmp_path: Path, version: int) -> None:
    frames = v4_fragments() if version == 4 else v6_fragments()
    frames = [
        build.ether(build.udp4(build.sip_response(call_id="first"))),
        *frames,
        build.ether(build.udp4(build.sip_response(call_id="last"))),
    ]
    path = write(tmp_path, f"frag{version}.pcap", build.pcap_file(frames))
    rows = tshark_fields(path, "frame.number", "sip.Call-ID")
    assert [
        [str(m.frame), cid]
        for m, cid in zip(
            raw(list(iter_input(path.read_bytes()))),
            ["first", "big-invite@example.com", "last"],
            strict=True,
        )
    ] == rows


def test_in_order_segmented_stream_agrees_with_tshark(tmp_path: Path) -> None:
    stream = INVITE + OPTIONS[0] + OPTIONS[1]
    frames = [*handshake(), *segments(stream, 700, ISN_C + 1), *segments(OK, 300, ISN_S + 1, s2c)]
    path = write(tmp_path, "tcp.pcap", build.pcap_file(frames))
    rows = tshark_fields(path, "frame.number", "sip.Call-ID")
    got: dict[int, list[str]] = {}
    for m in raw(list(iter_input(path.read_bytes()))):
        assert m.frame is not None
        got.setdefault(m.frame, []).append(header_call_id(m))
    assert [[str(frame), ",".join(ids)] for frame, ids in got.items()] == rows


# -- what tshark exports: payloads and hex dumps -----------------------------------------------


def test_raw_stun_from_real_captures_round_trips() -> None:
    """Every STUN payload tshark finds in the fixture captures, fed back as raw bytes."""
    payloads = []
    for path in sorted(CAPTURES.glob("*.pcap*")):
        payloads += udp_payloads(path, "stun && udp")
    assert payloads, "the fixtures hold STUN captures (stun-coturn.pcap, stun-stund-legacy.pcap)"
    for payload in payloads:
        assert detect_format(payload) == "stun"
        assert [m.data for m in iter_input(payload) if isinstance(m, RawMessage)] == [payload]
    joined = b"".join(payloads)
    assert [m.data for m in iter_input(joined) if isinstance(m, RawMessage)] == payloads


def test_sip_text_of_a_real_capture_splits_into_its_messages() -> None:
    """The UDP payloads of a real call, exported by tshark, pasted one after another."""
    payloads = udp_payloads(CAPTURES / "sip-call-sipp-uac-uas.pcap", "sip")
    assert len(payloads) == 6
    assert datas(split(b"\r\n".join(payloads))) == payloads
    as_log = b"\n".join(lf(p) for p in payloads)
    assert datas(split(as_log)) == [lf(p) for p in payloads]


@pytest.mark.parametrize(
    "name",
    ["sip-call-sipp-uac-uas.pcap", "sip-options-tcp.pcap", "sip-register-digest-auth.pcapng"],
)
def test_tshark_x_of_a_capture_gives_the_same_messages_as_the_capture(name: str) -> None:
    tshark = require_tool("tshark")
    path = CAPTURES / name
    text = subprocess.run([tshark, "-r", str(path), "-x"], capture_output=True, check=True).stdout
    from_hex = raw(read_hex(text))
    from_pcap = raw(list(iter_input(path.read_bytes())))
    assert [(m.frame, m.data, m.src, m.dst, m.transport) for m in from_hex] == [
        (m.frame, m.data, m.src, m.dst, m.transport) for m in from_pcap
    ]
