"""Opening TCP and TLS connections the same way for SIP and STUN, and what a failure says.

Decisions:

- Our own address or port that cannot be had (EADDRINUSE, EADDRNOTAVAIL, EACCES on the bind
  of --local-address/--local-port) is a ``LocalBindError``: siptool could not run the check
  (exit 3), whichever server it tried.
- Everything else the socket says is a ``TransportError`` with the errno's text: asyncio puts
  "Connect call failed (addr)" in ``strerror``, which says less than the errno does.
- A certificate that fails verification names the way out (--ca-file, --insecure).
"""

from __future__ import annotations

import asyncio
import errno
import os
import ssl
from collections.abc import Callable
from typing import TypeVar

from siptool.addr import Address, format_address, wildcard_address
from siptool.errors import LocalBindError, TransportError

__all__ = [
    "bind_address",
    "bind_failure",
    "certificate_failure",
    "connect_stream",
    "os_reason",
]

_P = TypeVar("_P", bound=asyncio.Protocol)

_BIND_ERRORS = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES})


def bind_address(local_address: str | None, local_port: int | None, family: int) -> Address | None:
    """Where to bind for --local-address / --local-port (the wildcard of ``family`` for a port
    alone, port 0 for an address alone); None when neither is given."""
    if not (local_address or local_port):
        return None
    return local_address or wildcard_address(family), local_port or 0


async def connect_stream(
    protocol_factory: Callable[[], _P],
    remote: Address,
    *,
    context: ssl.SSLContext | None,
    server_name: str | None,
    local: Address | None,
    timeout: float,
) -> tuple[asyncio.Transport, _P]:
    """A TCP connection to ``remote`` (TLS with ``context``, verified against ``server_name``
    or else the address), within ``timeout``.  Raises what asyncio raises."""
    loop = asyncio.get_running_loop()
    return await asyncio.wait_for(
        loop.create_connection(
            protocol_factory,
            remote[0],
            remote[1],
            ssl=context,
            server_hostname=(server_name or remote[0]) if context else None,
            local_addr=local,
        ),
        timeout,
    )


def bind_failure(exc: OSError, local: Address | None) -> LocalBindError | None:
    """The ``LocalBindError`` for an error binding ``local``; None for any other error."""
    if local is None or exc.errno not in _BIND_ERRORS:
        return None
    return LocalBindError(f"cannot bind {format_address(*local)}: {exc.strerror}")


def os_reason(exc: OSError) -> str:
    """What an ``OSError`` says, in the errno's words when it has one."""
    return os.strerror(exc.errno) if exc.errno else exc.strerror or str(exc)


def certificate_failure(name: str, exc: ssl.SSLCertVerificationError) -> TransportError:
    return TransportError(
        f"{name}: certificate verification failed: {exc.verify_message}"
        " (use --ca-file, or --insecure to skip verification)"
    )
