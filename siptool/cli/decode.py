"""`siptool decode`: its flags, as typed ``DecodeOptions``; the work is in
siptool.commands.decode, the drawing in siptool.render.decode_text (table, -v, --flow) and
siptool.render.decode_json (--json, --jsonl).  Both are imported on use."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from siptool.cli.options import OutputFlags, output_options
from siptool.cli.run import Job, output_for, run_command

if TYPE_CHECKING:
    from siptool.commands.decode import DecodeOptions, DecodeResult
    from siptool.render.decode_json import JsonLinesRenderer, JsonRenderer
    from siptool.render.decode_text import TextRenderer
    from siptool.render.output import Output

    DecodeRenderer = TextRenderer | JsonRenderer | JsonLinesRenderer

COMMAND = "decode"
# commands.decode.InputFormat's values, here so that --help imports no engine.
FORMATS = ["auto", "sip", "stun", "hex", "pcap", "pcapng"]


@click.command(COMMAND)
@click.argument("source", required=False, default="-", metavar="[FILE|-]")
@click.option(
    "--format",
    "input_format",
    type=click.Choice(FORMATS),
    default="auto",
    show_default=True,
    help="Input format; auto detects SIP text, raw STUN, hex dumps, pcap and pcapng.",
)
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Show each message in full: headers, SDP, STUN attributes.",
)
@click.option("--flow", is_flag=True, help="Draw a ladder diagram per Call-ID, as plain text.")
@click.option("--lint", is_flag=True, help="Report RFC 3261 problems per message.")
@click.option(
    "--rtp",
    is_flag=True,
    help="Analyse the RTP/RTCP streams and each call's media (one-way audio, NAT, DTMF, MOS).",
)
@click.option(
    "--call-id", "call_ids", multiple=True, metavar="ID", help="Only this Call-ID (repeatable)."
)
@click.option(
    "--method",
    "methods",
    multiple=True,
    metavar="METHOD",
    help="Only requests of this method and their responses (repeatable).",
)
@click.option("--jsonl", is_flag=True, help="One JSON object per message, then a summary object.")
@click.option(
    "-i",
    "--interface",
    metavar="IFACE",
    help="Capture live on IFACE (or 'any') instead of reading FILE; needs root or CAP_NET_RAW.",
)
@click.option(
    "--port",
    "ports",
    multiple=True,
    metavar="N|LOW-HIGH",
    help="With -i: capture these UDP/TCP ports (repeatable; default 3478 5060 5061 5349).",
)
@click.option(
    "-n", "--count", type=click.IntRange(min=1), metavar="N", help="With -i: stop after N packets."
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="With -i: stop after SECONDS.",
)
@click.option(
    "--write",
    metavar="FILE.pcapng",
    help="With -i: save every captured packet to FILE.pcapng as it is decoded.",
)
@click.option(
    "--tls-keylog",
    metavar="FILE",
    help="Decrypt TLS 1.2/1.3 with the secrets in FILE (NSS key log, as SSLKEYLOGFILE writes).",
)
@output_options
def decode(
    source: str,
    input_format: str,
    verbose: bool,
    flow: bool,
    lint: bool,
    rtp: bool,
    call_ids: tuple[str, ...],
    methods: tuple[str, ...],
    jsonl: bool,
    interface: str | None,
    ports: tuple[str, ...],
    count: int | None,
    duration: float | None,
    write: str | None,
    tls_keylog: str | None,
    output: OutputFlags,
) -> None:
    """Decode SIP, SDP and STUN from text, hex, raw bytes, pcap or pcapng.

    FILE defaults to standard input. SIP over TCP is reassembled; STUN is found on any port by
    its magic cookie. With -i, packets are captured live and decoded as they arrive, until
    --count, --duration or Ctrl-C (which prints the summary). Exit 0 when every message decoded
    cleanly, 1 when some input was invalid (each problem is one line on stderr), 3 when the
    input could not be read or the capture could not start.
    """

    def prepare() -> Job[DecodeResult]:
        from siptool.commands.decode import DecodeOptions, DecodeView, InputFormat, run_decode
        from siptool.commands.decode_live import DEFAULT_PORTS, parse_ports
        from siptool.errors import UsageError

        shown = output_for(COMMAND, output, jsonl=jsonl)
        if interface is None:
            given = [name for name, v in (("--port", ports), ("--count", count),
                     ("--duration", duration), ("--write", write)) if v]  # fmt: skip
            if given:
                raise UsageError(f"{', '.join(given)} only apply to a live capture (-i IFACE)")
        elif source != "-":
            raise UsageError("decode reads FILE or captures with -i IFACE, not both")
        try:
            # --rtp live: every port, as the media ports are only known from the SDP.
            captured = parse_ports(ports) if ports else (() if rtp else DEFAULT_PORTS)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        options = DecodeOptions(
            source=source,
            input_format=InputFormat(input_format),
            # The media view shows no message; the JSON documents carry them all the same.
            view=DecodeView.of(verbose=verbose, flow=flow, rtp=rtp and shown.text),
            rtp=rtp,
            lint=lint,
            call_ids=call_ids,
            methods=tuple(m.upper() for m in methods),
            interface=interface,
            ports=captured,
            count=count,
            duration=duration,
            write=write,
            tls_keylog=tls_keylog,
        )
        renderer = renderer_for(shown, options)
        return Job(
            shown,
            renderer,
            lambda: run_decode(options, renderer.message, renderer.problem, renderer.flow),
        )

    run_command(COMMAND, prepare)


def renderer_for(output: Output, options: DecodeOptions) -> DecodeRenderer:
    """The renderer of the output mode: JSON, JSONL or text (in the options' view)."""
    from siptool.render.output import OutputMode

    live = options.interface is not None
    if output.mode is OutputMode.JSONL:
        from siptool.render.decode_json import JsonLinesRenderer

        return JsonLinesRenderer(output, live=live)
    if output.mode is OutputMode.JSON:
        from siptool.render.decode_json import JsonRenderer

        return JsonRenderer(output, live=live)
    from siptool.render.decode_text import TextRenderer

    return TextRenderer(output, view=options.view, lint=options.lint, live=live)
