"""The local side of every network command: how long to wait, which address families, which
local address and port to bind, and whether to show the wire (-v).  One value, built once
from the flags (cli/options.py ``NetworkFlags.local``), carried by the STUN commands' options
instead of five loose fields."""

from __future__ import annotations

from dataclasses import dataclass

from siptool.addr import ALL_FAMILIES


@dataclass(frozen=True)
class LocalSettings:
    timeout: float = 5.0  # seconds to wait for an answer (nat-type: for the whole run)
    families: tuple[int, ...] = ALL_FAMILIES
    local_address: str | None = None
    local_port: int | None = None
    verbose: bool = False
