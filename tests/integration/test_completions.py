"""The shipped completion scripts in the real shells: bash completes from them, zsh and fish
parse them, fish completes a choice."""

from __future__ import annotations

import subprocess

import pytest

from siptool.docgen import ROOT
from tests.support.peers import require_tool


def _bash_complete(words: list[str]) -> list[str]:
    script = (
        f"source {ROOT / 'completions' / 'siptool.bash'}\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        "_siptool\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_bash_completes_commands_options_and_choices() -> None:
    assert _bash_complete(["siptool", "nat"]) == ["nat-type"]
    assert "--format" in _bash_complete(["siptool", "decode", "--fo"])
    assert _bash_complete(["siptool", "decode", "--format", "pc"]) == ["pcap", "pcapng"]


@pytest.mark.parametrize(
    ("shell", "args", "path"),
    [
        ("zsh", ["-n"], "completions/_siptool"),
        ("fish", ["--no-execute"], "completions/siptool.fish"),
    ],
)
def test_shell_parses_its_completion_script(shell: str, args: list[str], path: str) -> None:
    binary = require_tool(shell)
    result = subprocess.run([binary, *args, str(ROOT / path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_fish_completes_a_choice() -> None:
    fish = require_tool("fish")
    script = f"source {ROOT / 'completions/siptool.fish'}; complete -C 'siptool decode --format p'"
    out = subprocess.run([fish, "-c", script], capture_output=True, text=True, check=True)
    assert [line.split("\t")[0] for line in out.stdout.splitlines()] == ["pcap", "pcapng"]
