"""The shared test infrastructure: peer starters, the siptool runner, capture builders.

Nothing here imports pytest at module level but ``fixtures`` (the pytest plugin that
tests/conftest.py registers), so the benchmarks can start the same peers without pytest.
"""
