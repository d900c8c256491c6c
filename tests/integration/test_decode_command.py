"""`siptool decode` end to end: real captures in, the contract's output and exit codes out;
damaged fixtures through every renderer (the in-process half is
tests/unit/test_decode_robustness.py).

Runs siptool in a subprocess, as a user's script would, so the tests see exactly what stdout,
stderr and the exit code carry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.captures import ether, pcap_file, udp4
from tests.support.paths import CAPTURES, FIXTURES
from tests.support.run import ENVELOPE, STRICT_UTF8, Run, siptool
from tests.unit.test_decode_robustness import SEEDS

CALL = CAPTURES / "sip-call-sipp-uac-uas.pcap"
REGISTER = CAPTURES / "sip-register-digest-auth.pcapng"

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 192.168.1.20\r\ns=-\r\nc=IN IP4 192.168.1.20\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0\r\n"
)
INVITE = (
    b"INVITE sip:bob@198.51.100.7 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK-1;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:alice@example.com>;tag=a1\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: call-one\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:alice@192.168.1.20:5060>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: %d\r\n"
    b"\r\n" % len(SDP)
) + SDP


def decode(*args: str, stdin: bytes | None = None) -> Run:
    return siptool("decode", *args, input=stdin, timeout=120)


def jsonl(stdout: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    lines = [json.loads(line) for line in stdout.splitlines()]
    return lines[:-1], lines[-1]


def test_sipp_call_decodes_cleanly_to_the_contract_json() -> None:
    result = decode("--json", str(CALL))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    for key in ENVELOPE:
        assert key in doc
    assert doc["command"] == "decode" and doc["ok"] is True and doc["errors"] == []
    assert doc["summary"] == {
        "sip": 6,
        "stun": 0,
        "invalid": 0,
        "filtered_out": 0,
        "not_decoded": [],
        "websocket": [],
        "tls": [],
    }
    kinds = [(m["method"], m["status"]) for m in doc["messages"]]
    assert kinds == [
        ("INVITE", None),
        (None, 180),
        (None, 200),
        ("ACK", None),
        ("BYE", None),
        (None, 200),
    ]
    invite = doc["messages"][0]
    assert invite["src"] == "127.0.0.1:5080" and invite["dst"] == "127.0.0.1:5070"
    assert invite["transport"] == "udp" and invite["protocol"] == "sip"
    assert invite["cseq"] == {"seq": 1, "method": "INVITE"}
    assert invite["via"][0]["branch"].startswith("z9hG4bK")
    assert invite["sdp"]["media"][0]["port"] == 6004
    assert invite["headers"][0][0] == "Via"
    assert invite["stun"] is None and invite["lint"] is None


def test_jsonl_streams_one_object_per_message_then_the_summary() -> None:
    result = decode("--jsonl", str(REGISTER))
    assert result.returncode == 0, result.stderr
    messages, summary = jsonl(result.stdout)
    assert [m["index"] for m in messages] == list(range(1, len(messages) + 1))
    assert summary["summary"]["sip"] == len(messages) == 4
    assert summary["ok"] is True and summary["command"] == "decode"
    assert messages[1]["status"] == 401


def test_method_filter_keeps_requests_and_their_responses() -> None:
    result = decode("--jsonl", "--method", "bye", str(CALL))
    messages, summary = jsonl(result.stdout)
    assert [(m["method"], m["status"]) for m in messages] == [("BYE", None), (None, 200)]
    assert summary["summary"]["filtered_out"] == 4


def test_call_id_filter() -> None:
    result = decode("--jsonl", "--call-id", "no-such-call", str(CALL))
    messages, summary = jsonl(result.stdout)
    assert messages == [] and summary["summary"]["filtered_out"] == 6


def test_table_shows_route_and_summary() -> None:
    result = decode("--no-color", str(CALL))
    assert result.returncode == 0
    assert "127.0.0.1:5080 -> 127.0.0.1:5070" in result.stdout
    assert "INVITE sip:service@127.0.0.1:5070" in result.stdout
    assert "180 Ringing" in result.stdout


def test_verbose_prints_every_header_and_the_sdp() -> None:
    result = decode("-v", "--no-color", str(CALL))
    assert "Call-ID: 1-13406@127.0.0.1" in result.stdout
    assert "m=audio 6004 RTP/AVP 0" in result.stdout


def test_flow_draws_a_ladder_with_relative_times() -> None:
    result = decode("--flow", str(CALL))
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Call-ID: 1-13406@127.0.0.1   6 messages")
    invite = next(line for line in lines if "INVITE" in line)
    assert invite.split()[0] == "0.000" and "-->|" in invite.replace(">", "-->", 1)
    ringing = next(line for line in lines if "180 Ringing" in line)
    assert "|<-" in ringing
    bye = next(line for line in lines if "BYE" in line and "200" not in line)
    assert 400.0 < float(bye.split()[0]) < 600.0


def test_lint_flags_nat_and_rfc3261_faults_from_text_on_stdin() -> None:
    bad = INVITE.replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE").replace(b"Max-Forwards: 70\r\n", b"")
    result = decode("--json", "--lint", "-", stdin=bad)
    doc = json.loads(result.stdout)
    codes = {w["code"] for w in doc["messages"][0]["lint"]}
    assert {"cseq-method", "max-forwards-missing"} <= codes
    # Text input carries no addresses: the NAT check has no public peer to compare with.
    assert "private-contact" not in codes


def test_lint_flags_private_contact_and_sdp_toward_a_public_peer(tmp_path: Path) -> None:
    frame = ether(udp4(INVITE, "192.168.1.20", "198.51.100.7"))
    capture = tmp_path / "nat.pcap"
    capture.write_bytes(pcap_file([frame]))
    result = decode("--jsonl", "--lint", str(capture))
    messages, _ = jsonl(result.stdout)
    codes = [w["code"] for w in messages[0]["lint"]]
    assert codes == ["private-contact", "private-sdp"]


def test_truncated_capture_reports_the_packet_and_keeps_what_came_before(tmp_path: Path) -> None:
    data = CALL.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 100])
    result = decode("--jsonl", str(cut))
    assert result.returncode == 1
    messages, summary = jsonl(result.stdout)
    assert len(messages) == 5 and summary["summary"]["invalid"] == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"siptool decode: {cut}: packet 6")
    assert summary["errors"][0]["code"] == "parse_error"


def test_garbage_input_is_one_line_and_exit_1(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes((i * 37 + 11) % 251 for i in range(4000)))
    result = decode(str(junk))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "unrecognised input" in result.stderr


def test_wrong_content_length_is_reported_and_the_next_message_still_decoded() -> None:
    too_long = INVITE.replace(b"Content-Length: %d" % len(SDP), b"Content-Length: 900")
    options = (
        b"OPTIONS sip:x@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK2\r\n"
        b"Max-Forwards: 70\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:x@example.com>\r\n"
        b"Call-ID: two\r\nCSeq: 2 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    result = decode("--jsonl", "-", stdin=too_long + options)
    messages, summary = jsonl(result.stdout)
    assert result.returncode == 1 and summary["summary"]["invalid"] == 1
    assert result.stderr.startswith("siptool decode: <stdin>: byte")
    assert "Content-Length 900 but only" in result.stderr
    assert any(m["call_id"] == "two" for m in messages)


def test_half_message_is_reported_with_what_is_missing() -> None:
    result = decode("-", stdin=INVITE[:120])
    assert result.returncode == 1
    assert "incomplete INVITE request" in result.stderr
    assert "Call-ID, CSeq are missing" in result.stderr


def test_broken_fixtures_each_give_one_line_and_exit_1() -> None:
    for path in sorted((FIXTURES / "broken").iterdir()):
        result = decode(str(path))
        assert result.returncode == 1, path
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"siptool decode: {path}: "), lines


def test_unreadable_file_is_exit_3_with_json_errors(tmp_path: Path) -> None:
    result = decode("--json", str(tmp_path / "missing.pcap"))
    assert result.returncode == 3
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == 3 and doc["ok"] is False
    assert doc["errors"][0]["code"] == "input_error"
    assert "missing.pcap" in result.stderr


@pytest.mark.parametrize("flag", ["--json", "--jsonl"])
def test_json_and_jsonl_together_is_a_usage_error(flag: str) -> None:
    result = decode("--json", "--jsonl", str(CALL))
    assert result.returncode == 2


def test_malformed_from_is_invalid_but_the_message_is_still_shown() -> None:
    bad = INVITE.replace(b"From: <sip:alice@example.com>;tag=a1", b"From: <<sip:alice")
    result = decode("--jsonl", "-", stdin=bad)
    messages, summary = jsonl(result.stdout)
    assert result.returncode == 1 and summary["summary"]["invalid"] == 1
    assert messages[0]["method"] == "INVITE" and messages[0]["from"] is None
    assert "invalid INVITE request: From: unterminated '<'" in result.stderr


# The same picks as before the out-of-range timestamp fixtures came (they have their own
# whole-CLI test in test_capture_timestamps.py).
CLI_SEEDS = [path for path in SEEDS if not path.name.startswith("wrong-time-")]


@pytest.mark.parametrize("seed", CLI_SEEDS[:6] + CLI_SEEDS[-5:], ids=lambda p: p.name)
def test_cli_on_damaged_fixtures_exits_0_or_1_without_a_traceback(
    tmp_path: Path, seed: Path
) -> None:
    data = bytearray(seed.read_bytes())
    data[len(data) // 3] ^= 0x20
    del data[len(data) * 2 // 3 :][:50]
    path = tmp_path / seed.name
    path.write_bytes(bytes(data) + b"\xff\xfe")
    for flags in (["--jsonl", "--flow"], ["--json", "--lint"], ["--flow", "-v", "--lint"]):
        result = siptool("decode", *flags, str(path), env=STRICT_UTF8, traceback_ok=True)
        assert "Traceback" not in result.stderr and result.returncode in (0, 1), result.stderr
        if "--jsonl" in flags:
            assert json.loads(result.stdout.splitlines()[-1])["exit_code"] == result.returncode
        elif "--json" in flags:
            assert result.doc["exit_code"] == result.returncode
