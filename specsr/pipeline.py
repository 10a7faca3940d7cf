"""Inference: load a model, upsample arrays or files of any length in bounded memory.

Data flow (DESIGN.md): resample each channel to the model's rate (soxr) → centred STFT →
log-power → U-Net (all channels batched) → predicted magnitude → merge: bins below the cutoff
keep the input's complex STFT exactly, a crossfade of :data:`CROSSFADE_BINS` bins, above it the
predicted magnitude with a reconstructed phase (:mod:`specsr.phase`) → inverse STFT → exactly
``round(T · sr_out / sr_in)`` samples.

Long inputs run in chunks of frames that are exact, not approximate: every stage is local in
time, so a block with enough context on each side gives, in its centre, the same numbers as the
whole file (up to float rounding). See :class:`_ChunkProcessor` for the sketch.

    >>> ups = load_model("path/to/model.pt")
    >>> out, sr_out = ups.upsample(wav, 16000)          # wav: float32 [C, T]
    >>> report = ups.upsample_file("in.wav", "out.wav")
"""

from __future__ import annotations

import copy
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

from specsr.audio import (
    PCM_FORMATS,
    AudioInfo,
    audio_info,
    output_format,
    output_subtype,
    read_audio,
    resample,
    resampled_length,
)
from specsr.checkpoint import LoadedModel, load_checkpoint, unwrap
from specsr.config import ModelConfig
from specsr.cutoff import detect_cutoff
from specsr.errors import SpecsrError
from specsr.models import build_inputs, fuse_batchnorm
from specsr.phase import METHODS, light_cone_frames, reconstruct_frames
from specsr.spectral import cutoff_bin, denormalize, log_power, log_power_to_magnitude, overlap_add
from specsr.spectral import frames as padded_frames
from specsr.utils import check_output_path, resolve_device, temp_path_beside

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
DEFAULT_MODEL = "specsr-unet-48k-v1"
CROSSFADE_BINS = 6  # bins above the cutoff where the input fades into the prediction (≈ 140 Hz at 48k/2048)
PHASE_LOCK_RATIO = 0.1  # near its Nyquist the input keeps its phase where |input| ≥ this × |prediction|
MODEL_FRAME_BUDGET = 2048  # channels × frames per network call: bounds its activations (~1.2 GB peak RSS in all)
SILENT_FRAME_POWER = 1e-12  # summed low-band power under which a frame is digital silence
LONG_FILE_SECONDS = 120.0  # longer files: the cutoff is measured on excerpts, not the whole file
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")
CUTOFF_SOURCES = ("detected", "given", "nominal")


class NothingToAddError(SpecsrError):
    """The input already has content up to the output's Nyquist frequency."""


class UpsampleWarning(UserWarning):
    """Something the user should know about a result (cutoff outside the trained range, …)."""


# --------------------------------------------------------------------------------------- models


@dataclass(frozen=True)
class BundledModel:
    """A model shipped in ``specsr/pretrained/<name>.pt`` (description from ``<name>.json``)."""

    name: str
    path: Path
    description: str


def list_bundled_models() -> list[BundledModel]:
    """The bundled models, sorted by name (empty until one is installed)."""
    if not PRETRAINED_DIR.is_dir():
        return []
    models = []
    for path in sorted(PRETRAINED_DIR.glob("*.pt")):
        description = ""
        meta = path.with_suffix(".json")
        if meta.is_file():
            import json

            try:
                description = str(json.loads(meta.read_text()).get("description", ""))
            except (OSError, ValueError, AttributeError):
                description = ""
        models.append(BundledModel(path.stem, path, description))
    return models


def load_model(name_or_path: str | os.PathLike | None = None, device: str = "auto",
               precision: str = "auto") -> Upsampler:
    """An :class:`Upsampler` for a bundled model name (``None`` or ``"bundled"``: the default one) or a
    checkpoint path."""
    if name_or_path == "bundled":
        name_or_path = None
    if name_or_path is None or (isinstance(name_or_path, str) and name_or_path in
                                {m.name for m in list_bundled_models()} | {DEFAULT_MODEL}):
        bundled = list_bundled_models()
        if not bundled:
            raise SpecsrError("no bundled model is installed; pass --model PATH to a checkpoint made by "
                              "specsr train/export")
        wanted = DEFAULT_MODEL if name_or_path is None else str(name_or_path)
        match = [m for m in bundled if m.name == wanted]
        if not match and name_or_path is None and len(bundled) == 1:
            match = bundled
        if not match:
            names = ", ".join(m.name for m in bundled)
            raise SpecsrError(f"no bundled model named {wanted!r}; bundled: {names}")
        return Upsampler(load_checkpoint(match[0].path), device=device, precision=precision)
    path = Path(name_or_path)
    if not path.exists() and path.suffix == "" and os.sep not in str(name_or_path):
        names = ", ".join(m.name for m in list_bundled_models()) or "none installed"
        raise SpecsrError(f"--model {name_or_path}: no such checkpoint file or bundled model (bundled: {names})")
    return Upsampler(load_checkpoint(path), device=device, precision=precision)


def receptive_field_frames(cfg: ModelConfig) -> int:
    """Half-width, in frames, of the U-Net's receptive field along time (an upper bound).

    Per level ``l ≥ 1`` (stride ``2^l``): pooling ``2^(l−1)``, two 3×3 convs ``2·2^l``, nearest
    upsampling ``2^(l−1)``, the 3×3 conv after it ``2^(l−1)``, the decoder block ``2·2^(l−1)``:
    ``9·2^(l−1)``; plus 2 for the input block. The frequency-mixing layers are pointwise in time.
    """
    levels = len(cfg.channels)
    return 2 + 9 * (2 ** (levels - 1) - 1)


# --------------------------------------------------------------------------------------- report


@dataclass(frozen=True)
class CutoffChoice:
    """Where the prediction takes over, and why."""

    cutoff_hz: float
    source: str  # one of CUTOFF_SOURCES
    silent: bool
    nothing_to_add: bool
    messages: tuple[str, ...]


@dataclass
class UpsampleReport:
    """What :meth:`Upsampler.upsample_file` did."""

    duration_s: float
    sr_in: int
    sr_out: int
    cutoff_hz: float
    cutoff_source: str
    rtf: float
    model_seconds: float
    phase_seconds: float
    peak: float
    scaled_db: float
    subtype: str
    channels: int = 1
    in_path: str = ""
    out_path: str = ""
    copied: bool = False
    messages: list[str] = field(default_factory=list)

    def summary(self) -> str:
        cutoff = f"{self.cutoff_hz / 1000:.2f} kHz ({self.cutoff_source})"
        text = (f"{self.duration_s:.2f} s, {self.channels} ch, {self.sr_in} -> {self.sr_out} Hz, cutoff {cutoff}, "
                f"RTF {self.rtf:.3f} (model {self.model_seconds:.2f} s, phase {self.phase_seconds:.2f} s)")
        if self.copied:
            text += ", full band: copied"
        if self.scaled_db < 0:
            text += f", scaled {self.scaled_db:.1f} dB to avoid clipping"
        return text


@dataclass
class _Timing:
    model_seconds: float = 0.0
    phase_seconds: float = 0.0


# ------------------------------------------------------------------------------------- upsampler


class Upsampler:
    """A loaded model ready to upsample arrays and files to ``sr_out``.

    ``precision``: ``auto`` (bf16 autocast for the network on CPU, fp32 elsewhere), ``fp32`` or
    ``bf16``. Phase reconstruction always runs in fp32.
    """

    def __init__(self, loaded: LoadedModel, device: str = "auto", precision: str = "auto") -> None:
        if not loaded.stft.center or loaded.stft.hop_length > loaded.stft.n_fft // 2:
            raise SpecsrError(f"{loaded.path or loaded.name}: the pipeline needs a centred STFT with "
                              f"hop_length <= n_fft/2")
        if precision not in ("auto", "fp32", "bf16"):
            raise SpecsrError(f"unknown precision {precision!r}; use auto, fp32 or bf16")
        self.loaded = loaded
        self.device = resolve_device(device)
        # A private copy: the caller's module (e.g. a model in training) keeps its device, mode and layout.
        self.model = fuse_batchnorm(copy.deepcopy(unwrap(loaded.model)).to(self.device).eval())
        self.channels_last = self.device.type == "cpu"
        if self.channels_last:  # measured: 2-3× faster convolutions on CPU (fp32 and bf16)
            self.model = self.model.to(memory_format=torch.channels_last)
        self.stft = loaded.stft
        self.task = loaded.task
        self.model_cfg = loaded.model_cfg
        if precision == "auto":
            precision = "bf16" if self.device.type == "cpu" else "fp32"
        self.precision = precision

    @property
    def sr_out(self) -> int:
        return self.stft.sample_rate

    @property
    def name(self) -> str:
        return self.loaded.name or Path(self.loaded.path).stem

    # ------------------------------------------------------------------------------ cutoff
    def choose_cutoff(self, wav: np.ndarray, sr_in: int, cutoff_hz: float | None = None) -> CutoffChoice:
        """Detect (``cutoff_hz=None``) or check a given cutoff for ``wav`` ``[C, T]`` at ``sr_in``."""
        nyquist_in = sr_in / 2
        messages: list[str] = []
        silent = False
        if cutoff_hz is None:
            est = detect_cutoff(wav, sr_in)
            silent = est.silent
            if est.band_limited:
                cutoff, source = est.cutoff_hz, "detected"
            else:
                cutoff, source = nyquist_in, "nominal"
        else:
            try:
                cutoff = float(cutoff_hz)
            except (TypeError, ValueError):
                cutoff = math.nan
            if not (math.isfinite(cutoff) and cutoff > 0):
                raise SpecsrError(f"--cutoff-hz must be a positive frequency in Hz, got {cutoff_hz!r}")
            source = "given"
            if cutoff > nyquist_in:
                messages.append(f"--cutoff-hz {cutoff:g} is above the input's Nyquist frequency; "
                                f"using {nyquist_in:g} Hz")
                cutoff = nyquist_in
        kc = cutoff_bin(min(cutoff, self.sr_out / 2), self.stft)
        nothing = kc >= self.stft.n_bins - 1
        if not nothing and not silent and not self.task.min_cutoff_hz <= cutoff <= self.task.max_cutoff_hz:
            messages.append(f"cutoff {cutoff / 1000:.2f} kHz is outside the range this model was trained for "
                            f"({self.task.min_cutoff_hz / 1000:g}-{self.task.max_cutoff_hz / 1000:g} kHz); "
                            f"predicting above {cutoff / 1000:.2f} kHz anyway, expect weaker results")
        return CutoffChoice(float(cutoff), source, silent, nothing, tuple(messages))

    # ------------------------------------------------------------------------------ arrays
    def upsample(self, wav: np.ndarray, sr_in: int, *, cutoff_hz: float | None = None, phase: str = "fgla",
                 n_iter: int = 32, chunk_seconds: float = 20.0,
                 copy_full_band: bool = False) -> tuple[np.ndarray, int]:
        """Upsample ``wav`` ``[C, T]`` (or ``[T]``) float at ``sr_in`` → (``[C, T_out]`` float32, ``sr_out``).

        ``T_out = round(T · sr_out / sr_in)``. Raises :class:`NothingToAddError` for full-band input
        at ``sr_out`` or above unless ``copy_full_band`` (then the input, resampled, is returned).
        """
        x = _as_channels(wav)
        _check_rate(sr_in)
        self._check_options(phase, n_iter, chunk_seconds)
        choice = self.choose_cutoff(x, sr_in, cutoff_hz)
        for message in choice.messages:
            warnings.warn(message, UpsampleWarning, stacklevel=2)
        y = resample(x, sr_in, self.sr_out)
        if choice.silent or (choice.nothing_to_add and copy_full_band):
            return y, self.sr_out
        if choice.nothing_to_add:
            raise NothingToAddError(_nothing_message(sr_in, self.sr_out))
        proc = _ChunkProcessor(self, x.shape[0], y.shape[-1], sr_in, choice.cutoff_hz, phase, n_iter, chunk_seconds)
        block = max(1, int(self.sr_out))
        out = np.concatenate(list(proc.run(y[:, i:i + block] for i in range(0, y.shape[-1], block))), axis=-1)
        return out, self.sr_out

    # ------------------------------------------------------------------------------- files
    def upsample_file(self, in_path: str | os.PathLike, out_path: str | os.PathLike, *, force: bool = False,
                      cutoff_hz: float | None = None, phase: str = "fgla", n_iter: int = 32,
                      chunk_seconds: float = 20.0, copy_full_band: bool = False, float_output: bool = False,
                      progress: Callable[[float], None] | None = None) -> UpsampleReport:
        """Upsample one file, streaming: memory does not grow with the file's length.

        The output appears under ``out_path`` only once complete (temp file + rename). Integer
        output that would clip is scaled down (``report.scaled_db``) unless ``float_output``.
        ``progress`` is called with the seconds of input done so far.
        """
        t_start = time.perf_counter()
        self._check_options(phase, n_iter, chunk_seconds)
        src, dst = Path(in_path), Path(out_path)
        info = audio_info(src)
        check_output_path(dst, overwrite=force)
        if dst.exists() and dst.resolve() == src.resolve():
            raise SpecsrError(f"{dst}: is the input file; choose another output name")
        if info.n_frames == 0:
            raise SpecsrError(f"{src}: the file holds no samples")
        _check_rate(info.sample_rate)
        fmt = output_format(dst, PCM_FORMATS)
        subtype = "FLOAT" if float_output else output_subtype(info.subtype, dst.suffix)
        if not sf.check_format(fmt, subtype):
            raise SpecsrError(f"{dst}: subtype {subtype} is not possible in {fmt} files")

        choice = self.choose_cutoff(_cutoff_excerpt(src, info), info.sample_rate, cutoff_hz)
        for message in choice.messages:
            warnings.warn(message, UpsampleWarning, stacklevel=2)
        if choice.nothing_to_add and not copy_full_band and not choice.silent:
            raise NothingToAddError(f"{src}: " + _nothing_message(info.sample_rate, self.sr_out))
        n_out = resampled_length(info.n_frames, info.sample_rate, self.sr_out)
        blocks: Iterable[np.ndarray] = _resampled_blocks(src, info, self.sr_out)
        timing = _Timing()
        copied = choice.silent or choice.nothing_to_add
        if not copied:
            proc = _ChunkProcessor(self, info.channels, n_out, info.sample_rate, choice.cutoff_hz, phase, n_iter,
                                   chunk_seconds)
            timing = proc.timing
            blocks = proc.run(blocks)
        if progress is not None:
            blocks = _report_progress(blocks, progress, self.sr_out)
        peak, scaled_db = _write_stream(dst, blocks, self.sr_out, info.channels, fmt, subtype, force)
        duration_s = info.n_frames / info.sample_rate
        return UpsampleReport(
            duration_s=duration_s, sr_in=info.sample_rate, sr_out=self.sr_out, cutoff_hz=choice.cutoff_hz,
            cutoff_source=choice.source, rtf=(time.perf_counter() - t_start) / duration_s,
            model_seconds=timing.model_seconds, phase_seconds=timing.phase_seconds, peak=peak,
            scaled_db=scaled_db, subtype=subtype, channels=info.channels, in_path=str(src), out_path=str(dst),
            copied=copied, messages=list(choice.messages))

    # ----------------------------------------------------------------------------- helpers
    def _check_options(self, phase: str, n_iter: int, chunk_seconds: float) -> None:
        if phase not in METHODS:
            raise SpecsrError(f"unknown --phase {phase!r}; choose from {', '.join(METHODS)}")
        if not isinstance(n_iter, (int, np.integer)) or n_iter < 0:
            raise SpecsrError(f"--n-iter must be a whole number >= 0, got {n_iter!r}")
        if not (math.isfinite(chunk_seconds) and chunk_seconds > 0):
            raise SpecsrError(f"--chunk-seconds must be > 0, got {chunk_seconds!r}")

    def _autocast(self) -> Any:
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def predict_magnitude(self, known: torch.Tensor, cutoff_bins: int) -> torch.Tensor:
        """Predicted magnitude ``[B, F, M]`` from the input's complex STFT ``[B, F, M]`` (model output, all bins)."""
        logp = log_power(known)
        cut = torch.full((known.shape[0],), int(cutoff_bins), device=known.device)
        inputs = build_inputs(logp, cut, self.model_cfg)
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), self._autocast():
            feat = self.model(inputs)[:, 0]
        mag = log_power_to_magnitude(denormalize(feat.float()))
        if not torch.isfinite(mag).all():
            raise SpecsrError(f"model {self.name}: produced non-finite output (a broken checkpoint?)")
        if cutoff_bins > 0:
            # A safety net, frame by frame (so chunking is unaffected): no new bin louder than the
            # loudest bin the input has in that frame. Natural audio does not rise above its cutoff
            # like that, and a model pushed outside its training data sometimes does.
            mag = torch.minimum(mag, known[:, :cutoff_bins].abs().amax(dim=1, keepdim=True))
        return mag


def _nothing_message(sr_in: int, sr_out: int) -> str:
    return (f"nothing to add: the input ({sr_in} Hz) has content up to the output's Nyquist frequency "
            f"({sr_out / 2:g} Hz); use --copy-full-band to resample it anyway")


def _as_channels(wav: np.ndarray) -> np.ndarray:
    x = np.asarray(wav)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[0] == 0:
        raise SpecsrError(f"expected audio shaped [C, T] or [T], got {x.shape}")
    if x.shape[1] == 0:
        raise SpecsrError("the input holds no samples")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise SpecsrError("the input contains NaN or infinite samples")
    return x


def _check_rate(sr_in: int) -> None:
    if not isinstance(sr_in, (int, np.integer)) or sr_in <= 0:
        raise SpecsrError(f"the input sample rate must be a positive integer, got {sr_in!r}")


# --------------------------------------------------------------------------------- chunking


class _ChunkProcessor:
    """Exact chunked processing of one signal at ``sr_out``: a stream of blocks in, a stream out.

    The frames ``0 … N−1`` of the centred STFT are cut into cores of ``chunk`` frames. For each
    core ``[s, e)`` the phase is reconstructed on ``[s − Kp, e + Kp)`` and the magnitudes it needs
    come from model calls with ``Km`` more frames on each side::

        frames  0                                                              N
                |.......[====== core s..e ======]..............................|
        phase          [-- Kp --|              |-- Kp --]
        model     [-Km-|-- Kp --|   (sub-blocks of G frames, each ±Km) |-- Kp --|-Km-]
        samples                 [s·hop ... e·hop)   ← written, then the next core starts at e

    Why it is exact rather than "close": one Griffin-Lim iteration mixes a frame only with the
    ``r = ceil(n_fft/hop) − 1`` frames it overlaps, so after ``n_iter`` iterations and the final
    overlap-add a frame depends on nothing farther than ``Kp = r·(n_iter + 1)`` frames
    (:func:`specsr.phase.light_cone_frames`, 99 frames ≈ 1.1 s for 32 iterations at 48k/2048/512).
    The U-Net's receptive field is finite too (:func:`receptive_field_frames`, 137 frames for
    five levels); each model call starts on a multiple of its pooling stride so that the pooling
    grid is the whole file's. Inside the light cones the numbers are those of the whole file —
    the cores tile the output with no crossfade at all, and chunk size only trades memory
    against the overhead of the contexts. Model outputs already computed for the previous core's
    right context are reused. (A model with GroupNorm normalises over the whole block and is
    only approximately chunk-invariant.)
    """

    def __init__(self, ups: Upsampler, n_channels: int, n_samples: int, sr_in: int, cutoff_hz: float,
                 phase: str, n_iter: int, chunk_seconds: float) -> None:
        cfg = ups.stft
        self.ups, self.cfg = ups, cfg
        self.n_channels = n_channels
        self.n_samples = n_samples
        # Very short signals are zero-padded so that the reflect padding of the centred STFT works.
        self.n_work = max(n_samples, cfg.n_fft // 2 + 1)
        self.n_frames = self.n_work // cfg.hop_length + 1
        self.phase, self.n_iter = phase, n_iter
        self.k_cut = cutoff_bin(cutoff_hz, cfg)
        self.k_nyq_in = cutoff_bin(min(sr_in, ups.sr_out) / 2, cfg)
        bins = torch.arange(cfg.n_bins, dtype=torch.float32)
        ramp = (self.k_cut + CROSSFADE_BINS - bins) / (CROSSFADE_BINS + 1)
        self.mask = ramp.clamp(0.0, 1.0).where(bins >= self.k_cut, torch.ones(()))[None, :, None].to(ups.device)
        self.k_phase = light_cone_frames(cfg, 0 if phase == "lowres" else n_iter)
        stride = ups.model_cfg.frame_multiple
        self.stride = stride
        self.k_model = -(-receptive_field_frames(ups.model_cfg) // stride) * stride
        self.chunk = max(1, int(round(chunk_seconds * cfg.sample_rate / cfg.hop_length)))
        budget = max(stride, MODEL_FRAME_BUDGET // max(1, n_channels) - 2 * self.k_model)
        self.model_block = max(2 * self.k_model, budget) // stride * stride or stride
        self.timing = _Timing()
        # input samples (working signal), [C, n], starting at sample self._buf_start
        self._buf = np.zeros((n_channels, 0), np.float32)
        self._buf_start = 0
        self._source_done = False
        self._received = 0
        # model magnitudes cached from the previous core, frames [self._mag_start, +width)
        self._mag: torch.Tensor | None = None
        self._mag_start = 0

    # --------------------------------------------------------------------------- input side
    def _pull(self, source: Iterator[np.ndarray], upto: int) -> None:
        """Read blocks until the working signal is buffered up to sample ``upto`` (exclusive)."""
        while self._buf_start + self._buf.shape[1] < upto and not self._source_done:
            try:
                block = next(source)
            except StopIteration:
                self._source_done = True
                missing = self.n_samples - self._received
                if missing > 0:
                    raise SpecsrError(f"the input stream ended {missing} samples early") from None
                pad = self.n_work - self.n_samples
                if pad:
                    self._buf = np.concatenate([self._buf, np.zeros((self.n_channels, pad), np.float32)], axis=1)
                break
            block = np.asarray(block, dtype=np.float32)
            take = min(block.shape[1], self.n_samples - self._received)
            self._received += take
            self._buf = np.concatenate([self._buf, block[:, :take]], axis=1)

    def _frames(self, source: Iterator[np.ndarray], fa: int, fb: int) -> torch.Tensor:
        """The input's STFT frames ``[C, F, fb − fa]`` (reflect padding at the signal's ends)."""
        half = self.cfg.n_fft // 2
        idx = np.arange(fa * self.cfg.hop_length, (fb - 1) * self.cfg.hop_length + self.cfg.n_fft) - half
        idx = np.where(idx < 0, -idx, idx)
        idx = np.where(idx >= self.n_work, 2 * (self.n_work - 1) - idx, idx)
        self._pull(source, int(idx.max()) + 1)
        if idx.min() < self._buf_start:
            raise RuntimeError("chunking bug: needed samples were dropped")  # never for valid schedules
        seg = torch.from_numpy(self._buf[:, idx - self._buf_start]).to(self.ups.device)
        return padded_frames(seg, self.cfg)

    def _model_start(self, frame: int) -> int:
        return max(0, frame - self.k_model) // self.stride * self.stride

    # ------------------------------------------------------------------------------- stages
    def _magnitudes(self, known: torch.Tensor, k_start: int, a: int, b: int) -> torch.Tensor:
        """Predicted magnitude for frames ``[a, b)``; ``known`` holds frames from ``k_start``."""
        parts = []
        u = a
        if self._mag is not None and self._mag_start <= a < self._mag_start + self._mag.shape[-1]:
            cached = self._mag[..., a - self._mag_start:b - self._mag_start]
            parts.append(cached)
            u = a + cached.shape[-1]
        t0 = time.perf_counter()
        for g in range(u, b, self.model_block):
            h = min(b, g + self.model_block)
            ia, ib = self._model_start(g), min(self.n_frames, h + self.k_model)
            mag = self.ups.predict_magnitude(known[..., ia - k_start:ib - k_start], self.k_cut)
            parts.append(mag[..., g - ia:h - ia])
        self._sync()
        self.timing.model_seconds += time.perf_counter() - t0
        mag = torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
        self._mag, self._mag_start = mag, a
        return mag

    def _sync(self) -> None:
        if self.ups.device.type == "cuda":
            torch.cuda.synchronize(self.ups.device)

    def run(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Consume input blocks ``[C, n]`` at ``sr_out`` (``n_samples`` in all); yield output blocks ``[C, m]``."""
        source = iter(blocks)
        cfg, hop = self.cfg, self.cfg.hop_length
        half = cfg.n_fft // 2
        for s in range(0, self.n_frames, self.chunk):
            e = min(self.n_frames, s + self.chunk)
            a, b = max(0, s - self.k_phase), min(self.n_frames, e + self.k_phase)
            cache_end = self._mag_start + self._mag.shape[-1] if self._mag is not None else a
            first_new = cache_end if self._mag is not None and self._mag_start <= a < cache_end else a
            if first_new < b:  # the model runs on [first_new, b) with its context
                k_start, k_end = min(a, self._model_start(first_new)), min(self.n_frames, b + self.k_model)
            else:
                k_start, k_end = a, b
            known = self._frames(source, k_start, k_end)
            mag = self._magnitudes(known, k_start, a, b)
            known_ab = known[..., a - k_start:b - k_start]
            t0 = time.perf_counter()
            mag = self._gate_silence(mag, known_ab)
            lock = self._phase_lock(known_ab, mag)
            spec = reconstruct_frames(mag, known_ab, self.mask, cfg, method=self.phase, n_iter=self.n_iter,
                                      phase_lock=lock)
            sig = overlap_add(spec, cfg)  # padded time axis from padded sample a·hop
            lo, hi = s * hop, (self.n_samples if e == self.n_frames else min(self.n_samples, e * hop))
            out = sig[:, lo + half - a * hop:hi + half - a * hop].float().cpu().numpy() if hi > lo else \
                np.zeros((self.n_channels, 0), np.float32)
            self._sync()
            self.timing.phase_seconds += time.perf_counter() - t0
            # forget what the next core cannot need
            nxt = max(0, e - self.k_phase)
            keep_frame = min(nxt, self._model_start(b))
            keep_sample = max(0, keep_frame * hop - half)
            if keep_sample > self._buf_start and keep_frame > 0:
                cut = min(keep_sample - self._buf_start, self._buf.shape[1])
                self._buf = self._buf[:, cut:]
                self._buf_start += cut
            if self._mag is not None and nxt > self._mag_start:
                self._mag = self._mag[..., nxt - self._mag_start:]
                self._mag_start = nxt
            if out.shape[1]:
                yield out
        # drain the source (it may hold padding beyond n_samples): nothing else to produce
        self._pull(source, self.n_work)

    def _gate_silence(self, mag: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """No prediction over digital silence: frames whose known band is empty get no new band."""
        low_power = known[:, :self.k_cut].abs().square().sum(dim=1, keepdim=True)  # [C, 1, M]
        return torch.where(low_power > SILENT_FRAME_POWER, mag, torch.zeros_like(mag))

    def _phase_lock(self, known: torch.Tensor, mag: torch.Tensor) -> torch.Tensor | None:
        """Bins between the cutoff and the input's Nyquist where the input's phase is worth keeping."""
        if self.k_nyq_in <= self.k_cut:
            return None
        bins = torch.arange(self.cfg.n_bins, device=known.device)[None, :, None]
        in_band = (bins >= self.k_cut) & (bins < self.k_nyq_in)
        return in_band & (known.abs() >= PHASE_LOCK_RATIO * mag)


# -------------------------------------------------------------------------------- file helpers


def _cutoff_excerpt(path: Path, info: AudioInfo, n_excerpts: int = 60, excerpt_seconds: float = 1.0) -> np.ndarray:
    """The samples to measure the cutoff on: the whole file, or faded excerpts spread over a long one."""
    if info.seconds <= LONG_FILE_SECONDS:
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


def _resampled_blocks(path: Path, info: AudioInfo, sr_out: int, block_frames: int = 1 << 16) -> Iterator[np.ndarray]:
    """Stream a file resampled to ``sr_out`` as blocks ``[C, n]``, exactly ``resampled_length`` samples in all."""
    import soxr

    n_out = resampled_length(info.n_frames, info.sample_rate, sr_out)
    stream = None if info.sample_rate == sr_out else \
        soxr.ResampleStream(info.sample_rate, sr_out, info.channels, dtype="float32", quality="VHQ")
    emitted = read = 0
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
            last = read >= info.n_frames
            out = data if stream is None else stream.resample_chunk(np.ascontiguousarray(data), last=last)
            take = min(len(out), n_out - emitted)
            if take > 0:
                emitted += take
                yield np.ascontiguousarray(out[:take].T)
    if emitted < n_out:
        yield np.zeros((info.channels, n_out - emitted), np.float32)


def _report_progress(blocks: Iterable[np.ndarray], progress: Callable[[float], None],
                     sr_out: int) -> Iterator[np.ndarray]:
    done = 0
    for block in blocks:
        done += block.shape[1]
        progress(done / sr_out)
        yield block


def _write_stream(dst: Path, blocks: Iterable[np.ndarray], sr_out: int, n_channels: int, fmt: str, subtype: str,
                  overwrite: bool) -> tuple[float, float]:
    """Write blocks ``[C, n]`` to ``dst`` atomically; scale down integer output that would clip.

    Integer subtypes go through a float intermediate (W64, no 4 GB limit) because the peak is only
    known at the end. Returns ``(peak before scaling, scaling in dB ≤ 0)``.
    """
    temps: list[str] = []

    def temp(suffix: str) -> str:
        name = temp_path_beside(dst, suffix)
        temps.append(name)
        return name

    peak = 0.0
    scaled_db = 0.0
    try:
        direct = subtype in FLOAT_SUBTYPES
        first = temp(".tmp") if direct else temp(".float.w64")
        with sf.SoundFile(first, "w", sr_out, n_channels, subtype=subtype if direct else "FLOAT",
                          format=fmt if direct else "W64") as fh:
            for block in blocks:
                if block.shape[1]:
                    block_peak = float(np.abs(block).max())
                    if not math.isfinite(block_peak):
                        raise SpecsrError(f"{dst}: the output has non-finite samples (a broken model?)")
                    peak = max(peak, block_peak)
                    fh.write(block.T)
        final = first
        if not direct:
            gain = 1.0 / peak if peak > 1.0 else 1.0
            scaled_db = 20 * math.log10(gain)
            final = temp(".tmp")
            with sf.SoundFile(first, "r") as src, \
                    sf.SoundFile(final, "w", sr_out, n_channels, subtype=subtype, format=fmt) as out:
                for block in src.blocks(blocksize=1 << 16, dtype="float32", always_2d=True):
                    out.write(block * gain if gain != 1.0 else block)
        if dst.exists() and not overwrite:
            raise SpecsrError(f"{dst}: exists already (use --force to overwrite)")
        os.replace(final, dst)
        temps.remove(final)
    finally:
        for name in temps:
            Path(name).unlink(missing_ok=True)
    return peak, scaled_db
