"""The training losses: the level and texture terms against hand-computed cases."""

import math

import torch

from specsr.config import TrainConfig
from specsr.losses import (
    GROUP_BINS,
    TEXTURE_SMOOTH_BINS,
    _moving_mean,
    band_level_l1,
    feature_matching_loss,
    fixed_pattern_l1,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    masked_l1,
    texture_l1,
)
from specsr.spectral import normalize


def _mask(b: int, f: int, lo: int, hi: int) -> torch.Tensor:
    m = torch.zeros(b, f)
    m[:, lo:hi] = 1.0
    return m


def test_level_of_a_flat_band_is_its_offset():
    """Two flat spectra 6 dB apart: every group's level differs by 0.6 in log10 units."""
    f, t = 5 * GROUP_BINS + 3, 7
    target = normalize(torch.zeros(1, f, t))
    pred = normalize(torch.full((1, f, t), 0.6))
    mask = _mask(1, f, 10, f)
    assert math.isclose(float(band_level_l1(pred, target, mask)), float(normalize(torch.tensor(0.6)) - normalize(
        torch.tensor(0.0))), rel_tol=1e-5)


def test_level_is_of_the_mean_power_not_the_mean_log():
    """A group of alternating 0 and 2 (log10 power) has mean power (1 + 100) / 2: its level is log10(50.5)."""
    g = GROUP_BINS
    logp = torch.zeros(1, g, 1)
    logp[0, 1::2] = 2.0
    flat = torch.full((1, g, 1), math.log10(50.5))
    mask = torch.ones(1, g)
    assert float(band_level_l1(normalize(flat), normalize(logp), mask)) < 1e-5
    # the mean log (1.0) is a haze's level: 10·log10(50.5 / 10) dB too quiet
    haze = torch.ones(1, g, 1)
    expected = float(normalize(torch.tensor(math.log10(50.5))) - normalize(torch.tensor(1.0)))
    assert math.isclose(float(band_level_l1(normalize(haze), normalize(logp), mask)), expected, rel_tol=1e-5)


def test_rms_level_asks_for_the_mean_level_l1_for_the_median():
    """Three quiet frames and one 3 units louder (a fricative the input cannot show): a constant prediction scores
    best at the median (0) under L1 and at the mean (0.75) under RMS."""
    f = GROUP_BINS
    target = torch.zeros(1, f, 4)
    target[..., 3] = 3.0
    mask = torch.ones(1, f)
    at = {c: torch.full((1, f, 4), c) for c in (0.0, 0.75)}
    l1 = {c: float(band_level_l1(p, target, mask)) for c, p in at.items()}
    rms = {c: float(band_level_l1(p, target, mask, norm="rms")) for c, p in at.items()}
    assert l1[0.0] < l1[0.75] and rms[0.75] < rms[0.0]
    assert math.isclose(rms[0.0], math.sqrt(9 / 4), rel_tol=1e-5)


def test_whole_band_level_asks_for_the_loud_groups_the_group_term_cannot_place():
    """Each frame's power sits in one group, a different one per frame (where a fricative peaks, unknown to the
    network). A flat guess at the groups' mean log level wins the group term; it leaves the band's level
    log10(n_groups) too low, which the whole-band term (``group_bins = F``) prices and a guess at the band's
    mean power does not pay."""
    g, n_groups = GROUP_BINS, 8
    f = g * n_groups
    logp = torch.full((1, f, n_groups), -3.0)
    for t in range(n_groups):
        logp[0, t * g:(t + 1) * g, t] = 3.0
    target, mask = normalize(logp), torch.ones(1, f)
    typical = normalize(torch.full((1, f, n_groups), -3.0))  # the level most groups have
    band_mean = normalize(torch.full((1, f, n_groups), math.log10((1e3 + (n_groups - 1) * 1e-3) / n_groups)))
    assert float(band_level_l1(typical, target, mask)) < float(band_level_l1(band_mean, target, mask))
    assert float(band_level_l1(band_mean, target, mask, group_bins=f)) < 1e-5
    expected = float(normalize(torch.tensor(math.log10((1e3 + 7e-3) / 8))) - normalize(torch.tensor(-3.0)))
    assert math.isclose(float(band_level_l1(typical, target, mask, group_bins=f)), expected, rel_tol=1e-5)


def test_unmasked_bins_do_not_count():
    f, t = 4 * GROUP_BINS, 3
    target = torch.zeros(2, f, t)
    pred = target.clone()
    pred[:, :GROUP_BINS] = 5.0  # only outside the mask
    mask = _mask(2, f, GROUP_BINS, f)
    assert float(band_level_l1(pred, target, mask)) == 0.0
    assert float(texture_l1(pred, target, mask)) == 0.0
    assert float(masked_l1(pred, target, mask)) == 0.0


def test_texture_asks_for_roughness_not_positions():
    """Noise against other noise of the same statistics scores far closer than a smooth band does."""
    gen = torch.Generator().manual_seed(0)
    f, t = 8 * GROUP_BINS, 50
    target = torch.randn(2, f, t, generator=gen) * 0.2
    other = torch.randn(2, f, t, generator=gen) * 0.2
    smooth = torch.zeros(2, f, t)
    mask = _mask(2, f, 0, f)
    rough_loss, haze_loss = float(texture_l1(other, target, mask)), float(texture_l1(smooth, target, mask))
    # 16 bins a group: a sample RMS spreads by ~σ/√32, so other noise's loss is ~0.2 of the haze's
    assert rough_loss < 0.35 * haze_loss
    # a smooth estimate's loss is the truth's roughness about its 9-bin moving mean (≈ 0.2 · sqrt(8/9))
    assert math.isclose(haze_loss, 0.2 * math.sqrt(8 / 9), rel_tol=0.1)
    assert float(texture_l1(target, target, mask)) == 0.0


def test_the_seam_counts_as_texture():
    """The estimate's bins below the mask are the truth's: a step at the band's edge is roughness there, a fixed
    step only with ``fixed_patterns``, a step that changes from frame to frame always."""
    f, t = 4 * GROUP_BINS, 2
    target = torch.zeros(1, f, t)
    pred = torch.zeros(1, f, t)
    pred[:, GROUP_BINS:] = -1.0  # the new band 1 unit below the kept band
    mask = _mask(1, f, GROUP_BINS, f)
    assert float(texture_l1(pred, target, mask, fixed_patterns=True)) > 0.05
    assert float(texture_l1(pred, target, mask)) < 1e-6
    pred[:, GROUP_BINS:, 1] = -3.0  # the step moves: 1 unit in one frame, 3 in the next
    assert float(texture_l1(pred, target, mask)) > 0.05
    assert float(texture_l1(pred, pred, mask)) == 0.0


def test_a_lattice_fixed_in_place_earns_no_texture():
    """A pattern on the same bins in every frame (v2's +4-5 dB on every 4th bin) is not the truth's roughness: it
    does not bring a haze's texture loss down, unless ``fixed_patterns``; noise of the truth's statistics does."""
    gen = torch.Generator().manual_seed(1)
    f, t = 8 * GROUP_BINS, 64
    target = torch.randn(2, f, t, generator=gen) * 0.2
    mask = _mask(2, f, 0, f)
    haze = torch.zeros(2, f, t)
    lattice = haze.clone()
    lattice[:, 3::4] = 0.4  # the same bins in every frame
    other = torch.randn(2, f, t, generator=gen) * 0.2
    haze_loss = float(texture_l1(haze, target, mask))
    assert math.isclose(float(texture_l1(lattice, target, mask)), haze_loss, rel_tol=1e-5)
    assert float(texture_l1(lattice, target, mask, fixed_patterns=True)) < 0.6 * haze_loss
    assert float(texture_l1(other, target, mask)) < 0.35 * haze_loss


def test_a_lattice_costs_in_the_pattern_term_moving_roughness_and_the_truths_harmonics_do_not():
    """The pattern term compares the fine structure averaged over frames: a lattice on the same bins of every
    frame costs its offset about the moving mean; roughness that moves averages out (nearly free); a held
    note's harmonics in the truth are asked for, so drawing them costs nothing."""
    gen = torch.Generator().manual_seed(2)
    f, t = 8 * GROUP_BINS, 256
    target = torch.randn(1, f, t, generator=gen) * 0.2
    mask = _mask(1, f, 0, f)
    lattice = torch.zeros(1, f, t)
    lattice[:, 3::4] = 0.4
    moving = torch.randn(1, f, t, generator=gen) * 0.2
    lattice_loss = float(fixed_pattern_l1(lattice, target, mask))
    # every 4th bin +0.4, the others 0: about the 9-bin mean (≈ 0.4 · 2/9 or 3/9) each bin is off by ≈ 0.1-0.3
    assert 0.1 < lattice_loss < 0.35
    assert float(fixed_pattern_l1(moving, target, mask)) < 0.15 * lattice_loss
    harmonics = target + lattice  # a truth with a fixed comb (a held note)
    assert float(fixed_pattern_l1(harmonics, harmonics, mask)) == 0.0
    assert float(fixed_pattern_l1(torch.zeros(1, f, t), harmonics, mask)) > 0.8 * lattice_loss


def test_stripes_a_kilohertz_apart_cost_only_at_the_wide_pattern_scale():
    """Horizontal stripes 43 bins (~1 kHz) apart, each 9 bins wide, are smooth at the ±4-bin scale (nearly free
    there) but stand out about a 129-bin moving mean; one scale alone is that scale's term, several their mean."""
    f, t = 600, 64
    target = torch.zeros(1, f, t)
    mask = _mask(1, f, 0, f)
    bins = torch.arange(f)
    stripes = (0.5 * ((bins % 43) < 9).float())[None, :, None].expand(1, f, t)
    narrow = float(fixed_pattern_l1(stripes, target, mask, (9,)))
    wide = float(fixed_pattern_l1(stripes, target, mask, (129,)))
    assert narrow < 0.5 * wide and wide > 0.15
    assert math.isclose(float(fixed_pattern_l1(stripes, target, mask, (9, 129))), (narrow + wide) / 2, rel_tol=1e-5)
    assert float(fixed_pattern_l1(stripes, target, mask)) == narrow  # the default scale is the ±4-bin one
    assert float(fixed_pattern_l1(stripes, stripes, mask, (9, 129))) == 0.0


def test_the_pattern_terms_default_scale_is_the_texture_scale():
    assert TrainConfig().pattern_smooth_bins == (TEXTURE_SMOOTH_BINS,)


def test_gradients_are_finite_for_silent_and_loud_bins():
    pred = torch.tensor([[-3.0, -3.0, 3.0, 3.0] * GROUP_BINS]).T[None].repeat(1, 1, 2).requires_grad_()
    target = torch.zeros_like(pred)
    mask = torch.ones(1, pred.shape[1])
    (band_level_l1(pred, target, mask) + texture_l1(pred, target, mask)).backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_moving_mean_is_the_window_mean_cut_at_the_edges():
    x = torch.randn(2, 37, 3, dtype=torch.float64)
    got = _moving_mean(x, 9)
    for f in (0, 3, 4, 20, 36):
        lo, hi = max(0, f - 4), min(37, f + 5)
        assert torch.allclose(got[:, f], x[:, lo:hi].mean(dim=1))


def _logits(values: torch.Tensor) -> list[list[torch.Tensor]]:
    """One scale: a feature map and logits ``[B, 1, F', T']`` from per-patch values ``[B, F']``."""
    logit = values[:, None, :, None].expand(-1, 1, -1, 3)
    return [[logit.expand(-1, 2, -1, -1) * 2.0, logit]]


def test_adversarial_terms_count_only_patches_over_the_band():
    """4 patches along frequency over 8 bins; the band is the top half: the low patches never count."""
    band = torch.tensor([[0.0, 0, 0, 0, 1, 1, 1, 1]])
    fake = torch.tensor([[5.0, -3.0, 0.5, 0.0]])  # low patches wildly off, high ones 0.5 and 0
    real = torch.tensor([[9.0, 9.0, 1.0, 1.0]])
    # generator: ((0.5 - 1)^2 + (0 - 1)^2) / 2; discriminator: real high patches are 1 (cost 0) + the same mean of f^2
    assert math.isclose(float(lsgan_generator_loss(_logits(fake), band)), (0.25 + 1.0) / 2, rel_tol=1e-6)
    assert math.isclose(float(lsgan_discriminator_loss(_logits(real), _logits(fake), band)), 0.25 / 2, rel_tol=1e-6)
    # features 2·logit: |2 - 1| and |2 - 0| over the high patches
    assert math.isclose(float(feature_matching_loss(_logits(real), _logits(fake), band)), (1.0 + 2.0) / 2, rel_tol=1e-6)
    # without a band every patch counts
    everything = ((5 - 1) ** 2 + (-3 - 1) ** 2 + 0.25 + 1.0) / 4
    assert math.isclose(float(lsgan_generator_loss(_logits(fake))), everything, rel_tol=1e-6)


def test_a_patch_across_the_seam_counts_by_its_share_of_the_band():
    band = torch.tensor([[0.0, 0, 0, 1, 1, 1]])  # 2 patches of 3 bins; the seam falls inside neither
    fake = torch.tensor([[3.0, 0.0]])
    assert math.isclose(float(lsgan_generator_loss(_logits(fake), band)), 1.0, rel_tol=1e-6)
    band = torch.tensor([[0.0, 0, 1, 1, 1, 1]])  # the first patch is one third in the band
    assert math.isclose(float(lsgan_generator_loss(_logits(fake), band)), (4.0 / 3 + 1.0) / (4 / 3), rel_tol=1e-6)
