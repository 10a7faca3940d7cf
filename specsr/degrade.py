"""The one degradation: band-limit full-band audio the way real low-resolution audio was made.

Used by ``specsr convert`` (training pairs), by the evaluation baselines and by the tests, so that
what the model learns from and what it is scored on come through the same code.

Filter families (real low-res audio comes through many):

- ``resample_poly``: scipy polyphase down to ``sr_in`` and back (Kaiser window, kuleshov et al.);
- ``soxr``: soxr VHQ down to ``sr_in`` and back (what most tools do);
- ``cheby1``: Chebyshev-I lowpass, ripple 0.05 dB, zero-phase ``sosfiltfilt`` (NU-Wave 2's), then
  polyphase down/up;
- ``butter``: Butterworth lowpass of any order, zero-phase, then polyphase down/up;
- ``sinc``: down/up with the short Hann-windowed sinc of machine-learning toolkits' default resamplers
  (torchaudio's ``resample``; :func:`specsr.audio.short_sinc_filter`): the band falls from ~0.8 × its
  Nyquist and leaks mirror images of its top up to ~1.3 × (-10 dB at the Nyquist, -24 dB at 1.17 ×). The
  papers' demo inputs look like this. Its ``cutoff_hz`` is not a filter setting but where the model is told
  the band ends: where specsr's cutoff detection finds the fall starting on such files (0.80–0.97 × the
  Nyquist, :data:`SINC_CUTOFF_FRACTION`).

Every family ends by passing through the low rate (``sr_in``, or the rate whose Nyquist is
``cutoff_hz``), so less than -60 dB of energy is left above the band edge (for ``sinc``: above 1.4 × it);
the family shapes how the band rolls off below that edge.

The result stays at the input's sample rate (the model's ``sr_out``) so that it can be compared
sample by sample with the original.

Two implementations of the same filter chain:

- :func:`band_limit` / :func:`apply` (numpy/scipy, one signal; real resampling): the reference, used by
  evaluation, the baselines and ``specsr convert --spectrograms``;
- :func:`degrade_batch` (torch, a batch, on any device): training's pairs on the fly. It multiplies each
  example's spectrum by :func:`chain_response`, the chain's zero-phase magnitude in closed form (the
  bilinear-transform response of scipy's Butterworth/Chebyshev designs, squared for the forward-backward
  pass; the Kaiser-windowed sinc of ``resample_poly`` and a soxr-like long-window sinc, squared for down and
  up). ``tests/test_degrade.py`` checks it against the reference: within 0.5 dB in the pass band, the same
  stop-band depth.

:func:`draw_degradations` draws a batch of :class:`Degradation` from a :class:`~specsr.config.DegradeConfig`
with a torch generator (training seeds one per step). It adds one family the reference also applies: an
MP3-like ``shelf`` (a steep cut that leaves the band above ``shelf_db`` down, at the full rate).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import signal

from specsr.audio import POLYPHASE_ATTENUATION_DB, POLYPHASE_TRANSITION, resample, short_sinc_filter
from specsr.config import DegradeConfig
from specsr.errors import SpecsrError

FILTER_FAMILIES = ("resample_poly", "soxr", "cheby1", "butter", "sinc")
IIR_FAMILIES = ("cheby1", "butter")  # their cutoff is the filter's corner, drawn up to cutoff_jitter below the Nyquist
SINC = "sinc"
SINC_CUTOFF_FRACTION = (0.80, 0.97)  # sinc family: the cutoff the model is told, as a fraction of the Nyquist
SHELF = "shelf"  # MP3-like: a steep cut to a shelf, no rate change (a family of the on-the-fly draws)
ALL_FAMILIES = (*FILTER_FAMILIES, SHELF)
CHEBY_RIPPLE_DB = 0.05
SHELF_WIDTH_HZ = 500.0  # the shelf's transition (an MP3 encoder's lowpass is a few hundred Hz wide)
# resample_poly's anti-aliasing filter (specsr.audio's Kaiser design) in continuous terms: centre, window, beta
POLY_CENTRE = 1.0 - POLYPHASE_TRANSITION / 2  # of the lower Nyquist
POLY_HALF_ZEROS = (POLYPHASE_ATTENUATION_DB - 7.95) / (2.285 * 2 * math.pi * POLYPHASE_TRANSITION / 2) / 2
POLY_BETA = 0.1102 * (POLYPHASE_ATTENUATION_DB - 8.7)  # kaiser_beta for attenuation > 50 dB
# soxr VHQ as an equivalent Kaiser-windowed sinc, fitted to its measured response (tests/test_degrade.py):
# the same to 0.01 dB up to 0.9 of the Nyquist, within 4 dB through the transition
SOXR_BETA, SOXR_CENTRE, SOXR_HALF_ZEROS = 14.0, 0.956, 120.0


@dataclass(frozen=True)
class Degradation:
    """One draw of the degradation: which input rate, cutoff and filter made a low-res signal."""

    sr_in: int
    cutoff_hz: float
    filter: str
    order: int = 8
    shelf_db: float = 0.0  # the shelf family: how far the band above the cutoff is left down
    noise_db: float | None = None  # a noise floor at this dBFS is added first (the target keeps it)
    noise_colour: str = "white"  # or "pink"
    gain_db: float = 0.0  # applied to input and target alike


def band_limit(wav: np.ndarray, sample_rate: int, *, sr_in: int | None = None, cutoff_hz: float | None = None,
               filter: str = "resample_poly", order: int = 8, shelf_db: float = 40.0) -> np.ndarray:
    """Remove everything above ``cutoff_hz`` (default ``sr_in / 2``) from ``wav`` ``[..., T]``.

    With ``sr_in``, the signal also passes through ``sr_in`` (down, then back up), like a
    recording actually stored at that rate. The ``shelf`` family instead leaves the band above the
    cutoff ``shelf_db`` down, at the full rate. Returns float32 at ``sample_rate``, same shape.
    """
    if filter not in ALL_FAMILIES:
        raise SpecsrError(f"unknown filter {filter!r}; choose from {', '.join(ALL_FAMILIES)}")
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
    if filter == SHELF:  # no rate change: the shelf's response, applied in the frequency domain
        return _shelf_np(x, sample_rate, cutoff, shelf_db)
    through = sr_in if sr_in is not None else _rate_for_cutoff(cutoff, sample_rate)
    y = x
    if filter in IIR_FAMILIES:
        y = _iir_lowpass(y, sample_rate, cutoff, filter, order)
    elif cutoff < through / 2 - 1 and filter != SINC:  # a cutoff below the rate's Nyquist: an IIR lowpass shapes it
        y = _iir_lowpass(y, sample_rate, cutoff, "cheby1", 8)
    if through < sample_rate:
        # down to the low rate and back: the anti-aliasing filter is the brick wall at its Nyquist (sinc: a slope)
        method = filter if filter in ("soxr", SINC) else "resample_poly"
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
    always exactly ``sr_in / 2`` (up to ``cutoff_jitter`` below it for IIR families, within
    :data:`SINC_CUTOFF_FRACTION` of it for ``sinc``)."""
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
    if family in IIR_FAMILIES and cutoff_jitter > 0:
        cutoff *= 1.0 - rng.uniform(0.0, cutoff_jitter)
    elif family == SINC:
        cutoff *= rng.uniform(*SINC_CUTOFF_FRACTION)
    return Degradation(sr_in=sr_in, cutoff_hz=float(cutoff), filter=family, order=order)


def apply(wav: np.ndarray, sample_rate: int, d: Degradation) -> np.ndarray:
    """Apply a drawn :class:`Degradation`'s filter chain (the reference; its noise floor and gain are the
    caller's: :func:`degrade_batch` applies all of it)."""
    return band_limit(wav, sample_rate, sr_in=d.sr_in, cutoff_hz=d.cutoff_hz, filter=d.filter, order=d.order,
                      shelf_db=d.shelf_db)


def _shelf_np(x: np.ndarray, sample_rate: int, cutoff_hz: float, shelf_db: float) -> np.ndarray:
    n = x.shape[-1]
    freqs = torch.fft.rfftfreq(n, 1.0 / sample_rate, dtype=torch.float64)
    gain = _shelf_response(freqs, cutoff_hz, shelf_db).numpy()
    return np.fft.irfft(np.fft.rfft(x.astype(np.float64), axis=-1) * gain, n, axis=-1).astype(np.float32)


# ----------------------------------------------------------------------------------------------------
# The same chain as a closed-form response, and its batched torch application (training on the fly)


def _bilinear_ratio(freqs: torch.Tensor, sample_rate: int, cutoff_hz: float) -> torch.Tensor:
    """The analog prototype's frequency for each digital one (scipy designs through the bilinear transform)."""
    wn = min(cutoff_hz / (sample_rate / 2), 0.999)  # as _iir_lowpass
    below_nyquist = freqs.clamp(max=sample_rate / 2 * (1 - 1e-6))
    return torch.tan(math.pi * below_nyquist / sample_rate) / math.tan(math.pi * wn / 2)


def _iir_response(freqs: torch.Tensor, sample_rate: int, cutoff_hz: float, family: str, order: int) -> torch.Tensor:
    """|H|^2 of scipy's ``butter``/``cheby1`` lowpass: the magnitude of its forward-backward (zero-phase) pass,
    in the log domain (no overflow in float32 however steep)."""
    w = _bilinear_ratio(freqs, sample_rate, cutoff_hz)
    softplus = torch.nn.functional.softplus
    if family == "butter":  # 1 / (1 + w^2N)
        return torch.exp(-softplus(2 * order * torch.log(w.clamp_min(1e-30))))
    eps2 = 10 ** (CHEBY_RIPPLE_DB / 10) - 1  # 1 / (1 + eps^2 T_N(w)^2)
    inside = torch.cos(order * torch.acos(w.clamp(max=1.0)))
    a = order * torch.acosh(w.clamp(min=1.0))
    log_t2 = torch.where(w <= 1.0, torch.log(inside.square().clamp_min(1e-30)),
                         2 * (a + torch.log1p(torch.exp(-2 * a)) - math.log(2.0)))  # log cosh(a)^2
    return torch.exp(-softplus(math.log(eps2) + log_t2))


@functools.lru_cache(maxsize=1024)  # one per rate drawn: ~0.15 MB each at a training crop's length
def _short_sinc_response(sample_rate: int, nyquist_hz: float, n_fft: int, device: torch.device,
                         dtype: torch.dtype) -> torch.Tensor:
    """Response at the rfft bins of ``n_fft`` of the ``sinc`` family's filter through a rate whose Nyquist is
    ``nyquist_hz`` (:func:`specsr.audio.short_sinc_filter` at ``sample_rate``, cut to fit ``n_fft``),
    normalised to 1 at DC. Cached: never modify the result in place."""
    taps = torch.from_numpy(short_sinc_filter(sample_rate, nyquist_hz))
    centre = len(taps) // 2
    half = min(centre, n_fft // 2 - 1)
    return _zero_phase_response(taps[centre - half:centre + half + 1], n_fft, device, dtype)


def _zero_phase_response(taps: torch.Tensor, n_fft: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The real rfft ``[n_fft // 2 + 1]`` of symmetric FIR ``taps`` ``[2·half + 1]`` (float64) centred on sample 0,
    normalised to 1 at DC."""
    half = len(taps) // 2
    taps = (taps / taps.sum()).to(device=device, dtype=dtype)
    circular = torch.zeros(n_fft, device=device, dtype=dtype)
    circular[: half + 1] = taps[half:]
    circular[n_fft - half:] = taps[:half]
    return torch.fft.rfft(circular).real  # zero phase: a real response


@functools.lru_cache(maxsize=1024)  # one per (family, rate) drawn: ~0.15 MB each at a training crop's length
def _sinc_response(sample_rate: int, cutoff_hz: float, half_seconds: float, beta: float, n_fft: int,
                   device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Response at the rfft bins of ``n_fft`` of a Kaiser-windowed sinc lowpass at ``cutoff_hz`` whose window
    reaches ``half_seconds`` either side, normalised to 1 at DC: the anti-aliasing filter of a pass through a
    lower rate, as it acts at ``sample_rate``. Cached: never modify the result in place."""
    half = min(int(math.floor(half_seconds * sample_rate)), n_fft // 2 - 1)
    n = torch.arange(-half, half + 1, device=device, dtype=torch.float64)
    t = n / (half_seconds * sample_rate)
    window = torch.special.i0(beta * torch.sqrt((1 - t**2).clamp_min(0.0))) / torch.special.i0(
        torch.tensor(beta, dtype=torch.float64))
    return _zero_phase_response(torch.sinc(2 * cutoff_hz / sample_rate * n) * window, n_fft, device, dtype)


def _shelf_response(freqs: torch.Tensor, cutoff_hz: float, shelf_db: float) -> torch.Tensor:
    """1 below the cutoff's transition, ``shelf_db`` down above it, a raised-cosine (in dB) between."""
    lo = cutoff_hz - SHELF_WIDTH_HZ / 2
    ramp = ((freqs - lo) / SHELF_WIDTH_HZ).clamp(0.0, 1.0)
    return 10 ** (-shelf_db * 0.5 * (1 - torch.cos(math.pi * ramp)) / 20)


def chain_response(d: Degradation, sample_rate: int, n_fft: int, device: torch.device | str | None = None,
                   dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The zero-phase magnitude of ``d``'s filter chain (as :func:`band_limit` applies it) at the
    ``n_fft // 2 + 1`` rfft bins of ``n_fft`` samples at ``sample_rate``: ``[n_fft // 2 + 1]`` of ``dtype``
    (float32 ends the stop band in rounding, near -140 dB)."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    freqs = torch.fft.rfftfreq(n_fft, 1.0 / sample_rate, dtype=dtype, device=dev)
    if d.filter == SHELF:
        return _shelf_response(freqs, d.cutoff_hz, d.shelf_db)
    through = min(d.sr_in, sample_rate)
    cutoff = min(d.cutoff_hz, through / 2)
    gain = torch.ones_like(freqs)
    if d.filter in IIR_FAMILIES:
        gain = _iir_response(freqs, sample_rate, cutoff, d.filter, d.order)
    elif cutoff < through / 2 - 1 and d.filter != SINC:
        gain = _iir_response(freqs, sample_rate, cutoff, "cheby1", 8)
    if through < sample_rate:
        if d.filter == SINC:
            return gain * _short_sinc_response(sample_rate, through / 2, n_fft, dev, dtype).square()
        if d.filter == "soxr":
            centre, half_zeros, beta = SOXR_CENTRE, SOXR_HALF_ZEROS, SOXR_BETA
        else:
            centre, half_zeros, beta = POLY_CENTRE, POLY_HALF_ZEROS, POLY_BETA
        fir = _sinc_response(sample_rate, centre * through / 2, half_zeros / through, beta, n_fft, dev, dtype)
        gain = gain * fir.square()  # down, then up again: the filter acts twice
    return gain


def fast_length(n: int) -> int:
    """The smallest length >= ``n`` whose only prime factors are 2, 3 and 5 (a fast FFT size)."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def _noise_spectrum(n_fft: int, sample_rate: int, draws: list[Degradation], generator: torch.Generator,
                    device: torch.device) -> torch.Tensor:
    """The rfft ``[B, n_fft // 2 + 1]`` of each row's noise floor: white or pink (-3 dB per octave above 20 Hz),
    at its RMS (by Parseval, over the ``n_fft`` samples), none at DC; zero for a row without one."""
    b, k = len(draws), n_fft // 2 + 1
    spec = torch.randn(b, k, 2, generator=generator, device=device)
    spec = torch.view_as_complex(spec)
    freqs = torch.fft.rfftfreq(n_fft, 1.0 / sample_rate, device=device).clamp_min(20.0)
    pink = torch.tensor([d.noise_colour == "pink" for d in draws], device=device)
    tilt = torch.where(pink[:, None], (freqs / 20.0).rsqrt()[None], torch.ones_like(freqs)[None])
    tilt[:, 0] = 0.0
    spec = spec * tilt
    weight = torch.full((k,), 2.0, device=device)
    weight[0] = 1.0
    if n_fft % 2 == 0:
        weight[-1] = 1.0
    mean_square = (spec.abs().square() * weight).sum(dim=-1) / n_fft**2
    level = torch.tensor([0.0 if d.noise_db is None else 10 ** (d.noise_db / 20) for d in draws], device=device)
    return spec * (level / mean_square.sqrt().clamp_min(1e-30))[:, None]


def degrade_batch(wav: torch.Tensor, sample_rate: int, draws: list[Degradation],
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Degrade a batch ``wav`` ``[B, L]`` (float32, any device) by one draw per row: ``(low, target)``, both
    ``[B, L]``. The target is the gained signal plus its noise floor; the low one is the target through the
    chain's response, applied to the whole row in the frequency domain (on a fast FFT length >= L, zero-padded;
    circular: keep the rows' first and last few thousand samples out of use). ``generator`` (on ``wav``'s
    device) draws the noise. Three FFTs a row: the signal's, the target's and the low one's inverse."""
    if wav.ndim != 2 or wav.shape[0] != len(draws):
        raise SpecsrError(f"degrade_batch needs wav [B, L] and B draws, got {tuple(wav.shape)} and {len(draws)}")
    n = wav.shape[-1]
    # a sinc row's images fold about its rate's Nyquist: an FFT length on which that is a whole bin
    sinc_rows = [i for i, d in enumerate(draws) if d.filter == SINC and d.sr_in < sample_rate]
    step = math.lcm(1, *(sample_rate // math.gcd(sample_rate, draws[i].sr_in) for i in sinc_rows))
    n_fft = step * fast_length(-(-n // step))
    gain = torch.tensor([10 ** (d.gain_db / 20) for d in draws], device=wav.device, dtype=wav.dtype)
    spec = torch.fft.rfft(wav, n=n_fft, dim=-1)
    if any(d.noise_db is not None for d in draws):
        spec = spec + _noise_spectrum(n_fft, sample_rate, draws, generator or torch.Generator(wav.device),
                                      wav.device)
    spec = spec * gain[:, None]
    response = torch.stack([chain_response(d, sample_rate, n_fft, wav.device, dtype=wav.dtype) for d in draws])
    target = torch.fft.irfft(spec, n_fft, dim=-1)[:, :n]
    low_spec = spec * response
    for i in sinc_rows:
        low_spec[i] += _sinc_images(spec[i], sample_rate, draws[i].sr_in, n_fft)
    low = torch.fft.irfft(low_spec, n_fft, dim=-1)[:, :n]
    return low, target


def _sinc_images(spec: torch.Tensor, sample_rate: int, sr_in: int, n_fft: int) -> torch.Tensor:
    """What a ``sinc`` pass through ``sr_in`` folds back about its Nyquist: ``h(f)·h(sr_in − f)·X*(sr_in − f)``
    for the rfft ``spec`` ``[K]`` of ``n_fft`` samples (``sr_in · n_fft / sample_rate`` a whole bin); the
    short filter leaves the further images below -90 dB. ``[K]`` complex."""
    h = _short_sinc_response(sample_rate, sr_in / 2, n_fft, spec.device, spec.real.dtype)
    k_fold = sr_in * n_fft // sample_rate
    k = torch.arange(spec.shape[-1], device=spec.device)
    mirror = k_fold - k
    valid = (mirror >= 0) & (mirror < spec.shape[-1])
    m = mirror.clamp(0, spec.shape[-1] - 1)
    return torch.where(valid, h * h[m] * spec[m].conj(), torch.zeros_like(spec))


def family_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """Expand ``mix`` (all reference families) and check the names; one-line error for an unknown one."""
    out: list[str] = []
    for name in names:
        for fam in FILTER_FAMILIES if name == "mix" else (name,):
            if fam not in FILTER_FAMILIES:
                raise SpecsrError(f"unknown filter {fam!r}; choose mix or from {', '.join(FILTER_FAMILIES)}")
            if fam not in out:
                out.append(fam)
    if not out:
        raise SpecsrError("no degradation filter given")
    return tuple(out)


def _uniform(generator: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=generator, dtype=torch.float64))


def _choice(generator: torch.Generator, options: tuple) -> object:
    return options[int(torch.randint(len(options), (), generator=generator))]


def draw_degradations(cfg: DegradeConfig, n: int, generator: torch.Generator, *, min_cutoff_hz: float,
                      max_cutoff_hz: float, sample_rate: int, gain_db_range: tuple[float, ...] = (0.0, 0.0)
                      ) -> list[Degradation]:
    """``n`` fresh degradations (see :class:`~specsr.config.DegradeConfig`) with cutoffs in
    ``[min_cutoff_hz, max_cutoff_hz]``, drawn from the CPU ``generator`` (the same draws for the same state)."""
    families = family_names(cfg.families)
    lo, hi = min_cutoff_hz, min(max_cutoff_hz, sample_rate / 2)
    rates = tuple(r for r in cfg.rates if lo <= r / 2 <= hi and r < sample_rate)
    shelf = (max(lo, cfg.shelf_hz[0]), min(hi, cfg.shelf_hz[1]))
    draws = []
    for _ in range(n):
        shelf_db = 0.0
        if cfg.shelf_prob > 0 and shelf[0] <= shelf[1] and _uniform(generator, 0, 1) < cfg.shelf_prob:
            family, order = SHELF, 0
            cutoff = _uniform(generator, *shelf)
            sr_in = _rate_for_cutoff(cutoff, sample_rate)
            shelf_db = _uniform(generator, *cfg.shelf_db)
        else:
            if rates and _uniform(generator, 0, 1) < cfg.rate_prob:
                sr_in = int(_choice(generator, rates))  # type: ignore[call-overload]
            else:
                sr_in = _rate_for_cutoff(_uniform(generator, lo, hi), sample_rate)
            cutoff = sr_in / 2
            family = str(_choice(generator, families))
            order = 8
            if family in IIR_FAMILIES:
                order = int(torch.randint(cfg.iir_order[0], cfg.iir_order[1] + 1, (), generator=generator))
                cutoff = max(lo, cutoff * (1 - _uniform(generator, 0, cfg.cutoff_jitter)))
            elif family == SINC:
                cutoff = max(lo, cutoff * _uniform(generator, *SINC_CUTOFF_FRACTION))
        noise_db, colour = None, "white"
        if cfg.noise_prob > 0 and _uniform(generator, 0, 1) < cfg.noise_prob:
            noise_db = _uniform(generator, *cfg.noise_floor_db)
            colour = "pink" if _uniform(generator, 0, 1) < 0.5 else "white"
        gain_db = _uniform(generator, float(gain_db_range[0]), float(gain_db_range[-1]))
        draws.append(Degradation(sr_in=sr_in, cutoff_hz=float(cutoff), filter=family, order=order,
                                 shelf_db=shelf_db, noise_db=noise_db, noise_colour=colour, gain_db=gain_db))
    return draws
