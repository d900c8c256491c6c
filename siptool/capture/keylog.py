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

A key log read from a file (``read_keylog``) can be ``follow``ed: during a live capture the
client writes a session's secrets only once its handshake is under way, after decode started,
so ``refresh`` reads the lines appended since (as Wireshark re-reads its key log file).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

__all__ = [
    "CLIENT_RANDOM",
    "TLS13_CLIENT_APPLICATION",
    "TLS13_CLIENT_HANDSHAKE",
    "TLS13_SERVER_APPLICATION",
    "TLS13_SERVER_HANDSHAKE",
    "KeyLog",
    "parse_keylog",
    "read_keylog",
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
    path: str | None = None  # the file, for ``refresh``
    follow: bool = False  # a live capture: ``refresh`` reads what was appended
    _offset: int = 0  # bytes of the file read, whole lines only
    _lines: int = 0  # lines read

    def refresh(self) -> bool:
        """With ``follow``, read the lines appended to the file since; True when there were."""
        if not self.follow or self.path is None:
            return False
        try:
            if os.stat(self.path).st_size <= self._offset:
                return False
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except OSError:
            return False
        return self._feed(data)

    def _feed(self, data: bytes) -> bool:
        end = data.rfind(b"\n") + 1  # a line still being written waits for its newline
        if not end:
            return False
        self._offset += end
        for line in data[:end].decode("utf-8", "replace").splitlines():
            self._lines += 1
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            why = _read_line(line, self)
            if why is not None:
                self.problems.append((self._lines, why))
        return True

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


def read_keylog(path: str, name: str, *, follow: bool = False) -> KeyLog:
    """The key log in the file ``path`` (``OSError`` when it cannot be read)."""
    with open(path, "rb") as f:
        data = f.read()
    log = KeyLog(name, path=path, follow=follow)
    if not follow and not data.endswith(b"\n"):
        data += b"\n"  # a file's last line needs no newline; a followed one's is still coming
    log._feed(data)
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
