"""options-ping, register and invite-test against a hostile SIP peer on loopback (issue 8):
numbers written with non-ASCII digits, terminal control sequences in everything the peer
controls, and passwords written into the target URI."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.hostile_sip import hostile_uas
from tests.support.run import Run, siptool

# ESC[2J clears the screen, ESC]0;…BEL retitles the terminal, CSI 31m colours.
CLEAR = "\x1b[2J"
TITLE = "\x1b]0;pwned\x07"
HOSTILE_TEXT = f"OK{CLEAR}{TITLE}\x9b31m"


def no_controls(text: str) -> None:
    """Nothing a terminal would act on: no ESC, BEL, CSI (C1) or other C0 control but LF/TAB."""
    bad = [c for c in text if (ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) < 0xA0]
    assert not bad, f"control characters reached the output: {bad!r} in {text!r}"


def sdp(formats: str) -> bytes:
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio 4000 RTP/AVP {formats}\r\na=rtpmap:0 PCMU/8000\r\n"
    ).encode()


def call_script(answer_sdp: bytes, reason: str = "OK", server: str = "hostile") -> Any:
    return {
        "INVITE": [
            (180, reason, [f"Server: {server}"], b""),
            (
                200,
                reason,
                [
                    f"Server: {server}",
                    "Content-Type: application/sdp",
                ],
                answer_sdp,
            ),
        ],
        "BYE": [(200, reason, [], b"")],
    }


# --- Non-ASCII digits: a number is ASCII digits or a parse error, never a traceback ---------


@pytest.mark.parametrize("digit", ["\u00b2", "\u0663", "\uff11"])  # ², Arabic-Indic 3, fullwidth 1
def test_invite_test_answer_with_non_ascii_payload_type_gives_json_and_no_traceback(
    digit: str,
) -> None:
    with hostile_uas(call_script(sdp(f"0 {digit}"))) as peer:
        result = siptool("invite-test", "--json", "--timeout", "5", "--hold", "0", peer.uri())
    doc = json.loads(result.stdout)
    assert doc["command"] == "invite-test"
    assert doc["answered"] is True
    assert result.returncode == doc["exit_code"]
    # PCMU (format 0) is still read; the bogus format is not taken as a payload type number.
    assert doc["sdp_answer"]["codecs"][0].startswith("PCMU")


def test_invite_test_answer_whose_only_format_is_a_superscript_is_named_not_a_crash() -> None:
    with hostile_uas(call_script(sdp("\u00b2"))) as peer:
        result = siptool("invite-test", "--json", "--timeout", "5", "--hold", "0", peer.uri())
    doc = json.loads(result.stdout)
    assert doc["answered"] is True
    # The BYE still went out: the call was cleaned up.
    assert doc["bye_status"] == 200


def test_options_ping_non_ascii_cseq_or_content_length_in_answer_is_not_taken() -> None:
    # A 200 whose Content-Length is written with a superscript is not a valid answer: the
    # transaction times out and the malformed message is counted, no traceback.
    script = {"OPTIONS": [(200, "OK", ["Content-Length: \u00b2"], b"")]}
    with hostile_uas(script) as peer:
        result = siptool("options-ping", "--json", "--timeout", "1", peer.uri())
    doc = json.loads(result.stdout)
    assert result.returncode == 1
    assert doc["targets"][0]["stats"]["received"] == 0


# --- Terminal injection: peer text escaped in text and Nagios, exact in JSON ---------------


def test_options_ping_escapes_reason_and_server_in_text_nagios_and_wire_log() -> None:
    script = {"OPTIONS": [(200, HOSTILE_TEXT, [f"Server: srv{CLEAR}{TITLE}"], b"")]}
    with hostile_uas(script) as peer:
        text = siptool("options-ping", "--timeout", "2", peer.uri())
        verbose = siptool("options-ping", "-v", "--timeout", "2", peer.uri())
        nagios = siptool("options-ping", "--nagios", "--timeout", "2", peer.uri())
        several = siptool("options-ping", "-n", "2", "-i", "0.05", "--timeout", "2", peer.uri())
        as_json = siptool("options-ping", "--json", "--timeout", "2", peer.uri())
    assert text.returncode == 0, text.stderr
    for run in (text, verbose, nagios, several):
        no_controls(run.stdout)
        no_controls(run.stderr)
    assert "\\x1b[2J" in text.stdout  # shown, not acted on
    assert "\\x1b[2J" in verbose.stderr
    assert nagios.stdout.count("\n") == 1 and nagios.stdout.startswith("SIP OK")
    doc = json.loads(as_json.stdout)
    target = doc["targets"][0]
    assert target["replies"][0]["reason"] == HOSTILE_TEXT
    assert target["server"]["user_agent"] == f"srv{CLEAR}{TITLE}"


def test_options_ping_reason_with_newline_cannot_forge_a_second_nagios_line() -> None:
    # A bare LF inside a header value is folded away by parsing; a reason phrase may carry any
    # UTF-8 but CR/LF, so forge with the C1 NEL (U+0085), which some terminals treat as LF.
    script = {"OPTIONS": [(200, "OK\u0085CRITICAL - forged", [], b"")]}
    with hostile_uas(script) as peer:
        nagios = siptool("options-ping", "--nagios", "--timeout", "2", peer.uri())
    assert nagios.returncode == 0
    assert nagios.stdout.count("\n") == 1
    assert "\u0085" not in nagios.stdout and "\\x85" in nagios.stdout


def test_register_escapes_reason_auth_and_bindings() -> None:
    script = {
        "REGISTER": [
            (
                200,
                HOSTILE_TEXT,
                [f"Server: {TITLE}", f"Service-Route: <sip:sr@127.0.0.1;lr>{CLEAR}"],
                b"",
            )
        ]
    }
    with hostile_uas(script) as peer:

        def register(*mode: str) -> Run:
            return siptool(
                "register",
                *mode,
                "--user",
                "alice",
                "--timeout",
                "2",
                peer.uri("alice"),
                env={"SIPTOOL_PASSWORD": "x"},
            )

        text, verbose, nagios, as_json = (
            register(*m) for m in ([], ["-v"], ["--nagios"], ["--json"])
        )
    for run in (text, verbose, nagios):
        no_controls(run.stdout)
        no_controls(run.stderr)
    assert "\\x1b[2J" in text.stdout
    assert json.loads(as_json.stdout)["reason"] == HOSTILE_TEXT


def test_invite_test_escapes_reason_server_and_ladder() -> None:
    with hostile_uas(call_script(sdp("0"), reason=HOSTILE_TEXT, server=TITLE)) as peer:
        text = siptool("invite-test", "--timeout", "5", "--hold", "0", peer.uri())
        verbose = siptool("invite-test", "-v", "--timeout", "5", "--hold", "0", peer.uri())
    with hostile_uas(call_script(sdp("0"), reason=HOSTILE_TEXT, server=TITLE)) as peer:
        nagios = siptool("invite-test", "--nagios", "--timeout", "5", "--hold", "0", peer.uri())
    with hostile_uas(call_script(sdp("0"), reason=HOSTILE_TEXT, server=TITLE)) as peer:
        as_json = siptool("invite-test", "--json", "--timeout", "5", "--hold", "0", peer.uri())
    assert text.returncode == 0, text.stdout + text.stderr
    for run in (text, verbose, nagios):
        no_controls(run.stdout)
        no_controls(run.stderr)
    assert "\\x1b[2J" in text.stdout
    doc = json.loads(as_json.stdout)
    assert doc["final_reason"] == HOSTILE_TEXT


# --- A password in the target URI is refused, never echoed ---------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["options-ping"],
        ["options-ping", "--json"],
        ["options-ping", "--nagios"],
        ["register", "--user", "alice"],
        ["register", "--json", "--user", "alice"],
        ["invite-test"],
        ["invite-test", "--json"],
        ["invite-test", "-v"],
    ],
)
@pytest.mark.parametrize(
    "target", ["sip:alice:hunter2secret@127.0.0.1:9", "alice:hunter2secret@127.0.0.1:9"]
)
def test_password_in_target_uri_is_a_usage_error_that_never_echoes_it(
    command: list[str], target: str
) -> None:
    with hostile_uas({"OPTIONS": [(200, "OK", [], b"")]}) as peer:
        result = siptool(
            *command, "--timeout", "1", target.replace("127.0.0.1:9", f"127.0.0.1:{peer.port}")
        )
        assert peer.received == []  # nothing was sent
    assert result.returncode == 2
    assert "hunter2secret" not in result.stdout + result.stderr
    assert "--password-file" in result.stderr
    assert result.stderr.count("\n") == 1


def test_password_in_a_targets_file_is_refused_naming_the_line(tmp_path: Any) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text("sip:127.0.0.1:9\nsip:bob:hunter2secret@127.0.0.1:9\n")
    result = siptool("options-ping", "--file", str(targets), "--timeout", "1")
    assert result.returncode == 2
    assert "hunter2secret" not in result.stdout + result.stderr
    assert f"{targets}:2" in result.stderr
