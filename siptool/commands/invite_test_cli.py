"""From click's keyword arguments to a CallResult on screen and an exit code."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from siptool.commands.invite_test import InviteOptions, run_invite
from siptool.commands.sip_common import Expectation, read_password, settings_from_flags
from siptool.errors import ParseError, SiptoolError
from siptool.net.sip_transport import WireLog
from siptool.sip.sdp_offer import parse_codec_list
from siptool.sip.target import is_ip_address, parse_target

EXIT_USAGE, EXIT_NOT_RUN = 2, 3


def _usage(message: str) -> int:
    sys.stderr.write(f"siptool invite-test: {message}\n")
    return EXIT_USAGE


def main(kw: dict[str, Any]) -> int:
    try:
        target = parse_target(kw["target"], kw["transport"])
    except ParseError as exc:
        return _usage(f"bad target: {exc.message}")
    try:
        codecs = parse_codec_list(kw["codecs"])
        expect = Expectation.parse(kw["expect"])
    except ValueError as exc:
        return _usage(str(exc))
    media_address = kw["media_address"]
    if media_address is not None and not is_ip_address(media_address.strip("[]")):
        return _usage(f"--media-address {media_address!r} is not an IP address")
    if media_address is not None:
        media_address = media_address.strip("[]")
    settings = settings_from_flags(kw)
    password_error: list[str] = []

    def password() -> str | None:
        try:
            return read_password(kw["password_file"], prompt=True)
        except SiptoolError as exc:
            password_error.append(exc.message)
            return None

    options = InviteOptions(
        target=target,
        settings=settings,
        codecs=codecs,
        hold=kw["hold"],
        ring_timeout=kw["ring_timeout"],
        expect=expect,
        rtp=kw["rtp"],
        from_user=kw["from_user"],
        to_user=kw["to_user"],
        media_address=media_address,
        password=password,
    )
    from siptool.render.invite_test import InviteRenderer

    renderer = InviteRenderer(
        mode="nagios" if kw["nagios"] else "json" if kw["as_json"] else "text",
        quiet=kw["quiet"],
        color=not kw["no_color"],
        warning_ms=kw["warning"],
        critical_ms=kw["critical"],
    )
    log = WireLog(settings.verbose)
    try:
        result = asyncio.run(run_invite(options, log))
    except KeyboardInterrupt:
        sys.stderr.write("siptool invite-test: interrupted\n")
        return 130
    if password_error:
        result.errors.insert(0, {"code": "input_error", "message": password_error[0]})
        result.exit_code = EXIT_NOT_RUN
    return renderer.finish(result)
