"""`siptool decode` options; the work is in siptool.commands.decode (imported on use)."""

from __future__ import annotations

import click

from siptool.cli.options import OutputFlags, output_options

FORMATS = ["auto", "sip", "stun", "hex", "pcap", "pcapng"]


@click.command("decode")
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
@output_options
def decode(
    source: str,
    input_format: str,
    verbose: bool,
    flow: bool,
    lint: bool,
    call_ids: tuple[str, ...],
    methods: tuple[str, ...],
    jsonl: bool,
    output: OutputFlags,
) -> None:
    """Decode SIP, SDP and STUN from text, hex, raw bytes, pcap or pcapng.

    FILE defaults to standard input. SIP over TCP is reassembled; STUN is found on any port by
    its magic cookie. Exit 0 when every message decoded cleanly, 1 when some input was invalid
    (each problem is one line on stderr), 3 when the input could not be read.
    """
    as_json, quiet, no_color = output.as_json, output.quiet, output.no_color
    if as_json and jsonl:
        raise click.UsageError("--json and --jsonl are exclusive")
    from siptool.commands.decode import DecodeOptions, run

    options = DecodeOptions(
        source=source,
        input_format=input_format,
        verbose=verbose,
        flow=flow,
        lint=lint,
        call_ids=call_ids,
        methods=tuple(m.upper() for m in methods),
        output="json" if as_json else "jsonl" if jsonl else "text",
        quiet=quiet,
        color=not no_color,
    )
    raise SystemExit(run(options))
