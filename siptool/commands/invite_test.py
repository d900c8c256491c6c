"""`siptool invite-test`: one real test call, measured.

INVITE with an SDP offer (RFC 3264) from a real RTP socket; 401/407 answered with digest
credentials (RFC 3261 §22); 100/180/183 and the final response timed from the INVITE that got
them; on a 2xx the dialog (RFC 3261 §12) is set up, ACKed as its own transaction (§13.2.2.4,
again for every retransmitted 2xx), held for --hold seconds (optionally sending RTP and counting
what comes back), then ended with BYE, or by the far end's BYE which we answer.  With
--ring-timeout (or at --timeout after a provisional) the INVITE is CANCELled (§9.1) and the
487 it then gets is ACKed by the INVITE transaction itself.

Decisions:

- --timeout bounds the whole command, not each wait.  The set-up (DNS, connecting, every
  server tried, challenges answered, ringing) must end by --timeout after the start, or by
  --ring-timeout after the INVITE when a ring test rings longer; an answered call adds its
  --hold; ending the call (the CANCEL's 487, the BYE's answer, both on RFC 3261 timers that
  run to 32 s) waits --timeout as any request does, but never past that bound plus
  ``CLEANUP_ALLOWANCE``.  A cleanup cut short by it is said in the warnings: the far end may
  still think the call is up or ringing.
- RFC 3263 failover shares the bound: until a server answers at all, it gets an equal share of
  the time left with the servers still to try, so a silent first server cannot eat the time
  of the next.  Once it answered (a 100 will do) the call may use all the time left.

The result object feeds every renderer; nothing here prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from siptool.commands.sip_common import (
    Expectation,
    NatView,
    SipSettings,
    connect,
    local_endpoint,
    nat_view,
    resolve,
)
from siptool.errors import LocalBindError, ParseError, ResolveError, SiptoolError
from siptool.net.resolver import Resolution
from siptool.net.rtp import RtpSession, RtpStats
from siptool.net.sip_client import Outcome, PendingTransaction, SipClient
from siptool.net.sip_transport import Received, SipFlow, WireLog
from siptool.sip.auth import AuthReport, AuthState, DigestCredentials
from siptool.sip.builders import build_request, new_branch, new_call_id, new_tag
from siptool.sip.dialog import Dialog, DialogError, build_response
from siptool.sip.lint import is_private_address
from siptool.sip.message import SipMessage
from siptool.sip.sdp import SessionDescription
from siptool.sip.sdp_offer import AnswerSummary, Codec, build_offer, read_answer
from siptool.sip.target import Target, parse_target
from siptool.sip.transaction import build_cancel
from siptool.sip.uri import format_host

EXIT_OK, EXIT_FAILED, EXIT_NOT_RUN = 0, 1, 3
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, NOTIFY"
# After the hold, how long to keep listening for RTP still on its way back.
RTP_GRACE = 0.2
# How far past the bound of --timeout (and --hold, --ring-timeout) ending the call may go: the
# wait for the CANCEL's 487 or the BYE's answer (README, --help).
CLEANUP_ALLOWANCE = 1.0
CANCEL_CUT_SHORT = "CANCEL sent, no 487 before the timeout: cleanup cut short"
BYE_CUT_SHORT = "BYE sent, no answer before the timeout: cleanup cut short"


@dataclass
class InviteOptions:
    target: Target
    settings: SipSettings
    codecs: list[Codec]
    hold: float = 2.0
    ring_timeout: float | None = None
    expect: Expectation | None = None
    rtp: bool = False
    from_user: str | None = None
    to_user: str | None = None
    media_address: str | None = None
    # Asked on the first 401/407 only, so an unchallenged call never prompts.
    password: Callable[[], str | None] | None = None


@dataclass
class Timings:
    """Milliseconds from sending the INVITE that got them (the last one, after auth)."""

    trying: float | None = None
    ringing: float | None = None
    early_media: float | None = None
    answer: float | None = None
    final: float | None = None
    pdd: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return {
            "trying": self.trying,
            "ringing": self.ringing,
            "early_media": self.early_media,
            "answer": self.answer,
            "final": self.final,
            "pdd": self.pdd,
        }


@dataclass
class CallEvent:
    """One line of the call's ladder: what went which way, when (ms from the first INVITE)."""

    t_ms: float
    direction: str  # "send" / "recv"
    what: str

    def to_dict(self) -> dict[str, Any]:
        return {"t_ms": self.t_ms, "direction": self.direction, "message": self.what}


@dataclass
class CallResult:
    target: str
    resolution: Resolution | None = None
    transport: str | None = None
    address: str | None = None
    call_id: str | None = None
    final_status: int | None = None
    final_reason: str | None = None
    answered: bool = False
    rang: bool = False  # a provisional other than 100 came
    timings: Timings = field(default_factory=Timings)
    cancelled: bool = False
    cancel_reason: str | None = None  # "ring-timeout", "timeout"
    cancel_status: int | None = None
    bye_status: int | str | None = None
    hold_ms: float | None = None
    ack_retransmissions: int = 0
    sdp_answer: AnswerSummary | None = None
    rtp: RtpStats | None = None
    warnings: list[str] = field(default_factory=list)
    nat: NatView = field(default_factory=NatView)
    auth: AuthReport | None = None
    server: str | None = None
    events: list[CallEvent] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    passed: bool = False
    exit_code: int = EXIT_FAILED

    def error(self, code: str, message: str) -> None:
        self.errors.append({"code": code, "message": message})

    def to_dict(self) -> dict[str, Any]:
        auth = self.auth or AuthReport(None, None, None, 0)
        return {
            "target": self.target,
            "resolved": None
            if self.address is None
            else {"transport": self.transport, "address": self.address},
            "call_id": self.call_id,
            "final_status": self.final_status,
            "final_reason": self.final_reason,
            "answered": self.answered,
            "timings_ms": self.timings.to_dict(),
            "cancelled": self.cancelled,
            "cancel_reason": self.cancel_reason,
            "cancel_status": self.cancel_status,
            "bye_status": self.bye_status,
            "hold_ms": self.hold_ms,
            "ack_retransmissions": self.ack_retransmissions,
            "sdp_answer": None if self.sdp_answer is None else self.sdp_answer.to_dict(),
            "rtp": None if self.rtp is None else self.rtp.to_dict(),
            "warnings": self.warnings,
            "nat": self.nat.to_dict(),
            "auth": auth.to_dict(),
            "server": self.server,
            "events": [e.to_dict() for e in self.events],
        }


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def _same_ip(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a.lower() == b.lower()


def _is_public(ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return not (
        addr.is_loopback
        or addr.is_link_local
        or addr.is_unspecified
        or addr.is_multicast
        or is_private_address(ip)
    )


def private_address_warnings(
    peer_ip: str, contact_host: str | None, sdp_host: str | None
) -> list[str]:
    """A public signalling peer whose answer points at a private address: the classic
    far-end NAT problem (ACK/BYE or audio sent to an address nobody can reach)."""
    if not _is_public(peer_ip):
        return []
    out = []
    if contact_host and is_private_address(contact_host):
        out.append(
            f"the answer's Contact has the private address {contact_host} while the peer "
            f"{peer_ip} is public: ACK and BYE may not reach it (far-end NAT)"
        )
    if sdp_host and is_private_address(sdp_host):
        out.append(
            f"the SDP answer's c= has the private address {sdp_host} while the peer {peer_ip} "
            "is public: audio toward it will be lost (far-end NAT, no media relay)"
        )
    return out


def _no_rtp_reason(answer: AnswerSummary | None) -> str | None:
    """Why the answer gives no address to send the test RTP to, or None when it does."""
    if answer is None or answer.address is None or not answer.port:
        return "no usable media address in the answer"
    if answer.rejected:
        return "the answer rejected the audio stream"
    try:
        address = ipaddress.ip_address(answer.address)
    except ValueError:
        # An FQDN in c= would be looked up, blocking, for every packet.
        return f"the answer's c= {answer.address} is not an IP address"
    if address.is_unspecified:
        # RFC 3264 §8.4: c=0.0.0.0 means "do not send" (sent anyway, it lands on this host).
        return f"the answer puts the call on hold (c={answer.address})"
    if answer.direction in ("sendonly", "inactive"):
        # RFC 3264 §6.1: the answerer will not receive this stream.
        return f"the answer's audio is {answer.direction}"
    return None


class _Call:
    """One test call: the state the steps share."""

    def __init__(self, options: InviteOptions, log: WireLog, result: CallResult) -> None:
        self.options = options
        self.settings = options.settings
        self.log = log
        self.result = result
        self.flow: SipFlow | None = None
        self.client: SipClient | None = None
        self.dialog_client: SipClient | None = None
        self.extra_clients: list[SipClient] = []
        self.rtp: RtpSession | None = None
        self.auth: AuthState | None = None
        self.dialog: Dialog | None = None
        self.invite: SipMessage | None = None
        self.ack_wire: bytes | None = None
        self.offer: SessionDescription | None = None
        self.early_sdp: SessionDescription | None = None
        self.provisional = False  # a 1xx came for the current INVITE
        self.started: float | None = None
        self.remote_bye = asyncio.Event()
        self.call_id = new_call_id("siptool.invalid")
        self.from_tag = new_tag()
        self.cseq = 0
        self.tasks: list[asyncio.Task[None]] = []
        result.call_id = self.call_id
        # Monotonic times (module docstring): ``bound`` is when all but the cleanup must be
        # over (pushed back by --hold and a longer --ring-timeout); ``share_end`` is when the
        # current server, silent so far, is given up for the next one (RFC 3263).
        self.bound = time.monotonic() + self.settings.timeout
        self.share_end = self.bound
        self.heard = False  # the current server sent something

    # -- the bound ------------------------------------------------------------------------

    @property
    def end_by(self) -> float:
        """When the command ends, cleanup included."""
        return self.bound + CLEANUP_ALLOWANCE

    def cleanup_deadline(self) -> float:
        """How long a CANCEL or BYE sent now may wait: --timeout, as any request, but never
        past ``end_by``."""
        return min(time.monotonic() + self.settings.timeout, self.end_by)

    def _within(self, until: float) -> SipSettings:
        """The settings with --timeout cut to what is left before ``until`` (DNS and connect
        timeouts come from it)."""
        left = max(0.01, until - time.monotonic())
        return dataclasses.replace(self.settings, timeout=min(self.settings.timeout, left))

    # -- bookkeeping ------------------------------------------------------------------------

    def event(self, when: float, direction: str, what: str) -> None:
        base = self.started if self.started is not None else when
        self.result.events.append(CallEvent(_ms(when - base), direction, what))

    @staticmethod
    def describe(msg: SipMessage) -> str:
        if msg.method is not None:
            return msg.method
        cseq = None
        with contextlib.suppress(ParseError):
            cseq = msg.cseq
        method = f" ({cseq.method})" if cseq is not None else ""
        return f"{msg.status} {msg.reason or ''}".rstrip() + method

    # -- the call -----------------------------------------------------------------------------

    async def run(self) -> None:
        target, result = self.options.target, self.result
        try:
            resolution = await resolve(target, self._within(self.bound))
        except ResolveError as exc:
            result.error(exc.code, exc.message)
            return
        result.resolution = resolution
        remaining = list(resolution.candidates)
        while remaining:
            if time.monotonic() >= self.bound:
                result.error(
                    "timeout",
                    f"--timeout {self.settings.timeout:g} s over before "
                    + ", ".join(c.hostport for c in remaining)
                    + " could be tried",
                )
                return
            # Each server still to try gets an equal share of the time left to connect.
            share = (self.bound - time.monotonic()) / len(remaining)
            _, tried = await connect(
                target,
                self._within(time.monotonic() + share),
                self.log,
                Resolution(target, remaining, resolution.path),
            )
            for candidate, attempt in tried:
                remaining.remove(candidate)
                if isinstance(attempt, SiptoolError):
                    result.error(attempt.code, f"{candidate.hostport}: {attempt.message}")
            last = tried[-1][1] if tried else None
            if not isinstance(last, SipFlow):
                return
            self.flow = flow = last
            result.transport, result.address = tried[-1][0].transport, tried[-1][0].hostport
            result.nat = nat_view(flow, None)
            # The client owns the flow from here on: close() closes it if the RTP bind fails.
            self.client = self._new_client(flow)
            self.rtp = await RtpSession.open(flow.local[0])
            self.client.on_unmatched_response = self._unmatched
            # ... and until it answers at all, a share of the time left to answer.
            self.heard = False
            self.share_end = time.monotonic() + (self.bound - time.monotonic()) / (
                len(remaining) + 1
            )
            errors_before = len(result.errors)
            final = await self._invite_until_final()
            silent = final is None and not self.provisional and result.auth is None
            new_errors = result.errors[errors_before:]
            if (
                silent
                and remaining
                and new_errors
                and new_errors[-1]["code"] in ("timeout", "transport_error")
            ):
                # RFC 3263 §4.3: no answer at all from this server (timeout or transport
                # error): the call goes to the next one in the resolution's order.
                new_errors[-1]["message"] = f"{result.address}: {new_errors[-1]['message']}"
                self.rtp.close()
                self.rtp = None
                # The next INVITE offers the next RTP socket (port, local address).
                self.offer = None
                await self.client.close()
                self.client = None
                self.started = None
                continue
            if final is None or final.status is None or not 200 <= final.status < 300:
                return
            await self._answered(final)
            return

    def _new_client(self, flow: SipFlow) -> SipClient:
        client = SipClient(flow, self.settings.timers)
        self.tasks.append(asyncio.get_running_loop().create_task(self._serve(client)))
        return client

    def abandon(self) -> None:
        """Interrupted (Ctrl-C): leave no call up at the far end.  Best effort, nothing is
        awaited: BYE an answered call, CANCEL a ringing one."""
        result = self.result
        with contextlib.suppress(Exception):
            dialog, client = self.dialog, self.dialog_client or self.client
            if dialog is not None and client is not None and self.ack_wire is not None:
                if result.bye_status is None and not self.remote_bye.is_set():
                    bye = dialog.request("BYE", local_endpoint(client.flow).via(new_branch()))
                    client.flow.send(bye.serialize())
                    result.error("interrupted", "interrupted: the call was hung up with BYE")
            elif self.invite is not None and self.provisional and result.final_status is None:
                assert self.client is not None
                self.client.flow.send(build_cancel(self.invite).serialize())
                result.error("interrupted", "interrupted while ringing: CANCEL sent")

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.rtp is not None:
            self.rtp.close()
        for client in {
            id(c): c for c in [self.client, self.dialog_client, *self.extra_clients] if c
        }.values():
            await client.close()

    # -- INVITE -------------------------------------------------------------------------------

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
        from_user = self.options.from_user or self.settings.user or "siptool"
        from_uri = f"{scheme}:{from_user}@{format_host(target.host)}"
        return request_uri, from_uri, to_uri

    def _build_invite(self) -> SipMessage:
        flow, rtp = self.flow, self.rtp
        assert flow is not None and rtp is not None
        if self.offer is None:
            media_host = self.options.media_address or flow.local[0]
            self.offer = build_offer(media_host, rtp.port, self.options.codecs)
        local = local_endpoint(flow)
        request_uri, from_uri, to_uri = self._uris()
        self.cseq += 1
        contact_user = self.options.from_user or self.settings.user or "siptool"
        invite = build_request(
            "INVITE",
            request_uri,
            local=local,
            from_uri=from_uri,
            from_tag=self.from_tag,
            to_uri=to_uri,
            call_id=self.call_id,
            cseq=self.cseq,
            contact=f"<{local.contact_uri(contact_user)}>",
            extra=[("Allow", ALLOW)],
            body=self.offer.to_bytes(),
            content_type="application/sdp",
        )
        if self.auth is not None:
            self.auth.apply(invite)
        return invite

    async def _invite_until_final(self) -> SipMessage | None:
        """Send the INVITE (again after each challenge) until a final response that is not
        a challenge we can answer; None when there is none (the error is recorded)."""
        while True:
            invite = self._build_invite()
            self.invite = invite
            final = await self._one_invite(invite)
            if final is None:
                return None
            if final.status in (401, 407) and self._authenticate(final):
                continue
            return final

    def _authenticate(self, challenge: SipMessage) -> bool:
        """True when the request should be sent again with credentials."""
        result = self.result
        if self.auth is None:
            user = self.settings.user
            password = self.options.password() if self.options.password and user else None
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

    async def _one_invite(self, invite: SipMessage) -> SipMessage | None:
        client, flow, result = self.client, self.flow, self.result
        assert client is not None and flow is not None
        pending = client.start(invite)
        t0 = pending.sent_at
        if self.started is None:
            self.started = t0
        self.event(t0, "send", "INVITE" + (" (with credentials)" if self.auth else ""))
        result.timings = timings = Timings()
        ring_at = None if self.options.ring_timeout is None else t0 + self.options.ring_timeout
        # Silent so far, the server has its share of the time left; once it answered, all of
        # it, and a ring test rings as long as it was told to, even past --timeout.
        give_up = self.bound if self.heard else self.share_end
        provisional = self.provisional = False
        first_18x: float | None = None
        cancel: asyncio.Task[Outcome] | None = None
        while True:
            if cancel is None and provisional and ring_at is not None:
                wait_until = min(ring_at, give_up)
            else:
                wait_until = give_up
            outcome = await pending.next(wait_until)
            received = outcome.received
            if outcome.kind == "provisional" and received is not None:
                msg = received.message
                self.event(received.time, "recv", self.describe(msg))
                self._first_response(msg)
                self.heard = True
                if cancel is None:
                    if ring_at is not None:
                        self.bound = max(self.bound, ring_at)
                    give_up = self.bound
                provisional = self.provisional = True
                t = pending.rtt_ms(received)
                status = msg.status or 0
                if status == 100 and timings.trying is None:
                    timings.trying = t
                elif status == 180 and timings.ringing is None:
                    timings.ringing = t
                elif status == 183 and timings.early_media is None:
                    timings.early_media = t
                if status != 100 and first_18x is None:
                    first_18x = t
                    result.rang = True
                with contextlib.suppress(ParseError):
                    self.early_sdp = msg.sdp or self.early_sdp
                continue
            if outcome.kind == "final" and received is not None:
                msg = received.message
                self.event(received.time, "recv", self.describe(msg))
                self._first_response(msg)
                self.heard = True
                t = pending.rtt_ms(received)
                timings.final = t
                timings.pdd = first_18x if first_18x is not None else t
                result.final_status, result.final_reason = msg.status, msg.reason
                result.server = msg.header("Server") or msg.header("User-Agent")
                if msg.status is not None and 200 <= msg.status < 300:
                    timings.answer = t
                    result.answered = True
                elif msg.status and msg.status >= 300:
                    self.event(time.monotonic(), "send", "ACK (by the INVITE transaction)")
                if cancel is not None:
                    await self._cancel_done(cancel, msg)
                return msg
            if outcome.kind == "transport_error":
                result.error("transport_error", outcome.error or "transport failure")
                return None
            if outcome.kind == "dropped":
                # The final response came and could not be read (too large, malformed).
                result.error(outcome.error_code, outcome.error or "the answer was dropped")
                code = outcome.dropped.status if outcome.dropped is not None else None
                if code is not None and 200 <= code < 300:
                    result.warnings.append(
                        "the far end answered but its 2xx could not be read: no ACK or BYE was "
                        "sent, it may keep the call up until it gives up on the ACK "
                        "(RFC 3261 §13.3.1.4)"
                    )
                if cancel is not None:
                    await self._cancel_done(cancel, None)
                return None
            # A deadline passed: ours (ring timeout, --timeout) or Timer B.
            now = time.monotonic()
            if cancel is not None:
                result.error(
                    "timeout", "no final response to the INVITE after CANCEL (RFC 3261 §9.1)"
                )
                await self._cancel_done(cancel, None)
                result.warnings.append(CANCEL_CUT_SHORT)
                return None
            if not provisional:
                result.error(
                    "timeout",
                    f"no answer to the INVITE within {give_up - t0:.3g} s"
                    if outcome.error == "no answer before the timeout"
                    else outcome.error or "no answer",
                )
                return None
            # RFC 3261 §9.1: a provisional came, so the INVITE can be cancelled.
            reason = "ring-timeout" if ring_at is not None and now >= ring_at else "timeout"
            result.cancel_reason = reason
            cancel_request = build_cancel(invite)
            cancel_pending = client.start(cancel_request)
            self.event(cancel_pending.sent_at, "send", f"CANCEL ({reason})")
            # The 487 (and the CANCEL's 200) may take what is left of the bound, and the
            # cleanup allowance: RFC 3261 would wait up to 64*T1 for them.
            give_up = self.cleanup_deadline()
            cancel = asyncio.get_running_loop().create_task(
                self._cancel_outcome(cancel_pending, give_up)
            )

    async def _cancel_outcome(self, pending: PendingTransaction, deadline: float) -> Outcome:
        outcome = await pending.final_outcome(deadline)
        if outcome.received is not None:
            self.event(outcome.received.time, "recv", self.describe(outcome.received.message))
        return outcome

    async def _cancel_done(self, task: asyncio.Task[Outcome], final: SipMessage | None) -> None:
        """Collect the CANCEL's own response and say whether the CANCEL took effect."""
        result = self.result
        wait = min(1.0, max(0.0, self.end_by - time.monotonic())) if final else 0.0
        try:
            outcome = await asyncio.wait_for(asyncio.shield(task), wait)
        except TimeoutError:
            task.cancel()
            outcome = Outcome("timeout", error="no response to CANCEL")
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

    # -- after a 2xx ------------------------------------------------------------------------

    async def _answered(self, final: SipMessage) -> None:
        result, invite = self.result, self.invite
        assert invite is not None and self.flow is not None and self.rtp is not None
        try:
            dialog = Dialog.from_response(invite, final)
        except DialogError as exc:
            result.error(exc.code, exc.message)
            return
        self.dialog = dialog
        result.warnings += dialog.warnings
        if dialog.strict_routing:
            result.warnings.append(
                f"the first Record-Route {dialog.route_set[0]} has no ;lr: strict routing "
                "(RFC 2543) was used for ACK and BYE"
            )
        self._read_answer(final)
        # Answered while we were cancelling: hang up at once.
        hold = 0.0 if result.cancel_reason is not None else self.options.hold
        self.bound += hold
        client = await self._dialog_client(dialog)
        self.dialog_client = client
        ack = dialog.ack(invite, local_endpoint(client.flow).via(new_branch()))
        self.ack_wire = ack.serialize()
        try:
            client.flow.send(self.ack_wire)
        except SiptoolError as exc:
            result.error("transport_error", f"sending the ACK: {exc.message}")
            return
        self.event(time.monotonic(), "send", "ACK")
        # A slow connection to the dialog's next hop comes out of the hold, not the bound.
        await self._hold(min(hold, max(0.0, self.bound - time.monotonic())))
        if not self.remote_bye.is_set():
            await self._bye(dialog, client)

    def _read_answer(self, final: SipMessage) -> None:
        result, flow = self.result, self.flow
        assert flow is not None
        sdp = None
        try:
            sdp = final.sdp
        except ParseError as exc:
            result.warnings.append(f"the SDP answer does not parse: {exc.message}")
        else:
            if sdp is None and self.early_sdp is not None:
                # Without 100rel the 18x's SDP is only a preview, but it is the answer a
                # phone that leaves it out of the 2xx means (RFC 3261 §13.2.1).
                sdp = self.early_sdp
                result.warnings.append("the 2xx has no SDP; the 18x's was used as the answer")
            elif sdp is None:
                result.warnings.append("the 2xx carries no SDP answer (RFC 3264 §4)")
        contact_host = None
        with contextlib.suppress(ParseError, IndexError):
            contact_host = final.contacts[0].uri.host
        if sdp is not None:
            result.sdp_answer = read_answer(sdp, self.options.codecs)
            result.warnings += result.sdp_answer.warnings
        result.warnings += private_address_warnings(
            flow.remote[0],
            contact_host,
            None if result.sdp_answer is None else result.sdp_answer.address,
        )

    async def _dialog_client(self, dialog: Dialog) -> SipClient:
        """The client for ACK and BYE: the INVITE's flow when the next hop is the same peer,
        else a flow to that hop (a Contact elsewhere and no Record-Route)."""
        client, flow, result = self.client, self.flow, self.result
        assert client is not None and flow is not None
        try:
            hop = dialog.next_hop()
            hop_target = parse_target(
                f"{hop.scheme}:{hop.hostport}"
                + (f";transport={hop.transport}" if hop.transport else ""),
                flow.transport_name if hop.transport is None and hop.scheme == "sip" else None,
            )
        except (ParseError, ValueError) as exc:
            result.warnings.append(
                f"cannot read the next hop of the dialog ({exc}); using the INVITE's"
            )
            return client
        transport = hop_target.transport or flow.transport_name
        if (
            hop_target.is_numeric
            and _same_ip(hop_target.host, flow.remote[0])
            and (hop_target.port or (5061 if transport == "tls" else 5060)) == flow.remote[1]
            and transport == flow.transport_name
        ):
            return client
        try:
            resolution = await resolve(hop_target, self._within(self.end_by))
            first = resolution.candidates[0]
            if (
                _same_ip(first.address, flow.remote[0])
                and first.port == flow.remote[1]
                and first.transport == flow.transport_name
            ):
                return client
            _, tried = await connect(hop_target, self._within(self.end_by), self.log, resolution)
        except SiptoolError as exc:
            result.warnings.append(
                f"cannot reach the dialog's next hop {hop.hostport} ({exc.message}); "
                "ACK and BYE sent to the INVITE's peer"
            )
            return client
        last = tried[-1][1] if tried else None
        if not isinstance(last, SipFlow):
            result.warnings.append(
                f"cannot reach the dialog's next hop {hop.hostport}; ACK and BYE sent to the "
                "INVITE's peer"
            )
            return client
        new = self._new_client(last)
        self.extra_clients.append(new)
        result.warnings.append(
            f"ACK and BYE go to {last.remote_text} (the answer's "
            + ("Record-Route" if dialog.route_set else "Contact")
            + f"), not the INVITE's peer {flow.remote_text}"
        )
        return new

    async def _hold(self, hold: float) -> None:
        result, rtp = self.result, self.rtp
        assert rtp is not None
        answer = result.sdp_answer
        sending = False
        if self.options.rtp:
            why_not = _no_rtp_reason(answer)
            if answer is not None and why_not is None:
                assert answer.address is not None and answer.port is not None
                pt = answer.payload_types.get("PCMU", 0)
                if "PCMU" not in answer.payload_types and "PCMA" in answer.payload_types:
                    pt = answer.payload_types["PCMA"]
                rtp.start((answer.address, answer.port), max(hold, 0.02), pt)
                sending = True
            else:
                result.warnings.append(f"{why_not}: no RTP sent")
        start = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.remote_bye.wait(), hold)
        result.hold_ms = _ms(time.monotonic() - start)
        if self.options.rtp:
            grace = min(RTP_GRACE, max(0.0, self.end_by - time.monotonic())) if sending else 0.0
            await rtp.stop(grace)
            result.rtp = rtp.stats()
            if result.rtp.verdict != "ok":
                result.warnings.append(f"RTP: {result.rtp.verdict}")
            elif result.rtp.loss_pct is not None and result.rtp.loss_pct > 5:
                result.warnings.append(f"RTP: {result.rtp.loss_pct:g}% of the packets lost")

    async def _bye(self, dialog: Dialog, client: SipClient) -> None:
        result = self.result
        local = local_endpoint(client.flow)
        if self.auth is not None:
            # A new request flow: credentials only once the BYE itself is challenged.
            self.auth.restart()
        for _ in range(3):  # the BYE, then once per challenge answered
            bye = dialog.request("BYE", local.via(new_branch()))
            if self.auth is not None and self.auth.rounds and result.bye_status in (401, 407):
                self.auth.apply(bye)
            pending = client.start(bye)
            self.event(pending.sent_at, "send", "BYE")
            deadline = self.cleanup_deadline()
            outcome = await pending.final_outcome(deadline)
            if outcome.received is None:
                if self.remote_bye.is_set():
                    return  # the far end hung up meanwhile
                result.error(
                    "bye_failed",
                    f"no final response to the BYE ({outcome.error or 'timeout'})",
                )
                if outcome.kind == "timeout" and deadline >= self.end_by:
                    result.warnings.append(BYE_CUT_SHORT)
                return
            msg = outcome.received.message
            self.event(outcome.received.time, "recv", self.describe(msg))
            result.bye_status = msg.status
            if msg.status in (401, 407) and self._authenticate(msg):
                continue
            return

    # -- what the far end sends us ----------------------------------------------------------

    def _unmatched(self, item: Received) -> bool:
        """A response no transaction takes: a retransmitted 2xx to our INVITE needs our ACK
        again (RFC 3261 §13.2.2.4); a 2xx from another fork is ACKed and hung up."""
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
            or msg.call_id != self.call_id
        ):
            return False
        dialog = self.dialog
        if dialog is None or self.ack_wire is None:
            return True  # the first 2xx is still being handled; its ACK answers this one too
        if to is not None and to.tag == dialog.remote_tag:
            client = self.dialog_client or self.client
            assert client is not None
            with contextlib.suppress(SiptoolError):
                client.flow.send(self.ack_wire)
                self.result.ack_retransmissions += 1
                self.event(item.time, "recv", self.describe(msg) + " again")
                self.event(time.monotonic(), "send", "ACK again")
            return True
        self.tasks.append(asyncio.get_running_loop().create_task(self._hang_up_fork(msg)))
        return True

    async def _hang_up_fork(self, msg: SipMessage) -> None:
        """RFC 3261 §13.2.2.4: each 2xx from another fork is its own dialog: ACK, then BYE."""
        invite, client = self.invite, self.client
        assert invite is not None and client is not None
        try:
            fork = Dialog.from_response(invite, msg)
        except DialogError:
            return
        local = local_endpoint(client.flow)
        self.result.warnings.append(
            f"the INVITE forked: a second 2xx (To tag {fork.remote_tag}) was ACKed and hung up"
        )
        with contextlib.suppress(SiptoolError):
            client.flow.send(fork.ack(invite, local.via(new_branch())).serialize())
            pending = client.start(fork.request("BYE", local.via(new_branch())))
            await pending.final_outcome(self.cleanup_deadline())

    async def _serve(self, client: SipClient) -> None:
        """Answer what the far end sends: its BYE ends the hold."""
        while True:
            item = await client.requests.get()
            with contextlib.suppress(SiptoolError):
                self._answer(client, item)

    def _answer(self, client: SipClient, item: Received) -> None:
        request = item.message
        method = request.method or ""
        if method == "ACK":
            return  # for a 2xx we sent to a re-INVITE, or a stray
        self.event(item.time, "recv", method + " (from the far end)")
        dialog = self.dialog
        in_dialog = dialog is not None and dialog.matches(request)
        status, reason = 481, "Call/Transaction Does Not Exist"
        extra: list[tuple[str, str]] = []
        body = b""
        if method == "CANCEL":
            status, reason = 481, "Call/Transaction Does Not Exist"
        elif in_dialog and method == "BYE":
            status, reason = 200, "OK"
            self.result.bye_status = "remote"
            self.remote_bye.set()
        elif in_dialog and method in ("INVITE", "UPDATE"):
            # A session refresh (RFC 4028) or re-offer: keep the session as it is.
            status, reason = 200, "OK"
            flow = client.flow
            user = self.options.from_user or self.settings.user or "siptool"
            extra = [("Contact", f"<{local_endpoint(flow).contact_uri(user)}>"), ("Allow", ALLOW)]
            if self.offer is not None:
                body = self.offer.to_bytes()
        elif in_dialog and method in ("OPTIONS", "INFO", "NOTIFY"):
            status, reason = 200, "OK"
        elif in_dialog:
            status, reason = 501, "Not Implemented"
            extra = [("Allow", ALLOW)]
        response = build_response(request, status, reason, to_tag=new_tag(), extra=extra, body=body)
        client.send_raw(response)
        self.event(time.monotonic(), "send", f"{status} {reason} ({method})")


def _verdict(options: InviteOptions, result: CallResult) -> None:
    """Whether the check passed, and why not (the exit code follows)."""
    status = result.final_status
    expect = options.expect
    if status is None:
        passed = False
    elif expect is not None:
        passed = expect.accepts(status)
        if not passed:
            result.error(
                "unexpected_status",
                f"unwanted final response {status} {result.final_reason or ''}".rstrip(),
            )
    elif result.cancel_reason == "ring-timeout":
        # A ring test: it passes when the phone rang and the CANCEL took effect.
        passed = (result.cancelled and result.rang) or result.answered
        if not passed:
            what = f"{status} {result.final_reason or ''}".rstrip()
            why = f"the CANCEL did not end the call ({what})"
            if not result.rang:
                why = "no ringing (18x) before the ring timeout"
            result.error("unexpected_status", why)
    else:
        passed = result.answered
        if not passed:
            what = f"{status} {result.final_reason or ''}".rstrip()
            if result.cancel_reason == "timeout":
                what = f"not answered within {options.settings.timeout:g} s (cancelled, {what})"
            result.error("not_answered", f"call not answered: {what}")
    if passed and result.answered:
        if isinstance(result.bye_status, int) and not 200 <= result.bye_status < 300:
            result.error("bye_failed", f"the BYE got {result.bye_status}")
        if any(
            e["code"] in ("bye_failed", "dialog_error", "transport_error") for e in result.errors
        ):
            passed = False
        if result.rtp is not None and result.rtp.verdict != "ok":
            result.error("one_way_audio", f"RTP: {result.rtp.verdict}")
            passed = False
    result.passed = passed
    result.exit_code = EXIT_OK if passed else EXIT_FAILED


async def run_invite(options: InviteOptions, log: WireLog) -> CallResult:
    result = CallResult(str(options.target))
    call = _Call(options, log, result)
    try:
        await call.run()
    except asyncio.CancelledError:
        call.abandon()
        raise
    except LocalBindError as exc:
        result.error(exc.code, exc.message)
        result.exit_code = EXIT_NOT_RUN
        return result
    finally:
        await call.close()
    if call.auth is not None:
        result.auth = call.auth.report()
    _verdict(options, result)
    return result


def nagios_state(
    result: CallResult, warning_ms: float | None, critical_ms: float | None
) -> tuple[int, str, str]:
    """(exit status 0-3, status line text, perfdata); the thresholds apply to the PDD."""
    t = result.timings
    perf = f"pdd={_perf(t.pdd)};{_num(warning_ms)};{_num(critical_ms)};0 answer={_perf(t.answer)}"
    if result.exit_code == EXIT_NOT_RUN:
        return 3, "SIP UNKNOWN - " + "; ".join(e["message"] for e in result.errors), ""
    state = 0
    if not result.passed or (
        t.pdd is not None and critical_ms is not None and t.pdd >= critical_ms
    ):
        state = 2
    elif (t.pdd is not None and warning_ms is not None and t.pdd >= warning_ms) or result.warnings:
        state = 1
    if result.final_status is not None:
        what = f"{result.final_status} {result.final_reason or ''}".rstrip()
        what += f" from {result.target}"
        if result.answered and t.answer is not None:
            what += f", answered in {t.answer:.1f} ms"
        elif result.cancelled:
            what += ", cancelled after ringing"
        if not result.passed and result.errors:
            what += f": {result.errors[-1]['message']}"
        elif result.warnings:
            what += f" ({result.warnings[0]})"
    else:
        what = f"{result.target}: " + (
            result.errors[-1]["message"] if result.errors else "no answer"
        )
    label = ("OK", "WARNING", "CRITICAL", "UNKNOWN")[state]
    return state, f"SIP {label} - {what}", perf


def _perf(value: float | None) -> str:
    return "U" if value is None else f"{value:.1f}ms"


def _num(value: float | None) -> str:
    if value is None or math.isnan(value):
        return ""
    return f"{value:g}"


__all__ = [
    "CallResult",
    "InviteOptions",
    "Timings",
    "nagios_state",
    "private_address_warnings",
    "run_invite",
]
