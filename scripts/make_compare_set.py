"""A folder of full-band clips → a ``specsr evaluate --compare`` set: ``OUT/<set>/<N>k-48k/<clip>/`` with
``truth.flac`` and ``input.flac`` (the truth at 48 kHz taken to the low rate with ``scipy.signal.resample_poly``,
as the issue's held-out inputs are made), for each ``--rates``. The truth keeps its own rate where that is
below 48 kHz (a 44.1 kHz recording), so the metric scores it only up to its own Nyquist.

``--filter sinc`` makes the inputs the way most machine-learning code and the papers' demo pages do: down to
the low rate and back up to 48 kHz with a toolkit's default resampler (a short Hann-windowed sinc,
``specsr.degrade``'s ``sinc`` family), stored at 48 kHz: the band rolls off from ~0.8 of its Nyquist and
leaks images above it, and specsr has to find the cutoff itself.

Score your own held-out speech or music (never files a model trained on) beside the published sets:

    python scripts/make_compare_set.py data/mei -o data/heldout --set mei
    python scripts/make_compare_set.py data/mei -o data/heldout-sinc --set mei --filter sinc
    specsr evaluate --compare data/heldout --model bundled
"""

from __future__ import annotations

import argparse
import sys
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from specsr.degrade import band_limit

SR_TRUTH = 48000
AUDIO = (".wav", ".flac", ".ogg", ".aiff", ".aif")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="folder of full-band clips (searched recursively)")
    parser.add_argument("-o", "--output", required=True, type=Path)
    parser.add_argument("--set", default=None, help="set name (default: the source folder's name)")
    parser.add_argument("--rates", default="8000,12000,16000,24000", help="input rates, Hz, comma-separated")
    parser.add_argument("--max-seconds", type=float, default=10.0, help="clip length cap")
    parser.add_argument("--filter", choices=("resample_poly", "sinc"), default="resample_poly",
                        help="resample_poly: low-rate inputs (default); sinc: 48 kHz inputs via a toolkit resampler")
    args = parser.parse_args()
    files = sorted(p for p in args.source.rglob("*") if p.suffix.lower() in AUDIO)
    if not files:
        print(f"make_compare_set: no audio files in {args.source}", file=sys.stderr)
        return 2
    try:
        rates = [int(r) for r in args.rates.split(",")]
    except ValueError:
        print(f"make_compare_set: --rates must be integers in Hz, got {args.rates!r}", file=sys.stderr)
        return 2
    set_name = args.set or args.source.name
    for path in files:
        wav, sr = sf.read(path, dtype="float64", always_2d=True)
        wav = native = wav.mean(axis=1)
        if sr != SR_TRUTH:
            g = gcd(SR_TRUTH, sr)
            wav = resample_poly(native, SR_TRUTH // g, sr // g)
        wav = wav[: int(args.max_seconds * SR_TRUTH)]  # the 48 kHz signal the inputs are made from
        # the truth: a recording below 48 kHz at its own rate, anything else as the inputs see it
        truth, sr_truth = (native[: int(args.max_seconds * sr)], sr) if sr < SR_TRUTH else (wav, SR_TRUTH)
        for rate in rates:
            clip = args.output / set_name / f"{rate // 1000}k-48k" / path.stem
            clip.mkdir(parents=True, exist_ok=True)
            sf.write(clip / "truth.flac", truth.astype(np.float32), sr_truth, subtype="PCM_24")
            if args.filter == "sinc":
                sf.write(clip / "input.flac", band_limit(wav, SR_TRUTH, sr_in=rate, filter="sinc"), SR_TRUTH,
                         subtype="PCM_24")
            else:
                g = gcd(SR_TRUTH, rate)
                low = resample_poly(wav, rate // g, SR_TRUTH // g)
                sf.write(clip / "input.flac", low.astype(np.float32), rate, subtype="PCM_24")
    with open(args.output / "manifest.csv", "a", encoding="utf-8") as fh:
        if fh.tell() == 0:
            fh.write("set,ratio,sr_in\n")
        for rate in rates:
            fh.write(f"{set_name},{rate // 1000}k-48k,{rate}\n")
    print(f"{len(files)} clips x {len(rates)} rates in {args.output / set_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
