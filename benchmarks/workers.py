"""Throughput of ``specsr upsample --workers N`` (and ``--batch-files N``) on a folder of 40 short files (3 s
of 16 kHz speech each, cut from the training folder's speech: measuring only), bundled model, default
settings, on this machine. Prints wall time, files/s and seconds of audio per second for each setting.
Run: ``python -m benchmarks.workers``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

from benchmarks.presets import speech_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--batch-files", default="4", help="also time one process with these --batch-files")
    parser.add_argument("--files", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        long = speech_file(root, seconds=3.0 * args.files)
        x, sr = sf.read(long, dtype="float32")
        (root / "in").mkdir()
        n = 3 * sr
        for i in range(args.files):
            sf.write(root / "in" / f"clip{i:03d}.wav", x[i * n:(i + 1) * n], sr)
        seconds = args.files * 3.0
        runs = [("--workers", w) for w in args.workers.split(",")]
        runs += [("--batch-files", b) for b in args.batch_files.split(",") if b]
        for flag, value in runs:
            out = root / f"out{flag}{value}"
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "specsr", "upsample", str(root / "in"), "-o", str(out), "-q",
                            flag, value], check=True)
            wall = time.perf_counter() - t0
            n_out = len(list(out.glob("*.wav")))
            print(f"{flag} {value}: {n_out} files in {wall:.1f} s: {n_out / wall:.2f} files/s, "
                  f"{seconds / wall:.1f} s of audio per s (RTF {wall / seconds:.3f}, process start included)",
                  flush=True)


if __name__ == "__main__":
    main()
