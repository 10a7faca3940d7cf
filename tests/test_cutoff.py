"""Cutoff detection on synthetic band-limited noise, silence, noise floors and stereo."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SHARED, brickwall, noise

from specsr.cutoff import detect_cutoff
from specsr.degrade import band_limit


@pytest.mark.parametrize("cutoff_hz", [4000, 8000, 11025, 16000, 22050])
@pytest.mark.parametrize("floor", [0.0, 1e-5, 1e-4])
def test_detects_band_limited_noise_within_3_percent(cutoff_hz, floor):
    x = brickwall(noise(2.0, 48000), 48000, cutoff_hz)
    x = x + floor * np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    est = detect_cutoff(x, 48000)
    assert est.band_limited
    assert abs(est.cutoff_hz / cutoff_hz - 1) <= 0.03


@pytest.mark.parametrize("family", ["resample_poly", "cheby1"])
def test_detects_resampled_audio(family):
    x = band_limit(noise(2.0, 48000), 48000, sr_in=16000, filter=family)
    est = detect_cutoff(x, 48000)
    assert est.band_limited and abs(est.cutoff_hz / 8000 - 1) <= 0.05


def test_full_band_and_silence():
    est = detect_cutoff(noise(1.0, 44100), 44100)
    assert not est.band_limited and est.cutoff_hz == 22050
    silent = detect_cutoff(np.zeros((2, 48000), np.float32), 48000)
    assert silent.silent and not silent.band_limited
    assert detect_cutoff(np.zeros(1, np.float32), 48000).silent


def test_robust_to_leading_silence_and_quiet_passages():
    x = brickwall(noise(1.0, 48000), 48000, 8000)
    padded = np.concatenate([np.zeros((1, 96000), np.float32), x, 1e-3 * x], axis=1)
    est = detect_cutoff(padded, 48000)
    assert abs(est.cutoff_hz / 8000 - 1) <= 0.03


def test_stereo_with_one_band_limited_channel_reports_the_wider():
    wide = noise(1.0, 48000, seed=2)
    narrow = brickwall(noise(1.0, 48000, seed=3), 48000, 6000)
    est = detect_cutoff(np.concatenate([narrow, wide]), 48000)
    assert not est.band_limited


@pytest.mark.skipif(not (SHARED / "eval").is_dir(), reason="shared eval clips not present")
def test_published_low_res_inputs_are_detected():
    """Real demo inputs stored at 48 kHz roll off before their nominal Nyquist, some with aliasing
    shoulders and dither near 24 kHz: every one must be found, where its response starts to fall."""
    import soundfile as sf

    for path in sorted((SHARED / "eval").glob("*/*/*/input.*")):
        sr_in = int(path.parts[-3].split("k-")[0]) * 1000
        wav, sr = sf.read(path, always_2d=True)
        est = detect_cutoff(wav.T, sr)
        assert est.band_limited, path
        assert 0.75 * sr_in / 2 <= est.cutoff_hz <= 1.05 * sr_in / 2, (path, est.cutoff_hz)
