"""The shipped completions and man pages match the CLI (the shells that read them:
tests/integration/test_completions.py)."""

from __future__ import annotations

from pathlib import Path

from siptool.docgen import generated_files, main


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
