"""Media analysis (pure): RTP streams and RTCP reports as tshark's ``rtp,streams`` counts them.

``RtpTracker`` is the ``capture.model.MediaSink`` that ``PacketExtractor(media=...)`` feeds;
``codecs`` says what a payload type is; ``rtcp`` reads RTCP compounds (RFC 3550, RFC 3611).
"""

from __future__ import annotations

from siptool.media.rtp import MediaProblem, RtpStream, RtpTracker

__all__ = ["MediaProblem", "RtpStream", "RtpTracker"]
