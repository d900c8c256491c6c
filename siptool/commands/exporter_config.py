"""The exporter's configuration: modules, as blackbox_exporter has them, in TOML (the standard
library's ``tomllib``)::

    [modules.options]
    prober = "options-ping"        # options-ping, register, invite-test, send, stun-probe,
    timeout = 5                    # nat-type or turn-probe; seconds, the scrape's own wins
    transport = "udp"              # below it (less the margin, blackbox_exporter's 0.5 s)

    [modules.trunk_tls]
    prober = "options-ping"
    transport = "tls"
    ca_file = "/etc/siptool/trunk-ca.pem"
    expect = "200"

    [modules.register]
    prober = "register"
    user = "monitor"
    password_file = "/etc/siptool/monitor.password"

Every other key of a module is the prober's own flag, spelt with underscores: ``ca_file`` is
--ca-file, ``count = 3`` is -n 3, ``header = ["X-Probe: 1"]`` is -H twice, ``insecure = true``
is --insecure (false: left out).  ``send`` takes its METHOD as ``method``.

Decisions:

- Secrets only from files (``password_file``, ``secret_file``): a module with ``password`` or
  ``secret`` is refused, and so is a target with a password in it (the target becomes a
  label).  The exporter never reads SIPTOOL_PASSWORD nor prompts.
- Keys that would change what a probe writes or where (output, --pcap-out, --textfile,
  --nagios, -v) belong to the exporter, not a module: refused, named.
- A module is checked when the exporter starts, by preparing a probe of it (click parses the
  flags as on the command line, the password file is read): a bad module stops the exporter
  with its name and the reason, rather than failing every scrape.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from typing import Any

from siptool.errors import InputError, UsageError

PROBERS = (
    "options-ping", "register", "invite-test", "send", "stun-probe", "nat-type", "turn-probe",
)  # fmt: skip
DEFAULT_TIMEOUT = 5.0
# The exporter's own: what a probe prints and where it writes.
RESERVED = frozenset({
    "json", "jsonl", "format", "textfile", "nagios", "warning", "critical", "pcap_out",
    "verbose", "quiet", "no_color", "resolve_only", "file", "listen",
})  # fmt: skip
SECRETS = {"password": "password_file", "secret": "secret_file"}
# Keys that are a positional argument before the target, not a flag (send METHOD TARGET).
POSITIONAL = {"send": ("method",)}


@dataclass(frozen=True)
class Module:
    name: str
    prober: str
    timeout: float
    flags: tuple[str, ...]  # the prober's flags, as on its command line
    positional: tuple[str, ...] = ()  # before the target (send's METHOD)


def load_config(path: str) -> dict[str, Module]:
    """The modules of the file at ``path``; ``InputError`` when it cannot be read or is not
    TOML, ``UsageError`` naming the module and key that is wrong."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise InputError(f"cannot read --config {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"--config {path}: not TOML: {exc}") from None
    return parse_modules(data, path)


def parse_modules(data: dict[str, Any], where: str) -> dict[str, Module]:
    unknown = sorted(set(data) - {"modules"})
    if unknown:
        raise UsageError(f"{where}: unknown table or key {unknown[0]!r} (only [modules.NAME])")
    modules = data.get("modules")
    if not isinstance(modules, dict) or not modules:
        raise UsageError(f"{where}: no [modules.NAME] table")
    return {name: _module(name, table, where) for name, table in modules.items()}


def _module(name: str, table: Any, where: str) -> Module:
    at = f"{where}: module {name!r}"
    if not isinstance(table, dict):
        raise UsageError(f"{at}: not a table")
    prober = table.get("prober")
    if prober not in PROBERS:
        raise UsageError(f"{at}: prober must be one of {', '.join(PROBERS)} (got {prober!r})")
    timeout = table.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 300:
        raise UsageError(f"{at}: timeout must be a number of seconds, above 0 and at most 300")
    flags: list[str] = []
    positional: list[str] = []
    for key, value in table.items():
        if key in ("prober", "timeout"):
            continue
        if key in SECRETS:
            raise UsageError(
                f"{at}: {key!r} in the config; put it in a file named by {SECRETS[key]!r}"
            )
        if key in RESERVED:
            raise UsageError(f"{at}: {key!r} is the exporter's, not a module's")
        if key in POSITIONAL.get(prober, ()):
            if not isinstance(value, str):
                raise UsageError(f"{at}: {key} must be a string")
            positional.append(value)
            continue
        flags += _flag(at, key, value)
    for key in POSITIONAL.get(prober, ()):
        if key not in table:
            raise UsageError(f"{at}: {prober} needs {key!r}")
    return Module(name, prober, float(timeout), tuple(flags), tuple(positional))


def _flag(at: str, key: str, value: Any) -> list[str]:
    option = "--" + key.replace("_", "-")
    if isinstance(value, bool):
        return [option] if value else []
    if isinstance(value, int | float | str):
        return [option, str(value)]
    if isinstance(value, list) and all(isinstance(v, int | float | str) for v in value):
        return [part for v in value for part in (option, str(v))]
    raise UsageError(f"{at}: {key} must be a string, number, boolean or list of them")
