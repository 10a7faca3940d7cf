"""Cutoff detection: the frequency above which a file has no real content.

A 16 kHz recording stored at 48 kHz, or an MP3 with its 16 kHz shelf, looks full-rate but is
empty above its cutoff. We find that edge from the long-term spectrum:

1. average the power spectrum over the frames that carry sound (silence would only add the
   noise floor), at a resolution of about 12 Hz;
2. smooth it along frequency (a running median, so a hum or a pilot tone cannot fake content);
3. an edge lies below the highest bin j above which everything is at least ``min_drop_db`` below
   the octave under j: a fall to nothing. Natural roll-offs keep some content above any such j;
   levels more than ``content_range_db`` below the loudest band count as a noise floor; in files at
   32 kHz and more the top 3 % of the band is ignored (dither is noise-shaped there);
4. the cutoff is the last bin below j still within ``edge_db`` of the octave under it: where the
   response starts to fall, which for real low-res files is often well below the nominal sr_in/2.
   Between the cutoff and j (``edge_hz``) the file still holds real, attenuated content.

No edge found means the file is full-band (cutoff = Nyquist).

Files that lie about their band: audio upsampled by old software without an anti-imaging filter
(sample-and-hold, zero-stuffing, linear interpolation) carries mirror images of its band above the
old Nyquist ``f0``, so the spectrum never falls to nothing. Its fine structure (the long-term
spectrum less its 800 Hz moving average) is then mirrored about ``f0`` and repeats with period
``2·f0``: correlations of 0.95-1.0 for every kind of interpolation, where natural audio scores
below 0.7 at every common rate's Nyquist (:data:`IMAGE_NYQUISTS`). Such a file is band-limited at
``f0``; the images above it are not content.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter

from specsr.errors import SpecsrError

# The Nyquists of the rates old files were made at: where mirror images of a band would fold.
IMAGE_NYQUISTS = (4000.0, 5512.5, 6000.0, 8000.0, 11025.0, 12000.0, 16000.0, 22050.0)
MIRROR_CORRELATION = 0.85  # the fine structure mirrored about f0 at least this closely: images


@dataclass(frozen=True)
class CutoffEstimate:
    """Result of :func:`detect_cutoff`."""

    cutoff_hz: float
    nyquist_hz: float
    band_limited: bool
    silent: bool
    drop_db: float
    edge_hz: float  # where the content has fallen by min_drop_db (Nyquist when full band): it rolls off in between
    images: bool = False  # mirror images of the band lie above edge_hz (an upsampling without anti-imaging)
    # the roll-off's fall: (frequency in Hz, dB below the long-term level at the cutoff, never decreasing),
    # every ~50 Hz from the cutoff to edge_hz; empty when there is no roll-off band
    fall_db: tuple[tuple[float, float], ...] = ()


def long_term_spectrum(wav: np.ndarray, sample_rate: int, *, bin_hz: float = 12.0,
                       max_frames: int = 1500, active_db: float = 40.0) -> tuple[np.ndarray, np.ndarray] | None:
    """Mean power spectrum in dB over active frames of ``wav`` ``[C, T]`` or ``[T]``.

    Returns ``(freqs_hz [F], level_db [F])`` or None when the signal is silent.
    """
    x = np.asarray(wav, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    n_fft = int(2 ** np.ceil(np.log2(max(64, sample_rate / bin_hz))))
    hop = n_fft // 2
    t = x.shape[-1]
    if t < n_fft:
        x = np.pad(x, ((0, 0), (0, n_fft - t)))
        t = n_fft
    n = 1 + (t - n_fft) // hop
    starts = np.arange(n) * hop
    if n > max_frames:  # long files: an even spread of frames is plenty
        starts = starts[np.linspace(0, n - 1, max_frames).astype(int)]
    idx = starts[:, None] + np.arange(n_fft)[None]
    frames = x[:, idx]  # [C, N, n_fft]
    frames = frames * np.hanning(n_fft)
    power = (np.abs(np.fft.rfft(frames, axis=-1)) ** 2).mean(axis=0)  # [N, F]
    energy = power.sum(axis=-1)
    if not np.any(energy > 1e-20):
        return None
    loud = np.percentile(energy[energy > 0], 95)
    keep = energy >= loud * 10 ** (-active_db / 10)
    spec = power[keep].mean(axis=0)
    freqs = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    return freqs, 10 * np.log10(spec + 1e-30)


def detect_cutoff(wav: np.ndarray, sample_rate: int, *, min_drop_db: float = 25.0, edge_db: float = 6.0,
                  min_cutoff_hz: float = 500.0, content_range_db: float = 70.0) -> CutoffEstimate:
    """Estimate the content cutoff of ``wav`` ``[C, T]`` or ``[T]`` at ``sample_rate``."""
    if sample_rate <= 0:
        raise SpecsrError(f"sample rate must be positive, got {sample_rate}")
    nyquist = sample_rate / 2
    lts = long_term_spectrum(wav, sample_rate)
    if lts is None:
        return CutoffEstimate(nyquist, nyquist, band_limited=False, silent=True, drop_db=0.0, edge_hz=nyquist)
    freqs, level = lts
    df = freqs[1] - freqs[0]
    smooth = median_filter(level, size=max(3, int(150 / df) | 1), mode="nearest")
    wide = median_filter(level, size=max(3, int(400 / df) | 1), mode="nearest")
    # suffix max of the widely smoothed curve: the loudest content at or above each bin; in wide-band
    # files the top 3 % of the band is left out (dither noise-shaped towards Nyquist lives there)
    n_top = int(0.97 * len(wide)) if sample_rate >= 32000 else len(wide) - 2
    above_max = np.maximum.accumulate(wide[:n_top][::-1])[::-1]
    k_min = max(2, int(min_cutoff_hz / df))
    # content more than `content_range_db` below the loudest band is a noise floor, not content
    content_floor = float(smooth.max()) - content_range_db
    f0 = _image_nyquist(freqs, smooth, nyquist, content_floor)
    if f0 is not None:
        j = int(round(f0 / df))
        k = _fall_start(smooth, j, k_min, edge_db)
        return CutoffEstimate(float(freqs[k]), nyquist, band_limited=True, silent=False, drop_db=0.0,
                              edge_hz=float(f0), images=True, fall_db=_fall_profile(freqs, smooth, k, j))
    for j in range(n_top - 1, k_min - 1, -1):
        reference = float(np.median(smooth[j // 2:j + 1]))  # the octave below j
        if reference < content_floor:
            continue
        drop = reference - above_max[j]
        if drop >= min_drop_db:
            # j is past the edge; the cutoff is where the response starts to fall: the last bin below j
            # still within edge_db of the octave under it
            k = _fall_start(smooth, j, k_min, edge_db)
            return CutoffEstimate(float(freqs[k]), nyquist, band_limited=True, silent=False, drop_db=float(drop),
                                  edge_hz=float(freqs[j]), fall_db=_fall_profile(freqs, smooth, k, j))
    return CutoffEstimate(nyquist, nyquist, band_limited=False, silent=False, drop_db=0.0, edge_hz=nyquist)


def _fall_profile(freqs: np.ndarray, smooth: np.ndarray, k: int, j: int) -> tuple[tuple[float, float], ...]:
    """How far the smoothed long-term level has fallen below its value at bin ``k`` (the cutoff), from ``k``
    to ``j`` (the edge), as a running maximum: ``((freq_hz, fall_db), ...)`` every ~50 Hz."""
    if j <= k:
        return ()
    step = max(1, int(round(50.0 / float(freqs[1] - freqs[0]))))
    idx = np.unique(np.r_[np.arange(k, j, step), j])
    fall = np.maximum.accumulate(np.maximum(0.0, smooth[k] - smooth[idx]))
    return tuple((float(freqs[i]), round(float(f), 2)) for i, f in zip(idx, fall, strict=True))


def _fall_start(smooth: np.ndarray, j: int, k_min: int, edge_db: float) -> int:
    """The last bin at or below ``j`` still within ``edge_db`` of the octave under it: where the fall starts."""
    k = j
    while k > k_min and smooth[k] < float(np.median(smooth[k // 2:k + 1])) - edge_db:
        k -= 1
    return k


def _image_nyquist(freqs: np.ndarray, smooth: np.ndarray, nyquist: float, content_floor: float) -> float | None:
    """The old Nyquist ``f0`` about which the spectrum's fine structure is mirrored, or None (a band below
    ``content_floor`` on either side is a noise floor, whose fine structure says nothing)."""
    from scipy.ndimage import uniform_filter1d

    df = float(freqs[1] - freqs[0])
    fine = smooth - uniform_filter1d(smooth, max(3, int(800 / df)), mode="nearest")

    def correlation(a: np.ndarray, b: np.ndarray) -> float:
        if len(a) < 8 or np.std(a) == 0 or np.std(b) == 0:
            return 0.0
        return float(np.corrcoef(a, b)[0, 1])

    for f0 in IMAGE_NYQUISTS:
        j = int(round(f0 / df))
        d_max = int(min(0.9 * f0, 0.95 * nyquist - f0) / df)
        if d_max < int(0.2 * f0 / df):
            continue  # too little room above f0 to tell
        d = np.arange(int(0.05 * f0 / df), d_max)
        if min(np.median(smooth[j - d]), np.median(smooth[j + d])) < content_floor:
            continue
        if correlation(fine[j - d], fine[j + d]) < MIRROR_CORRELATION:
            continue
        k = np.arange(int(0.1 * f0 / df), int(0.9 * f0 / df))
        if 2 * j + k[-1] < int(0.95 * nyquist / df) and correlation(fine[k], fine[k + 2 * j]) < MIRROR_CORRELATION:
            continue  # mirrored, but not periodic with the old rate: not images
        return f0
    return None
