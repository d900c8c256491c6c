"""decode names what it could not read instead of passing over it (issue 10): SIP over TLS to
Kamailio, recorded by tcpdump, from siptool's own options-ping and from openssl s_client
asking for a server name, is listed per TCP direction as TLS with its bytes and the SNI the
ClientHello carried, as tshark reads it; a TCP stream of something else is "tcp"."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from tests.support.kamailio import Kamailio
from tests.support.live_capture import tcpdump
from tests.support.peers import require_root, require_tool
from tests.support.run import siptool
from tests.support.servers import free_port

pytestmark = pytest.mark.peer

SNI = "trunk.example.test"


def test_tls_and_other_tcp_streams_are_named_in_the_summary(
    kamailio: Kamailio, tmp_path: Path
) -> None:
    require_root()
    openssl = require_tool("openssl")
    tshark = require_tool("tshark")
    assert kamailio.tls is not None
    other = free_port("tcp")
    path = tmp_path / "tls.pcap"
    with tcpdump("lo", [kamailio.tls, other], path) as written:
        ping = siptool("options-ping", "--insecure", kamailio.uri("tls"))
        assert ping.returncode == 0, ping.stderr
        hello = subprocess.run(
            [openssl, "s_client", "-connect", f"127.0.0.1:{kamailio.tls}", "-servername", SNI],
            input="",
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert "BEGIN CERTIFICATE" in hello.stdout, hello.stderr
        with socket.create_server(("127.0.0.1", other)) as server:  # not SIP, not TLS
            client = socket.create_connection(("127.0.0.1", other))
            peer, _ = server.accept()
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"x" * 70_000)
            received = 0
            while received < 70_027:
                received += len(peer.recv(65536))
            client.close()
            peer.close()
        written(20)
    result = siptool("decode", "--json", str(path))
    assert result.returncode == 0, result.stderr
    streams = json.loads(result.stdout)["summary"]["not_decoded"]
    tls = [s for s in streams if s["protocol"] == "tls"]
    port = f"127.0.0.1:{kamailio.tls}"
    # Two connections, each direction once: siptool's (no SNI for an IP address, RFC 6066 §3)
    # and openssl's, whose ClientHello names the server.
    assert len(tls) == 4 and all(s["transport"] == "tcp" and s["bytes"] > 0 for s in tls)
    assert sum(s["dst"] == port for s in tls) == 2 and sum(s["src"] == port for s in tls) == 2
    assert sorted(str(s["sni"]) for s in tls if s["dst"] == port) == ["None", SNI]
    shark = subprocess.run(
        [tshark, "-r", str(path), "-Y", "tls.handshake.type == 1", "-T", "fields",
         "-e", "tls.handshake.extensions_server_name"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert sorted(shark.stdout.split("\n")[:2]) == ["", SNI]
    [plain] = [s for s in streams if s["protocol"] == "tcp"]
    assert plain["dst"] == f"127.0.0.1:{other}" and plain["bytes"] == 70_027
    text = siptool("decode", str(path))
    lines = text.stdout.splitlines()
    at = lines.index("not decoded: 4 TLS and 1 other TCP streams")
    listed = lines[at + 1 : at + 6]
    assert all(line.startswith("  T") for line in listed)
    assert sum(f"SNI {SNI} (" in line for line in listed) == 1
    # Without a key log the TLS sessions are named once more with version and cipher (issue 13).
    assert lines[at + 6 :][0] == "TLS: 2 connections, 0 decrypted"
    sessions = lines[at + 7 :]
    assert len(sessions) == 2 and all(
        line.endswith("not decrypted, no --tls-keylog") for line in sessions
    )
