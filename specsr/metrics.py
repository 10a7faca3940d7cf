"""The one metric module: LSD, LSD-HF, LSD-LF and SNR exactly as the NU-Wave 2 / AP-BWE family, and the
structure of the new band (its level, envelope and texture against the truth's).

At 48 kHz, on :data:`METRIC_STFT` (2048-point Hann window, hop 512, centred):
``L = log10(clamp(|X|², min=1e-8))``; LSD = mean over frames of sqrt(mean over bins of
(L_est − L_ref)²). LSD-HF uses bins ``k >= int(1025 · sr_in / 48000)``, LSD-LF the bins below.
SNR = 20·log10(‖ref‖ / ‖ref − est‖). Per file; tables average files. No renormalisation: compare
at the files' own level, after trimming to equal length. Other definitions in the literature give
numbers that differ by 2× or more, so there is exactly one here.

Structure, because LSD rewards a plausible level and cannot tell a haze from speech: over the frames where
the truth's new band (bins >= sr_in / 2) is within :data:`STRUCTURE_RANGE_DB` of its loudest frame, with
the band level of a frame = 10·log10 of the band's mean power:

- *band bias* (dB) = mean of (estimate's band level − truth's);
- *envelope r* = Pearson correlation of the two band levels over those frames;
- *texture* = std over the band's bins and those frames of the log-power (dB) after subtracting each
  frame's 1/3-octave-smoothed spectrum, estimate's / truth's (1 = as rough as the truth; a haze is < 1);
- *top band* (dB) = the 20–24 kHz band's bias minus the whole new band's: the tilt of the top against the
  truth's (undefined when sr_in / 2 >= 20 kHz).

Files at any rate and channel count are scored on their channel mean resampled to 48 kHz
(:func:`to_metric_signal`). A truth stored below 48 kHz (a 44.1 kHz recording) holds nothing above its own
Nyquist, and its anti-aliasing filter's transition below it: every figure is then taken over the bins below
0.95 × its Nyquist only (:func:`reference_top_bin`; the loss trains such a source's bins up to the same point),
so an estimate is not charged for content the truth could not have. The published clips' truths are 48 kHz:
all bins count, as the papers count them.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from specsr.audio import read_audio, resample
from specsr.config import SOURCE_NYQUIST_MARGIN, STFTConfig
from specsr.errors import SpecsrError
from specsr.spectral import log_power, stft

# The metric's STFT (also what plots, baselines and the report's prose use): 48 kHz, 2048 / 512, Hann.
METRIC_STFT = STFTConfig(sample_rate=48000, n_fft=2048, hop_length=512, window="hann", center=True)
METRIC_SR = METRIC_STFT.sample_rate
POWER_CLAMP = 1e-8
STRUCTURE_RANGE_DB = 50.0  # frames whose truth's new band is this far below its loudest frame are left out
TOP_BAND_HZ = (20000.0, 24000.0)
_NAN = float("nan")


@dataclass(frozen=True)
class Scores:
    """Metrics of one estimate against its reference (structure figures NaN where undefined)."""

    lsd: float
    lsd_hf: float
    lsd_lf: float
    snr: float
    band_bias_db: float = _NAN
    envelope_r: float = _NAN
    texture: float = _NAN
    top_band_db: float = _NAN

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# Every table's metric columns: (Scores field, label, digits, what is better: low, high, or near a target)
METRIC_COLUMNS: tuple[tuple[str, str, int, str], ...] = (
    ("lsd", "LSD", 3, "low"), ("lsd_hf", "LSD-HF", 3, "low"), ("lsd_lf", "LSD-LF", 3, "low"),
    ("snr", "SNR (dB)", 2, "high"), ("band_bias_db", "bias (dB)", 1, "near 0"), ("envelope_r", "env. r", 2, "high"),
    ("texture", "texture", 2, "near 1"), ("top_band_db", "top (dB)", 1, "near 0"))
SCORE_FIELDS = tuple(c[0] for c in METRIC_COLUMNS)


def closeness(value: float, better: str) -> float:
    """A number that is lower the better ``value`` is, for a column's ``better`` rule."""
    if better == "low":
        return value
    if better == "high":
        return -value
    return abs(value - float(better.split()[-1]))


def _as_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(x)
    if not t.is_floating_point():
        t = t.float()
    return t.to(torch.float64) if t.dtype == torch.float64 else t.to(torch.float32)


def metric_log_power(wav: torch.Tensor) -> torch.Tensor:
    """``[..., T]`` at 48 kHz → ``[..., 1025, N]`` log10 power, exactly the metric's STFT."""
    if wav.shape[-1] <= METRIC_STFT.n_fft // 2:
        raise SpecsrError(
            f"signal too short for the metric: {wav.shape[-1]} samples, need more than "
            f"{METRIC_STFT.n_fft // 2} at 48 kHz (about 21 ms)")
    return log_power(stft(wav, METRIC_STFT), floor=POWER_CLAMP)


def split_rate(sr_in: int | None, file_rate: int, what: str = "the input") -> int:
    """The one rule for where LSD-HF starts, everywhere: ``sr_in / 2`` of the rate the user gives, else of the
    rate the input file has. A file stored at 48 kHz or more does not say which rate its band came from."""
    rate = file_rate if sr_in is None else sr_in
    if sr_in is None and file_rate >= METRIC_SR:
        raise SpecsrError(f"{what} is stored at {file_rate} Hz: give the rate it was made at (--sr-in) to split "
                          "LSD-HF from LSD-LF")
    if not 0 < rate <= METRIC_SR:
        raise SpecsrError(f"sr_in must be in (0, {METRIC_SR}] Hz, got {rate}")
    return int(rate)


def hf_start_bin(sr_in: float) -> int:
    """First bin of the high band: ``int(1025 · sr_in / 48000)``."""
    return int(METRIC_STFT.n_bins * sr_in / METRIC_SR)


def reference_top_bin(ref_sr: float | None) -> int:
    """Bins ``[0, k)`` of the metric's STFT that a truth recorded at ``ref_sr`` Hz holds: those below
    :data:`~specsr.config.SOURCE_NYQUIST_MARGIN` × its Nyquist (all 1025 for 48 kHz or more, or ``None``)."""
    if ref_sr is None or ref_sr >= METRIC_SR:
        return METRIC_STFT.n_bins
    return max(1, math.ceil(METRIC_STFT.n_fft * SOURCE_NYQUIST_MARGIN * ref_sr / 2 / METRIC_SR - 1e-9))


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


class MetricReference:
    """A reference signal ``[T]`` at 48 kHz whose spectrum is computed once and reused for every estimate.

    An estimate of another length is scored against the reference trimmed to it (its spectrum is
    cached per length too). ``ref_sr``: the rate the truth was recorded at, when below 48 kHz (its bins from
    0.95 × that Nyquist up are not scored: :func:`reference_top_bin`).
    """

    def __init__(self, ref: np.ndarray | torch.Tensor, ref_sr: float | None = None) -> None:
        self.signal = _as_tensor(ref)
        if self.signal.ndim != 1:
            raise SpecsrError(f"score expects mono [T] signals, got {tuple(self.signal.shape)}")
        self.top_bin = reference_top_bin(ref_sr)
        self._log_power: dict[int, torch.Tensor] = {}

    def log_power(self, n_samples: int) -> torch.Tensor:
        """The metric's log-power ``[F, N]`` of the first ``n_samples`` samples."""
        if n_samples not in self._log_power:
            self._log_power[n_samples] = metric_log_power(self.signal[:n_samples])
        return self._log_power[n_samples]

    def score(self, est: np.ndarray | torch.Tensor, sr_in: float) -> tuple[Scores, float]:
        """Scores of ``est`` ``[T']`` (both trimmed to the shorter length) and the length difference in ms."""
        e = _as_tensor(est)
        if e.ndim != 1:
            raise SpecsrError(f"score expects mono [T] signals, got {tuple(e.shape)}")
        n = min(len(self.signal), len(e))
        diff_ms = abs(len(self.signal) - len(e)) * 1000.0 / METRIC_SR
        return _scores(self.signal[:n], self.log_power(n), e[:n], sr_in, self.top_bin), diff_ms


def score(ref: np.ndarray | torch.Tensor, est: np.ndarray | torch.Tensor, sr_in: float,
          ref_sr: float | None = None) -> Scores:
    """LSD / LSD-HF / LSD-LF / SNR of ``est`` against ``ref``, both mono ``[T]`` at 48 kHz.

    Lengths must match (trim before, or use :func:`score_signals`, which does). ``ref_sr``: the rate the
    truth was recorded at, when below 48 kHz (bins from 0.95 × its Nyquist up are not scored).
    """
    r, e = _as_tensor(ref), _as_tensor(est)
    if r.ndim != 1 or e.ndim != 1:
        raise SpecsrError(f"score expects mono [T] signals, got {tuple(r.shape)} and {tuple(e.shape)}")
    if r.shape != e.shape:
        raise SpecsrError(f"reference and estimate differ in length: {r.shape[0]} vs {e.shape[0]} samples")
    return _scores(r, None, e, sr_in, reference_top_bin(ref_sr))


def _scores(r: torch.Tensor, lr: torch.Tensor | None, e: torch.Tensor, sr_in: float, top_bin: int) -> Scores:
    if not 0 < sr_in <= METRIC_SR:
        raise SpecsrError(f"sr_in must be in (0, {METRIC_SR}], got {sr_in}")
    lr = (metric_log_power(r) if lr is None else lr)[:top_bin]
    le = metric_log_power(e)[:top_bin]
    k = hf_start_bin(sr_in)
    lsd = float(lsd_from_log_power(le, lr))
    lsd_hf = float(lsd_from_log_power(le[k:], lr[k:])) if k < lr.shape[0] else float("nan")
    lsd_lf = float(lsd_from_log_power(le[:k], lr[:k])) if k > 0 else float("nan")
    return Scores(lsd, lsd_hf, lsd_lf, snr_db(r, e), *band_structure(le, lr, sr_in))


def band_structure(l_est: torch.Tensor, l_ref: torch.Tensor, sr_in: float) -> tuple[float, float, float, float]:
    """``(band bias dB, envelope r, texture, top band dB)`` of the new band (module docstring) from the metric's
    log10-power ``[F', N]`` of estimate and truth (``F'`` ≤ 1025: a truth's bins from 0.95 × its own Nyquist
    up cut off, the top band then ends there). NaN where undefined (no new band, too few frames)."""
    k = hf_start_bin(sr_in)
    n_bins = l_ref.shape[0]
    if k >= n_bins - 2 or l_ref.shape[-1] < 1:
        return _NAN, _NAN, _NAN, _NAN
    e_db, r_db = 10 * l_est.double(), 10 * l_ref.double()

    def level(x_db: torch.Tensor, lo: int, hi: int) -> torch.Tensor:  # dB of the mean power of bins lo..hi-1
        return 10 * torch.log10((10 ** (x_db[lo:hi] / 10)).mean(dim=0))

    ref_level, est_level = level(r_db, k, n_bins), level(e_db, k, n_bins)
    frames = ref_level >= ref_level.max() - STRUCTURE_RANGE_DB
    bias = float((est_level - ref_level)[frames].mean())
    r = _NAN
    if int(frames.sum()) >= 3:
        a, b = est_level[frames] - est_level[frames].mean(), ref_level[frames] - ref_level[frames].mean()
        den = float(a.norm() * b.norm())
        r = float((a * b).sum()) / den if den > 0 else _NAN
    ref_rough = float(_detrended(r_db, k)[:, frames].std())
    texture = float(_detrended(e_db, k)[:, frames].std()) / ref_rough if ref_rough > 0 else _NAN
    top = _NAN
    top_lo = hf_start_bin(2 * TOP_BAND_HZ[0])
    if k < top_lo < n_bins - 1:
        top_bias = float((level(e_db, top_lo, n_bins) - level(r_db, top_lo, n_bins))[frames].mean())
        top = top_bias - bias
    return bias, r, texture, top


def _detrended(x_db: torch.Tensor, k: int) -> torch.Tensor:
    """Bins ``k:`` of ``x_db`` ``[F, N]`` minus each frame's 1/3-octave-smoothed spectrum of those bins (a moving
    mean over a third of an octave, within the band: the seam at bin ``k`` does not count as texture)."""
    band = x_db[k:]
    lo, hi = _third_octave_bounds(x_db.shape[0], k)
    csum = torch.cat([torch.zeros_like(band[:1]), band.cumsum(dim=0)])
    smooth = (csum[hi] - csum[lo]) / (hi - lo).to(x_db.dtype)[:, None]
    return band - smooth


@functools.lru_cache(maxsize=64)
def _third_octave_bounds(n_bins: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per bin j of ``k .. n_bins - 1``, the band's bins [lo, hi) within a third of an octave around it,
    counted from ``k`` (at least j itself)."""
    j = torch.arange(k, n_bins, dtype=torch.float64)
    lo = torch.clamp(torch.floor(j * 2 ** (-1 / 6)).long(), min=k) - k
    hi = torch.clamp(torch.ceil(j * 2 ** (1 / 6)).long() + 1, max=n_bins) - k
    return lo, torch.maximum(hi, lo + 1)


def to_metric_signal(wav: np.ndarray, sr: int) -> np.ndarray:
    """``[C, T]`` at ``sr`` → mono ``[T]`` at 48 kHz (channel mean, soxr)."""
    mono = np.asarray(wav, dtype=np.float32).mean(axis=0)
    return resample(mono, sr, METRIC_SR) if sr != METRIC_SR else mono


def load_for_metric(path: str | Path) -> np.ndarray:
    """An audio file as the metric sees it: mono ``[T]`` at 48 kHz."""
    wav, sr = read_audio(path)
    return to_metric_signal(wav, sr)


def load_reference(path: str | Path) -> MetricReference:
    """A truth file as the metric scores against it: mono at 48 kHz, the bins above its own Nyquist left out
    when it is stored below 48 kHz."""
    wav, sr = read_audio(path)
    return MetricReference(to_metric_signal(wav, sr), ref_sr=sr)


def score_signals(ref: np.ndarray, est: np.ndarray, sr_in: float,
                  ref_sr: float | None = None) -> tuple[Scores, float]:
    """:func:`score` after trimming both mono 48 kHz signals to the shorter; also the length difference in ms."""
    return MetricReference(ref, ref_sr).score(est, sr_in)


def mean_scores(items: list[Scores]) -> Scores:
    """Average over files (NaN-aware: a metric undefined for a file is left out of its mean)."""
    if not items:
        raise SpecsrError("no scores to average")
    arr = np.array([[getattr(s, name) for name in SCORE_FIELDS] for s in items], dtype=np.float64)
    arr[~np.isfinite(arr)] = np.nan
    with np.errstate(all="ignore"):
        m = [float(np.nanmean(col)) if np.isfinite(col).any() else float("nan") for col in arr.T]
    return Scores(*m)
