"""Losses: L1 on log-power of the band the model owns, and the SRGAN adversarial terms.

The content loss compares normalised log10-power (the quantity LSD measures) only where the model
is responsible: at and above each item's cutoff bin, and below 0.95 × the *source's* Nyquist. Most
training files are 44.1 kHz, empty above 22.05 kHz: without that mask the model would learn to
predict silence at the top of every 48 kHz output. Sources at the model's own rate are trained up
to Nyquist: bins no item ever trains are bins the model fills with garbage.

L1 per bin predicts the median log-power of what could be there: a haze, smoother than the truth and,
since power is dominated by its peaks, several dB too quiet. Two terms on groups of adjacent bins correct
that without asking for the (unpredictable) position of each peak: :func:`band_level_l1` matches the
level of each group's *mean power* (the metric's band level), :func:`texture_l1` matches each group's
roughness (the RMS of the log-power about a moving mean along frequency, the metric's texture); the
level term over the whole band at once matches the metric's band level itself; :func:`fixed_pattern_l1`
charges for a lattice drawn in place, the cheapest way to meet the level and texture terms.

A model that predicts phase (``[model] predict_phase``) has two more: :func:`phase_antiwrap_l1`, AP-BWE's
anti-wrapping losses against the truth's phase, and :func:`rebuild_l1`, the L1 of the output itself: the
predicted magnitude with the predicted phase after one inverse STFT and STFT, which is what
``--phase learned --n-iter 0`` writes (a phase that does not fit together loses part of the magnitude in the
overlap-add).

The SRGAN terms (LSGAN and feature matching) take an optional band ``[B, F]``: only the discriminator's
patches over the new band count, so that its verdict is about what the generator made.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from specsr.config import SOURCE_NYQUIST_MARGIN, STFTConfig
from specsr.models import phase_unit
from specsr.phase import overlap_radius
from specsr.spectral import (
    FEATURE_SCALE,
    LOG_POWER_FLOOR,
    cutoff_bins,
    denormalize,
    frames,
    log_power,
    log_power_to_magnitude,
    normalize,
    overlap_add,
)

GROUP_BINS = 16  # bins per group of the level and texture terms (375 Hz at 48 kHz / 2048)
TEXTURE_SMOOTH_BINS = 9  # the moving mean along frequency that texture is measured about
_LN10 = 2.302585092994046


def band_mask(cutoff_hz: torch.Tensor, source_nyquist_hz: torch.Tensor, stft: STFTConfig) -> torch.Tensor:
    """``[B, F]`` float mask: 1 for bins in ``[cutoff, 0.95 · source Nyquist)``, or up to the model's
    Nyquist for sources that reach it (a model never trained on its top bins predicts garbage there)."""
    bins = torch.arange(stft.n_bins, device=cutoff_hz.device)
    lo = cutoff_bins(cutoff_hz.flatten(), stft)
    nyq = source_nyquist_hz.flatten().to(cutoff_hz.device).double()
    hi = torch.where(nyq >= stft.sample_rate / 2, stft.n_bins, cutoff_bins(nyq * SOURCE_NYQUIST_MARGIN, stft))
    return ((bins[None] >= lo[:, None]) & (bins[None] < hi[:, None])).float()


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over masked bins. ``pred``/``target`` ``[B, F, T]``, ``mask`` ``[B, F]``."""
    weight = mask[:, :, None].expand_as(pred)
    return ((pred - target).abs() * weight).sum() / weight.sum().clamp_min(1.0)


def _groups(x: torch.Tensor, group_bins: int) -> torch.Tensor:
    """``[B, F, T]`` → ``[B, G, group_bins, T]``, padding the last group with zeros."""
    b, f, t = x.shape
    n_groups = -(-f // group_bins)
    x = torch.nn.functional.pad(x, (0, 0, 0, n_groups * group_bins - f))
    return x.reshape(b, n_groups, group_bins, t)


def _group_level(x: torch.Tensor, weight: torch.Tensor, group_bins: int) -> torch.Tensor:
    """Normalised log-power ``x`` ``[B, F, T]`` → the level of each group's mean power over the masked bins
    ``[B, G, T]``, in the same normalised units (a log-sum-exp: no overflow for loud bins)."""
    ln_power = x * (FEATURE_SCALE * _LN10)  # ln of the power up to a constant factor
    ln_power = ln_power.masked_fill(weight == 0, float("-inf"))
    g = _groups(ln_power, group_bins).masked_fill(_groups(weight, group_bins) == 0, float("-inf"))
    n = _groups(weight, group_bins).sum(dim=2).clamp_min(1.0)
    return (torch.logsumexp(g, dim=2) - n.log()) / (FEATURE_SCALE * _LN10)


def band_level_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                  group_bins: int = GROUP_BINS, norm: str = "l1") -> torch.Tensor:
    """L1 between the levels of each group of ``group_bins`` masked bins' mean power, per frame, in
    normalised log-power units. ``pred``/``target`` ``[B, F, T]``, ``mask`` ``[B, F]``. Groups with no
    masked bin do not count.

    ``norm="rms"``: the root of the mean squared difference instead (the same units and scale). Where the
    input cannot tell a loud frame from a quiet one (a fricative above a 4 kHz input), L1 is least for the
    median of the levels that could be there and RMS for their mean: the metric's band bias is a mean over
    frames, and the levels' spread is skewed towards the loud frames, so L1's median comes out too quiet.

    ``group_bins = F`` (all bins in one group, ``[train] band_level_weight``): the level of the whole masked
    band per frame, the metric's band level. Groups matched one by one still leave the band too quiet where
    the input cannot say *which* groups are loud (a fricative's peak): each group's best guess is its typical
    level, and the band's mean power is set by its loudest groups, so the sum of the guesses falls short."""
    weight = mask[:, :, None].expand_as(pred)
    full = _groups(weight, group_bins).sum(dim=2) > 0  # [B, G, T]
    diff = _group_level(pred, weight, group_bins) - _group_level(target, weight, group_bins)
    diff = torch.where(full, diff, torch.zeros_like(diff))
    n = full.sum().clamp_min(1)
    if norm == "rms":
        return (diff.square().sum() / n + 1e-12).sqrt()
    return diff.abs().sum() / n


def _moving_mean(x: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Mean of ``x`` ``[B, F, T]`` over a centred window of ``n_bins`` (odd) bins along frequency, the window
    cut at the edges. A difference of cumulative sums: a pooling layer over ``B·T`` rows is ~10× slower."""
    half = n_bins // 2
    padded = torch.nn.functional.pad(x, (0, 0, half + 1, half))  # a leading zero row for the differences
    csum = padded.cumsum(dim=1)
    total = csum[:, n_bins:] - csum[:, :-n_bins]
    bins = torch.arange(x.shape[1], device=x.device)
    count = (torch.clamp(bins + half, max=x.shape[1] - 1) - torch.clamp(bins - half, min=0) + 1).to(x.dtype)
    return total / count[None, :, None]


def _fine_structure(x: torch.Tensor, smooth_bins: int = TEXTURE_SMOOTH_BINS) -> torch.Tensor:
    """``x`` ``[B, F, T]`` about its moving mean over ``smooth_bins`` (odd) bins along frequency."""
    return x - _moving_mean(x, smooth_bins)


def _roughness(x: torch.Tensor, weight: torch.Tensor, group_bins: int, fixed_patterns: bool = False) -> torch.Tensor:
    """RMS per group ``[B, G, T]`` of ``x`` ``[B, F, T]`` about its moving mean over
    :data:`TEXTURE_SMOOTH_BINS` bins along frequency, over the masked bins. Unless ``fixed_patterns``, each
    bin's mean of that residual over the frames is taken out first: a pattern that stays in place from frame
    to frame (a lattice the network draws at fixed bins) is not roughness."""
    resid = _fine_structure(x)
    if not fixed_patterns:
        resid = resid - resid.mean(dim=-1, keepdim=True)
    w = _groups(weight, group_bins)
    sq = (_groups(resid.square(), group_bins) * w).sum(dim=2) / w.sum(dim=2).clamp_min(1.0)
    return (sq + 1e-8).sqrt()


def texture_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
               group_bins: int = GROUP_BINS, fixed_patterns: bool = False) -> torch.Tensor:
    """L1 between the roughness of each group of masked bins, per frame (see :func:`_roughness`), in
    normalised log-power units: it asks for the truth's amount of fine structure, not its positions.
    Outside the mask the estimate is the truth (as the output keeps the input's band), so the moving mean at
    the band's lower edge reaches into the input's bins: a seam counts, as it sounds (where it changes from
    frame to frame; with ``fixed_patterns`` also where it does not).

    ``fixed_patterns=False`` (the default) compares only the roughness that moves from frame to frame. With
    ``True`` (how v2's first stage was trained) a network can score roughness with a lattice at fixed bins:
    stage 1 puts +4-5 dB on every 4th bin, the last bin of each of its 4-bin patches, a 94 Hz comb (README,
    "Experiments")."""
    weight = mask[:, :, None].expand_as(pred)
    full = _groups(weight, group_bins).sum(dim=2) > 0
    pred = torch.where(weight > 0, pred, target)
    diff = (_roughness(pred, weight, group_bins, fixed_patterns)
            - _roughness(target, weight, group_bins, fixed_patterns)).abs()
    diff = torch.where(full, diff, torch.zeros_like(diff))
    return diff.sum() / full.sum().clamp_min(1)


def fixed_pattern_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                     smooth_bins: tuple[int, ...] = (TEXTURE_SMOOTH_BINS,)) -> torch.Tensor:
    """L1 between the fine structure that stays in place: each masked bin's log-power about the moving mean
    along frequency (as :func:`_roughness`), averaged over the frames, of the estimate and of the truth, in
    normalised log-power units. ``pred``/``target`` ``[B, F, T]``, ``mask`` ``[B, F]``. With several
    ``smooth_bins`` (odd widths of the moving mean) the mean of the term at each scale.

    A held note's harmonics are such a pattern and are asked for; a lattice the network draws on the same bins
    of every frame (one position of its patches higher, a comb along frequency: horizontal lines) is not in
    the truth and costs here. Terms that ask for the band's mean power (:func:`band_level_l1`) reward peaks,
    and a lattice is the cheapest peak there is: this term is what keeps them honest. The default scale
    (±4 bins) sees a lattice; a wider one (129 bins, ±1.5 kHz) sees stripes a kilohertz apart, which an
    adversarial generator paints to look rough (README, "Model v3")."""
    weight = mask[:, :, None].expand_as(pred)
    pred = torch.where(weight > 0, pred, target)
    total = pred.new_zeros(())
    for n_bins in smooth_bins:
        diff = _fine_structure(pred, n_bins).mean(dim=-1) - _fine_structure(target, n_bins).mean(dim=-1)
        total = total + (diff.abs() * mask).sum() / mask.sum().clamp_min(1.0)
    return total / len(smooth_bins)


def _anti_wrap(x: torch.Tensor) -> torch.Tensor:
    """``|x − 2π·round(x / 2π)|``: the distance of an angle difference from the nearest multiple of 2π."""
    return (x - 2 * math.pi * torch.round(x / (2 * math.pi))).abs()


def phase_antiwrap_l1(pred_cs: torch.Tensor, target_spec: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """AP-BWE's anti-wrapping phase losses over the masked bins: the instantaneous phase, its difference
    along frequency (group delay) and along time (instantaneous frequency), each the weighted mean of the
    wrapped distance between the predicted and the true angle, summed. ``pred_cs`` ``[B, 2, F, T]`` the
    network's cosine and sine channels, ``target_spec`` complex ``[B, F, T]``, ``mask`` ``[B, F]``.

    Each bin weighs by the truth's magnitude over the item's mean masked magnitude (a difference by the
    geometric mean of its two bins'): the phase of a bin far below its neighbours is noise and changes
    nothing audible, that of a harmonic decides whether the overlap-add keeps it."""
    pred = torch.atan2(pred_cs[:, 1].float(), pred_cs[:, 0].float())
    true = torch.angle(target_spec)
    mag = target_spec.abs() * mask[:, :, None]
    w = mag / (mag.sum(dim=(1, 2), keepdim=True) / (mask.sum(dim=1)[:, None, None] * mag.shape[-1]).clamp_min(1.0)
               ).clamp_min(1e-12)
    d = pred - true

    def mean(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return (_anti_wrap(x) * weight).sum() / weight.sum().clamp_min(1e-6)

    ip = mean(d, w)
    gd = mean(d[:, 1:] - d[:, :-1], (w[:, 1:] * w[:, :-1]).sqrt())
    iaf = mean(d[..., 1:] - d[..., :-1], (w[..., 1:] * w[..., :-1]).sqrt())
    return ip + gd + iaf


def rebuild_l1(pred: torch.Tensor, pred_cs: torch.Tensor, input_spec: torch.Tensor, target: torch.Tensor,
               cutoff_bins: torch.Tensor, mask: torch.Tensor, stft: STFTConfig) -> torch.Tensor:
    """L1 on the normalised log-power of the output as ``--phase learned --n-iter 0`` makes it: below each
    item's cutoff bin the input's STFT, above it the predicted magnitude with the predicted phase; one
    inverse STFT and STFT (frames of the padded signal, :func:`specsr.spectral.overlap_add`); compared with
    ``target`` over ``mask``, leaving out the frames at either edge that lack a full overlap.

    ``pred`` ``[B, F, T]`` normalised log-power, ``pred_cs`` ``[B, 2, F, T]`` cosine and sine, ``input_spec``
    complex ``[B, F, T]`` (frames of the padded input), ``target`` ``[B, F, T]`` normalised log-power,
    ``cutoff_bins`` ``[B]``, ``mask`` ``[B, F]``."""
    mag = log_power_to_magnitude(denormalize(pred.float()).clamp(math.log10(LOG_POWER_FLOOR), 4.0))
    new = phase_unit(pred_cs, mag)
    low = torch.arange(pred.shape[1], device=pred.device)[None, :, None] < cutoff_bins.to(pred.device)[:, None, None]
    spec = torch.where(low, input_spec.to(new.dtype), new)
    got = normalize(log_power(frames(overlap_add(spec, stft), stft)))
    edge = overlap_radius(stft)
    if got.shape[-1] > 2 * edge:
        got, target = got[..., edge:-edge], target[..., edge:-edge]
    return masked_l1(got, target, mask)


def _patch_weights(band: torch.Tensor | None, feature: torch.Tensor) -> torch.Tensor:
    """Per-patch weights ``[B, 1, F', 1]`` for a feature map ``[B, C, F', T']``: the share of the patch's
    frequency span that lies in ``band`` ``[B, F]`` (1 = judged); all ones without a band."""
    if band is None:
        return feature.new_ones(feature.shape[0], 1, feature.shape[2], 1)
    share = F.adaptive_avg_pool1d(band.to(feature.dtype)[:, None, :], feature.shape[2])  # [B, 1, F']
    return share[..., None]


def _weighted_mean(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` ``[B, C, F', T']`` weighted by ``weight`` ``[B, 1, F', 1]``."""
    w = weight.expand_as(x)
    return (x * w).sum() / w.sum().clamp_min(1e-6)


def lsgan_discriminator_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]],
                             band: torch.Tensor | None = None) -> torch.Tensor:
    """LSGAN: real logits → 1, fake logits → 0, summed over scales. ``band`` ``[B, F]`` (1 over the new
    band): only patches over it count (the low band is the input's in both images: nothing to judge)."""
    loss = real[0][-1].new_zeros(())
    for r, f in zip(real, fake, strict=True):
        w = _patch_weights(band, r[-1])
        loss = loss + _weighted_mean((r[-1] - 1) ** 2, w) + _weighted_mean(f[-1] ** 2, w)
    return loss


def lsgan_generator_loss(fake: list[list[torch.Tensor]], band: torch.Tensor | None = None) -> torch.Tensor:
    """LSGAN for the generator: fake logits → 1, summed over scales (``band`` as for the discriminator)."""
    loss = fake[0][-1].new_zeros(())
    for f in fake:
        loss = loss + _weighted_mean((f[-1] - 1) ** 2, _patch_weights(band, f[-1]))
    return loss


def feature_matching_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]],
                          band: torch.Tensor | None = None) -> torch.Tensor:
    """L1 between the discriminator's intermediate features on real and generated spectrograms, averaged
    over layers (``band`` as for the discriminator)."""
    loss = fake[0][-1].new_zeros(())
    n = 0
    for r_scale, f_scale in zip(real, fake, strict=True):
        for r, f in zip(r_scale[:-1], f_scale[:-1], strict=True):
            loss = loss + _weighted_mean((r.detach() - f).abs(), _patch_weights(band, f))
            n += 1
    return loss / max(n, 1)
