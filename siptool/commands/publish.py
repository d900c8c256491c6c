"""`siptool publish TARGET --event presence`: PUBLISH (RFC 3903) — publish presence state as
PIDF (RFC 3863), keep the entity-tag, refresh it, remove it.

The run, on one flow and one Call-ID (``RequestSession``; digest challenges answered):

1. the initial PUBLISH with the PIDF body (``sip.pidf.build_pidf``) and Expires (§4.1), unless
   --etag names an earlier run's publication;
2. ``--refresh``: a refresh, no body and ``SIP-If-Match`` (§4.3); with ``--duration S`` the
   publication is kept S seconds, refreshed before it ends (``event_packages.refresh_at``);
3. ``--remove``: Expires: 0 with ``SIP-If-Match`` (§4.5).

Every 2xx's ``SIP-ETag`` replaces the one kept (§4.1: "the ESC ... MUST store the entity-tag"),
and its Expires is the lifetime granted.

Decisions:

- 412 Conditional Request Failed is named with what it means (§6 step 4: the server does not
  know the entity-tag, so the state has to be published anew); 489 Bad Event names the
  package; 423 is answered once with Min-Expires (§6 step 5).
- A 2xx without SIP-ETag (which §6 step 7 requires) is a warning: refresh and remove cannot be
  done then, and say so.
- ``--event`` is any package; the body is siptool's PIDF for presence and --body's otherwise
  (message-summary, dialog-info ... need the user's document).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from siptool.commands.result import CheckResult
from siptool.commands.send import final_verdict
from siptool.commands.sip_common import (
    NatView,
    Reached,
    SipSettings,
    nat_view,
    run_check,
)
from siptool.commands.sip_request import Exchange, RequestSession, TransactionRecord
from siptool.errors import ExitCode, SiptoolError
from siptool.net.sip_transport import SipFlow
from siptool.numbers import decimal_or_none
from siptool.sip.auth import AuthReport
from siptool.sip.event_packages import refresh_at
from siptool.sip.message import SipMessage
from siptool.sip.target import Target

CLEANUP_SECONDS = 1.0  # Ctrl-C with --remove: the removal may take this long


@dataclass(frozen=True)
class PublishOptions:
    target: Target
    settings: SipSettings
    event: str = "presence"
    body: bytes = b""
    content_type: str | None = None
    password: str | None = None
    auth_user: str | None = None
    expires: int = 3600
    etag: str | None = None  # an earlier publication's (refresh or remove it, no new one)
    refresh: bool = False
    duration: float | None = None
    remove: bool = False


@dataclass
class PublishResult(Reached, CheckResult):
    event: str
    transactions: list[TransactionRecord] = field(default_factory=list)
    final_status: int | None = None
    final_reason: str | None = None
    rtt_ms: float | None = None
    etag: str | None = None
    etags: list[str] = field(default_factory=list)  # every one the server gave, in order
    expires: int | None = None
    published: dict[str, Any] | None = None  # what was published (status, note), or null
    refreshes: int = 0
    removed: bool | None = None
    auth: AuthReport | None = None
    nat: NatView = field(default_factory=NatView)
    warnings: list[str] = field(default_factory=list)
    exit_code: ExitCode = field(default=ExitCode.FAILED, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "event": self.event,
            "resolved": self.resolved,
            "transactions": [t.to_dict() for t in self.transactions],
            "final_status": self.final_status,
            "final_reason": self.final_reason,
            "rtt_ms": self.rtt_ms,
            "etag": self.etag,
            "etags": self.etags,
            "expires": self.expires,
            "published": self.published,
            "refreshes": self.refreshes,
            "removed": self.removed,
            "auth": None if self.auth is None else self.auth.to_dict(),
            "nat": self.nat.to_dict(),
            "warnings": self.warnings,
        }


async def run_publish(
    options: PublishOptions, published: dict[str, Any] | None = None
) -> PublishResult:
    """Publish, refresh, remove as asked; every verdict is on the result."""
    result = PublishResult(str(options.target), options.event, published=published)
    result.etag = options.etag
    await run_check(
        options.target,
        options.settings,
        result,
        lambda flow, _more: _publish_over(flow, options, result),
    )
    return result


class _Publication:
    def __init__(self, flow: SipFlow, options: PublishOptions, result: PublishResult) -> None:
        self.options = options
        self.result = result
        self.session = RequestSession(
            flow, options.settings, password=options.password, auth_user=options.auth_user
        )
        self.granted_at = time.monotonic()

    async def send(self, expires: int, *, body: bool) -> Exchange:
        """One PUBLISH: the initial one (``body``), or a refresh / removal with SIP-If-Match."""
        options, result = self.options, self.result
        extra = [("Event", options.event), ("Expires", str(expires))]
        if not body and result.etag is not None:
            extra.append(("SIP-If-Match", result.etag))  # RFC 3903 §4.3, §4.5
        build = self.session.request(
            "PUBLISH",
            options.target,
            extra=extra,
            body=options.body if body else b"",
            content_type=options.content_type if body else None,
            contact=False,
        )
        deadline = time.monotonic() + options.settings.timeout
        done = await self.session.exchange(build, deadline)
        msg = done.final
        if msg is not None and msg.status == 423:
            least = decimal_or_none((msg.header("Min-Expires") or "").strip(), 10)
            if least is not None and least > expires:
                result.warnings.append(f"423 Interval Too Brief: published again for {least} s")
                extra[1] = ("Expires", str(least))
                done = await self.session.exchange(build, deadline)
        self._granted(done.final, expires)
        return done

    def _granted(self, msg: SipMessage | None, asked: int) -> None:
        result = self.result
        if msg is None or not 200 <= (msg.status or 0) < 300:
            return
        self.granted_at = time.monotonic()
        etag = msg.header("SIP-ETag")
        if etag:
            result.etag = etag.strip()
            result.etags.append(result.etag)
        elif asked:
            result.warnings.append(
                f"the {msg.status} to PUBLISH has no SIP-ETag (RFC 3903 §6 requires it): the "
                "publication cannot be refreshed or removed"
            )
            result.etag = None
        granted = decimal_or_none((msg.header("Expires") or "").strip(), 10)
        result.expires = asked if granted is None else granted


async def _publish_over(
    flow: SipFlow, options: PublishOptions, result: PublishResult
) -> SiptoolError | None:
    pub = _Publication(flow, options, result)
    try:
        done = await _steps(pub)
        if done is None:
            return None
        if not pub.session.answered and done.error is not None:
            return done.error
        result.nat = nat_view(flow, done.final)
        final_verdict(result, done, lambda status: 200 <= status < 300, "a 2xx")
        _name_failure(result, options)
        return None
    except asyncio.CancelledError:
        if options.remove and result.etag is not None:
            await asyncio.wait_for(pub.send(0, body=False), CLEANUP_SECONDS)
        raise
    finally:
        result.transactions = pub.session.records
        result.auth = pub.session.auth_report()
        await pub.session.close()


async def _steps(pub: _Publication) -> Exchange | None:
    """Publish, refresh, keep, remove (module docstring); the exchange the verdict reads: the
    first that failed, else the last."""
    options, result = pub.options, pub.result
    done: Exchange | None = None
    if options.etag is None:
        done = await pub.send(options.expires, body=True)
        if not _passed(done):
            return done
    if options.refresh:
        done = await _refresh(pub)
        if not _passed(done):
            return done
    if options.duration:
        end = time.monotonic() + options.duration
        while True:
            due = refresh_at(result.expires or options.expires, pub.granted_at)
            if due >= end:
                await asyncio.sleep(max(0.0, end - time.monotonic()))
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            done = await _refresh(pub)
            if not _passed(done):
                return done
    if options.remove:
        done = await pub.send(0, body=False)
        result.removed = _passed(done)
    return done


async def _refresh(pub: _Publication) -> Exchange:
    done = await pub.send(pub.options.expires, body=False)
    if _passed(done):
        pub.result.refreshes += 1
    return done


def _passed(done: Exchange) -> bool:
    return done.error is None and done.final is not None and 200 <= (done.final.status or 0) < 300


def _name_failure(result: PublishResult, options: PublishOptions) -> None:
    """412 and 489 said with what they mean (module docstring)."""
    if result.exit_code is ExitCode.OK or not result.errors:
        return
    last = result.errors[-1]
    if result.final_status == 412:
        why = (
            f"the server does not know the entity-tag {result.etag} (RFC 3903 §6): the state "
            "expired or was removed; publish anew without --etag"
        )
    elif result.final_status == 489:
        why = f"the server does not accept PUBLISH for the event package {options.event!r}"
    else:
        return
    result.errors[-1] = SiptoolError(f"{last.message}: {why}", code=last.code)


__all__ = ["PublishOptions", "PublishResult", "run_publish"]
