"""A lattice at fixed bins in the new band: how far each bin position of a period sits above or below its
neighbours, averaged over frames, for a model's output and for the truth.

A network that folds ``P`` bins into channels (``[model] patch_bins``) has one output channel per position in
the patch; nothing forces the positions to agree, and a loss that rewards roughness can be met by putting one
position higher in every frame: a comb along frequency that stays in place (horizontal lines in a
spectrogram, a 94 Hz comb for 4-bin patches at 48 kHz / 2048). The structure figure *texture* counts it as
roughness; this script shows it. For each clip of a ``specsr evaluate --compare`` folder: the metric's
2048/512 log-power in dB, minus a 9-bin moving mean along frequency; over the truth's loud frames (within
30 dB of its loudest) and the new band's bins from ``sr_in / 2 + 0.5 kHz`` up, the mean of that residual at
each position ``bin mod P``. Printed per set and rate: the positions' offsets (dB) of the output and of the
truth, and their spread (max − min; a truth's is a few tenths of a dB).

Also *banding*: coarser lines that stay in place (an SRGAN generator painted stripes about 1 kHz apart to look
rough): the same frame average of the log-power about a ``BAND_SMOOTH_BINS`` (about 3 kHz) moving mean instead,
its standard deviation over the new band's bins, in dB, for the output and the truth. Speech whose pitch and
formants move averages out to a smooth line; fixed stripes do not.

Run: ``python benchmarks/lattice.py --compare FOLDER [--model NAME_OR_PATH] [--period P] [--sets a,b]``.
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
from specsr.metrics import METRIC_STFT, hf_start_bin, metric_log_power

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_outputs import mono_outputs  # noqa: E402

SMOOTH_BINS = 9
BAND_SMOOTH_BINS = 129  # ~3 kHz at 48 kHz / 2048: the banding figure's moving mean
LOUD_DB = 30.0
EDGE_HZ = 500.0  # the first bins above the cutoff hold the seam, not the lattice


def _moving_mean(db: np.ndarray, n_bins: int) -> np.ndarray:
    kernel = np.ones(n_bins) / n_bins
    return np.apply_along_axis(lambda col: np.convolve(col, kernel, mode="same"), 0, db)


def position_offsets(wav: np.ndarray, sr_in: int, loud: np.ndarray | None,
                     period: int) -> tuple[np.ndarray, np.ndarray, float]:
    """``(offsets [period] dB, loud frames, banding dB)`` of a 48 kHz signal's new band (``loud``: reuse the
    truth's)."""
    db = 10 * metric_log_power(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))).double().numpy()
    k0 = hf_start_bin(sr_in) + int(EDGE_HZ * METRIC_STFT.n_fft / METRIC_STFT.sample_rate)
    k1 = db.shape[0] - SMOOTH_BINS  # the moving mean is cut at Nyquist
    if loud is None:
        level = 10 * np.log10(np.mean(10 ** (db[k0:k1] / 10), axis=0))
        loud = level >= level.max() - LOUD_DB
    resid = (db - _moving_mean(db, SMOOTH_BINS))[:, loud]
    bins = np.arange(db.shape[0])
    offsets = np.array([resid[(bins >= k0) & (bins < k1) & (bins % period == p)].mean() for p in range(period)])
    half = BAND_SMOOTH_BINS // 2
    fixed = (db - _moving_mean(db, BAND_SMOOTH_BINS))[:, loud].mean(axis=1)
    k1_band = db.shape[0] - half
    banding = float(fixed[k0 + half:k1_band].std()) if k1_band - k0 - half > 8 else float("nan")
    return offsets, loud, banding


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--compare", required=True, help="a specsr evaluate --compare folder (<set>/<ratio>/<clip>/)")
    ap.add_argument("--model", default=None, help="bundled model name or checkpoint path (default: the default one)")
    ap.add_argument("--period", type=int, default=None, help="bins per period (default: patch_bins, else 4)")
    ap.add_argument("--sets", default=None, help="comma-separated sets to include")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    ups = specsr.load_model(args.model, device="cpu")
    patch = ups.model_cfg.patch_bins
    period = args.period or (patch if patch > 1 else 4)
    rows: dict[tuple[str, int], list[tuple[np.ndarray, np.ndarray, float, float]]] = defaultdict(list)
    for clip, truth, y in mono_outputs(ups, args.compare, args.sets):
        ref, loud, ref_banding = position_offsets(truth, clip.sr_in, None, period)
        est, _, est_banding = position_offsets(y, clip.sr_in, loud, period)
        rows[(clip.set, clip.sr_in)].append((est, ref, est_banding, ref_banding))
    print(f"model {ups.name}, period {period} bins ({period * METRIC_STFT.sample_rate / METRIC_STFT.n_fft:.2f} Hz)")
    for (set_name, sr_in), items in rows.items():
        est = np.mean([e for e, *_ in items], axis=0)
        ref = np.mean([r for _, r, *_ in items], axis=0)
        fmt = " ".join(f"{v:+5.1f}" for v in est)
        fmt_ref = " ".join(f"{v:+5.1f}" for v in ref)
        banding = np.nanmean([b for *_, b, _ in items])
        banding_ref = np.nanmean([b for *_, b in items])
        print(f"{set_name:>12s} {sr_in // 1000:>2d}k ({len(items)} clips): output [{fmt}] spread "
              f"{np.ptp(est):4.1f} dB | truth [{fmt_ref}] spread {np.ptp(ref):4.1f} dB | banding "
              f"{banding:4.1f} dB (truth {banding_ref:4.1f})")


if __name__ == "__main__":
    main()
