"""Phase reconstruction for the predicted high band, with the low band locked to the input.

The bins below the cutoff keep the input's complex STFT exactly; the bins above need a phase. Four
methods, all batched torch on CPU or CUDA:

- ``fgla`` (default): fast Griffin-Lim (Perraudin, Balazs & Søndergaard 2013). Griffin-Lim
  alternates between "take the wanted magnitude" and "be the STFT of some signal"
  (iSTFT then STFT); FGLA adds momentum (≈ 0.99) to the second step and converges far faster.
  Every iteration re-imposes the known bins, magnitude *and* phase:
  ``X = mask·known + (1 − mask)·mag·e^{i·angle}``, so the low band is never changed and it
  anchors the phases of the new band (docs/method.md: LSD 0.20 at 32 iterations with the true
  magnitude, against 0.85 for random phase).
- ``griffinlim``: the same without momentum.
- ``lowres``: low-resolution phase reuse, no iterations: the phase of the top of the known band
  is copied upward. A bin k of a hop-``H`` STFT advances its phase by ``2π·k·H/n_fft`` per frame;
  a copy shifted by ``d`` bins advances by ``2π·d·H/n_fft`` too much per frame, unless ``d·H/n_fft``
  is an integer, i.e. ``d`` is a multiple of ``n_fft/H`` (4 for 2048/512). Only then do the
  copied phases stay coherent from frame to frame instead of cancelling in the overlap-add.
  FGLA starts from this copy too: it is free and much closer than random phase.
- ``learned``: the phase the network predicted for the new band (a model trained with ``[model]
  predict_phase``), then ``n_iter`` FGLA passes started from it (0: the network's phase as it is).

The iterations run on the frames of the *padded* signal (:func:`specsr.spectral.frames`, the
one STFT): each Griffin-Lim iteration is then strictly local — frame ``n`` after one iteration
depends only on frames ``n − r … n + r`` before it, ``r = ceil(n_fft/hop) − 1`` — which is what
lets the pipeline process long files in chunks and still get exactly the whole-file result
(:func:`light_cone_frames`).

Shapes: magnitudes / spectrograms ``[B, F, N]`` (``F = n_fft // 2 + 1`` bins, ``N`` frames),
waveforms ``[B, T]``.
"""

from __future__ import annotations

import math

import torch

from specsr.config import INFERENCE_DEFAULTS as _D
from specsr.config import PHASE_METHODS, STFTConfig
from specsr.errors import SpecsrError
from specsr.spectral import frames_nf, inverse_envelope, overlap_add_nf

METHODS = PHASE_METHODS
INITS = ("lowres", "random")
_TINY = 1e-15  # a float32 STFT bin of 16-bit audio is many orders of magnitude above this
_TINY_SQUARED = 1e-36  # still a normal float32: rsqrt stays finite


def overlap_radius(cfg: STFTConfig) -> int:
    """Frames on each side that overlap a frame: ``ceil(n_fft / hop) − 1`` (3 for 2048/512)."""
    return -(-cfg.n_fft // cfg.hop_length) - 1


def light_cone_frames(cfg: STFTConfig, n_iter: int) -> int:
    """Context (frames, each side) after which a block's result equals the whole-signal result.

    One Griffin-Lim iteration spreads a frame's influence by :func:`overlap_radius` frames, and
    the final overlap-add by that much again: with this many frames of context on each side,
    the centre of a block is bit-for-bit (up to float rounding) what the whole signal gives.
    """
    return overlap_radius(cfg) * (max(0, n_iter) + 1)


def copy_shift_bins(cfg: STFTConfig) -> int:
    """Smallest bin shift that keeps copied phases coherent: ``n_fft / gcd(n_fft, hop)``."""
    return cfg.n_fft // math.gcd(cfg.n_fft, cfg.hop_length)


def _unit(x: torch.Tensor) -> torch.Tensor:
    """``x / |x|``, and 1 where ``x == 0`` (no phase to speak of; in float32 also below ~1e-19, far under any
    STFT bin of audio). In real arithmetic: complex abs and division are several times slower."""
    r = torch.view_as_real(x)
    norm2 = (r[..., 0] * r[..., 0]).addcmul_(r[..., 1], r[..., 1])
    keep = norm2 > 0
    unit = r * torch.where(keep, norm2, torch.ones_like(norm2)).rsqrt().unsqueeze(-1)
    unit[..., 0] = torch.where(keep, unit[..., 0], torch.ones_like(norm2))
    unit[..., 1] = torch.where(keep, unit[..., 1], torch.zeros_like(norm2))
    return torch.view_as_complex(unit)


def known_bins(known_mask: torch.Tensor) -> torch.Tensor:
    """Per item, the number of leading bins that are kept exactly (mask == 1). ``[B|1, F, 1]`` → ``[B|1]``."""
    locked = known_mask[..., 0] >= 1.0  # [B, F]
    # first bin that is not locked (F when all are)
    not_locked = (~locked).to(torch.int64)
    first_free = torch.where(not_locked.any(dim=-1), not_locked.argmax(dim=-1),
                             torch.full_like(not_locked[:, 0], locked.shape[-1]))
    return first_free


def _lowres_phase_nf(known_nf: torch.Tensor, kept_bins: torch.Tensor, cfg: STFTConfig,
                     first_bin: int = 0) -> torch.Tensor:
    """Unit phasors ``[B, M, F − first_bin]`` of the low-res phase copy for bins ``first_bin …`` (frames-major
    ``known_nf`` ``[B, M, F]``): gathered first, so only the bins asked for are normalised."""
    b, m, f = known_nf.shape
    q = copy_shift_bins(cfg)
    bins = torch.arange(first_bin, f, device=known_nf.device)
    kc = kept_bins.to(known_nf.device).reshape(-1).expand(b) if kept_bins.numel() == 1 else \
        kept_bins.to(known_nf.device).reshape(-1)
    width = torch.clamp((kc // 2) // q * q, min=q)  # [B]
    src = kc[:, None] - width[:, None] + torch.remainder(bins[None, :] - kc[:, None], width[:, None])
    src = torch.where(bins[None, :] < kc[:, None], bins[None, :].expand(b, -1), src)  # [B, F']
    valid = src >= 0  # a known band narrower than one shift: nothing to copy from
    idx = src.clamp_min(0)[:, None, :].expand(b, m, -1)
    unit = _unit(torch.gather(known_nf, -1, idx))
    return torch.where(valid[:, None, :], unit, torch.ones_like(unit))


def _check_inputs(mag: torch.Tensor, known: torch.Tensor, known_mask: torch.Tensor, cfg: STFTConfig,
                  method: str, init: str, n_iter: int) -> None:
    if method not in METHODS:
        raise SpecsrError(f"unknown phase method {method!r}; choose from {', '.join(METHODS)}")
    if init not in INITS:
        raise SpecsrError(f"unknown phase init {init!r}; choose from {', '.join(INITS)}")
    if n_iter < 0:
        raise SpecsrError(f"n_iter must be >= 0, got {n_iter}")
    if mag.ndim != 3 or known.shape != mag.shape:
        raise SpecsrError(f"mag and known must both be [B, F, N], got {tuple(mag.shape)} and {tuple(known.shape)}")
    if mag.shape[1] != cfg.n_bins:
        raise SpecsrError(f"expected {cfg.n_bins} bins for n_fft={cfg.n_fft}, got {mag.shape[1]}")
    if not known.is_complex():
        raise SpecsrError("known must be a complex spectrogram")
    if known_mask.ndim != 3 or known_mask.shape[1] != cfg.n_bins or known_mask.shape[2] != 1 \
            or known_mask.shape[0] not in (1, mag.shape[0]):
        raise SpecsrError(f"known_mask must be [B or 1, {cfg.n_bins}, 1], got {tuple(known_mask.shape)}")


def reconstruct_frames(mag: torch.Tensor, known: torch.Tensor, known_mask: torch.Tensor, cfg: STFTConfig, *,
                       method: str = _D.phase, n_iter: int = _D.n_iter, momentum: float = 0.99, init: str = "lowres",
                       phase_lock: torch.Tensor | None = None, seed: int = 0,
                       predicted_phase: torch.Tensor | None = None) -> torch.Tensor:
    """The complex STFT frames ``[B, F, M]`` after phase reconstruction (the final magnitude step applied).

    ``mag`` ``[B, F, M]`` predicted magnitude; ``known`` ``[B, F, M]`` the input's STFT (frames of the
    padded signal, as ``specsr.spectral.stft`` makes them); ``known_mask`` ``[B|1, F, 1]`` in [0, 1]:
    1 keeps the known bin exactly, 0 takes ``mag`` with a reconstructed phase, in between a crossfade.
    ``phase_lock`` (bool, broadcastable to ``[B, F, M]``): bins whose phase is taken from ``known``
    even where ``known_mask < 1`` (the input's attenuated content near its own Nyquist).
    ``predicted_phase`` complex ``[B, F, M]`` (only its angle counts): the start of ``method="learned"``.
    Each frame of the result depends on frames at most ``light_cone_frames(cfg, n_iter)`` away.
    """
    _check_inputs(mag, known, known_mask, cfg, method, init, n_iter)
    if method == "learned" and (predicted_phase is None or predicted_phase.shape != mag.shape):
        raise SpecsrError("phase method 'learned' needs the model's predicted phase, shaped as the magnitude")
    # frames-major and contiguous: every FFT below runs over contiguous rows
    mag_nf = mag.transpose(-1, -2).to(torch.float32).contiguous()
    known_nf = known.transpose(-1, -2).to(torch.complex64).contiguous()
    mask_nf = known_mask.transpose(-1, -2).to(mag_nf)  # [B|1, 1, F]
    b, m, f = mag_nf.shape
    if m == 0:
        return known.clone()
    kept = known_bins(known_mask)
    k0 = int(kept.min())  # bins below k0 are known in every item: never touched by the iterations
    if k0 >= f:
        return known.clone()
    # Only bins >= k0 are updated; everything elementwise runs on those, in real arithmetic
    # (complex abs/div/mul are several times slower than the same maths on a real view).
    fixed = torch.view_as_real((mask_nf[..., k0:] * known_nf[..., k0:]).contiguous())  # [B, M, F', 2]
    free_mag = ((1.0 - mask_nf[..., k0:]) * mag_nf[..., k0:]).unsqueeze(-1).expand_as(fixed).contiguous()
    lock, known_unit, k1 = None, None, k0
    if phase_lock is not None:
        lock_full = torch.broadcast_to(phase_lock.transpose(-1, -2), (b, m, f))[..., k0:]
        locked_bins = lock_full.flatten(0, 1).any(dim=0).nonzero()
        if len(locked_bins):
            k1 = k0 + int(locked_bins.max()) + 1  # locks live in bins [k0, k1)
            lock = lock_full[..., :k1 - k0].unsqueeze(-1)
            known_unit = torch.view_as_real(_unit(known_nf[..., k0:k1]))

    if method == "learned":
        angles = _unit(predicted_phase.transpose(-1, -2)[..., k0:].to(torch.complex64)).contiguous()  # type: ignore[union-attr]
    elif method == "lowres" or init == "lowres":
        angles = _lowres_phase_nf(known_nf, kept, cfg, k0)
    else:
        gen = torch.Generator(device="cpu").manual_seed(seed)
        u = torch.rand(mag_nf[..., k0:].shape, generator=gen).to(mag_nf.device)
        angles = torch.polar(torch.ones_like(u), 2 * math.pi * u)
    angles_r = torch.view_as_real(angles.contiguous()).clone()

    def apply_lock(a_r: torch.Tensor) -> None:
        if lock is not None:
            a_r[..., :k1 - k0, :] = torch.where(lock, known_unit, a_r[..., :k1 - k0, :])  # type: ignore[arg-type]

    apply_lock(angles_r)
    spec = known_nf.clone()
    spec_hi = torch.view_as_real(spec)[..., k0:, :]  # a view: writing it writes spec

    def assemble(a_r: torch.Tensor) -> None:
        torch.addcmul(fixed, a_r, free_mag, out=spec_hi)  # mask·known + (1 − mask)·mag·e^{iφ}, into spec

    iterations = 0 if method == "lowres" else n_iter
    if iterations:
        inv_env = inverse_envelope(m, cfg, mag_nf.device)
        beta = momentum / (1.0 + momentum) if method in ("fgla", "learned") else 0.0
        t_prev: torch.Tensor | None = None
        for _ in range(iterations):
            assemble(angles_r)
            rebuilt = torch.view_as_real(frames_nf(overlap_add_nf(spec, cfg, inv_env), cfg))[..., k0:, :]
            # FGLA: extrapolate along the last step, t + α(t − t_prev) ∝ t − α/(1+α)·t_prev
            step = torch.add(rebuilt, t_prev, alpha=-beta) if (t_prev is not None and beta) else rebuilt.clone()
            re, im = step[..., 0], step[..., 1]
            # an exactly zero bin has no phase: nudged to 1 + 0i (a zero phasor would erase its magnitude);
            # _TINY is far below any audible bin, and cheaper than finding the zeros
            re.add_(_TINY)
            norm2 = (re * re).addcmul_(im, im).add_(_TINY_SQUARED)
            angles_r = step.mul_(norm2.rsqrt_().unsqueeze(-1))
            apply_lock(angles_r)
            t_prev = rebuilt
    assemble(angles_r)
    return spec.transpose(-1, -2)
