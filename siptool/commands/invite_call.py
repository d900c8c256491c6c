"""`siptool invite-test`: one real test call, measured; this module sets it up.

INVITE with an SDP offer (RFC 3264) from a real RTP socket; 401/407 answered with digest
credentials (RFC 3261 §22); 100/180/183 and the final response timed from the INVITE that got
them; on a 2xx the call goes on in invite_dialog (ACK, hold, BYE).  With --ring-timeout (or at
--timeout after a provisional) the INVITE is CANCELled (§9.1) and the 487 it then gets is ACKed
by the INVITE transaction itself.  ``run_invite`` fills a ``CallResult``
(commands/invite_test.py) and judges it.

Decisions:

- The bound on the whole command (--timeout, --ring-timeout, --hold and the cleanup allowance)
  is kept in invite_state.
- RFC 3263 failover (net/failover.py) shares the bound: until a server answers at all, it
  gets an equal share of the time left with the servers still to try, to connect and then to
  answer, so a silent first server cannot eat the time of the next.  Once it answered (a 100
  will do) the call may use all the time left, and any answer ends the search (§4.3).
- Interrupted (Ctrl-C), the call is left as it should be: an answered call is hung up with
  BYE, a ringing one CANCELled, best effort and without waiting, before the runner says
  "interrupted" (exit 130).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from siptool.addr import format_host
from siptool.commands.invite_dialog import CallDialog
from siptool.commands.invite_state import ALLOW, CallState, describe
from siptool.commands.invite_test import (
    CallResult,
    CancelReason,
    Direction,
    InviteOptions,
    Timings,
    judge,
    nagios_verdict,
)
from siptool.commands.sip_common import flow_opener, local_endpoint, nat_view, resolve
from siptool.errors import ExitCode, LocalBindError, ParseError, ResolveError
from siptool.net.failover import Failover, Opened
from siptool.net.resolver import Candidate
from siptool.net.rtp import RtpSession
from siptool.net.sip_client import Outcome, OutcomeKind, PendingTransaction, SipClient
from siptool.net.sip_transport import Received, SipFlow, WireLog
from siptool.sip.builders import build_request
from siptool.sip.message import SipMessage
from siptool.sip.sdp import SessionDescription
from siptool.sip.sdp_offer import build_offer
from siptool.sip.transaction import build_cancel

__all__ = ["CANCEL_CUT_SHORT", "Call", "run_invite"]

# How long the CANCEL's own response is awaited once the INVITE got its final response.
CANCEL_RESPONSE_WAIT = 1.0
CANCEL_CUT_SHORT = "CANCEL sent, no 487 before the timeout: cleanup cut short"


async def run_invite(options: InviteOptions) -> CallResult:
    """Place the call, then judge it (``judge``, ``nagios_verdict``)."""
    result = CallResult(str(options.target))
    call = Call(options, WireLog(options.settings.verbose), result)
    not_run = False
    try:
        await call.run()
    except asyncio.CancelledError:
        call.abandon()
        raise
    except LocalBindError as exc:
        result.errors.append(exc)
        not_run = True
    finally:
        await call.close()
    if not_run:
        result.exit_code = ExitCode.NOT_RUN
    else:
        if call.state.auth is not None:
            result.auth = call.state.auth.report()
        judge(options, result)
    result.nagios = nagios_verdict(result, options.thresholds)
    return result


@dataclass
class _InviteWait:
    """One INVITE transaction being waited on."""

    invite: SipMessage
    pending: PendingTransaction
    ring_at: float | None  # when a ring test CANCELs
    give_up: float  # when the wait for its next response ends
    first_18x: float | None = None  # ms
    cancel: asyncio.Task[Outcome] | None = None  # the CANCEL's own transaction, once sent


class Call:
    """The set-up of one test call: DNS, RFC 3263 failover, the INVITE transactions (again
    after each challenge), the CANCEL; on a 2xx the call goes on in ``CallDialog``."""

    def __init__(self, options: InviteOptions, log: WireLog, result: CallResult) -> None:
        self.state = state = CallState(options, log, result)
        self.options = options
        self.result = result
        self.dialog = CallDialog(state)
        self.servers: Failover | None = None
        self.flow: SipFlow | None = None
        self.client: SipClient | None = None
        self.rtp: RtpSession | None = None
        self.early_sdp: SessionDescription | None = None
        self.provisional = False  # a 1xx came for the current INVITE
        self.cseq = 0
        # When the current server, silent so far, is given up for the next one (RFC 3263).
        self.share_end = state.bound
        self.heard = False  # the current server sent something

    def _servers_left(self) -> int:
        """The servers still to try after the current one."""
        return 0 if self.servers is None else len(self.servers.left)

    def _share_of_the_bound(self) -> float:
        """When the current server's equal share of the time left ends."""
        now = time.monotonic()
        return now + (self.state.bound - now) / (self._servers_left() + 1)

    # -- RFC 3263 failover ----------------------------------------------------------------

    async def run(self) -> None:
        state, result = self.state, self.result
        try:
            target = state.settings.first_hop(self.options.target)
            resolution = await resolve(target, state.within(state.bound))
        except ResolveError as exc:
            result.errors.append(exc)
            return
        result.resolution = resolution
        self.servers = servers = Failover(
            resolution, self._open_flow, result.errors, prefix_errors=True
        )
        while True:
            if time.monotonic() >= state.bound and servers.more:
                result.error(
                    "timeout",
                    f"--timeout {state.settings.timeout:g} s over before "
                    + ", ".join(c.hostport for c in servers.left)
                    + " could be tried",
                )
                return
            opened = await servers.next_flow()
            if opened is None or not await self._call_over(opened):
                return

    async def _open_flow(self, candidate: Candidate) -> SipFlow:
        """A flow to one server, within its share of the time left to connect."""
        share = self.state.within(self._share_of_the_bound()).timeout
        return await flow_opener(self.state.settings, self.state.log, connect_timeout=share)(
            candidate
        )

    async def _call_over(self, opened: Opened) -> bool:
        """The call over one server's flow.  True when that server never answered at all
        (a timeout or transport error) and another is left to try: RFC 3263 §4.3."""
        result, flow, candidate = self.result, opened.flow, opened.candidate
        self.flow = flow
        result.reach(candidate, flow)
        result.nat = nat_view(flow, None)
        # The client owns the flow from here on: close() closes it if the RTP bind fails.
        self.client = client = self.dialog.new_client(flow)
        self.rtp = await RtpSession.open(flow.local[0])
        client.on_unmatched_response = self.dialog.unmatched
        # ... and until it answers at all, a share of the time left to answer.
        self.heard = False
        self.share_end = self._share_of_the_bound()
        errors_before = len(result.errors)
        final = await self._invite_until_final()
        silent = final is None and not self.provisional and result.auth is None
        last = result.errors[-1] if len(result.errors) > errors_before else None
        if (
            silent
            and self._servers_left()
            and last is not None
            and last.code in ("timeout", "transport_error")
        ):
            result.errors[-1] = last.prefixed(candidate.hostport)
            await self._leave_server(client)
            return True
        if final is not None and final.status is not None and 200 <= final.status < 300:
            await self.dialog.answered(final, client, self.rtp, self.early_sdp)
        return False

    async def _leave_server(self, client: SipClient) -> None:
        """Drop a silent server's flow and RTP socket; the next INVITE offers the next RTP
        socket (port, local address)."""
        assert self.rtp is not None
        self.rtp.close()
        self.rtp = None
        self.state.offer = None
        await self.state.drop(client)
        self.client = None
        self.state.started = None

    def abandon(self) -> None:
        """Interrupted (Ctrl-C): leave no call up at the far end.  Best effort, nothing is
        awaited: BYE an answered call, CANCEL a ringing one."""
        state, result = self.state, self.result
        with contextlib.suppress(Exception):
            if self.dialog.abandon():
                return
            if state.invite is not None and self.provisional and result.final_status is None:
                assert self.client is not None
                self.client.flow.send(build_cancel(state.invite).serialize())
                result.error("interrupted", "interrupted while ringing: CANCEL sent")

    async def close(self) -> None:
        if self.rtp is not None:
            self.rtp.close()
        await self.state.close()

    # -- INVITE -----------------------------------------------------------------------------

    def _uris(self) -> tuple[str, str, str]:
        """(Request-URI, From URI, To URI)."""
        target = self.options.target
        uri = target.uri
        user = self.options.to_user if self.options.to_user is not None else uri.user
        scheme = "sips" if target.secure else "sip"
        params = "".join(f";{k}" if v is None else f";{k}={v}" for k, v in uri.params.items())
        userpart = f"{user}@" if user else ""
        request_uri = f"{scheme}:{userpart}{uri.hostport}{params}"
        to_uri = f"{scheme}:{userpart}{uri.hostport}"
        from_uri = f"{scheme}:{self.options.contact_user}@{format_host(target.host)}"
        return request_uri, from_uri, to_uri

    def _build_invite(self) -> SipMessage:
        flow, rtp = self.flow, self.rtp
        assert flow is not None and rtp is not None
        if self.state.offer is None:
            media_host = self.options.media_address or flow.local[0]
            self.state.offer = build_offer(media_host, rtp.port, list(self.options.codecs))
        local = local_endpoint(flow)
        request_uri, from_uri, to_uri = self._uris()
        self.cseq += 1
        invite = build_request(
            "INVITE",
            request_uri,
            local=local,
            from_uri=from_uri,
            from_tag=self.state.from_tag,
            to_uri=to_uri,
            call_id=self.state.call_id,
            cseq=self.cseq,
            contact=f"<{local.contact_uri(self.options.contact_user)}>",
            extra=[("Allow", ALLOW)],
            body=self.state.offer.to_bytes(),
            content_type="application/sdp",
            knobs=self.state.settings.knobs,
        )
        if self.state.auth is not None:
            self.state.auth.apply(invite)
        return invite

    async def _invite_until_final(self) -> SipMessage | None:
        """Send the INVITE (again after each challenge) until a final response that is not
        a challenge we can answer; None when there is none (the error is recorded)."""
        while True:
            invite = self._build_invite()
            self.state.invite = invite
            final = await self._one_invite(invite)
            if final is None:
                return None
            if final.status in (401, 407) and self.state.authenticate(final):
                continue
            return final

    async def _one_invite(self, invite: SipMessage) -> SipMessage | None:
        """One INVITE transaction to its final response (None when there is none, the
        error recorded), CANCELled when the ring test or the bound says so."""
        client = self.client
        assert client is not None
        pending = client.start(invite)
        if self.state.started is None:
            self.state.started = pending.sent_at
        self.state.event(
            pending.sent_at,
            Direction.SEND,
            "INVITE" + (" (with credentials)" if self.state.auth else ""),
        )
        self.result.timings = Timings()
        ring = self.options.ring_timeout
        # Silent so far, the server has its share of the time left; once it answered, all of
        # it, and a ring test rings as long as it was told to, even past --timeout.
        wait = _InviteWait(
            invite,
            pending,
            ring_at=None if ring is None else pending.sent_at + ring,
            give_up=self.state.bound if self.heard else self.share_end,
        )
        self.provisional = False
        while True:
            outcome = await pending.next(self._next_deadline(wait))
            received = outcome.received
            if outcome.kind is OutcomeKind.PROVISIONAL and received is not None:
                self._on_provisional(wait, received)
            elif outcome.kind is OutcomeKind.FINAL and received is not None:
                return await self._on_final(wait, received)
            elif outcome.kind is OutcomeKind.TRANSPORT_ERROR:
                self.result.error("transport_error", outcome.error or "transport failure")
                return None
            elif outcome.kind is OutcomeKind.DROPPED:
                await self._on_dropped(wait, outcome)
                return None
            # A deadline passed: ours (ring timeout, --timeout) or Timer B.
            elif wait.cancel is not None:
                await self._cancel_unanswered(wait)
                return None
            elif not self.provisional:
                self._no_answer(wait, outcome)
                return None
            else:
                self._send_cancel(wait)

    def _next_deadline(self, wait: _InviteWait) -> float:
        if wait.cancel is None and self.provisional and wait.ring_at is not None:
            return min(wait.ring_at, wait.give_up)
        return wait.give_up

    def _on_provisional(self, wait: _InviteWait, received: Received) -> None:
        result, msg = self.result, received.message
        self.state.event(received.time, Direction.RECV, describe(msg))
        self._first_response(msg)
        self.heard = True
        if wait.cancel is None:
            if wait.ring_at is not None:
                self.state.bound = max(self.state.bound, wait.ring_at)
            wait.give_up = self.state.bound
        self.provisional = True
        t = wait.pending.rtt_ms(received)
        timings = result.timings
        status = msg.status or 0
        if status == 100 and timings.trying is None:
            timings.trying = t
        elif status == 180 and timings.ringing is None:
            timings.ringing = t
        elif status == 183 and timings.early_media is None:
            timings.early_media = t
        if status != 100 and wait.first_18x is None:
            wait.first_18x = t
            result.rang = True
        with contextlib.suppress(ParseError):
            self.early_sdp = msg.sdp or self.early_sdp

    async def _on_final(self, wait: _InviteWait, received: Received) -> SipMessage:
        result, msg = self.result, received.message
        self.state.event(received.time, Direction.RECV, describe(msg))
        self._first_response(msg)
        self.heard = True
        timings = result.timings
        t = timings.final = wait.pending.rtt_ms(received)
        timings.pdd = wait.first_18x if wait.first_18x is not None else t
        result.final_status, result.final_reason = msg.status, msg.reason
        result.server = msg.header("Server") or msg.header("User-Agent")
        if msg.status is not None and 200 <= msg.status < 300:
            timings.answer = t
            result.answered = True
        elif msg.status and msg.status >= 300:
            self.state.event(time.monotonic(), Direction.SEND, "ACK (by the INVITE transaction)")
        if wait.cancel is not None:
            await self._cancel_done(wait.cancel, msg)
        return msg

    async def _on_dropped(self, wait: _InviteWait, outcome: Outcome) -> None:
        """The final response came and could not be read (too large, malformed)."""
        result = self.result
        result.error(outcome.error_code, outcome.error or "the answer was dropped")
        code = outcome.dropped.status if outcome.dropped is not None else None
        if code is not None and 200 <= code < 300:
            result.warnings.append(
                "the far end answered but its 2xx could not be read: no ACK or BYE was "
                "sent, it may keep the call up until it gives up on the ACK "
                "(RFC 3261 §13.3.1.4)"
            )
        if wait.cancel is not None:
            await self._cancel_done(wait.cancel, None)

    async def _cancel_unanswered(self, wait: _InviteWait) -> None:
        """The CANCEL went out and the INVITE's final response never came."""
        assert wait.cancel is not None
        self.result.error("timeout", "no final response to the INVITE after CANCEL (RFC 3261 §9.1)")
        await self._cancel_done(wait.cancel, None)
        self.result.warnings.append(CANCEL_CUT_SHORT)

    def _no_answer(self, wait: _InviteWait, outcome: Outcome) -> None:
        """Nothing at all came for the INVITE."""
        self.result.error(
            "timeout",
            f"no answer to the INVITE within {wait.give_up - wait.pending.sent_at:.3g} s"
            if outcome.error == "no answer before the timeout"
            else outcome.error or "no answer",
        )

    def _send_cancel(self, wait: _InviteWait) -> None:
        """RFC 3261 §9.1: a provisional came, so the INVITE can be CANCELled; its 487 is
        waited for next."""
        ringing_out = wait.ring_at is not None and time.monotonic() >= wait.ring_at
        reason = CancelReason.RING_TIMEOUT if ringing_out else CancelReason.TIMEOUT
        self.result.cancel_reason = reason
        assert self.client is not None
        cancel_pending = self.client.start(build_cancel(wait.invite))
        self.state.event(cancel_pending.sent_at, Direction.SEND, f"CANCEL ({reason.value})")
        # The 487 (and the CANCEL's 200) may take what is left of the bound, and the cleanup
        # allowance: RFC 3261 would wait up to 64*T1 for them.
        wait.give_up = self.state.cleanup_deadline()
        wait.cancel = asyncio.get_running_loop().create_task(
            self._cancel_outcome(cancel_pending, wait.give_up)
        )

    async def _cancel_outcome(self, pending: PendingTransaction, deadline: float) -> Outcome:
        outcome = await pending.final_outcome(deadline)
        if outcome.received is not None:
            self.state.event(
                outcome.received.time, Direction.RECV, describe(outcome.received.message)
            )
        return outcome

    async def _cancel_done(self, task: asyncio.Task[Outcome], final: SipMessage | None) -> None:
        """Collect the CANCEL's own response and say whether the CANCEL took effect."""
        result = self.result
        wait = 0.0
        if final is not None:
            wait = min(CANCEL_RESPONSE_WAIT, max(0.0, self.state.end_by - time.monotonic()))
        try:
            outcome = await asyncio.wait_for(asyncio.shield(task), wait)
        except TimeoutError:
            task.cancel()
            outcome = Outcome(OutcomeKind.TIMEOUT, error="no response to CANCEL")
        if outcome.message is not None:
            result.cancel_status = outcome.message.status
        if final is not None and final.status == 487:
            result.cancelled = True
        elif final is not None and final.status is not None and 200 <= final.status < 300:
            result.warnings.append(
                "the call was answered before the CANCEL took effect; it was hung up with BYE"
            )
        if result.cancel_status is None:
            result.warnings.append("no response to the CANCEL")
        elif result.cancel_status != 200:
            result.warnings.append(f"the CANCEL got {result.cancel_status}, not 200")

    def _first_response(self, msg: SipMessage) -> None:
        if self.result.nat.reflexive is None and self.flow is not None:
            self.result.nat = nat_view(self.flow, msg)
