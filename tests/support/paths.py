"""Where the repository and its test data are."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
CAPTURES = FIXTURES / "captures"
SCENARIOS = ROOT / "tests" / "sipp"
# Every real capture; a new fixture is picked up by the tests that go through them all.
CAPTURE_FILES = sorted(p for p in CAPTURES.iterdir() if p.suffix in {".pcap", ".pcapng", ".cap"})
