"""The --refer-to transfer's NOTIFY handling (commands/invite_refer.py) on hand-built NOTIFYs:
which are the transfer's, what each is answered, what is recorded, and the outcome it makes.
No socket: the REFER is "sent" by a stand-in sender that answers it at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import pytest

from siptool.commands.invite_refer import ReferTransfer, is_refer_notify
from siptool.commands.invite_state import CallState
from siptool.commands.invite_test import CallResult, InviteOptions, TransferOutcome
from siptool.commands.sip_common import SipSettings
from siptool.net.sip_client import Outcome, OutcomeKind
from siptool.net.sip_transport import Received, WireLog
from siptool.sip.message import SipMessage, parse_message
from siptool.sip.sdp_offer import parse_codec_list
from siptool.sip.target import parse_target

REFER_CSEQ = 7


def notify(
    cseq: int,
    body: bytes = b"SIP/2.0 200 OK",
    *,
    event: str = f"refer;id={REFER_CSEQ}",
    state: str | None = "terminated;reason=noresource",
    content_type: str = "message/sipfrag;version=2.0",
) -> Received:
    lines = [
        "NOTIFY sip:siptool@127.0.0.1:5070 SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-n" + str(cseq),
        "From: <sip:jill@127.0.0.1>;tag=far",
        "To: <sip:kim@127.0.0.1>;tag=near",
        "Call-ID: c1",
        f"CSeq: {cseq} NOTIFY",
        f"Event: {event}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
    ]
    if state is not None:
        lines.append(f"Subscription-State: {state}")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    return Received(parse_message(data), data, time.monotonic(), "127.0.0.1:5080")


def transfer(wait: float = 0.5) -> tuple[ReferTransfer, CallResult]:
    target = parse_target("sip:jill@127.0.0.1")
    options = InviteOptions(
        target,
        SipSettings(timeout=1.0),
        tuple(parse_codec_list("PCMU")),
        refer_to="sip:carol@127.0.0.1",
        refer_wait=wait,
    )
    result = CallResult(str(target))
    return ReferTransfer(CallState(options, WireLog(False), result), "sip:carol@127.0.0.1"), result


class FakeDialog:
    """Stands in for ``CallDialog.send_in_dialog``: "sends" the REFER (CSeq 7), hands
    ``notifies`` to the transfer while it is in flight, then answers it ``status`` (None: no
    answer at all)."""

    def __init__(self, engine: ReferTransfer, status: int | None, notifies: Sequence[Received]):
        self.engine, self.status, self.notifies = engine, status, notifies
        self.answers: list[tuple[int, str]] = []
        self.extra: Sequence[tuple[str, str]] = ()

    async def __call__(
        self,
        method: str,
        *,
        extra: Sequence[tuple[str, str]] = (),
        contact: str | None = None,
        on_sent: Callable[[SipMessage], None] | None = None,
        deadline: Callable[[], float] | None = None,
    ) -> tuple[Outcome, float]:
        assert method == "REFER" and on_sent is not None and contact is not None
        self.extra = extra
        on_sent(parse_message(REFER))
        self.answers += [self.engine.on_notify(item) for item in self.notifies]
        if self.status is None:
            return Outcome(OutcomeKind.TIMEOUT, error="no answer"), time.monotonic()
        data = f"SIP/2.0 {self.status} Whatever\r\n{REFER_HEADERS}\r\n".encode()
        received = Received(parse_message(data), data, time.monotonic(), "127.0.0.1:5080")
        return Outcome(OutcomeKind.FINAL, received), time.monotonic()


REFER_HEADERS = (
    "Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK-r\r\nFrom: <sip:kim@127.0.0.1>;tag=near\r\n"
    "To: <sip:jill@127.0.0.1>;tag=far\r\nCall-ID: c1\r\nCSeq: 7 REFER\r\n"
    "Content-Length: 0\r\n"
)
REFER = f"REFER sip:jill@127.0.0.1 SIP/2.0\r\n{REFER_HEADERS}\r\n".encode()


def run(
    status: int | None, *notifies: Received, wait: float = 0.3
) -> tuple[CallResult, FakeDialog]:
    engine, result = transfer(wait)
    dialog = FakeDialog(engine, status, notifies)
    asyncio.run(engine.run(dialog, '"Kim" <sip:kim@127.0.0.1>;tag=near', "<sip:kim@h:5070>"))
    return result, dialog


def test_only_notifies_of_the_refer_package_are_the_transfers() -> None:
    assert is_refer_notify(notify(1).message)
    assert is_refer_notify(notify(1, event="refer").message)
    assert not is_refer_notify(notify(1, event="dialog").message)
    assert not is_refer_notify(notify(1, event="refer;id=").message)  # a broken Event


def test_refer_headers_name_the_target_and_our_from_uri() -> None:
    _, dialog = run(202, notify(1))
    assert dict(dialog.extra) == {
        "Refer-To": "<sip:carol@127.0.0.1>",
        "Referred-By": "<sip:kim@127.0.0.1>",
    }


def test_a_notify_before_the_202_and_the_final_one_make_a_success() -> None:
    early = notify(1, b"SIP/2.0 100 Trying\r\n", state="active;expires=60")
    result, dialog = run(202, early, notify(2))
    moved = result.transfer
    assert moved is not None and moved.status == 202 and dialog.answers == [(200, "OK")] * 2
    assert [n.sipfrag.status for n in moved.notifies if n.sipfrag] == [100, 200]
    assert moved.outcome is TransferOutcome.SUCCEEDED and result.errors == []
    assert moved.summary == "transfer target answered 200 OK"


def test_a_retransmitted_notify_is_answered_again_and_recorded_once() -> None:
    first = notify(1, b"SIP/2.0 100 Trying", state="active")
    result, dialog = run(202, first, first, notify(2, b"SIP/2.0 486 Busy Here"))
    assert result.transfer is not None and len(result.transfer.notifies) == 2
    assert dialog.answers == [(200, "OK")] * 3
    assert result.transfer.outcome is TransferOutcome.FAILED
    assert [e.message for e in result.errors] == ["transfer failed: 486 Busy Here"]


def test_a_notify_of_another_refer_gets_481() -> None:
    result, dialog = run(202, notify(1, event="refer;id=99"))
    assert dialog.answers == [(481, "Subscription Does Not Exist")]
    assert result.transfer is not None and result.transfer.notifies == []
    assert [e.code for e in result.errors] == ["transfer_timeout"]


def test_a_notify_without_subscription_state_gets_400_and_is_recorded() -> None:
    result, dialog = run(202, notify(1, state=None))
    assert dialog.answers == [(400, "Bad Request")]
    assert result.transfer is not None
    (record,) = result.transfer.notifies
    assert record.answered == 400 and record.error is not None
    assert "no Subscription-State" in record.error and record.error in result.warnings


@pytest.mark.parametrize(
    ("body", "content_type", "fault"),
    [
        (b"hello", "message/sipfrag", "neither a SIP start line nor a header"),
        (b"SIP/2.0 200 OK", "text/plain", "Content-Type text/plain, not message/sipfrag"),
        (b"SIP/2.0 999 Odd", "message/sipfrag", "outside 100-699"),
    ],
)
def test_an_unreadable_sipfrag_is_a_warning_and_no_outcome(
    body: bytes, content_type: str, fault: str
) -> None:
    result, dialog = run(202, notify(1, body, content_type=content_type))
    assert dialog.answers == [(200, "OK")]
    assert result.transfer is not None and result.transfer.outcome is TransferOutcome.UNKNOWN
    assert any(fault in w for w in result.warnings), result.warnings
    assert [e.message for e in result.errors] == [
        "the transfer's subscription ended (noresource) without a final answer"
    ]


@pytest.mark.parametrize(
    ("status", "outcome", "message"),
    [
        (405, TransferOutcome.FAILED, "REFER refused: 405 Whatever"),
        (None, TransferOutcome.UNKNOWN, "no final response to the REFER (no answer)"),
    ],
)
def test_a_refer_not_accepted_is_named(
    status: int | None, outcome: TransferOutcome, message: str
) -> None:
    result, _ = run(status)
    assert result.transfer is not None and result.transfer.outcome is outcome
    assert result.transfer.summary == message and [e.message for e in result.errors] == [message]


def test_no_notify_within_the_wait_is_named() -> None:
    started = time.monotonic()
    result, _ = run(202, wait=0.2)
    assert time.monotonic() - started < 1.0
    assert [e.message for e in result.errors] == [
        "no NOTIFY with the transfer's outcome within 0.2 s"
    ]
