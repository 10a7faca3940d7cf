"""The metric against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import brickwall, noise

from specsr.errors import SpecsrError
from specsr.metrics import hf_start_bin, mean_scores, metric_log_power, score


@pytest.mark.parametrize("gain", [0.5, 2.0, 3.0])
def test_gain_error_gives_exact_lsd(gain):
    x = noise(1.0, 48000, level=0.3)[0].astype(np.float64)
    s = score(x, gain * x, 16000)
    expected = abs(math.log10(gain**2))
    assert s.lsd == pytest.approx(expected, abs=1e-6)
    assert s.lsd_hf == pytest.approx(expected, abs=1e-6)
    assert s.lsd_lf == pytest.approx(expected, abs=1e-6)
    assert s.snr == pytest.approx(20 * math.log10(1 / abs(1 - gain)), abs=1e-6)


def test_identical_signals():
    x = noise(0.5, 48000)[0]
    s = score(x, x, 8000)
    assert s.lsd == 0 and s.lsd_hf == 0 and s.lsd_lf == 0 and math.isinf(s.snr)


def test_empty_high_band_is_clamped_at_1e_minus_8():
    """An estimate with nothing above the cutoff: its log-power sits at the clamp (-8)."""
    x = noise(1.0, 48000, level=0.3)[0].astype(np.float64)
    low = brickwall(x[None], 48000, 8000)[0].astype(np.float64)
    l_ref = metric_log_power(torch.from_numpy(x))
    l_est = metric_log_power(torch.from_numpy(low))
    k = hf_start_bin(16000)
    assert k == 341
    assert l_est[400:, 3:-3].max() <= -7.0  # away from the edges (circular wrap), the clamp floor
    s = score(x, low, 16000)
    by_hand = float(torch.sqrt(((l_est[k:] - l_ref[k:]) ** 2).mean(0)).mean())
    assert s.lsd_hf == pytest.approx(by_hand, rel=1e-6)


def test_hf_start_bin_matches_definition():
    assert hf_start_bin(8000) == int(1025 * 8000 / 48000) == 170
    assert hf_start_bin(24000) == 512


def test_errors_and_means():
    with pytest.raises(SpecsrError, match="differ in length"):
        score(np.zeros(5000), np.zeros(5001), 16000)
    with pytest.raises(SpecsrError, match="too short"):
        score(np.zeros(100), np.zeros(100), 16000)
    a = score(noise(0.5, 48000)[0], 2 * noise(0.5, 48000)[0], 16000)
    b = score(noise(0.5, 48000)[0], noise(0.5, 48000)[0], 16000)
    m = mean_scores([a, b])
    assert m.lsd == pytest.approx((a.lsd + b.lsd) / 2)
    assert m.snr == pytest.approx(a.snr)  # inf SNR of the identical pair is left out of the mean
