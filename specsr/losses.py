"""Losses: L1 on log-power of the band the model owns, and the SRGAN adversarial terms.

The content loss compares normalised log10-power (the quantity LSD measures) only where the model
is responsible: at and above each item's cutoff bin, and below 0.95 × the *source's* Nyquist. Most
training files are 44.1 kHz, empty above 22.05 kHz: without that mask the model would learn to
predict silence at the top of every 48 kHz output. Sources at the model's own rate are trained up
to Nyquist: bins no item ever trains are bins the model fills with garbage.
"""

from __future__ import annotations

import torch

from specsr.config import STFTConfig
from specsr.spectral import cutoff_bins

SOURCE_NYQUIST_MARGIN = 0.95


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


def lsgan_discriminator_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """LSGAN: real logits → 1, fake logits → 0, summed over scales."""
    loss = real[0][-1].new_zeros(())
    for r, f in zip(real, fake, strict=True):
        loss = loss + ((r[-1] - 1) ** 2).mean() + (f[-1] ** 2).mean()
    return loss


def lsgan_generator_loss(fake: list[list[torch.Tensor]]) -> torch.Tensor:
    loss = fake[0][-1].new_zeros(())
    for f in fake:
        loss = loss + ((f[-1] - 1) ** 2).mean()
    return loss


def feature_matching_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """L1 between the discriminator's intermediate features on real and generated spectrograms."""
    loss = fake[0][-1].new_zeros(())
    n = 0
    for r_scale, f_scale in zip(real, fake, strict=True):
        for r, f in zip(r_scale[:-1], f_scale[:-1], strict=True):
            loss = loss + (r.detach() - f).abs().mean()
            n += 1
    return loss / max(n, 1)
