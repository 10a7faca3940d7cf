"""Baselines that need no model, printed beside every result so a reader sees what LSD gives away.

- ``input``: the low-res input as given (resampled to 48 kHz if stored at its low rate);
- ``sinc``: band-limited interpolation from ``sr_in`` (anything the given file holds above
  ``sr_in / 2`` is removed, then polyphase sinc interpolation back up);
- ``noise-fill``: the empty band filled with random-phase noise whose level continues the input's
  top ~2 kHz frame by frame, falling 3 dB per octave. No learning at all, yet it scores LSD ≈ 1.0–1.3
  on VCTK speech, close to several published systems (docs/method.md): LSD rewards a plausible level
  more than plausible structure.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from specsr.audio import resample
from specsr.cutoff import detect_cutoff
from specsr.degrade import band_limit
from specsr.metrics import METRIC_STFT
from specsr.spectral import cutoff_bin, istft, stft

BASELINES = ("input", "sinc", "noise-fill")


def baseline_input(wav: np.ndarray, sr: int, sr_in: int, sr_out: int = 48000) -> np.ndarray:
    """The input as given, at ``sr_out``. ``[C, T]`` → ``[C, T_out]``."""
    return resample(wav, sr, sr_out)


def baseline_sinc(wav: np.ndarray, sr: int, sr_in: int, sr_out: int = 48000) -> np.ndarray:
    """Band-limited (sinc) interpolation from ``sr_in`` to ``sr_out``. ``[C, T]`` → ``[C, T_out]``."""
    if sr == sr_in:
        return resample(wav, sr_in, sr_out, method="resample_poly")
    return band_limit(resample(wav, sr, sr_out), sr_out, sr_in=sr_in, filter="resample_poly")


def noise_fill(wav: np.ndarray, sr: int, sr_in: int, sr_out: int = 48000, *, cutoff_hz: float | None = None,
               slope_db_per_octave: float = 3.0, reference_hz: float = 2000.0, seed: int = 0) -> np.ndarray:
    """Spectral-envelope noise fill. ``[C, T]`` at ``sr`` → ``[C, T_out]`` at ``sr_out``.

    ``cutoff_hz`` defaults to the detected cutoff of the input (or ``sr_in / 2`` when none).
    """
    x = resample(wav, sr, sr_out)
    n = x.shape[-1]
    if cutoff_hz is None:
        est = detect_cutoff(wav, sr)
        cutoff_hz = min(est.cutoff_hz, sr_in / 2) if est.band_limited else sr_in / 2
    cfg = dataclasses.replace(METRIC_STFT, sample_rate=sr_out)  # the metric's STFT at the output rate
    spec = stft(torch.from_numpy(x), cfg)  # [C, F, N]
    k_c = cutoff_bin(cutoff_hz, cfg)
    k_ref = max(1, cutoff_bin(cutoff_hz - reference_hz, cfg))
    if k_c >= cfg.n_bins or k_c <= k_ref:
        return x
    power = spec.abs().square()
    level = power[:, k_ref:k_c].mean(dim=1, keepdim=True)  # [C, 1, N]
    freqs = torch.arange(k_c, cfg.n_bins, dtype=torch.float32) * cfg.bin_hz()
    fc = max(k_c * cfg.bin_hz(), 1.0)
    tilt = (freqs / fc) ** (-slope_db_per_octave / (10 * np.log10(2)))  # power falls slope dB/octave
    gen = torch.Generator().manual_seed(seed)
    phase = torch.rand(spec.shape[0], cfg.n_bins - k_c, spec.shape[-1], generator=gen) * 2 * np.pi
    fill = torch.sqrt(level * tilt[None, :, None]) * torch.exp(1j * phase)
    out = spec.clone()
    out[:, k_c:] = fill.to(out.dtype)
    return istft(out, cfg, n).numpy().astype(np.float32)


BASELINE_FUNCS = {"input": baseline_input, "sinc": baseline_sinc, "noise-fill": noise_fill}
