"""The training data path against the training step: is the data ever what a run waits for?

Measures, on this machine's CPU (or ``--device``), with ``--threads`` torch threads:

- **loader**: examples/s of reading segments from an audio dataset's shards (``AudioSegments`` through a
  ``DataLoader``, shuffled, batch ``--batch-size``) with 0, 1 and 2 worker processes;
- **pairs**: examples/s of making the pairs on the training device (:class:`~specsr.dataset.onthefly.PairMaker`:
  crop, a fresh degradation with its frequency-domain filter chain, noise, gain, both STFTs, log-power);
- **fixed pairs** (with ``--fixed DATASET``, a ``--spectrograms`` dataset): examples/s of reading stored pairs;
- **steps**: training steps/s (forward, backward, optimiser) of the default and bundled models on batches of
  the same shape, as ``specsr train`` runs them (the bundled config with its bf16 autocast).

It prints the data path's share of a step: (loader + pairs) time per batch / step time. Run::

    specsr convert ../shared/data/train -o data/train-audio --segment-seconds 1.5
    python benchmarks/data_path.py data/train-audio [--fixed data/train-spec] [--device cuda]
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, RandomSampler

from specsr.config import RunConfig, load_toml
from specsr.dataset.onthefly import PairMaker
from specsr.dataset.reader import SpectrogramPairs
from specsr.dataset.segments import AudioSegments
from specsr.losses import band_mask, masked_l1
from specsr.models import build_inputs, build_model
from specsr.spectral import cutoff_bins, normalize

ROOT = Path(__file__).resolve().parents[1]


def loader_rate(dataset: torch.utils.data.Dataset, batch_size: int, workers: int, n_batches: int) -> float:
    """Examples/s of iterating a shuffled DataLoader (after the workers have started)."""
    sampler = RandomSampler(dataset, replacement=True, num_samples=batch_size * (n_batches + 2),
                            generator=torch.Generator().manual_seed(0))
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                        persistent_workers=False)
    it = iter(loader)
    next(it)  # the workers' start-up is paid once per run, not per batch
    next(it)
    t0 = time.perf_counter()
    n = 0
    for batch in it:
        n += len(next(iter(batch.values())))
    return n / (time.perf_counter() - t0)


def pair_rate(dataset: AudioSegments, maker: PairMaker, batch_size: int, n_batches: int,
              device: torch.device) -> float:
    batches = [torch.utils.data.default_collate([dataset[(b * batch_size + i) % len(dataset)]
                                                 for i in range(batch_size)]) for b in range(n_batches + 1)]
    maker.make(batches[0], 0)
    _sync(device)
    t0 = time.perf_counter()
    for step, batch in enumerate(batches[1:], start=1):
        maker.make(batch, step)
    _sync(device)
    return n_batches * batch_size / (time.perf_counter() - t0)


def step_rate(config: Path, batch_size: int, crop_frames: int, n_steps: int, device: torch.device) -> float:
    """Training steps/s of a config's model on random batches of the training shape (no data loading)."""
    cfg = RunConfig.from_dict(load_toml(str(config)))
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.stft).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    f = cfg.stft.n_bins
    x = torch.randn(batch_size, f, crop_frames, device=device) - 6
    y = torch.randn(batch_size, f, crop_frames, device=device) - 6
    cutoff_hz = torch.full((batch_size,), 4000.0)
    nyq = torch.full((batch_size,), 24000.0)
    cut = cutoff_bins(cutoff_hz, cfg.stft).to(device)
    mask = band_mask(cutoff_hz, nyq, cfg.stft).to(device)
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if cfg.train.amp else contextlib.nullcontext()

    def step() -> None:
        with amp:
            pred = model(build_inputs(x, cut, cfg.model))[:, 0].float()
        loss = masked_l1(pred, normalize(y), mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(n_steps):
        step()
    _sync(device)
    return n_steps / (time.perf_counter() - t0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", type=Path, help="an audio dataset (specsr convert)")
    parser.add_argument("--fixed", type=Path, default=None, help="a --spectrograms dataset to compare with")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop-frames", type=int, default=128)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    b = args.batch_size
    segments = AudioSegments(args.dataset, "train")
    cfg = RunConfig.from_dict(load_toml(str(ROOT / "configs" / "default.toml")))
    maker = PairMaker(cfg.stft, cfg.task, cfg.degrade, crop_frames=args.crop_frames,
                      gain_db_range=cfg.train.gain_db_range, seed=0, device=device)
    print(f"device {device}, {args.threads} threads, batch {b} x {args.crop_frames} frames "
          f"({maker.crop_samples} samples per crop with the filter margins)")
    loaders = {w: loader_rate(segments, b, w, args.batches) for w in (0, 1, 2)}
    for w, rate in loaders.items():
        print(f"loader, {w} workers: {rate:8.0f} examples/s  (audio segments, int16)")
    pairs = pair_rate(segments, maker, b, args.batches, device)
    print(f"pairs on {device}:   {pairs:8.0f} examples/s  (crop, degradation, noise, 2 STFTs, log-power)")
    if args.fixed is not None:
        fixed = SpectrogramPairs(args.fixed, "train", crop_frames=args.crop_frames)
        for w in (0, 1, 2):
            print(f"fixed pairs, {w} workers: {loader_rate(fixed, b, w, args.batches):8.0f} examples/s  "
                  "(float16 spectrograms)")
    data_s = b / loaders[0] + b / pairs  # per batch, in the training process (0 workers)
    print(f"data path in the training process: {1000 * data_s:.1f} ms per batch")
    for name in ("default", "bundled"):
        rate = step_rate(ROOT / "configs" / f"{name}.toml", b, args.crop_frames, args.steps, device)
        share = data_s * rate
        print(f"{name:8s} model: {rate:6.2f} steps/s ({1000 / rate:7.1f} ms/step); data path = {100 * share:4.1f} % "
              "of a step with 0 workers")
    need = 20 * b
    print(f"a GPU run at 20 steps/s x batch {b} needs {need} examples/s: the loader gives {max(loaders.values()):.0f}"
          f" per process here; the pairs on this device {pairs:.0f}")


if __name__ == "__main__":
    main()
