"""The pure parts of siptool.net.stun_transport: reading an ICMP error off the socket's error
queue and the escaped -v log (the exchanges on loopback sockets are
tests/integration/test_stun_transport.py)."""

from __future__ import annotations

import io
import socket
import struct
import sys

from siptool.net import stun_transport
from siptool.stun.message import binding_request


def _extended_err(origin: int, icmp_type: int, code: int, offender: str) -> bytes:
    err = struct.pack("=IBBBBII", 111, origin, icmp_type, code, 0, 0, 0)
    sockaddr = socket.AF_INET.to_bytes(2, sys.byteorder) + b"\0\0" + socket.inet_aton(offender)
    return err + sockaddr + bytes(8)


def test_icmp_error_reads_the_kind_and_the_sender() -> None:
    assert stun_transport.icmp_error(_extended_err(2, 3, 3, "10.0.0.1")) == (
        "port unreachable",
        "10.0.0.1",
    )
    assert stun_transport.icmp_error(_extended_err(2, 3, 13, "10.0.0.1"))[0] == (  # type: ignore[index]
        "administratively prohibited"
    )
    assert stun_transport.icmp_error(_extended_err(2, 11, 0, "10.0.0.1")) is None  # TTL
    assert stun_transport.icmp_error(b"short") is None


def test_verbose_log_escapes_terminal_controls_from_the_peer() -> None:
    out = io.StringIO()
    log = stun_transport.StunLog(True, out)
    _tid, wire = binding_request(software="x\x1b[2Jy\x07")
    log("recv", "udp", ("127.0.0.1", 1), ("127.0.0.1", 2), wire)
    log.note("ignored: \x1b]0;title\x07")
    assert "\x1b" not in out.getvalue() and "\x07" not in out.getvalue()
    assert "x\\x1b[2Jy\\x07" in out.getvalue()
