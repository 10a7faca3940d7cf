"""Speed and memory of ``specsr upsample`` end to end (a script, not a test: it prints numbers).

For each input rate and clip length it runs ``Upsampler.upsample_file`` in a fresh subprocess
(so that peak RSS is that case's alone) ``--repeats`` times and reports the median wall time,
the real-time factor (wall / audio seconds) split into model and phase reconstruction, and the
process's peak RSS. Optionally (unless ``--skip-long``) a 60-minute stereo file is generated on
disk and processed the same way, to show that memory does not grow with length.

Inputs are built from the training data (``/work/shared/data/train``, never ``eval/``) tiled to
length, band-limited and stored at the input rate; synthetic audio when that folder is missing.

    python benchmarks/bench_upsample.py --repeats 3
    python benchmarks/bench_upsample.py --repeats 1 --skip-long --model runs/x/model.pt
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TRAIN_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "train"
SR_OUT = 48000

BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench"  # the peer-shaped networks (../shared/bench)


def peer_seconds(script: str, seconds: float, threads: int, runs: int = 3) -> float:
    """Median seconds of one of ``../shared/bench``'s peer-shaped networks over ``seconds`` of mono audio
    (``runs`` timed passes after its warm-up)."""
    proc = subprocess.run([sys.executable, str(BENCH / script), str(seconds), "--threads", str(threads),
                           "--runs", str(runs)], capture_output=True, text=True, check=True)
    return float(proc.stdout.strip().split()[-1].rstrip("s"))


def source_audio(seconds: float, seed: int = 0) -> np.ndarray:
    """``[2, seconds · 48 kHz]`` full-band audio: training clips tiled to length, or synthetic."""
    from specsr.audio import find_audio_files, read_audio, resample

    n = int(seconds * SR_OUT)
    files = find_audio_files(TRAIN_DIR) if TRAIN_DIR.is_dir() else []
    parts, total = [], 0
    rng = np.random.default_rng(seed)
    for path in rng.permutation(np.array(files, dtype=object))[:50]:
        try:
            wav, sr = read_audio(path)
        except Exception:  # noqa: BLE001  (a benchmark input, not user input: skip anything odd)
            continue
        wav = resample(wav[:, : int(20 * sr)], sr, SR_OUT)
        wav = np.repeat(wav[:1], 2, axis=0) if wav.shape[0] == 1 else wav[:2]
        parts.append(wav)
        total += wav.shape[1]
        if total >= min(n, 120 * SR_OUT):
            break
    if not parts:  # synthetic: a chirping harmonic tone plus noise
        t = np.arange(min(n, 60 * SR_OUT)) / SR_OUT
        ph = 2 * np.pi * np.cumsum(200 + 50 * np.sin(2 * np.pi * 0.3 * t)) / SR_OUT
        x = sum(np.sin(k * ph) / k for k in range(1, 60)) * 0.1 + rng.standard_normal(len(t)) * 0.01
        parts = [np.stack([x, np.roll(x, 999)]).astype(np.float32)]
    base = np.concatenate(parts, axis=1)
    reps = -(-n // base.shape[1])
    return np.ascontiguousarray(np.tile(base, (1, reps))[:, :n]).astype(np.float32)


def make_input(path: Path, seconds: float, sr_in: int) -> None:
    """Write a band-limited stereo input at ``sr_in`` (blocks of at most 2 minutes: bounded memory)."""
    import soundfile as sf

    from specsr.audio import resample

    block_s = 120.0
    excerpt = resample(source_audio(min(seconds, block_s)), SR_OUT, sr_in)
    n_total = int(round(seconds * sr_in))
    with sf.SoundFile(str(path), "w", sr_in, 2, subtype="PCM_16") as fh:
        written = 0
        while written < n_total:
            take = min(excerpt.shape[1], n_total - written)
            fh.write(0.5 * excerpt[:, :take].T)
            written += take


def run_case(args: argparse.Namespace) -> dict:
    """Child process: time ``upsample_file`` on one generated input; print a JSON line."""
    import torch


    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.wav"
        make_input(src, args.seconds, args.sr_in)
        rss_input = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ups = _model(args.model, args.device, args.precision, Path(tmp))
        walls, cpus, models, phases = [], [], [], []
        for i in range(args.repeats):
            out = Path(tmp) / f"out{i}.wav"
            t0, c0 = time.perf_counter(), time.process_time()
            report = ups.upsample_file(src, out, phase=args.phase, n_iter=args.n_iter,
                                       chunk_seconds=args.chunk_seconds)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            models.append(report.model_seconds)
            phases.append(report.phase_seconds)
            out.unlink()
    return {"sr_in": args.sr_in, "seconds": args.seconds, "wall_s": statistics.median(walls),
            "cpu_s": statistics.median(cpus),
            "model_s": statistics.median(models), "phase_s": statistics.median(phases),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_before_model_mb": rss_input, "cutoff_hz": report.cutoff_hz}


def _model(path: str | None, device: str, precision: str, tmp: Path):  # noqa: ANN202
    from specsr.pipeline import list_bundled_models, load_model

    if path is None and not list_bundled_models():
        import torch

        from specsr.checkpoint import make_checkpoint, save_checkpoint
        from specsr.config import ModelConfig, STFTConfig, TaskConfig
        from specsr.models import build_model

        torch.manual_seed(0)
        cfg, stft = ModelConfig(), STFTConfig()
        path = str(save_checkpoint(make_checkpoint(build_model(cfg, stft), cfg, stft, TaskConfig(),
                                                   name="random-init-default"), tmp / "random.pt"))
    return load_model(path, device=device, precision=precision)


def compare_precision(args: argparse.Namespace) -> None:
    """Is bf16 safe for this model? LSD against the truth with fp32 and with bf16 (10 s inputs), and
    LSD between the two outputs with ``lowres`` phase (deterministic, so only the network differs;
    FGLA amplifies any tiny magnitude difference into another, equally good, phase solution)."""
    from specsr.audio import resample
    from specsr.metrics import score

    with tempfile.TemporaryDirectory() as tmp:
        truth = source_audio(10.0)
        models = {precision: _model(args.model, args.device, precision, Path(tmp)) for precision in ("fp32", "bf16")}
        for sr_in in [int(r) for r in args.rates.split(",")]:
            wav = resample(truth, SR_OUT, sr_in)
            lsd = {}
            for precision, ups in models.items():
                out = ups.upsample(wav, sr_in, phase=args.phase, n_iter=args.n_iter)[0].mean(axis=0)
                lsd[precision] = score(truth.mean(axis=0), out, sr_in).lsd
            a, b = (ups.upsample(wav, sr_in, phase="lowres")[0].mean(axis=0) for ups in models.values())
            print(f"{sr_in} Hz in: LSD vs truth fp32 {lsd['fp32']:.3f}, bf16 {lsd['bf16']:.3f}; "
                  f"bf16 vs fp32 output (lowres phase): LSD {score(a, b, sr_in).lsd:.4f}")


def describe_model(path: str | None) -> str:
    from specsr.pipeline import list_bundled_models

    if path is not None:
        return f"model: {path}"
    bundled = list_bundled_models()
    if bundled:
        return f"model: bundled {bundled[0].name}"
    return ("model: NO BUNDLED MODEL INSTALLED -> a random-init model of the default ModelConfig() "
            "(same size and speed as a trained one; its output is noise)")


def spawn(args: argparse.Namespace, sr_in: int, seconds: float, repeats: int) -> dict:
    cmd = [sys.executable, __file__, "--case", "--sr-in", str(sr_in), "--seconds", str(seconds),
           "--repeats", str(repeats), "--phase", args.phase, "--n-iter", str(args.n_iter), "--device", args.device,
           "--precision", args.precision, "--chunk-seconds", str(args.chunk_seconds), "--threads", str(args.threads)]
    if args.model:
        cmd += ["--model", args.model]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"case sr_in={sr_in} seconds={seconds} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="checkpoint path or bundled name (default: the bundled model)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--rates", default="8000,16000,24000")
    p.add_argument("--durations", default="10,60", help="clip lengths in seconds")
    p.add_argument("--skip-long", action="store_true", help="skip the 60-minute stereo memory run")
    p.add_argument("--only-long", action="store_true", help="only the long memory run")
    p.add_argument("--long-minutes", type=float, default=60.0)
    p.add_argument("--phase", default="fgla")
    p.add_argument("--n-iter", type=int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="auto")
    p.add_argument("--chunk-seconds", type=float, default=20.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--compare-precision", action="store_true", help="also: LSD between fp32 and bf16 outputs")
    p.add_argument("--case", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--sr-in", type=int, default=16000, help=argparse.SUPPRESS)
    p.add_argument("--seconds", type=float, default=10.0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.case:
        print(json.dumps(run_case(args)))
        return

    import torch

    torch.set_num_threads(args.threads)
    print(describe_model(args.model))
    print(f"torch {torch.__version__}, {args.threads} threads, device {args.device}, precision {args.precision}, "
          f"phase {args.phase} ({args.n_iter} it.), chunk {args.chunk_seconds:g} s, stereo inputs, "
          f"median of {args.repeats}; end to end (read, resample, model, phase, write)")
    header = (f"{'sr_in':>6} {'clip':>6} {'wall s':>8} {'RTF':>7} {'model':>7} {'phase':>7} {'other':>7} "
              f"{'CPU RTF':>8} {'peak RSS':>9}")
    print(header)
    print("-" * len(header))
    for seconds in [] if args.only_long else [float(s) for s in args.durations.split(",")]:
        for sr_in in [int(r) for r in args.rates.split(",")]:
            r = spawn(args, sr_in, seconds, args.repeats)
            rtf, m, ph = r["wall_s"] / seconds, r["model_s"] / seconds, r["phase_s"] / seconds
            print(f"{sr_in:>6} {seconds:>5g}s {r['wall_s']:>8.2f} {rtf:>7.3f} {m:>7.3f} {ph:>7.3f} "
                  f"{rtf - m - ph:>7.3f} {r['cpu_s'] / seconds:>8.3f} {r['peak_rss_mb']:>7.0f}MB", flush=True)
    print("(RTF columns: wall seconds per second of audio; 'other' = I/O, resampling, STFT, cutoff; CPU RTF: "
          "CPU seconds of all threads per second of audio, less sensitive to other jobs on the machine)")
    if args.compare_precision:
        compare_precision(args)
    if not args.skip_long:
        seconds = args.long_minutes * 60
        r = spawn(args, 16000, seconds, 1)
        print(f"{args.long_minutes:g}-minute stereo file at 16 kHz, end to end with upsample_file: "
              f"wall {r['wall_s']:.0f} s (RTF {r['wall_s'] / seconds:.3f}), peak RSS {r['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
