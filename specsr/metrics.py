"""The one metric module: LSD, LSD-HF, LSD-LF and SNR exactly as the NU-Wave 2 / AP-BWE family.

At 48 kHz: ``X = torch.stft(x, n_fft=2048, hop_length=512, window=hann(2048), center=True)``,
``L = log10(clamp(|X|², min=1e-8))``; LSD = mean over frames of sqrt(mean over bins of
(L_est − L_ref)²). LSD-HF uses bins ``k >= int(1025 · sr_in / 48000)``, LSD-LF the bins below.
SNR = 20·log10(‖ref‖ / ‖ref − est‖). Per file; tables average files. No renormalisation: compare
at the files' own level, after trimming to equal length. Other definitions in the literature give
numbers that differ by 2× or more, so there is exactly one here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from specsr.errors import SpecsrError

METRIC_SR = 48000
METRIC_N_FFT = 2048
METRIC_HOP = 512
POWER_CLAMP = 1e-8


@dataclass(frozen=True)
class Scores:
    """Metrics of one estimate against its reference."""

    lsd: float
    lsd_hf: float
    lsd_lf: float
    snr: float

    def as_dict(self) -> dict[str, float]:
        return {"lsd": self.lsd, "lsd_hf": self.lsd_hf, "lsd_lf": self.lsd_lf, "snr": self.snr}


def _as_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(x)
    if not t.is_floating_point():
        t = t.float()
    return t.to(torch.float64) if t.dtype == torch.float64 else t.to(torch.float32)


def metric_log_power(wav: torch.Tensor) -> torch.Tensor:
    """``[..., T]`` at 48 kHz → ``[..., 1025, N]`` log10 power, exactly the metric's STFT."""
    win = torch.hann_window(METRIC_N_FFT, dtype=wav.dtype, device=wav.device)
    lead = wav.shape[:-1]
    flat = wav.reshape(-1, wav.shape[-1])
    if flat.shape[-1] <= METRIC_N_FFT // 2:
        raise SpecsrError(
            f"signal too short for the metric: {flat.shape[-1]} samples, need more than "
            f"{METRIC_N_FFT // 2} at 48 kHz (about 21 ms)")
    spec = torch.stft(flat, n_fft=METRIC_N_FFT, hop_length=METRIC_HOP, window=win, center=True,
                      return_complex=True)
    logp = torch.log10(torch.clamp(spec.abs() ** 2, min=POWER_CLAMP))
    return logp.reshape(*lead, logp.shape[-2], logp.shape[-1])


def hf_start_bin(sr_in: float) -> int:
    """First bin of the high band: ``int(1025 · sr_in / 48000)``."""
    return int((METRIC_N_FFT // 2 + 1) * sr_in / METRIC_SR)


def lsd_from_log_power(l_est: torch.Tensor, l_ref: torch.Tensor) -> torch.Tensor:
    """Mean over frames of the RMS log-power difference over bins. ``[..., F, N]`` → ``[...]``."""
    return torch.sqrt(((l_est - l_ref) ** 2).mean(dim=-2)).mean(dim=-1)


def snr_db(ref: torch.Tensor, est: torch.Tensor) -> float:
    num = float(torch.linalg.vector_norm(ref.double()))
    den = float(torch.linalg.vector_norm((ref - est).double()))
    if den == 0.0:
        return math.inf
    if num == 0.0:
        return -math.inf
    return 20.0 * math.log10(num / den)


def score(ref: np.ndarray | torch.Tensor, est: np.ndarray | torch.Tensor, sr_in: float) -> Scores:
    """LSD / LSD-HF / LSD-LF / SNR of ``est`` against ``ref``, both mono ``[T]`` at 48 kHz.

    Lengths must match (trim before; :func:`specsr.evaluate.align` does it for files).
    """
    r, e = _as_tensor(ref), _as_tensor(est)
    if r.ndim != 1 or e.ndim != 1:
        raise SpecsrError(f"score expects mono [T] signals, got {tuple(r.shape)} and {tuple(e.shape)}")
    if r.shape != e.shape:
        raise SpecsrError(f"reference and estimate differ in length: {r.shape[0]} vs {e.shape[0]} samples")
    if not 0 < sr_in <= METRIC_SR:
        raise SpecsrError(f"sr_in must be in (0, {METRIC_SR}], got {sr_in}")
    lr, le = metric_log_power(r), metric_log_power(e)
    k = hf_start_bin(sr_in)
    lsd = float(lsd_from_log_power(le, lr))
    lsd_hf = float(lsd_from_log_power(le[k:], lr[k:])) if k < lr.shape[0] else float("nan")
    lsd_lf = float(lsd_from_log_power(le[:k], lr[:k])) if k > 0 else float("nan")
    return Scores(lsd=lsd, lsd_hf=lsd_hf, lsd_lf=lsd_lf, snr=snr_db(r, e))


def mean_scores(items: list[Scores]) -> Scores:
    """Average over files (NaN-aware: a metric undefined for a file is left out of its mean)."""
    if not items:
        raise SpecsrError("no scores to average")
    arr = np.array([[s.lsd, s.lsd_hf, s.lsd_lf, s.snr] for s in items], dtype=np.float64)
    arr[~np.isfinite(arr)] = np.nan
    with np.errstate(all="ignore"):
        m = [float(np.nanmean(col)) if np.isfinite(col).any() else float("nan") for col in arr.T]
    return Scores(*m)
