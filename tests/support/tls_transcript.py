"""Real TLS sessions without a network: OpenSSL (Python's ``ssl``) as client and server over
memory BIOs, the bytes each side wrote recorded in order, and the key log the client wrote.

The TLS 1.3 cipher suite cannot be chosen through ``ssl`` (``set_ciphers`` is TLS 1.2 only), so
each session runs in a child Python whose OPENSSL_CONF sets ``Ciphersuites`` (OpenSSL's
system_default section, read when ``ssl`` loads).  ``python -m tests.support.tls_transcript``
is that child: a JSON request on stdin, a JSON transcript on stdout.  Nothing here imports
pytest."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import ssl
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.support.paths import ROOT

# A direction (True: client to server) and the bytes that side wrote at once.
Chunk = tuple[bool, bytes]


@dataclass
class Transcript:
    chunks: list[Chunk]
    keylog: str
    version: str  # as ssl names it: "TLSv1.2", "TLSv1.3"
    cipher: str  # as OpenSSL names it


def record_session(
    exchanges: list[Chunk],
    *,
    tls13: bool = True,
    ciphers: str | None = None,
    ciphersuites: str | None = None,
    timeout: float = 30,
) -> Transcript:
    """A TLS session in which the client then the server send each ``(to_server, data)`` of
    ``exchanges`` as application data, and close with close_notify."""
    request = {
        "exchanges": [[d, data.hex()] for d, data in exchanges],
        "tls13": tls13,
        "ciphers": ciphers,
    }
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        if ciphersuites is not None:
            conf = Path(tmp) / "openssl.cnf"
            conf.write_text(
                "openssl_conf = siptool_test\n[siptool_test]\nssl_conf = ssl_section\n"
                "[ssl_section]\nsystem_default = system_default_section\n"
                f"[system_default_section]\nCiphersuites = {ciphersuites}\n"
            )
            env["OPENSSL_CONF"] = str(conf)
        done = subprocess.run(
            [sys.executable, "-m", "tests.support.tls_transcript"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=timeout,
            check=True,
        )
    out = json.loads(done.stdout)
    chunks = [(bool(d), bytes.fromhex(h)) for d, h in out["chunks"]]
    return Transcript(chunks, out["keylog"], out["version"], out["cipher"])


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed P-256 certificate for ``localhost`` (ECDHE-ECDSA suites)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / "key.pem", directory / "cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def _child() -> None:
    request = json.loads(sys.stdin.read())
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        key, cert = _certificate(directory)
        keylog = directory / "keys.log"
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(cert, key)
        client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client_ctx.check_hostname = False
        client_ctx.verify_mode = ssl.CERT_NONE
        client_ctx.keylog_filename = str(keylog)
        if not request["tls13"]:
            client_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        if request["ciphers"]:
            client_ctx.set_ciphers(request["ciphers"])
        chunks: list[list[object]] = []
        c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
        client = client_ctx.wrap_bio(c_in, c_out, server_hostname="localhost")
        server = server_ctx.wrap_bio(s_in, s_out, server_side=True)

        def pump() -> None:
            """Carry what each side wrote to the other, recording it."""
            for out, into, to_server in ((c_out, s_in, True), (s_out, c_in, False)):
                data = out.read()
                if data:
                    chunks.append([to_server, data.hex()])
                    into.write(data)

        for _ in range(20):  # the handshake, both sides stepping until done
            done = 0
            for side in (client, server):
                try:
                    side.do_handshake()
                    done += 1
                except ssl.SSLWantReadError:
                    pass
            pump()
            if done == 2:
                break
        for to_server, data_hex in request["exchanges"]:
            sender, receiver = (client, server) if to_server else (server, client)
            data = bytes.fromhex(data_hex)
            sender.write(data)
            pump()
            got = b""
            while len(got) < len(data):
                got += receiver.read(65536)
                pump()
        version, cipher = client.version(), client.cipher()
        for side in (client, server):
            with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLError):
                side.unwrap()
            pump()
        print(
            json.dumps(
                {
                    "chunks": chunks,
                    "keylog": keylog.read_text(),
                    "version": version,
                    "cipher": cipher[0] if cipher else "",
                }
            )
        )


if __name__ == "__main__":
    _child()
