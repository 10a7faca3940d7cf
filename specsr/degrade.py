"""The one degradation: band-limit full-band audio the way real low-resolution audio was made.

Used by ``specsr convert`` (training pairs), by the evaluation baselines and by the tests, so that
what the model learns from and what it is scored on come through the same code.

Filter families (real low-res audio comes through many):

- ``resample_poly``: scipy polyphase down to ``sr_in`` and back (Kaiser window, kuleshov et al.);
- ``soxr``: soxr VHQ down to ``sr_in`` and back (what most tools do);
- ``cheby1``: Chebyshev-I lowpass, ripple 0.05 dB, zero-phase ``sosfiltfilt`` (NU-Wave 2's), then
  polyphase down/up;
- ``butter``: Butterworth lowpass of any order, zero-phase, then polyphase down/up.

Every family ends by passing through the low rate (``sr_in``, or the rate whose Nyquist is
``cutoff_hz``), so less than -60 dB of energy is left above the band edge whatever the family;
the family shapes how the band rolls off below that edge.

The result stays at the input's sample rate (the model's ``sr_out``) so that it can be compared
sample by sample with the original.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import signal

from specsr.audio import resample
from specsr.errors import SpecsrError

FILTER_FAMILIES = ("resample_poly", "soxr", "cheby1", "butter")


@dataclass(frozen=True)
class Degradation:
    """One draw of the degradation: which input rate, cutoff and filter made a low-res signal."""

    sr_in: int
    cutoff_hz: float
    filter: str
    order: int = 8


def band_limit(wav: np.ndarray, sample_rate: int, *, sr_in: int | None = None, cutoff_hz: float | None = None,
               filter: str = "resample_poly", order: int = 8) -> np.ndarray:
    """Remove everything above ``cutoff_hz`` (default ``sr_in / 2``) from ``wav`` ``[..., T]``.

    With ``sr_in``, the signal also passes through ``sr_in`` (down, then back up), like a
    recording actually stored at that rate. Returns float32 at ``sample_rate``, same shape.
    """
    if filter not in FILTER_FAMILIES:
        raise SpecsrError(f"unknown filter {filter!r}; choose from {', '.join(FILTER_FAMILIES)}")
    if sr_in is None and cutoff_hz is None:
        raise SpecsrError("band_limit needs sr_in or cutoff_hz")
    nyquist = sample_rate / 2
    if sr_in is not None and not 0 < sr_in <= sample_rate:
        raise SpecsrError(f"sr_in must be in (0, {sample_rate}], got {sr_in}")
    cutoff = float(cutoff_hz if cutoff_hz is not None else sr_in / 2)  # type: ignore[operator]
    if sr_in is not None:
        cutoff = min(cutoff, sr_in / 2)
    if not 0 < cutoff <= nyquist:
        raise SpecsrError(f"cutoff_hz must be in (0, {nyquist:g}], got {cutoff:g}")
    x = np.asarray(wav, dtype=np.float32)
    if x.shape[-1] == 0:
        return x.copy()
    through = sr_in if sr_in is not None else _rate_for_cutoff(cutoff, sample_rate)
    y = x
    if filter in ("cheby1", "butter"):
        y = _iir_lowpass(y, sample_rate, cutoff, filter, order)
    elif cutoff < through / 2 - 1:  # a cutoff below the rate's Nyquist: an IIR lowpass shapes it
        y = _iir_lowpass(y, sample_rate, cutoff, "cheby1", 8)
    if through < sample_rate:
        # down to the low rate and back: the anti-aliasing filter is the brick wall at its Nyquist
        method = "soxr" if filter == "soxr" else "resample_poly"
        y = resample(resample(y, sample_rate, through, method=method), through, sample_rate, method=method)
    return _fit(y, x.shape[-1])


def _rate_for_cutoff(cutoff_hz: float, sample_rate: int) -> int:
    """The rate whose Nyquist is the cutoff, rounded up to 100 Hz (keeps the polyphase ratio small)."""
    return int(min(sample_rate, max(200, math.ceil(2 * cutoff_hz / 100 - 1e-9) * 100)))


def _iir_lowpass(x: np.ndarray, sample_rate: int, cutoff_hz: float, family: str, order: int) -> np.ndarray:
    if order < 1:
        raise SpecsrError(f"filter order must be >= 1, got {order}")
    wn = min(cutoff_hz / (sample_rate / 2), 0.999)
    if family == "cheby1":
        sos = signal.cheby1(order, 0.05, wn, btype="lowpass", output="sos")
    else:
        sos = signal.butter(order, wn, btype="lowpass", output="sos")
    padlen = min(x.shape[-1] - 1, 3 * (2 * len(sos) + 1))
    return signal.sosfiltfilt(sos, x, axis=-1, padlen=max(padlen, 0)).astype(np.float32)


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    if y.shape[-1] >= n:
        return np.ascontiguousarray(y[..., :n])
    return np.pad(y, [(0, 0)] * (y.ndim - 1) + [(0, n - y.shape[-1])])


def random_degradation(rng: np.random.Generator, *, sr_in_choices: tuple[int, ...] | None = None,
                       sr_in_range: tuple[int, int] | None = None, families: tuple[str, ...] = FILTER_FAMILIES,
                       cutoff_jitter: float = 0.1) -> Degradation:
    """Draw a degradation for training: an input rate, a filter family, and a cutoff that is not
    always exactly ``sr_in / 2`` (up to ``cutoff_jitter`` below it, for IIR families)."""
    if sr_in_choices:
        sr_in = int(rng.choice(np.asarray(sr_in_choices)))
    elif sr_in_range:
        lo, hi = sr_in_range
        sr_in = int(round(rng.uniform(lo, hi) / 100) * 100)
    else:
        raise SpecsrError("random_degradation needs sr_in_choices or sr_in_range")
    family = str(rng.choice(np.asarray(families)))
    order = int(rng.integers(4, 13)) if family == "butter" else 8
    cutoff = sr_in / 2
    if family in ("cheby1", "butter") and cutoff_jitter > 0:
        cutoff *= 1.0 - rng.uniform(0.0, cutoff_jitter)
    return Degradation(sr_in=sr_in, cutoff_hz=float(cutoff), filter=family, order=order)


def apply(wav: np.ndarray, sample_rate: int, d: Degradation) -> np.ndarray:
    """Apply a drawn :class:`Degradation`."""
    return band_limit(wav, sample_rate, sr_in=d.sr_in, cutoff_hz=d.cutoff_hz, filter=d.filter, order=d.order)
