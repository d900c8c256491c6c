"""TLS seen from outside: whether a TCP stream carries TLS, and the server name it asked for.

decode cannot read SIP inside TLS without the session keys, but it must not pass over such a
stream in silence: a SIP trunk on 5061 is TLS, and "no SIP in this capture" is the wrong
answer for it.  So a TCP direction whose first bytes are a TLS record header is marked as TLS
(``capture.tcp``) and named in decode's summary with its bytes and, from the ClientHello, the
server name (SNI) the client asked for.

- A record header (RFC 8446 §5.1, RFC 5246 §6.2.1): content type 20-23 (change_cipher_spec,
  alert, handshake, application_data), legacy version 3.x with x <= 4, a length of at most
  2^14 + 2048 (the ciphertext bound of RFC 5246 §6.2.3).
- The server name (RFC 6066 §3): the first ``host_name`` entry of the ClientHello's
  ``server_name`` extension; a ClientHello cut short or malformed gives None, never raises.
"""

from __future__ import annotations

__all__ = ["client_hello_sni", "is_tls_record", "record_length"]

_CONTENT_TYPES = frozenset((20, 21, 22, 23))
_MAX_RECORD = (1 << 14) + 2048
_HANDSHAKE = 22
_CLIENT_HELLO = 1
_SERVER_NAME = 0
_HOST_NAME = 0


def is_tls_record(data: bytes | bytearray) -> bool:
    """Whether ``data`` begins with a plausible TLS record header (5 bytes needed)."""
    return (
        len(data) >= 5
        and data[0] in _CONTENT_TYPES
        and data[1] == 3
        and data[2] <= 4
        and ((data[3] << 8) | data[4]) <= _MAX_RECORD
    )


def record_length(data: bytes | bytearray) -> int:
    """The whole first record's length, header included (``is_tls_record`` first)."""
    return 5 + ((data[3] << 8) | data[4])


def client_hello_sni(data: bytes | bytearray) -> str | None:
    """The server name a ClientHello at the start of ``data`` asks for, if it is whole."""
    try:
        return _sni(bytes(data[: record_length(data)]))
    except IndexError:
        return None


def _sni(record: bytes) -> str | None:
    if record[0] != _HANDSHAKE or record[5] != _CLIENT_HELLO:
        return None
    p = 5 + 4 + 2 + 32  # handshake header, legacy_version, random
    p += 1 + record[p]  # legacy_session_id
    p += 2 + ((record[p] << 8) | record[p + 1])  # cipher_suites
    p += 1 + record[p]  # legacy_compression_methods
    end = p + 2 + ((record[p] << 8) | record[p + 1])
    p += 2
    if end > len(record):
        return None
    while p + 4 <= end:
        kind = (record[p] << 8) | record[p + 1]
        size = (record[p + 2] << 8) | record[p + 3]
        p += 4
        if kind == _SERVER_NAME:
            q = p + 2  # server_name_list length
            while q + 3 <= p + size:
                name_type = record[q]
                length = (record[q + 1] << 8) | record[q + 2]
                if name_type == _HOST_NAME:
                    name = record[q + 3 : q + 3 + length]
                    if len(name) != length:
                        return None
                    return name.decode("ascii", "replace")
                q += 3 + length
            return None
        p += size
    return None
