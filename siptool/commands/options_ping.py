"""`siptool options-ping`: OPTIONS (RFC 3261 §11) to one or many targets, concurrently.

Per target: resolve (RFC 3263), open one flow (failing over to the next candidate when the
first request gets no answer or the transport fails, RFC 3263 §4.3), send ``count`` OPTIONS
``interval`` apart in one dialog-less Call-ID with rising CSeq, and collect replies, RTTs, the
server's identity and the NAT view.  The result object feeds every renderer.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from siptool.commands.nagios import NagiosVerdict, Pinged, Thresholds, ping_verdict, unknown
from siptool.commands.result import Probed, SeveralResult
from siptool.commands.sip_common import (
    Expectation,
    NatView,
    Reached,
    SipSettings,
    check_target,
    local_endpoint,
    nat_view,
)
from siptool.errors import ExitCode, LocalBindError, SiptoolError
from siptool.net.sip_client import OutcomeKind, SipClient
from siptool.net.sip_transport import SipFlow, WireLog
from siptool.sip.builders import build_request, new_call_id, new_tag
from siptool.sip.message import SipMessage
from siptool.sip.target import Target

# Each target holds one socket while it is probed: stay well inside the descriptor limit.
MAX_CONCURRENT_TARGETS = 1000


def _concurrency() -> int:
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return 200
    if soft == resource.RLIM_INFINITY:
        return MAX_CONCURRENT_TARGETS
    return max(1, min(MAX_CONCURRENT_TARGETS, soft - 64))


@dataclass(frozen=True)
class PingOptions:
    targets: tuple[Target, ...]
    settings: SipSettings
    count: int = 1
    interval: float = 1.0
    expect: Expectation | None = None
    resolve_only: bool = False
    thresholds: Thresholds = field(default_factory=Thresholds)


@dataclass
class Reply:
    seq: int
    status: int | None
    reason: str | None
    rtt_ms: float | None
    retransmitted: bool = False
    error: str | None = None
    error_code: str = "timeout"

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "status": self.status,
            "reason": self.reason,
            "rtt_ms": self.rtt_ms,
            "retransmitted": self.retransmitted,
            "error": self.error,
        }


@dataclass
class ServerInfo:
    user_agent: str | None = None
    allow: list[str] | None = None
    supported: list[str] | None = None
    accept: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_agent": self.user_agent,
            "allow": self.allow,
            "supported": self.supported,
            "accept": self.accept,
        }


@dataclass
class Stats:
    sent: int = 0
    received: int = 0
    rtts: list[float] = field(default_factory=list)

    @property
    def loss_pct(self) -> float | None:
        return None if not self.sent else round(100.0 * (self.sent - self.received) / self.sent, 1)

    def to_dict(self) -> dict[str, Any]:
        r = self.rtts
        if not r:
            mean = stddev = None
        else:
            mean = math.fsum(r) / len(r)
            # Population deviation, as ping's mdev (statistics.pstdev is exact but slow).
            stddev = round(math.sqrt(math.fsum((x - mean) ** 2 for x in r) / len(r)), 3)
            mean = round(mean, 3)
        return {
            "sent": self.sent,
            "received": self.received,
            "loss_pct": self.loss_pct,
            "rtt_min_ms": min(r) if r else None,
            "rtt_avg_ms": mean,
            "rtt_max_ms": max(r) if r else None,
            "rtt_stddev_ms": stddev,
        }


@dataclass
class TargetResult(Reached, Probed):
    replies: list[Reply] = field(default_factory=list)
    stats: Stats = field(default_factory=Stats)
    server: ServerInfo = field(default_factory=ServerInfo)
    nat: NatView = field(default_factory=NatView)
    strays: int = 0
    alive: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "resolved": self.resolved,
            "resolution": None if self.resolution is None else self.resolution.to_dict(),
            "replies": [r.to_dict() for r in self.replies],
            "stats": self.stats.to_dict(),
            "server": self.server.to_dict(),
            "nat": self.nat.to_dict(),
            "tls": None if self.tls is None else self.tls.to_dict(),
            "alive": self.alive,
            "strays": self.strays,
            "errors": [e.to_dict() for e in self.errors],
        }

    @property
    def last_status(self) -> Reply | None:
        """The last reply that carried a status, if any."""
        return next((r for r in reversed(self.replies) if r.status is not None), None)

    @property
    def name(self) -> str:
        return self.target


@dataclass
class PingResult(SeveralResult):
    targets: list[TargetResult]
    _: KW_ONLY
    resolve_only: bool = False

    @property
    def probed(self) -> list[TargetResult]:
        return self.targets


def _split_list(msg: SipMessage, name: str) -> list[str] | None:
    values = msg.header_values(name)
    if not values:
        return None
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def server_info(msg: SipMessage) -> ServerInfo:
    return ServerInfo(
        user_agent=msg.header("Server") or msg.header("User-Agent"),
        allow=_split_list(msg, "Allow"),
        supported=_split_list(msg, "Supported"),
        accept=_split_list(msg, "Accept"),
    )


def _options_request(
    target: Target, flow: SipFlow, call_id: str, tag: str, seq: int, settings: SipSettings
) -> SipMessage:
    local = local_endpoint(flow)
    request_uri = target.uri.to_text() if not target.uri.headers else str(target.uri).split("?")[0]
    from_user = settings.user or "siptool"
    return build_request(
        "OPTIONS",
        request_uri,
        local=local,
        from_uri=f"sip:{from_user}@{local.hostport}",
        from_tag=tag,
        to_uri=request_uri,
        call_id=call_id,
        cseq=seq,
        contact=f"<{local.contact_uri(from_user)}>",
        extra=[("Accept", "application/sdp")],
        knobs=settings.knobs,
    )


ReplyCallback = Callable[[TargetResult, Reply], None]


async def ping_target(
    target: Target, options: PingOptions, log: WireLog, on_reply: ReplyCallback | None = None
) -> TargetResult:
    result = TargetResult(str(target))
    dialog = _PingDialog(new_call_id("siptool.invalid"), new_tag())

    def ping_over(flow: SipFlow, more: bool) -> Awaitable[SiptoolError | None]:
        return _ping_over(flow, target, options, dialog, result, on_reply, can_fail_over=more)

    await check_target(
        target, options.settings, log, result, None if options.resolve_only else ping_over
    )
    if options.resolve_only or result.resolution is None:
        return result
    statuses = [r.status for r in result.replies if r.status is not None]
    expect = options.expect
    result.alive = bool(statuses) and all(expect is None or expect.accepts(s) for s in statuses)
    if statuses and not result.alive:
        result.errors.append(
            SiptoolError(f"unwanted final response {statuses[-1]}", code="unexpected_status")
        )
    elif not statuses and not result.errors:
        failed = next((r for r in reversed(result.replies) if r.error), None)
        if failed is not None:
            result.errors.append(SiptoolError(str(failed.error), code=failed.error_code))
    return result


@dataclass
class _PingDialog:
    """One Call-ID and From tag per target, CSeq rising across requests (and servers)."""

    call_id: str
    tag: str
    seq: int = 0


async def _ping_over(
    flow: SipFlow,
    target: Target,
    options: PingOptions,
    dialog: _PingDialog,
    result: TargetResult,
    on_reply: ReplyCallback | None,
    *,
    can_fail_over: bool,
) -> SiptoolError | None:
    """Ping over one flow.  With ``can_fail_over``, returns the error when the server never
    answered the first request (the caller tries the next candidate); else None."""
    settings = options.settings
    client = SipClient(flow, settings.timers)
    result.nat = NatView()
    try:
        for n in range(options.count):
            if n:
                await asyncio.sleep(options.interval)
            dialog.seq += 1
            request = _options_request(
                target, flow, dialog.call_id, dialog.tag, dialog.seq, settings
            )
            pending = client.start(request)
            outcome = await pending.final_outcome(time.monotonic() + settings.timeout)
            code = outcome.error_code
            if outcome.received is None and n == 0 and can_fail_over:
                dialog.seq -= 1  # never answered: the next server starts from the same CSeq
                return SiptoolError(outcome.error or "no answer", code=code)
            result.stats.sent += 1
            if outcome.received is not None:
                msg = outcome.received.message
                rtt = pending.rtt_ms(outcome.received)
                reply = Reply(dialog.seq, msg.status, msg.reason, rtt, pending.retransmissions > 0)
                result.stats.received += 1
                result.stats.rtts.append(rtt)
                if result.server.user_agent is None and result.server.allow is None:
                    result.server = server_info(msg)
                if result.nat.reflexive is None:
                    result.nat = nat_view(flow, msg)
            else:
                reply = Reply(dialog.seq, None, None, None, error=outcome.error, error_code=code)
            result.replies.append(reply)
            if on_reply is not None:
                on_reply(result, reply)
            if outcome.kind is OutcomeKind.TRANSPORT_ERROR and flow.reliable:
                break  # the connection is gone; the rest would fail the same way
    finally:
        result.strays += client.strays
        if result.nat.local is None:
            result.nat = nat_view(flow, None)
        await client.close()
    return None


async def run_ping(options: PingOptions, on_reply: ReplyCallback | None = None) -> PingResult:
    """Ping every target concurrently; ``on_reply`` sees each reply (or timeout) as it comes."""
    log = WireLog(options.settings.verbose)
    limit = asyncio.Semaphore(_concurrency())

    async def one(target: Target) -> TargetResult:
        async with limit:
            return await ping_target(target, options, log, on_reply)

    try:
        results = await asyncio.gather(*(one(t) for t in options.targets))
    except LocalBindError as exc:
        result = PingResult([], exit_code=ExitCode.NOT_RUN, errors=[exc])
    else:
        if options.resolve_only:
            ok = all(r.resolution is not None for r in results)
        else:
            ok = all(r.alive for r in results)
        code = ExitCode.OK if ok else ExitCode.FAILED
        result = PingResult(list(results), exit_code=code)
    result.resolve_only = options.resolve_only
    result.nagios = nagios_verdict(result, options.thresholds)
    return result


def nagios_verdict(result: PingResult, limits: Thresholds) -> NagiosVerdict:
    """The --nagios line: the worst target's state, every target's summary and perfdata."""
    if not result.targets:
        return unknown("SIP", result.errors)
    return ping_verdict("SIP", map(_pinged, result.targets), limits)


def _pinged(t: TargetResult) -> Pinged:
    s = t.stats.to_dict()
    avg = s["rtt_avg_ms"]
    if t.replies and t.replies[-1].status is not None:
        last = t.replies[-1]
        what = f"{last.status} {last.reason or ''}".rstrip() + f" from {t.target}"
        if avg is not None:
            what += f" in {avg:.1f} ms"
    else:
        what = f"{t.target}: {t.failure}"
    return Pinged(t.alive, avg, s["loss_pct"], what)
