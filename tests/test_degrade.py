"""The degradation: every family leaves < -60 dB above its cutoff and keeps the band below; the batched
torch path (training's pairs on the fly) against the scipy reference: within 0.5 dB in the pass band,
at least the reference's stop-band depth."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import noise

from specsr.degrade import (
    FILTER_FAMILIES,
    SINC_CUTOFF_FRACTION,
    Degradation,
    apply,
    band_limit,
    chain_response,
    degrade_batch,
    random_degradation,
)
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
    assert energy_above_db(y, (1.4 if family == "sinc" else 1.0) * sr_in / 2) < -60
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
    assert energy_above_db(y[0], (1.4 if family == "sinc" else 1.0) * 5000) < -60


def test_random_degradation_is_seeded_and_varied():
    draws = [random_degradation(np.random.default_rng(s), sr_in_choices=(8000, 16000, 24000)) for s in range(40)]
    again = [random_degradation(np.random.default_rng(s), sr_in_choices=(8000, 16000, 24000)) for s in range(40)]
    assert draws == again
    assert {d.filter for d in draws} == set(FILTER_FAMILIES)
    assert {d.sr_in for d in draws} == {8000, 16000, 24000}
    assert any(d.cutoff_hz < d.sr_in / 2 for d in draws)
    for d in draws:
        low = SINC_CUTOFF_FRACTION[0] if d.filter == "sinc" else 0.89
        assert low * d.sr_in / 2 <= d.cutoff_hz <= d.sr_in / 2
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


def db(x: np.ndarray) -> np.ndarray:
    return 20 * np.log10(np.maximum(np.abs(x), 1e-15))


# (family, input rate, cutoff, order): every reference family, rates from 4 to 24 kHz, odd ones included
CHAINS = [("resample_poly", 8000, 4000, 8), ("resample_poly", 22050, 11025, 8), ("soxr", 16000, 8000, 8),
          ("soxr", 11025, 5512.5, 8), ("cheby1", 16000, 7300, 6), ("cheby1", 8000, 3900, 12),
          ("butter", 24000, 11000, 12), ("butter", 4000, 2000, 4), ("resample_poly", 12000, 5000, 8)]


@pytest.mark.parametrize(("family", "sr_in", "cutoff", "order"), CHAINS)
def test_device_response_matches_the_reference(family, sr_in, cutoff, order):
    """The closed-form response against the reference's impulse response (scipy filters, real resampling)."""
    n = 1 << 16
    impulse = np.zeros(n, np.float32)
    impulse[n // 2] = 1.0
    y = band_limit(impulse, SR, sr_in=sr_in, cutoff_hz=cutoff, filter=family, order=order)
    ref = db(np.fft.rfft(np.roll(y, -n // 2).astype(np.float64)))
    est = db(chain_response(Degradation(sr_in, cutoff, family, order), SR, n).numpy())
    f = np.fft.rfftfreq(n, 1 / SR)
    passband = f <= 0.9 * cutoff
    assert np.max(np.abs(est[passband] - ref[passband])) < 0.5
    stopband = f >= 1.1 * sr_in / 2
    # the reference's stop band ends in float32 rounding (about -100 dB); the device path is at least as deep
    assert ref[stopband].max() < -95 and est[stopband].max() <= ref[stopband].max() + 1.0


@pytest.mark.parametrize("sr_in", [8000, 13300, 22050, 24000])
def test_sinc_batch_matches_the_reference_sample_by_sample(sr_in):
    """The sinc family's images (its band folded about the low Nyquist) are part of the batched path: the same
    signal as the real down/up resampling, to 1e-3 of its peak, at any rate."""
    x = noise(1.0, SR, channels=2, seed=5)
    draws = [Degradation(sr_in, 0.9 * sr_in / 2, "sinc"), Degradation(16000, 8000.0, "resample_poly")]
    low, _ = degrade_batch(torch.from_numpy(x), SR, draws)
    assert low.shape == x.shape
    ref = band_limit(x[0], SR, sr_in=sr_in, cutoff_hz=0.9 * sr_in / 2, filter="sinc")
    margin = 4096  # circular at the ends
    err = np.abs(low[0].numpy()[margin:-margin] - ref[margin:-margin]).max()
    assert err < 1e-3 * np.abs(ref).max()
    # the cutoff is what the model is told, not a filter: the same signal whatever it is
    np.testing.assert_allclose(band_limit(x[0], SR, sr_in=sr_in, cutoff_hz=0.8 * sr_in / 2, filter="sinc"), ref)


def test_shelf_leaves_the_band_above_down():
    d = Degradation(34000, 17000.0, "shelf", shelf_db=30.0)
    r = db(chain_response(d, SR, 1 << 14).numpy())
    f = np.fft.rfftfreq(1 << 14, 1 / SR)
    assert np.abs(r[f < 16000]).max() < 1e-6 and np.abs(r[f > 17500] + 30.0).max() < 1e-6
    x = noise(0.5, SR)[0]
    y = band_limit(x, SR, cutoff_hz=17000.0, filter="shelf", shelf_db=30.0)
    spec_x, spec_y = np.abs(np.fft.rfft(x)), np.abs(np.fft.rfft(y))
    fx = np.fft.rfftfreq(len(x), 1 / SR)
    assert abs(np.median(db(spec_y[fx > 18000] / spec_x[fx > 18000])) + 30.0) < 0.01


@pytest.mark.parametrize(("family", "sr_in", "cutoff", "order"), CHAINS[:6])
def test_degrade_batch_matches_the_reference_on_noise(family, sr_in, cutoff, order):
    """The whole batched path on a signal: level per band within 0.5 dB of the reference in the pass band."""
    x = noise(1.0, SR, channels=2, seed=3)
    draws = [Degradation(sr_in, cutoff, family, order), Degradation(sr_in, cutoff, family, order, gain_db=-6.0)]
    low, target = degrade_batch(torch.from_numpy(x), SR, draws)
    np.testing.assert_allclose(target[1].numpy(), x[1] * 10 ** (-6 / 20), atol=1e-6)
    ref = band_limit(x[0], SR, sr_in=sr_in, cutoff_hz=cutoff, filter=family, order=order)
    margin = 4096  # the frequency-domain filter is circular: leave the ends out
    spec = lambda v: np.abs(np.fft.rfft(v[margin:-margin] * np.hanning(len(v) - 2 * margin))) ** 2  # noqa: E731
    f = np.fft.rfftfreq(len(x[0]) - 2 * margin, 1 / SR)
    edges = np.linspace(100, 0.9 * cutoff, 12)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        band = (f >= lo) & (f < hi)
        assert abs(10 * np.log10(spec(low[0].numpy())[band].sum() / spec(ref)[band].sum())) < 0.5
    above = f > 1.1 * sr_in / 2
    assert 10 * np.log10(spec(low[0].numpy())[above].sum() / spec(x[0])[above].sum()) < -60


def test_degrade_batch_noise_floor_is_seeded_and_at_its_level():
    x = torch.zeros(2, 48000)
    draws = [Degradation(16000, 8000.0, "soxr", noise_db=-60.0, noise_colour="white"),
             Degradation(16000, 8000.0, "soxr", noise_db=-70.0, noise_colour="pink")]
    _, a = degrade_batch(x, SR, draws, torch.Generator().manual_seed(1))
    _, b = degrade_batch(x, SR, draws, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    rms_db = 10 * torch.log10(a.square().mean(dim=-1))
    assert torch.allclose(rms_db, torch.tensor([-60.0, -70.0]), atol=0.01)
    spec = torch.fft.rfft(a[1]).abs().square()
    f = torch.fft.rfftfreq(48000, 1 / SR)
    low_band, high_band = spec[(f > 200) & (f < 400)].mean(), spec[(f > 12800) & (f < 25600 / 2 + 12800)].mean()
    assert 10 * torch.log10(low_band / high_band) > 15  # pink: about 3 dB per octave, ~6 octaves apart
