"""`siptool --help` and `--version` stay as cheap as importing click (issue 2)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.run import siptool

HEAVY = (
    "asyncio",
    "dns",
    "rich.console",
    "rich.table",
    "rich.text",
    "siptool.capture",
    "siptool.sip",
    "websockets",  # SIP over WebSocket imports it when a ws/wss flow opens, never at --help
)

PROBE = """
import json, sys
sys.argv = ["siptool", *json.loads(sys.argv[1])]
from siptool.cli import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args",
    [["--help"], ["--version"], ["decode", "--help"], ["nat-type", "-h"], ["options-ping", "-h"]],
)
def test_help_and_version_import_nothing_heavy(args: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip(), "the command printed nothing"
    modules = json.loads(out.stderr.strip().splitlines()[-1])
    loaded = [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert loaded == []


def test_version_prints_the_package_version() -> None:
    from siptool import __version__

    out = siptool("--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"siptool, version {__version__}"
