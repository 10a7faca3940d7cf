"""Spectral transforms in torch: the one STFT definition, log-power features, cutoff bins.

Shapes: waveforms ``[..., T]``; complex spectrograms ``[..., F, N]`` with ``F = n_fft // 2 + 1``
bins and ``N`` frames. Everything is batched over leading dimensions and runs on CPU or CUDA.

Log-power features are ``log10(max(|X|², floor))``: the same quantity the LSD metric compares, so
an L1 loss on it is aligned with the metric.
"""

from __future__ import annotations

import math

import torch

from specsr.config import STFTConfig

LOG_POWER_FLOOR = 1e-10
# Normalisation of log10-power for the network input: roughly [-1, 1] for typical audio.
FEATURE_OFFSET = 4.0
FEATURE_SCALE = 4.0


def window(stft: STFTConfig, device: torch.device | str | None = None,
           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    fn = {"hann": torch.hann_window, "hamming": torch.hamming_window, "blackman": torch.blackman_window}
    return fn[stft.window](stft.n_fft, device=device, dtype=dtype)


def stft(wav: torch.Tensor, cfg: STFTConfig) -> torch.Tensor:
    """Complex STFT of ``[..., T]`` → ``[..., F, N]``, ``N = T // hop + 1`` when centred."""
    lead = wav.shape[:-1]
    flat = wav.reshape(-1, wav.shape[-1])
    if cfg.center and flat.shape[-1] <= cfg.n_fft // 2:
        # reflect padding needs T > n_fft/2: pad with zeros to make very short inputs work.
        flat = torch.nn.functional.pad(flat, (0, cfg.n_fft // 2 + 1 - flat.shape[-1]))
    spec = torch.stft(flat, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                      window=window(cfg, flat.device, flat.dtype if flat.is_floating_point() else torch.float32),
                      center=cfg.center, return_complex=True)
    return spec.reshape(*lead, spec.shape[-2], spec.shape[-1])


def istft(spec: torch.Tensor, cfg: STFTConfig, length: int) -> torch.Tensor:
    """Inverse of :func:`stft`: ``[..., F, N]`` → ``[..., length]``."""
    lead = spec.shape[:-2]
    flat = spec.reshape(-1, spec.shape[-2], spec.shape[-1])
    real_dtype = torch.float64 if flat.dtype == torch.complex128 else torch.float32
    n_frames_needed = length // cfg.hop_length + 1 if cfg.center else flat.shape[-1]
    if flat.shape[-1] < n_frames_needed:  # inputs padded in stft() for very short signals
        flat = torch.nn.functional.pad(flat, (0, n_frames_needed - flat.shape[-1]))
    wav = torch.istft(flat, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                      window=window(cfg, flat.device, real_dtype), center=cfg.center, length=length)
    return wav.reshape(*lead, length)


def n_frames(n_samples: int, cfg: STFTConfig) -> int:
    """Frames the centred STFT produces for ``n_samples``."""
    if cfg.center:
        return max(n_samples, cfg.n_fft // 2 + 1) // cfg.hop_length + 1
    return max(0, (n_samples - cfg.n_fft) // cfg.hop_length + 1)


def log_power(spec: torch.Tensor, floor: float = LOG_POWER_FLOOR) -> torch.Tensor:
    """``log10(max(|X|², floor))`` of a complex (or magnitude) spectrogram."""
    power = spec.abs().square() if spec.is_complex() else spec.square()
    return torch.log10(power.clamp_min(floor))


def log_power_to_magnitude(logp: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`log_power` (magnitude ``|X|``)."""
    return torch.pow(10.0, logp / 2.0)


def normalize(logp: torch.Tensor) -> torch.Tensor:
    """Map log10-power to the network's input scale."""
    return (logp + FEATURE_OFFSET) / FEATURE_SCALE


def denormalize(feat: torch.Tensor) -> torch.Tensor:
    return feat * FEATURE_SCALE - FEATURE_OFFSET


def cutoff_bin(cutoff_hz: float, cfg: STFTConfig) -> int:
    """Index of the first bin at or above ``cutoff_hz`` (bins below it are the input's to keep)."""
    k = int(math.ceil(cutoff_hz * cfg.n_fft / cfg.sample_rate - 1e-9))
    return max(0, min(cfg.n_bins, k))


def cutoff_bins(cutoff_hz: torch.Tensor, cfg: STFTConfig) -> torch.Tensor:
    """:func:`cutoff_bin` for a tensor of cutoffs: any shape in, ``long`` of the same shape out (same device)."""
    k = torch.ceil(cutoff_hz.double() * cfg.n_fft / cfg.sample_rate - 1e-9)
    return k.clamp(0, cfg.n_bins).long()


def bin_frequencies(cfg: STFTConfig, device: torch.device | str | None = None) -> torch.Tensor:
    """Centre frequency of each bin in Hz, ``[F]``."""
    return torch.arange(cfg.n_bins, device=device, dtype=torch.float32) * (cfg.sample_rate / cfg.n_fft)
