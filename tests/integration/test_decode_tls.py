"""`siptool decode --tls-keylog` on SIP over TLS and WSS that tcpdump recorded between siptool
and a real Kamailio (tests/support/kamailio_ws.py), side by side with tshark decrypting the same
capture with the key log siptool wrote (``-o tls.keylog_file:``).

Kamailio's tls module gives one listener per suite: TLS 1.2 with ECDHE-RSA and AES-128-GCM,
AES-256-GCM or ChaCha20-Poly1305 (``[server:IP:PORT]`` profiles with a cipher_list), and a TLS
1.3 listener whose suite siptool's OpenSSL chooses (``Ciphersuites`` in an OPENSSL_CONF given to
siptool's process: AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305).  wss is Kamailio's websocket
module behind its default TLS profile: register (401 then 200) and options-ping.  One more
options-ping writes no key log: decode names that session rather than dropping it.

Every message is compared by (frame, position in frame) with tshark's: method or status,
Call-ID, CSeq, From and To tags, top Via branch, src and dst; siptool's transport is ``tls`` or
``wss`` where tshark's last layer is TCP.  The bad input end to end: a key log with garbage
lines (each named with its line, the good lines still used) and a TLS record cut short by a
client that closes in the middle of one (named, the messages before it decoded).
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_decode_websocket import COMPARED, by_position, view
from tests.support.kamailio import PASSWORD
from tests.support.kamailio_ws import KamailioWs, start_kamailio_ws
from tests.support.live_capture import tcpdump, wait_until_closed
from tests.support.peers import require_root
from tests.support.run import siptool
from tests.support.tshark_reference import tshark_messages

pytestmark = pytest.mark.peer

# OpenSSL cipher string -> the IANA name decode reports (RFC 5289, RFC 7905).
TLS12 = {
    "ECDHE-RSA-AES128-GCM-SHA256": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384": "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-RSA-CHACHA20-POLY1305": "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}
TLS13 = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
NO_KEYS = {"SSLKEYLOGFILE": ""}  # an empty SSLKEYLOGFILE is no file (siptool/net/tls.py)


@dataclass
class Recording:
    kamailio: KamailioWs
    pcap: Path
    keys: Path
    tls13: int  # the TLS 1.3 listener's port
    unkeyed: int  # the client port of the session that wrote no key log

    def decode_as(self) -> list[str]:
        """tshark's rules: each TLS port, then SIP (or HTTP for the WebSocket upgrade) inside."""
        rules = []
        for port in (*self.kamailio.tls.values(), self.kamailio.wss):
            inner = "http" if port == self.kamailio.wss else "sip"
            rules += [f"tcp.port=={port},tls", f"tls.port=={port},{inner}"]
        return rules


def _suite_conf(directory: Path, suite: str) -> Path:
    """An OpenSSL configuration that offers only ``suite`` over TLS 1.3."""
    conf = directory / f"{suite}.cnf"
    conf.write_text(
        "openssl_conf = siptool_test\n[siptool_test]\nssl_conf = ssl_section\n"
        "[ssl_section]\nsystem_default = system_default_section\n"
        f"[system_default_section]\nCiphersuites = {suite}\n"
    )
    return conf


def _ping(kws: KamailioWs, port: int, *args: str, env: dict[str, str] | None = None) -> Any:
    result = siptool(
        "options-ping", "--json", "--ca-file", str(kws.ca.ca_cert), *args,
        f"sip:127.0.0.1:{port};transport=tls", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.doc


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recording]:
    require_root()
    work = tmp_path_factory.mktemp("decode-tls")
    (work / "kamailio").mkdir()
    kws = start_kamailio_ws(work / "kamailio", tls=[*TLS12, "TLSv1.3"])
    try:
        pcap, keys = work / "tls.pcap", work / "keys.log"
        tls13 = kws.tls["TLSv1.3"]
        keylog = ("--tls-keylog", str(keys))
        with tcpdump("lo", [*kws.tls.values(), kws.wss], pcap):
            connections = 0
            for cipher in TLS12:
                _ping(kws, kws.tls[cipher], *keylog, env=NO_KEYS)
                connections += 1
            for suite in TLS13:
                env = {"OPENSSL_CONF": str(_suite_conf(work, suite)), **NO_KEYS}
                _ping(kws, tls13, *keylog, env=env)
                connections += 1
            ca = ("--ca-file", str(kws.ca.ca_cert))
            registered = siptool(
                "register", "--user", "alice", *ca, *keylog, kws.uri("wss"),
                env={"SIPTOOL_PASSWORD": PASSWORD, **NO_KEYS},
            )  # fmt: skip
            assert registered.returncode == 0, registered.stderr
            pinged = siptool("options-ping", *ca, *keylog, kws.uri("wss"), env=NO_KEYS)
            assert pinged.returncode == 0, pinged.stderr
            connections += 2
            unkeyed = _ping(kws, tls13, env=NO_KEYS)
            connections += 1
            wait_until_closed(pcap, connections)
        local = unkeyed["targets"][0]["nat"]["local"]
        yield Recording(kws, pcap, keys, tls13, int(local.rsplit(":", 1)[1]))
    finally:
        kws.stop()


def decode(path: Path, *extra: str) -> tuple[int, list[dict[str, Any]], dict[str, Any], str]:
    done = siptool("decode", "--jsonl", *extra, str(path), timeout=120)
    objects = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    *messages, summary = objects
    return done.returncode, messages, summary["summary"], done.stderr


def test_decode_decrypts_kamailio_s_tls_and_wss_as_tshark_does(recording: Recording) -> None:
    code, messages, summary, stderr = decode(recording.pcap, "--tls-keylog", str(recording.keys))
    assert code == 0, stderr
    found = tshark_messages(recording.pcap, recording.decode_as(), keylog=recording.keys)
    theirs = {(t["frame"], t["position"]): t for t in found}
    ours = dict(by_position(messages))
    assert set(ours) == set(theirs), "siptool and tshark find different messages"
    for key in sorted(ours):
        mine, t = view(ours[key]), theirs[key]
        assert t["transport"] == "tcp"
        assert {f: mine[f] for f in COMPARED} == {f: t[f] for f in COMPARED}, key
    wss = f"127.0.0.1:{recording.kamailio.wss}"
    transports = {(m["transport"], wss in (m["src"], m["dst"])) for m in messages}
    assert transports == {("tls", False), ("wss", True)}
    methods = [m["method"] or m["status"] for m in messages]
    # 6 OPTIONS over TLS, REGISTER 401 REGISTER 200 and OPTIONS 200 over WSS, all answered.
    assert methods.count("OPTIONS") == 7 and methods.count("REGISTER") == 2
    assert methods.count(200) == 8 and methods.count(401) == 1
    assert summary["sip"] == 18 and summary["invalid"] == 0


def test_every_suite_is_named_with_its_session(recording: Recording) -> None:
    code, _, summary, stderr = decode(recording.pcap, "--tls-keylog", str(recording.keys))
    assert code == 0, stderr
    sessions = summary["tls"]
    by_port: dict[int, list[dict[str, Any]]] = {}
    for s in sessions:
        by_port.setdefault(int(s["server"].rsplit(":", 1)[1]), []).append(s)
    for cipher, iana in TLS12.items():
        [one] = by_port[recording.kamailio.tls[cipher]]
        assert (one["version"], one["cipher_suite"], one["decrypted"]) == ("TLS 1.2", iana, True)
    tls13 = by_port[recording.tls13]
    keyed = [s for s in tls13 if s["decrypted"]]
    assert sorted(s["cipher_suite"] for s in keyed) == sorted(TLS13)
    assert {s["version"] for s in tls13} == {"TLS 1.3"}
    # The session without a key log is named, with why, and is not a problem (exit 0).
    [unkeyed] = [s for s in tls13 if not s["decrypted"]]
    assert unkeyed["client"] == f"127.0.0.1:{recording.unkeyed}"
    assert unkeyed["reason"].startswith("no key for client random ")
    assert unkeyed["reason"].endswith(f" in {recording.keys}")
    wss = by_port[recording.kamailio.wss]
    assert len(wss) == 2 and all(s["decrypted"] for s in wss)
    # Its two directions are the only TLS left undecoded.
    undecoded = [s for s in summary["not_decoded"] if s["protocol"] == "tls"]
    assert sorted((s["src"], s["dst"]) for s in undecoded) == sorted(
        [(unkeyed["client"], unkeyed["server"]), (unkeyed["server"], unkeyed["client"])]
    )
    text = siptool("decode", "--tls-keylog", str(recording.keys), str(recording.pcap))
    assert f"TLS: {len(sessions)} connections, {len(sessions) - 1} decrypted" in text.stdout
    # tshark sees no SIP in that session either: it has no keys for it.
    shark = tshark_messages(recording.pcap, recording.decode_as(), keylog=recording.keys)
    unkeyed_end = f"127.0.0.1:{recording.unkeyed}"
    assert shark and not [t for t in shark if unkeyed_end in (t["src"], t["dst"])]


def test_a_key_log_with_garbage_lines_names_each_and_uses_the_rest(
    recording: Recording, tmp_path: Path
) -> None:
    good = recording.keys.read_text().splitlines()
    garbage = ["this is not a key log line", "CLIENT_RANDOM 00ff", "# a comment is fine", ""]
    mixed = tmp_path / "mixed.log"
    mixed.write_text("\n".join([garbage[0], *good[:3], garbage[1], *good[3:], *garbage[2:]]) + "\n")
    code, messages, summary, stderr = decode(recording.pcap, "--tls-keylog", str(mixed))
    assert code == 1 and "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 2, stderr
    assert lines[0].startswith(f"siptool decode: {mixed}: line 1: ")
    assert lines[1].startswith(f"siptool decode: {mixed}: line 5: ")
    clean = decode(recording.pcap, "--tls-keylog", str(recording.keys))[1]
    assert [view(m) for m in messages] == [view(m) for m in clean]
    assert summary["sip"] == 18


# -- a TLS record cut short -------------------------------------------------------------------


def _cut_session(port: int, keys: Path, options: bytes) -> None:
    """A client that sends one OPTIONS over TLS, reads the 200, then writes half of the next
    record (a second OPTIONS) and closes."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.keylog_filename = str(keys)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=False)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:

        def pump(until: Any) -> None:
            while True:
                try:
                    if until():
                        return
                except ssl.SSLWantReadError:
                    pass
                sock.sendall(outgoing.read())
                data = sock.recv(65536)
                assert data, "Kamailio closed the connection"
                incoming.write(data)

        pump(lambda: tls.do_handshake() or True)
        sock.sendall(outgoing.read())
        tls.write(options)
        sock.sendall(outgoing.read())
        answer = b""

        def answered() -> bool:
            nonlocal answer
            answer += tls.read(65536)
            return b"\r\n\r\n" in answer

        pump(answered)
        assert answer.startswith(b"SIP/2.0 200"), answer[:80]
        tls.write(options.replace(b"CSeq: 1 ", b"CSeq: 2 "))
        record = outgoing.read()
        sock.sendall(record[: len(record) // 2])


def _options(port: int, local: int) -> bytes:
    return (
        f"OPTIONS sip:127.0.0.1:{port};transport=tls SIP/2.0\r\n"
        f"Via: SIP/2.0/TLS 127.0.0.1:{local};branch=z9hG4bK-cut-1;rport\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:cut@127.0.0.1>;tag=cut1\r\nTo: <sip:127.0.0.1>\r\n"
        "Call-ID: cut-record@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def test_a_record_cut_short_is_named_and_what_came_before_decoded(
    recording: Recording, tmp_path: Path
) -> None:
    require_root()
    port = recording.kamailio.tls["ECDHE-RSA-AES128-GCM-SHA256"]
    pcap, keys = tmp_path / "cut.pcap", tmp_path / "cut.keys"
    with tcpdump("lo", [port], pcap):
        _cut_session(port, keys, _options(port, 5061))
        wait_until_closed(pcap, 1)
    code, messages, summary, stderr = decode(pcap, "--tls-keylog", str(keys))
    assert code == 1 and "Traceback" not in stderr
    assert [(m["method"] or m["status"], m["transport"]) for m in messages] == [
        ("OPTIONS", "tls"),
        (200, "tls"),
    ]
    [line] = stderr.strip().splitlines()
    assert "TLS record cut short" in line and f"127.0.0.1:{port}" in line, line
    assert summary["invalid"] == 1
    theirs = tshark_messages(pcap, [f"tcp.port=={port},tls", f"tls.port=={port},sip"], keys)
    assert [t["method"] or t["status"] for t in theirs] == ["OPTIONS", 200]
