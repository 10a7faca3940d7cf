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


def _bands(seconds: float = 2.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(time [T], low band < 8 kHz, high band >= 8 kHz) of white noise, split in the FFT domain."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 48000)
    spec = np.fft.rfft(rng.standard_normal(n) * 0.1)
    f = np.fft.rfftfreq(n, 1 / 48000)
    lf = np.fft.irfft(np.where(f < 8000, spec, 0), n)
    hf = np.fft.irfft(np.where(f >= 8000, spec, 0), n)
    return np.arange(n) / 48000, lf.astype(np.float32), hf.astype(np.float32)


def test_band_structure_hand_computed_cases():
    from specsr.metrics import score

    SR_IN = 16400  # the new band starts 9 bins above the 8 kHz split: no low band leaks into it
    t, lf, hf = _bands()
    env = (0.2 + np.abs(np.sin(2 * np.pi * 3 * t))).astype(np.float32)  # bursts at 6 Hz
    hf = env * hf
    ref = lf + hf
    same = score(ref, ref, SR_IN)
    assert same.band_bias_db == 0 and same.texture == 1 and same.top_band_db == 0
    assert same.envelope_r == pytest.approx(1.0)
    quiet = score(ref, lf + 0.1 * hf, SR_IN)  # the new band 20 dB down, everything else the same
    assert quiet.band_bias_db == pytest.approx(-20.0, abs=0.05)
    assert quiet.envelope_r > 0.99 and quiet.texture == pytest.approx(1.0, abs=0.05)
    assert quiet.top_band_db == pytest.approx(0.0, abs=0.5)
    # a steady new band at the same mean power does not follow the truth's bursts
    _, _, other = _bands(seed=2)
    steady = lf + float(np.sqrt(np.mean(env**2))) * other
    assert score(ref, steady, SR_IN).envelope_r < 0.3
    # a haze: the truth's new band holds harmonics (lines), the estimate smooth noise of the same power
    comb = sum(np.sin(2 * np.pi * f0 * t) for f0 in np.arange(8200, 23800, 400)).astype(np.float32)
    comb *= float(np.std(hf) / np.std(comb))
    haze = score(lf + comb, lf + hf, SR_IN)
    assert haze.texture < 0.6 and abs(haze.band_bias_db) < 3
    # the top band 20-24 kHz 10 dB too quiet, the rest right: the tilt shows it
    _, _, top = _bands(seed=1)
    n = len(t)
    f = np.fft.rfftfreq(n, 1 / 48000)
    top_only = np.fft.irfft(np.where(f >= 20000, np.fft.rfft(hf), 0), n).astype(np.float32)
    tilted = score(ref, ref - (1 - 10 ** (-10 / 20)) * top_only, SR_IN)
    assert tilted.top_band_db < -5 and tilted.band_bias_db < 0
    # undefined: no new band above 24 kHz, or a top band inside the given band
    assert np.isnan(score(ref, ref, 48000).band_bias_db) and np.isnan(score(ref, ref, 44100).top_band_db)


def test_reference_top_bin_ends_where_training_ends():
    from specsr.losses import band_mask
    from specsr.metrics import METRIC_STFT, reference_top_bin

    assert reference_top_bin(None) == reference_top_bin(48000) == reference_top_bin(96000) == 1025
    assert reference_top_bin(44100) == math.ceil(2048 * 0.95 * 22050 / 48000) == 894
    assert reference_top_bin(32000) == math.ceil(2048 * 0.95 * 16000 / 48000) == 649
    # the loss trains a 44.1 kHz source's bins up to the same one
    mask = band_mask(torch.tensor([8000.0]), torch.tensor([22050.0]), METRIC_STFT)
    assert int(mask[0].nonzero().max()) + 1 == reference_top_bin(44100)


def test_a_truth_below_48k_is_scored_up_to_its_own_nyquist():
    """An estimate is not charged for content above what a 44.1 kHz truth could hold; every figure is the
    same computation over the bins below 0.95 × its Nyquist."""
    from specsr.metrics import reference_top_bin

    n = 48000
    truth = brickwall(noise(1.0, 48000, level=0.3), 48000, 20000)[0].astype(np.float64)
    t = np.arange(n) / 48000
    est = truth + 0.05 * np.sin(2 * np.pi * 23000 * t)  # a tone the truth's rate cannot carry
    everything = score(truth, est, 16000)
    own = score(truth, est, 16000, ref_sr=44100)
    assert everything.lsd > 0.3
    top = reference_top_bin(44100)
    l_ref, l_est = metric_log_power(torch.from_numpy(truth)), metric_log_power(torch.from_numpy(est))
    k = hf_start_bin(16000)
    by_hand = float(torch.sqrt(((l_est[:top] - l_ref[:top]) ** 2).mean(0)).mean())
    by_hand_hf = float(torch.sqrt(((l_est[k:top] - l_ref[k:top]) ** 2).mean(0)).mean())
    assert own.lsd == pytest.approx(by_hand, rel=1e-6) and own.lsd_hf == pytest.approx(by_hand_hf, rel=1e-6)
    assert own.lsd < 0.01 and own.lsd_lf == everything.lsd_lf
    assert abs(own.band_bias_db) < 0.1 and own.texture == pytest.approx(1.0, abs=0.02)
    assert abs(own.top_band_db) < 0.5  # the top band ends at the truth's limit too
    assert everything.top_band_db > 10  # the tone counted when the truth is taken as 48 kHz
