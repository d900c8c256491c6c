"""`siptool decode`: input bytes -> candidate messages -> parsed messages -> a renderer.

The command reads the whole input (file or stdin), lets ``siptool.capture`` find the candidate
messages, parses each with the SIP or STUN engine, and streams the results to the renderer the
flags chose.  Every problem (unreadable packet, invalid message, truncated capture) becomes one
line on stderr naming the input and the packet or byte, and the decoding goes on.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from siptool.capture import Problem, RawMessage, iter_input
from siptool.errors import ParseError
from siptool.sip.lint import (
    LintWarning,
    lint_message,
    lost_carriage_returns,
    malformed_fields,
)
from siptool.sip.message import SipMessage, clean_text, parse_message

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_NOT_RUN = 3

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


@dataclass(frozen=True)
class DecodeOptions:
    source: str
    input_format: str = "auto"
    verbose: bool = False
    flow: bool = False
    lint: bool = False
    call_ids: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    output: str = "text"  # "text", "json" or "jsonl"
    quiet: bool = False
    color: bool = True


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

    def to_dict(self) -> dict[str, int]:
        return {
            "sip": self.sip,
            "stun": self.stun,
            "invalid": self.invalid,
            "filtered_out": self.filtered_out,
        }


@dataclass
class DecodeResult:
    """What the renderers get at the end; messages are streamed to them before."""

    input_name: str
    summary: Summary = field(default_factory=Summary)
    problems: list[InputProblem] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_INVALID if self.problems else EXIT_OK


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
    items: Iterable[RawMessage | Problem], *, lint: bool
) -> Iterator[DecodedMessage | InputProblem]:
    """Parse every candidate; a message that parses with a framing fault is yielded *and*
    reported, so that nothing decodable is lost."""
    index = 0
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


def read_input(source: str) -> tuple[str, bytes]:
    """(name for messages, bytes).  ``-`` is standard input."""
    if source == "-":
        return "<stdin>", sys.stdin.buffer.read()
    with open(source, "rb") as handle:
        return source, handle.read()


def run(
    options: DecodeOptions, *, stdout: IO[str] | None = None, stderr: IO[str] | None = None
) -> int:
    """Decode, render, return the exit code (shared/cli-contract.md)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        name, data = read_input(options.source)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        shown = clean_text(options.source)
        err.write(f"siptool decode: cannot read {shown}: {reason}\n")
        _render_failure(options, out, f"cannot read {shown}: {reason}", "input_error")
        return EXIT_NOT_RUN
    name = clean_text(name)  # a file name that is not UTF-8 must not break the JSON output

    result = DecodeResult(name)
    renderer = _renderer(options, out, err)

    def report(problem: InputProblem) -> None:
        result.problems.append(problem)
        result.summary.invalid += 1
        err.write(f"siptool decode: {problem.text(name)}\n")

    try:
        items: Iterable[RawMessage | Problem] = iter_input(data, input_format=options.input_format)
    except ParseError as exc:
        report(InputProblem(f"byte {exc.offset}" if exc.offset is not None else "", exc.message))
        items = ()
    keep = MessageFilter(options.call_ids, options.methods)
    try:
        for decoded in decode_items(items, lint=options.lint):
            if isinstance(decoded, InputProblem):
                report(decoded)
                continue
            if not keep(decoded):
                result.summary.filtered_out += 1
                continue
            if decoded.sip is not None:
                result.summary.sip += 1
            else:
                result.summary.stun += 1
            renderer.message(decoded)
        renderer.finish(result)
    except BrokenPipeError:
        # `siptool decode big.pcap | head`: the reader left, which is not an error.  Point
        # stdout at /dev/null so that the interpreter's final flush does not complain.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return result.exit_code


def _render_failure(options: DecodeOptions, out: IO[str], message: str, code: str) -> None:
    if options.output == "text":
        return
    from siptool.render.json import dump, envelope

    doc = envelope("decode", EXIT_NOT_RUN, [{"code": code, "message": message}])
    doc.update(
        {"input": clean_text(options.source), "messages": [], "summary": Summary().to_dict()}
    )
    if options.output == "jsonl":
        doc = {"summary": doc.pop("summary"), **doc}
    out.write(dump(doc) + "\n")


class Renderer:
    def message(self, decoded: DecodedMessage) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def finish(self, result: DecodeResult) -> None:  # pragma: no cover - interface
        raise NotImplementedError


def _renderer(options: DecodeOptions, out: IO[str], err: IO[str]) -> Renderer:
    if options.output == "jsonl":
        from siptool.render.decode_json import JsonLinesRenderer

        return JsonLinesRenderer(out, flow=options.flow)
    if options.output == "json":
        from siptool.render.decode_json import JsonRenderer

        return JsonRenderer(out, flow=options.flow)
    from siptool.render.decode_text import TextRenderer

    return TextRenderer(out, options)
