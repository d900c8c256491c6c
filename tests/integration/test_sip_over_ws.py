"""SIP over WebSocket (RFC 7118), ws and wss, on every SIP command against real peers: Kamailio
with its websocket module as registrar and OPTIONS responder (tests/support/kamailio_ws.py),
relaying INVITEs from WebSocket to a SIPp UAS over UDP and MESSAGEs from UDP to a WebSocket
client; a hostile WebSocket server of our own for what a server must not do
(tests/support/hostile_ws.py).  --pcap-out and --tls-keylog are read back by tshark, which
decrypts WSS with siptool's key log and finds the SIP inside the WebSocket frames."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.hostile_ws import Behaviour, hostile_ws
from tests.support.kamailio import PASSWORD
from tests.support.kamailio_ws import ALLOWED_ORIGIN, KamailioWs, start_kamailio_ws
from tests.support.peers import require_tool
from tests.support.run import siptool, spawn
from tests.support.sipp import start_sipp

pytestmark = pytest.mark.peer

AUTH = {"SIPTOOL_PASSWORD": PASSWORD}
INVALID_VIA = re.compile(r"Via: SIP/2\.0/(WSS?) [0-9a-f]{12}\.invalid;branch=z9hG4bK")


@pytest.fixture(scope="module")
def kws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KamailioWs]:
    peer = start_kamailio_ws(tmp_path_factory.mktemp("kamailio-ws"))
    try:
        yield peer
    finally:
        peer.stop()


def secure(kws: KamailioWs) -> tuple[str, ...]:
    return ("--ca-file", str(kws.ca.ca_cert))


@pytest.mark.parametrize("transport", ["ws", "wss"])
def test_options_ping_over_websocket_gets_kamailios_200(kws: KamailioWs, transport: str) -> None:
    extra = secure(kws) if transport == "wss" else ()
    result = siptool("options-ping", "--json", "-v", *extra, kws.uri(transport))
    assert result.returncode == 0, result.stderr
    target = result.doc["targets"][0]
    port = kws.ws if transport == "ws" else kws.wss
    assert target["resolved"] == {"transport": transport, "address": f"127.0.0.1:{port}"}
    assert target["replies"][0]["status"] == 200
    assert target["server"]["user_agent"] == "kamailio-siptool-ws-testbed"
    # RFC 7118 §5: our Via names a .invalid host, Kamailio's answer adds received and rport.
    via = INVALID_VIA.findall(result.stderr)
    assert via and set(via) == {transport.upper()}
    assert re.search(r"\.invalid;branch=\S+;rport=\d+;received=127\.0\.0\.1", result.stderr)
    assert ";transport=ws>" in result.stderr  # the Contact (RFC 7118 §5.2.2)


def test_transport_flag_and_sips_uri_choose_websocket(kws: KamailioWs) -> None:
    flag = siptool("options-ping", "--json", "--transport", "ws", f"127.0.0.1:{kws.ws}")
    assert flag.returncode == 0, flag.stderr
    assert flag.doc["targets"][0]["resolved"]["transport"] == "ws"
    # A SIPS URI over WebSocket is WSS (RFC 7118 §5.2.2).
    sips = siptool("options-ping", "--json", *secure(kws), f"sips:127.0.0.1:{kws.wss};transport=ws")
    assert sips.returncode == 0, sips.stderr
    assert sips.doc["targets"][0]["resolved"]["transport"] == "wss"


def test_wss_certificate_is_verified_unless_insecure(kws: KamailioWs) -> None:
    refused = siptool("options-ping", "--json", kws.uri("wss"))
    assert refused.returncode == 1
    message = refused.doc["errors"][0]["message"]
    assert "wss to 127.0.0.1" in message and "certificate verification failed" in message
    assert "--ca-file" in message
    insecure = siptool("options-ping", "--insecure", kws.uri("wss"))
    assert insecure.returncode == 0, insecure.stderr


def test_ws_path_and_origin_reach_the_upgrade(kws: KamailioWs) -> None:
    wrong_path = siptool("options-ping", "--ws-path", "/nope", kws.uri("ws"))
    assert wrong_path.returncode == 1
    assert "WebSocket upgrade refused: 404 Not Found" in wrong_path.stderr
    wrong_origin = siptool("options-ping", "--origin", "https://evil.test", kws.uri("ws"))
    assert wrong_origin.returncode == 1
    assert "WebSocket upgrade refused: 403 Forbidden" in wrong_origin.stderr
    assert "origin https://evil.test refused" in kws.server.log()
    right = siptool("options-ping", "--origin", ALLOWED_ORIGIN, "--ws-path", "/sip", kws.uri("ws"))
    assert right.returncode == 0, right.stderr


def test_ws_path_must_be_a_path() -> None:
    result = siptool("options-ping", "--ws-path", "sip", "--transport", "ws", "127.0.0.1:9")
    assert result.returncode == 2
    assert "a path starting with /" in result.stderr


@pytest.mark.parametrize("transport", ["ws", "wss"])
def test_register_over_websocket_with_digest(kws: KamailioWs, transport: str) -> None:
    extra = secure(kws) if transport == "wss" else ()
    user = f"alice-{transport}"
    result = siptool("register", "--json", "--user", user, *extra, kws.uri(transport), env=AUTH)
    assert result.returncode == 0, result.stderr
    doc = result.doc
    assert doc["auth"]["rounds"] == 1
    ours = [b for b in doc["bindings"] if b["ours"]]
    assert len(ours) == 1
    assert re.fullmatch(rf"sip:{user}@[0-9a-f]{{12}}\.invalid;transport=ws", ours[0]["contact"])


@pytest.mark.parametrize("transport", ["ws", "wss"])
def test_invite_test_over_websocket_through_kamailio_to_sipp(
    kws: KamailioWs, transport: str, tmp_path: Path
) -> None:
    peer = start_sipp(tmp_path, "answer-rr.xml")
    try:
        user = f"sipp-{transport}"
        contact = f"sip:{user}@127.0.0.1:{peer.port}"
        registered = siptool(
            "register", "--user", user, "--contact", contact, kws.uri("udp"), env=AUTH
        )
        assert registered.returncode == 0, registered.stderr
        extra = secure(kws) if transport == "wss" else ()
        call = siptool(
            "invite-test", "--json", "-v", "--hold", "0.3", *extra, kws.uri(transport, user)
        )
        assert call.returncode == 0, call.stderr
        doc = call.doc
        assert doc["answered"] is True and doc["bye_status"] == 200
        assert doc["resolved"]["transport"] == transport
        # Kamailio record-routes twice (WebSocket in, UDP out): ACK and BYE go back over our
        # WebSocket with both Routes.
        for method in ("ACK", "BYE"):
            sent = re.search(
                rf"send {transport.upper()} \S+ -> 127\.0\.0\.1:\d+\n{method} .*?\n\n",
                call.stderr,
                re.S,
            )
            assert sent, f"no {method} over {transport}"
            assert sent.group(0).count("Route: <sip:127.0.0.1:") == 2
        assert peer.finished() == 0
    finally:
        peer.server.stop()


def test_send_over_websocket(kws: KamailioWs) -> None:
    result = siptool("send", "--json", "OPTIONS", kws.uri("ws"))
    assert result.returncode == 0, result.stderr
    assert result.doc["final_status"] == 200
    assert result.doc["resolved"]["transport"] == "ws"


def test_message_to_a_websocket_listener_is_relayed_by_kamailio(kws: KamailioWs) -> None:
    """message --listen registers over WSS; a MESSAGE sent over ws to its AOR comes to it
    through Kamailio over that WebSocket connection (fix_nated_register)."""
    listener = spawn(
        "message",
        "--json",
        "--listen",
        "-n",
        "1",
        "--timeout",
        "10",
        "--user",
        "carol",
        *secure(kws),
        kws.uri("wss"),
        env=AUTH,
    )
    try:
        deadline = time.monotonic() + 8
        sent = None
        while time.monotonic() < deadline:
            sent = siptool("message", "--json", "--text", "hello over wss", kws.uri("ws", "carol"))
            if sent.returncode == 0:
                break
            assert sent.doc["final_status"] == 404, sent.stderr  # not registered yet
            time.sleep(0.1)
        assert sent is not None and sent.returncode == 0, sent.stderr
        out, err = listener.communicate(timeout=15)
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()
    assert listener.returncode == 0, err
    assert "hello over wss" in out
    assert '"transport": "wss"' in out or '"transport":"wss"' in out


def _tshark_sip(path: Path, port: int, *options: str) -> list[str]:
    tshark = require_tool("tshark")
    layer = "tls" if options else "tcp"
    fields = ["-e", "websocket.opcode", "-e", "sip.Method", "-e", "sip.Status-Code"]
    argv = [tshark, "-n", "-r", str(path), *options, "-d", f"{layer}.port=={port},http"]
    argv += ["-Y", "sip", "-T", "fields", *fields]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout
    return [" ".join(line.split()) for line in out.splitlines() if line.strip()]


def test_pcap_out_records_the_websocket_connection(kws: KamailioWs, tmp_path: Path) -> None:
    pcap = tmp_path / "ws.pcapng"
    result = siptool("options-ping", "--pcap-out", str(pcap), kws.uri("ws"))
    assert result.returncode == 0, result.stderr
    # tshark finds the upgrade and the SIP inside text frames (opcode 1).
    assert _tshark_sip(pcap, kws.ws) == ["1 OPTIONS", "1 200"]


def test_tls_keylog_lets_tshark_decrypt_wss(kws: KamailioWs, tmp_path: Path) -> None:
    pcap, keys = tmp_path / "wss.pcapng", tmp_path / "keys.log"
    result = siptool(
        "options-ping",
        "--pcap-out",
        str(pcap),
        "--tls-keylog",
        str(keys),
        *secure(kws),
        kws.uri("wss"),
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"^CLIENT_TRAFFIC_SECRET_0 [0-9a-f]{64} ", keys.read_text(), re.M)
    assert _tshark_sip(pcap, kws.wss, "-o", f"tls.keylog_file:{keys}") == ["1 OPTIONS", "1 200"]
    # Without the keys tshark sees no SIP at all.
    assert _tshark_sip(pcap, kws.wss, "-o", "tls.keylog_file:/dev/null") == []


def test_sslkeylogfile_is_honoured_and_the_flag_wins(kws: KamailioWs, tmp_path: Path) -> None:
    env_file, flag_file = tmp_path / "env.log", tmp_path / "flag.log"
    by_env = siptool(
        "options-ping", *secure(kws), kws.uri("wss"), env={"SSLKEYLOGFILE": str(env_file)}
    )
    assert by_env.returncode == 0, by_env.stderr
    assert "CLIENT_TRAFFIC_SECRET_0" in env_file.read_text()
    size = env_file.stat().st_size
    by_flag = siptool(
        "register",
        "--user",
        "dave",
        "--tls-keylog",
        str(flag_file),
        *secure(kws),
        kws.uri("wss"),
        env={**AUTH, "SSLKEYLOGFILE": str(env_file)},
    )
    assert by_flag.returncode == 0, by_flag.stderr
    assert "CLIENT_TRAFFIC_SECRET_0" in flag_file.read_text()
    assert env_file.stat().st_size == size


def test_tls_keylog_that_cannot_be_written_is_exit_3(kws: KamailioWs, tmp_path: Path) -> None:
    result = siptool(
        "options-ping",
        "--json",
        "--tls-keylog",
        str(tmp_path / "no" / "keys.log"),
        *secure(kws),
        kws.uri("wss"),
    )
    assert result.returncode == 3
    error = result.doc["errors"][0]
    assert error["code"] == "tls_keylog_error"
    assert "cannot write the TLS key log --tls-keylog" in error["message"]


# -- a hostile WebSocket server ------------------------------------------------------------


@pytest.mark.parametrize("behaviour", [Behaviour.BINARY, Behaviour.FRAGMENTED])
def test_binary_and_fragmented_answers_are_read(behaviour: Behaviour) -> None:
    """RFC 7118 §4.2 allows binary frames; RFC 6455 §5.4 lets a message come in fragments."""
    with hostile_ws(behaviour) as peer:
        result = siptool("options-ping", "--json", "--origin", "https://x.test", peer.uri())
    assert result.returncode == 0, result.stderr
    assert result.doc["targets"][0]["replies"][0]["status"] == 200
    assert peer.opcodes == ["text"]  # ours go as text (RFC 7118 §4.2)
    assert peer.origins == ["https://x.test"]


EXPECTED = {
    Behaviour.SPLIT: "a 200 OK (OPTIONS) of 290 bytes from 127.0.0.1:{port} was dropped: its "
    "headers do not end within its WebSocket message (RFC 7118 §5.1",
    Behaviour.OVERSIZED: "ws to 127.0.0.1:{port}: a WebSocket message larger than siptool's "
    "limit of 65536 bytes: siptool closed the WebSocket with 1009 message too big",
    Behaviour.CLOSE: "ws to 127.0.0.1:{port}: server closed the WebSocket: 1008 policy "
    "violation (no SIP for you)",
    Behaviour.REFUSE: "ws to 127.0.0.1:{port}: WebSocket upgrade refused: 403 Forbidden",
    Behaviour.NO_PROTOCOL: "ws to 127.0.0.1:{port}: WebSocket upgrade answered without the sip "
    "subprotocol (RFC 7118 §4.1)",
}


@pytest.mark.parametrize("behaviour", list(EXPECTED), ids=lambda b: b.value)
def test_a_bad_websocket_server_is_named(behaviour: Behaviour) -> None:
    with hostile_ws(behaviour) as peer:
        started = time.monotonic()
        result = siptool("options-ping", "--json", "--timeout", "3", peer.uri())
        seconds = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert EXPECTED[behaviour].format(port=peer.port) in result.stdout
    if behaviour is not Behaviour.SPLIT:
        assert seconds < 2.5  # named at once, not at the timeout


def test_close_mid_transaction_ends_every_command_named() -> None:
    with hostile_ws(Behaviour.CLOSE) as peer:
        result = siptool("register", "--json", "--user", "x", peer.uri(), env=AUTH)
        invite = siptool("invite-test", "--json", "--timeout", "3", peer.uri())
    for run in (result, invite):
        assert run.returncode == 1, run.stderr
        assert "server closed the WebSocket: 1008 policy violation (no SIP for you)" in run.stdout
