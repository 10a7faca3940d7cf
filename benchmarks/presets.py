"""The ``--quality`` presets: real-time factor and LSD of each.

RTF: ``specsr upsample``'s file path (streaming, as a user runs it) on a 20 s, 16 kHz speech file made from
the training folder's speech (measuring only), mean of 3 runs after a warm-up, on this machine's CPU (or
``--device``). LSD: mean over the 8 columns of ``specsr evaluate --compare ../shared/data/eval`` (the
published demo clips), with the bundled model. Run: ``python benchmarks/presets.py [--device cuda]``.
"""

from __future__ import annotations

import argparse
import glob
import tempfile
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

import specsr
from specsr.cli.options import inference_settings
from specsr.config import QUALITY_PRESETS
from specsr.evaluate import compare, model_system

SPEECH = "../shared/data/train/speech/**/*.*"
EVAL = "../shared/data/eval"


def speech_file(folder: Path, seconds: float = 20.0, sr_in: int = 16000) -> Path:
    """Training speech concatenated (repeated if need be) to ``seconds`` at ``sr_in``."""
    parts, total = [], 0
    for path in sorted(glob.glob(SPEECH, recursive=True)):
        if not path.endswith((".wav", ".flac")):
            continue
        x, sr = sf.read(path, dtype="float32", always_2d=True)
        x = resample_poly(x.mean(1), sr_in, sr).astype(np.float32)
        parts.append(x)
        total += len(x)
        if total >= seconds * sr_in:
            break
    x = np.concatenate(parts)
    x = np.tile(x, int(np.ceil(seconds * sr_in / len(x))))  # a small folder is repeated to length
    out = folder / "speech16k.wav"
    sf.write(out, x[: int(seconds * sr_in)], sr_in)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        src = speech_file(Path(tmp))
        for name in QUALITY_PRESETS:
            settings = inference_settings(quality=name)
            ups = specsr.load_model(device=args.device, settings=settings)
            ups.upsample_file(src, Path(tmp) / "warm.wav", force=True)
            rtfs = [ups.upsample_file(src, Path(tmp) / "out.wav", force=True).rtf for _ in range(3)]
            result = compare(EVAL, extra_systems={"specsr": model_system(ups)})
            lsd = [r.mean.lsd for r in result.rows if r.system == "specsr"]
            iters = f"{settings.n_iter} it" if settings.phase != "lowres" else "no iterations"
            print(f"--quality {name:8s} ({settings.phase}, {iters}): RTF {np.mean(rtfs):.3f} "
                  f"(min {min(rtfs):.3f}), mean LSD over {len(lsd)} columns {np.mean(lsd):.3f}", flush=True)


if __name__ == "__main__":
    main()
