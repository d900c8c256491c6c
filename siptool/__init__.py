"""siptool: a SIP and STUN diagnostic suite."""

__version__ = "0.1.0"
