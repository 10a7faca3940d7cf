"""Where the band bias comes from: the new band's level error per frame, by how far the truth's frame is below
its loudest.

The structure figure *band bias* (``specsr/metrics.py``) is the mean over frames within 50 dB of the truth's
loudest of (estimate's band level − truth's), in dB. This script splits those frames into 10 dB classes and
prints each class's count and mean error, per set and rate of a ``specsr evaluate --compare`` folder. A model
that cannot tell a loud frame from a quiet one (a fricative above a 4 kHz input) predicts something in
between: too quiet in the loud classes, too loud in the quiet ones, and since most of the power and, in speech,
many of the counted frames are loud, too quiet on the whole.

Run: ``python benchmarks/band_bias.py --compare FOLDER [--model NAME_OR_PATH] [--sets a,b]``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

import specsr
from specsr.metrics import STRUCTURE_RANGE_DB, hf_start_bin, metric_log_power

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_outputs import mono_outputs  # noqa: E402

CLASS_DB = 10.0


def band_level_db(wav: np.ndarray, sr_in: int) -> np.ndarray:
    """``[N]`` dB of the mean power of the bins at and above ``sr_in / 2`` per frame (the metric's STFT)."""
    logp = metric_log_power(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))).double()
    return (10 * torch.log10((10 ** logp[hf_start_bin(sr_in):]).mean(dim=0))).numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--compare", required=True, help="a specsr evaluate --compare folder (<set>/<ratio>/<clip>/)")
    ap.add_argument("--model", default=None, help="bundled model name or checkpoint path (default: the default one)")
    ap.add_argument("--sets", default=None, help="comma-separated sets to include")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    ups = specsr.load_model(args.model, device="cpu")
    n_classes = int(STRUCTURE_RANGE_DB // CLASS_DB)
    errors: dict[tuple[str, int], list[list[float]]] = defaultdict(lambda: [[] for _ in range(n_classes)])
    for clip, truth, y in mono_outputs(ups, args.compare, args.sets):
        ref, est = band_level_db(truth, clip.sr_in), band_level_db(y, clip.sr_in)
        below = ref.max() - ref
        for c in range(n_classes):
            frames = (below >= c * CLASS_DB) & (below < (c + 1) * CLASS_DB)
            errors[(clip.set, clip.sr_in)][c].extend((est - ref)[frames].tolist())
    print(f"model {ups.name}: band level error (dB) per class of frames, by dB below the truth's loudest")
    for (set_name, sr_in), classes in errors.items():
        cells = []
        for c, errs in enumerate(classes):
            mean = f"{np.mean(errs):+5.1f}" if errs else "   – "
            cells.append(f"{c * CLASS_DB:.0f}-{(c + 1) * CLASS_DB:.0f}: {mean} ({len(errs)})")
        counted = [e for errs in classes for e in errs]
        print(f"{set_name:>12s} {sr_in // 1000:>2d}k  bias {np.mean(counted):+5.1f} dB | " + "  ".join(cells))


if __name__ == "__main__":
    main()
