"""What every step of one invite-test call shares: the options, the result being filled, the
ladder's timeline, the bound on the whole command, the digest challenge state, and the SIP
clients (with the tasks that serve them) to close at the end.

Decisions:

- --timeout bounds the whole command, not each wait.  The set-up (DNS, connecting, every
  server tried, challenges answered, ringing) must end by --timeout after the start, or by
  --ring-timeout after the INVITE when a ring test rings longer; an answered call adds its
  --hold; ending the call (the CANCEL's 487, the BYE's answer, both on RFC 3261 timers that
  run to 32 s) waits --timeout as any request does, but never past that bound plus
  ``CLEANUP_ALLOWANCE``.  A cleanup cut short by it is said in the warnings: the far end may
  still think the call is up or ringing.
- The password is asked for at the first challenge (RFC 3261 §22.1), so an unchallenged call
  never prompts; a --password-file siptool cannot read then is siptool's failure (exit 3).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Coroutine
from typing import Any

from siptool.commands.invite_test import CallEvent, CallResult, Direction, InviteOptions
from siptool.commands.sip_common import SipSettings
from siptool.errors import InputError, ParseError
from siptool.net.sip_client import SipClient
from siptool.net.sip_transport import WireLog
from siptool.sip.auth import AuthState, DigestCredentials
from siptool.sip.builders import new_call_id, new_tag
from siptool.sip.message import SipMessage
from siptool.sip.sdp import SessionDescription

__all__ = ["ALLOW", "CLEANUP_ALLOWANCE", "CallState", "describe"]

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, NOTIFY"
# How far past the bound of --timeout (and --hold, --ring-timeout) ending the call may go: the
# wait for the CANCEL's 487 or the BYE's answer (README, --help).
CLEANUP_ALLOWANCE = 1.0


def describe(msg: SipMessage) -> str:
    """A message as the ladder shows it: ``INVITE``, ``180 Ringing (INVITE)``."""
    if msg.method is not None:
        return msg.method
    cseq = None
    with contextlib.suppress(ParseError):
        cseq = msg.cseq
    method = f" ({cseq.method})" if cseq is not None else ""
    return f"{msg.status} {msg.reason or ''}".rstrip() + method


def ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


class CallState:
    """The state one call's steps share (the set-up in invite_call, the dialog in
    invite_dialog)."""

    def __init__(self, options: InviteOptions, log: WireLog, result: CallResult) -> None:
        self.options = options
        self.settings = options.settings
        self.log = log
        self.result = result
        self.call_id = new_call_id("siptool.invalid")
        self.from_tag = new_tag()
        result.call_id = self.call_id
        self.started: float | None = None  # when the first INVITE went out: the ladder's 0
        # Monotonic: when all but the cleanup must be over (pushed back by --hold and by a
        # longer --ring-timeout).
        self.bound = time.monotonic() + self.settings.timeout
        self.auth: AuthState | None = None
        self.invite: SipMessage | None = None  # the last INVITE sent
        self.offer: SessionDescription | None = None  # our SDP offer in it
        self._clients: list[SipClient] = []
        self._tasks: list[asyncio.Task[None]] = []

    # -- the bound --------------------------------------------------------------------------

    @property
    def end_by(self) -> float:
        """When the command ends, cleanup included."""
        return self.bound + CLEANUP_ALLOWANCE

    def cleanup_deadline(self) -> float:
        """How long a CANCEL or BYE sent now may wait: --timeout, as any request, but never
        past ``end_by``."""
        return min(time.monotonic() + self.settings.timeout, self.end_by)

    def within(self, until: float) -> SipSettings:
        """The settings with --timeout cut to what is left before ``until`` (DNS and connect
        timeouts come from it)."""
        left = max(0.01, until - time.monotonic())
        return dataclasses.replace(self.settings, timeout=min(self.settings.timeout, left))

    # -- the ladder -------------------------------------------------------------------------

    def event(self, when: float, direction: Direction, what: str) -> None:
        base = self.started if self.started is not None else when
        self.result.events.append(CallEvent(ms(when - base), direction, what))

    # -- digest authentication (RFC 3261 §22) -------------------------------------------------

    def authenticate(self, challenge: SipMessage) -> bool:
        """True when the challenged request should be sent again with credentials."""
        result = self.result
        if self.auth is None:
            user = self.settings.user
            password = self._password() if user else None
            if not user or password is None:
                result.error(
                    "auth_required",
                    f"{challenge.status} {challenge.reason or ''}: credentials needed "
                    "(--user and a password via --password-file or SIPTOOL_PASSWORD)",
                )
                return False
            self.auth = AuthState(DigestCredentials(user, password))
        outcome = self.auth.on_challenge(challenge)
        result.auth = self.auth.report()
        if outcome == "retry":
            return True
        if outcome == "wrong_credentials":
            result.error("wrong_credentials", f"{challenge.status}: credentials rejected")
        else:
            result.error("auth_unsupported", self.auth.error or "unsupported challenge")
        return False

    def _password(self) -> str | None:
        """The password; a --password-file siptool cannot read is said first."""
        if self.options.password is None:
            return None
        try:
            return self.options.password()
        except InputError as exc:
            self.result.errors.insert(0, exc)
            return None

    # -- clients and tasks ------------------------------------------------------------------

    def keep(self, client: SipClient) -> SipClient:
        """``client`` is closed by ``close``."""
        self._clients.append(client)
        return client

    async def drop(self, client: SipClient) -> None:
        """Close ``client`` now (a server failed over from)."""
        self._clients.remove(client)
        await client.close()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` beside the call; ``close`` cancels it."""
        self._tasks.append(asyncio.get_running_loop().create_task(work))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for client in {id(c): c for c in self._clients}.values():
            await client.close()
