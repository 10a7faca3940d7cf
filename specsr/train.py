"""Training: the U-Net (L1 on log-power) or SRGAN (plus a patch discriminator), one process or DDP.

On an audio dataset the pairs are made on the fly on the training device (:mod:`specsr.dataset.onthefly`,
seeded per step and rank); a dataset of fixed pairs is read as stored.

Run with ``specsr train DATASET -o RUN`` or, on several GPUs, PyTorch's own launcher::

    torchrun --nproc_per_node 4 -m specsr train DATASET -o RUN --config configs/bundled.toml

(``specsr train --nproc 4 …`` runs that for you.) Rank 0 alone checks and writes the run folder, the
other ranks wait for it; every rank then trains on its share of each batch and rank 0 saves.

A run folder holds ``config.toml`` (the resolved config), ``metrics.jsonl`` (train and validation
rows), ``last.pt`` (everything needed to resume: weights, optimizer, scheduler, step, RNG states)
and ``best.pt`` (best validation LSD). Checkpoints are written atomically, so a run killed at any
moment resumes with ``--resume`` from the last save. Validation scores LSD / LSD-HF with the
metric module on reconstructed waveforms, not just the loss.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler

from specsr.checkpoint import make_checkpoint, read_checkpoint, save_checkpoint, unwrap
from specsr.config import ModelConfig, RunConfig, TaskConfig, to_toml
from specsr.dataset import SpectrogramPairs, load_dataset_info
from specsr.dataset.onthefly import PairMaker, validation_pairs
from specsr.dataset.segments import AudioSegments
from specsr.errors import SpecsrError
from specsr.losses import (
    band_level_l1,
    band_mask,
    feature_matching_loss,
    fixed_pattern_l1,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    masked_l1,
    phase_antiwrap_l1,
    rebuild_l1,
    texture_l1,
)
from specsr.metrics import Scores, mean_scores, score_signals, to_metric_signal
from specsr.models import PatchDiscriminator, UNet, build_inputs, build_model, count_parameters
from specsr.spectral import LOG_POWER_FLOOR, cutoff_bins, log_power, normalize
from specsr.utils import atomic_write_text, cpu_has_fast_bf16, git_commit, resolve_device

RUN_FILE = "run.json"
FLOOR_LOGP = math.log10(LOG_POWER_FLOOR)


@dataclass
class TrainSummary:
    run_dir: Path
    step: int
    best_val_lsd: float | None
    n_params: int
    steps_per_s: float


# ---------------------------------------------------------------------------------------------
# Distributed helpers


def _dist_env() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from torchrun's environment (1 process: 0, 0, 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), world


def _is_main() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


# ---------------------------------------------------------------------------------------------
# Batches


class ResumableSampler(DistributedSampler):
    """DistributedSampler that can start in the middle of an epoch (for ``--resume``), and optionally
    draws items with replacement by weight (to balance kinds of audio) instead of a permutation."""

    def __init__(self, *args: Any, weights: torch.Tensor | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start = 0
        self.weights = weights

    def __iter__(self) -> Iterator[int]:
        if self.weights is None:
            indices = list(super().__iter__())
        else:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            drawn = torch.multinomial(self.weights, self.total_size, replacement=True, generator=g).tolist()
            indices = drawn[self.rank:self.total_size:self.num_replicas]
        return iter(indices[self.start:])


def balance_weights(items: list[dict[str, Any]], balance: float) -> torch.Tensor:
    """Sampling weight per item by its top-level source folder (``speech``, ``music`` …): a folder with
    n items is drawn in proportion to n^(1 - balance). 0 keeps the natural mix, 1 draws every folder
    equally often, 0.5 in between (scarce speech drawn more, without repeating it endlessly). ``[N]``."""
    tops = [str(it["source"]).replace("\\", "/").split("/")[0] for it in items]
    counts = Counter(tops)
    return torch.tensor([counts[t] ** -balance for t in tops], dtype=torch.double)


def ema_decay_at(decay: float, step: int) -> float:
    """The moving average's decay after ``step`` updates: ``decay``, lower early on (``(1 + step) / (10 +
    step)``) so that a short run's average is not mostly its first weights."""
    return min(decay, (1 + step) / (10 + step))


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """``ema ← decay · ema + (1 − decay) · model`` for every floating-point parameter and buffer
    (BatchNorm's running statistics too); other buffers (counters) are copied."""
    for (name, avg), (other, new) in zip(ema.state_dict().items(), unwrap(model).state_dict().items(), strict=True):
        if name != other:
            raise SpecsrError(f"moving average and model differ: {name} against {other}")
        if avg.is_floating_point():
            avg.lerp_(new.to(avg.dtype), 1.0 - decay)
        else:
            avg.copy_(new)


def _augment_gain(batch: dict[str, torch.Tensor], gain_db_range: tuple[float, ...]) -> None:
    """Random gain per item: a shift of log10-power by gain_db / 10, clamped at the floor."""
    lo, hi = gain_db_range
    if hi <= lo:
        return
    b = batch["input"].shape[0]
    shift = (torch.rand(b) * (hi - lo) + lo) / 10.0
    for key in ("input", "target"):
        batch[key] = (batch[key] + shift[:, None, None]).clamp_min(FLOOR_LOGP)


# ---------------------------------------------------------------------------------------------
# The loop


class Trainer:
    """One training run (rank-aware). Build it, then call :meth:`run`."""

    def __init__(self, dataset_dir: str | Path, run_dir: str | Path, cfg: RunConfig, *, device: str = "auto",
                 resume: bool = False, force: bool = False, quiet: bool = False) -> None:
        self.rank, self.local_rank, self.world = _dist_env()
        if self.world > 1 and not dist.is_initialized():
            on_gpu = torch.cuda.is_available() and (device == "auto" or device.startswith("cuda"))
            backend = "nccl" if on_gpu else "gloo"
            dist.init_process_group(backend=backend)
        self.device = resolve_device(device)
        if self.device.type == "cuda" and self.world > 1:
            self.device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(self.device)
        self.quiet = quiet or not _is_main()
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.info = load_dataset_info(dataset_dir)
        self._check_dataset()
        self._written: list[Path] = []  # what this call wrote into a run folder that held no run before
        self._made_dir = False
        self._prepare_run_dir(resume, force)
        try:
            self._setup(resume)
        except BaseException:
            self.discard_unsaved_run()
            raise

    def _setup(self, resume: bool) -> None:
        cfg, tc = self.cfg, self.cfg.train
        torch.manual_seed(tc.seed + self.rank)  # model init; the data draws have generators of their own
        self.model: UNet = build_model(cfg.model, cfg.stft).to(self.device)
        self.n_params = count_parameters(self.model)
        self.disc: PatchDiscriminator | None = None
        if cfg.model.arch == "srgan":
            self.disc = PatchDiscriminator(cfg.model).to(self.device)
        if tc.warm_start and not (resume and (self.run_dir / "last.pt").exists()):
            self._warm_start(tc.warm_start)
        # the weights that are validated, saved and exported: a moving average of the trained ones, or them
        self.ema: UNet | None = None
        if tc.ema_decay > 0:
            self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=tc.peak_lr, weight_decay=tc.weight_decay,
                                     betas=(0.8, 0.99) if self.disc is not None else (0.9, 0.999))
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, self._lr_lambda)
        self.opt_d = (torch.optim.AdamW(self.disc.parameters(), lr=tc.disc_lr, betas=(0.8, 0.99))
                      if self.disc is not None else None)
        self.amp_dtype = self._amp_dtype()
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.step = 0
        self.best_lsd: float | None = None
        self._data_rng_state: torch.Tensor | None = None
        if resume and (self.run_dir / "last.pt").exists():
            self._load_state(self.run_dir / "last.pt")

        self.ddp_model: torch.nn.Module = self.model
        self.ddp_disc: torch.nn.Module | None = self.disc
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_model = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
            if self.disc is not None:
                self.ddp_disc = torch.nn.parallel.DistributedDataParallel(self.disc, device_ids=ids)

        self.pairs: PairMaker | None = None
        self.train_set: SpectrogramPairs | AudioSegments
        if self.info.kind == "audio":  # pairs on the fly, on the training device
            self.train_set = AudioSegments(self.info.root, "train")
            self.pairs = PairMaker(cfg.stft, cfg.task, cfg.degrade, crop_frames=tc.crop_frames,
                                   gain_db_range=tc.gain_db_range, seed=tc.seed, rank=self.rank, device=self.device,
                                   with_phase=cfg.model.predict_phase)
        else:
            if cfg.model.predict_phase:
                raise SpecsrError(f"{self.info.root}: a model with [model] predict_phase needs the input's and the "
                                  "truth's phase, which a spectrogram dataset does not hold; convert the audio "
                                  "without --spectrograms (pairs made on the fly)")
            self.train_set = SpectrogramPairs(self.info.root, "train", crop_frames=tc.crop_frames,
                                              seed=tc.seed + 1000 * self.rank)
            if self._data_rng_state is not None:
                self.train_set.generator.set_state(self._data_rng_state)
        if len(self.train_set) < tc.batch_size * self.world:
            raise SpecsrError(f"the training split has {len(self.train_set)} items, fewer than one batch "
                              f"({tc.batch_size} × {self.world} processes); use a smaller --batch-size")
        weights = balance_weights(self.train_set.items, tc.source_balance) if tc.source_balance > 0 else None
        self.sampler = ResumableSampler(self.train_set, num_replicas=self.world, rank=self.rank, shuffle=True,
                                        seed=tc.seed, drop_last=True, weights=weights)
        self.loader = DataLoader(self.train_set, batch_size=tc.batch_size, sampler=self.sampler,
                                 num_workers=tc.num_workers, drop_last=True,
                                 pin_memory=self.device.type == "cuda",
                                 # its own generator: a new iterator must not draw from the global RNG,
                                 # or a resumed run would crop differently from an uninterrupted one
                                 generator=torch.Generator().manual_seed(tc.seed + self.rank))
        self.val_set: SpectrogramPairs | list[dict] | None = None
        if any(it["split"] == "val" for it in self.info.items):
            if self.info.kind == "audio":  # fixed for the run: drawn from the seed alone, on every rank alike
                maker = PairMaker(cfg.stft, cfg.task, cfg.degrade, crop_frames=tc.crop_frames,
                                  gain_db_range=tc.gain_db_range, seed=tc.seed)
                self.val_set = validation_pairs(AudioSegments(self.info.root, "val"), maker, tc.max_val_items)
            else:
                self.val_set = SpectrogramPairs(self.info.root, "val", with_waveforms=True, seed=tc.seed)

    # -- setup ---------------------------------------------------------------------------------

    def _check_dataset(self) -> None:
        built = self.info.stft
        if built is not None and built != self.cfg.stft:
            raise SpecsrError(f"{self.info.root}: the dataset was built with STFT {built.to_dict()}, "
                              f"the config asks for {self.cfg.stft.to_dict()}; rebuild it with specsr convert "
                              "or change [stft] in the config")
        if self.info.sr_out != self.cfg.stft.sample_rate:
            raise SpecsrError(f"{self.info.root}: dataset sr_out {self.info.sr_out} Hz differs from the config's "
                              f"[stft] sample_rate {self.cfg.stft.sample_rate} Hz")

    def _prepare_run_dir(self, resume: bool, force: bool) -> None:
        """Rank 0 checks and writes the run folder; the other ranks wait for it and share its verdict."""
        error = ""
        if _is_main():
            try:
                self._check_and_write_run_dir(resume, force)
            except SpecsrError as exc:
                error = str(exc)
        if dist.is_initialized():
            verdict = [error]
            dist.broadcast_object_list(verdict, src=0)  # also the barrier: nobody reads the folder before this
            error = str(verdict[0])
        if error:
            raise SpecsrError(error)

    def _check_and_write_run_dir(self, resume: bool, force: bool) -> None:
        run_file = self.run_dir / RUN_FILE
        if run_file.exists():
            try:
                previous = json.loads(run_file.read_text(encoding="utf-8"))
                previous_cfg = previous["config"]
                if not isinstance(previous_cfg, dict):
                    raise TypeError("config is not a table")
            except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
                raise SpecsrError(f"{run_file}: cannot read the run's record ({exc}); repair or delete it, or "
                                  "use another run folder") from None
            if resume:
                self._check_same_setup(previous_cfg, run_file)
            elif not force:
                raise SpecsrError(f"{self.run_dir}: holds a training run already; use --resume to continue it "
                                  "or --force to start over")
        elif self.run_dir.exists() and any(self.run_dir.iterdir()) and not force:
            raise SpecsrError(f"{self.run_dir}: folder is not empty and holds no specsr run; use --force")
        fresh = not run_file.exists()
        self._made_dir = not self.run_dir.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if force and not resume:
            for name in ("last.pt", "best.pt", "metrics.jsonl"):
                (self.run_dir / name).unlink(missing_ok=True)
        atomic_write_text(run_file, json.dumps({
            "format": "specsr-run", "config": self.cfg.to_dict(), "dataset": str(self.info.root),
            "dataset_manifest_sha256": self.info.manifest_sha256, "git_commit": git_commit()}, indent=2))
        atomic_write_text(self.run_dir / "config.toml", to_toml(self.cfg.to_dict()))
        if fresh:
            self._written = [run_file, self.run_dir / "config.toml", self.run_dir / "metrics.jsonl"]

    def discard_unsaved_run(self) -> None:
        """After a failure: a run folder this call started that holds no checkpoint yet goes again (its
        record, config and log; the folder itself if this call made it), so a failed start leaves no
        half-made run behind. A run with a ``last.pt`` or ``best.pt`` stays, to be resumed."""
        if not _is_main() or not self._written:
            return
        if any((self.run_dir / name).exists() for name in ("last.pt", "best.pt")):
            return
        for path in self._written:
            path.unlink(missing_ok=True)
        if self._made_dir and not any(self.run_dir.iterdir()):
            self.run_dir.rmdir()

    def _check_same_setup(self, saved: dict[str, Any], where: Path) -> None:
        """``--resume`` continues the same problem: the saved [stft], [task] and [model] must be the config's."""
        sample_rate = int(saved.get("stft", {}).get("sample_rate", self.cfg.stft.sample_rate))
        try:
            task = TaskConfig.from_saved(saved.get("task", {}), sample_rate).to_dict()
        except SpecsrError:
            task = saved.get("task", {})
        model = saved.get("model", {})
        try:  # a run saved before a [model] key existed has that key's default
            model = ModelConfig.from_dict(model).to_dict() if model else model
        except SpecsrError:
            pass
        for table, old, new in (("stft", saved.get("stft", {}), self.cfg.stft.to_dict()), ("task", task,
                                self.cfg.task.to_dict()), ("model", model, self.cfg.model.to_dict())):
            if old and old != new:
                changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                raise SpecsrError(f"{where}: the run was made with another [{table}] ({', '.join(changed)} differ); "
                                  "--resume needs the same [stft], [task] and [model] (only [train] may change)")

    def _warm_start(self, path: str) -> None:
        ckpt = read_checkpoint(path)
        if ckpt["model"].get("channels") != list(self.cfg.model.channels):
            raise SpecsrError(f"{path}: warm start needs a generator with channels {list(self.cfg.model.channels)}")
        state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
        ours = self.cfg.model.to_dict()
        without_phase = {**ours, "predict_phase": False}
        if self.cfg.model.predict_phase and {**without_phase, **ckpt["model"]} == without_phase:
            state = _grow_for_phase(state, self.model.state_dict())  # the same model without the phase
        try:
            self.model.load_state_dict(state, strict=True)
        except RuntimeError as exc:  # the same widths, another architecture (patch_bins, a phase model, ...)
            theirs = {k: v for k, v in ckpt["model"].items() if ours.get(k) != v}
            raise SpecsrError(f"{path}: its weights do not fit this [model] (it differs in: "
                              f"{', '.join(sorted(theirs)) or 'the layer shapes'}); warm-start from a checkpoint of "
                              "the same architecture") from exc

    def _lr_lambda(self, step: int) -> float:
        tc = self.cfg.train
        warmup = min(200, max(1, tc.steps // 20))
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, tc.steps - warmup))
        return tc.lr_min_ratio + (1 - tc.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    def _amp_dtype(self) -> torch.dtype | None:
        if not self.cfg.train.amp:
            return None
        if self.device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if self.device.type == "cpu" and not cpu_has_fast_bf16():
            if _is_main() and not self.quiet:  # measured: a patch-4 U-Net step 18.3 s in bf16, 1.8 s in fp32
                print("specsr: note: AMP off: this CPU has no native bf16 kernels, where bf16 autocast is about "
                      "10× slower than fp32; training in fp32", file=sys.stderr)
            return None
        return torch.bfloat16

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    # -- state -----------------------------------------------------------------------------------

    def _provenance(self) -> dict[str, Any]:
        return {"dataset_manifest_sha256": self.info.manifest_sha256, "step": self.step, "git_commit": git_commit(),
                "train_config": self.cfg.train.to_dict(), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "world_size": self.world, "device": self.device.type, "best_val_lsd": self.best_lsd,
                "dataset_kind": self.info.kind,
                "degrade_config": self.cfg.degrade.to_dict() if self.info.kind == "audio" else None}

    def _checkpoint(self, kind: str) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if kind == "training":
            extra = {
                "step": self.step, "best_val_lsd": self.best_lsd,
                "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                "scaler": self.scaler.state_dict(),
                "rng": {"torch": torch.get_rng_state(), **({"data": self.train_set.generator.get_state()}
                                                            if isinstance(self.train_set, SpectrogramPairs) else {})},
            }
            if self.disc is not None and self.opt_d is not None:
                extra["discriminator"] = {k: v.detach().cpu() for k, v in self.disc.state_dict().items()}
                extra["disc_optimizer"] = self.opt_d.state_dict()
            if self.ema is not None:  # state_dict holds the average; resuming needs the trained weights too
                extra["train_state_dict"] = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        name = f"specsr-{self.cfg.model.arch}-{self.cfg.stft.sample_rate // 1000}k"
        return make_checkpoint(self.ema if self.ema is not None else self.model, self.cfg.model, self.cfg.stft,
                               self.cfg.task, name=name, provenance=self._provenance(), kind=kind, extra=extra)

    def _load_state(self, path: Path) -> None:
        ckpt = read_checkpoint(path, map_location=self.device)
        if ckpt.get("kind") != "training":
            raise SpecsrError(f"{path}: an inference checkpoint cannot be resumed (it holds no optimizer state)")
        self._check_same_setup({k: ckpt[k] for k in ("stft", "task", "model")}, path)
        # a run saved with a moving average keeps the trained weights beside it (ema_decay may change on resume)
        self.model.load_state_dict(ckpt.get("train_state_dict", ckpt["state_dict"]), strict=True)
        if self.ema is not None:
            self.ema.load_state_dict(ckpt["state_dict"], strict=True)
        self.opt.load_state_dict(ckpt["optimizer"])
        self.sched.load_state_dict(ckpt["scheduler"])
        if "scaler" in ckpt:
            self.scaler.load_state_dict(ckpt["scaler"])
        if self.disc is not None and "discriminator" in ckpt and self.opt_d is not None:
            self.disc.load_state_dict(ckpt["discriminator"], strict=True)
            self.opt_d.load_state_dict(ckpt["disc_optimizer"])
        self.step = int(ckpt["step"])
        self.best_lsd = ckpt.get("best_val_lsd")
        rng = ckpt.get("rng", {})
        if "torch" in rng:
            torch.set_rng_state(rng["torch"].cpu())
        if "data" in rng:
            self._data_rng_state = rng["data"].cpu()

    def _save(self, name: str, kind: str) -> None:
        if _is_main():
            save_checkpoint(self._checkpoint(kind), self.run_dir / name)

    def _log(self, row: dict[str, Any]) -> None:
        if not _is_main():
            return
        with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")

    # -- steps -----------------------------------------------------------------------------------

    def _forward(self, batch: dict[str, torch.Tensor]
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """→ (prediction [B, F, T], target [B, F, T], loss mask [B, F]) in normalised log-power, and the
        predicted phase's cosine and sine [B, 2, F, T] (None without ``predict_phase``)."""
        x = batch["input"].to(self.device, non_blocking=True)
        y = batch["target"].to(self.device, non_blocking=True)
        cut = cutoff_bins(batch["cutoff_hz"].flatten(), self.cfg.stft).to(self.device)
        inputs = build_inputs(x, cut, self.cfg.model, batch.get("input_spec"))
        with self._autocast():
            out = self.ddp_model(inputs).float()
        mask = band_mask(batch["cutoff_hz"], batch["source_nyquist_hz"], self.cfg.stft).to(self.device)
        return out[:, 0], normalize(y), mask, out[:, 1:3] if self.cfg.model.predict_phase else None

    def _train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        tc = self.cfg.train
        if self.pairs is not None:
            batch = self.pairs.make(batch, self.step)  # the gain is one of the draws
        else:
            _augment_gain(batch, tc.gain_db_range)
        self.model.train()
        pred, target, mask, pred_cs = self._forward(batch)
        l1 = masked_l1(pred, target, mask)
        content = tc.l1_weight * l1
        logs = {"loss": float(l1.detach())}
        if tc.level_weight > 0:
            level = band_level_l1(pred, target, mask, norm=tc.level_norm)
            content = content + tc.level_weight * level
            logs["level"] = float(level.detach())
        if tc.band_level_weight > 0:
            band_level = band_level_l1(pred, target, mask, group_bins=pred.shape[1], norm=tc.level_norm)
            content = content + tc.band_level_weight * band_level
            logs["band_level"] = float(band_level.detach())
        if tc.texture_weight > 0:
            texture = texture_l1(pred, target, mask, fixed_patterns=tc.texture_fixed_patterns)
            content = content + tc.texture_weight * texture
            logs["texture"] = float(texture.detach())
        if tc.pattern_weight > 0:
            pattern = fixed_pattern_l1(pred, target, mask, tc.pattern_smooth_bins)
            content = content + tc.pattern_weight * pattern
            logs["pattern"] = float(pattern.detach())
        if pred_cs is not None and tc.phase_weight > 0:
            phase = phase_antiwrap_l1(pred_cs, batch["target_spec"], mask)
            content = content + tc.phase_weight * phase
            logs["phase"] = float(phase.detach())
        if pred_cs is not None and tc.rebuild_weight > 0:
            cut = cutoff_bins(batch["cutoff_hz"].flatten(), self.cfg.stft).to(self.device)
            rebuild = rebuild_l1(pred, pred_cs, batch["input_spec"], target, cut, mask, self.cfg.stft)
            content = content + tc.rebuild_weight * rebuild
            logs["rebuild"] = float(rebuild.detach())
        loss = content
        if self.ddp_disc is not None and self.opt_d is not None:
            low = normalize(batch["input"].to(self.device))
            cut = cutoff_bins(batch["cutoff_hz"].flatten(), self.cfg.stft).to(self.device)
            m = (torch.arange(mask.shape[1], device=self.device)[None] < cut[:, None]).float()[:, :, None]
            real_img = m * low + (1 - m) * target
            # bins the model does not own (above a 44.1 kHz source's Nyquist) are the truth's in both images
            fake_img = torch.where(mask[:, :, None] > 0, pred, real_img) if tc.disc_band_only \
                else m * low + (1 - m) * pred
            real = torch.stack([real_img, m.expand_as(low)], dim=1)
            fake = torch.stack([fake_img, m.expand_as(low)], dim=1)
            band = mask if tc.disc_band_only else None
            with self._autocast():
                d_loss = lsgan_discriminator_loss(self.ddp_disc(real), self.ddp_disc(fake.detach()), band)
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.float().backward()
            self.opt_d.step()
            with self._autocast():
                d_fake, d_real = self.ddp_disc(fake), self.ddp_disc(real)
                adv = lsgan_generator_loss(d_fake, band)
                fm = feature_matching_loss(d_real, d_fake, band)
            loss = content + tc.adv_weight * adv.float() + tc.fm_weight * fm.float()
            logs.update({"d_loss": float(d_loss.detach()), "adv": float(adv.detach()), "fm": float(fm.detach())})
        if not torch.isfinite(loss):
            raise FloatingPointError
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.opt)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.grad_clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.sched.step()
        if self.ema is not None:
            ema_update(self.ema, self.model, ema_decay_at(tc.ema_decay, self.step + 1))
        return logs

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Validation loss, LSD / LSD-HF of waveforms reconstructed by the inference pipeline itself (same
        merge, crossfade and FGLA as ``specsr upsample``), at each item's known cutoff, of the weights the
        checkpoints hold (the moving average when ``ema_decay > 0``). One network pass
        per item: the loss is that of the magnitude the pipeline predicted."""
        from specsr.checkpoint import LoadedModel
        from specsr.pipeline import Upsampler

        if self.val_set is None:
            raise SpecsrError("the dataset has no validation split")
        self.model.eval()
        cfg = self.cfg
        weights = self.ema if self.ema is not None else self.model  # what the checkpoints hold
        upsampler = Upsampler(LoadedModel(weights, cfg.model, cfg.stft, cfg.task, name="validation"),
                              device=str(self.device), precision="bf16" if self.amp_dtype else "fp32")
        n = min(len(self.val_set), cfg.train.max_val_items)
        phase = "learned" if cfg.model.predict_phase else None  # the phase the model is trained for
        losses, scores = [], []
        for i in np.linspace(0, len(self.val_set) - 1, n).astype(int):
            item = self.val_set[int(i)]
            wav, sr, mag = upsampler.upsample_with_magnitude(item["wav_input"].numpy()[None], cfg.stft.sample_rate,
                                                             cutoff_hz=float(item["cutoff_hz"]), phase=phase,
                                                             n_iter=cfg.train.phase_iters)
            if mag is not None:
                mask = band_mask(item["cutoff_hz"][None], item["source_nyquist_hz"][None], cfg.stft)
                target = normalize(item["target"][None]).to(mag.device)
                losses.append(float(masked_l1(normalize(log_power(mag)), target, mask.to(mag.device))))
            scores.append(_score_item(item["wav_target"].numpy(), wav[0], sr, int(item["sr_in"]),
                                      2 * float(item["source_nyquist_hz"])))
        m = mean_scores(scores)
        return {"val_loss": float(np.mean(losses)) if losses else float("nan"), "val_lsd": m.lsd,
                "val_lsd_hf": m.lsd_hf, "val_lsd_lf": m.lsd_lf, "val_band_bias_db": m.band_bias_db,
                "val_envelope_r": m.envelope_r, "val_texture": m.texture}

    def run(self) -> TrainSummary:
        tc = self.cfg.train
        from tqdm import tqdm

        steps_per_epoch = len(self.sampler) // tc.batch_size
        bar = tqdm(total=tc.steps, initial=self.step, disable=self.quiet, unit="step", dynamic_ncols=True)
        t0, s0 = time.time(), self.step
        last_saved = self.step
        try:
            while self.step < tc.steps:
                epoch, offset = divmod(self.step, steps_per_epoch)
                self.sampler.set_epoch(epoch)
                self.sampler.start = offset * tc.batch_size
                for batch in self.loader:
                    try:
                        logs = self._train_step(batch)
                    except FloatingPointError:
                        kept = (f"last.pt holds the last good state (step {last_saved})"
                                if (self.run_dir / "last.pt").exists() else "nothing had been saved yet")
                        raise SpecsrError(f"the loss became NaN/inf at step {self.step + 1}; training stopped; "
                                          f"{kept}; try a lower --lr or --no-amp") from None
                    except torch.cuda.OutOfMemoryError:
                        raise SpecsrError(f"out of GPU memory at batch size {tc.batch_size} × crop "
                                          f"{tc.crop_frames} frames; try a smaller --batch-size or "
                                          "train.crop_frames") from None
                    self.step += 1
                    bar.update(1)
                    rate = (self.step - s0) / max(time.time() - t0, 1e-9)
                    if self.step % tc.log_every == 0 or self.step == tc.steps:
                        bar.set_postfix(loss=f"{logs['loss']:.4f}", steps_s=f"{rate:.2f}")
                        self._log({"step": self.step, "lr": self.sched.get_last_lr()[0], "steps_per_s": rate,
                                   "time": time.time(), **logs})
                    val_now = self.step % tc.val_every == 0 or self.step == tc.steps
                    if val_now and self.val_set is not None:
                        if _is_main():
                            v = self.validate()
                            self._log({"step": self.step, **v})
                            bar.write(f"step {self.step}: val loss {v['val_loss']:.4f}  LSD {v['val_lsd']:.3f}  "
                                      f"LSD-HF {v['val_lsd_hf']:.3f}  bias {v['val_band_bias_db']:+.1f} dB  "
                                      f"r {v['val_envelope_r']:.2f}  texture {v['val_texture']:.2f}")
                            if self.best_lsd is None or v["val_lsd"] < self.best_lsd:
                                self.best_lsd = v["val_lsd"]
                                self._save("best.pt", "training")
                        if dist.is_initialized():
                            dist.barrier()
                    if self.step % tc.save_every == 0 or self.step == tc.steps:
                        self._save("last.pt", "training")
                        last_saved = self.step
                    if self.step >= tc.steps:
                        break
        finally:
            bar.close()
        if self.val_set is None and _is_main():
            self._save("best.pt", "training")  # no validation split: the final weights are the best we know
        if self.world > 1:
            # BatchNorm running statistics are updated locally after DDP's broadcast at each forward:
            # make every rank hold rank 0's (the saved) buffers.
            for module in (self.model, self.ema):
                for buf in module.buffers() if module is not None else ():
                    dist.broadcast(buf, 0)
            digest = weights_digest(self.model)
            atomic_write_text(self.run_dir / f"rank{self.rank}.sha256", digest + "\n")
            dist.barrier()
        return TrainSummary(self.run_dir, self.step, self.best_lsd, self.n_params,
                            (self.step - s0) / max(time.time() - t0, 1e-9))

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


def _grow_for_phase(state: dict[str, torch.Tensor], fresh: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A magnitude-only model's weights in the shapes of the same model with ``predict_phase``: the phase input
    channels (the last of the first convolution's) start at zero weight, so the warm-started model predicts the
    magnitude it did; the phase outputs (the last of the output convolution's) keep their fresh initialisation."""
    grown = {}
    for key, value in state.items():
        target = fresh.get(key)
        if target is None or target.shape == value.shape:
            grown[key] = value
            continue
        if target.ndim != value.ndim or any(v > t for v, t in zip(value.shape, target.shape, strict=True)):
            raise SpecsrError(f"warm start: {key} has shape {tuple(value.shape)}, the model {tuple(target.shape)}")
        out = target.clone() if key.startswith("out.") else torch.zeros_like(target)
        out[tuple(slice(0, n) for n in value.shape)] = value
        grown[key] = out
    return grown


def _score_item(ref: np.ndarray, est: np.ndarray, sample_rate: int, sr_in: int, source_sr: float) -> Scores:
    """Metrics of a validation output, scored below 0.95 × its source's content limit (``source_sr`` / 2: a
    44.1 kHz source's Nyquist, or a lower limit the dataset records), where the loss stops too."""
    r = to_metric_signal(ref[None], sample_rate)
    e = to_metric_signal(est[None], sample_rate)
    return score_signals(r, e, sr_in, source_sr)[0]


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 of all parameters and buffers (to check that DDP ranks agree)."""
    h = hashlib.sha256()
    for k, v in sorted(unwrap(model).state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def train(dataset_dir: str | Path, run_dir: str | Path, cfg: RunConfig, *, device: str = "auto",
          resume: bool = False, force: bool = False, quiet: bool = False) -> TrainSummary:
    """Train (or resume) a model on a dataset made by ``specsr convert``."""
    trainer = Trainer(dataset_dir, run_dir, cfg, device=device, resume=resume, force=force, quiet=quiet)
    try:
        return trainer.run()
    except BaseException:
        trainer.discard_unsaved_run()
        raise
    finally:
        trainer.close()
