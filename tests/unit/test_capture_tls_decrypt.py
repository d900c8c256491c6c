"""TLS inside captures, decrypted with a key log (capture/tls_decrypt.py, capture/tls_keys.py).

The sessions are real: OpenSSL through Python's ``ssl`` as client and server over memory BIOs
(tests/support/tls_transcript.py), one per TLS 1.2 and TLS 1.3 suite decode decrypts, with the
key log OpenSSL wrote; their bytes are laid into TCP segments of a pcap.  What is checked: the
SIP inside comes out whole (across records and segments), marked tls or wss, and every fault
(keys missing, wrong, garbage lines, a record cut short, a handshake not captured) is named
while the rest is still read.  The same sessions through Kamailio, tcpdump and tshark are in
tests/integration/test_decode_tls.py."""

from __future__ import annotations

import base64
import os
from functools import cache
from pathlib import Path

import pytest

from siptool.capture import Problem, RawMessage, iter_input
from siptool.capture.extract import PacketExtractor
from siptool.capture.keylog import (
    CLIENT_RANDOM,
    TLS13_CLIENT_HANDSHAKE,
    parse_keylog,
    read_keylog,
)
from siptool.capture.model import TlsSession
from tests.support.captures import (
    ACK,
    SYN,
    ether,
    ipv4,
    pcap_file,
    problems,
    raw,
    sip_request,
    sip_response,
    tcp,
)
from tests.support.tls_transcript import Chunk, Transcript, record_session

CLIENT, SERVER = ("192.0.2.1", 40000), ("192.0.2.2", 5061)
OPTIONS = sip_request("OPTIONS", "tls-1@x", cseq=1)
OK = sip_response(call_id="tls-1@x", method="OPTIONS", cseq=1)
BIG = sip_request("MESSAGE", "tls-2@x", b"x" * 40000, cseq=2)  # three records, many segments
BIG_OK = sip_response(call_id="tls-2@x", method="MESSAGE", cseq=2)
CALL: list[Chunk] = [(True, OPTIONS), (False, OK), (True, BIG), (False, BIG_OK)]

# (id, TLS 1.3?, TLS 1.2 cipher string, TLS 1.3 suites, the IANA name decode reports)
SUITES = [
    ("tls12-aes128gcm", False, "ECDHE-ECDSA-AES128-GCM-SHA256", None,
     "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    ("tls12-aes256gcm", False, "ECDHE-ECDSA-AES256-GCM-SHA384", None,
     "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    ("tls12-chacha20", False, "ECDHE-ECDSA-CHACHA20-POLY1305", None,
     "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
    ("tls13-aes128gcm", True, None, "TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"),
    ("tls13-aes256gcm", True, None, "TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384"),
    ("tls13-chacha20", True, None, "TLS_CHACHA20_POLY1305_SHA256",
     "TLS_CHACHA20_POLY1305_SHA256"),
]  # fmt: skip


@cache
def session(name: str, exchanges: tuple[Chunk, ...] = tuple(CALL)) -> Transcript:
    _, tls13, ciphers, suites, _ = next(s for s in SUITES if s[0] == name)
    return record_session(list(exchanges), tls13=tls13, ciphers=ciphers, ciphersuites=suites)


def packets(chunks: list[Chunk], *, skip_first: int = 0, cut_last: int = 0) -> list[bytes]:
    """The TCP connection that carried ``chunks``: handshake, 1400-byte segments, no FIN (the
    capture ends).  ``skip_first`` leaves out the first chunks (a capture begun late),
    ``cut_last`` drops the last bytes of the last chunk (a capture that ended inside it)."""
    seq = {True: 1000, False: 5000}

    def frame(to_server: bool, data: bytes = b"", flags: int = 0x18) -> bytes:
        (src, sport), (dst, dport) = (CLIENT, SERVER) if to_server else (SERVER, CLIENT)
        segment = tcp(sport, dport, seq[to_server], data, flags=flags)
        seq[to_server] += len(data) + (1 if flags & SYN else 0)
        return ether(ipv4(src, dst, 6, segment))

    out = []
    if not skip_first:
        out += [frame(True, flags=SYN), frame(False, flags=SYN | ACK), frame(True, flags=ACK)]
    else:
        seq[True] += 1
        seq[False] += 1
    for index, (to_server, data) in enumerate(chunks):
        if cut_last and index == len(chunks) - 1:
            data = data[:-cut_last]
        if index < skip_first:
            seq[to_server] += len(data)
            continue
        out += [frame(to_server, data[i : i + 1400]) for i in range(0, len(data), 1400)]
    return out


def decode(
    frames: list[bytes], keylog: str | None
) -> tuple[list[RawMessage], list[Problem], list[TlsSession]]:
    log = parse_keylog(keylog, "keys.log") if keylog is not None else None
    extractor = PacketExtractor(keylog=log)
    items = list(iter_input(pcap_file(frames), extractor=extractor))
    return raw(items), problems(items), extractor.tls_sessions()


@pytest.mark.parametrize("suite", SUITES, ids=[s[0] for s in SUITES])
def test_each_suite_s_sip_comes_out_whole(suite: tuple[str, bool, str, str, str]) -> None:
    name, tls13, _, _, iana = suite
    t = session(name)
    assert t.version == ("TLSv1.3" if tls13 else "TLSv1.2")
    messages, found, sessions = decode(packets(t.chunks), t.keylog)
    assert found == []
    assert [m.data for m in messages] == [data for _, data in CALL]
    assert {m.transport for m in messages} == {"tls"}
    assert [m.src for m in messages] == ["192.0.2.1:40000", "192.0.2.2:5061"] * 2
    [s] = sessions
    assert s.to_dict() == {
        "client": "192.0.2.1:40000",
        "server": "192.0.2.2:5061",
        "sni": "localhost",
        "version": "TLS 1.3" if tls13 else "TLS 1.2",
        "cipher_suite": iana,
        "decrypted": True,
        "reason": None,
        "records": s.records,
    }
    assert s.records >= 6  # the 40 kB MESSAGE alone is three records


def test_a_message_completes_at_the_packet_of_its_last_record() -> None:
    t = session("tls13-aes128gcm")
    frames = packets(t.chunks)
    messages, _, _ = decode(frames, t.keylog)
    big = next(m for m in messages if m.data == BIG)
    # The MESSAGE is the client's second application chunk; its last segment is the last
    # client segment before the 200.
    last_client = max(
        i + 1
        for i, f in enumerate(frames[: big.frame])
        if f[14 + 12 : 14 + 16] == bytes([192, 0, 2, 1])
    )
    assert big.frame == last_client


def test_sip_over_websocket_inside_tls_is_wss() -> None:
    key = base64.b64encode(os.urandom(16)).decode()
    upgrade = (
        "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: sip\r\n\r\n"
    ).encode()
    accepted = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: x\r\nSec-WebSocket-Protocol: sip\r\n\r\n"
    )
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(OPTIONS))
    frame_c = bytes([0x81, 0x80 | 126]) + len(OPTIONS).to_bytes(2, "big") + mask + masked
    frame_s = bytes([0x81, 126]) + len(OK).to_bytes(2, "big") + OK
    exchanges = ((True, upgrade), (False, accepted), (True, frame_c), (False, frame_s))
    t = record_session(list(exchanges), ciphersuites="TLS_AES_128_GCM_SHA256")
    log = parse_keylog(t.keylog, "keys.log")
    extractor = PacketExtractor(keylog=log)
    items = list(iter_input(pcap_file(packets(t.chunks)), extractor=extractor))
    messages = raw(items)
    assert problems(items) == []
    assert [(m.data, m.transport) for m in messages] == [(OPTIONS, "wss"), (OK, "wss")]
    websockets = extractor.websockets()
    assert [(w.role, w.messages, w.to_dict()["transport"]) for w in websockets] == [
        ("client", 1, "wss"),
        ("server", 1, "wss"),
    ]


def test_tls13_with_only_the_application_secrets_still_decrypts() -> None:
    t = session("tls13-chacha20")
    lines = [line for line in t.keylog.splitlines() if "HANDSHAKE" not in line]
    messages, found, [s] = decode(packets(t.chunks), "\n".join(lines))
    assert found == []
    assert [m.data for m in messages] == [data for _, data in CALL]
    assert s.decrypted


@pytest.mark.parametrize("name", ["tls12-aes128gcm", "tls13-aes256gcm"])
def test_keys_missing_are_named_in_the_summary_without_a_problem(name: str) -> None:
    t = session(name)
    messages, found, [s] = decode(packets(t.chunks), "# no keys here\n")
    assert messages == [] and found == []
    assert not s.decrypted
    assert s.reason is not None and s.reason.startswith("no key for client random ")
    assert s.reason.endswith(" in keys.log")
    assert s.cipher_suite is not None and s.version is not None


def test_without_a_key_log_the_connection_is_still_summarised() -> None:
    t = session("tls12-chacha20")
    messages, found, [s] = decode(packets(t.chunks), None)
    assert messages == [] and found == []
    assert (s.version, s.cipher_suite, s.reason, s.sni) == (
        "TLS 1.2",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "no --tls-keylog",
        "localhost",
    )


@pytest.mark.parametrize("name", ["tls12-aes256gcm", "tls13-aes128gcm"])
def test_wrong_keys_fail_authentication_once_per_direction(name: str) -> None:
    t = session(name)
    wrong = []
    for line in t.keylog.splitlines():
        parts = line.split()
        if len(parts) == 3:
            parts[2] = ("00" if parts[2][:2] != "00" else "11") + parts[2][2:]
        wrong.append(" ".join(parts))
    messages, found, [s] = decode(packets(t.chunks), "\n".join(wrong))
    assert messages == []
    assert len(found) == 2
    assert all("fails authentication" in p.message for p in found)
    assert {p.message.split(": ")[0] for p in found} == {
        "TLS 192.0.2.1:40000 -> 192.0.2.2:5061",
        "TLS 192.0.2.2:5061 -> 192.0.2.1:40000",
    }
    assert not s.decrypted and s.reason is not None and "fails authentication" in s.reason


def test_garbage_key_log_lines_are_named_and_the_rest_used() -> None:
    t = session("tls13-aes256gcm")
    garbage = [
        "CLIENT_RANDOM",
        "CLIENT_RANDOM nothex " + "00" * 48,
        f"CLIENT_RANDOM {'00' * 31} {'00' * 48}",
        f"CLIENT_RANDOM {'00' * 32} {'00' * 47}",
        "\x00\x01binary",
        f"lower_case {'00' * 32} {'00' * 32}",
    ]
    text = "\n".join([*garbage, t.keylog])
    log = parse_keylog(text, "keys.log")
    assert [n for n, _ in log.problems] == [1, 2, 3, 4, 5, 6]
    assert [why for _, why in log.problems] == [
        "not LABEL CLIENT_RANDOM SECRET (1 fields)",
        "the client random is not hexadecimal",
        "the client random has 31 bytes, not 32",
        "the master secret has 47 bytes, not 48",
        "not LABEL CLIENT_RANDOM SECRET (1 fields)",
        "the label is not an upper-case word",
    ]
    messages, found, [s] = decode(packets(t.chunks), text)
    assert [m.data for m in messages] == [data for _, data in CALL]
    assert found == [] and s.decrypted


def test_a_record_cut_short_at_the_end_is_named_and_the_rest_decoded() -> None:
    t = session("tls12-aes128gcm", ((True, OPTIONS), (False, OK), (True, BIG)))
    # The capture ends 500 bytes before the end of the client's last application chunk
    # (the close_notify chunks after it are left out).
    chunks = t.chunks
    last = max(i for i, (d, data) in enumerate(chunks) if d and len(data) > 30000)
    messages, found, [s] = decode(packets(chunks[: last + 1], cut_last=500), t.keylog)
    assert [m.data for m in messages] == [OPTIONS, OK]
    # The record, then the SIP message it was part of (its first 32 KiB were decrypted).
    record, message = found
    assert record.message.startswith("TLS 192.0.2.1:40000 -> 192.0.2.2:5061: a TLS record cut")
    assert record.message.endswith(" bytes captured")
    assert message.message == (
        "SIP over TLS 192.0.2.1:40000 -> 192.0.2.2:5061: incomplete message:"
        f" 32768 of {len(BIG)} bytes"
    )
    assert s.decrypted


def test_a_capture_begun_after_the_handshake_names_it() -> None:
    t = session("tls13-aes128gcm")
    first_data = next(i for i, (_, data) in enumerate(t.chunks) if data[:1] == b"\x17")
    # From the first chunk that begins with an application_data record on, both directions.
    messages, found, [s] = decode(packets(t.chunks, skip_first=first_data + 2), t.keylog)
    assert messages == [] and found == []
    assert s.reason == "the handshake was not captured"


def test_keylog_labels_are_the_ones_openssl_writes() -> None:
    t12, t13 = session("tls12-chacha20"), session("tls13-chacha20")
    assert {line.split()[0] for line in t12.keylog.splitlines() if line[:1] != "#"} == {
        CLIENT_RANDOM
    }
    assert TLS13_CLIENT_HANDSHAKE in t13.keylog


@pytest.mark.parametrize("name", ["tls12-chacha20", "tls13-aes128gcm"])
def test_a_followed_key_log_gives_the_keys_written_after_the_handshake_began(
    name: str, tmp_path: Path
) -> None:
    """A live capture: the client writes the secrets once the handshake is under way, after
    decode read the key log; the records wait for them and are then decrypted in order."""
    t = session(name)
    path = tmp_path / "keys.log"
    path.write_text("# SSL/TLS secrets log file\n")
    log = read_keylog(str(path), "keys.log", follow=True)
    extractor = PacketExtractor(keylog=log)
    frames = packets(t.chunks)
    for number, frame in enumerate(frames, 1):
        if number == 7:  # after the ServerHello: the keys arrive, the last line unfinished
            with path.open("a") as f:
                f.write(t.keylog[:-10])
        if number == 9:
            with path.open("a") as f:
                f.write(t.keylog[-10:])
        extractor.packet(number, None, 1, 0, len(frame), len(frame), 0, frame)
    extractor.finish()
    messages = raw(extractor.out)
    assert problems(extractor.out) == []
    # A record held for its key keeps the packet it came in (it may be handed on later than
    # the other direction's answer, which had its key).
    by_frame = sorted(messages, key=lambda m: m.frame or 0)
    assert [m.data for m in by_frame] == [data for _, data in CALL]
    plain = raw(decode(frames, t.keylog)[0])
    assert [(m.frame, m.data) for m in by_frame] == [(m.frame, m.data) for m in plain]
    [s] = extractor.tls_sessions()
    assert s.decrypted and s.reason is None
    assert log.problems == []


def test_a_followed_key_log_that_never_gets_the_keys_names_them_missing(tmp_path: Path) -> None:
    t = session("tls13-aes256gcm")
    path = tmp_path / "keys.log"
    path.write_text("")
    extractor = PacketExtractor(keylog=read_keylog(str(path), "keys.log", follow=True))
    for number, frame in enumerate(packets(t.chunks), 1):
        extractor.packet(number, None, 1, 0, len(frame), len(frame), 0, frame)
    extractor.finish()
    assert raw(extractor.out) == [] and problems(extractor.out) == []
    [s] = extractor.tls_sessions()
    assert s.reason is not None and s.reason.startswith("no key for client random")
