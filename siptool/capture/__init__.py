"""Capture and input layer: find SIP and STUN messages in text, hex dumps, raw STUN, pcap, pcapng.

Pure (no sockets, no clock).  ``iter_input(data)`` is the entry point; the decode command parses
each ``RawMessage`` it yields and reports each ``Problem``.
"""

from __future__ import annotations

from siptool.capture.extract import INPUT_FORMATS, PacketExtractor, iter_capture, iter_input
from siptool.capture.model import Problem, RawMessage
from siptool.capture.sniff import detect_format

__all__ = [
    "INPUT_FORMATS",
    "PacketExtractor",
    "Problem",
    "RawMessage",
    "detect_format",
    "iter_capture",
    "iter_input",
]
