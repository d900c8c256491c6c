"""TLS settings shared by the SIP and STUN transports: verification on by default (the CLI
contract), --ca-file to trust a private CA, --insecure to skip verification, and --tls-keylog
(or the SSLKEYLOGFILE environment variable) to write the session keys in the NSS key log
format, so that Wireshark, tshark (``-o tls.keylog_file:``) and ``siptool decode`` can read
siptool's own TLS and WSS traffic.

Decisions:

- A --ca-file that cannot be loaded (missing, a directory, unreadable, no PEM certificate in
  it) raises ``CaFileError``: siptool's own input is wrong, so the check cannot run (exit 3),
  whatever the server would have said.  It is loaded when a TLS flow needs it, as before, so a
  --ca-file left in a UDP check's flags changes nothing.
- The key log is Python's own (``SSLContext.keylog_filename``, OpenSSL's keylog callback): one
  ``CLIENT_RANDOM`` line per TLS 1.2 session, the ``*_TRAFFIC_SECRET_0`` lines of TLS 1.3,
  appended to the file (it is never truncated, as NSS and curl do), every TLS connection of
  the run in it.  --tls-keylog wins over SSLKEYLOGFILE; an empty SSLKEYLOGFILE is no file.
- A key log file that cannot be opened for appending is siptool's own input that is wrong, as
  a bad --ca-file is: a ``KeyLogError`` (code ``tls_keylog_error``), exit 3, no failover.
"""

from __future__ import annotations

import functools
import os
import ssl
from dataclasses import dataclass, field
from typing import Any

from siptool.errors import CaFileError, KeyLogError

KEYLOG_ENV = "SSLKEYLOGFILE"


@dataclass
class TlsOptions:
    insecure: bool = False
    ca_file: str | None = None
    keylog_file: str | None = None  # --tls-keylog; None: SSLKEYLOGFILE, if set

    @property
    def keylog_path(self) -> str | None:
        """Where the session keys go: --tls-keylog, else SSLKEYLOGFILE, else nowhere."""
        return self.keylog_file or os.environ.get(KEYLOG_ENV) or None

    def context(self) -> ssl.SSLContext:
        """The client context; ``CaFileError`` when --ca-file cannot be used, ``KeyLogError``
        when the key log file cannot be written."""
        ctx = self._verified_context()
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        path = self.keylog_path
        if path:
            try:
                ctx.keylog_filename = path
            except OSError as exc:
                flag = "--tls-keylog" if self.keylog_file else KEYLOG_ENV
                raise KeyLogError(
                    f"cannot write the TLS key log {flag} {path}: {exc.strerror or exc}"
                ) from None
        return ctx

    def _verified_context(self) -> ssl.SSLContext:
        # A context without ssl.create_default_context's own reading of SSLKEYLOGFILE (which
        # raises a bare OSError for a file it cannot open): ``context`` sets the key log.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            if self.ca_file is None:
                ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
            else:
                ctx.load_verify_locations(cafile=self.ca_file)
        except ssl.SSLError as exc:
            if self.ca_file is None:
                raise
            # OpenSSL's reason, e.g. NO_CERTIFICATE_OR_CRL_FOUND for a file that is not PEM.
            why = (exc.reason or str(exc)).replace("_", " ").lower()
            raise CaFileError(
                f"cannot use --ca-file {self.ca_file}: not a PEM CA bundle ({why})"
            ) from None
        except OSError as exc:
            if self.ca_file is None:
                raise
            why = exc.strerror or str(exc)
            raise CaFileError(f"cannot read --ca-file {self.ca_file}: {why}") from None
        return ctx


@dataclass(frozen=True)
class TlsPeer:
    """What a TLS (or WSS) connection negotiated, and when the server's certificate expires:
    the facts a monitoring system tracks (siptool_tls_cert_expiry_timestamp_seconds)."""

    version: str | None
    cipher: str | None
    not_after: str | None = None  # a verified certificate's notAfter, as OpenSSL writes it
    certificate: bytes | None = field(default=None, repr=False)  # the DER, when not verified

    @functools.cached_property
    def certificate_expires(self) -> float | None:
        """The leaf certificate's notAfter in Unix seconds.  With --insecure only the DER is
        known, which cryptography reads: imported (127 ms) only when the JSON or the metrics
        ask, never on a run that shows neither."""
        if self.not_after is not None:
            return float(ssl.cert_time_to_seconds(self.not_after))
        if not self.certificate:
            return None
        try:
            from cryptography import x509

            certificate = x509.load_der_x509_certificate(self.certificate)
        except (ImportError, ValueError):
            return None
        expires = getattr(certificate, "not_valid_after_utc", None)
        if expires is None:  # cryptography < 42: a naive datetime in UTC
            import datetime

            expires = certificate.not_valid_after.replace(tzinfo=datetime.UTC)
        return float(expires.timestamp())

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "cipher": self.cipher,
            "certificate_expires": self.certificate_expires,
        }


def tls_peer(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> TlsPeer | None:
    """The ``TlsPeer`` of an established connection (None for a connection without TLS).  A
    verified peer's certificate comes decoded; with --insecure only its DER does
    (getpeercert() is {} then)."""
    if ssl_object is None:
        return None
    cipher = ssl_object.cipher()
    not_after = (ssl_object.getpeercert() or {}).get("notAfter")
    if isinstance(not_after, str):
        return TlsPeer(ssl_object.version(), cipher[0] if cipher else None, not_after)
    der = ssl_object.getpeercert(binary_form=True)
    return TlsPeer(ssl_object.version(), cipher[0] if cipher else None, None, der)
