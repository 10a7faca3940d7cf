"""Spectral transforms in torch: the one STFT, its inverse, log-power features, cutoff bins.

There is one STFT here, defined frame by frame on the *padded* signal: ``frames`` windows and FFTs
``(M − 1)·hop + n_fft`` samples into ``M`` frames, ``overlap_add`` inverts it (windowed overlap-add
divided by the summed squared windows, the least-squares inverse). Phase reconstruction and the
chunked pipeline work on frames of the padded signal directly, because each frame then depends on
nothing but its own samples; :func:`stft` / :func:`istft` are the centred transforms built on the
same two functions (``center_pad``: reflect padding by ``n_fft / 2`` on each side), so training
features, inference frames and the metric are one computation (a test pins them to
``torch.stft`` bit for bit).

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
_ENVELOPE_FLOOR = 1e-11  # summed squared windows below this: a sample no frame covers (comes out 0)


_WINDOWS: dict[tuple[str, int, str, torch.dtype], torch.Tensor] = {}


def window(stft: STFTConfig, device: torch.device | str | None = None,
           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The analysis (and synthesis) window ``[n_fft]`` (periodic, as ``torch.stft`` expects).

    Made once per (kind, size, device, dtype) and shared: callers must not modify it in place (phase
    reconstruction asks for it twice per iteration).
    """
    dev = torch.device(device) if device is not None else torch.device("cpu")
    key = (stft.window, stft.n_fft, str(dev), dtype)
    if key not in _WINDOWS:
        fn = {"hann": torch.hann_window, "hamming": torch.hamming_window, "blackman": torch.blackman_window}
        with torch.inference_mode(False):  # a normal tensor even when first asked for under inference_mode
            _WINDOWS[key] = fn[stft.window](stft.n_fft, device=dev, dtype=dtype)
    return _WINDOWS[key]


def _real_dtype(x: torch.Tensor) -> torch.dtype:
    if x.dtype in (torch.float64, torch.complex128):
        return torch.float64
    return torch.float32


# ---------------------------------------------------------------------------------------------
# The frame-domain STFT (padded signal ↔ frames). Internally frames-major ([B, M, F]) so that every
# FFT runs over contiguous memory; the public functions take and give [..., F, M].


def frames_nf(sig: torch.Tensor, cfg: STFTConfig) -> torch.Tensor:
    """STFT frames, frames-major: padded signal ``[B, (M − 1)·hop + n_fft]`` → ``[B, M, F]``."""
    w = window(cfg, sig.device, _real_dtype(sig))
    return torch.fft.rfft(sig.unfold(-1, cfg.n_fft, cfg.hop_length) * w, dim=-1)


def frames(sig: torch.Tensor, cfg: STFTConfig) -> torch.Tensor:
    """STFT frames ``[..., F, M]`` of a padded signal ``[..., (M − 1)·hop + n_fft]`` (no centring)."""
    lead = sig.shape[:-1]
    spec = frames_nf(sig.reshape(-1, sig.shape[-1]), cfg).transpose(-1, -2)
    return spec.reshape(*lead, spec.shape[-2], spec.shape[-1])


def plain_overlap_add(chunks: torch.Tensor, hop: int) -> torch.Tensor:
    """Overlap-add of ``[B, M, L]`` time frames → ``[B, (M − 1)·hop + L]`` (no window, no normalisation)."""
    b, m, length = chunks.shape
    if length % hop == 0:
        r = length // hop
        blocks = chunks.reshape(b, m, r, hop)
        out = chunks.new_empty(b, m + r - 1, hop)
        out[:, :m] = blocks[:, :, 0]
        out[:, m:].zero_()
        for j in range(1, r):
            out[:, j:j + m] += blocks[:, :, j]
        return out.reshape(b, -1)
    out = torch.nn.functional.fold(chunks.transpose(1, 2), output_size=(1, (m - 1) * hop + length),
                                   kernel_size=(1, length), stride=(1, hop))
    return out.reshape(b, -1)


def inverse_envelope(n_frames: int, cfg: STFTConfig, device: torch.device | str | None = None,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``1 / Σ w²`` over the padded axis, 0 where the envelope vanishes. ``[(M − 1)·hop + n_fft]``."""
    w2 = window(cfg, device, dtype).square()
    env = plain_overlap_add(w2.expand(1, n_frames, cfg.n_fft), cfg.hop_length)[0]  # the expand is a view, not a copy
    return torch.where(env > _ENVELOPE_FLOOR, 1.0 / env.clamp_min(_ENVELOPE_FLOOR), torch.zeros_like(env))


def overlap_add_nf(spec_nf: torch.Tensor, cfg: STFTConfig, inv_env: torch.Tensor | None = None) -> torch.Tensor:
    """Inverse of :func:`frames_nf`: ``[B, M, F]`` → ``[B, (M − 1)·hop + n_fft]``.

    ``inv_env`` (:func:`inverse_envelope`) may be passed in when many calls share a frame count.
    """
    real = _real_dtype(spec_nf)
    w = window(cfg, spec_nf.device, real)
    chunks = torch.fft.irfft(spec_nf, n=cfg.n_fft, dim=-1)
    chunks.mul_(w)
    if inv_env is None:
        inv_env = inverse_envelope(spec_nf.shape[-2], cfg, spec_nf.device, real)
    return plain_overlap_add(chunks, cfg.hop_length).mul_(inv_env)


def overlap_add(spec: torch.Tensor, cfg: STFTConfig) -> torch.Tensor:
    """Inverse STFT of frames ``[..., F, M]`` onto the padded time axis: ``[..., (M − 1)·hop + n_fft]``.

    Samples that no frame covers with a non-zero window come out as 0.
    """
    lead = spec.shape[:-2]
    flat = spec.reshape(-1, spec.shape[-2], spec.shape[-1]).transpose(-1, -2)
    sig = overlap_add_nf(flat, cfg)
    return sig.reshape(*lead, sig.shape[-1])


# ---------------------------------------------------------------------------------------------
# The centred STFT on top of it


def n_frames(n_samples: int, cfg: STFTConfig) -> int:
    """Frames the STFT produces for ``n_samples`` (centred: very short signals count as padded)."""
    if cfg.center:
        return max(n_samples, cfg.n_fft // 2 + 1) // cfg.hop_length + 1
    return max(0, (n_samples - cfg.n_fft) // cfg.hop_length + 1)


def center_pad(wav: torch.Tensor, cfg: STFTConfig) -> torch.Tensor:
    """The centred STFT's padded signal ``[..., (N − 1)·hop + n_fft]`` of ``[..., T]``.

    Reflect padding by ``n_fft / 2`` on each side, cut to the last frame's end. Reflection needs
    ``T > n_fft / 2``: shorter signals are first zero-padded to ``n_fft / 2 + 1`` samples (the one
    rule for short signals, everywhere).
    """
    half = cfg.n_fft // 2
    lead = wav.shape[:-1]
    flat = wav.reshape(-1, wav.shape[-1])
    if flat.shape[-1] <= half:
        flat = torch.nn.functional.pad(flat, (0, half + 1 - flat.shape[-1]))
    n = n_frames(flat.shape[-1], cfg)
    padded = torch.nn.functional.pad(flat[:, None], (half, half), mode="reflect")[:, 0]
    padded = padded[:, :(n - 1) * cfg.hop_length + cfg.n_fft]
    return padded.reshape(*lead, padded.shape[-1])


def stft(wav: torch.Tensor, cfg: STFTConfig) -> torch.Tensor:
    """Complex STFT of ``[..., T]`` → ``[..., F, N]``, ``N = n_frames(T)`` (equal to ``torch.stft``)."""
    if not wav.is_floating_point():
        wav = wav.float()
    if not cfg.center:
        return frames(wav, cfg)
    return frames(center_pad(wav, cfg), cfg)


def istft(spec: torch.Tensor, cfg: STFTConfig, length: int) -> torch.Tensor:
    """Inverse of :func:`stft`: ``[..., F, N]`` → ``[..., length]`` (zero-padded if the frames end early)."""
    sig = overlap_add(spec, cfg)
    start = cfg.n_fft // 2 if cfg.center else 0
    out = sig[..., start:start + length]
    if out.shape[-1] < length:
        out = torch.nn.functional.pad(out, (0, length - out.shape[-1]))
    return out


# ---------------------------------------------------------------------------------------------
# Features


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
    """Inverse of :func:`normalize`."""
    return feat * FEATURE_SCALE - FEATURE_OFFSET


def cutoff_bin(cutoff_hz: float, cfg: STFTConfig) -> int:
    """Index of the first bin at or above ``cutoff_hz`` (bins below it are the input's to keep)."""
    k = int(math.ceil(cutoff_hz * cfg.n_fft / cfg.sample_rate - 1e-9))
    return max(0, min(cfg.n_bins, k))


def cutoff_bins(cutoff_hz: torch.Tensor, cfg: STFTConfig) -> torch.Tensor:
    """:func:`cutoff_bin` for a tensor of cutoffs: any shape in, ``long`` of the same shape out (same device)."""
    k = torch.ceil(cutoff_hz.double() * cfg.n_fft / cfg.sample_rate - 1e-9)
    return k.clamp(0, cfg.n_bins).long()
