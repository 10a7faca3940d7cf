"""Speed of model architectures, whole ``specsr upsample`` against the peer-shaped networks, in one run.

For each config (``[model]`` and ``[stft]`` of a training config; random weights: compute does not depend on
them) or checkpoint: ``Upsampler.upsample_file`` on a ``--seconds`` mono 16 kHz file made from the training
speech/music (never eval/), default settings (FGLA 32), ``--threads`` threads; median of ``--repeats`` after
a warm-up: wall seconds, of which network and phase. Then, in the same run, ``../shared/bench/vocos_cost.py``
(LavaSR-shaped) and ``apbwe_cost.py`` (AP-BWE-shaped) on the same duration, and the ratios.

    python benchmarks/architectures.py configs/bundled.toml configs/experiments/unet-patch4.toml
    python benchmarks/architectures.py runs/v2/best.pt --seconds 600
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_upsample import peer_seconds, source_audio  # noqa: E402

from specsr.audio import resample  # noqa: E402
from specsr.checkpoint import make_checkpoint, save_checkpoint  # noqa: E402
from specsr.config import RunConfig, load_toml  # noqa: E402
from specsr.models import build_model, count_parameters  # noqa: E402
from specsr.pipeline import load_model  # noqa: E402


def checkpoint_for(spec: str, tmp: Path) -> Path:
    """A checkpoint path as given, or a random-init one built from a TOML config's [model] and [stft]."""
    if spec.endswith(".pt"):
        return Path(spec)
    cfg = RunConfig.from_dict(load_toml(spec))
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.stft)
    out = tmp / (Path(spec).stem + ".pt")
    return save_checkpoint(make_checkpoint(model, cfg.model, cfg.stft, cfg.task, name=Path(spec).stem), out)


def time_upsample(ckpt: Path, src: Path, tmp: Path, repeats: int) -> dict[str, float]:
    ups = load_model(str(ckpt), device="cpu")
    walls, nets, phases = [], [], []
    for i in range(repeats + 1):
        out = tmp / f"out{i}.wav"
        t0 = time.perf_counter()
        report = ups.upsample_file(src, out)
        if i:  # the first pass warms up
            walls.append(time.perf_counter() - t0)
            nets.append(report.model_seconds)
            phases.append(report.phase_seconds)
        out.unlink()
    return {"wall": statistics.median(walls), "network": statistics.median(nets),
            "phase": statistics.median(phases), "params": count_parameters(ups.model)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", help="training configs (.toml) or checkpoints (.pt)")
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-peers", action="store_true", help="skip the peer-shaped networks")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        src = tmp / "in16k.wav"
        mono = resample(source_audio(args.seconds)[0], 48000, 16000)
        sf.write(src, 0.5 * mono.astype(np.float32), 16000, subtype="PCM_16")
        print(f"{args.seconds:g} s mono 16 kHz -> 48 kHz, {args.threads} threads, default settings, "
              f"median of {args.repeats}")
        rows = {}
        for spec in args.models:
            r = time_upsample(checkpoint_for(spec, tmp), src, tmp, args.repeats)
            rows[spec] = r
            print(f"{spec}: {r['params'] / 1e6:.2f} M parameters; whole upsample {r['wall']:.2f} s "
                  f"(network {r['network']:.2f} s, phase {r['phase']:.2f} s)")
    if args.no_peers:
        return
    vocos = peer_seconds("vocos_cost.py", args.seconds, args.threads)
    apbwe = peer_seconds("apbwe_cost.py", args.seconds, args.threads)
    print(f"vocos_cost.py (LavaSR-shaped, network + STFT only): {vocos:.2f} s; apbwe_cost.py: {apbwe:.2f} s")
    for spec, r in rows.items():
        print(f"{spec}: whole upsample / vocos_cost = {r['wall'] / vocos:.2f}; apbwe_cost / whole upsample = "
              f"{apbwe / r['wall']:.1f}")


if __name__ == "__main__":
    main()
