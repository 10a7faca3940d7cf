"""The seam on native low-rate files: LSD-LF of specsr's output against plain polyphase interpolation.

The issue's case: 8/16/24 kHz files made with ``scipy.signal.resample_poly`` from 48 kHz speech (the eval
truths: measuring only, never training), upsampled by the bundled model. Prints mean LSD and LSD-LF of
specsr, LSD-LF of polyphase interpolation of the same input, and the level of the band 0.94-1.0 × Nyquist
relative to that interpolation. Run: ``python benchmarks/seam.py``.
"""

from __future__ import annotations

import glob
import warnings

import numpy as np
import torch
from scipy.signal import resample_poly

import specsr
from specsr.audio import read_audio
from specsr.metrics import METRIC_STFT, metric_log_power, score

BIN_HZ = METRIC_STFT.sample_rate / METRIC_STFT.n_fft
CLIPS = "../shared/data/eval/{}/16k-48k/*/truth.*"


def band_db(wav: np.ndarray, k0: int, k1: int) -> float:
    logp = metric_log_power(torch.from_numpy(wav))
    return float(10 * np.log10(np.mean(10 ** logp[k0:k1].numpy())))


def main() -> None:
    warnings.simplefilter("ignore")
    ups = specsr.load_model(device="cpu")
    truths = sorted(glob.glob(CLIPS.format("nuwave2"))) + sorted(glob.glob(CLIPS.format("ap-bwe")))
    for sr_in in (16000, 8000, 24000):
        rows = []
        for path in truths:
            t = read_audio(path)[0].mean(0)
            x = resample_poly(t, sr_in // 1000, 48).astype(np.float32)
            y = ups.upsample(x, sr_in)[0]
            base = resample_poly(x, 48, sr_in // 1000).astype(np.float32)
            n = min(len(t), len(y), len(base))
            k0, k1 = int(0.94 * sr_in / 2 / BIN_HZ), int(sr_in / 2 / BIN_HZ)
            s_y, s_b = score(t[:n], y[:n], sr_in), score(t[:n], base[:n], sr_in)
            rows.append((s_y.lsd, s_y.lsd_lf, s_b.lsd_lf, band_db(y[:n], k0, k1) - band_db(base[:n], k0, k1)))
        m = np.array(rows).mean(axis=0)
        print(f"{sr_in} Hz native: specsr LSD {m[0]:.3f} LSD-LF {m[1]:.3f} | polyphase LSD-LF {m[2]:.3f} | "
              f"band 0.94-1.0 x Nyquist: specsr - polyphase {m[3]:+.1f} dB")


if __name__ == "__main__":
    main()
