"""The one exception hierarchy.

Each error carries what a person needs to act on it: the input name, the byte offset or packet
number, the peer.  Commands turn these into one line on stderr and an exit code; a traceback
reaching the user is a bug.
"""

from __future__ import annotations


class SiptoolError(Exception):
    """Base of every error siptool raises on purpose."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ParseError(SiptoolError):
    """Bytes that are not a valid message of the protocol being parsed.

    ``offset`` is the byte offset inside the buffer handed to the parser (callers add the
    position of that buffer in the input); ``where`` is an optional human label such as
    ``"packet 12"`` or ``"byte 4096"``.
    """

    code = "parse_error"

    def __init__(
        self, message: str, *, offset: int | None = None, where: str | None = None
    ) -> None:
        super().__init__(message)
        self.offset = offset
        self.where = where

    def __str__(self) -> str:
        parts = []
        if self.where:
            parts.append(self.where)
        if self.offset is not None:
            parts.append(f"byte {self.offset}")
        prefix = ", ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message


class InputError(SiptoolError):
    """An input that cannot be read at all (missing file, permission denied)."""

    code = "input_error"


class TransportError(SiptoolError):
    """A network failure toward a peer: refused, unreachable, TLS failure, timeout."""

    code = "transport_error"


class LocalBindError(TransportError):
    """The local address or port asked for cannot be used: siptool cannot run (exit 3)."""

    code = "bind_error"


class CaFileError(LocalBindError):
    """The --ca-file given cannot be used (missing, a directory, unreadable, no certificate in
    it): siptool's own input, so siptool cannot run the check (exit 3, Nagios UNKNOWN), never
    "the server failed".  A LocalBindError because that is what every command already maps to
    exit 3 and never fails over on: both are local resources the check needs."""

    code = "ca_file_error"


class ResolveError(SiptoolError):
    """A name that DNS (RFC 3263 / A / AAAA) could not turn into a target."""

    code = "dns_error"
