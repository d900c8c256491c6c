"""From click's keyword arguments to a RegisterResult on screen and an exit code."""

from __future__ import annotations

import sys
from typing import Any

from siptool.commands.register import RegisterOptions, register_sync
from siptool.commands.sip_common import read_password, settings_from_flags
from siptool.errors import ParseError, SiptoolError
from siptool.net.sip_transport import WireLog
from siptool.sip.target import parse_target, redact_password


def main(kw: dict[str, Any]) -> int:
    try:
        target = parse_target(kw["target"], kw["transport"])
    except ParseError as exc:
        shown = redact_password(kw["target"])
        sys.stderr.write(f"siptool register: bad target {shown!r}: {exc.message}\n")
        return 2
    user = kw["user"] or target.uri.user
    if not user:
        sys.stderr.write("siptool register: --user is required (or a user in the TARGET URI)\n")
        return 2
    mode = kw["mode"] or "register"
    try:
        password = read_password(kw["password_file"], prompt=mode != "query")
    except SiptoolError as exc:
        sys.stderr.write(f"siptool register: {exc.message}\n")
        return 3
    settings = settings_from_flags(kw, user=user)
    options = RegisterOptions(
        target=target,
        settings=settings,
        user=user,
        password=password,
        auth_user=kw["auth_user"],
        domain=kw["domain"],
        expires=kw["expires"],
        contact=kw["contact"],
        mode=mode,
    )
    result = register_sync(options, WireLog(settings.verbose))
    from siptool.render.register import render

    return render(
        result,
        mode="nagios" if kw["nagios"] else "json" if kw["as_json"] else "text",
        quiet=kw["quiet"],
        color=not kw["no_color"],
        warning_ms=kw["warning"],
        critical_ms=kw["critical"],
    )
