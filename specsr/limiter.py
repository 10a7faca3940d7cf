"""Keeping an integer output below full scale without touching the input's band: a local limiter on the new band.

An upsampled file is the input's band plus the band the model adds. Where their sum would pass full
scale (a transient in a loud recording), scaling the whole file down would change the level of the
input's own band everywhere, for one moment of overshoot. Instead the new band alone is turned down,
only around the samples that need it: per sample the largest gain ``r ∈ [0, 1]`` for the new band
that keeps ``|low + r·new| ≤ ceiling``, then the minimum over ``±look_ahead`` samples, then its moving
average over ``look_ahead`` samples (never above ``r`` anywhere, and smooth: no clicks). Where the
input's band alone passes the ceiling (inter-sample peaks of a file at full scale, a lossy decoder's
overshoots), those samples are clipped, and counted, and the new band is not turned down for them.
Streaming: blocks in, blocks out, ``2·look_ahead`` samples late, flushed at the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import minimum_filter1d, uniform_filter1d

CEILING = 1.0 - 2.0 ** -15  # the largest 16-bit sample
LOOK_AHEAD_S = 0.005  # the gain starts falling this long before a peak and recovers as fast after it


@dataclass
class LimiterStats:
    """What the limiter did to one file."""

    sample_rate: int
    limited_samples: int = 0  # samples where the new band was turned down (any channel)
    min_gain: float = 1.0  # of the new band
    clipped_samples: int = 0  # samples where the input's band alone passed full scale
    peak: float = 0.0  # of the output before limiting

    @property
    def limited_seconds(self) -> float:
        return self.limited_samples / self.sample_rate

    @property
    def limit_db(self) -> float:
        """The deepest reduction of the new band, in dB (0 when nothing was limited)."""
        return float(20 * np.log10(max(self.min_gain, 1e-6))) if self.limited_samples else 0.0


def required_gain(low: np.ndarray, new: np.ndarray, ceiling: float = CEILING) -> np.ndarray:
    """Per sample, the largest gain in [0, 1] for ``new`` keeping ``|low + gain·new| <= ceiling``.

    ``[C, n]`` → ``[n]`` (the smallest over channels: one gain for all, so the stereo image stays). Where
    ``low`` alone passes the ceiling the sample is clipped whatever the new band does: its gain stays 1 (a
    hot file, e.g. decoded AAC with overshoots everywhere, would otherwise lose its whole new band).
    """
    total = low + new
    over = (np.abs(total) > ceiling) & (np.abs(low) <= ceiling)
    gain = np.ones(low.shape, np.float64)
    if over.any():
        target = np.sign(total[over]) * ceiling
        with np.errstate(divide="ignore", invalid="ignore"):
            g = (target - low[over]) / new[over]
        gain[over] = np.clip(np.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0), 0.0, 1.0)
    return gain.min(axis=0)


def limit_new_band(pairs: Iterable[tuple[np.ndarray, np.ndarray]], sample_rate: int,
                   stats: LimiterStats | None = None, ceiling: float = CEILING) -> Iterator[np.ndarray]:
    """``(output, input's band)`` blocks ``[C, n]`` in; out the output, where it needs it ``low + gain·new``
    (``new = output − low``), elsewhere the output itself, bit for bit (the same samples in all)."""
    stats = stats if stats is not None else LimiterStats(sample_rate)
    a = max(1, int(round(LOOK_AHEAD_S * sample_rate)))
    lag = 2 * a  # the output needs required gains this far ahead (min filter ±a, average ±a/2)
    full_buf = low_buf = new_buf = None  # samples not yet written, with the gains they need
    r_buf = np.ones(0)
    r_hist = np.ones(0)  # the last `lag` required gains already written (the filters look back too)
    done = False
    it = iter(pairs)
    while not done:
        nxt = next(it, None)
        if nxt is None:
            done = True
        else:
            full, low = (np.asarray(v, np.float32) for v in nxt)
            new = full - low
            stats.peak = max(stats.peak, float(np.abs(full).max(initial=0.0)))
            full_buf = full if full_buf is None else np.concatenate([full_buf, full], axis=1)
            low_buf = low if low_buf is None else np.concatenate([low_buf, low], axis=1)
            new_buf = new if new_buf is None else np.concatenate([new_buf, new], axis=1)
            r_buf = np.concatenate([r_buf, required_gain(low, new, ceiling)])
        if full_buf is None or low_buf is None or new_buf is None:
            return
        n_ready = low_buf.shape[1] if done else max(0, low_buf.shape[1] - lag)
        if n_ready == 0:
            continue
        r = np.concatenate([r_hist, r_buf])  # history, then the unwritten samples
        pad_end = np.ones(lag) if done else np.ones(0)
        g = uniform_filter1d(minimum_filter1d(np.concatenate([r, pad_end]), 2 * a + 1, mode="nearest"),
                             a + 1, mode="nearest")
        g = np.minimum(g[len(r_hist):len(r_hist) + n_ready], r_buf[:n_ready])  # never above the need
        limited = g < 1.0
        out = full_buf[:, :n_ready].copy()
        if limited.any():
            out[:, limited] = low_buf[:, :n_ready][:, limited] + \
                g[limited][None].astype(np.float32) * new_buf[:, :n_ready][:, limited]
        stats.limited_samples += int(limited.sum())
        if limited.any():
            stats.min_gain = min(stats.min_gain, float(g.min()))
        clipped = np.abs(out) > ceiling
        if clipped.any():
            stats.clipped_samples += int(clipped.any(axis=0).sum())
            out = np.clip(out, -ceiling, ceiling)
        yield out
        r_hist = r[:len(r_hist) + n_ready][-lag:]
        full_buf, low_buf, new_buf = full_buf[:, n_ready:], low_buf[:, n_ready:], new_buf[:, n_ready:]
        r_buf = r_buf[n_ready:]
