"""The learned phase (``[model] predict_phase``, ``--phase learned``): shapes, losses, training, inference."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error, brickwall, make_checkpoint_file, noise
from typer.testing import CliRunner

from specsr.checkpoint import read_checkpoint
from specsr.config import ModelConfig, RunConfig, STFTConfig
from specsr.dataset import build_dataset
from specsr.errors import SpecsrError
from specsr.losses import phase_antiwrap_l1, rebuild_l1
from specsr.models import _fold, _unfold, build_inputs, build_model, phase_unit
from specsr.pipeline import load_model
from specsr.spectral import frames, log_power, normalize
from specsr.train import Trainer, train

PHASE = ModelConfig(channels=(4, 8), freq_mix_layers=1, predict_phase=True)
CFG = STFTConfig()


def test_config_counts_the_phase_channels_and_checks_the_losses():
    assert (PHASE.n_inputs, PHASE.n_outputs) == (5, 3)
    assert (ModelConfig().n_inputs, ModelConfig().n_outputs) == (3, 1)
    with pytest.raises(SpecsrError, match="predict_phase"):
        RunConfig.from_dict({"train": {"phase_weight": 0.1}})
    with pytest.raises(SpecsrError, match="predict_phase"):
        RunConfig.from_dict({"train": {"rebuild_weight": 1.0}})
    with pytest.raises(SpecsrError, match="rebuild_weight"):
        RunConfig.from_dict({"model": {"predict_phase": True}, "train": {"rebuild_weight": -1.0}})
    assert RunConfig.from_dict({"model": {"predict_phase": True}, "train": {"phase_weight": 0.1}}).model.predict_phase


@pytest.mark.parametrize("p", [1, 4, 8])
def test_unfold_inverts_fold_for_several_channels(p):
    x = torch.randn(2, 3, 16 * p, 5)
    assert torch.equal(_unfold(_fold(x, p), p), x)


@pytest.mark.parametrize("n_frames", [1, 7, 33])
@pytest.mark.parametrize("patch_bins", [1, 8])
def test_phase_model_shapes_at_odd_lengths(n_frames, patch_bins):
    cfg = ModelConfig(channels=(4, 8), freq_mix_layers=1, predict_phase=True, patch_bins=patch_bins)
    model = build_model(cfg, CFG).eval()
    spec = torch.randn(2, CFG.n_bins, n_frames, dtype=torch.complex64)
    x = build_inputs(log_power(spec), torch.tensor([300, 500]), cfg, spec)
    assert x.shape == (2, 5, CFG.n_bins, n_frames)
    # the phase channels are the input's cos and sin below the cutoff, 0 above
    unit = spec / spec.abs()
    assert torch.allclose(x[0, 3, :300], unit[0, :300].real) and torch.allclose(x[0, 4, :300], unit[0, :300].imag)
    assert not x[0, 3:, 300:].any() and not x[1, 3:, 500:].any()
    out = model(x)
    assert out.shape == (2, 3, CFG.n_bins, n_frames)
    unit_out = phase_unit(out[:, 1:3])
    assert unit_out.is_complex() and torch.allclose(unit_out.abs(), torch.ones(()), atol=1e-4)
    with pytest.raises(ValueError, match="complex STFT"):
        build_inputs(log_power(spec), torch.tensor([300, 500]), cfg)


def _signal_frames(seconds: float = 0.4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames of a padded noise signal and of the same signal low-passed at 8 kHz: ``[1, F, M]`` each."""
    wav = torch.from_numpy(noise(seconds, 48000, 1, seed))
    low = torch.from_numpy(brickwall(wav.numpy(), 48000, 8000))
    return frames(wav, CFG), frames(low, CFG)


def test_antiwrap_loss_by_hand():
    target, _ = _signal_frames()
    mask = torch.zeros(1, CFG.n_bins)
    mask[:, 400:800] = 1.0
    true = torch.angle(target)

    def cs(angle: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.cos(angle), torch.sin(angle)], dim=1) * 2.5  # any scale: only the angle counts

    assert float(phase_antiwrap_l1(cs(true), target, mask)) < 1e-4
    assert float(phase_antiwrap_l1(cs(true + 4 * math.pi), target, mask)) < 1e-3  # whole turns cost nothing
    # a constant offset: the instantaneous phase is off by it everywhere, its differences not at all
    assert float(phase_antiwrap_l1(cs(true + 0.7), target, mask)) == pytest.approx(0.7, abs=1e-3)
    assert float(phase_antiwrap_l1(cs(true - 0.7 + 2 * math.pi), target, mask)) == pytest.approx(0.7, abs=1e-3)
    # an offset growing along time: the instantaneous frequency is off by its step
    ramp = 0.3 * torch.arange(target.shape[-1], dtype=torch.float32)
    loss = float(phase_antiwrap_l1(cs(true + ramp), target, mask))
    wrapped = ramp.remainder(2 * math.pi)
    wrapped = torch.minimum(wrapped, 2 * math.pi - wrapped)  # distance to the nearest whole turn, per frame
    w = target.abs()[0, 400:800]
    ip = float((wrapped[None, :] * w).sum() / w.sum())
    assert loss == pytest.approx(ip + 0.3, abs=2e-3)


def test_rebuild_loss_is_zero_for_the_truth_and_charges_a_wrong_phase():
    target, low = _signal_frames()
    cut = torch.tensor([8000 * CFG.n_fft // 48000])
    mask = (torch.arange(CFG.n_bins)[None] >= cut[:, None]).float()
    target_logp = normalize(log_power(target))
    true_cs = torch.stack([target.real, target.imag], dim=1)
    assert float(rebuild_l1(target_logp, true_cs, target, target_logp, cut, mask, CFG)) < 1e-3
    wrong = torch.randn(true_cs.shape, generator=torch.Generator().manual_seed(0))
    # the right magnitude with a random phase comes out wrong: the overlap-add cancels part of it
    assert float(rebuild_l1(target_logp, wrong, target, target_logp, cut, mask, CFG)) > 0.05


@pytest.fixture(scope="module")
def audio_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("phase-data")
    import soundfile as sf

    t = np.arange(48000) / 48000
    rng = np.random.default_rng(0)
    for g in range(3):
        p = root / "src" / f"group{g}" / "0.wav"
        p.parent.mkdir(parents=True, exist_ok=True)
        sig = 0.2 * np.sin(2 * np.pi * (200 + 100 * g) * t) + 0.05 * rng.standard_normal(len(t))
        sf.write(p, sig.astype(np.float32), 48000, subtype="FLOAT")
    build_dataset([root / "src"], root / "ds", segment_seconds=0.5, val_fraction=0.34, workers=1, progress=False)
    return root / "ds"


def _run_config(**model: object) -> RunConfig:
    return RunConfig.from_dict({
        "stft": {"n_fft": 1024, "hop_length": 256},
        "model": {"channels": [4, 8], "freq_mix_layers": 1, "patch_bins": 4, **model},
        "train": {"steps": 2, "batch_size": 2, "crop_frames": 16, "val_every": 2, "save_every": 1, "log_every": 1,
                  "max_val_items": 2, "phase_iters": 0,
                  **({"phase_weight": 0.1, "rebuild_weight": 1.0} if model.get("predict_phase") else {})},
    })


def test_warm_start_from_a_magnitude_model_predicts_its_magnitude_then_trains_the_phase(audio_dataset, tmp_path):
    train(audio_dataset, tmp_path / "mag", _run_config(), device="cpu", quiet=True)
    source = read_checkpoint(tmp_path / "mag" / "last.pt")
    cfg = _run_config(predict_phase=True)
    cfg = RunConfig.from_dict({**cfg.to_dict(), "train": {**cfg.train.to_dict(), "lr": 1e-3,
                                                           "warm_start": str(tmp_path / "mag" / "last.pt")}})
    trainer = Trainer(audio_dataset, tmp_path / "phase", cfg, device="cpu", quiet=True)
    magnitude_only = build_model(_run_config().model, cfg.stft)
    magnitude_only.load_state_dict({k: v.float() for k, v in source["state_dict"].items()})
    magnitude_only.eval()
    trainer.model.eval()
    spec = torch.randn(1, cfg.stft.n_bins, 24, dtype=torch.complex64)
    cut = torch.tensor([100])
    with torch.no_grad():
        before = magnitude_only(build_inputs(log_power(spec), cut, _run_config().model))
        after = trainer.model(build_inputs(log_power(spec), cut, cfg.model, spec))
    assert torch.allclose(after[:, :1], before, atol=1e-5)  # the phase inputs start at zero weight
    summary = trainer.run()
    trainer.close()
    assert summary.step == 2 and np.isfinite(summary.best_val_lsd)
    rows = (tmp_path / "phase" / "metrics.jsonl").read_text()
    assert '"phase"' in rows and '"rebuild"' in rows
    saved = read_checkpoint(tmp_path / "phase" / "last.pt")
    assert saved["model"]["predict_phase"] is True


def test_warm_start_from_another_architecture_is_a_one_line_error(audio_dataset, tmp_path):
    train(audio_dataset, tmp_path / "phase", _run_config(predict_phase=True), device="cpu", quiet=True)
    cfg = _run_config()
    cfg = RunConfig.from_dict({**cfg.to_dict(), "train": {**cfg.train.to_dict(),
                                                           "warm_start": str(tmp_path / "phase" / "last.pt")}})
    with pytest.raises(SpecsrError, match="predict_phase") as info:
        Trainer(audio_dataset, tmp_path / "plain", cfg, device="cpu", quiet=True)
    assert "\n" not in str(info.value)
    # a magnitude-only model of another shape is not grown into a phase model: refused the same way
    train(audio_dataset, tmp_path / "p2", _run_config(patch_bins=2), device="cpu", quiet=True)
    cfg = _run_config(predict_phase=True)
    cfg = RunConfig.from_dict({**cfg.to_dict(), "train": {**cfg.train.to_dict(),
                                                           "warm_start": str(tmp_path / "p2" / "last.pt")}})
    with pytest.raises(SpecsrError, match="patch_bins"):
        Trainer(audio_dataset, tmp_path / "grown", cfg, device="cpu", quiet=True)


def test_phase_model_refuses_a_spectrogram_dataset(tmp_path):
    root = tmp_path / "src" / "g"
    root.mkdir(parents=True)
    import soundfile as sf

    sf.write(root / "a.wav", noise(1.0, 48000, 1, 0).T, 48000)
    build_dataset([tmp_path / "src"], tmp_path / "ds", variants=1, segment_seconds=0.5, val_fraction=0.0,
                  workers=1, stft_preset="48k-1024", progress=False, spectrograms=True)
    with pytest.raises(SpecsrError, match="predict_phase"):
        Trainer(tmp_path / "ds", tmp_path / "run", _run_config(predict_phase=True), device="cpu", quiet=True)


@pytest.fixture(scope="module")
def phase_model(tmp_path_factory) -> Path:
    return make_checkpoint_file(tmp_path_factory.mktemp("models") / "phase.pt", cfg=PHASE, loud=True)


def test_learned_phase_chunked_equals_whole_and_differs_from_fgla(phase_model):
    ups = load_model(phase_model, device="cpu", precision="fp32")
    x = brickwall(noise(2.5, 16000, 2, 3), 16000, 0.45 * 16000)
    for n_iter in (0, 3):
        whole, _ = ups.upsample(x, 16000, phase="learned", n_iter=n_iter, chunk_seconds=100)
        chunked, _ = ups.upsample(x, 16000, phase="learned", n_iter=n_iter, chunk_seconds=0.3)
        assert np.abs(whole).max() > 0.1
        assert np.array_equal(whole, chunked)
    fgla, _ = ups.upsample(x, 16000, phase="fgla", n_iter=0, chunk_seconds=100)
    learned, _ = ups.upsample(x, 16000, phase="learned", n_iter=0, chunk_seconds=100)
    assert not np.allclose(fgla, learned, atol=1e-3)  # fgla ignores the predicted phase, learned uses it


def test_learned_phase_needs_a_model_that_predicts_it(tmp_path, write_wav, cli_app):
    model = make_checkpoint_file(tmp_path / "plain.pt")
    src = write_wav("in.wav", brickwall(noise(0.5, 16000, 1, 0), 16000, 7000), 16000)
    result = CliRunner().invoke(cli_app, ["upsample", str(src), "-o", str(tmp_path / "out.wav"), "--model", str(model),
                                      "--phase", "learned"])
    assert_one_line_error(result, "predicts no phase", "--phase learned")
    assert not (tmp_path / "out.wav").exists()


def test_batched_prediction_of_a_phase_model_equals_one_at_a_time(phase_model):
    """The shared predictor's path (several signals padded into one call) gives each its own phase too."""
    ups = load_model(phase_model, device="cpu", precision="fp32")
    gen = torch.Generator().manual_seed(0)
    requests = [(torch.randn(c, CFG.n_bins, m, dtype=torch.complex64, generator=gen), k)
                for c, m, k in ((1, 37, 300), (2, 64, 500), (1, 5, 200))]
    batched = ups.predict_magnitudes(requests)
    for (known, k), got in zip(requests, batched, strict=True):
        alone = ups.predict_magnitude(known, k)
        assert got.is_complex() and got.shape == known.shape
        assert torch.allclose(got, alone, rtol=1e-4, atol=1e-6)
