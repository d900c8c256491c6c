"""stun/turn.py and the TURN additions to the STUN codec and SERVER parser: requests built,
answers read (a missing XOR-RELAYED-ADDRESS, a Data indication without DATA, a ChannelData
with a lying length), the probe payloads and the RFC 3550 jitter; the stream framing of
net/turn_client.py fed by hand (no socket)."""

from __future__ import annotations

import pytest

from siptool.errors import ParseError
from siptool.net.turn_client import RelayedFrame, TurnStreamEndpoint, _TurnStreamProtocol
from siptool.stun.message import (
    ADDRESS_ERROR_CODE,
    ALLOCATE,
    DATA,
    DATA_METHOD,
    LIFETIME,
    XOR_MAPPED_ADDRESS,
    XOR_PEER_ADDRESS,
    XOR_RELAYED_ADDRESS,
    StunClass,
    encode_message,
    encode_xor_address,
    new_transaction_id,
    parse_stun,
)
from siptool.stun.servers import parse_server
from siptool.stun.turn import (
    PROBE_HEADER,
    TURN_ERRORS,
    Probe,
    RelayTally,
    allocate_attributes,
    channel_bind_attributes,
    encode_channel_data,
    error_for,
    parse_channel_data,
    permission_attributes,
    probe_payload,
    read_allocation,
    read_data_indication,
    read_probe,
    restamp,
    stream_channel_data,
)

TID = bytes(range(12))


def message(msg_class: StunClass, method: int, attributes: list[tuple[int, bytes]]) -> bytes:
    return encode_message(msg_class, method, TID, attributes)


# ------------------------------------------------------------------------- the codec table


def test_turn_attributes_decode() -> None:
    wire = message(
        StunClass.REQUEST,
        ALLOCATE,
        [
            *allocate_attributes(lifetime=300, ipv6=True),
            (0x8004, bytes.fromhex("00000603 00000000")),  # ICMP type 3 code 3
            (0x002A, (7).to_bytes(4, "big")),
        ],
    )
    parsed = parse_stun(wire)
    values = {a.name: a.value for a in parsed.attributes}
    assert values["REQUESTED-TRANSPORT"] == 17
    assert values["LIFETIME"] == 300
    assert values["REQUESTED-ADDRESS-FAMILY"] == "IPv6"
    assert values["ICMP"] == {"type": 3, "code": 3, "data": 0}
    assert values["CONNECTION-ID"] == 7


def test_dual_asks_for_an_additional_family_and_never_both() -> None:
    names = [t for t, _ in allocate_attributes(dual=True)]
    assert 0x8000 in names and 0x8032 in names and 0x0017 not in names  # RFC 8656, coturn 4.6
    names = [t for t, _ in allocate_attributes(ipv6=True, dual=True)]
    assert 0x0017 in names and 0x8000 not in names
    assert allocate_attributes(tcp=True)[0][1][0] == 6


def test_permission_is_by_ip_and_channel_numbers_are_checked() -> None:
    tid = new_transaction_id()
    attrs = permission_attributes(["192.0.2.1", "2001:db8::9"], tid)
    parsed = parse_stun(encode_message(StunClass.REQUEST, 0x008, tid, attrs))
    peers = [a.value for a in parsed.attributes if a.type == XOR_PEER_ADDRESS]
    assert peers == ["192.0.2.1:0", "[2001:db8::9]:0"]
    attrs = channel_bind_attributes(0x4000, "[2001:db8::1]:5000", tid)
    parsed = parse_stun(encode_message(StunClass.REQUEST, 0x009, tid, attrs))
    assert parsed.attribute("CHANNEL-NUMBER").value == 0x4000  # type: ignore[union-attr]
    assert parsed.attribute(XOR_PEER_ADDRESS).value == "[2001:db8::1]:5000"  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        channel_bind_attributes(0x3FFF, "192.0.2.1:1", tid)


# ------------------------------------------------------------------------------- answers


def allocate_success(*extra: tuple[int, bytes]) -> bytes:
    return message(
        StunClass.SUCCESS_RESPONSE,
        ALLOCATE,
        [
            *extra,
            (XOR_MAPPED_ADDRESS, encode_xor_address("198.51.100.7", 40000, TID)),
            (LIFETIME, (600).to_bytes(4, "big")),
        ],
    )


def test_allocation_read_with_two_relayed_addresses_and_an_address_error() -> None:
    wire = allocate_success(
        (XOR_RELAYED_ADDRESS, encode_xor_address("192.0.2.50", 49152, TID)),
        (XOR_RELAYED_ADDRESS, encode_xor_address("2001:db8::50", 49153, TID)),
        (ADDRESS_ERROR_CODE, bytes((2, 0, 4, 40)) + b"Address Family not Supported"),
    )
    allocation = read_allocation(parse_stun(wire))
    assert allocation.relayed == ["192.0.2.50:49152", "[2001:db8::50]:49153"]
    assert allocation.mapped == "198.51.100.7:40000" and allocation.lifetime == 600
    assert allocation.address_errors == ["IPv6: 440 Address Family not Supported"]


def test_allocation_without_relayed_address_is_named() -> None:
    with pytest.raises(ParseError, match="no XOR-RELAYED-ADDRESS"):
        read_allocation(parse_stun(allocate_success()))


def test_data_indication_read_and_one_without_data_refused() -> None:
    peer = (XOR_PEER_ADDRESS, encode_xor_address("192.0.2.9", 7000, TID))
    wire = message(StunClass.INDICATION, DATA_METHOD, [peer, (DATA, b"hello")])
    assert read_data_indication(parse_stun(wire)) == ("192.0.2.9:7000", b"hello")
    with pytest.raises(ParseError, match="without XOR-PEER-ADDRESS or DATA"):
        read_data_indication(parse_stun(message(StunClass.INDICATION, DATA_METHOD, [peer])))


@pytest.mark.parametrize("status", sorted(TURN_ERRORS))
def test_every_turn_error_is_named(status: int) -> None:
    code, text = error_for(status, "Reason", "Allocate")
    assert code == TURN_ERRORS[status][0]
    assert text.startswith(f"Allocate: {status} Reason: ")


def test_error_codes_of_the_contract() -> None:
    wanted = {
        403: "forbidden",
        437: "allocation_mismatch",
        440: "address_family",
        441: "wrong_credentials",
        442: "unsupported_transport",
        486: "quota",
        508: "capacity",
    }
    assert {status: TURN_ERRORS[status][0] for status in wanted} == wanted
    assert error_for(None, "", "Refresh")[0] == "error_response"
    assert error_for(599, "Odd", "Refresh") == ("error_response", "Refresh: 599 Odd")


# ---------------------------------------------------------------------------- ChannelData


def test_channel_data_framing_rfc8656_section_12_4() -> None:
    assert encode_channel_data(0x4001, b"abcde") == bytes.fromhex("40010005") + b"abcde"
    padded = encode_channel_data(0x4001, b"abcde", stream=True)
    assert padded == bytes.fromhex("40010005") + b"abcde\0\0\0"
    assert parse_channel_data(padded) == (0x4001, b"abcde")
    assert stream_channel_data(padded[:7]) is None
    assert stream_channel_data(padded + b"\x40") == 12


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (bytes.fromhex("4000"), "shorter than its header"),
        (bytes.fromhex("400001f4") + b"x" * 100, "length 500 is longer"),
        (bytes.fromhex("50000001") + b"x", "outside 0x4000-0x4FFF"),
    ],
)
def test_bad_channel_data_is_a_parse_error(data: bytes, why: str) -> None:
    with pytest.raises(ParseError, match=why):
        parse_channel_data(data)


def test_stream_protocol_frames_stun_and_channel_data_in_any_pieces() -> None:
    server = ("192.0.2.1", 3478)
    endpoint = TurnStreamEndpoint("tcp", server)
    endpoint.turn_server = server
    frames: list[RelayedFrame] = []
    endpoint.on_relayed = frames.append
    protocol = _TurnStreamProtocol(endpoint)
    peer = (XOR_PEER_ADDRESS, encode_xor_address("192.0.2.9", 7000, TID))
    stream = (
        encode_channel_data(0x4000, b"one", stream=True)
        + message(StunClass.INDICATION, DATA_METHOD, [peer, (DATA, b"two")])
        + encode_channel_data(0x4000, b"three!", stream=True)
    )
    for i in range(0, len(stream), 5):
        protocol.data_received(stream[i : i + 5])
    assert [(f.data, f.channel, f.peer) for f in frames] == [
        (b"one", 0x4000, None),
        (b"two", None, "192.0.2.9:7000"),
        (b"three!", 0x4000, None),
    ]
    assert not protocol.buffer


# ----------------------------------------------------------------------------- the probes


def test_probe_payload_round_trip_and_restamp() -> None:
    data = probe_payload(2, 41, 123_456_789, 160)
    assert len(data) == 160
    assert read_probe(data) == Probe(2, 41, 123_456_789)
    assert read_probe(restamp(data, 5)) == Probe(2, 41, 5)
    assert len(probe_payload(1, 0, 0, 1)) == PROBE_HEADER
    assert read_probe(b"\x40" + data[1:]) is None
    assert not 0x00 <= data[0] < 0x80  # neither STUN nor ChannelData (RFC 7983)


def test_tally_rtt_loss_duplicates_and_rfc3550_jitter() -> None:
    tally = RelayTally(4, own_peer=True)
    for seq in range(4):
        tally.sent(seq, seq * 20_000_000)
    # transits back 10, 12, 10 ms: |D| = 2, 2 -> J = 2/16, then + (2 - 2/16)/16
    for seq, transit in ((0, 10), (1, 12), (2, 10)):
        sent = seq * 20_000_000
        probe = Probe(1, seq, sent)
        tally.at_peer(probe, sent + 4_000_000)
        assert tally.echoed(probe, sent + transit * 1_000_000)
    assert not tally.echoed(Probe(1, 0, 0), 99)  # duplicate
    assert not tally.echoed(Probe(1, 9, 0), 99)  # never sent
    assert not tally.complete
    figures = tally.figures()
    assert (figures.sent, figures.received, figures.peer_received) == (4, 3, 3)
    assert figures.loss_pct == 25.0 and figures.duplicates == 1
    assert (figures.rtt_min_ms, figures.rtt_max_ms) == (10.0, 12.0)
    j = 2 / 16
    j += (2 - j) / 16
    assert figures.jitter_ms == round(j, 3)
    assert figures.jitter_to_peer_ms == 0.0
    assert set(figures.to_dict()) >= {
        "sent", "received", "loss_pct", "rtt_min_ms", "rtt_avg_ms", "rtt_max_ms", "jitter_ms"
    }  # fmt: skip


def test_tally_without_own_peer_does_not_guess_what_reached_it() -> None:
    tally = RelayTally(1, own_peer=False)
    tally.sent(0, 0)
    figures = tally.figures()
    assert figures.peer_received is None and figures.rtt_avg_ms is None
    assert figures.loss_pct == 100.0


# ------------------------------------------------------------------------------ SERVER


@pytest.mark.parametrize(
    ("text", "flag", "wanted"),
    [
        ("turn:turn.example.org", None, ("turn.example.org", 3478, "udp")),
        ("turn:192.0.2.1:3479?transport=tcp", None, ("192.0.2.1", 3479, "tcp")),
        ("turn:[2001:db8::1]?transport=udp", "tcp", ("2001:db8::1", 3478, "udp")),
        ("turns:turn.example.org", None, ("turn.example.org", 5349, "tls")),
        ("turns:turn.example.org:443?transport=tcp", None, ("turn.example.org", 443, "tls")),
        ("turn.example.org", "tls", ("turn.example.org", 5349, "tls")),
        ("192.0.2.1:3478", "tcp", ("192.0.2.1", 3478, "tcp")),
    ],
)
def test_turn_uris_rfc7065(text: str, flag: str | None, wanted: tuple[str, int, str]) -> None:
    server = parse_server(text, flag, turn=True)
    assert (server.host, server.port, server.transport) == wanted


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("turns:h?transport=udp", "DTLS"),
        ("stun:h", "turn: or turns:"),
        ("turn://h", "no '//'"),
        ("turn:h?foo=bar", "unsupported URI parameter"),
    ],
)
def test_bad_turn_servers_are_named(text: str, why: str) -> None:
    with pytest.raises(ParseError, match=why):
        parse_server(text, turn=True)


def test_stun_probe_refuses_a_turn_uri_by_name() -> None:
    with pytest.raises(ParseError, match="stun: or stuns:"):
        parse_server("turn:h")
