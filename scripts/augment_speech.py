"""Augmented copies of real full-band speech for training: pitch, formants and tempo varied, the band kept full.

Real full-band speech under a permissive licence is scarce (the training folder holds about 25 s of it outside the
held-out folders), so every clip is written ``--variants`` more times, each with its own draw from ``--seed``:

- **tape speed** ``r`` in ``--speed`` (default 1.0-1.25): the clip played ``r`` times faster (resampled, as a tape
  or a sampler would), so pitch, formants and tempo all rise by ``r``. Only speed-ups: a slowed-down 48 kHz clip
  would end below 24 kHz, and training would learn that empty top as the truth.
- **tempo** ``t`` in ``--tempo`` (default 0.8-1.25): then stretched in time by a phase vocoder (librosa, hop
  n_fft/8 to keep its smearing small) to ``t`` times the tempo with pitch and formants unchanged. Together the two
  move the pitch/formant scale and the speaking rate independently (a tempo of ``1/r`` undoes the speed-up's tempo:
  a higher, smaller-sounding voice at the original rate).

Outputs ``OUT/<source stem>_aug<k>.flac`` at the source's rate (24-bit) and ``OUT/README.md`` with the command and
each file's draws. The copies are derived works of their sources and carry their licences: list the sources'
attributions (``../shared/data/train/manifest.csv`` for the training folder) wherever the copies are used. Never
augment held-out or test speech.

    python scripts/augment_speech.py ../shared/data/train/speech/vctk ../shared/data/train/speech/puredata \
        ../shared/data/train/speech/audiosr -o data/speech-aug --variants 8 --seed 0
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

AUDIO = (".wav", ".flac", ".ogg", ".aiff", ".aif")
STRETCH_N_FFT = 2048
STRETCH_HOP = STRETCH_N_FFT // 8


def tape_speed(wav: np.ndarray, factor: float) -> np.ndarray:
    """``wav`` ``[T]`` played ``factor`` (>= 1) times faster at the same sample rate: ``[≈ T / factor]``."""
    if factor < 1.0:
        raise ValueError(f"tape speed must be >= 1 (a slow-down empties the top band), got {factor}")
    ratio = Fraction(1.0 / factor).limit_denominator(200)
    return resample_poly(wav, ratio.numerator, ratio.denominator)


def stretch_tempo(wav: np.ndarray, rate: float) -> np.ndarray:
    """``wav`` ``[T]`` at ``rate`` times its tempo, pitch and formants kept (phase vocoder): ``[≈ T / rate]``."""
    import librosa

    return librosa.effects.time_stretch(wav, rate=rate, n_fft=STRETCH_N_FFT, hop_length=STRETCH_HOP)


def augment(wav: np.ndarray, speed: float, tempo: float) -> np.ndarray:
    """Tape speed, then tempo; the peak kept at the source's (or below full scale)."""
    out = stretch_tempo(tape_speed(wav, speed), tempo)
    peak_in, peak_out = float(np.abs(wav).max(initial=0.0)), float(np.abs(out).max(initial=0.0))
    if peak_out > 0:
        out = out * (min(peak_in, 0.99) / peak_out)
    return out


def _range(text: str) -> tuple[float, float]:
    lo, _, hi = text.partition(":")
    a, b = float(lo), float(hi or lo)
    if not 0 < a <= b:
        raise argparse.ArgumentTypeError(f"expected LOW:HIGH with 0 < LOW <= HIGH, got {text!r}")
    return a, b


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sources", nargs="+", type=Path, help="folders (searched recursively) or files of speech")
    parser.add_argument("-o", "--output", required=True, type=Path)
    parser.add_argument("--variants", type=int, default=8, help="augmented copies per clip")
    parser.add_argument("--speed", type=_range, default=(1.0, 1.25), help="tape speed-up range, LOW:HIGH (>= 1)")
    parser.add_argument("--tempo", type=_range, default=(0.8, 1.25), help="tempo range, LOW:HIGH")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.variants < 1:
        print("augment_speech: --variants must be >= 1", file=sys.stderr)
        return 2
    if args.speed[0] < 1.0:
        print("augment_speech: --speed must be >= 1 (a slow-down empties the top band)", file=sys.stderr)
        return 2
    files = sorted(p for src in args.sources for p in ([src] if src.is_file() else src.rglob("*"))
                   if p.suffix.lower() in AUDIO)
    if not files:
        print(f"augment_speech: no audio files in {', '.join(map(str, args.sources))}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    args.output.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, path in enumerate(files):
        wav, sr = sf.read(path, dtype="float64", always_2d=True)
        mono = wav.mean(axis=1)
        for k in range(args.variants):
            speed, tempo = float(rng.uniform(*args.speed)), float(rng.uniform(*args.tempo))
            name = f"{path.stem}_aug{k}.flac"
            sf.write(args.output / name, augment(mono, speed, tempo).astype(np.float32), sr, subtype="PCM_24")
            lines.append(f"| {name} | {path} | {speed:.3f} | {tempo:.3f} |")
        print(f"\r{i + 1}/{len(files)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    command = "python scripts/augment_speech.py " + " ".join(sys.argv[1:])
    readme = ["# Augmented real speech", "", f"Written by `{command}` (specsr).", "",
              "Derived works of the source files below: each carries its source's licence and attribution.", "",
              "| file | source | tape speed | tempo |", "|---|---|---|---|", *lines, ""]
    (args.output / "README.md").write_text("\n".join(readme), encoding="utf-8")
    print(f"{len(lines)} clips from {len(files)} sources in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
