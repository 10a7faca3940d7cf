"""The degradation: every family leaves < -60 dB above its cutoff and keeps the band below."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import noise

from specsr.degrade import FILTER_FAMILIES, apply, band_limit, random_degradation
from specsr.errors import SpecsrError

SR = 48000


def energy_above_db(y: np.ndarray, cutoff_hz: float) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(y.shape[-1]))) ** 2
    f = np.fft.rfftfreq(y.shape[-1], 1 / SR)
    return 10 * np.log10(spec[f > cutoff_hz].sum() / spec.sum() + 1e-30)


@pytest.mark.parametrize("family", FILTER_FAMILIES)
@pytest.mark.parametrize("sr_in", [8000, 12000, 16000, 22050, 24000])
def test_every_family_band_limits(family, sr_in):
    x = noise(1.0, SR)[0]
    y = band_limit(x, SR, sr_in=sr_in, filter=family)
    assert y.shape == x.shape and y.dtype == np.float32
    assert energy_above_db(y, sr_in / 2) < -60
    # the band well below the cutoff is kept (within 1 dB)
    spec_x = np.abs(np.fft.rfft(x)) ** 2
    spec_y = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    band = (f > 100) & (f < 0.8 * sr_in / 2)
    assert abs(10 * np.log10(spec_y[band].sum() / spec_x[band].sum())) < 1.0


@pytest.mark.parametrize("family", FILTER_FAMILIES)
def test_cutoff_without_rate(family):
    x = noise(0.5, SR, channels=2)
    y = band_limit(x, SR, cutoff_hz=5000, filter=family)
    assert y.shape == x.shape
    assert energy_above_db(y[0], 5000) < -60


def test_random_degradation_is_seeded_and_varied():
    draws = [random_degradation(np.random.default_rng(s), sr_in_choices=(8000, 16000, 24000)) for s in range(40)]
    again = [random_degradation(np.random.default_rng(s), sr_in_choices=(8000, 16000, 24000)) for s in range(40)]
    assert draws == again
    assert {d.filter for d in draws} == set(FILTER_FAMILIES)
    assert {d.sr_in for d in draws} == {8000, 16000, 24000}
    assert any(d.cutoff_hz < d.sr_in / 2 for d in draws)
    for d in draws:
        assert 0.89 * d.sr_in / 2 <= d.cutoff_hz <= d.sr_in / 2
    ranged = random_degradation(np.random.default_rng(0), sr_in_range=(4000, 24000))
    assert 4000 <= ranged.sr_in <= 24000
    y = apply(noise(0.2, SR)[0], SR, draws[0])
    assert y.shape == (int(0.2 * SR),)


def test_bad_arguments():
    with pytest.raises(SpecsrError, match="unknown filter"):
        band_limit(noise(0.1, SR), SR, sr_in=8000, filter="magic")
    with pytest.raises(SpecsrError, match="needs sr_in or cutoff_hz"):
        band_limit(noise(0.1, SR), SR)
    with pytest.raises(SpecsrError, match="cutoff_hz"):
        band_limit(noise(0.1, SR), SR, cutoff_hz=30000)
