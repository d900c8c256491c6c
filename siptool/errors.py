"""The one exception hierarchy.

Each error carries what a person needs to act on it: the input name, the byte offset or packet
number, the peer.  Commands turn these into one line on stderr and an exit code; a traceback
reaching the user is a bug.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The process exit codes of shared/cli-contract.md, in one place.

    With --nagios the process exits with the Nagios state instead (commands/nagios.py)."""

    OK = 0
    FAILED = 1  # the check failed: no answer, unwanted final response, invalid input message
    USAGE = 2  # bad flags or arguments
    NOT_RUN = 3  # siptool could not run the check: unreadable input, cannot bind, a bug
    INTERRUPTED = 130  # Ctrl-C, after the command's cleanup (BYE/CANCEL, unregister)


class SiptoolError(Exception):
    """Base of every error siptool raises on purpose.

    ``code`` is the machine-readable ``errors[].code`` of the JSON contract: a class attribute
    for the error kinds below, or given per instance for a check's own verdicts
    (``SiptoolError("call not answered: 486 Busy Here", code="not_answered")``), so every
    result error is built from this one type and rendered by ``to_dict``."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, str]:
        """The ``{"code", "message"}`` object of the JSON contract."""
        return {"code": self.code, "message": self.message}

    def prefixed(self, where: str) -> SiptoolError:
        """The same error with ``where: `` in front (a target or server in a multi-target
        document)."""
        return SiptoolError(f"{where}: {self.message}", code=self.code)


class UsageError(SiptoolError):
    """Bad flags or arguments, found after click parsed them: one line, exit 2."""

    code = "usage_error"


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
    """An input siptool needs that cannot be read at all (a capture, a --password-file, a
    targets file: missing, permission denied): siptool cannot run (exit 3)."""

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


class KeyLogError(LocalBindError):
    """The TLS key log (--tls-keylog or SSLKEYLOGFILE) cannot be opened for appending:
    siptool's own output file, so the check cannot run (exit 3), as with a bad --ca-file."""

    code = "tls_keylog_error"


class ResolveError(SiptoolError):
    """A name that DNS (RFC 3263 / A / AAAA) could not turn into a target."""

    code = "dns_error"
