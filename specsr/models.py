"""Models: the spectrogram U-Net (also the SRGAN generator) and the SRGAN patch discriminator.

The U-Net sees a spectrogram "image" ``[B, C, F, T]`` with up to three channels:

- the low-resolution log10-power, normalised, with the bins at and above the cutoff blanked (what
  lies there is filter residue, different for every resampler: the model must not learn it);
- a cutoff mask (1 below the cutoff, 0 above): where the model has to start predicting;
- the absolute frequency of each bin (0 at DC, 1 at Nyquist): a convolution cannot know where in
  the spectrum it is, and harmonics, fricatives and roll-offs all depend on it;
- with ``predict_phase``, the cosine and sine of the input's phase below the cutoff (0 above).

With the two conditioning channels one model serves every input rate. The network predicts the
log-power of every bin; only the bins above the cutoff are used (the low band is never the model's
to change: the pipeline keeps the input's STFT there). With ``predict_phase`` it also predicts each bin's
phase, as two more output channels (an unnormalised cosine and sine: the phase is their angle), which
``--phase learned`` uses for the new band instead of reconstructing one from the magnitude.

Layout: ``len(channels)`` levels; each level is two 3×3 conv + norm + LeakyReLU; down by 2×2
average pooling, up by nearest-neighbour ×2 followed by a 3×3 conv (no transposed convolutions, so
no checkerboard stripes). At the bottleneck, ``freq_mix_layers`` residual layers mix along the whole
frequency axis (a learned ``[F', F']`` matrix per layer), because harmonic structure spans more
bins than any stack of 3×3 kernels sees; with ``freq_mix_levels`` = k one such layer also follows the block
of each of the k levels next to the bottleneck, on the way down and on the way up (k = ``len(channels) - 1``:
mixing along the whole frequency axis at every scale).
With ``patch_bins`` P > 1, each run of P adjacent bins is folded into channels first (``[B, C, F, T]`` →
``[B, C·P, F/P, T]``) and the output unfolded (P channels → P bins): the levels then work on a P times
smaller image, which is most of the cost at full resolution.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from specsr.config import ModelConfig, STFTConfig
from specsr.spectral import normalize

BLANK_VALUE = 0.0  # normalised input value in the blanked (above-cutoff) region
# A DC offset lands in the lowest bins only (a periodic Hann window's spectrum has three non-zero lines):
# the network sees bin DC_BINS there instead, so that an offset cannot change what it predicts.
DC_BINS = 2
POOL = 2  # each U-Net level halves frequency and time


def _conv_reach(module: nn.Module, stride: int) -> int:
    """Frames along time that the convolutions of ``module`` (in sequence) reach, at ``stride``."""
    return sum((m.kernel_size[1] // 2) * m.dilation[1] * stride for m in module.modules() if isinstance(m, nn.Conv2d))


def _norm(kind: str, ch: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "group":
        return nn.GroupNorm(min(8, ch), ch)
    return nn.Identity()


class ConvBlock(nn.Module):
    """Two 3×3 conv + norm + LeakyReLU. ``[B, C_in, F, T]`` → ``[B, C_out, F, T]``."""

    def __init__(self, ch_in: int, ch_out: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(ch_in, ch_out, 3, padding=1, bias=norm == "none"), _norm(norm, ch_out), nn.LeakyReLU(0.2),
            nn.Conv2d(ch_out, ch_out, 3, padding=1, bias=norm == "none"), _norm(norm, ch_out), nn.LeakyReLU(0.2),
        )

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """``keep`` ``[B, 1, 1, T]`` (1 = a real frame, 0 = padding) zeroes the padding before each conv, as
        the conv's own zero padding would see it for that item alone."""
        if keep is None:
            return self.body(x)
        return self.body[3:](self.body[:3](x) * keep) * keep


class FreqMix(nn.Module):
    """Residual mixing along frequency: ``x + act(norm(W_f · x))`` with a learned ``[F', F']`` matrix,
    followed by a 1×1 channel mix. ``[B, C, F', T]`` → same."""

    def __init__(self, ch: int, n_freq: int, norm: str) -> None:
        super().__init__()
        self.freq = nn.Linear(n_freq, n_freq)
        nn.init.zeros_(self.freq.weight)
        nn.init.zeros_(self.freq.bias)
        self.channel = nn.Conv2d(ch, ch, 1)
        self.norm = _norm(norm, ch)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.freq(x.transpose(-1, -2)).transpose(-1, -2)  # mix over F for each (B, C, T)
        return x + self.act(self.norm(self.channel(y)))


class UNet(nn.Module):
    """The spectrogram U-Net. ``forward([B, C_in, F, T]) -> [B, C_out, F, T]``: normalised log10-power, then
    (``predict_phase``) an unnormalised cosine and sine of the phase."""

    def __init__(self, cfg: ModelConfig, stft: STFTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_bins = stft.n_bins
        m, p = cfg.frame_multiple, cfg.patch_bins
        self.n_bins_padded = -(-self.n_bins // (m * p)) * (m * p)  # whole patches, halved at every level
        ch = cfg.channels
        self.inc = ConvBlock(cfg.n_inputs * p, ch[0], cfg.norm)
        self.down = nn.ModuleList(ConvBlock(ch[i], ch[i + 1], cfg.norm) for i in range(len(ch) - 1))
        rows = [self.n_bins_padded // (p * POOL ** level) for level in range(len(ch))]  # each level's F'
        self.mix = nn.Sequential(*[FreqMix(ch[-1], rows[-1], cfg.norm) for _ in range(cfg.freq_mix_layers)])
        # freq_mix_levels = k: one FreqMix after the block of each of levels L-1-k..L-2, down; the same levels up
        self.mix_levels = range(len(ch) - 1 - cfg.freq_mix_levels, len(ch) - 1)
        self.down_mix = nn.ModuleList(FreqMix(ch[i], rows[i], cfg.norm) for i in self.mix_levels)
        self.up_mix = nn.ModuleList(FreqMix(ch[i], rows[i], cfg.norm) for i in reversed(self.mix_levels))
        self.up_conv = nn.ModuleList(nn.Conv2d(ch[i + 1], ch[i], 3, padding=1) for i in reversed(range(len(ch) - 1)))
        self.up = nn.ModuleList(ConvBlock(2 * ch[i], ch[i], cfg.norm) for i in reversed(range(len(ch) - 1)))
        self.out = nn.Conv2d(ch[0], p * cfg.n_outputs, 1)

    @property
    def receptive_field_frames(self) -> int:
        """Half-width, in frames, of the receptive field along time (an upper bound), from the layers themselves.

        Walks the deepest path of :meth:`forward`: each convolution reaches ``(k_t // 2)·dilation``
        frames at the current stride, each pooling and each nearest upsampling ``POOL − 1`` frames at
        the finer stride; the frequency-mixing layers are pointwise in time.
        """
        stride = 1
        reach = _conv_reach(self.inc, stride)
        for block in self.down:
            reach += (POOL - 1) * stride
            stride *= POOL
            reach += _conv_reach(block, stride)
        reach += _conv_reach(self.mix, stride)
        for conv, block in zip(self.up_conv, self.up, strict=True):
            stride //= POOL
            reach += (POOL - 1) * stride + _conv_reach(conv, stride) + _conv_reach(block, stride)
        return reach + _conv_reach(self.out, stride)

    def forward(self, x: torch.Tensor, n_frames: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``[B, C_in, F, T]`` → ``[B, C_out, F, T]`` (``C_out = cfg.n_outputs``).

        ``n_frames`` ``[B]`` (a batch of signals of different lengths, padded to ``T``): item ``i`` is
        computed as if it were alone with its ``n_frames[i]`` frames (its own replicate padding to the
        frame multiple, zeros beyond it inside every layer), so that short signals can share a call; its
        frames past ``n_frames[i]`` are not meaningful.
        """
        b, c, f, t = x.shape
        if f != self.n_bins:
            raise ValueError(f"model expects {self.n_bins} frequency bins, got {f}")
        m = self.cfg.frame_multiple
        t_pad = -(-t // m) * m
        if n_frames is None:
            x = F.pad(x, (0, t_pad - t, 0, self.n_bins_padded - f), mode="replicate")
            keeps: Sequence[torch.Tensor | None] = [None] * len(self.cfg.channels)
        else:
            x, keeps = self._pad_items(x, n_frames, t_pad)
        skips = []
        h = self.inc(_fold(x, self.cfg.patch_bins), keeps[0])
        for level, block in enumerate(self.down, start=1):
            if level - 1 in self.mix_levels:
                h = _masked(self.down_mix[level - 1 - self.mix_levels.start](h), keeps[level - 1])
            skips.append(h)
            h = block(F.avg_pool2d(h, POOL), keeps[level])
        h = _masked(self.mix(h), keeps[-1])
        for i, (conv, block) in enumerate(zip(self.up_conv, self.up, strict=True)):
            level = len(self.up) - 1 - i
            # h is zero past each item at the coarser level, so its nearest upsampling is zero past it here
            h = _masked(conv(F.interpolate(h, scale_factor=float(POOL), mode="nearest")), keeps[level])
            h = block(torch.cat([h, skips.pop()], dim=1), keeps[level])
            if level in self.mix_levels:  # up_mix runs from the deepest mixed level, as this loop does
                h = _masked(self.up_mix[i](h), keeps[level])
        return _unfold(self.out(h), self.cfg.patch_bins)[:, :, :f, :t]

    def _pad_items(self, x: torch.Tensor, n_frames: torch.Tensor,
                   t_pad: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Each item replicate-padded from its own length to its own frame multiple, zeros beyond; and the
        per-level masks of its real (padded) frames ``[B, 1, 1, T_l]``."""
        b, _c, f, t = x.shape
        m = self.cfg.frame_multiple
        n = n_frames.to(device=x.device, dtype=torch.long).clamp(1, t)
        idx = torch.minimum(torch.arange(t_pad, device=x.device)[None, :], (n - 1)[:, None])  # [B, T_pad]
        x = torch.gather(x, 3, idx[:, None, None, :].expand(b, x.shape[1], f, t_pad))
        x = F.pad(x, (0, 0, 0, self.n_bins_padded - f), mode="replicate")
        own = (n + m - 1) // m * m  # each item's own padded length
        keeps = [(torch.arange(t_pad // POOL ** level, device=x.device)[None, :] < (own // POOL ** level)[:, None])
                 .to(x.dtype)[:, None, None] for level in range(len(self.cfg.channels))]
        return x * keeps[0], keeps


def _masked(x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    return x if keep is None else x * keep


def _fold(x: torch.Tensor, p: int) -> torch.Tensor:
    """``[B, C, F, T]`` → ``[B, C·p, F/p, T]``: channel ``c·p + j`` holds bin ``f·p + j`` of channel ``c``."""
    if p == 1:
        return x
    b, c, f, t = x.shape
    return x.reshape(b, c, f // p, p, t).transpose(2, 3).reshape(b, c * p, f // p, t)


def _unfold(x: torch.Tensor, p: int) -> torch.Tensor:
    """The inverse of :func:`_fold`: ``[B, C·p, F/p, T]`` → ``[B, C, F·p, T]``."""
    if p == 1:
        return x
    b, cp, f, t = x.shape
    return x.reshape(b, cp // p, p, f, t).transpose(2, 3).reshape(b, cp // p, f * p, t)


def fuse_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm that directly follows a convolution into that convolution, in place.

    For inference only (the model must be in ``eval()`` mode): the outputs are those of the unfused
    model up to float rounding, with one pass over the activations fewer per layer (measured: ~20 %
    of the U-Net's CPU time). Uses :func:`torch.nn.utils.fusion.fuse_conv_bn_eval`.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if model.training:
        raise ValueError("fuse_batchnorm is for inference: call model.eval() first")
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            for i in range(len(module) - 1):
                conv, bn = module[i], module[i + 1]
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    module[i], module[i + 1] = fuse_conv_bn_eval(conv, bn), nn.Identity()
        elif isinstance(module, FreqMix) and isinstance(module.norm, nn.BatchNorm2d):
            module.channel, module.norm = fuse_conv_bn_eval(module.channel, module.norm), nn.Identity()
    return model


def build_inputs(lowres_logp: torch.Tensor, cutoff_bins: torch.Tensor, cfg: ModelConfig,
                 lowres_spec: torch.Tensor | None = None) -> torch.Tensor:
    """Network input from the low-res log10-power ``[B, F, T]`` and per-item cutoff bins ``[B]``.

    Returns ``[B, cfg.n_inputs, F, T]``: normalised log-power blanked above the cutoff (and its
    lowest :data:`DC_BINS` bins replaced by the next, so that a DC offset is invisible), then the
    cutoff mask and the frequency position, as configured; with ``cfg.predict_phase``, the cosine and
    sine of the phase of ``lowres_spec`` (the complex STFT ``[B, F, T]``, required then) below the cutoff.
    """
    b, f, t = lowres_logp.shape
    if f > DC_BINS:
        lowres_logp = torch.cat([lowres_logp[:, DC_BINS:DC_BINS + 1].expand(b, DC_BINS, t),
                                 lowres_logp[:, DC_BINS:]], dim=1)
    bins = torch.arange(f, device=lowres_logp.device)
    mask = (bins[None, :] < cutoff_bins.to(lowres_logp.device)[:, None]).to(lowres_logp.dtype)  # [B, F]
    feat = normalize(lowres_logp) * mask[:, :, None] + BLANK_VALUE * (1 - mask[:, :, None])
    chans = [feat]
    if cfg.use_cutoff:
        chans.append(mask[:, :, None].expand(b, f, t))
    if cfg.use_position:
        pos = (bins.to(lowres_logp.dtype) / (f - 1))[None, :, None]
        chans.append(pos.expand(b, f, t))
    if cfg.predict_phase:
        if lowres_spec is None:
            raise ValueError("a model with predict_phase needs the input's complex STFT")
        re, im = lowres_spec.real.to(feat.dtype), lowres_spec.imag.to(feat.dtype)  # real arithmetic: faster
        inv = torch.rsqrt((re * re + im * im).clamp_min(1e-30)) * mask[:, :, None]  # (a zero bin: cos = sin = 0)
        chans += [re * inv, im * inv]
    return torch.stack(chans, dim=1)


def phase_unit(cs: torch.Tensor, mag: torch.Tensor | None = None) -> torch.Tensor:
    """The predicted phase: the network's cosine and sine channels ``[B, 2, F, T]`` (``out[:, 1:3]``) → complex
    ``[B, F, T]`` unit phasors, or, given ``mag`` ``[B, F, T]``, the magnitude with that phase."""
    c, s = cs[:, 0].float(), cs[:, 1].float()
    scale = torch.rsqrt(c * c + s * s + 1e-12)
    if mag is not None:
        scale = scale * mag
    return torch.complex(c * scale, s * scale)


class PatchDiscriminator(nn.Module):
    """SRGAN discriminator on spectrogram patches, one branch per scale of ``cfg.disc_scales``.

    Input ``[B, 2, F, T]``: normalised log-power and the cutoff mask (so it knows which band is
    judged). Branch ``i`` sees the image average-pooled by ``cfg.disc_pools[i]`` (frequency, time): at
    full resolution it judges fine texture; pooled along frequency, the band's envelope and bursts over
    time; pooled along time, fine frequency structure (harmonics). Each branch is a stack of spectral-norm
    convolutions striding 2 along frequency. Returns per branch a list of feature maps ``[B, C, F', T']``,
    the last being the patch logits ``[B, 1, F', T']``.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.pools = cfg.disc_pools
        self.scales = nn.ModuleList(self._branch(cfg.disc_channels) for _ in self.pools)

    @staticmethod
    def _branch(channels: tuple[int, ...]) -> nn.ModuleList:
        sn = nn.utils.parametrizations.spectral_norm
        layers = nn.ModuleList()
        ch_in = 2
        for ch in channels:
            layers.append(nn.Sequential(sn(nn.Conv2d(ch_in, ch, (5, 3), stride=(2, 1), padding=(2, 1))),
                                        nn.LeakyReLU(0.2)))
            ch_in = ch
        layers.append(sn(nn.Conv2d(ch_in, 1, 3, padding=1)))
        return layers

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        outs = []
        for pool, branch in zip(self.pools, self.scales, strict=True):
            h = x if pool == (1, 1) else F.avg_pool2d(x, pool)
            feats = []
            for layer in branch:  # type: ignore[attr-defined]
                h = layer(h)
                feats.append(h)
            outs.append(feats)
        return outs


def build_model(cfg: ModelConfig, stft: STFTConfig) -> UNet:
    """The generator for any ``cfg.arch`` (SRGAN's generator is the same U-Net)."""
    return UNet(cfg, stft)


def count_parameters(module: nn.Module) -> int:
    """Number of parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())
