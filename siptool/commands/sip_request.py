"""Requests outside a dialog (RFC 3261 §8.1, a §17.1.2 non-INVITE transaction each): the engine
that send, message, publish and subscribe share.

One ``RequestSession`` per flow: one Call-ID and From tag, CSeq counting up (as REGISTER does,
§10.2.4, so a late retransmission of an earlier request cannot be taken for a later one), a
401/407 answered with digest credentials (§22.2) by ``AuthState``, and every transaction kept
as a ``TransactionRecord``: the request's method and CSeq, each response with its time, the
retransmissions.  That record is what the JSON's ``transactions`` list shows
(shared/cli-contract.md).

Decisions:

- The Request-URI is the target's URI without its headers (RFC 3261 §19.1.5 headers belong
  in the request, not its URI); To is the target; From is ``sip:USER@<target host>`` with
  --user (the address of record of the user in the target's domain), else siptool at our
  own address, as options-ping sends.  --from/--to win over both (``RequestKnobs``).
- A challenge answered is a new transaction with the next CSeq (§22.2); a second challenge for
  the same realm is "wrong credentials" unless the nonce was stale (``AuthState``).
- Times are milliseconds since the run began (``time_ms``) and from the request's first
  transmission (``rtt_ms``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from siptool.addr import format_host
from siptool.commands.sip_common import SipSettings, local_endpoint
from siptool.errors import ParseError, SiptoolError
from siptool.net.sip_client import Outcome, OutcomeKind, PendingTransaction, SipClient
from siptool.net.sip_transport import Received, SipFlow
from siptool.sip.auth import AuthReport, AuthState, DigestCredentials
from siptool.sip.builders import build_request, new_call_id, new_tag
from siptool.sip.dialog import build_response
from siptool.sip.message import SipMessage, clean_text
from siptool.sip.target import Target

MAX_ROUNDS = 5  # requests per exchange: 1 + challenges (AuthState stops loops well before)
BODY_SHOWN = 4096  # characters of a response body kept for the JSON


def request_uri_of(target: Target) -> str:
    """The Request-URI for ``target``: its URI without the ``?headers`` part."""
    uri = target.uri
    return uri.to_text() if not uri.headers else str(uri).split("?")[0]


def aor_of(target: Target, user: str) -> str:
    """``user``'s address of record in the target's domain (sips: for a sips: target)."""
    return f"{'sips' if target.secure else 'sip'}:{user}@{format_host(target.host)}"


def body_text(body: bytes) -> str | None:
    """A body as the JSON shows it: text (bad bytes as U+FFFD), cut at ``BODY_SHOWN``."""
    if not body:
        return None
    return clean_text(body[:BODY_SHOWN].decode("utf-8", "replace"))


@dataclass
class ResponseRecord:
    """One response to one of our requests, as it came."""

    status: int
    reason: str
    time_ms: float
    rtt_ms: float
    headers: list[tuple[str, str]]
    body: str | None

    @classmethod
    def of(cls, received: Received, pending: PendingTransaction, started: float) -> ResponseRecord:
        msg = received.message
        return cls(
            status=msg.status or 0,
            reason=clean_text(msg.reason or ""),
            time_ms=round((received.time - started) * 1000.0, 3),
            rtt_ms=pending.rtt_ms(received),
            headers=[(h.name, clean_text(h.value)) for h in msg.headers],
            body=body_text(msg.body),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "time_ms": self.time_ms,
            "rtt_ms": self.rtt_ms,
            "headers": [list(h) for h in self.headers],
            "body": self.body,
        }


@dataclass
class TransactionRecord:
    """One client transaction: what was asked, what came back, when, and how often it was
    sent again (Timer E, RFC 3261 §17.1.2.2)."""

    method: str
    cseq: int
    time_ms: float
    responses: list[ResponseRecord] = field(default_factory=list)
    retransmitted: int = 0
    error: str | None = None

    @property
    def final(self) -> ResponseRecord | None:
        last = self.responses[-1] if self.responses else None
        return last if last is not None and last.status >= 200 else None

    def to_dict(self) -> dict[str, Any]:
        final = self.final
        return {
            "method": self.method,
            "cseq": self.cseq,
            "status": None if final is None else final.status,
            "reason": None if final is None else final.reason,
            "rtt_ms": None if final is None else final.rtt_ms,
            "retransmitted": self.retransmitted,
            "time_ms": self.time_ms,
            "error": self.error,
            "responses": [r.to_dict() for r in self.responses],
        }


@dataclass
class Exchange:
    """How one request ended once its challenges were answered: the final response (None
    when there was none) or the error that stopped it."""

    final: SipMessage | None
    error: SiptoolError | None = None
    rtt_ms: float | None = None


Build = Callable[[int], SipMessage]  # the request with this CSeq (credentials are added after)


class RequestSession:
    """Out-of-dialog requests over one flow; see the module docstring."""

    def __init__(
        self,
        flow: SipFlow,
        settings: SipSettings,
        *,
        password: str | None,
        auth_user: str | None = None,
        started: float | None = None,
    ) -> None:
        self.flow = flow
        self.settings = settings
        self.client = SipClient(flow, settings.timers)
        self.auth: AuthState | None = None
        user = auth_user or settings.user
        if password is not None and user:
            self.auth = AuthState(DigestCredentials(user, password))
        self.call_id = new_call_id(flow.local[0])
        self.tag = new_tag()
        self.cseq = 0
        self.started = time.monotonic() if started is None else started
        self.records: list[TransactionRecord] = []
        self.answered = False  # any response at all came over this flow

    def request(
        self,
        method: str,
        target: Target,
        *,
        extra: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        contact: bool | str = True,
        to_uri: str | None = None,
    ) -> Build:
        """How to build ``method`` to ``target`` for a CSeq: the module docstring's URIs
        (``to_uri`` instead of the target's: a REGISTER's To is the address of record), our
        Contact (``contact`` False: none; a text: that value)."""
        settings = self.settings

        def build(cseq: int) -> SipMessage:
            local = local_endpoint(self.flow)
            user = settings.user
            from_uri = aor_of(target, user) if user else f"sip:siptool@{local.hostport}"
            return build_request(
                method,
                request_uri_of(target),
                local=local,
                from_uri=from_uri,
                from_tag=self.tag,
                to_uri=to_uri or request_uri_of(target),
                call_id=self.call_id,
                cseq=cseq,
                contact=_contact(contact, local.contact_uri(user or "siptool")),
                extra=extra or [],
                body=body,
                content_type=content_type,
                knobs=settings.knobs,
            )

        return build

    async def exchange(self, build: Build, deadline: float) -> Exchange:
        """Send the request (again, with credentials, after each challenge it can answer)
        until a final response that is not such a challenge, an error, or ``deadline``."""
        for _ in range(MAX_ROUNDS):
            self.cseq += 1
            request = build(self.cseq)
            if self.auth is not None:
                self.auth.apply(request)
            outcome, rtt = await self._one(request, deadline)
            msg = outcome.message
            if msg is None:
                error = SiptoolError(outcome.error or "no answer", code=outcome.error_code)
                return Exchange(None, error)
            if msg.status in (401, 407):
                refused = challenge_refusal(self.auth, msg)
                if refused is None:
                    continue
                return Exchange(msg, refused, rtt)
            return Exchange(msg, None, rtt)
        return Exchange(None, SiptoolError("too many challenges", code="auth_loop"))

    async def _one(self, request: SipMessage, deadline: float) -> tuple[Outcome, float | None]:
        pending = self.client.start(request)
        cseq = request.cseq
        record = TransactionRecord(
            request.method or "",
            0 if cseq is None else cseq.seq,
            round((pending.sent_at - self.started) * 1000.0, 3),
        )
        self.records.append(record)
        while True:
            outcome = await pending.next(deadline)
            record.retransmitted = pending.retransmissions
            if outcome.received is not None:
                self.answered = True
                record.responses.append(ResponseRecord.of(outcome.received, pending, self.started))
            if outcome.kind is not OutcomeKind.PROVISIONAL:
                break
        if outcome.received is None:
            record.error = outcome.error
            return outcome, None
        return outcome, pending.rtt_ms(outcome.received)

    def auth_report(self) -> AuthReport | None:
        return None if self.auth is None else self.auth.report()

    async def close(self) -> None:
        await self.client.close()


def _contact(contact: bool | str, ours: str) -> str | None:
    if isinstance(contact, str):
        return contact
    return f"<{ours}>" if contact else None


class Answerer:
    """Our answers to the requests the far end sends us (a NOTIFY, a MESSAGE): the UAS side of
    a non-INVITE server transaction (RFC 3261 §17.2.2) as far as a test needs it.  Each
    request is answered once; its retransmission (same top Via branch and method, §17.2.3)
    gets the same response again instead of a second one with another To tag."""

    KEEP = 64  # answers remembered for retransmissions (a test sees a handful)

    def __init__(self, client: SipClient, server: str) -> None:
        self.client = client
        self.server = server
        self._sent: dict[tuple[str, str], bytes] = {}

    @staticmethod
    def _key(request: SipMessage) -> tuple[str, str] | None:
        try:
            via = request.top_via
        except ParseError:
            return None
        if via is None or via.branch is None:
            return None
        return via.branch, request.method or ""

    def again(self, item: Received) -> bool:
        """True (and the earlier answer sent again) when ``item`` is a retransmission."""
        key = self._key(item.message)
        wire = None if key is None else self._sent.get(key)
        if wire is None:
            return False
        with contextlib.suppress(SiptoolError):
            self.client.flow.send(wire, item.address)
        return True

    def answer(
        self,
        item: Received,
        status: int,
        reason: str,
        *,
        extra: list[tuple[str, str]] | None = None,
        to_tag: str | None = None,
    ) -> None:
        """Send the response (a fresh To tag unless given: §8.2.6.2) to where the request
        came from (§18.2.2), and remember it."""
        request = item.message
        response = build_response(
            request,
            status,
            reason,
            to_tag=to_tag or new_tag(),
            extra=extra or [],
            server=self.server,
        )
        wire = response.serialize()
        key = self._key(request)
        if key is not None:
            if len(self._sent) >= self.KEEP:
                del self._sent[next(iter(self._sent))]
            self._sent[key] = wire
        with contextlib.suppress(SiptoolError):
            self.client.flow.send(wire, item.address)


def challenge_refusal(auth: AuthState | None, msg: SipMessage) -> SiptoolError | None:
    """None when the 401/407 ``msg`` is answered by a retry (``auth`` has the credentials on
    for the next request); else why the request stops there."""
    what = f"{msg.status} {msg.reason}"
    if auth is None:
        return SiptoolError(
            f"{what}: credentials needed (--user with --password-file, SIPTOOL_PASSWORD or the "
            "prompt)",
            code="auth_required",
        )
    decision = auth.on_challenge(msg)
    if decision == "retry":
        return None
    if decision == "wrong_credentials":
        return SiptoolError(
            f"wrong credentials: {what} again after sending them for user "
            f"{auth.credentials.username}",
            code="wrong_credentials",
        )
    return SiptoolError(auth.error or "unsupported auth", code="auth_unsupported")


__all__ = [
    "Answerer",
    "Exchange",
    "RequestSession",
    "ResponseRecord",
    "TransactionRecord",
    "aor_of",
    "body_text",
    "challenge_refusal",
    "request_uri_of",
]
