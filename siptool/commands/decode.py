"""`siptool decode`: input bytes -> candidate messages -> parsed messages -> the result.

The command reads the whole input (file or stdin), lets ``siptool.capture`` find the candidate
messages, parses each with the SIP or STUN engine, and hands each decoded message to its
caller (the renderer) as soon as it is parsed, so that ``--jsonl`` streams.  Every problem
(unreadable packet, invalid message, truncated capture) is handed over the same way, as one
``SiptoolError`` naming the input and the packet or byte, and the decoding goes on.  The
result carries what every view needs at the end: the counts, the errors, the exit code and,
with ``--flow``, the call flows built while the messages streamed past.

Decisions:

- An input that cannot be read at all is not raised: it is the result's one error and exit 3
  (shared/cli-contract.md), so that ``--json`` still writes its document.
- ``--tls-keylog``: the key log is read before the input (unreadable: exit 3, as the input);
  a line of it that cannot be used is one error (exit 1) and the others are still used.
- Synchronous: nothing here waits on a socket or a timer, so the runner never imports
  asyncio for decode (start-up time).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from siptool.capture import Problem, RawMessage, iter_input
from siptool.capture.extract import PacketExtractor
from siptool.capture.keylog import KeyLog, read_keylog
from siptool.capture.model import TlsSession, UndecodedStream, WebSocketStream
from siptool.capture.source import open_source
from siptool.commands.result import CheckResult
from siptool.errors import ExitCode, InputError, ParseError, SiptoolError
from siptool.sip.lint import (
    LintWarning,
    lint_message,
    lost_carriage_returns,
    malformed_fields,
)
from siptool.sip.message import SipMessage, clean_text, parse_message

if TYPE_CHECKING:
    from siptool.commands.callflow import CallFlow
    from siptool.commands.decode_media import MediaAnalysis, MediaReport

# Every key of a message object, SIP or STUN, so that absent values are null, never omitted
# (shared/cli-contract.md).
_SIP_KEYS = (
    "kind",
    "method",
    "status",
    "reason",
    "request_uri",
    "call_id",
    "cseq",
    "from",
    "to",
    "via",
    "headers",
    "body",
    "sdp",
)
_NO_SIP: dict[str, Any] = dict.fromkeys(_SIP_KEYS)
# RFC 3261 §8.1.1 / §8.2.6.2: in every request and response.
_MANDATORY = ("Via", "From", "To", "Call-ID", "CSeq")


class InputFormat(enum.Enum):
    """--format: what the input is; AUTO lets the capture layer sniff it."""

    AUTO = "auto"
    SIP = "sip"
    STUN = "stun"
    HEX = "hex"
    PCAP = "pcap"
    PCAPNG = "pcapng"


class DecodeView(enum.Enum):
    """How the messages are shown to a person: a table, each in full (-v), a ladder per
    call (--flow, which also puts the flows in the JSON), or none but the media (--rtp)."""

    TABLE = "table"
    VERBOSE = "verbose"
    FLOW = "flow"
    RTP = "rtp"

    @classmethod
    def of(cls, *, verbose: bool, flow: bool, rtp: bool = False) -> DecodeView:
        """The view the flags ask for: --flow wins over -v, and -v over --rtp."""
        if flow:
            return cls.FLOW
        if verbose:
            return cls.VERBOSE
        return cls.RTP if rtp else cls.TABLE


@dataclass(frozen=True)
class DecodeOptions:
    source: str  # a file name, or "-" for standard input
    input_format: InputFormat = InputFormat.AUTO
    view: DecodeView = DecodeView.TABLE
    lint: bool = False
    call_ids: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    # -i IFACE: a live capture instead of ``source`` (commands/decode_live.py)
    interface: str | None = None
    ports: tuple[int, ...] = ()  # the ports captured; empty: every UDP and TCP port
    count: int | None = None  # stop after this many packets
    duration: float | None = None  # stop after this many seconds
    write: str | None = None  # save what was captured as pcapng
    # --rtp: RTP/RTCP streams, each call's media verdict (commands/decode_media.py)
    rtp: bool = False
    # --tls-keylog: the NSS key log that decrypts the capture's TLS (capture/tls_decrypt.py)
    tls_keylog: str | None = None


@dataclass
class DecodedMessage:
    """One message found in the input, parsed, with where it came from."""

    index: int  # 1-based position among all messages of the input, before any filter
    raw: RawMessage
    sip: SipMessage | None = None
    stun: Any = None  # siptool.stun.message.StunMessage; imported only when STUN is present
    lint: list[LintWarning] | None = None

    @property
    def protocol(self) -> str:
        return self.raw.protocol

    @property
    def call_id(self) -> str | None:
        return self.sip.call_id if self.sip is not None else None

    def to_dict(self) -> dict[str, Any]:
        raw = self.raw
        out: dict[str, Any] = {
            "index": self.index,
            "frame": raw.frame,
            "time": raw.time,
            "src": raw.src,
            "dst": raw.dst,
            "transport": raw.transport,
            "protocol": raw.protocol,
        }
        if self.sip is not None:
            out.update(self.sip.to_dict())
            out["stun"] = None
        else:
            out.update(_NO_SIP)
            out["stun"] = self.stun.to_dict() if self.stun is not None else None
        out["lint"] = None if self.lint is None else [w.to_dict() for w in self.lint]
        return out


@dataclass
class InputProblem:
    """One line for stderr and one entry of the JSON ``errors`` list."""

    where: str
    message: str
    code: str = "parse_error"

    def text(self, input_name: str) -> str:
        where = f"{self.where}: " if self.where else ""
        return f"{input_name}: {where}{self.message}"


@dataclass
class Summary:
    sip: int = 0
    stun: int = 0
    invalid: int = 0
    filtered_out: int = 0
    # TCP streams of a capture that carried neither SIP nor STUN: TLS (named by its server
    # name) or other bytes; said, not passed over in silence.
    not_decoded: list[UndecodedStream] = field(default_factory=list)
    # TCP directions read as SIP over WebSocket (RFC 7118), with their close frames.
    websocket: list[WebSocketStream] = field(default_factory=list)
    # Every TLS connection: version, cipher suite, decrypted or why not (--tls-keylog).
    tls: list[TlsSession] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sip": self.sip,
            "stun": self.stun,
            "invalid": self.invalid,
            "filtered_out": self.filtered_out,
            "not_decoded": [s.to_dict() for s in self.not_decoded],
            # The contract: a key is empty, never omitted, when the input has no WebSocket.
            "websocket": [s.to_dict() for s in self.websocket],
            "tls": [s.to_dict() for s in self.tls],
        }
        return out


@dataclass
class DecodeResult(CheckResult):
    """What the renderers get at the end; the messages were handed to them before."""

    input_name: str
    summary: Summary = field(default_factory=Summary)
    flows: list[CallFlow] | None = None  # with --flow: one per Call-ID (no --nagios in decode)
    media: MediaReport | None = None  # with --rtp


def _where(raw: RawMessage, offset: int | None) -> str:
    inside = f", byte {offset} of the message" if offset else ""
    if raw.frame is not None:
        return f"packet {raw.frame}{inside}"
    if raw.hex_block:
        # Bytes decoded from hex text: an offset in them is not an offset in the input.
        return f"hex block at byte {raw.offset}{inside}"
    return f"byte {raw.offset + (offset or 0)}"


def _parse_stun(data: bytes) -> Any:
    from siptool.stun.message import parse_stun

    return parse_stun(data)


def decode_items(
    items: Iterable[RawMessage | Problem], *, lint: bool, start: int = 0
) -> Iterator[DecodedMessage | InputProblem]:
    """Parse every candidate; a message that parses with a framing fault is yielded *and*
    reported, so that nothing decodable is lost.  Messages are numbered from ``start + 1``."""
    index = start
    for item in items:
        if isinstance(item, Problem):
            yield InputProblem(item.where, item.message)
            continue
        index += 1
        if item.protocol == "stun":
            try:
                yield DecodedMessage(index, item, stun=_parse_stun(item.data))
            except ParseError as exc:
                yield InputProblem(_where(item, exc.offset), f"invalid STUN message: {exc.message}")
            continue
        try:
            msg = parse_message(item.data)
        except ParseError as exc:
            yield InputProblem(_where(item, exc.offset), f"invalid SIP message: {exc.message}")
            continue
        if not msg.header_terminated:
            # A header section without its empty line is accepted from a log excerpt only when
            # it is whole; one that also lacks mandatory headers was cut off (RFC 3261 §7).
            present = {h.name for h in msg.headers}
            missing = [n for n in _MANDATORY if n not in present]
            if missing:
                yield InputProblem(
                    _where(item, len(item.data)),
                    f"incomplete {_label(msg)}: headers end without an empty line and "
                    f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing",
                )
                continue
        decoded = DecodedMessage(index, item, sip=msg)
        malformed = malformed_fields(msg)
        if lint:
            decoded.lint = lint_message(msg, src=item.src, dst=item.dst)
            if item.note is not None:
                decoded.lint.append(LintWarning(*item.note))
        yield decoded
        if malformed:
            # Framed and shown, but not a valid message: the JSON has null for these fields,
            # and the exit code says the input was not clean.
            yield InputProblem(
                _where(item, None), f"invalid {_label(msg)}: " + "; ".join(malformed)
            )
        if msg.body_truncated and not lost_carriage_returns(msg):
            # RFC 3261 §18.3: on UDP a short body makes the message invalid; on a stream it
            # means the capture ended inside it.
            yield InputProblem(
                _where(item, msg.body_offset),
                f"{_label(msg)}: Content-Length {msg.declared_length} but only "
                f"{len(msg.body)} body bytes",
            )


def _label(msg: SipMessage) -> str:
    if msg.method is not None:
        return f"{msg.method} request"
    return f"{msg.status} response"


class MessageFilter:
    """--call-id and --method.  A method selects requests of that method and the responses
    whose CSeq carries it (RFC 3261 §8.2.6.2 copies CSeq into the response); STUN messages
    match by method name (BINDING)."""

    def __init__(self, call_ids: tuple[str, ...], methods: tuple[str, ...]) -> None:
        self.call_ids = frozenset(call_ids)
        self.methods = frozenset(m.upper() for m in methods)
        self.active = bool(self.call_ids or self.methods)

    def __call__(self, m: DecodedMessage) -> bool:
        if not self.active:
            return True
        if m.sip is None:
            if self.call_ids:
                return False
            return str(getattr(m.stun, "method_name", "")).upper() in self.methods
        if self.call_ids and m.sip.call_id not in self.call_ids:
            return False
        if self.methods:
            method = m.sip.method
            if method is None:
                try:
                    cseq = m.sip.cseq
                except ParseError:
                    return False
                method = cseq.method if cseq is not None else None
            return method in self.methods
        return True


def run_decode(
    options: DecodeOptions,
    on_message: Callable[[DecodedMessage], None],
    on_problem: Callable[[SiptoolError], None],
    on_flow: Callable[[CallFlow], None] | None = None,
) -> DecodeResult:
    """Decode the input; ``on_message`` gets each message the filters keep, ``on_problem``
    each problem, as they are found.  With --flow and ``on_flow``, each call flow is handed
    to it once the call has ended (``CallFlows.ended``) and the rest at the end, and
    ``result.flows`` is left empty; without it the flows are on the result.  The exit code is
    the result's (shared/cli-contract.md): 0 clean, 1 some input invalid, 3 the input could
    not be read (or the live capture could not start)."""
    keylog = None
    if options.tls_keylog is not None:
        try:
            keylog = _read_keylog(options.tls_keylog, live=options.interface is not None)
        except InputError as exc:
            on_problem(exc)
            return DecodeResult(
                clean_text(options.source), errors=[exc], exit_code=ExitCode.NOT_RUN
            )
    decoder = _Decoder(options, on_message, on_problem, on_flow, keylog)
    with ExitStack() as stack:
        if options.interface is not None:
            return _decode_live(stack, decoder)
        try:
            source = stack.enter_context(open_source(options.source))
        except OSError as exc:  # only the opening: a broken pipe on output is not "cannot read"
            shown = clean_text(options.source)
            error = InputError(f"cannot read {shown}: {exc.strerror or exc}")
            on_problem(error)
            return DecodeResult(shown, errors=[error], exit_code=ExitCode.NOT_RUN)
        decoder.start(clean_text(source.name))  # a name that is not UTF-8 must not break JSON
        try:
            items: Iterable[RawMessage | Problem] = iter_input(
                source.data,
                input_format=options.input_format.value,
                release=source.release,
                extractor=decoder.extractor,
            )
        except ParseError as exc:
            where = f"byte {exc.offset}" if exc.offset is not None else ""
            decoder.report(InputProblem(where, exc.message))
            items = ()
        decoder.feed(items)
        return decoder.finish()
    raise AssertionError("unreachable")  # ExitStack does not swallow exceptions


def _read_keylog(path: str, *, live: bool) -> KeyLog:
    """The --tls-keylog file; followed during a live capture (the secrets of the sessions it
    sees are written after it started)."""
    shown = clean_text(path)
    try:
        return read_keylog(path, shown, follow=live)
    except OSError as exc:
        raise InputError(
            f"cannot read the TLS key log {shown}: {exc.strerror or exc}", code="tls_keylog_error"
        ) from None


def _decode_live(stack: ExitStack, decoder: _Decoder) -> DecodeResult:
    """-i IFACE: decode the capture as it comes; Ctrl-C ends it like the end of a file."""
    from siptool.commands.decode_live import live_input

    options = decoder.options
    assert options.interface is not None
    try:
        capture = stack.enter_context(
            live_input(
                options.interface,
                options.ports,
                count=options.count,
                duration=options.duration,
                write=options.write,
                on_idle=decoder.idle,
                extractor=decoder.extractor,
            )
        )
    except InputError as exc:
        decoder.on_problem(exc)
        return DecodeResult(options.interface, errors=[exc], exit_code=ExitCode.NOT_RUN)
    decoder.start(capture.name, live=True)
    # As tcpdump's "listening on": the capture runs from here (a script may wait for it).
    decoder.on_problem(SiptoolError(f"capturing on {options.interface}, {capture.ports}"))
    try:
        decoder.feed(capture.items)
    except KeyboardInterrupt:
        decoder.feed(_flushed(capture.items))
    dropped = capture.sniffer.dropped
    if dropped:
        decoder.on_problem(
            SiptoolError(f"{capture.name}: the kernel dropped {dropped} packets (too busy)")
        )
    return decoder.finish()


def _flushed(
    items: Generator[RawMessage | Problem, None, None],
) -> Iterator[RawMessage | Problem]:
    """What a live capture still holds after Ctrl-C: thrown into its generator, the interrupt
    makes it yield its TCP streams' last messages and raise again (net.sniffer)."""
    try:
        yield items.throw(KeyboardInterrupt())
        yield from items
    except (KeyboardInterrupt, StopIteration):
        return


class _Decoder:
    """The decode loop's state: the result being built, the filters, the flows."""

    def __init__(
        self,
        options: DecodeOptions,
        on_message: Callable[[DecodedMessage], None],
        on_problem: Callable[[SiptoolError], None],
        on_flow: Callable[[CallFlow], None] | None,
        keylog: KeyLog | None = None,
    ) -> None:
        self.options = options
        self.on_message = on_message
        self.on_problem = on_problem
        self.on_flow = on_flow
        self.keep = MessageFilter(options.call_ids, options.methods)
        self.result = DecodeResult("")
        self.index = 0  # messages numbered across feeds (a live capture's flush after Ctrl-C)
        self.live = False
        self.flows = None
        if options.view is DecodeView.FLOW:
            from siptool.commands.callflow import CallFlows

            self.flows = CallFlows()
        self.media: MediaAnalysis | None = None
        if options.rtp:
            from siptool.commands.decode_media import MediaAnalysis

            self.media = MediaAnalysis()
        self.extractor = PacketExtractor(
            self.media.tracker if self.media is not None else None, keylog
        )
        self.keylog = keylog
        self.keylog_reported = 0  # key log problems reported so far
        # The media view shows no message: it parses only those that carry SDP (all of them
        # are counted; the other views validate the rest), unless a filter must read them.
        self.sdp_only = options.view is DecodeView.RTP and not self.keep.active

    def start(self, name: str, *, live: bool = False) -> None:
        self.result.input_name = name
        self.live = live
        self._keylog_problems()

    def _keylog_problems(self) -> None:
        """The key log lines not reported yet that cannot be used (a followed key log gains
        lines during a live capture); the rest of the key log still decrypts."""
        keylog = self.keylog
        if keylog is None:
            return
        for number, why in keylog.problems[self.keylog_reported :]:
            error = SiptoolError(f"{keylog.name}: line {number}: {why}", code="tls_keylog_error")
            self.result.errors.append(error)
            self.on_problem(error)
        self.keylog_reported = len(keylog.problems)

    def report(self, problem: InputProblem) -> None:
        error = SiptoolError(problem.text(self.result.input_name), code=problem.code)
        self.result.errors.append(error)
        self.result.summary.invalid += 1
        self.on_problem(error)

    def feed(self, items: Iterable[RawMessage | Problem]) -> None:
        summary = self.result.summary
        flows, on_flow, keep = self.flows, self.on_flow, self.keep
        # A live capture hands each call on as soon as it ends; a file every 256 messages.
        every = 0 if self.live else 255
        media = self.media
        if self.sdp_only:
            items = self._with_sdp(items)
        for decoded in decode_items(items, lint=self.options.lint, start=self.index):
            if isinstance(decoded, InputProblem):
                self.report(decoded)
                continue
            self.index = decoded.index
            if not keep(decoded):
                summary.filtered_out += 1
                continue
            if decoded.sip is not None:
                summary.sip += 1
                if media is not None:
                    media.sip(decoded.sip, decoded.raw.src, decoded.raw.time)
            else:
                summary.stun += 1
            if flows is not None:
                flows.add(decoded)
                if on_flow is not None and not summary.sip & every:
                    for flow in flows.ended(decoded.raw.time):
                        on_flow(flow)
            self.on_message(decoded)

    def _with_sdp(self, items: Iterable[RawMessage | Problem]) -> Iterator[RawMessage | Problem]:
        """``items`` without the SIP messages that carry no SDP (RFC 8866 §5: it begins with
        v=0), which are only counted; an INVITE always passes (a late offer's caller)."""
        summary = self.result.summary
        for item in items:
            if (
                isinstance(item, RawMessage)
                and item.protocol == "sip"
                and b"v=0" not in item.data
                and not item.data.startswith(b"INVITE ")
            ):
                summary.sip += 1
                continue
            yield item

    def idle(self) -> None:
        """A live capture's second without a message: hand on the calls that ended."""
        if self.flows is not None and self.on_flow is not None:
            for flow in self.flows.ended(time.time()):
                self.on_flow(flow)

    def finish(self) -> DecodeResult:
        result = self.result
        flows = self.flows
        result.flows = flows.flows if flows is not None else None
        if self.on_flow is not None and result.flows is not None:
            for flow in result.flows:
                self.on_flow(flow)
            result.flows = []
        result.summary.not_decoded = self.extractor.undecoded()
        result.summary.websocket = self.extractor.websockets()
        result.summary.tls = self.extractor.tls_sessions()
        self._keylog_problems()
        if self.media is not None:
            result.media = self.media.report(frozenset(self.options.call_ids))
            places = result.media.problem_places
            for kind, count in result.media.problems.items():
                # Bad media makes the input not clean, as a bad SIP message does.
                packets = "1 packet" if count == 1 else f"{count} packets"
                first = f" (the first: {places[kind]})" if kind in places else ""
                self.report(InputProblem("", f"{packets}: {kind}{first}"))
        result.exit_code = ExitCode.FAILED if result.errors else ExitCode.OK
        return result
