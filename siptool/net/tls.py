"""TLS settings shared by the SIP and STUN transports: verification on by default (the CLI
contract), --ca-file to trust a private CA, --insecure to skip verification."""

from __future__ import annotations

import ssl
from dataclasses import dataclass


@dataclass
class TlsOptions:
    insecure: bool = False
    ca_file: str | None = None

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx
