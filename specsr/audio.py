"""Audio I/O on soundfile (whole files and streams), and band-limited resampling with an exact length contract.

Waveforms are float32 numpy arrays shaped ``[C, T]`` (channels first). Writing is atomic: the
file appears under its final name only once it is complete, so an interrupted run never leaves a
half-written file behind. Long files are read and written as streams of blocks ``[C, n]``
(:func:`resampled_blocks`, :func:`write_stream`), so memory does not grow with their length.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf

from specsr.errors import SpecsrError
from specsr.utils import atomic_output, atomic_write, check_output_path

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".caf", ".w64", ".rf64", ".mp3", ".opus")

# Formats we write, by extension; PCM_FORMATS take any PCM/float subtype, LOSSY_FORMATS one codec each
# (written where this machine's libsndfile has it: MP3 needs libsndfile ≥ 1.1).
PCM_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".aiff": "AIFF", ".aif": "AIFF", ".w64": "W64"}
LOSSY_FORMATS = {".ogg": ("OGG", "VORBIS"), ".opus": ("OGG", "OPUS"), ".mp3": ("MP3", "MPEG_LAYER_III")}
WRITE_FORMATS = {**PCM_FORMATS, **{ext: fmt for ext, (fmt, _codec) in LOSSY_FORMATS.items()}}
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")

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


def output_subtype(input_subtype: str | None, ext: str, *, float_output: bool = False) -> str:
    """A sensible output subtype for an input subtype: keep the bit depth where the format allows (a lossy
    format's codec for a lossy format); ``FLOAT`` when ``float_output``."""
    if float_output:
        return "FLOAT"
    if ext.lower() in LOSSY_FORMATS:
        return LOSSY_FORMATS[ext.lower()][1]
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
        names = ", ".join(sorted(WRITE_FORMATS if formats is None else formats))
        raise SpecsrError(f"{p}: cannot write {p.suffix or 'extension-less'} files; the extension names the "
                          f"format: {names}")
    return fmt


COMPRESSED_FORMATS = ("FLAC", "OGG", "MP3")  # the formats that take a compression level


def check_writable(p: Path, subtype: str, sample_rate: int, compression_level: float | None = None) -> str:
    """The format of ``p`` by extension, checked before any work: this machine's libsndfile can write it with
    ``subtype`` at ``sample_rate`` (Opus takes 8, 12, 16, 24 and 48 kHz only), and with a compression
    level only where the format has one."""
    fmt = output_format(p)
    if compression_level is not None and fmt not in COMPRESSED_FORMATS:
        raise SpecsrError(f"{p}: a compression level applies to FLAC, OGG (Vorbis, Opus) and MP3, not {fmt}")
    if not sf.check_format(fmt, subtype):
        codec = LOSSY_FORMATS.get(p.suffix.lower())
        if codec is not None and subtype == codec[1]:
            raise SpecsrError(f"{p}: this machine's libsndfile ({sf.__libsndfile_version__}) cannot write "
                              f"{codec[1]} in {fmt}; use .wav or .flac")
        raise SpecsrError(f"{p}: subtype {subtype} is not possible in {fmt} files "
                          f"(possible: {', '.join(sf.available_subtypes(fmt))})")
    if subtype == "OPUS" and sample_rate not in (8000, 12000, 16000, 24000, 48000):
        raise SpecsrError(f"{p}: Opus takes 8, 12, 16, 24 or 48 kHz, not {sample_rate} Hz")
    return fmt


def resampled_length(n_samples: int, sr_in: int, sr_out: int) -> int:
    """The length contract: ``round(n_samples · sr_out / sr_in)`` (exact, in rational arithmetic)."""
    return int(round(Fraction(n_samples * sr_out, sr_in)))


RESAMPLE_METHODS = ("soxr", "resample_poly", "passband", "sinc")


def resample(wav: np.ndarray, sr_in: int, sr_out: int, *, method: str = "soxr") -> np.ndarray:
    """Band-limited resampling of ``[..., T]`` to exactly ``resampled_length(T, sr_in, sr_out)`` samples.

    ``method``: ``soxr`` (soxr VHQ, default), ``resample_poly`` (scipy polyphase, Kaiser window, stopband
    from the lower Nyquist on), ``passband`` (upsampling only: polyphase whose passband reaches the
    input's Nyquist, see :func:`upsample_filter`) or ``sinc`` (the short Hann-windowed sinc of machine-learning
    toolkits' default resamplers, see :func:`short_sinc_filter`: a wide roll-off around the lower Nyquist).
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
    elif method in ("resample_poly", "sinc"):  # scipy's polyphase resampler, with one of two lowpass filters
        from scipy.signal import resample_poly

        frac = Fraction(sr_out, sr_in)
        taps = (_polyphase_filter(max(frac.numerator, frac.denominator)) if method == "resample_poly"
                else short_sinc_filter(sr_in * frac.numerator, min(sr_in, sr_out) / 2))
        out = resample_poly(wav.reshape(-1, n_in), frac.numerator, frac.denominator, axis=-1, window=taps)
    elif method == "passband":
        out = _PassbandStream(n_in, sr_in, sr_out).whole(wav.reshape(-1, n_in))
    else:
        raise SpecsrError(f"unknown resampling method {method!r}; use {', '.join(RESAMPLE_METHODS)}")
    out = _fix_length(np.asarray(out, dtype=np.float32), n_out)
    return out.reshape(wav.shape[:-1] + (n_out,))


def kaiser_lowpass(attenuation_db: float, width: float, cutoff: float) -> np.ndarray:
    """Kaiser-window FIR lowpass, odd length, unit gain at DC: ``scipy.signal.firwin(kaiserord(...))`` in numpy.

    ``width`` (transition) and ``cutoff`` as fractions of the Nyquist. The same taps as scipy's design (Kaiser's
    length and beta formulas, a windowed sinc scaled to unit DC gain; a test compares them), without importing
    ``scipy.signal``, which costs ``specsr upsample`` 0.6 s of start-up.
    """
    a = abs(attenuation_db)
    if a > 50:
        beta = 0.1102 * (a - 8.7)
    elif a > 21:
        beta = 0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21)
    else:
        beta = 0.0
    numtaps = int(np.ceil((a - 7.95) / 2.285 / (np.pi * width) + 1)) | 1
    m = np.arange(numtaps) - 0.5 * (numtaps - 1)
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(numtaps, beta)
    return h / h.sum()


POLYPHASE_ATTENUATION_DB = 80.0  # resample_poly's filter: stop-band depth
POLYPHASE_TRANSITION = 0.02  # and transition width, as a fraction of the lower Nyquist


@functools.lru_cache(maxsize=32)
def _polyphase_filter(max_ratio: int, attenuation_db: float = POLYPHASE_ATTENUATION_DB,
                      transition: float = POLYPHASE_TRANSITION) -> np.ndarray:
    """Kaiser-window lowpass for ``resample_poly`` whose stopband starts at the lower Nyquist.

    scipy's default filter is only half-amplitude at Nyquist and -50 dB beyond; this one leaves
    less than -``attenuation_db`` above it, at the cost of a passband ending ``transition`` earlier.
    """
    return kaiser_lowpass(attenuation_db, transition / max_ratio, (1.0 - transition / 2) / max_ratio)


SHORT_SINC_ZEROS = 6  # zero crossings either side of the short sinc (torchaudio's lowpass_filter_width)
SHORT_SINC_ROLLOFF = 0.99  # its cutoff, as a fraction of the lower Nyquist


@functools.lru_cache(maxsize=32)
def short_sinc_filter(rate_hz: int, nyquist_hz: float, rolloff: float = SHORT_SINC_ROLLOFF,
                      zeros: int = SHORT_SINC_ZEROS) -> np.ndarray:
    """The lowpass of the resamplers most machine-learning code uses by default (torchaudio's
    ``resample``: a Hann-windowed sinc at ``rolloff`` × the lower Nyquist ``nyquist_hz`` with ``zeros``
    zero crossings either side), as FIR taps at ``rate_hz`` with unit DC gain. Short, so its roll-off is
    wide: down and up again through a rate, white noise comes out 1.8 dB down at 0.83 × the Nyquist, 10 dB
    at it and 24 dB at 1.17 × (mostly images of the band below), next to nothing from 1.4 × on. Audio
    resampled this way, e.g. the papers' demo inputs, looks like that."""
    cutoff = rolloff * nyquist_hz
    half = int(np.floor(zeros * rate_hz / (2 * cutoff)))
    x = 2 * cutoff * np.arange(-half, half + 1) / rate_hz  # in zero crossings
    taps = np.sinc(x) * np.where(np.abs(x) <= zeros, np.cos(np.pi * x / (2 * zeros)) ** 2, 0.0)
    return taps / taps.sum()


@functools.lru_cache(maxsize=32)
def upsample_filter(up: int, attenuation_db: float = 80.0, transition: float = 0.05) -> np.ndarray:
    """Kaiser-window lowpass for upsampling by ``up`` whose passband reaches the input's Nyquist.

    An anti-imaging filter must end before the input's Nyquist, so the top few percent of the input's
    band come out attenuated (soxr VHQ: -30 dB at 0.975 × Nyquist), and specsr would keep that notch
    "exactly" below the seam. This one is flat (< 0.001 dB) up to the input's Nyquist and reaches
    -``attenuation_db`` at ``(1 + transition)`` × Nyquist: the attenuated images in between lie in the
    band the model replaces.
    """
    return kaiser_lowpass(attenuation_db, transition / up, (1.0 + transition / 2) / up)


class _PassbandStream:
    """Polyphase upsampling with :func:`upsample_filter`, whole or block by block with the same numbers.

    Output ``j`` is ``Σ_k x[k]·up·h[j·down + half − k·up]`` (``half = (len(h) − 1) / 2``: the filter centred, as
    ``scipy.signal.resample_poly`` places it), computed as one strided float32 ``conv1d`` whose ``up`` output
    channels are the filter's phases (5.6× faster than ``resample_poly`` for 16 → 48 kHz on two threads). Output
    blocks start on multiples of ``up``, so every block uses the same phase kernels, and each is computed from
    the input it needs plus the filter's reach on both sides: blocks equal the whole signal's output exactly
    (:meth:`whole` is the same blocks).
    """

    def __init__(self, n_in: int, sr_in: int, sr_out: int, block_out: int = 1 << 16) -> None:
        frac = Fraction(sr_out, sr_in)
        self.up, self.down = frac.numerator, frac.denominator
        if self.up <= self.down:
            raise SpecsrError(f"passband resampling is for upsampling, not {sr_in} -> {sr_out} Hz")
        self.h = upsample_filter(self.up)
        reach = len(self.h) // (2 * self.up) + 2  # input samples the filter spans on each side
        self.context = -(-reach // self.down) * self.down
        self.n_in, self.n_out = n_in, resampled_length(n_in, sr_in, sr_out)
        self.block_out = max(1, block_out // self.up) * self.up
        self.half = (len(self.h) - 1) // 2
        self.taps = -(-len(self.h) // self.up)  # taps per phase
        self.weight = self._phase_kernels()

    def _phase_kernels(self) -> np.ndarray:
        """``[up, 1, K]`` float32: output ``j0 + c + up·m`` (``j0`` a multiple of ``up``) is the correlation of
        kernel ``c`` with the input from ``(j0·down + half) // up − (taps − 1) + m·down`` on."""
        up, down, taps = self.up, self.down, self.taps
        h = np.zeros(taps * up)
        h[:len(self.h)] = self.h * up
        base = [(c * down + self.half) // up for c in range(up)]  # input index of phase c's first tap
        kernel = np.zeros((up, 1, base[-1] - base[0] + taps), np.float32)
        for c in range(up):
            phase = h[(c * down + self.half) % up::up]  # taps t = 0.. multiply x[base − t]
            start = base[c] - base[0]
            kernel[c, 0, start:start + taps] = phase[::-1]
        return kernel

    def _outputs(self, x: np.ndarray, x_start: int, j0: int, j1: int) -> np.ndarray:
        """Outputs ``[j0, j1)`` (``j0`` a multiple of ``up``) from the input ``x`` ``[C, n]`` that starts at input
        sample ``x_start``."""
        import torch

        lo = (j0 * self.down + self.half) // self.up - (self.taps - 1)  # the first input the kernels read
        n_m = -(-(j1 - j0) // self.up)
        span = (n_m - 1) * self.down + self.weight.shape[-1]
        seg = np.zeros((x.shape[0], span), np.float32)  # zero outside the signal
        s0, s1 = max(0, lo), min(self.n_in, lo + span)
        if s1 > s0:
            seg[:, s0 - lo:s1 - lo] = x[:, s0 - x_start:s1 - x_start]
        with torch.inference_mode():
            y = torch.nn.functional.conv1d(torch.from_numpy(seg)[:, None], torch.from_numpy(self.weight),
                                           stride=self.down)  # [C, up, n_m]
        return y.transpose(1, 2).reshape(x.shape[0], -1)[:, :j1 - j0].numpy()

    def whole(self, x: np.ndarray) -> np.ndarray:
        """All ``n_out`` outputs of ``x`` ``[C, n_in]`` (the blocks of :meth:`blocks`, joined)."""
        x = np.asarray(x, np.float32)
        parts = list(self.blocks([x]))
        return np.concatenate(parts, axis=1) if parts else np.zeros((x.shape[0], 0), np.float32)

    def blocks(self, source: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Output blocks ``[C, m]`` from input blocks ``[C, n]`` (``n_in`` samples in all)."""
        buf: np.ndarray | None = None
        buf_start = received = 0
        j0 = 0
        source = iter(source)
        while j0 < self.n_out:
            j1 = min(self.n_out, j0 + self.block_out)
            need = min(self.n_in, -(-j1 * self.down // self.up) + self.context)
            while received < need:
                block = next(source, None)
                if block is None:
                    raise SpecsrError(f"the input stream ended after {received} of {self.n_in} samples")
                block = np.asarray(block, np.float32)
                buf = block if buf is None else np.concatenate([buf, block], axis=1)
                received += block.shape[1]
            if buf is None:  # n_in == 0: nothing to produce
                return
            yield self._outputs(buf, buf_start, j0, j1)
            keep_from = max(0, j1 * self.down // self.up - self.context)  # what the next block needs
            if keep_from > buf_start:
                buf = buf[:, keep_from - buf_start:]
                buf_start = keep_from
            j0 = j1


def model_resampling(sr_in: int, sr_out: int) -> str:
    """How the pipeline brings audio to the model's rate: ``passband`` up (the input's band stays whole up
    to its Nyquist), soxr VHQ down (an anti-aliasing filter is what downsampling needs)."""
    return "passband" if sr_in < sr_out else "soxr"


def _fix_length(x: np.ndarray, n: int) -> np.ndarray:
    if x.shape[-1] > n:
        return x[..., :n]
    if x.shape[-1] < n:
        pad = [(0, 0)] * (x.ndim - 1) + [(0, n - x.shape[-1])]
        return np.pad(x, pad)
    return x


def find_audio_files(root: str | os.PathLike, extensions: tuple[str, ...] = AUDIO_EXTENSIONS) -> list[Path]:
    """All audio files below ``root`` (recursive, sorted), by extension."""
    root = Path(root)
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in extensions
                  and not p.name.startswith("."))


# ---------------------------------------------------------------------------------------- ffmpeg

# Containers libsndfile does not read: decoded through ffmpeg when it is installed.
FFMPEG_EXTENSIONS = (".m4a", ".m4b", ".aac", ".mp4", ".mov", ".wma", ".webm", ".mka", ".mkv", ".amr", ".3gp",
                     ".ac3", ".ape", ".wv")


def needs_ffmpeg(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in FFMPEG_EXTENSIONS


@contextlib.contextmanager
def decoded_by_ffmpeg(path: str | os.PathLike) -> Iterator[Path]:
    """``path`` decoded by ffmpeg to a temporary 32-bit float W64 file (its own rate and channels), removed
    afterwards. A clear error when ffmpeg is not installed or cannot decode the file."""
    import shutil
    import subprocess
    import tempfile

    src = Path(path)
    if not src.is_file():
        raise SpecsrError(f"{src}: no such file")
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise SpecsrError(f"{src}: {src.suffix} files are read through ffmpeg, which is not installed "
                          "(Debian/Ubuntu: apt-get install ffmpeg; macOS: brew install ffmpeg)")
    folder = Path(tempfile.mkdtemp(prefix=".specsr-decode."))
    out = folder / (src.stem + ".w64")
    try:
        done = subprocess.run([exe, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(src), "-vn",
                               "-map", "0:a:0", "-c:a", "pcm_f32le", "-f", "w64", str(out)],
                              capture_output=True, text=True)
        if done.returncode != 0 or not out.exists():
            why = (done.stderr.strip().splitlines() or ["no audio stream"])[-1]
            raise SpecsrError(f"{src}: ffmpeg could not decode it ({why[:200]})")
        yield out
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------------------------- streams


def read_excerpts(path: str | os.PathLike, info: AudioInfo, *, n_excerpts: int = 60, excerpt_seconds: float = 1.0,
                  whole_below_seconds: float = 120.0) -> np.ndarray:
    """``[C, T']``: the whole file when shorter than ``whole_below_seconds``, else ``n_excerpts`` faded
    excerpts spread evenly over it with short gaps (to measure a long file's spectrum in bounded memory)."""
    if info.seconds <= whole_below_seconds:
        wav, _ = read_audio(path)
        return wav
    sr = info.sample_rate
    n = int(excerpt_seconds * sr)
    fade = np.hanning(2 * max(1, n // 10))
    taper = np.ones(n, np.float32)
    taper[:len(fade) // 2] = fade[:len(fade) // 2]
    taper[n - len(fade) // 2:] = fade[len(fade) // 2:]
    gap = np.zeros((info.channels, n // 20), np.float32)
    parts = []
    for start in np.linspace(0, info.n_frames - n, n_excerpts).astype(int):
        wav, _ = read_audio(path, start=int(start), stop=int(start) + n)
        parts += [wav * taper[:wav.shape[1]], gap]
    return np.concatenate(parts, axis=1)


def read_blocks(path: str | os.PathLike, info: AudioInfo, block_frames: int = 1 << 16) -> Iterator[np.ndarray]:
    """Stream a file as float32 blocks ``[C, n]`` (``info.n_frames`` samples in all), with the checks of
    :func:`read_audio`."""
    read = 0
    try:
        fh = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise SpecsrError(f"{path}: not a readable audio file ({exc})") from None
    with fh:
        while read < info.n_frames:
            try:
                data = fh.read(min(block_frames, info.n_frames - read), dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise SpecsrError(f"{path}: read error after {read} samples ({exc})") from None
            if len(data) == 0:
                raise SpecsrError(f"{path}: the file ends after {read} of {info.n_frames} samples (truncated?)")
            if not np.isfinite(data).all():
                raise SpecsrError(f"{path}: contains NaN or infinite samples")
            read += len(data)
            yield np.ascontiguousarray(data.T)


def resampled_blocks(path: str | os.PathLike, info: AudioInfo, sr_out: int, *, method: str = "soxr",
                     block_frames: int = 1 << 16) -> Iterator[np.ndarray]:
    """Stream a file resampled to ``sr_out`` as blocks ``[C, n]``, exactly ``resampled_length`` samples in all,
    equal to :func:`resample` of the whole file for ``passband`` (soxr's stream differs from its one-shot
    call by rounding)."""
    n_out = resampled_length(info.n_frames, info.sample_rate, sr_out)
    blocks = read_blocks(path, info, block_frames)
    if info.sample_rate == sr_out:
        yield from blocks
        return
    if method == "passband":
        yield from _PassbandStream(info.n_frames, info.sample_rate, sr_out).blocks(blocks)
        return
    if method != "soxr":
        raise SpecsrError(f"streamed resampling is soxr or passband, not {method!r}")
    yield from _soxr_stream(blocks, info.sample_rate, sr_out, info.channels, n_out)


def _soxr_stream(blocks: Iterable[np.ndarray], sr_from: int, sr_to: int, n_channels: int,
                 n_total: int) -> Iterator[np.ndarray]:
    """Blocks ``[C, n]`` at ``sr_from`` resampled to ``sr_to`` by a soxr VHQ stream, cut or padded to exactly
    ``n_total`` samples. Blocks of the same sizes come out in blocks of the same sizes."""
    import soxr

    stream = soxr.ResampleStream(sr_from, sr_to, n_channels, dtype="float32", quality="VHQ")
    emitted = 0
    it = iter(blocks)
    nxt = next(it, None)
    while nxt is not None:
        block, nxt = nxt, next(it, None)
        out = stream.resample_chunk(np.ascontiguousarray(block.T, dtype=np.float32), last=nxt is None)
        take = min(len(out), n_total - emitted)
        if take > 0:
            emitted += take
            yield np.ascontiguousarray(out[:take].T)
    if emitted < n_total:
        yield np.zeros((n_channels, n_total - emitted), np.float32)


def write_stream(dst: str | os.PathLike, blocks: Iterable[np.ndarray], sample_rate: int, n_channels: int, fmt: str,
                 subtype: str, overwrite: bool, compression_level: float | None = None) -> None:
    """Write blocks ``[C, n]`` to ``dst`` atomically (:func:`specsr.utils.atomic_output`), refusing non-finite
    samples. Integer subtypes clip at full scale: keep them below it first (:mod:`specsr.limiter`).
    ``compression_level`` (0-1, FLAC and the lossy codecs): 0 is the largest file and best quality."""
    dst = Path(dst)
    with atomic_output(dst, overwrite=overwrite) as tmp, \
            sf.SoundFile(str(tmp), "w", sample_rate, n_channels, subtype=subtype, format=fmt,
                         compression_level=compression_level) as fh:
        for block in blocks:
            if block.shape[1]:
                if not np.isfinite(block).all():
                    raise SpecsrError(f"{dst}: the output has non-finite samples (a broken model?)")
                fh.write(block.T)


def resample_pairs(pairs: Iterable[tuple[np.ndarray, np.ndarray]], sr_from: int, sr_to: int, n_channels: int,
                   n_total: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Blocks of ``(output, its input-band part)`` ``[C, n]`` at ``sr_from`` resampled to ``sr_to`` (soxr VHQ,
    flat to about 0.95 of the lower Nyquist), both alike, cut or padded to exactly ``n_total`` samples."""
    import itertools

    fulls, lows = itertools.tee(pairs)  # consumed in step: the two streams' blocks have the same sizes
    return zip(_soxr_stream((f for f, _ in fulls), sr_from, sr_to, n_channels, n_total),
               _soxr_stream((low for _, low in lows), sr_from, sr_to, n_channels, n_total), strict=True)
