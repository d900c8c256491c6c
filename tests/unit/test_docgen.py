"""The shipped completions and man pages match the CLI, and the shells accept them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from siptool.docgen import ROOT, generated_files, main


def test_generated_files_are_up_to_date() -> None:
    # Fails when a flag or command changed without `python -m siptool.docgen`.
    assert main(["--check"]) == 0


def test_check_reports_a_stale_file(tmp_path: Path) -> None:
    main(["--root", str(tmp_path)])
    (tmp_path / "man" / "siptool-decode.1").write_text("stale\n")
    assert main(["--check", "--root", str(tmp_path)]) == 1


def test_every_command_has_a_man_page_and_completion_entry() -> None:
    files = generated_files()
    for name in ("options-ping", "register", "invite-test", "stun-probe", "nat-type", "decode"):
        assert f"man/siptool-{name}.1" in files
        assert f"    {name})" in files["completions/siptool.bash"]
        assert f"-a {name} " in files["completions/siptool.fish"]
        assert f"'{name}:" in files["completions/_siptool"]


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
    if shutil.which(shell) is None:
        from tests.peers import unavailable

        unavailable(f"{shell} is not installed (Debian package {shell})")
    result = subprocess.run([shell, *args, str(ROOT / path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_fish_completes_a_choice() -> None:
    if shutil.which("fish") is None:
        from tests.peers import unavailable

        unavailable("fish is not installed (Debian package fish)")
    script = f"source {ROOT / 'completions/siptool.fish'}; complete -C 'siptool decode --format p'"
    out = subprocess.run(["fish", "-c", script], capture_output=True, text=True, check=True)
    assert [line.split("\t")[0] for line in out.stdout.splitlines()] == ["pcap", "pcapng"]
