"""What every command's result carries beside its own findings.

Decisions:

- The verdicts are the command's, decided once (docs/ARCHITECTURE.md): ``exit_code``, the
  ``errors`` (``SiptoolError``s) and the --nagios verdict.  ``CheckResult`` declares them
  once for every result; cli/run.py and render/output.py's ``ResultRenderer`` read them.
- Its fields are keyword-only, so that each command's own fields (the target, the servers)
  stay first, and positional, in the command's constructor.
- A check of several targets or servers at once (options-ping, stun-probe) has one result
  per target (a ``Probed``) and the run's errors besides: its ``all_errors`` (the JSON
  document's errors) lists both, each target's with the target in front.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from siptool.commands.nagios import NagiosVerdict
from siptool.errors import ExitCode, SiptoolError


@dataclass(kw_only=True)
class CheckResult:
    """The exit code, the errors and the Nagios verdict (None without --nagios) of a run."""

    exit_code: ExitCode = ExitCode.OK
    errors: list[SiptoolError] = field(default_factory=list)
    nagios: NagiosVerdict | None = None

    @property
    def all_errors(self) -> list[SiptoolError]:
        """Every error of the run, as the JSON document lists them."""
        return self.errors


@dataclass(kw_only=True)
class Probed:
    """One target (options-ping) or server (stun-probe) of a check of several."""

    errors: list[SiptoolError] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The target or server as the user gave it."""
        raise NotImplementedError

    @property
    def failure(self) -> str:
        """Why it gave no usable answer, in a few words."""
        return self.errors[-1].message if self.errors else "no answer"


@dataclass(kw_only=True)
class SeveralResult(CheckResult):
    """A check of several targets or servers at once."""

    @property
    def probed(self) -> Sequence[Probed]:
        raise NotImplementedError

    @property
    def all_errors(self) -> list[SiptoolError]:
        """The run's errors, then each target's with the target in front."""
        return self.errors + [e.prefixed(p.name) for p in self.probed for e in p.errors]


__all__ = ["CheckResult", "Probed", "SeveralResult"]
