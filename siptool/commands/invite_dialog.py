"""invite-test once the call is answered, and whatever the far end sends us meanwhile.

On the 2xx the dialog is set up (RFC 3261 §12.1.2), the 2xx ACKed as its own transaction
(§13.2.2.4) toward the dialog's next hop, the call held for --hold (sending RTP with --rtp and
counting what comes back), then ended with BYE (§15.1.1), or by the far end's BYE, which we
answer.

Decisions:

- ACK and BYE go where the route set says (§12.2.1.1): over the INVITE's flow when the next
  hop is that same peer, else over a flow of their own (a Contact elsewhere and no
  Record-Route), opened with the RFC 3263 loop (net/failover.py): the first server that takes
  a flow, since an ACK gets no answer to fail over on.
- Every retransmission of the 2xx gets our ACK again (§13.2.2.4); a 2xx from another fork is
  its own dialog, ACKed and hung up at once.
- The far end's requests are answered in the dialog: its BYE ends the hold, a session refresh
  or re-offer (RFC 4028, RFC 3311) gets our offer back unchanged, OPTIONS (with Allow and
  Accept, RFC 3261 §11.2), INFO and NOTIFY a 200, anything else 501; outside the dialog 481.
  A NOTIFY of the refer package goes to the --refer-to transfer (commands/invite_refer.py),
  and gets 481 when no REFER of ours made its subscription (RFC 6665 §4.1.3).
- A BYE (or REFER) challenged with 401/407 is sent again with credentials (a new request
  flow, §22.2).
- --refer-to: the REFER goes once the hold is over, and the BYE once the transfer's outcome is
  in (RFC 5589 §6), unless the far end hung up first.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence

from siptool.addr import normalize_address
from siptool.commands.invite_media import no_rtp_reason, read_sdp_answer, rtp_payload_type
from siptool.commands.invite_refer import ReferTransfer, is_refer_notify
from siptool.commands.invite_state import ALLOW, CallState, describe, ms
from siptool.commands.invite_test import ByeOutcome, Direction
from siptool.commands.sip_common import flow_opener, local_endpoint, resolve
from siptool.errors import ParseError, SiptoolError
from siptool.net.failover import Failover
from siptool.net.rtp import RtpSession
from siptool.net.sip_client import Outcome, OutcomeKind, SipClient
from siptool.net.sip_transport import Received, SipFlow
from siptool.sip.builders import new_branch, new_tag
from siptool.sip.dialog import Dialog, DialogError, build_response
from siptool.sip.message import SipMessage
from siptool.sip.sdp import SessionDescription
from siptool.sip.target import DEFAULT_PORT, Target, parse_target
from siptool.sip.uri import Uri

__all__ = ["BYE_CUT_SHORT", "CallDialog", "far_end_response"]

# After the hold, how long to keep listening for RTP still on its way back.
RTP_GRACE = 0.2
# More of the test RTP lost than this is worth a warning (the call still passes).
RTP_LOSS_WARNING_PCT = 5.0
# A BYE (or REFER) is sent once, then again once per challenge answered.
REQUEST_ATTEMPTS = 3
BYE_CUT_SHORT = "BYE sent, no answer before the timeout: cleanup cut short"
# A refer NOTIFY of no REFER of ours (RFC 6665 §4.1.3).
NO_SUBSCRIPTION = (481, "Subscription Does Not Exist")


def far_end_response(method: str, in_dialog: bool) -> tuple[int, str]:
    """Our answer to a request the far end sends (see the module's decisions)."""
    if in_dialog and method in ("BYE", "INVITE", "UPDATE", "OPTIONS", "INFO", "NOTIFY"):
        return 200, "OK"
    if in_dialog and method != "CANCEL":
        return 501, "Not Implemented"
    return 481, "Call/Transaction Does Not Exist"


def is_peer(host: str, port: int, transport: str, flow: SipFlow) -> bool:
    """True when ``host:port`` over ``transport`` is where ``flow`` goes."""
    return (
        normalize_address((host, port)) == normalize_address(flow.remote)
        and transport == flow.transport_name
    )


class CallDialog:
    """The dialog side of one call: everything after the 2xx, and every message the far end
    sends that no transaction of ours takes."""

    def __init__(self, state: CallState) -> None:
        self.state = state
        self.result = state.result
        self.dialog: Dialog | None = None
        self.ack_wire: bytes | None = None  # our ACK, sent again for a retransmitted 2xx
        self.invite_client: SipClient | None = None
        self.client: SipClient | None = None  # for ACK and BYE
        self.remote_bye = asyncio.Event()
        refer_to = state.options.refer_to
        self.transfer = None if refer_to is None else ReferTransfer(state, refer_to)

    def new_client(self, flow: SipFlow) -> SipClient:
        """A client over ``flow`` whose incoming requests are answered here."""
        client = self.state.keep(SipClient(flow, self.state.settings.timers))
        self.state.spawn(self._serve(client))
        return client

    # -- after the 2xx ------------------------------------------------------------------------

    async def answered(
        self,
        final: SipMessage,
        invite_client: SipClient,
        rtp: RtpSession,
        early_sdp: SessionDescription | None,
    ) -> None:
        """ACK the 2xx, hold the call, end it."""
        state, result, invite = self.state, self.result, self.state.invite
        assert invite is not None
        self.invite_client = invite_client
        try:
            dialog = self._dialog(invite, final)
        except DialogError as exc:
            result.errors.append(exc)
            return
        self.dialog = dialog
        result.warnings += dialog.warnings
        if dialog.strict_routing:
            result.warnings.append(
                f"the first Record-Route {dialog.route_set[0]} has no ;lr: strict routing "
                "(RFC 2543) was used for ACK and BYE"
            )
        codecs = list(state.options.codecs)
        answer = read_sdp_answer(final, early_sdp, codecs, invite_client.flow.remote[0])
        result.sdp_answer = answer.summary
        result.warnings += answer.warnings
        # Answered while we were cancelling: hang up at once.
        hold = 0.0 if result.cancel_reason is not None else state.options.hold
        state.bound += hold
        client = self.client = await self._dialog_client(dialog, invite_client)
        ack = dialog.ack(invite, local_endpoint(client.flow).via(new_branch()))
        self.ack_wire = ack.serialize()
        try:
            client.flow.send(self.ack_wire)
        except SiptoolError as exc:
            result.error("transport_error", f"sending the ACK: {exc.message}")
            return
        state.event(time.monotonic(), Direction.SEND, "ACK")
        # A slow connection to the dialog's next hop comes out of the hold, not the bound.
        await self._hold(rtp, min(hold, max(0.0, state.bound - time.monotonic())))
        if self.transfer is not None:
            await self._transfer(self.transfer, client)
        if not self.remote_bye.is_set():
            await self._bye()

    async def _transfer(self, transfer: ReferTransfer, client: SipClient) -> None:
        """--refer-to: REFER the call (commands/invite_refer.py), unless it already ended."""
        if self.remote_bye.is_set():
            transfer.not_sent("the far end hung up before the REFER")
            return
        assert self.dialog is not None
        contact = local_endpoint(client.flow).contact_uri(self.state.options.contact_user)
        await transfer.run(self.send_in_dialog, self.dialog.local, f"<{contact}>")

    def abandon(self) -> bool:
        """Interrupted: hang up with BYE, unless the call already ended.  False when there
        is no dialog to hang up (yet)."""
        dialog, client = self.dialog, self.client
        if dialog is None or client is None or self.ack_wire is None:
            return False
        if self.result.bye is ByeOutcome.NOT_ENDED and not self.remote_bye.is_set():
            bye = dialog.request("BYE", local_endpoint(client.flow).via(new_branch()))
            client.flow.send(bye.serialize())
            self.result.error("interrupted", "interrupted: the call was hung up with BYE")
        return True

    async def _dialog_client(self, dialog: Dialog, invite_client: SipClient) -> SipClient:
        """The client for ACK and BYE: the INVITE's when the next hop is the same peer, else
        one over a flow to that hop."""
        state, result, flow = self.state, self.result, invite_client.flow
        hop = self._next_hop(dialog, flow)
        if hop is None:
            return invite_client
        uri, target = hop
        transport = target.transport or flow.transport_name
        port = target.port or DEFAULT_PORT.get(transport, 5060)
        if target.is_numeric and is_peer(target.host, port, transport, flow):
            return invite_client
        within = state.within(state.end_by)
        try:
            resolution = await resolve(target, within)
            first = resolution.candidates[0]
            if is_peer(first.address, first.port, first.transport, flow):
                return invite_client
            servers = Failover(resolution, flow_opener(within, state.log), [])
            opened = await servers.next_flow()
        except SiptoolError as exc:
            result.warnings.append(
                f"cannot reach the dialog's next hop {uri.hostport} ({exc.message}); "
                "ACK and BYE sent to the INVITE's peer"
            )
            return invite_client
        if opened is None:
            result.warnings.append(
                f"cannot reach the dialog's next hop {uri.hostport}; ACK and BYE sent to the "
                "INVITE's peer"
            )
            return invite_client
        result.warnings.append(
            f"ACK and BYE go to {opened.flow.remote_text} (the answer's "
            + ("Record-Route" if dialog.route_set else "Contact")
            + f"), not the INVITE's peer {flow.remote_text}"
        )
        return self.new_client(opened.flow)

    def _next_hop(self, dialog: Dialog, flow: SipFlow) -> tuple[Uri, Target] | None:
        """The dialog's next hop as a target; None, with a warning, when it cannot be read."""
        try:
            hop = dialog.next_hop()
            target = parse_target(
                f"{hop.scheme}:{hop.hostport}"
                + (f";transport={hop.transport}" if hop.transport else ""),
                flow.transport_name if hop.transport is None and hop.scheme == "sip" else None,
            )
        except (ParseError, ValueError) as exc:
            self.result.warnings.append(
                f"cannot read the next hop of the dialog ({exc}); using the INVITE's"
            )
            return None
        return hop, target

    async def _hold(self, rtp: RtpSession, hold: float) -> None:
        """Stay in the call for ``hold`` seconds (less when the far end hangs up), with
        --rtp sending the test RTP and counting what comes back."""
        state, result = self.state, self.result
        answer = result.sdp_answer
        sending = False
        if state.options.rtp:
            why_not = no_rtp_reason(answer)
            if answer is not None and why_not is None:
                assert answer.address is not None and answer.port is not None
                rtp.start((answer.address, answer.port), max(hold, 0.02), rtp_payload_type(answer))
                sending = True
            else:
                result.warnings.append(f"{why_not}: no RTP sent")
        start = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.remote_bye.wait(), hold)
        result.hold_ms = ms(time.monotonic() - start)
        if state.options.rtp:
            grace = min(RTP_GRACE, max(0.0, state.end_by - time.monotonic())) if sending else 0.0
            await rtp.stop(grace)
            result.rtp = stats = rtp.stats()
            if not result.rtp_ok:
                result.warnings.append(f"RTP: {stats.verdict}")
            elif stats.loss_pct is not None and stats.loss_pct > RTP_LOSS_WARNING_PCT:
                result.warnings.append(f"RTP: {stats.loss_pct:g}% of the packets lost")

    async def _bye(self) -> None:
        state, result = self.state, self.result
        outcome, deadline = await self.send_in_dialog("BYE")
        if outcome.received is None:
            if self.remote_bye.is_set():
                return  # the far end hung up meanwhile
            result.error(
                "bye_failed", f"no final response to the BYE ({outcome.error or 'timeout'})"
            )
            if outcome.kind is OutcomeKind.TIMEOUT and deadline >= state.end_by:
                result.warnings.append(BYE_CUT_SHORT)
            return
        result.bye, result.bye_response = ByeOutcome.ANSWERED, outcome.received.message.status

    async def send_in_dialog(
        self,
        method: str,
        *,
        extra: Sequence[tuple[str, str]] = (),
        contact: str | None = None,
        on_sent: Callable[[SipMessage], None] | None = None,
        deadline: Callable[[], float] | None = None,
    ) -> tuple[Outcome, float]:
        """``method`` in the dialog to its final response, sent again with credentials on a
        401/407 (at most ``REQUEST_ATTEMPTS`` sends); the last outcome and the deadline it
        was waited to (``deadline()``, else the cleanup deadline)."""
        state, dialog, client = self.state, self.dialog, self.client
        assert dialog is not None and client is not None
        local = local_endpoint(client.flow)
        if state.auth is not None:
            # A new request flow: credentials only once the request itself is challenged.
            state.auth.restart()
        challenged = False
        outcome, until = Outcome(OutcomeKind.TIMEOUT, error="not sent"), time.monotonic()
        for _ in range(REQUEST_ATTEMPTS):
            request = dialog.request(method, local.via(new_branch()), contact=contact, extra=extra)
            if challenged and state.auth is not None:
                state.auth.apply(request)
            if on_sent is not None:
                on_sent(request)
            pending = client.start(request)
            state.event(pending.sent_at, Direction.SEND, method)
            until = (deadline or state.cleanup_deadline)()
            outcome = await pending.final_outcome(until)
            if outcome.received is None:
                break
            msg = outcome.received.message
            state.event(outcome.received.time, Direction.RECV, describe(msg))
            challenged = msg.status in (401, 407)
            if not challenged or not state.authenticate(msg):
                break
        return outcome, until

    # -- what the far end sends us ----------------------------------------------------------

    def unmatched(self, item: Received) -> bool:
        """A response no transaction takes: a retransmitted 2xx to our INVITE needs our ACK
        again; a 2xx from another fork is ACKed and hung up.  False: not ours."""
        msg = item.message
        try:
            cseq, to = msg.cseq, msg.to
        except ParseError:
            return False
        if (
            msg.status is None
            or not 200 <= msg.status < 300
            or cseq is None
            or cseq.method != "INVITE"
            or msg.call_id != self.state.call_id
        ):
            return False
        dialog, client = self.dialog, self.client
        if dialog is None or client is None or self.ack_wire is None:
            return True  # the first 2xx is still being handled; its ACK answers this one too
        if to is not None and to.tag == dialog.remote_tag:
            with contextlib.suppress(SiptoolError):
                client.flow.send(self.ack_wire)
                self.result.ack_retransmissions += 1
                self.state.event(item.time, Direction.RECV, describe(msg) + " again")
                self.state.event(time.monotonic(), Direction.SEND, "ACK again")
            return True
        self.state.spawn(self._hang_up_fork(msg))
        return True

    def _dialog(self, invite: SipMessage, response: SipMessage) -> Dialog:
        """The dialog of a 2xx (RFC 3261 §12.1.2), with --user-agent on its requests; with
        --proxy and no Record-Route, the proxy stays the first hop of every request in it."""
        dialog = Dialog.from_response(invite, response)
        knobs = self.state.settings.knobs
        dialog.user_agent = knobs.user_agent
        if not dialog.route_set and knobs.route is not None:
            dialog.route_set = [knobs.route]
        return dialog

    async def _hang_up_fork(self, msg: SipMessage) -> None:
        """Each 2xx from another fork is its own dialog: ACK, then BYE."""
        invite, client = self.state.invite, self.invite_client
        assert invite is not None and client is not None
        try:
            fork = self._dialog(invite, msg)
        except DialogError:
            return
        local = local_endpoint(client.flow)
        self.result.warnings.append(
            f"the INVITE forked: a second 2xx (To tag {fork.remote_tag}) was ACKed and hung up"
        )
        with contextlib.suppress(SiptoolError):
            client.flow.send(fork.ack(invite, local.via(new_branch())).serialize())
            pending = client.start(fork.request("BYE", local.via(new_branch())))
            await pending.final_outcome(self.state.cleanup_deadline())

    async def _serve(self, client: SipClient) -> None:
        """Answer what the far end sends: its BYE ends the hold."""
        while True:
            item = await client.requests.get()
            with contextlib.suppress(SiptoolError):
                self._answer(client, item)

    def _answer(self, client: SipClient, item: Received) -> None:
        state, request = self.state, item.message
        method = request.method or ""
        if method == "ACK":
            return  # for a 2xx we sent to a re-INVITE, or a stray
        state.event(item.time, Direction.RECV, method + " (from the far end)")
        in_dialog = self.dialog is not None and self.dialog.matches(request)
        transfer = self.transfer
        if in_dialog and is_refer_notify(request):
            ours = transfer is not None and transfer.sent
            status, reason = NO_SUBSCRIPTION
            if transfer is not None and ours:
                status, reason = transfer.on_notify(item)
        else:
            status, reason = far_end_response(method, in_dialog)
        extra, body = self._response_parts(client, method, status)
        server = state.settings.knobs.user_agent
        response = build_response(
            request, status, reason, to_tag=new_tag(), extra=extra, body=body, server=server
        )
        client.send_raw(response)
        state.event(time.monotonic(), Direction.SEND, f"{status} {reason} ({method})")

    def _response_parts(
        self, client: SipClient, method: str, status: int
    ) -> tuple[list[tuple[str, str]], bytes]:
        """The headers and body of our ``status`` answer to the far end's ``method``."""
        state = self.state
        if status == 200 and method == "BYE":
            self.result.bye = ByeOutcome.REMOTE
            self.remote_bye.set()
        elif status == 200 and method in ("INVITE", "UPDATE"):
            # A session refresh or re-offer: keep the session as it is.
            contact = local_endpoint(client.flow).contact_uri(state.options.contact_user)
            extra = [("Contact", f"<{contact}>"), ("Allow", ALLOW)]
            return extra, b"" if state.offer is None else state.offer.to_bytes()
        elif status == 200 and method == "OPTIONS":
            return [("Allow", ALLOW), ("Accept", "application/sdp")], b""  # RFC 3261 §11.2
        elif status in (405, 501):
            return [("Allow", ALLOW)], b""
        return [], b""
