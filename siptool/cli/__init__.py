"""The click group.

Only click is imported here and in the per-command option modules: every command body imports
its engine, asyncio, dnspython and rich lazily, so ``siptool --help`` and ``siptool --version``
stay as cheap as importing click itself.
"""

from __future__ import annotations

import gc
import sys

import click

from siptool import __version__
from siptool.cli.decode import decode
from siptool.cli.exporter import exporter
from siptool.cli.ice_gather import ice_gather
from siptool.cli.invite_test import invite_test
from siptool.cli.message import message
from siptool.cli.nat_type import nat_type
from siptool.cli.options_ping import options_ping
from siptool.cli.publish import publish
from siptool.cli.register import register
from siptool.cli.send import send
from siptool.cli.stun_probe import stun_probe
from siptool.cli.subscribe import subscribe
from siptool.cli.turn_probe import turn_probe

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="siptool")
def cli() -> None:
    """SIP and STUN diagnostics: ping, register, test calls, STUN probes, NAT type, decoding.

    Every command prints a table for people, or one JSON document with --json for scripts.
    Exit codes: 0 the check passed, 1 it failed, 2 usage error, 3 siptool could not run it,
    130 interrupted (Ctrl-C) after cleaning up.
    """


for _command in (
    options_ping,
    register,
    invite_test,
    send,
    message,
    subscribe,
    publish,
    stun_probe,
    nat_type,
    turn_probe,
    ice_gather,
    decode,
    exporter,
):
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    # A run is short and allocates many small, mostly acyclic objects (messages, headers,
    # JSON dicts): with the default generation-0 threshold of 700 the cycle collector runs
    # thousands of times and costs a quarter of a 1,000-target ping.  Memory stays bounded:
    # reference counting frees nearly everything, the collector still runs, just less often.
    gc.set_threshold(50_000, 20, 20)
    try:
        code = cli.main(prog_name="siptool", standalone_mode=False)
    except click.UsageError as exc:
        from siptool.terminal import one_line

        # One line, like every other siptool error (cli/run.py), naming where help is.
        where = exc.ctx.command_path if exc.ctx is not None else "siptool"
        hint = f" (see '{where} --help')"
        sys.stderr.write(f"{where}: {one_line(exc.format_message())}{hint}\n")
        raise SystemExit(exc.exit_code) from None
    except click.ClickException as exc:
        from siptool.terminal import one_line

        sys.stderr.write(f"siptool: {one_line(exc.format_message())}\n")
        raise SystemExit(exc.exit_code) from None
    except click.Abort:
        from siptool.errors import ExitCode

        # Ctrl-C before a command's runner took over (while click parsed the flags).
        sys.stderr.write("siptool: interrupted\n")
        raise SystemExit(ExitCode.INTERRUPTED) from None
    raise SystemExit(code if isinstance(code, int) else 0)
