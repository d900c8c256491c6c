"""TLS settings shared by the SIP and STUN transports: verification on by default (the CLI
contract), --ca-file to trust a private CA, --insecure to skip verification.

Decisions:

- A --ca-file that cannot be loaded (missing, a directory, unreadable, no PEM certificate in
  it) raises ``CaFileError``: siptool's own input is wrong, so the check cannot run (exit 3),
  whatever the server would have said.  It is loaded when a TLS flow needs it, as before, so a
  --ca-file left in a UDP check's flags changes nothing.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from siptool.errors import CaFileError


@dataclass
class TlsOptions:
    insecure: bool = False
    ca_file: str | None = None

    def context(self) -> ssl.SSLContext:
        """The client context; ``CaFileError`` when --ca-file cannot be loaded."""
        try:
            ctx = ssl.create_default_context(cafile=self.ca_file)
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
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx
