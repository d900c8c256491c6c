"""SIP over WebSocket (RFC 7118), the pure parts: ws/wss in TARGET and --transport, the .invalid
Via and Contact, RFC 3263 for ws/wss (A/AAAA only, ports 80/443), what makes a WebSocket
message not one SIP message, and the TLS key log settings.  No socket, no process."""

from __future__ import annotations

import asyncio
import random
import re
import socket
from pathlib import Path

import pytest

from siptool.errors import KeyLogError, ParseError
from siptool.net.resolver import NaptrRecord, Resolver, SrvRecord
from siptool.net.tls import TlsOptions
from siptool.net.ws_transport import _not_one_message
from siptool.sip.builders import LocalEndpoint, invalid_host
from siptool.sip.target import DEFAULT_PORT, parse_target


@pytest.mark.parametrize(
    ("text", "flag", "transport"),
    [
        ("sip:pbx.example.com;transport=ws", None, "ws"),
        ("sip:pbx.example.com;transport=wss", None, "wss"),
        ("sips:pbx.example.com;transport=ws", None, "wss"),  # RFC 7118 §5.2.2
        ("sips:pbx.example.com;transport=wss", None, "wss"),
        ("sips:pbx.example.com", "ws", "wss"),
        ("sips:pbx.example.com", None, "tls"),
        ("pbx.example.com:8080", "ws", "ws"),
        ("sip:pbx.example.com;transport=tcp", "ws", "tcp"),  # the URI wins
    ],
)
def test_websocket_transports_in_target_and_flag(
    text: str, flag: str | None, transport: str
) -> None:
    assert parse_target(text, flag).transport == transport


def test_unknown_transport_names_all_five() -> None:
    with pytest.raises(ParseError, match=r"udp, tcp, tls, ws or wss"):
        parse_target("sip:x;transport=sctp")


def test_websocket_default_ports_are_http_and_https() -> None:
    assert (DEFAULT_PORT["ws"], DEFAULT_PORT["wss"]) == (80, 443)


@pytest.mark.parametrize("transport", ["ws", "wss"])
def test_via_and_contact_name_an_invalid_host(transport: str) -> None:
    local = LocalEndpoint(transport, "192.0.2.7", 40123)
    via = local.via("z9hG4bKabc")
    assert re.fullmatch(
        rf"SIP/2\.0/{transport.upper()} [0-9a-f]{{12}}\.invalid;branch=z9hG4bKabc;rport", via
    )
    assert "192.0.2.7" not in via and "40123" not in via
    contact = local.contact_uri("alice")
    assert re.fullmatch(r"sip:alice@[0-9a-f]{12}\.invalid;transport=ws", contact)


def test_invalid_host_is_stable_per_socket_and_differs_between_sockets() -> None:
    assert invalid_host("127.0.0.1", 5000) == invalid_host("127.0.0.1", 5000)
    assert invalid_host("127.0.0.1", 5000) != invalid_host("127.0.0.1", 5001)
    assert LocalEndpoint("tcp", "127.0.0.1", 5000).hostport == "127.0.0.1:5000"


class Zone:
    def __init__(self) -> None:
        self.asked: list[str] = []
        self.naptrs = {
            "example.com": [NaptrRecord(10, 10, "s", "SIP+D2W", "_sip._ws.example.com.")]
        }
        self.srvs = {"_sip._ws.example.com.": [SrvRecord(1, 1, 8443, "ws.example.com.")]}

    async def naptr(self, name: str) -> list[NaptrRecord]:
        self.asked.append(f"NAPTR {name}")
        return self.naptrs.get(name, [])

    async def srv(self, name: str) -> list[SrvRecord]:
        self.asked.append(f"SRV {name}")
        return self.srvs.get(name, [])

    async def addresses(self, name: str, family: int) -> list[str]:
        self.asked.append(f"{'A' if family == socket.AF_INET else 'AAAA'} {name}")
        return ["192.0.2.80"] if family == socket.AF_INET and "example.com" in name else []


def _resolve(zone: Zone, text: str, transport: str | None = None):  # type: ignore[no-untyped-def]
    resolver = Resolver(zone, hosts={}, rng=random.Random(1))  # type: ignore[arg-type]
    return asyncio.run(resolver.resolve(parse_target(text, transport)))


@pytest.mark.parametrize(("transport", "port"), [("ws", 80), ("wss", 443)])
def test_websocket_target_is_looked_up_by_address_only(transport: str, port: int) -> None:
    zone = Zone()
    result = _resolve(zone, f"sip:example.com;transport={transport}")
    assert [(c.transport, c.hostport) for c in result.candidates] == [
        (transport, f"192.0.2.80:{port}")
    ]
    assert not any(q.startswith(("NAPTR", "SRV")) for q in zone.asked)


def test_websocket_with_a_port_keeps_it() -> None:
    result = _resolve(Zone(), "sip:example.com:8080;transport=ws")
    assert result.candidates[0].hostport == "192.0.2.80:8080"


def test_naptr_never_turns_a_plain_target_into_websocket() -> None:
    zone = Zone()
    result = _resolve(zone, "sip:example.com")
    assert {c.transport for c in result.candidates} <= {"udp", "tcp", "tls"}


OK = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/WS a.invalid;branch=z9hG4bK1\r\nContent-Length: 4\r\n\r\n"


def test_a_whole_sip_message_is_one_message() -> None:
    assert _not_one_message(OK + b"body") is None
    assert _not_one_message(b"\r\n\r\n") is None  # a keep-alive, the flow's to skip


def test_headers_that_do_not_end_break_rfc_7118() -> None:
    why = _not_one_message(OK[:40])
    assert why is not None and "headers do not end within its WebSocket message" in why


def test_a_body_shorter_than_its_content_length_breaks_rfc_7118() -> None:
    why = _not_one_message(OK + b"bo")
    assert why is not None and "after 2 of its Content-Length 4 bytes" in why


def test_tls_keylog_flag_wins_over_sslkeylogfile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSLKEYLOGFILE", str(tmp_path / "env.log"))
    assert TlsOptions().keylog_path == str(tmp_path / "env.log")
    flagged = TlsOptions(keylog_file=str(tmp_path / "flag.log"))
    assert flagged.keylog_path == str(tmp_path / "flag.log")
    assert flagged.context().keylog_filename == str(tmp_path / "flag.log")
    monkeypatch.setenv("SSLKEYLOGFILE", "")
    assert TlsOptions().keylog_path is None


def test_tls_keylog_that_cannot_be_opened_is_siptools_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSLKEYLOGFILE", str(tmp_path / "missing" / "k.log"))
    with pytest.raises(KeyLogError, match=r"cannot write the TLS key log SSLKEYLOGFILE") as info:
        TlsOptions().context()
    assert info.value.code == "tls_keylog_error"
