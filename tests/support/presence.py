"""A real Kamailio as registrar, MESSAGE router, proxy and presence server, for the tests of
the SUBSCRIBE/NOTIFY/PUBLISH/MESSAGE/REFER commands (issue 11).

The routing is tests/fixtures/kamailio-presence.cfg (its header says what each method gets);
this module gives it a free port on 127.0.0.1 (UDP and TCP; ::1 too with ``ipv6``), an SQLite
database made from Kamailio's own schema, and waits for a real OPTIONS answer, as
tests/support/kamailio.py does for the plain registrar.  Event packages served: presence
(RFC 3856, PIDF RFC 3863, presence_xml), dialog (RFC 4235, presence_dialoginfo; fed by
pua_dialoginfo from the INVITEs through this proxy: BLF), message-summary (RFC 3842,
presence_mwi; fed by a PUBLISH like a voicemail server's), reg (RFC 3680, presence_reginfo;
fed by pua_reginfo from the REGISTERs it takes).

Decisions:
- db_sqlite, the file created here with Python's sqlite3 from
  /usr/share/kamailio/db_sqlite/{standard,presence}-create.sql: the modules check the table
  versions at startup.  The presence state itself is kept in shared memory (see the config):
  db_sqlite sets no busy timeout, so two Kamailio processes writing at once lose a write.
- ``usrloc_presence`` (pua_usrloc, on by default): a REGISTER also PUBLISHes a PIDF "open"
  tuple for its user, as a presence server with registration-based presence does.  presence_xml
  aggregates it with what a client PUBLISHes for the same user, so a test that PUBLISHes
  "closed" for a registered user sees both tuples; such a test turns it off.
- The readiness check is the plain registrar's (an OPTIONS to sip:ping@, answered 200 by the
  server itself since ping is not registered).
- The SIPp scenarios of tests/fixtures/sipp/ that exercise it (uac-publish.xml,
  uac-publish-mwi.xml, uac-subscribe.xml, uac-message.xml, uas-message.xml, uac-refer.xml)
  run through tests.support.media_calls.Party; ``sipp_logs`` reads what they logged.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from tests.support.kamailio import PASSWORD, _options_answered
from tests.support.paths import FIXTURES
from tests.support.peers import require_tool, unavailable
from tests.support.servers import Server, free_port

PRESENCE_CFG = FIXTURES / "kamailio-presence.cfg"
SQLITE_SCHEMA = Path("/usr/share/kamailio/db_sqlite")
SCHEMA_FILES = ("standard-create.sql", "presence-create.sql")


@dataclass
class PresenceKamailio:
    server: Server
    host: str
    port: int
    database: Path
    host6: str | None = None
    port6: int | None = None

    def uri(self, transport: str = "udp", user: str | None = None, v6: bool = False) -> str:
        """This server (or ``user`` at it) as a SIP URI; ``transport`` udp or tcp."""
        if v6 and self.host6 is None:
            raise ValueError("started without ipv6")
        host, port = (f"[{self.host6}]", self.port6) if v6 else (self.host, self.port)
        userpart = f"{user}@" if user else ""
        params = "" if transport == "udp" else f";transport={transport}"
        return f"sip:{userpart}{host}:{port}{params}"

    @property
    def hostport(self) -> str:
        """host:port, the remote address SIPp and sipsak take."""
        return f"{self.host}:{self.port}"

    @property
    def log(self) -> str:
        """Kamailio's whole log (stderr and stdout) so far."""
        try:
            return self.server.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        self.server.stop()


def create_database(path: Path) -> Path:
    """An SQLite file with the version table and the presence/pua tables of Kamailio's
    schema; skip (laptop) or fail (CI) if kamailio-sqlite-modules' schema is missing."""
    sources = [SQLITE_SCHEMA / name for name in SCHEMA_FILES]
    if not all(source.is_file() for source in sources):
        unavailable(f"no {SQLITE_SCHEMA} schema (Debian package kamailio-sqlite-modules)")
    with contextlib.closing(sqlite3.connect(path)) as db:
        for source in sources:
            db.executescript(source.read_text())
        db.commit()
    return path


def _defines(database: Path, self_uri: str, *, auth: bool, password: str) -> list[str]:
    # db_sqlite's path is what follows "sqlite:///": "sqlite:///tmp/x" would be tmp/x.
    defines = [f'DB_URL="sqlite:///{database.resolve()}"', f'SELF_URI="{self_uri}"']
    if auth:
        defines += ["WITH_AUTH", f'AUTH_PASSWORD="{password}"']
    return [arg for define in defines for arg in ("-A", define)]


def start_presence_kamailio(
    directory: Path,
    *,
    auth: bool = False,
    password: str = PASSWORD,
    ipv6: bool = False,
    usrloc_presence: bool = True,
    debug: bool = False,
) -> PresenceKamailio:
    """Kamailio on 127.0.0.1 at one free port for UDP and TCP (and ::1 with ``ipv6``), its
    database and log in ``directory``; REGISTER is challenged (one ``password`` for every
    user) when ``auth``; ``debug`` logs every request it routes."""
    binary = require_tool("kamailio", "kamailio")
    host = "127.0.0.1"
    port = free_port("udp", host, both=True)
    listen = ["-l", f"udp:{host}:{port}", "-l", f"tcp:{host}:{port}"]
    port6 = None
    if ipv6:
        port6 = free_port("udp", "::1", both=True)
        listen += ["-l", f"udp:[::1]:{port6}", "-l", f"tcp:[::1]:{port6}"]
    directory.mkdir(parents=True, exist_ok=True)
    database = create_database(directory / "presence.sqlite")
    rundir = directory / "run"
    rundir.mkdir(exist_ok=True)
    argv = [binary, "-f", str(PRESENCE_CFG), "-DD", "-E", "-Y", str(rundir)]
    argv += ["-P", str(rundir / "kamailio.pid"), "-w", str(rundir), "-m", "64", "-M", "8"]
    argv += _defines(database, f"sip:{host}:{port}", auth=auth, password=password)
    argv += [] if usrloc_presence else ["-A", "NO_USRLOC_PRESENCE"]
    argv += ["-A", "WITH_DEBUG"] if debug else []
    server = Server([*argv, *listen], log=directory / "kamailio.log")
    server.wait_until(lambda: _options_answered(host, port), what="(answering OPTIONS)")
    if port6 is not None:
        server.wait_until(lambda: _options_answered("::1", port6), what="(IPv6)")
    return PresenceKamailio(server, host, port, database, "::1" if ipv6 else None, port6)


def sipp_logs(work: Path) -> dict[str, list[str]]:
    """What the SIPp scenarios run in ``work`` logged (-trace_logs): "name=value" lines,
    grouped by name in the order logged (a scenario may log a name more than once)."""
    logged: dict[str, list[str]] = {}
    for path in sorted(work.glob("*_logs.log")):
        for line in path.read_text(errors="replace").splitlines():
            name, sep, value = line.partition("=")
            if sep and name.isidentifier():
                logged.setdefault(name, []).append(value.strip())
    return logged
