"""The simplified E-model estimate (siptool.media.mos) against hand-computed G.107 values."""

from __future__ import annotations

import pytest

from siptool.media.mos import estimate, mos_from_r


def test_the_mos_curve_is_g107_annex_b() -> None:
    assert mos_from_r(93.2) == pytest.approx(4.409, abs=1e-3)
    assert mos_from_r(50) == pytest.approx(2.575, abs=1e-3)
    assert mos_from_r(-5) == 1.0 and mos_from_r(120) == 4.5


def test_a_clean_g711_stream_is_near_the_top_of_the_scale() -> None:
    e = estimate("PCMU", 0.0, jitter_max_ms=1.0)
    # d = 20 ms packet + 20 ms minimum jitter buffer; Id = 0.024 * 40
    assert e.delay_ms == 40.0 and e.r_factor == pytest.approx(93.2 - 0.96)
    assert e.mos == pytest.approx(4.39, abs=0.01) and e.codec_assumed is None


def test_loss_is_weighed_by_the_codecs_robustness() -> None:
    e = estimate("PCMA/8000", 0.05, jitter_max_ms=10.0)  # d = 20 + 20
    ie_eff = 95 * 5 / (5 + 25.1)
    assert e.r_factor == pytest.approx(93.2 - 0.96 - ie_eff)
    g729 = estimate("G729", 0.05, jitter_max_ms=10.0)
    assert g729.r_factor == pytest.approx(93.2 - 0.96 - (11 + 84 * 5 / 24))
    assert g729.mos < e.mos


def test_delay_beyond_177_ms_costs_more_and_rtt_counts_half() -> None:
    near = estimate("PCMU", 0.0, jitter_max_ms=50.0, rtt_ms=200.0)  # d = 100 + 20 + 100
    assert near.delay_ms == 220.0
    assert near.r_factor == pytest.approx(93.2 - (0.024 * 220 + 0.11 * (220 - 177.3)))


def test_an_unknown_codec_is_rated_as_g711_and_says_so() -> None:
    e = estimate("AMR-WB", 0.0, 0.0)
    assert e.codec_assumed == "PCMU"
    assert e.to_dict()["estimate"] is True
