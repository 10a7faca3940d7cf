"""Model v2's speed target, in one run: the whole ``specsr upsample`` command against the peer-shaped networks.

The command exactly as a user runs it (a fresh ``python -m specsr upsample`` process: start-up, reading,
resampling, network, phase, writing; default settings unless ``--args``) on 16 kHz files of 2 and 10 minutes
(mono) and 10 minutes (stereo) made from the training folder's audio (never eval/), ``--threads`` threads;
wall seconds and the process's peak RSS. Then, in the same run, ``../shared/bench/vocos_cost.py`` (LavaSR-shaped)
and ``apbwe_cost.py`` (AP-BWE-shaped) over the same 10 minutes, and the ratios the target names: mono ≤ vocos,
stereo ≤ 2 × vocos, ≥ 3× faster than apbwe, memory 10 min ≤ 2 min + 300 MB and ≤ 2 GB.

    python benchmarks/speed_target.py                       # the default (bundled) model
    python benchmarks/speed_target.py --model runs/v2/best.pt --args="--n-iter 32"
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_upsample import peer_seconds, source_audio  # noqa: E402

from specsr.audio import resample  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# Runs one command and prints its wall seconds and peak RSS (its own process: the figure is that run's alone).
_MEASURE = """
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
wall = time.perf_counter() - t0
print(json.dumps({"wall": wall, "rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def measure(cmd: list[str], threads: int) -> dict[str, float]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True, env=env,
                          check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="bundled", help="checkpoint path or bundled model name")
    parser.add_argument("--args", default="", help="extra `specsr upsample` options, e.g. '--n-iter 32'")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-peers", action="store_true", help="skip the peer-shaped networks")
    parser.add_argument("--apbwe-runs", type=int, default=3,
                        help="timed passes of apbwe_cost.py (about 3 min each for 10 minutes on 2 cores)")
    args = parser.parse_args()
    seconds = 60.0 * args.minutes
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        stereo = resample(source_audio(seconds), 48000, 16000)
        cases = {"2 min mono": stereo[:1, : 120 * 16000], f"{args.minutes:g} min mono": stereo[:1],
                 f"{args.minutes:g} min stereo": stereo}
        print(f"whole `specsr upsample --model {args.model} {args.args}` (16 kHz -> 48 kHz), "
              f"{args.threads} threads, a fresh process each")
        rows = {}
        for name, wav in cases.items():
            src = tmp / (name.replace(" ", "_") + ".wav")
            sf.write(src, 0.5 * wav.T.astype(np.float32), 16000, subtype="PCM_16")
            cmd = [sys.executable, "-m", "specsr", "upsample", str(src), "-o", str(tmp / "out.wav"), "-f", "-q",
                   "--model", args.model, *shlex.split(args.args)]
            t0 = time.perf_counter()
            rows[name] = measure(cmd, args.threads)
            print(f"  {name}: {rows[name]['wall']:.2f} s, peak RSS {rows[name]['rss_mb']:.0f} MB "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    long_mono, long_stereo = rows[f"{args.minutes:g} min mono"], rows[f"{args.minutes:g} min stereo"]
    growth = long_mono["rss_mb"] - rows["2 min mono"]["rss_mb"]
    print(f"memory: {args.minutes:g} min - 2 min = {growth:+.0f} MB (target <= +300 MB), peak "
          f"{max(r['rss_mb'] for r in rows.values()):.0f} MB (target <= 2048 MB)")
    if args.no_peers:
        return
    vocos = peer_seconds("vocos_cost.py", seconds, args.threads)
    print(f"vocos_cost.py {seconds:g} (LavaSR-shaped, network + STFT only, mono): {vocos:.2f} s", flush=True)
    apbwe = peer_seconds("apbwe_cost.py", seconds, args.threads, runs=args.apbwe_runs)
    print(f"apbwe_cost.py {seconds:g} (AP-BWE-shaped): {apbwe:.2f} s")
    print(f"mono: whole upsample / vocos_cost = {long_mono['wall'] / vocos:.2f} (target <= 1, moonshot <= 0.67); "
          f"stereo / (2 x vocos_cost) = {long_stereo['wall'] / (2 * vocos):.2f} (target <= 1); "
          f"apbwe_cost / whole upsample = {apbwe / long_mono['wall']:.1f} (target >= 3)")


if __name__ == "__main__":
    main()
