"""`siptool publish`: its flags, as typed ``PublishOptions``; the work is in
siptool.commands.publish, the drawing in siptool.render.publish."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from siptool.cli.options import (
    SipCheckFlags,
    body_options,
    parse_target_flag,
    seconds_option,
    sip_check_options,
)
from siptool.cli.run import Job, output_for, run_command

if TYPE_CHECKING:
    from siptool.commands.publish import PublishResult

COMMAND = "publish"


@click.command(COMMAND)
@click.argument("target", metavar="TARGET")
@click.option(
    "--event", default="presence", show_default=True, metavar="PACKAGE", help="Event package."
)
@click.option(
    "--status",
    type=click.Choice(["open", "closed"]),
    help="Presence basic status to publish (PIDF, RFC 3863).",
)
@click.option("--note", metavar="TEXT", help="A note in the PIDF tuple.")
@body_options
@click.option(
    "--expires",
    type=click.IntRange(1, 2**31 - 1),
    default=3600,
    show_default=True,
    help="Publication lifetime asked for, in seconds.",
)
@click.option("--refresh", is_flag=True, help="Refresh the publication once (SIP-If-Match).")
@seconds_option("--duration", help="Keep the publication this long, refreshed before it ends.")
@click.option(
    "--remove", is_flag=True, help="Remove the publication at the end (Expires: 0, SIP-If-Match)."
)
@click.option("--etag", metavar="ETAG", help="Refresh or remove this earlier publication.")
@click.option("--auth-user", metavar="NAME", help="Authentication user name, when not --user.")
@sip_check_options
def publish(
    target: str,
    event: str,
    status: str | None,
    note: str | None,
    body: str | None,
    content_type: str | None,
    expires: int,
    refresh: bool,
    duration: float | None,
    remove: bool,
    etag: str | None,
    auth_user: str | None,
    check: SipCheckFlags,
) -> None:
    """PUBLISH event state (RFC 3903): publish presence, refresh it, remove it.

    With --event presence (the default) the body is a PIDF document (RFC 3863) with --status
    open|closed and --note; for another package give the document with --body and
    --content-type. The SIP-ETag of each answer is kept for --refresh, --duration and --remove;
    --etag refreshes or removes an earlier run's publication. 412 Conditional Request Failed is
    named.
    """

    def prepare() -> Job[PublishResult]:
        from siptool.commands.publish import PublishOptions, run_publish
        from siptool.commands.sip_common import read_body, read_password
        from siptool.commands.sip_request import aor_of
        from siptool.errors import UsageError
        from siptool.render.publish import PublishRenderer
        from siptool.sip.pidf import MEDIA_TYPE, Basic, build_pidf

        if check.nagios.nagios:
            raise UsageError("publish has no --nagios line; use its exit code or --json")
        parsed = parse_target_flag(target, check.sip.transport)
        payload, kind, published = b"", content_type, None
        if etag is not None:
            if status or note or body:
                raise UsageError("--etag refreshes or removes a publication: no new state with it")
            if not (refresh or remove or duration):
                raise UsageError("--etag needs --refresh, --duration or --remove")
        elif body is not None:
            if status or note:
                raise UsageError("--body is the whole document: not with --status or --note")
            if content_type is None:
                raise UsageError("--body needs --content-type (the package's media type)")
            payload = read_body(body)
        elif event == "presence":
            if status is None:
                raise UsageError("--status open|closed (or --body) is the state to publish")
            entity = aor_of(parsed, check.sip.user or parsed.uri.user or "siptool")
            payload, kind = build_pidf(entity, Basic(status), note), MEDIA_TYPE
            published = {"status": status, "note": note}
        else:
            raise UsageError(f"--event {event}: give the document with --body and --content-type")
        options = PublishOptions(
            target=parsed,
            settings=check.settings(),
            event=event,
            body=payload,
            content_type=kind,
            password=read_password(check.sip.password_file, prompt=False),
            auth_user=auth_user,
            expires=expires,
            etag=etag,
            refresh=refresh,
            duration=duration,
            remove=remove,
        )
        shown = output_for(COMMAND, check.output)
        renderer = PublishRenderer(shown)
        return Job(
            shown,
            renderer,
            lambda: run_publish(options, published),
            pcap_out=check.network.pcap_out,
        )

    run_command(COMMAND, prepare)
