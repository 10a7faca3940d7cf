"""Training: smoke run from the shipped config, overfitting, resume after a kill, DDP on gloo, SRGAN,
and the bad-input cases."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import assert_one_line_error
from typer.testing import CliRunner

from specsr.checkpoint import export, load_checkpoint, read_checkpoint
from specsr.config import RunConfig, load_toml, to_toml
from specsr.dataset import build_dataset
from specsr.errors import SpecsrError
from specsr.train import Trainer, ema_decay_at, ema_update, train, weights_digest

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def tiny_config(**train_overrides) -> RunConfig:
    """The shipped default config, scaled down: same keys, tiny model and STFT."""
    data = load_toml(str(ROOT / "configs" / "default.toml"))
    data["stft"].update({"n_fft": 1024, "hop_length": 256})
    data["model"].update({"channels": [4, 8], "freq_mix_layers": 1, "disc_channels": [4, 8]})
    data["train"].update({"steps": 2, "batch_size": 2, "crop_frames": 16, "val_every": 1000, "save_every": 1,
                          "log_every": 1, "max_val_items": 2, "phase_iters": 2, **train_overrides})
    return RunConfig.from_dict(data)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    t = np.arange(48000) / 48000
    for g in range(3):
        for i in range(2):
            p = root / "src" / f"group{g}" / f"{i}.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            tone = 0.2 * np.sin(2 * np.pi * (200 + 100 * g + 30 * i) * t * (1 + 0.1 * t))
            sig = tone + 0.05 * rng.standard_normal(len(t))
            sf.write(p, sig.astype(np.float32), 48000, subtype="FLOAT")
    build_dataset([root / "src"], root / "ds", variants=2, segment_seconds=0.5, val_fraction=0.34, workers=1,
                  stft_preset="48k-1024", progress=False, spectrograms=True)
    return root / "ds"


def test_two_step_smoke_from_shipped_config(dataset, tmp_path):
    cfg = tiny_config(val_every=2)
    summary = train(dataset, tmp_path / "run", cfg, device="cpu", quiet=True)
    assert summary.step == 2 and summary.best_val_lsd is not None and np.isfinite(summary.best_val_lsd)
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2]
    assert any("val_lsd" in r for r in rows)
    assert (tmp_path / "run" / "config.toml").exists()
    assert RunConfig.from_dict(load_toml(str(tmp_path / "run" / "config.toml"))) == cfg
    ckpt = read_checkpoint(tmp_path / "run" / "best.pt")
    assert ckpt["kind"] == "training" and ckpt["provenance"]["dataset_manifest_sha256"]
    out = export(tmp_path / "run" / "last.pt", tmp_path / "model.pt", half=True, name="tiny-v0")
    small = read_checkpoint(out)
    assert small["kind"] == "inference" and "optimizer" not in small and small["name"] == "tiny-v0"
    assert load_checkpoint(out).model_cfg == cfg.model


@pytest.mark.parametrize("native", [True, False])
def test_cpu_amp_only_with_native_bf16_kernels(dataset, tmp_path, monkeypatch, capsys, native):
    """Emulated bf16 (AVX2-only CPUs) makes a training step ~10× slower: AMP falls back to fp32, saying so."""
    import specsr.train

    monkeypatch.setattr(specsr.train, "cpu_has_fast_bf16", lambda: native)
    trainer = Trainer(dataset, tmp_path / "run", tiny_config(amp=True), device="cpu")
    assert trainer.amp_dtype == (torch.bfloat16 if native else None)
    assert ("AMP off" in capsys.readouterr().err) is not native
    trainer.close()


@pytest.mark.slow
def test_overfitting_one_batch(dataset, tmp_path):
    cfg = tiny_config(steps=150, lr=0.01, gain_db_range=[0.0, 0.0])
    trainer = Trainer(dataset, tmp_path / "run", cfg, device="cpu", quiet=True)
    torch.manual_seed(0)
    batch = next(iter(trainer.loader))
    losses = [trainer._train_step({k: v.clone() for k, v in batch.items()})["loss"] for _ in range(100)]
    assert losses[-1] < losses[0] / 4


def test_ema_update_by_hand():
    """ema ← d·ema + (1 − d)·model for parameters and BatchNorm statistics; the batch counter is copied."""
    model = torch.nn.Sequential(torch.nn.Linear(1, 1, bias=False), torch.nn.BatchNorm1d(1))
    ema = torch.nn.Sequential(torch.nn.Linear(1, 1, bias=False), torch.nn.BatchNorm1d(1))
    with torch.no_grad():
        model[0].weight.fill_(2.0)
        ema[0].weight.fill_(1.0)
        model[1].running_mean.fill_(4.0)
        model[1].num_batches_tracked.fill_(7)
    ema_update(ema, model, 0.75)
    assert ema[0].weight.item() == 1.25 and ema[1].running_mean.item() == 1.0  # 0.75·0 + 0.25·4
    assert ema[1].num_batches_tracked.item() == 7 and model[0].weight.item() == 2.0
    assert ema_decay_at(0.999, 0) == pytest.approx(0.1) and ema_decay_at(0.999, 90) == pytest.approx(0.91)
    assert ema_decay_at(0.999, 10**6) == 0.999


@pytest.mark.parametrize("ema_decay", [0.0, 0.9])
def test_resume_after_kill_continues_identically(dataset, tmp_path, monkeypatch, ema_decay):
    cfg = tiny_config(steps=4, save_every=2, ema_decay=ema_decay)
    train(dataset, tmp_path / "straight", cfg, device="cpu", quiet=True)

    original = Trainer._train_step

    def dying(self, batch):
        if self.step == 3:  # killed during step 4, after last.pt of step 2... and step 3 ran unsaved
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(Trainer, "_train_step", dying)
    with pytest.raises(KeyboardInterrupt):
        train(dataset, tmp_path / "killed", cfg, device="cpu", quiet=True)
    assert read_checkpoint(tmp_path / "killed" / "last.pt")["step"] == 2
    monkeypatch.setattr(Trainer, "_train_step", original)
    summary = train(dataset, tmp_path / "killed", cfg, device="cpu", quiet=True, resume=True)
    assert summary.step == 4
    a = read_checkpoint(tmp_path / "straight" / "last.pt")
    b = read_checkpoint(tmp_path / "killed" / "last.pt")
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    assert a["optimizer"]["state"][0]["step"] == b["optimizer"]["state"][0]["step"]
    # with a moving average the checkpoint's weights are it, the trained ones beside them (resumed alike)
    assert ("train_state_dict" in a) is (ema_decay > 0)
    if ema_decay > 0:
        trained = a["train_state_dict"]
        assert all(torch.equal(trained[k], b["train_state_dict"][k]) for k in trained)
        assert any(not torch.equal(trained[k], a["state_dict"][k]) for k in trained)
        small = read_checkpoint(export(tmp_path / "straight" / "last.pt", tmp_path / "m.pt"))
        assert "train_state_dict" not in small
        assert all(torch.equal(small["state_dict"][k], a["state_dict"][k]) for k in trained)


@pytest.fixture(scope="module")
def audio_dataset(dataset) -> Path:
    """The same sources as an audio dataset (the default of specsr convert): pairs made on the fly."""
    out = dataset.parent / "ds_audio"
    build_dataset([dataset.parent / "src"], out, segment_seconds=0.5, val_fraction=0.34, workers=1, progress=False)
    return out


def test_on_the_fly_pairs_resume_identically_and_validate(audio_dataset, tmp_path, monkeypatch):
    cfg = tiny_config(steps=4, save_every=2, val_every=2)
    straight = train(audio_dataset, tmp_path / "straight", cfg, device="cpu", quiet=True)
    assert straight.best_val_lsd is not None and np.isfinite(straight.best_val_lsd)
    original = Trainer._train_step

    def dying(self, batch):
        if self.step == 3:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(Trainer, "_train_step", dying)
    with pytest.raises(KeyboardInterrupt):
        train(audio_dataset, tmp_path / "killed", cfg, device="cpu", quiet=True)
    monkeypatch.setattr(Trainer, "_train_step", original)
    train(audio_dataset, tmp_path / "killed", cfg, device="cpu", quiet=True, resume=True)
    a = read_checkpoint(tmp_path / "straight" / "last.pt")
    b = read_checkpoint(tmp_path / "killed" / "last.pt")
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    assert a["provenance"]["dataset_kind"] == "audio" and a["provenance"]["degrade_config"]["rate_prob"] == 0.5
    rows = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "val_lsd" in r] == [2, 4]
    other_seed = tiny_config(steps=4, save_every=2, val_every=2, seed=1)
    train(audio_dataset, tmp_path / "seed1", other_seed, device="cpu", quiet=True)
    c = read_checkpoint(tmp_path / "seed1" / "last.pt")
    assert any(not torch.equal(a["state_dict"][k], c["state_dict"][k]) for k in a["state_dict"])


def test_run_folder_guards_and_bad_checkpoint(dataset, tmp_path):
    cfg = tiny_config()
    train(dataset, tmp_path / "run", cfg, device="cpu", quiet=True)
    with pytest.raises(SpecsrError, match="holds a training run"):
        train(dataset, tmp_path / "run", cfg, device="cpu", quiet=True)
    other = RunConfig.from_dict({**cfg.to_dict(), "model": {**cfg.model.to_dict(), "channels": [4, 8, 16]}})
    with pytest.raises(SpecsrError, match=r"another \[model\] \(channels differ\)"):
        train(dataset, tmp_path / "run", other, device="cpu", quiet=True, resume=True)
    changed = RunConfig.from_dict({**cfg.to_dict(), "task": {**cfg.task.to_dict(), "max_cutoff_hz": 9000.0}})
    with pytest.raises(SpecsrError, match=r"another \[task\] \(max_cutoff_hz differ\)"):
        train(dataset, tmp_path / "run", changed, device="cpu", quiet=True, resume=True)
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    del record["config"]["model"]["freq_mix_levels"]  # a run saved before that [model] key existed: its default
    (tmp_path / "run" / "run.json").write_text(json.dumps(record))
    train(dataset, tmp_path / "run", cfg, device="cpu", quiet=True, resume=True)
    record = json.loads((tmp_path / "run" / "run.json").read_text())  # a run made with another STFT
    record["config"]["stft"]["window"] = "hamming"
    (tmp_path / "run" / "run.json").write_text(json.dumps(record))
    with pytest.raises(SpecsrError, match=r"another \[stft\] \(window differ\)"):
        train(dataset, tmp_path / "run", cfg, device="cpu", quiet=True, resume=True)
    train(dataset, tmp_path / "run", other, device="cpu", quiet=True, force=True)
    last = tmp_path / "run" / "last.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    with pytest.raises(SpecsrError, match="cut short: truncated or corrupt"):
        train(dataset, tmp_path / "run", other, device="cpu", quiet=True, resume=True)


def test_nan_loss_stops_with_message_and_keeps_last_good(dataset, tmp_path, monkeypatch):
    cfg = tiny_config(steps=3)
    import specsr.train as tr

    calls = {"n": 0}
    real = tr.masked_l1

    def poisoned(pred, target, mask):
        calls["n"] += 1
        return real(pred, target, mask) * (float("nan") if calls["n"] == 2 else 1.0)

    monkeypatch.setattr(tr, "masked_l1", poisoned)
    with pytest.raises(SpecsrError, match="NaN"):
        train(dataset, tmp_path / "run", cfg, device="cpu", quiet=True)
    ckpt = read_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["step"] == 1
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


def test_a_failed_start_leaves_no_run_folder(dataset, tmp_path, monkeypatch):
    # a bad warm-start file fails after the run folder was written: the folder goes again
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"junk")
    with pytest.raises(SpecsrError, match="not a specsr checkpoint"):
        train(dataset, tmp_path / "run", tiny_config(warm_start=str(bad)), device="cpu", quiet=True)
    assert not (tmp_path / "run").exists()
    # an existing empty folder stays, emptied of what the run wrote
    (tmp_path / "mine").mkdir()
    with pytest.raises(SpecsrError):
        train(dataset, tmp_path / "mine", tiny_config(warm_start=str(bad)), device="cpu", quiet=True)
    assert (tmp_path / "mine").is_dir() and not any((tmp_path / "mine").iterdir())
    # NaN at the first step: nothing saved, nothing left, and the message does not promise a last.pt
    import specsr.train as tr

    monkeypatch.setattr(tr, "masked_l1", lambda pred, target, mask: (pred * float("nan")).mean())
    with pytest.raises(SpecsrError, match="nothing had been saved yet"):
        train(dataset, tmp_path / "nan", tiny_config(), device="cpu", quiet=True)
    assert not (tmp_path / "nan").exists()
    # a resumable run (it has a last.pt) is never removed by a later failure
    monkeypatch.undo()
    train(dataset, tmp_path / "ok", tiny_config(), device="cpu", quiet=True)
    with pytest.raises(SpecsrError):
        train(dataset, tmp_path / "ok", tiny_config(steps=4, warm_start=str(bad)), device="cpu", quiet=True,
              force=True)
    assert (tmp_path / "ok" / "run.json").exists()


def test_warm_start_takes_a_fine_tuning_learning_rate(dataset, tmp_path):
    from specsr.config import LR_FROM_SCRATCH, LR_WARM_START

    train(dataset, tmp_path / "base", tiny_config(), device="cpu", quiet=True)
    scratch = Trainer(dataset, tmp_path / "a", tiny_config(), device="cpu", quiet=True)
    assert scratch.opt.param_groups[0]["initial_lr"] == LR_FROM_SCRATCH
    warm = tiny_config(warm_start=str(tmp_path / "base" / "last.pt"))
    trainer = Trainer(dataset, tmp_path / "b", warm, device="cpu", quiet=True)
    assert trainer.opt.param_groups[0]["initial_lr"] == LR_WARM_START == LR_FROM_SCRATCH / 10
    chosen = Trainer(dataset, tmp_path / "c", tiny_config(warm_start=warm.train.warm_start, lr=5e-3),
                     device="cpu", quiet=True)
    assert chosen.opt.param_groups[0]["initial_lr"] == 5e-3  # an lr that is set is always taken
    saved = load_toml(str(tmp_path / "b" / "config.toml"))  # unset stays unset in the saved config
    assert "lr" not in saved["train"] and RunConfig.from_dict(saved).train.peak_lr == LR_WARM_START


def test_dataset_mismatch_errors(dataset, tmp_path):
    cfg = RunConfig.from_dict({**tiny_config().to_dict(), "stft": {"n_fft": 2048, "hop_length": 512}})
    with pytest.raises(SpecsrError, match="STFT"):
        train(dataset, tmp_path / "run", cfg, device="cpu", quiet=True)
    with pytest.raises(SpecsrError):
        train(tmp_path, tmp_path / "run2", tiny_config(), device="cpu", quiet=True)


def test_srgan_one_adversarial_step_with_warm_start(dataset, tmp_path):
    train(dataset, tmp_path / "unet", tiny_config(), device="cpu", quiet=True)
    cfg = RunConfig.from_dict({**tiny_config(steps=1, warm_start=str(tmp_path / "unet" / "last.pt")).to_dict(),
                               "model": {**tiny_config().model.to_dict(), "arch": "srgan"}})
    trainer = Trainer(dataset, tmp_path / "gan", cfg, device="cpu", quiet=True)
    before = {k: v.clone() for k, v in trainer.disc.state_dict().items()}
    logs = trainer._train_step(next(iter(trainer.loader)))
    assert {"loss", "d_loss", "adv", "fm"} <= set(logs)
    assert any(not torch.equal(before[k], v) for k, v in trainer.disc.state_dict().items())
    trainer.run()
    assert "discriminator" in read_checkpoint(tmp_path / "gan" / "last.pt")


def test_srgan_with_discriminator_scales_and_band_only_losses(dataset, tmp_path):
    model = {**tiny_config().model.to_dict(), "arch": "srgan", "disc_scales": ["1x1", "4x1", "1x4"]}
    cfg = RunConfig.from_dict({**tiny_config(steps=2, disc_band_only=True, l1_weight=0.5).to_dict(), "model": model})
    trainer = Trainer(dataset, tmp_path / "gan", cfg, device="cpu", quiet=True)
    assert len(trainer.disc.scales) == 3
    logs = trainer._train_step(next(iter(trainer.loader)))
    assert {"loss", "d_loss", "adv", "fm"} <= set(logs) and all(math.isfinite(v) for v in logs.values())


def test_cli_train_and_export(dataset, tmp_path, cli_app):
    cfg_path = tmp_path / "tiny.toml"
    cfg_path.write_text(to_toml(tiny_config().to_dict()))
    r = runner.invoke(cli_app, ["train", str(dataset), "-o", str(tmp_path / "run"), "--config", str(cfg_path),
                                "--device", "cpu", "--steps", "2", "-q"])
    assert r.exit_code == 0, r.output
    assert "trained to step 2" in r.output
    r = runner.invoke(cli_app, ["train", str(tmp_path), "-o", str(tmp_path / "run2"), "-q"])
    assert r.exit_code != 0 and "Traceback" not in r.output and "specsr: error:" in r.output
    r = runner.invoke(cli_app, ["export", str(tmp_path / "run" / "last.pt"), "-o", str(tmp_path / "m.pt"), "--half"])
    assert r.exit_code == 0 and (tmp_path / "m.pt").exists()


def test_unreadable_run_record_is_an_error(dataset, tmp_path):
    train(dataset, tmp_path / "run", tiny_config(), device="cpu", quiet=True)
    (tmp_path / "run" / "run.json").write_text("{ not json")
    for resume in (False, True):
        with pytest.raises(SpecsrError, match="cannot read the run's record"):
            train(dataset, tmp_path / "run", tiny_config(), device="cpu", quiet=True, resume=resume)


def test_validation_runs_the_network_once_per_item(dataset, tmp_path, monkeypatch):
    from specsr.models import UNet

    trainer = Trainer(dataset, tmp_path / "run", tiny_config(max_val_items=3), device="cpu", quiet=True)
    calls = []
    real = UNet.forward
    monkeypatch.setattr(UNet, "forward", lambda self, x: calls.append(x.shape[0]) or real(self, x))
    scores = trainer.validate()
    n_items = min(3, len(trainer.val_set))
    assert len(calls) == n_items and set(calls) == {1}
    assert np.isfinite(scores["val_loss"]) and np.isfinite(scores["val_lsd"])


def test_config_type_errors_are_one_line(dataset, tmp_path, cli_app):
    for bad, fragment in (('[train]\nlr = "fast"\n', "[train] lr: expected a number (or left out), got 'fast'"),
                          ("[model]\nchannels = 16\n", "[model] channels: expected a list of whole numbers"),
                          ("[task]\nsr_out = 48000\n", "[task] sr_out and sr_in_choices are gone")):
        cfg_path = tmp_path / "bad.toml"
        cfg_path.write_text(bad)
        result = runner.invoke(cli_app, ["train", str(dataset), "-o", str(tmp_path / "run"), "--config", str(cfg_path)])
        assert_one_line_error(result, fragment)


def _torchrun(tmp_path: Path, dataset: Path, *, late_rank: int = 1,
              delay_s: float = 3.0) -> subprocess.CompletedProcess:
    """``torchrun … -m specsr train`` on 2 gloo processes, with rank ``late_rank`` starting ``delay_s`` late."""
    cfg_path = tmp_path / "tiny.toml"
    cfg_path.write_text(to_toml(tiny_config(steps=3, batch_size=1).to_dict()))
    script = tmp_path / "late_rank.py"  # = python -m specsr, one rank delayed right after joining the group
    script.write_text("import os, runpy, sys, time\n"
                      "import torch.distributed as dist\n"
                      "init = dist.init_process_group\n"
                      "def late_init(*args, **kwargs):\n"
                      "    init(*args, **kwargs)\n"
                      f"    if os.environ['RANK'] == '{late_rank}':\n"
                      f"        time.sleep({delay_s})\n"
                      "dist.init_process_group = late_init\n"
                      "sys.argv = ['specsr', *sys.argv[1:]]\n"
                      "runpy.run_module('specsr', run_name='__main__', alter_sys=True)\n")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script), "train",
           str(dataset), "-o", str(tmp_path / "run"), "--config", str(cfg_path), "--device", "cpu", "-q"]
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)


@pytest.mark.slow
def test_ddp_two_processes_gloo_identical_weights_with_a_late_rank(audio_dataset, tmp_path):
    """Rank 1 is 3 s late after joining: it used to find rank 0's fresh run.json and refuse ("holds a training
    run") every time, and rank 0 then aborted on its gloo connection. On an audio dataset: each rank makes its
    own pairs on the fly (other items, other draws: tests/test_audio_dataset.py), the weights stay one."""
    proc = _torchrun(tmp_path, audio_dataset)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = (tmp_path / "run" / "rank0.sha256").read_text()
    r1 = (tmp_path / "run" / "rank1.sha256").read_text()
    assert r0 == r1
    assert r0.strip() == weights_digest(load_checkpoint(tmp_path / "run" / "last.pt").model)
