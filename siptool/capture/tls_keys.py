"""TLS record protection for decode: the cipher suites it decrypts, their key schedules, and
one direction's record cipher.

Only AEAD suites are here, the ones a SIP trunk or a WebRTC client negotiates today:

- TLS 1.3 (RFC 8446): AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305.  The traffic secrets come
  from the key log; key and IV are HKDF-Expand-Label(secret, "key"/"iv", "", length) (§7.3);
  the nonce is the IV XOR the 64-bit record sequence number (§5.3); the additional data is the
  record header (§5.2); the plaintext ends with its content type and zero padding (§5.4).
  A KeyUpdate moves to HKDF-Expand-Label(secret, "traffic upd", "", Hash.length) (§7.2).
- TLS 1.2 (RFC 5246, RFC 5288, RFC 7905): (EC)DHE or RSA key exchange with AES-GCM or
  ChaCha20-Poly1305.  The master secret comes from the key log; the key block is
  PRF(master, "key expansion", server_random + client_random) (RFC 5246 §6.3) with the suite's
  hash (SHA-384 for the _SHA384 suites, else SHA-256); AES-GCM's nonce is a 4-byte implicit salt
  and the record's 8-byte explicit part (RFC 5288 §3), ChaCha20's the 12-byte IV XOR the
  sequence number (RFC 7905 §2); the additional data is seq_num + type + version + length
  (RFC 5246 §6.2.3.3).

The ciphers and HKDF are the ``cryptography`` package's, imported when the first session's
keys are made (decode without --tls-keylog never loads it); the TLS 1.2 PRF is HMAC from the
standard library (``cryptography`` has no TLS PRF).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "SUITES",
    "CipherSuite",
    "RecordCipher",
    "suite_name",
    "tls12_ciphers",
    "tls13_cipher",
    "tls13_next_secret",
]

_TAG = 16  # the AEAD tag of every suite here
_EXPLICIT_NONCE = 8  # TLS 1.2 AES-GCM, RFC 5288 §3


@dataclass(frozen=True, slots=True)
class CipherSuite:
    code: int
    name: str  # the IANA registry's name
    tls13: bool
    aead: str  # "aes-gcm" or "chacha20-poly1305"
    key_size: int
    hash_name: str  # "sha256" or "sha384"


def _suite(code: int, name: str, key_size: int, hash_name: str = "sha256") -> CipherSuite:
    aead = "chacha20-poly1305" if "CHACHA20" in name else "aes-gcm"
    return CipherSuite(code, name, code >> 8 == 0x13, aead, key_size, hash_name)


SUITES: dict[int, CipherSuite] = {
    s.code: s
    for s in (
        # TLS 1.3, RFC 8446 §B.4
        _suite(0x1301, "TLS_AES_128_GCM_SHA256", 16),
        _suite(0x1302, "TLS_AES_256_GCM_SHA384", 32, "sha384"),
        _suite(0x1303, "TLS_CHACHA20_POLY1305_SHA256", 32),
        # TLS 1.2 AES-GCM, RFC 5288 and RFC 5289
        _suite(0x009C, "TLS_RSA_WITH_AES_128_GCM_SHA256", 16),
        _suite(0x009D, "TLS_RSA_WITH_AES_256_GCM_SHA384", 32, "sha384"),
        _suite(0x009E, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", 16),
        _suite(0x009F, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", 32, "sha384"),
        _suite(0xC02B, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", 16),
        _suite(0xC02C, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", 32, "sha384"),
        _suite(0xC02F, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", 16),
        _suite(0xC030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", 32, "sha384"),
        # TLS 1.2 ChaCha20-Poly1305, RFC 7905
        _suite(0xCCA8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", 32),
        _suite(0xCCA9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", 32),
        _suite(0xCCAA, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256", 32),
    )
}


def suite_name(code: int) -> str:
    """The IANA name of a suite decode decrypts, else its code as ``0xC0FF``."""
    suite = SUITES.get(code)
    return suite.name if suite is not None else f"0x{code:04X}"


class RecordCipher:
    """One direction's record protection at one key: decrypts records in sequence order."""

    __slots__ = ("_aead", "_iv", "_tls13", "seq")

    def __init__(self, suite: CipherSuite, key: bytes, iv: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

        self._aead: Any = ChaCha20Poly1305(key) if suite.aead != "aes-gcm" else AESGCM(key)
        self._iv = iv
        self._tls13 = suite.tls13
        self.seq = 0

    def decrypt(self, header: bytes, fragment: bytes) -> tuple[int, bytes] | None:
        """(content type, plaintext) of the next record, or None when it fails authentication
        (wrong keys, or a record out of sequence); the sequence number advances either way."""
        from cryptography.exceptions import InvalidTag

        seq = self.seq
        self.seq += 1
        iv = self._iv
        try:
            if self._tls13:
                nonce = _xor_seq(iv, seq)
                inner = self._aead.decrypt(nonce, fragment, header)
                end = len(inner)
                while end and not inner[end - 1]:
                    end -= 1  # RFC 8446 §5.4: zero padding after the content type
                if not end:
                    return None
                return inner[end - 1], inner[: end - 1]
            if len(iv) == 4:  # AES-GCM: salt + explicit nonce
                if len(fragment) < _EXPLICIT_NONCE + _TAG:
                    return None
                nonce = iv + fragment[:_EXPLICIT_NONCE]
                body = fragment[_EXPLICIT_NONCE:]
            else:
                if len(fragment) < _TAG:
                    return None
                nonce = _xor_seq(iv, seq)
                body = fragment
            aad = seq.to_bytes(8, "big") + header[:3] + (len(body) - _TAG).to_bytes(2, "big")
            return header[0], self._aead.decrypt(nonce, body, aad)
        except InvalidTag:
            return None


def _xor_seq(iv: bytes, seq: int) -> bytes:
    return (int.from_bytes(iv, "big") ^ seq).to_bytes(len(iv), "big")


# -- TLS 1.3 ------------------------------------------------------------------------------------


def _expand_label(secret: bytes, label: str, length: int, hash_name: str) -> bytes:
    """HKDF-Expand-Label with an empty context (RFC 8446 §7.1)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

    full = b"tls13 " + label.encode("ascii")
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\x00"
    algorithm = hashes.SHA384() if hash_name == "sha384" else hashes.SHA256()
    return HKDFExpand(algorithm, length, info).derive(secret)


def tls13_cipher(suite: CipherSuite, secret: bytes) -> RecordCipher:
    """The record cipher of a TLS 1.3 traffic secret (RFC 8446 §7.3)."""
    key = _expand_label(secret, "key", suite.key_size, suite.hash_name)
    iv = _expand_label(secret, "iv", 12, suite.hash_name)
    return RecordCipher(suite, key, iv)


def tls13_next_secret(suite: CipherSuite, secret: bytes) -> bytes:
    """The application traffic secret after a KeyUpdate (RFC 8446 §7.2)."""
    return _expand_label(secret, "traffic upd", len(secret), suite.hash_name)


# -- TLS 1.2 ------------------------------------------------------------------------------------


def _prf(secret: bytes, label: bytes, seed: bytes, length: int, hash_name: str) -> bytes:
    """P_hash of RFC 5246 §5: HMAC(secret, A(i) + label + seed) until ``length`` bytes."""
    import hashlib  # here: decode without TLS 1.2 keys never pays for it
    import hmac

    digest = getattr(hashlib, hash_name)
    seed = label + seed
    out = bytearray()
    a = seed
    while len(out) < length:
        a = hmac.new(secret, a, digest).digest()
        out += hmac.new(secret, a + seed, digest).digest()
    return bytes(out[:length])


def tls12_ciphers(
    suite: CipherSuite, master: bytes, client_random: bytes, server_random: bytes
) -> tuple[RecordCipher, RecordCipher]:
    """(client's, server's) record ciphers from the master secret (RFC 5246 §6.3; AEAD suites
    have no MAC keys)."""
    iv_size = 4 if suite.aead == "aes-gcm" else 12
    size = 2 * (suite.key_size + iv_size)
    block = _prf(master, b"key expansion", server_random + client_random, size, suite.hash_name)
    k = suite.key_size
    client_key, server_key = block[:k], block[k : 2 * k]
    client_iv, server_iv = block[2 * k : 2 * k + iv_size], block[2 * k + iv_size :]
    return RecordCipher(suite, client_key, client_iv), RecordCipher(suite, server_key, server_iv)
