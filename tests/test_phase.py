"""Phase reconstruction: STFT equivalence, every method, FGLA quality, locality (chunk exactness)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import brickwall

from specsr import phase
from specsr.config import STFTConfig
from specsr.errors import SpecsrError
from specsr.spectral import cutoff_bin, istft, stft

CFG = STFTConfig()


def reconstruct(mag, known, known_mask, cfg, length, method="fgla", n_iter=32, *, init="lowres",
                predicted_phase=None):
    """Waveform ``[B, length]`` of :func:`phase.reconstruct_frames` (its frames through the inverse STFT)."""
    spec = phase.reconstruct_frames(mag, known, known_mask, cfg, method=method, n_iter=n_iter, init=init,
                                    predicted_phase=predicted_phase)
    return istft(spec, cfg, length)


def spectral_convergence(wav, mag, cfg):
    """``‖ |STFT(wav)| − mag ‖ / ‖mag‖``: how consistent a magnitude and a waveform are (lower is better)."""
    est = stft(wav, cfg).abs()
    n = min(est.shape[-1], mag.shape[-1])
    return float(torch.linalg.vector_norm(est[..., :n] - mag[..., :n]) / torch.linalg.vector_norm(mag[..., :n]))


def lowres_phase(known, kept_bins, cfg):
    """Unit phasors ``[B, F, N]`` of the low-res phase copy (:func:`phase._lowres_phase_nf`, frames-major)."""
    return phase._lowres_phase_nf(known.transpose(-1, -2), kept_bins, cfg).transpose(-1, -2)


def harmonic(seconds: float = 1.0, sr: int = 48000, f0: float = 220.0, seed: int = 0) -> np.ndarray:
    """A vibrato harmonic tone with noise bursts, ``[1, T]`` float32: structure for phase to get right."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    inst = f0 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    ph = 2 * np.pi * np.cumsum(inst) / sr
    x = sum(np.sin(k * ph) / k for k in range(1, 80) if k * f0 < sr / 2 * 0.95)
    bursts = rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 3 * t) > 0.7)
    return (0.2 * x + 0.05 * bursts).astype(np.float32)[None]


def setup(sr_in: int = 16000, seconds: float = 1.0):
    ref = torch.from_numpy(harmonic(seconds))
    low = torch.from_numpy(brickwall(ref.numpy(), 48000, sr_in / 2))
    ref_spec, low_spec = stft(ref, CFG), stft(low, CFG)
    kc = cutoff_bin(sr_in / 2 * 0.95, CFG)
    mask = (torch.arange(CFG.n_bins) < kc).float()[None, :, None]
    return ref, ref_spec, low_spec, mask


def test_reconstruct_returns_the_centred_signal():
    x = torch.randn(2, 12345)
    spec = stft(x, CFG)
    wav = reconstruct(spec.abs(), spec, torch.ones(1, CFG.n_bins, 1), CFG, x.shape[-1], "fgla", 0)
    assert torch.equal(wav, istft(spec, CFG, x.shape[-1]))  # every bin known: the input itself
    assert torch.allclose(wav, x, atol=1e-5)


@pytest.mark.parametrize("method", phase.METHODS)
@pytest.mark.parametrize("init", phase.INITS)
def test_every_method_gives_finite_audio_of_the_right_length(method, init):
    ref, ref_spec, low_spec, mask = setup(seconds=0.5)
    # "learned" starts from a predicted phase: here a random one
    guess = torch.polar(torch.ones_like(ref_spec.real), 2 * torch.pi * torch.rand(ref_spec.shape,
                                                                               generator=torch.Generator().manual_seed(0)))
    out = reconstruct(ref_spec.abs(), low_spec, mask, CFG, ref.shape[-1] - 7, method, 4, init=init,
                      predicted_phase=guess if method == "learned" else None)
    assert out.shape == (1, ref.shape[-1] - 7)
    assert torch.isfinite(out).all()


def test_learned_phase_with_the_true_phase_gives_the_signal_back_and_passes_keep_it():
    ref, ref_spec, low_spec, mask = setup(seconds=0.5)
    n = ref.shape[-1]
    for n_iter in (0, 4):  # the known band the truth's too: a consistent spectrogram is a fixed point
        out = reconstruct(ref_spec.abs(), ref_spec, mask, CFG, n, "learned", n_iter, predicted_phase=ref_spec * 3.0)
        assert torch.allclose(out, ref, atol=1e-4), n_iter
    # a wrong start is what the passes improve on, as FGLA's
    wrong = torch.polar(torch.ones_like(ref_spec.real), torch.rand(ref_spec.shape,
                                                                   generator=torch.Generator().manual_seed(1)) * 6.3)
    none = spectral_convergence(reconstruct(ref_spec.abs(), low_spec, mask, CFG, n, "learned", 0,
                                            predicted_phase=wrong), ref_spec.abs(), CFG)
    some = spectral_convergence(reconstruct(ref_spec.abs(), low_spec, mask, CFG, n, "learned", 16,
                                            predicted_phase=wrong), ref_spec.abs(), CFG)
    assert some < 0.7 * none


def test_learned_phase_without_a_prediction_is_refused():
    ref, ref_spec, low_spec, mask = setup(seconds=0.25)
    with pytest.raises(SpecsrError, match="predicted phase"):
        reconstruct(ref_spec.abs(), low_spec, mask, CFG, ref.shape[-1], "learned", 0)
    with pytest.raises(SpecsrError, match="predicted phase"):
        reconstruct(ref_spec.abs(), low_spec, mask, CFG, ref.shape[-1], "learned", 0,
                    predicted_phase=ref_spec[..., :-1])


def test_fgla_with_the_true_magnitude_beats_random_and_lowres_phase():
    ref, ref_spec, low_spec, mask = setup()
    mag, n = ref_spec.abs(), ref.shape[-1]

    def sc(method, n_iter, init="lowres"):
        return spectral_convergence(reconstruct(mag, low_spec, mask, CFG, n, method, n_iter, init=init),
                                          mag, CFG)

    random_phase = sc("fgla", 0, init="random")  # no iterations: the random start itself
    lowres = sc("lowres", 0)
    gl = sc("griffinlim", 16)
    fgla = sc("fgla", 16)
    fgla_more = sc("fgla", 48)
    assert fgla < lowres < random_phase
    assert fgla < gl
    assert fgla_more < fgla


def test_known_bins_are_imposed_exactly():
    ref, ref_spec, low_spec, mask = setup()
    spec = phase.reconstruct_frames(ref_spec.abs() * 3, low_spec, mask, CFG, n_iter=4)
    kc = int(phase.known_bins(mask)[0])
    assert torch.equal(spec[:, :kc], low_spec[:, :kc])
    # above: the given magnitude, whatever the phase
    assert torch.allclose(spec[:, kc:].abs(), 3 * ref_spec[:, kc:].abs(), rtol=1e-4, atol=1e-5)


def test_crossfade_mask_blends_known_and_predicted():
    _, ref_spec, low_spec, _ = setup()
    kc = 300
    mask = torch.zeros(1, CFG.n_bins, 1)
    mask[:, :kc] = 1.0
    mask[:, kc] = 0.5
    lock = torch.zeros(1, CFG.n_bins, 1, dtype=torch.bool)
    lock[:, kc] = True  # phase of the known bin kept: the blend is a pure magnitude crossfade
    spec = phase.reconstruct_frames(ref_spec.abs(), low_spec, mask, CFG, n_iter=2, phase_lock=lock)
    expected = 0.5 * low_spec[:, kc].abs() + 0.5 * ref_spec[:, kc].abs()
    assert torch.allclose(spec[:, kc].abs(), expected, rtol=1e-4, atol=1e-5)


def test_lowres_copies_phase_in_shifts_that_are_multiples_of_n_fft_over_hop():
    assert phase.copy_shift_bins(CFG) == 4
    assert phase.copy_shift_bins(STFTConfig(48000, 1024, 256)) == 4
    assert phase.copy_shift_bins(STFTConfig(48000, 2048, 384)) == 16
    f, n, kc = CFG.n_bins, 5, 201
    bins = torch.arange(f, dtype=torch.float64)
    # each bin its own phase: find, for every copied bin, where its phase came from
    known = torch.polar(torch.ones(f, n, dtype=torch.float64), (bins * 0.01)[:, None].expand(f, n))[None]
    unit = lowres_phase(known, torch.tensor([kc]), CFG)[0, :, 0]
    src = torch.round(torch.angle(unit) / 0.01).long()
    assert torch.equal(src[:kc], torch.arange(kc))
    shift = torch.arange(kc, f) - src[kc:]
    assert (shift > 0).all() and (shift % 4 == 0).all()
    assert (src[kc:] < kc).all() and (src[kc:] >= kc // 2 - 4).all()  # from the top octave of the known band


def test_light_cone_context_makes_blocks_exact():
    """A block processed with light_cone_frames of context equals the whole-signal result in its centre."""
    ref, ref_spec, low_spec, mask = setup(seconds=2.0)
    n_iter = 6
    mag = ref_spec.abs()
    whole = phase.reconstruct_frames(mag, low_spec, mask, CFG, n_iter=n_iter)
    k = phase.light_cone_frames(CFG, n_iter)
    assert k == 3 * (n_iter + 1)
    s, e = 80, 100
    a, b = s - k, e + k
    block = phase.reconstruct_frames(mag[..., a:b], low_spec[..., a:b], mask, CFG, n_iter=n_iter)
    assert torch.allclose(block[..., s - a:e - a], whole[..., s:e], atol=1e-4, rtol=0)
    # too little context: the centre differs (the bound is not vacuous)
    a2, b2 = s - 6, e + 6
    short = phase.reconstruct_frames(mag[..., a2:b2], low_spec[..., a2:b2], mask, CFG, n_iter=n_iter)
    assert (short[..., s - a2:e - a2] - whole[..., s:e]).abs().max() > 1e-2


def test_batch_items_are_independent():
    ref, ref_spec, low_spec, mask = setup(seconds=0.5)
    mag2 = torch.cat([ref_spec.abs(), 0.5 * ref_spec.abs()])
    known2 = torch.cat([low_spec, 0.5 * low_spec])
    both = reconstruct(mag2, known2, mask, CFG, ref.shape[-1], n_iter=4)
    one = reconstruct(mag2[1:], known2[1:], mask, CFG, ref.shape[-1], n_iter=4)
    assert torch.allclose(both[1:], one, atol=1e-5)


def test_silence_stays_silent():
    z = torch.zeros(1, CFG.n_bins, 20, dtype=torch.complex64)
    mask = (torch.arange(CFG.n_bins) < 100).float()[None, :, None]
    out = reconstruct(z.abs(), z, mask, CFG, 19 * CFG.hop_length, n_iter=3)
    assert torch.isfinite(out).all() and out.abs().max() == 0


def test_bad_arguments_are_specsr_errors():
    _, ref_spec, low_spec, mask = setup(seconds=0.3)
    with pytest.raises(SpecsrError, match="phase method"):
        reconstruct(ref_spec.abs(), low_spec, mask, CFG, 100, method="magic")
    with pytest.raises(SpecsrError, match="known_mask"):
        reconstruct(ref_spec.abs(), low_spec, mask[:, :10], CFG, 100)
    with pytest.raises(SpecsrError, match="n_iter"):
        reconstruct(ref_spec.abs(), low_spec, mask, CFG, 100, n_iter=-1)
