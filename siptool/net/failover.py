"""The RFC 3263 §4.3 failover loop, written once for every SIP command.

The resolver gives the servers in order (NAPTR, SRV priority and weight, A/AAAA).  A command
asks ``Failover.next_flow`` for a flow to the next server that accepts one; a server whose
transport fails (refused, unreachable, TLS failure) is recorded and skipped at once.  The
command then runs its transaction over that flow and, when the server gave no answer at all,
calls ``next_flow`` again while ``more`` says servers remain.

Decisions:

- RFC 3263 §4.3: a transport error or a timeout moves to the next server; any response
  (even a 503) ends the search, which is the command's call, not this loop's.
- A ``LocalBindError`` (our address or port, our CA file) is never failed over: it would fail
  the same way at every server, and it means siptool could not run the check (exit 3).
- The loop does not know about timers or messages: how long a server may take is the
  command's ``open`` callable's business (invite-test shares its --timeout between the
  servers left, ``left`` tells it how many).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from siptool.errors import LocalBindError, SiptoolError, TransportError
from siptool.net.resolver import Candidate, Resolution
from siptool.net.sip_transport import SipFlow

OpenFlow = Callable[[Candidate], Awaitable[SipFlow]]


@dataclass
class Opened:
    """A flow to one server, and the server it goes to."""

    candidate: Candidate
    flow: SipFlow


class Failover:
    """The servers of one resolution, tried in order."""

    def __init__(
        self,
        resolution: Resolution,
        open_flow: OpenFlow,
        errors: list[SiptoolError],
        *,
        prefix_errors: bool = False,
    ) -> None:
        self._remaining = list(resolution.candidates)
        self._open = open_flow
        self._errors = errors
        self._prefix = prefix_errors

    @property
    def more(self) -> bool:
        """Servers remain that have not been tried."""
        return bool(self._remaining)

    @property
    def left(self) -> list[Candidate]:
        return list(self._remaining)

    async def next_flow(self) -> Opened | None:
        """A flow to the next server that accepts one; None when none is left.  Each
        transport failure on the way is appended to ``errors`` (with the server's address
        in front when ``prefix_errors``)."""
        while self._remaining:
            candidate = self._remaining.pop(0)
            try:
                flow = await self._open(candidate)
            except LocalBindError:
                raise
            except TransportError as exc:
                self._errors.append(exc.prefixed(candidate.hostport) if self._prefix else exc)
                continue
            return Opened(candidate, flow)
        return None
