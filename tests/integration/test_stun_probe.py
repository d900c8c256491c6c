"""`siptool stun-probe` against real coturn and stund on loopback (two IPv4 addresses, ::1),
over UDP, TCP and TLS; several servers from one socket; silent ports; the server list from the
environment; Nagios output; hostile servers (wrong transaction id, bad FINGERPRINT, unusable
mapped addresses, terminal escapes) and a closed port."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from siptool.stun.message import (
    StunClass,
    StunMessage,
    encode_address,
    encode_message,
    encode_xor_address,
)
from tests.support.responders import Address, closed_udp_port, idle_udp_socket
from tests.support.run import ENVELOPE, Env, siptool, siptool_json
from tests.support.servers import free_port
from tests.support.stun_peers import (
    ALTERNATE,
    HOSTILE_TEXT,
    PRIMARY,
    StunPeer,
    hostile_stun_server,
    stun_responder,
)

pytestmark = pytest.mark.peer

SERVER_KEYS = (
    "server",
    "transport",
    "local",
    "mapped",
    "rtt_ms",
    "rtt_min_ms",
    "rtt_avg_ms",
    "rtt_max_ms",
    "loss_pct",
    "software",
    "other_address",
    "response_origin",
    "rfc5780",
)


def probe_json(*args: str, env: Env | None = None) -> tuple[int, dict[str, Any]]:
    return siptool_json("stun-probe", *args, env=env)


def test_coturn_udp_reports_mapping_rtt_software_and_rfc5780(coturn: StunPeer) -> None:
    code, doc = probe_json(coturn.primary)
    assert code == 0, doc["errors"]
    for key in ENVELOPE:
        assert key in doc
    assert doc["command"] == "stun-probe" and doc["ok"] is True
    (server,) = doc["servers"]
    for key in SERVER_KEYS:
        assert key in server
    assert server["transport"] == "udp"
    # Loopback: no NAT, the server saw our own socket.
    assert server["mapped"] == server["local"]
    assert server["local"].startswith(f"{PRIMARY}:")
    assert server["mapped_from"] == "XOR-MAPPED-ADDRESS"
    assert server["software"].startswith("Coturn")
    assert server["response_origin"] == coturn.primary
    assert server["other_address"] == coturn.other
    assert server["rfc5780"] is True
    assert server["alg_suspected"] is False
    assert 0 < server["rtt_ms"] < 1000
    assert server["loss_pct"] == 0.0
    assert doc["port_preserved"] is True and doc["behind_nat"] is False


def test_several_servers_are_asked_from_one_socket_and_agree(
    coturn: StunPeer, stund: StunPeer
) -> None:
    alternate = f"{ALTERNATE}:{coturn.port}"
    code, doc = probe_json(coturn.primary, alternate, stund.primary)
    assert code == 0, doc["errors"]
    servers = doc["servers"]
    assert [s["server"] for s in servers] == [coturn.primary, alternate, stund.primary]
    assert len({s["local"].rsplit(":", 1)[1] for s in servers}) == 1  # one local port
    assert len({s["mapped"] for s in servers}) == 1
    assert doc["mapping_consistent"] is True
    assert servers[1]["response_origin"] == alternate


def test_stund_is_rfc3489_only(stund: StunPeer) -> None:
    code, doc = probe_json(stund.primary)
    assert code == 0
    (server,) = doc["servers"]
    assert server["software"] == "Vovida.org 0.97"
    assert server["rfc5780"] is False and server["other_address"] is None
    assert server["changed_address"] == stund.other
    assert server["mapped"] == server["local"]


def test_count_gives_min_avg_max_and_loss(coturn: StunPeer) -> None:
    code, doc = probe_json("-n", "3", "-i", "0.05", coturn.primary)
    assert code == 0
    s = doc["servers"][0]
    assert (s["sent"], s["received"], s["loss_pct"]) == (3, 3, 0.0)
    assert s["rtt_min_ms"] <= s["rtt_avg_ms"] <= s["rtt_max_ms"]


@pytest.mark.parametrize(
    "how", [("--transport", "tcp", "SERVER"), ("stun:SERVER?transport=tcp",)], ids=str
)
def test_tcp_with_rfc8489_framing(coturn: StunPeer, how: tuple[str, ...]) -> None:
    args = [a.replace("SERVER", coturn.primary) for a in how]
    code, doc = probe_json("-n", "2", "-i", "0", *args)
    assert code == 0, doc["errors"]
    s = doc["servers"][0]
    assert s["transport"] == "tcp"
    assert s["received"] == 2
    assert s["mapped"] == s["local"]  # the TCP connection's own address
    assert s["connect_ms"] is not None


def test_tls_with_stuns_uri_verifies_the_certificate(coturn: StunPeer) -> None:
    assert coturn.tls_port is not None
    uri = f"stuns:localhost:{coturn.tls_port}"
    code, doc = probe_json("-4", "--ca-file", coturn.extra["ca"], uri)
    assert code == 0, doc["errors"]
    s = doc["servers"][0]
    assert s["transport"] == "tls"
    assert s["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert s["mapped"] == s["local"]
    assert s["software"].startswith("Coturn")


def test_tls_keylog_lets_decode_read_the_stuns_binding(coturn: StunPeer, tmp_path: Path) -> None:
    pcap, keys = tmp_path / "stuns.pcapng", tmp_path / "keys.log"
    uri = f"stuns:localhost:{coturn.tls_port}"
    args = ("--pcap-out", str(pcap), "--tls-keylog", str(keys))
    code, doc = probe_json("-4", "--ca-file", coturn.extra["ca"], *args, uri)
    assert code == 0, doc["errors"]
    read = siptool("decode", "--json", "--tls-keylog", str(keys), str(pcap))
    assert read.returncode == 0, read.stderr
    found = [(m["transport"], m["stun"]["class"]) for m in read.doc["messages"]]
    assert found == [("tls", "request"), ("tls", "success_response")]
    ids = {m["stun"]["transaction_id"] for m in read.doc["messages"]}
    assert len(ids) == 1
    # Without the key log the connection is named, with its version and suite.
    plain = siptool("decode", "--json", str(pcap))
    [session] = plain.doc["summary"]["tls"]
    assert (session["decrypted"], session["reason"]) == (False, "no --tls-keylog")
    assert session["version"] == doc["servers"][0]["tls_version"].replace("TLSv", "TLS ")


def test_tls_with_an_unknown_ca_fails_with_the_reason(coturn: StunPeer) -> None:
    code, doc = probe_json("-4", f"stuns:localhost:{coturn.tls_port}")
    assert code == 1
    assert "certificate verification failed" in doc["errors"][0]["message"]
    code, doc = probe_json("-4", "--insecure", f"stuns:localhost:{coturn.tls_port}")
    assert code == 0


def test_ipv6(coturn: StunPeer) -> None:
    code, doc = probe_json(f"[::1]:{coturn.port}")
    assert code == 0, doc["errors"]
    s = doc["servers"][0]
    assert s["local"].startswith("[::1]:") and s["mapped"] == s["local"]


def test_a_silent_port_fails_within_the_timeout_and_the_others_still_answer(
    coturn: StunPeer,
) -> None:
    with idle_udp_socket() as silent:
        started = time.monotonic()
        code, doc = probe_json(
            "--timeout", "1", coturn.primary, f"{PRIMARY}:{silent.getsockname()[1]}"
        )
        elapsed = time.monotonic() - started
    assert code == 1
    answered, dead = doc["servers"]
    assert answered["received"] == 1
    assert dead["received"] == 0 and dead["loss_pct"] == 100.0
    assert dead["errors"][0]["code"] == "timeout"
    assert dead["mapped"] is None
    assert doc["mapping_consistent"] is None  # one answer: nothing to compare
    assert elapsed < 4


def test_server_list_from_the_environment_replaces_the_defaults(coturn: StunPeer) -> None:
    env = {"SIPTOOL_STUN_SERVERS": f"{coturn.primary}, stun:{coturn.other}"}
    code, doc = probe_json(env=env)
    assert code == 0, doc["errors"]
    assert [s["server"] for s in doc["servers"]] == [coturn.primary, f"stun:{coturn.other}"]
    assert doc["default_server_list"] is True
    code, doc = probe_json("--server-list", coturn.primary, env=env)
    assert [s["server"] for s in doc["servers"]] == [coturn.primary]


def test_nagios_ok_and_critical(coturn: StunPeer) -> None:
    ok = siptool("stun-probe", "--nagios", "-w", "500", "--critical", "1000", coturn.primary)
    assert ok.returncode == 0
    assert ok.stdout.startswith("STUN OK - ") and "rtt=" in ok.stdout and "loss=0%" in ok.stdout
    dead = siptool("stun-probe", "--nagios", "--timeout", "0.3", f"{PRIMARY}:{free_port()}")
    assert dead.returncode == 2 and dead.stdout.startswith("STUN CRITICAL - ")


def test_verbose_shows_messages_on_stderr_and_json_stays_clean(coturn: StunPeer) -> None:
    result = siptool("stun-probe", "--json", "-v", coturn.primary)
    assert result.doc["ok"] is True
    assert "binding request" in result.stderr and "binding success_response" in result.stderr
    assert "XOR-MAPPED-ADDRESS" in result.stderr


def test_text_table_names_the_server_and_the_verdicts(coturn: StunPeer) -> None:
    result = siptool("stun-probe", "--no-color", coturn.primary)
    assert result.returncode == 0
    assert coturn.primary in result.stdout and "Coturn" in result.stdout
    assert "no NAT" in result.stdout


def test_usage_errors_exit_2() -> None:
    assert siptool("stun-probe", "stun://example.com").returncode == 2
    assert siptool("stun-probe", "host:99999").returncode == 2


def test_a_busy_local_port_exits_3(coturn: StunPeer) -> None:
    with idle_udp_socket("0.0.0.0") as busy:
        port = str(busy.getsockname()[1])
        code, doc = probe_json("--local-port", port, coturn.primary)
    assert code == 3 and doc["errors"][0]["code"] == "bind_error"


@contextlib.contextmanager
def answering_server(
    *, alg: bool = False, from_other_port: bool = False, bare: StunClass | None = None
) -> Iterator[int]:
    """A STUN server run by the test: with ``alg`` its MAPPED-ADDRESS is rewritten the way an
    ALG rewrites addresses it finds in packets (XOR-MAPPED-ADDRESS survives); with
    ``from_other_port`` it answers from another socket, as a spoofer would; with ``bare`` it
    answers with a response of that class and no attribute at all (a broken server)."""

    def answer(request: StunMessage, peer: Address) -> tuple[bytes, socket.socket | None]:
        tid = request.transaction_id
        mapped = ("192.0.2.99", 1234) if alg else peer
        reply = encode_message(
            StunClass.SUCCESS_RESPONSE,
            1,
            tid,
            [
                (0x0020, encode_xor_address(peer[0], peer[1], tid)),
                (0x0001, encode_address(*mapped)),
            ],
            fingerprint=True,
        )
        if bare is not None:
            reply = encode_message(bare, 1, tid, [], fingerprint=True)
        return reply, other if from_other_port else None

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        other.bind((PRIMARY, 0))
        with stun_responder(answer) as port:
            yield port


def test_a_rewritten_mapped_address_is_reported_as_an_alg() -> None:
    with answering_server(alg=True) as port:
        result = siptool("stun-probe", "--json", f"{PRIMARY}:{port}")
    s = result.doc["servers"][0]
    assert s["mapped"] == s["xor_mapped_address"] == s["local"]  # XOR form wins
    assert s["mapped_address"] == "192.0.2.99:1234"
    assert s["alg_suspected"] is True
    assert "ALG" in result.stderr


def test_a_response_from_another_port_is_not_accepted() -> None:
    with answering_server(from_other_port=True) as port:
        result = siptool("stun-probe", "--json", "-v", "--timeout", "0.6", f"{PRIMARY}:{port}")
    assert result.returncode == 1
    assert result.doc["servers"][0]["received"] == 0
    assert "reply from unexpected address" in result.stderr


@pytest.mark.parametrize(
    ("bare", "code"),
    [
        (StunClass.SUCCESS_RESPONSE, "no_mapped_address"),
        (StunClass.ERROR_RESPONSE, "error_response"),
    ],
    ids=["success", "error"],
)
def test_an_answer_without_a_mapped_address_fails_the_check(bare: StunClass, code: str) -> None:
    # A success response without (XOR-)MAPPED-ADDRESS, or an error response without
    # ERROR-CODE, is no answer to the question: exit 1 and CRITICAL, not OK.
    with answering_server(bare=bare) as port:
        code_json, doc = probe_json(f"{PRIMARY}:{port}")
        nagios = siptool("stun-probe", "--nagios", f"{PRIMARY}:{port}")
    assert code_json == 1 and doc["ok"] is False
    assert doc["servers"][0]["received"] == 1 and doc["servers"][0]["mapped"] is None
    assert [e["code"] for e in doc["errors"]] == [code]
    assert nagios.returncode == 2 and nagios.stdout.startswith("STUN CRITICAL - ")


def test_jsonl_streams_each_reply_then_the_summary(coturn: StunPeer, stund: StunPeer) -> None:
    result = siptool(
        "stun-probe", "--jsonl", "-n", "2", "-i", "0.05", coturn.primary, stund.primary
    )
    lines = result.lines
    assert result.returncode == 0, result.stderr
    replies, summary = lines[:-1], lines[-1]
    assert sorted((r["server"], r["seq"]) for r in replies) == sorted(
        (server, seq) for server in (coturn.primary, stund.primary) for seq in (1, 2)
    )
    assert all(r["mapped"] and r["rtt_ms"] > 0 and r["error"] is None for r in replies)
    assert summary["command"] == "stun-probe" and len(summary["servers"]) == 2
    assert {s["server"]: s["received"] for s in summary["servers"]} == {
        coturn.primary: 2,
        stund.primary: 2,
    }


# ---------------------------------------------------------------------- hostile servers (#8)


def test_a_closed_port_fails_at_once_naming_port_unreachable() -> None:
    # ICMP port unreachable ends the wait: one request, not the RFC 8489 schedule until the
    # 20 s timeout.
    port = closed_udp_port()
    started = time.monotonic()
    code, doc = probe_json("--timeout", "20", f"{PRIMARY}:{port}")
    elapsed = time.monotonic() - started
    assert code == 1
    (server,) = doc["servers"]
    assert server["sent"] == 1 and server["received"] == 0
    assert server["errors"] == [
        {"code": "unreachable", "message": f"no STUN server at {PRIMARY}:{port}: port unreachable"}
    ]
    assert elapsed < 10


def test_a_closed_ipv6_port_fails_at_once_too() -> None:
    port = closed_udp_port("::1")
    code, doc = probe_json("--timeout", "20", f"[::1]:{port}")
    assert code == 1
    assert doc["servers"][0]["errors"][0]["message"].endswith("port unreachable")


def test_a_closed_port_beside_a_live_server_on_the_same_socket(coturn: StunPeer) -> None:
    # One socket asks both: the ICMP error goes to the closed port's exchange alone.
    port = closed_udp_port()
    code, doc = probe_json("--timeout", "20", coturn.primary, f"{PRIMARY}:{port}")
    assert code == 1
    live, dead = doc["servers"]
    assert live["received"] == 1 and live["errors"] == []
    assert dead["errors"][0]["code"] == "unreachable"


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("wrong-tid", "wrong transaction id"),
        ("bad-fingerprint", "bad FINGERPRINT"),
        ("not-stun", "not a valid STUN message"),
    ],
)
def test_answers_that_are_rejected_are_named_not_no_answer(mode: str, reason: str) -> None:
    with hostile_stun_server(mode) as port:
        code, doc = probe_json("--timeout", "0.6", f"{PRIMARY}:{port}")
        nagios = siptool("stun-probe", "--nagios", "--timeout", "0.6", f"{PRIMARY}:{port}")
    assert code == 1
    (server,) = doc["servers"]
    assert server["received"] == 0
    (error,) = server["errors"]
    assert error["code"] == "rejected"
    assert error["message"].startswith(f"answers rejected: {reason}")
    assert nagios.returncode == 2 and "answers rejected" in nagios.stdout


@pytest.mark.parametrize(
    ("mapped", "why"),
    [
        (("0.0.0.0", 0), "unspecified address"),
        (("198.51.100.7", 0), "port 0"),
        (("255.255.255.255", 3478), "broadcast address"),
        (("224.0.0.1", 3478), "multicast address"),
        (("::1", 3478), "not in the address family"),
    ],
    ids=str,
)
def test_an_unusable_mapped_address_fails_the_check(mapped: tuple[str, int], why: str) -> None:
    with hostile_stun_server("mapped", mapped=mapped) as port:
        code, doc = probe_json(f"{PRIMARY}:{port}")
        text = siptool("stun-probe", "--no-color", f"{PRIMARY}:{port}")
        nagios = siptool("stun-probe", "--nagios", f"{PRIMARY}:{port}")
    assert code == 1 and doc["ok"] is False
    (server,) = doc["servers"]
    assert server["mapped"] is None
    assert server["xor_mapped_address"] is not None  # what the server said is kept
    (error,) = server["errors"]
    assert error["code"] == "unusable_mapped_address" and why in error["message"]
    assert doc["behind_nat"] is None and doc["port_preserved"] is None
    assert text.returncode == 1 and "not preserved" not in text.stdout
    assert nagios.returncode == 2 and nagios.stdout.startswith("STUN CRITICAL - ")


def test_a_60_kb_response_is_taken_whole() -> None:
    # STUN's 16-bit length bounds a message to 65,555 bytes; siptool has no lower limit, so
    # a large (padded) answer is an answer, not "no answer".
    with hostile_stun_server("oversized") as port:
        code, doc = probe_json(f"{PRIMARY}:{port}")
    assert code == 0, doc["errors"]
    assert doc["servers"][0]["mapped"] == doc["servers"][0]["local"]


def _stalled_tcp_server(declared: int) -> tuple[socket.socket, threading.Thread]:
    """A TCP peer that answers a STUN header announcing ``declared`` bytes, then stalls."""
    listener = socket.socket()
    listener.bind((PRIMARY, 0))
    listener.listen()

    def serve() -> None:
        listener.settimeout(5)
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                request = conn.recv(2048)
                header = b"\x01\x01" + declared.to_bytes(2, "big") + request[4:20]
                conn.sendall(header + bytes(100))
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    conn.recv(1)  # until the client closes

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def test_a_tcp_answer_that_never_completes_is_named_with_its_size() -> None:
    listener, thread = _stalled_tcp_server(65532)
    try:
        code, doc = probe_json(
            "--transport", "tcp", "--timeout", "0.5", f"{PRIMARY}:{listener.getsockname()[1]}"
        )
    finally:
        listener.close()
        thread.join(timeout=6)
    assert code == 1
    message = doc["servers"][0]["errors"][0]["message"]
    assert "incomplete STUN message" in message and "120 of 65552 bytes" in message, message


@pytest.mark.parametrize("mode", ["software", "error"])
def test_terminal_escapes_from_the_server_never_reach_the_terminal(mode: str) -> None:
    with hostile_stun_server(mode) as port:
        target = f"{PRIMARY}:{port}"
        text = siptool("stun-probe", "--no-color", target)
        verbose = siptool("stun-probe", "--no-color", "-v", target)
        nagios = siptool("stun-probe", "--nagios", target)
        code, doc = probe_json(target)
    for result in (text, verbose, nagios):
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout
        assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "\\x1b[2J" in text.stdout + text.stderr
    assert len(nagios.stdout.splitlines()) == 1  # the LF in the text forged no second line
    server = doc["servers"][0]
    if mode == "software":
        assert code == 0 and server["software"] == HOSTILE_TEXT  # JSON keeps it exact
        assert "\\x1b]0;owned\\x07" in text.stdout
    else:
        assert code == 1 and server["error_response"] == {"code": 400, "reason": HOSTILE_TEXT}
