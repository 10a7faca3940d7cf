"""Audio I/O on soundfile, and band-limited resampling with an exact length contract.

Waveforms are float32 numpy arrays shaped ``[C, T]`` (channels first). Writing is atomic: the
file appears under its final name only once it is complete, so an interrupted run never leaves a
half-written file behind.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf

from specsr.errors import SpecsrError
from specsr.utils import atomic_write, check_output_path

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".caf", ".w64", ".rf64", ".mp3", ".opus")

# Formats we write, by extension; PCM_FORMATS take any PCM/float subtype (streamed outputs use them).
PCM_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".aiff": "AIFF", ".aif": "AIFF", ".w64": "W64"}
WRITE_FORMATS = {**PCM_FORMATS, ".ogg": "OGG"}

# soundfile subtypes we pick for output by default, per input subtype.
_SUBTYPE_FOR_OUTPUT = {"PCM_U8": "PCM_16", "PCM_S8": "PCM_16", "FLOAT": "FLOAT", "DOUBLE": "FLOAT",
                       "PCM_24": "PCM_24", "PCM_32": "PCM_24"}


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, without reading the samples."""

    path: str
    sample_rate: int
    channels: int
    n_frames: int
    subtype: str
    format: str

    @property
    def seconds(self) -> float:
        return self.n_frames / self.sample_rate if self.sample_rate else 0.0


def _check_readable(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise SpecsrError(f"{p}: no such file")
    if p.is_dir():
        raise SpecsrError(f"{p}: is a directory, expected an audio file")
    return p


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Header of an audio file. Raises ``SpecsrError`` for anything libsndfile cannot read."""
    p = _check_readable(path)
    try:
        info = sf.info(str(p))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise SpecsrError(f"{p}: not a readable audio file ({_short(exc)})") from None
    return AudioInfo(str(p), int(info.samplerate), int(info.channels), int(info.frames), info.subtype, info.format)


def _short(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__


def read_audio(path: str | os.PathLike, *, allow_empty: bool = False,
               start: int = 0, stop: int | None = None) -> tuple[np.ndarray, int]:
    """Read ``path`` as float32 ``[C, T]`` and its sample rate.

    Raises ``SpecsrError`` for a missing, unreadable, truncated or empty file (unless
    ``allow_empty``), and for NaN/inf samples.
    """
    p = _check_readable(path)
    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True, start=start, stop=stop)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise SpecsrError(f"{p}: not a readable audio file ({_short(exc)})") from None
    wav = np.ascontiguousarray(data.T)
    if wav.shape[1] == 0 and not allow_empty:
        raise SpecsrError(f"{p}: the file holds no samples")
    if not np.isfinite(wav).all():
        raise SpecsrError(f"{p}: contains NaN or infinite samples")
    return wav, int(sr)


def output_subtype(input_subtype: str | None, ext: str) -> str:
    """A sensible output subtype for an input subtype: keep the bit depth where the format allows."""
    sub = _SUBTYPE_FOR_OUTPUT.get(input_subtype or "", "PCM_16")
    if ext.lower() == ".flac" and sub == "FLOAT":
        return "PCM_24"
    return sub


def write_audio(path: str | os.PathLike, wav: np.ndarray, sample_rate: int, *,
                subtype: str | None = None, overwrite: bool = False) -> Path:
    """Write ``wav`` (``[C, T]`` or ``[T]``) atomically: temp file in the same folder, then rename.

    ``subtype`` is a soundfile subtype (``PCM_16``, ``PCM_24``, ``FLOAT`` …); the default is
    ``PCM_16``. Refuses to replace an existing file unless ``overwrite``. Integer subtypes clip at
    full scale: callers decide what to do about clipping before they write.
    """
    p = check_output_path(path, overwrite=overwrite)
    arr = np.asarray(wav, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2:
        raise SpecsrError(f"write_audio expects [C, T] or [T], got shape {arr.shape}")
    fmt = output_format(p)
    subtype = subtype or "PCM_16"
    if not sf.check_format(fmt, subtype):
        raise SpecsrError(f"{p}: subtype {subtype} is not possible in {fmt} files")
    return atomic_write(p, lambda fh: sf.write(fh, arr.T, int(sample_rate), subtype=subtype, format=fmt),
                        binary=True)


def output_format(p: Path, formats: dict[str, str] | None = None) -> str:
    """The soundfile format for writing ``p``, by extension (``formats`` defaults to :data:`WRITE_FORMATS`)."""
    fmt = (WRITE_FORMATS if formats is None else formats).get(p.suffix.lower())
    if fmt is None:
        raise SpecsrError(f"{p}: cannot write {p.suffix or 'extension-less'} files; use .wav or .flac")
    return fmt


def resampled_length(n_samples: int, sr_in: int, sr_out: int) -> int:
    """The length contract: ``round(n_samples · sr_out / sr_in)`` (exact, in rational arithmetic)."""
    return int(round(Fraction(n_samples * sr_out, sr_in)))


def resample(wav: np.ndarray, sr_in: int, sr_out: int, *, method: str = "soxr") -> np.ndarray:
    """Band-limited resampling of ``[..., T]`` to exactly ``resampled_length(T, sr_in, sr_out)`` samples.

    ``method``: ``soxr`` (soxr VHQ, default) or ``resample_poly`` (scipy polyphase, Kaiser window).
    """
    if sr_in <= 0 or sr_out <= 0:
        raise SpecsrError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
    wav = np.asarray(wav, dtype=np.float32)
    n_in = wav.shape[-1]
    n_out = resampled_length(n_in, sr_in, sr_out)
    if sr_in == sr_out:
        return wav.copy()
    if n_in == 0:
        return np.zeros(wav.shape[:-1] + (0,), dtype=np.float32)
    if method == "soxr":
        import soxr

        flat = wav.reshape(-1, n_in)
        out = np.stack([soxr.resample(ch, sr_in, sr_out, quality="VHQ") for ch in flat]) if len(flat) else \
            np.zeros((0, n_out), np.float32)
    elif method == "resample_poly":
        from scipy.signal import resample_poly

        frac = Fraction(sr_out, sr_in)
        flat = wav.reshape(-1, n_in)
        out = resample_poly(flat, frac.numerator, frac.denominator, axis=-1,
                            window=_polyphase_filter(max(frac.numerator, frac.denominator)))
    else:
        raise SpecsrError(f"unknown resampling method {method!r}; use soxr or resample_poly")
    out = _fix_length(np.asarray(out, dtype=np.float32), n_out)
    return out.reshape(wav.shape[:-1] + (n_out,))


@functools.lru_cache(maxsize=32)
def _polyphase_filter(max_ratio: int, attenuation_db: float = 80.0, transition: float = 0.02) -> np.ndarray:
    """Kaiser-window lowpass for ``resample_poly`` whose stopband starts at the lower Nyquist.

    scipy's default filter is only half-amplitude at Nyquist and -50 dB beyond; this one leaves
    less than -``attenuation_db`` above it, at the cost of a passband ending ``transition`` earlier.
    """
    from scipy.signal import firwin, kaiserord

    width = transition / max_ratio
    numtaps, beta = kaiserord(attenuation_db, width)
    numtaps |= 1
    return firwin(numtaps, (1.0 - transition / 2) / max_ratio, window=("kaiser", beta))


def _fix_length(x: np.ndarray, n: int) -> np.ndarray:
    if x.shape[-1] > n:
        return x[..., :n]
    if x.shape[-1] < n:
        pad = [(0, 0)] * (x.ndim - 1) + [(0, n - x.shape[-1])]
        return np.pad(x, pad)
    return x


def find_audio_files(root: str | os.PathLike) -> list[Path]:
    """All audio files below ``root`` (recursive, sorted), by extension."""
    root = Path(root)
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
                  and not p.name.startswith("."))
