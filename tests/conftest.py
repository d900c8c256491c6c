"""The peers every test module shares (Kamailio, coturn, stund, SIPp, hostile peers) are the
fixtures of tests/support/fixtures.py, registered here for the whole tree."""

pytest_plugins = ("tests.support.fixtures",)
