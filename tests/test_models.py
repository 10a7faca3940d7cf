"""Models: shape contracts at odd sizes, conditioning channels, checkpoints that describe themselves."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import randomise_freq_mix

from specsr.checkpoint import load_checkpoint, make_checkpoint, read_checkpoint, save_checkpoint
from specsr.config import ModelConfig, STFTConfig, TaskConfig
from specsr.errors import SpecsrError
from specsr.losses import band_mask, masked_l1
from specsr.models import PatchDiscriminator, build_inputs, build_model, count_parameters, fuse_batchnorm

TINY = ModelConfig(channels=(4, 8, 16), freq_mix_layers=1, disc_channels=(4, 8))
STFT = STFTConfig(48000, 256, 64)  # 129 bins: small and odd


@pytest.mark.parametrize(("patch_bins", "mix_levels"), [(1, 0), (4, 0), (4, 1), (4, 2)])
@pytest.mark.parametrize("n_frames", [1, 7, 16, 33])
def test_unet_any_number_of_frames(n_frames, patch_bins, mix_levels):
    cfg = ModelConfig(channels=(4, 8, 16), freq_mix_layers=1, patch_bins=patch_bins, freq_mix_levels=mix_levels)
    model = build_model(cfg, STFT).eval()
    x = build_inputs(torch.randn(2, STFT.n_bins, n_frames) - 4, torch.tensor([30, 60]), cfg)
    assert x.shape == (2, 3, STFT.n_bins, n_frames)
    with torch.no_grad():
        assert model(x).shape == (2, 1, STFT.n_bins, n_frames)


def test_inputs_blank_above_cutoff_and_carry_position():
    cfg = ModelConfig(channels=(4, 8))
    logp = torch.randn(1, STFT.n_bins, 5)
    x = build_inputs(logp, torch.tensor([40]), cfg)
    assert torch.all(x[0, 0, 40:] == 0) and torch.all(x[0, 1, :40] == 1) and torch.all(x[0, 1, 40:] == 0)
    assert x[0, 2, 0, 0] == 0 and x[0, 2, -1, 0] == 1
    no_cond = build_inputs(logp, torch.tensor([40]), ModelConfig(channels=(4, 8), use_position=False,
                                                                 use_cutoff=False))
    assert no_cond.shape[1] == 1


def test_checkpoint_round_trip_identical_outputs(tmp_path):
    model = build_model(TINY, STFT).eval()
    path = save_checkpoint(make_checkpoint(model, TINY, STFT, TaskConfig(), name="t", provenance={"step": 3}),
                           tmp_path / "m.pt")
    loaded = load_checkpoint(path)
    assert loaded.model_cfg == TINY and loaded.stft == STFT and loaded.provenance["step"] == 3
    x = build_inputs(torch.randn(1, STFT.n_bins, 9), torch.tensor([50]), TINY)
    with torch.no_grad():
        assert torch.equal(model(x), loaded.model(x))
    keys = set(torch.load(path, weights_only=True)["state_dict"])
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in keys)


def test_checkpoint_errors(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    wav = tmp_path / "clip.wav"  # an audio file given as --model: said so, no unpickler's text
    sf.write(wav, np.zeros(160, dtype=np.float32), 16000)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    for path, message in ((bad, "not a specsr checkpoint .not a file torch.save wrote"),
                          (wav, r"^\S+clip.wav: not a specsr checkpoint \(it looks like a WAV file\)$"),
                          (empty, "the checkpoint file is empty")):
        with pytest.raises(SpecsrError, match=message):
            read_checkpoint(path)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(SpecsrError, match="not a specsr checkpoint"):
        read_checkpoint(other)
    model = build_model(TINY, STFT)
    ckpt = make_checkpoint(model, TINY, STFT, TaskConfig(), name="t")
    ckpt["version"] = 99
    torch.save(ckpt, tmp_path / "future.pt")
    with pytest.raises(SpecsrError, match="version 99"):
        read_checkpoint(tmp_path / "future.pt")
    ckpt["version"] = 1
    ckpt["model"]["channels"] = [4, 8]
    torch.save(ckpt, tmp_path / "mismatch.pt")
    with pytest.raises(SpecsrError, match="do not match"):
        load_checkpoint(tmp_path / "mismatch.pt")
    with pytest.raises(SpecsrError, match="no such"):
        read_checkpoint(tmp_path / "missing.pt")


def test_half_precision_checkpoint_is_smaller_and_loads(tmp_path):
    model = build_model(ModelConfig(channels=(8, 16, 32)), STFT)
    full = save_checkpoint(make_checkpoint(model, ModelConfig(channels=(8, 16, 32)), STFT, TaskConfig(), name="a"),
                           tmp_path / "f.pt")
    half = save_checkpoint(make_checkpoint(model, ModelConfig(channels=(8, 16, 32)), STFT, TaskConfig(), name="a",
                                           half=True), tmp_path / "h.pt")
    assert half.stat().st_size < 0.7 * full.stat().st_size
    assert load_checkpoint(half).model.inc.body[0].weight.dtype == torch.float32


def test_discriminator_shapes_and_loss_mask():
    d = PatchDiscriminator(TINY)
    outs = d(torch.randn(2, 2, STFT.n_bins, 32))
    assert len(outs) == 2 and outs[0][-1].shape[:2] == (2, 1) and outs[1][-1].shape[-1] == 16
    assert count_parameters(d) > 0
    mask = band_mask(torch.tensor([8000.0, 4000.0]), torch.tensor([22050.0, 24000.0]), STFT)
    assert mask.shape == (2, STFT.n_bins)
    assert mask[0, :43].sum() == 0 and mask[0, 43] == 1 and mask[0, 112:].sum() == 0  # 0.95 × 22.05 kHz
    assert mask[1, 22:].sum() == STFT.n_bins - 22  # a 48 kHz source trains every bin up to Nyquist
    pred, target = torch.zeros(2, STFT.n_bins, 4), torch.ones(2, STFT.n_bins, 4)
    assert masked_l1(pred, target, mask) == pytest.approx(1.0)


def test_discriminator_scales_pool_the_image_before_each_branch():
    cfg = ModelConfig(channels=(4, 8), freq_mix_layers=1, disc_channels=(4, 8), disc_scales=("1x1", "4x1", "1x4"))
    assert cfg.disc_pools == ((1, 1), (4, 1), (1, 4))
    outs = PatchDiscriminator(cfg)(torch.randn(2, 2, STFT.n_bins, 32))
    def strided(n: int) -> int:  # two stride-2 layers along frequency (kernel 5, padding 2)
        return ((n - 1) // 2) // 2 + 1

    f = STFT.n_bins
    assert [tuple(o[-1].shape) for o in outs] == [(2, 1, strided(f), 32), (2, 1, strided(f // 4), 32),
                                                  (2, 1, strided(f), 8)]
    # the default keeps the two branches (and parameter names) of the checkpoints written before scales existed
    assert set(PatchDiscriminator(TINY).state_dict()) == {k for k in PatchDiscriminator(TINY).state_dict()
                                                         if k.startswith(("scales.0.", "scales.1."))}


@pytest.mark.parametrize("bad", [(), ("2",), ("0x1",), ("2x17",), ("ax2",), ("2x2x2",)])
def test_bad_discriminator_scales_are_refused(bad):
    with pytest.raises(SpecsrError, match="disc_scales"):
        ModelConfig(disc_scales=bad)


def test_upsampling_has_no_transposed_convolutions():
    model = build_model(ModelConfig(), STFTConfig())
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in model.modules())


@pytest.mark.parametrize(("norm", "patch_bins", "mix_levels"),
                         [("batch", 1, 0), ("group", 1, 0), ("none", 1, 0), ("batch", 8, 0), ("batch", 8, 2)])
def test_fused_batchnorm_gives_the_same_outputs(norm, patch_bins, mix_levels):
    import copy

    cfg = ModelConfig(channels=(4, 8, 16), freq_mix_layers=1, norm=norm, patch_bins=patch_bins,
                      freq_mix_levels=mix_levels)
    model = build_model(cfg, STFT)
    randomise_freq_mix(model)
    with torch.no_grad():  # non-trivial running statistics and affine parameters
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    model.eval()
    fused = fuse_batchnorm(copy.deepcopy(model))
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert n_bn == 0
    x = build_inputs(torch.randn(2, STFT.n_bins, 21) - 4, torch.tensor([30, 60]), cfg)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), model(x), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="eval"):
        fuse_batchnorm(build_model(cfg, STFT).train())


@pytest.mark.parametrize(("norm", "patch_bins", "mix_levels"),
                         [("batch", 1, 0), ("none", 1, 0), ("batch", 4, 0), ("batch", 4, 2), ("none", 1, 2),
                          ("batch", 4, 1)])
def test_a_batch_of_different_lengths_equals_each_alone(norm, patch_bins, mix_levels):
    """``n_frames``: short signals share one network call, each computed as if alone (exact for BatchNorm
    in eval mode and no norm; the padding is the item's own)."""
    cfg = ModelConfig(channels=(4, 8, 8), freq_mix_layers=1, norm=norm, patch_bins=patch_bins,
                      freq_mix_levels=mix_levels)
    torch.manual_seed(0)
    model = build_model(cfg, STFT).eval()
    randomise_freq_mix(model)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
    lengths = [37, 16, 5, 64]
    items = [torch.randn(1, cfg.n_inputs, STFT.n_bins, n) for n in lengths]
    t = max(lengths)
    batch = torch.cat([torch.nn.functional.pad(x, (0, t - x.shape[-1]), value=7.0) for x in items])  # junk pad
    with torch.no_grad():
        together = model(batch, n_frames=torch.tensor(lengths))
        for i, (x, n) in enumerate(zip(items, lengths, strict=True)):
            alone = model(x)
            assert torch.allclose(together[i:i + 1, :, :, :n], alone, atol=1e-5), (norm, n)


def test_frequency_mixing_at_every_level():
    """``freq_mix_levels``: one mixing layer after the block of each of that many levels next to the bottleneck,
    down and up, each over that level's whole frequency axis; it starts as the identity (in training, where its
    norm sees the batch), carries the lowest bins to the top where no convolution reaches, and without it the
    network has exactly the parameters it always had (older checkpoints load strictly)."""
    from specsr.models import FreqMix

    plain_cfg = ModelConfig(channels=(4, 8, 16), freq_mix_layers=1, patch_bins=4)
    mixed_cfg = ModelConfig(channels=(4, 8, 16), freq_mix_layers=1, patch_bins=4, freq_mix_levels=2)
    plain, mixed = build_model(plain_cfg, STFT).train(), build_model(mixed_cfg, STFT).train()
    assert not any(k.startswith(("down_mix", "up_mix")) for k in plain.state_dict())
    rows = mixed.n_bins_padded // 4
    assert [m.freq.in_features for m in mixed.down_mix] == [rows, rows // 2]
    assert [m.freq.in_features for m in mixed.up_mix] == [rows // 2, rows]
    assert sum(isinstance(m, FreqMix) for m in mixed.modules()) == 1 + 4
    deep = build_model(mixed_cfg.with_overrides(freq_mix_levels=1), STFT)  # the level next to the bottleneck only
    assert [m.freq.in_features for m in (*deep.down_mix, *deep.up_mix)] == [rows // 2, rows // 2]
    for bad in (-1, 3):
        with pytest.raises(SpecsrError, match=r"freq_mix_levels must be in 0\.\.2"):
            mixed_cfg.with_overrides(freq_mix_levels=bad)
    missing, unexpected = mixed.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.startswith(("down_mix", "up_mix")) for k in missing)
    x = build_inputs(torch.randn(1, STFT.n_bins, 12) - 4, torch.tensor([40]), plain_cfg)
    with torch.no_grad():
        assert torch.allclose(mixed(x), plain(x), atol=1e-5)  # the identity at initialisation
    # two levels: the convolutions reach ±11 rows (44 bins), so only mixing carries the lowest bins to the top
    shallow = {"channels": (4, 8), "freq_mix_layers": 0, "patch_bins": 4}
    plain, mixed = (build_model(ModelConfig(**shallow, freq_mix_levels=k), STFT).eval() for k in (0, 1))
    randomise_freq_mix(mixed)
    x = build_inputs(torch.randn(1, STFT.n_bins, 12) - 4, torch.tensor([120]), plain.cfg)
    far = x.clone()
    far[:, 0, 5:9] += 3.0
    with torch.no_grad():
        assert torch.equal(plain(far)[..., 100:, :], plain(x)[..., 100:, :])
        assert not torch.allclose(mixed(far)[..., 100:, :], mixed(x)[..., 100:, :])


def test_patches_fold_adjacent_bins_into_channels():
    """Folding is a pure re-layout: bin f·p + j of channel c is channel c·p + j at row f, and back."""
    from specsr.models import _fold, _unfold

    x = torch.randn(2, 3, 24, 5)
    folded = _fold(x, 4)
    assert folded.shape == (2, 12, 6, 5)
    assert torch.equal(folded[:, 1 * 4 + 2, 5], x[:, 1, 5 * 4 + 2])
    y = torch.randn(2, 1, 24, 5)
    assert torch.equal(_unfold(_fold(y, 4), 4), y)
    wide = build_model(ModelConfig(channels=(8, 16), patch_bins=8), STFT)
    assert wide.inc.body[0].in_channels == 3 * 8 and wide.out.out_channels == 8
    assert wide.n_bins_padded % (8 * 2) == 0 and wide.n_bins_padded >= STFT.n_bins
