"""The NSS key log format: the TLS secrets decode needs to read encrypted SIP in a capture.

The format is the one NSS, OpenSSL (``SSL_CTX_set_keylog_callback``), Python's
``SSLContext.keylog_filename``, browsers' and siptool's own ``--tls-keylog``/``SSLKEYLOGFILE``
write, and the one Wireshark reads with ``tls.keylog_file`` (its definition is
draft-ietf-tls-keylogfile §3): one secret per line, ``LABEL CLIENT_RANDOM SECRET``, the
client random (32 bytes, from the ClientHello) and the secret in hex, ``#`` comments and blank
lines allowed.

- TLS 1.2 and earlier: ``CLIENT_RANDOM`` gives the 48-byte master secret (RFC 5246 §8.1).
- TLS 1.3: ``CLIENT_HANDSHAKE_TRAFFIC_SECRET``, ``SERVER_HANDSHAKE_TRAFFIC_SECRET``,
  ``CLIENT_TRAFFIC_SECRET_0`` and ``SERVER_TRAFFIC_SECRET_0`` (RFC 8446 §7.1) are the ones used;
  the exporter and early-data secrets are read and kept but never needed.

A line that is not of this form is named (its line number and why) and skipped; the others are
still used, as Wireshark does.  A line whose label is unknown is kept silently: the format has
grown labels before (ECH's) and will again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "CLIENT_RANDOM",
    "TLS13_CLIENT_APPLICATION",
    "TLS13_CLIENT_HANDSHAKE",
    "TLS13_SERVER_APPLICATION",
    "TLS13_SERVER_HANDSHAKE",
    "KeyLog",
    "parse_keylog",
]

CLIENT_RANDOM = "CLIENT_RANDOM"
TLS13_CLIENT_HANDSHAKE = "CLIENT_HANDSHAKE_TRAFFIC_SECRET"
TLS13_SERVER_HANDSHAKE = "SERVER_HANDSHAKE_TRAFFIC_SECRET"
TLS13_CLIENT_APPLICATION = "CLIENT_TRAFFIC_SECRET_0"
TLS13_SERVER_APPLICATION = "SERVER_TRAFFIC_SECRET_0"

_RANDOM_SIZE = 32  # RFC 8446 §4.1.2, RFC 5246 §7.4.1.2
_MASTER_SECRET_SIZE = 48  # RFC 5246 §8.1
_MAX_SECRET = 64  # a SHA-512 based secret, the longest any suite has
_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass
class KeyLog:
    """The secrets of a key log by client random, and the lines that could not be read."""

    name: str
    secrets: dict[bytes, dict[str, bytes]] = field(default_factory=dict)
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line number, why)

    def get(self, client_random: bytes, label: str) -> bytes | None:
        entry = self.secrets.get(client_random)
        return None if entry is None else entry.get(label)

    def __len__(self) -> int:
        return len(self.secrets)


def parse_keylog(text: str, name: str) -> KeyLog:
    """Every usable line of a key log; the others are in ``problems`` with their numbers."""
    log = KeyLog(name)
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        why = _read_line(line, log)
        if why is not None:
            log.problems.append((number, why))
    return log


def _read_line(line: str, log: KeyLog) -> str | None:
    parts = line.split()
    if len(parts) != 3:
        return f"not LABEL CLIENT_RANDOM SECRET ({len(parts)} fields)"
    label, random_hex, secret_hex = parts
    if not label.replace("_", "").isalnum() or not label.isascii() or not label.isupper():
        return "the label is not an upper-case word"
    for what, value in (("client random", random_hex), ("secret", secret_hex)):
        if len(value) % 2 or not _HEX.issuperset(value):
            return f"the {what} is not hexadecimal"
    random = bytes.fromhex(random_hex)
    secret = bytes.fromhex(secret_hex)
    if len(random) != _RANDOM_SIZE:
        return f"the client random has {len(random)} bytes, not {_RANDOM_SIZE}"
    if label == CLIENT_RANDOM and len(secret) != _MASTER_SECRET_SIZE:
        return f"the master secret has {len(secret)} bytes, not {_MASTER_SECRET_SIZE}"
    if not 0 < len(secret) <= _MAX_SECRET:
        return f"the secret has {len(secret)} bytes"
    log.secrets.setdefault(random, {})[label] = secret
    return None
