"""Inference: load a model and upsample arrays or files of any length in bounded memory.

Data flow (docs/method.md): resample each channel to the model's rate (soxr) → the model's STFT →
log-power → U-Net (all channels batched) → predicted magnitude → merge: bins below the cutoff
keep the input's complex STFT exactly, a crossfade of a few bins, above it the predicted
magnitude with a reconstructed phase (:mod:`specsr.phase`) → inverse STFT → exactly
``round(T · sr_out / sr_in)`` samples. Long inputs stream through :class:`specsr.chunking.ChunkEngine`,
whose chunked output equals the whole-file output exactly.

    >>> ups = load_model("path/to/model.pt")            # or None / "bundled": the bundled model
    >>> out, sr_out = ups.upsample(wav, 16000)          # wav: float32 [C, T]
    >>> report = ups.upsample_file("in.wav", "out.wav")

Settings (phase method, iterations, chunk length, precision) default to
:class:`specsr.config.InferenceConfig`; every method takes the ones a caller wants to change.
"""

from __future__ import annotations

import copy
import math
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import overload

import numpy as np
import torch

from specsr import pretrained
from specsr.audio import (
    FLOAT_SUBTYPES,
    audio_info,
    check_writable,
    model_resampling,
    output_subtype,
    read_excerpts,
    resample,
    resample_pairs,
    resampled_blocks,
    resampled_length,
    write_stream,
)
from specsr.batch import SharedPredictor
from specsr.checkpoint import LoadedModel, load_checkpoint, unwrap
from specsr.chunking import ChunkEngine, MagnitudePredictor, Timing
from specsr.config import INFERENCE_DEFAULTS, InferenceConfig
from specsr.cutoff import detect_cutoff
from specsr.errors import SpecsrError
from specsr.limiter import LimiterStats, limit_new_band
from specsr.models import DC_BINS, build_inputs, fuse_batchnorm, phase_unit
from specsr.spectral import cutoff_bin, denormalize, log_power, log_power_to_magnitude
from specsr.utils import check_output_path, cpu_has_fast_bf16, resolve_device

LONG_FILE_SECONDS = 120.0  # longer files: the cutoff is measured on excerpts, not the whole file
MAX_CHANNELS = 16  # an axis this short beside a longer one is the channel axis


class NothingToAddError(SpecsrError):
    """The input already has content up to the output's Nyquist frequency."""


class UpsampleWarning(UserWarning):
    """Something the user should know about a result (cutoff outside the trained range, …)."""


def load_model(name_or_path: str | os.PathLike | None = None, device: str = "auto",
               precision: str | None = None, settings: InferenceConfig | None = None,
               wide_model: str | os.PathLike | None = None) -> Upsampler:
    """An :class:`Upsampler` for a bundled model name or a checkpoint path. ``None`` or ``"bundled"``: the
    default, :data:`specsr.pretrained.DEFAULT_MODEL`, which hands cutoffs above its trained range to
    :data:`specsr.pretrained.WIDE_MODEL` (loaded when first needed); a model asked for by name or path is that
    model alone, unless ``wide_model`` (a bundled name or a checkpoint path) names its partner for such cutoffs.
    ``precision`` overrides ``settings.precision``."""
    if wide_model is None and pretrained.is_default_name(name_or_path):
        installed = {m.name for m in pretrained.list_bundled_models()}
        wide_model = pretrained.WIDE_MODEL if pretrained.WIDE_MODEL in installed else None
    elif wide_model is not None:
        load_checkpoint(checkpoint_path(wide_model))  # a wrong name, path or file fails now, not at the first use
    return Upsampler(load_checkpoint(checkpoint_path(name_or_path)), device=device, precision=precision,
                     settings=settings, wide_model=wide_model)


def checkpoint_path(name_or_path: str | os.PathLike | None) -> Path:
    """The checkpoint file of a bundled model name (checked; ``None`` or ``"bundled"``: the default) or a path."""
    if pretrained.is_bundled_name(name_or_path):
        return pretrained.bundled_path(None if name_or_path is None else str(name_or_path))
    path = Path(name_or_path)  # type: ignore[arg-type]
    if not path.exists() and path.suffix == "" and os.sep not in str(name_or_path):
        names = ", ".join(m.name for m in pretrained.list_bundled_models()) or "none installed"
        raise SpecsrError(f"{name_or_path}: no such checkpoint file or bundled model (bundled: {names})")
    return path


# --------------------------------------------------------------------------------------- report


@dataclass(frozen=True)
class CutoffChoice:
    """Where the prediction takes over, and why (``source``: detected, given or nominal)."""

    cutoff_hz: float
    source: str
    silent: bool
    nothing_to_add: bool
    messages: tuple[str, ...]
    keep_hz: float  # up to here the input still has (rolled-off) content, kept where louder than the prediction
    fall_db: tuple[tuple[float, float], ...] = ()  # the roll-off's fall, as CutoffEstimate.fall_db
    model: str = ""  # the model that predicts above the cutoff (Upsampler.model_for)


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
    peak: float  # of the output before limiting (1.0 = full scale)
    subtype: str
    channels: int = 1
    in_path: str = ""
    out_path: str = ""
    copied: bool = False
    messages: list[str] = field(default_factory=list)
    limited_seconds: float = 0.0  # audio whose new band was turned down to stay below full scale
    limit_db: float = 0.0  # the deepest such reduction (≤ 0)
    clipped_samples: int = 0  # where the input's own band passed full scale (inter-sample peaks)
    model: str = ""  # the model that predicted the new band ("" where the input was copied)
    wide: bool = False  # the loaded model handed this file's high cutoff to its wide partner (Upsampler.model_for)

    def summary(self) -> str:
        cutoff = f"{self.cutoff_hz / 1000:.2f} kHz ({self.cutoff_source})"
        text = (f"{self.duration_s:.2f} s, {self.channels} ch, {self.sr_in} -> {self.sr_out} Hz, cutoff {cutoff}, "
                f"RTF {self.rtf:.3f} (model {self.model_seconds:.2f} s, phase {self.phase_seconds:.2f} s)")
        if self.copied:
            text += ", full band: copied"
        if self.wide:
            text += f", above the cutoff: {self.model}"
        if self.limited_seconds:
            text += f", new band limited in {self.limited_seconds:.2f} s ({self.limit_db:.1f} dB at most)"
        return text


# ------------------------------------------------------------------------------------- upsampler


class Upsampler:
    """A loaded model ready to upsample arrays and files to ``sr_out``.

    ``settings`` (default :data:`specsr.config.INFERENCE_DEFAULTS`) are the defaults of every call;
    ``precision`` overrides ``settings.precision``: ``auto`` (bf16 autocast for the network on a CPU with
    native bf16 kernels, fp32 elsewhere), ``fp32`` or ``bf16``. Phase reconstruction always runs in fp32.
    ``wide_model`` (a bundled name or a checkpoint path; same STFT): the model that predicts instead of this one
    where the cutoff lies above this model's trained range (:meth:`model_for`; the default pair, :func:`load_model`).
    """

    def __init__(self, loaded: LoadedModel, device: str = "auto", precision: str | None = None,
                 settings: InferenceConfig | None = None, wide_model: str | os.PathLike | None = None) -> None:
        if not loaded.stft.center or loaded.stft.hop_length > loaded.stft.n_fft // 2:
            raise SpecsrError(f"{loaded.path or loaded.name}: the pipeline needs a centred STFT with "
                              f"hop_length <= n_fft/2")
        self.settings = (settings or INFERENCE_DEFAULTS).with_overrides(precision=precision)
        self.loaded = loaded
        self.device = resolve_device(device)
        # A private copy: the caller's module (e.g. a model in training) keeps its device, mode and layout.
        self.model = fuse_batchnorm(copy.deepcopy(unwrap(loaded.model)).to(self.device).eval())
        self.channels_last = self.device.type == "cpu"
        if self.channels_last:  # measured: 2-3× faster convolutions on CPU (fp32 and bf16)
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.stft = loaded.stft
        self.task = loaded.task
        self.model_cfg = loaded.model_cfg
        precision = self.settings.precision
        if precision == "auto":  # bf16 only where the CPU has native bf16 kernels (cpu_has_fast_bf16)
            precision = "bf16" if self.device.type == "cpu" and cpu_has_fast_bf16() else "fp32"
        self.precision = precision
        self.wide_model = wide_model
        self._wide: Upsampler | None = None
        self._wide_lock = threading.Lock()  # files upsampled in threads may ask for it at once

    def model_for(self, cutoff_hz: float) -> Upsampler:
        """The model that predicts above ``cutoff_hz``: this one, or its ``wide_model`` (loaded on first use,
        on the same device and settings) where the cutoff lies above this model's trained range."""
        if self.wide_model is None or cutoff_hz <= self.task.max_cutoff_hz:
            return self
        with self._wide_lock:
            if self._wide is None:
                wide = Upsampler(load_checkpoint(checkpoint_path(self.wide_model)), device=str(self.device),
                                 settings=self.settings)
                if wide.stft != self.stft:
                    raise SpecsrError(f"{wide.name}: its STFT differs from {self.name}'s; it cannot take over "
                                      "this model's high cutoffs")
                self._wide = wide
        return self._wide

    def check_phase(self, settings: InferenceConfig) -> Upsampler:
        """This model, if it can make ``settings.phase`` (``learned`` needs a model that predicts phase)."""
        if settings.phase == "learned" and not self.model_cfg.predict_phase:
            raise SpecsrError(f"model {self.name} predicts no phase: --phase learned needs a model trained with "
                              "[model] predict_phase = true; use --phase fgla (the default) or lowres")
        return self

    @property
    def sr_out(self) -> int:
        return self.stft.sample_rate

    @property
    def name(self) -> str:
        return self.loaded.name or Path(self.loaded.path).stem

    @property
    def frame_multiple(self) -> int:
        return self.model_cfg.frame_multiple

    @property
    def receptive_field_frames(self) -> int:
        return self.loaded.model.receptive_field_frames

    def _settings(self, phase: str | None, n_iter: int | None, chunk_seconds: float | None) -> InferenceConfig:
        return self.settings.with_overrides(phase=phase, n_iter=n_iter, chunk_seconds=chunk_seconds)

    # ------------------------------------------------------------------------------ cutoff
    def choose_cutoff(self, wav: np.ndarray, sr_in: int, cutoff_hz: float | None = None) -> CutoffChoice:
        """Detect (``cutoff_hz=None``) or check a given cutoff for ``wav`` ``[C, T]`` at ``sr_in``.

        A file above the model's rate (88.2, 96, 192 kHz) is judged as the model will see it, resampled
        to ``sr_out``: full band up to the output's Nyquist means nothing to add, as for a 48 kHz file.
        """
        if sr_in > self.sr_out:
            wav, sr_in = resample(wav, sr_in, self.sr_out), self.sr_out
        nyquist_in = sr_in / 2
        messages: list[str] = []
        silent = False
        fall: tuple[tuple[float, float], ...] = ()
        if cutoff_hz is None:
            est = detect_cutoff(wav, sr_in)
            silent = est.silent
            if est.band_limited:
                cutoff, source = est.cutoff_hz, "detected"
            else:
                cutoff, source = nyquist_in, "nominal"
            keep = min(est.edge_hz, nyquist_in)
            fall = est.fall_db
            if est.images:
                messages.append(f"mirror images of the band lie above {est.edge_hz / 1000:.2f} kHz (upsampled without "
                                "an anti-imaging filter): they are not content and are replaced")
        else:
            try:
                cutoff = float(cutoff_hz)
            except (TypeError, ValueError):
                cutoff = math.nan
            if not (math.isfinite(cutoff) and cutoff > 0):
                raise SpecsrError(f"the cutoff must be a positive frequency in Hz, got {cutoff_hz!r}")
            source = "given"
            if cutoff > nyquist_in:
                messages.append(f"cutoff {cutoff:g} Hz is above the input's Nyquist frequency; "
                                f"using {nyquist_in:g} Hz")
                cutoff = nyquist_in
            keep = cutoff
        kc = cutoff_bin(min(cutoff, self.sr_out / 2), self.stft)
        nothing = kc >= self.stft.n_bins - 1
        model = self if nothing or silent else self.model_for(cutoff)
        task = model.task
        if not nothing and not silent and not task.min_cutoff_hz <= cutoff <= task.max_cutoff_hz:
            messages.append(f"cutoff {cutoff / 1000:.2f} kHz is outside the range {model.name} was trained for "
                            f"({task.min_cutoff_hz / 1000:g}-{task.max_cutoff_hz / 1000:g} kHz); "
                            f"predicting above {cutoff / 1000:.2f} kHz anyway, expect weaker results"
                            + (f" (--model {pretrained.WIDE_MODEL} is trained up to 22.05 kHz)"
                               if cutoff > task.max_cutoff_hz and model.name != pretrained.WIDE_MODEL else ""))
        return CutoffChoice(float(cutoff), source, silent, nothing, tuple(messages), float(max(keep, cutoff)), fall,
                            model.name)

    # ------------------------------------------------------------------------------ arrays
    @overload
    def upsample(self, wav: np.ndarray, sr_in: int, *, cutoff_hz: float | None = ..., phase: str | None = ...,
                 n_iter: int | None = ..., chunk_seconds: float | None = ...,
                 copy_full_band: bool = ...) -> tuple[np.ndarray, int]: ...

    @overload
    def upsample(self, wav: torch.Tensor, sr_in: int, *, cutoff_hz: float | None = ..., phase: str | None = ...,
                 n_iter: int | None = ..., chunk_seconds: float | None = ...,
                 copy_full_band: bool = ...) -> tuple[torch.Tensor, int]: ...

    def upsample(self, wav: np.ndarray | torch.Tensor, sr_in: int, *, cutoff_hz: float | None = None,
                 phase: str | None = None, n_iter: int | None = None, chunk_seconds: float | None = None,
                 copy_full_band: bool = False) -> tuple[np.ndarray | torch.Tensor, int]:
        """Upsample ``wav`` at ``sr_in`` → (the same at ``sr_out``, ``sr_out``).

        ``wav``: ``[T]``, ``[C, T]`` or ``[T, C]`` (as ``soundfile.read`` gives it: recognised when one axis
        has at most 16 channels and the other is longer), float or integer PCM (scaled to ±1), a numpy
        array or a torch tensor on any device. The result has the input's layout, float32, as a numpy
        array, or a tensor on the input's device. ``T_out = round(T · sr_out / sr_in)``. Raises
        :class:`NothingToAddError` for full-band input at ``sr_out`` or above unless ``copy_full_band``
        (then the input, resampled, is returned).
        """
        x, layout = as_channels_first(wav)
        out, sr_out, _ = self._upsample_array(x, sr_in, cutoff_hz=cutoff_hz,
                                              settings=self._settings(phase, n_iter, chunk_seconds),
                                              copy_full_band=copy_full_band, keep_magnitudes=False)
        return layout.restore(out), sr_out

    def upsample_with_magnitude(self, wav: np.ndarray, sr_in: int, *, cutoff_hz: float | None = None,
                                phase: str | None = None,
                                n_iter: int | None = None) -> tuple[np.ndarray, int, torch.Tensor | None]:
        """:meth:`upsample`, plus the predicted magnitude ``[C, F, N]`` the output was built from (None for
        silent input). For training's validation, which scores both from one network pass."""
        return self._upsample_array(wav, sr_in, cutoff_hz=cutoff_hz, settings=self._settings(phase, n_iter, None),
                                    copy_full_band=False, keep_magnitudes=True)

    def _upsample_array(self, wav: np.ndarray, sr_in: int, *, cutoff_hz: float | None, settings: InferenceConfig,
                        copy_full_band: bool, keep_magnitudes: bool) -> tuple[np.ndarray, int, torch.Tensor | None]:
        x, _ = as_channels_first(wav)
        _check_rate(sr_in)
        choice = self.choose_cutoff(x, sr_in, cutoff_hz)
        for message in choice.messages:
            warnings.warn(message, UpsampleWarning, stacklevel=3)
        y = resample(x, sr_in, self.sr_out, method=model_resampling(sr_in, self.sr_out))
        if choice.silent or (choice.nothing_to_add and copy_full_band):
            return y, self.sr_out, None
        if choice.nothing_to_add:
            raise NothingToAddError(_nothing_message(sr_in, self.sr_out))
        engine = ChunkEngine(self.model_for(choice.cutoff_hz).check_phase(settings), x.shape[0], y.shape[-1],
                             choice.cutoff_hz,
                             choice.keep_hz, settings,
                             fall_db=choice.fall_db, keep_magnitudes=keep_magnitudes)
        block = max(1, int(self.sr_out))
        out = np.concatenate(list(engine.run(y[:, i:i + block] for i in range(0, y.shape[-1], block))), axis=-1)
        mag = torch.cat(engine.kept, dim=-1) if engine.kept else None
        return out, self.sr_out, mag

    # ------------------------------------------------------------------------------- files
    def check_sr_out(self, sr_out: int | None) -> int:
        """The output rate: the model's (None), or a lower one the result is resampled to."""
        if sr_out is None or sr_out == self.sr_out:
            return self.sr_out
        if not isinstance(sr_out, int) or isinstance(sr_out, bool) or not 0 < sr_out <= self.sr_out:
            raise SpecsrError(f"output rate {sr_out!r}: must be a whole number of Hz up to the model's "
                              f"{self.sr_out} Hz (model {self.name})")
        return sr_out

    def upsample_file(self, in_path: str | os.PathLike, out_path: str | os.PathLike, *, force: bool = False,
                      cutoff_hz: float | None = None, phase: str | None = None, n_iter: int | None = None,
                      chunk_seconds: float | None = None, copy_full_band: bool = False, float_output: bool = False,
                      progress: Callable[[float], None] | None = None, sr_out: int | None = None,
                      subtype: str | None = None, compression_level: float | None = None,
                      predictor: MagnitudePredictor | None = None) -> UpsampleReport:
        """Upsample one file, streaming: memory does not grow with the file's length.

        The format is ``out_path``'s extension (:data:`specsr.audio.WRITE_FORMATS`: WAV, FLAC, AIFF, W64,
        OGG Vorbis, Opus, MP3 where libsndfile has it); ``subtype`` overrides the one chosen from the input
        (``PCM_16``, ``PCM_24``, ``FLOAT``, …); ``compression_level`` 0-1 for FLAC and the lossy codecs.
        ``sr_out`` (at most the model's rate, e.g. 44100): the model's result resampled to it, exactly
        ``round(T · sr_out / sr_in)`` samples, its band kept up to the new Nyquist. ``predictor``: what makes
        the magnitudes instead of this model directly (:class:`specsr.batch.SharedPredictor`, which batches
        the calls of files upsampled at once).

        The output appears under ``out_path`` only once complete (temp file + rename). Where integer
        output would pass full scale, the new band alone is turned down there (:mod:`specsr.limiter`;
        ``report.limited_seconds``); the input's band keeps its exact level. ``float_output`` never limits.
        ``progress`` is called with the seconds of input done so far.
        """
        t_start = time.perf_counter()
        settings = self._settings(phase, n_iter, chunk_seconds)
        src, dst = Path(in_path), Path(out_path)
        info = audio_info(src)
        check_output_path(dst, overwrite=force)
        if dst.exists() and dst.resolve() == src.resolve():
            raise SpecsrError(f"{dst}: is the input file; choose another output name")
        if info.n_frames == 0:
            raise SpecsrError(f"{src}: the file holds no samples")
        _check_rate(info.sample_rate)
        rate = self.check_sr_out(sr_out)
        if float_output and subtype is not None and subtype not in FLOAT_SUBTYPES:
            raise SpecsrError(f"float output and subtype {subtype} contradict each other: give one")
        if compression_level is not None and not 0.0 <= compression_level <= 1.0:
            raise SpecsrError(f"the compression level must be in [0, 1], got {compression_level!r}")
        subtype = subtype or output_subtype(info.subtype, dst.suffix, float_output=float_output)
        fmt = check_writable(dst, subtype, rate, compression_level)

        choice = self.choose_cutoff(read_excerpts(src, info, whole_below_seconds=LONG_FILE_SECONDS),
                                    info.sample_rate, cutoff_hz)
        for message in choice.messages:
            warnings.warn(message, UpsampleWarning, stacklevel=2)
        if rate < self.sr_out and choice.cutoff_hz >= rate / 2 and not choice.silent:
            choice = replace(choice, nothing_to_add=True)  # e.g. a full-band 44.1 kHz file asked for at 44.1 kHz
        if choice.nothing_to_add and not copy_full_band and not choice.silent:
            raise NothingToAddError(f"{src}: " + _nothing_message(info.sample_rate, rate))
        n_out = resampled_length(info.n_frames, info.sample_rate, self.sr_out)
        n_final = resampled_length(info.n_frames, info.sample_rate, rate)
        blocks: Iterable[np.ndarray] = resampled_blocks(src, info, self.sr_out,
                                                        method=model_resampling(info.sample_rate, self.sr_out))
        timing = Timing()
        copied = choice.silent or choice.nothing_to_add
        stats = LimiterStats(rate)
        pairs: Iterable[tuple[np.ndarray, np.ndarray]] = ((b, b) for b in blocks)  # all of it the input's
        if not copied:
            model = self.model_for(choice.cutoff_hz).check_phase(settings)
            if predictor is not None and model is not self:  # the shared predictor batches for this model
                predictor = predictor.for_model(model) if isinstance(predictor, SharedPredictor) else model
            engine = ChunkEngine(predictor or model, info.channels, n_out, choice.cutoff_hz, choice.keep_hz,
                                 settings, fall_db=choice.fall_db)
            timing = engine.timing
            pairs = engine.run_split(blocks)
        if progress is not None:
            pairs = _report_progress(pairs, progress, self.sr_out)
        if rate != self.sr_out:
            pairs = resample_pairs(pairs, self.sr_out, rate, info.channels, n_final)
        if subtype in FLOAT_SUBTYPES:
            out_blocks: Iterable[np.ndarray] = _peaks(pairs, stats)
        else:
            out_blocks = limit_new_band(pairs, rate, stats)
        write_stream(dst, out_blocks, rate, info.channels, fmt, subtype, force, compression_level)
        duration_s = info.n_frames / info.sample_rate
        return UpsampleReport(
            duration_s=duration_s, sr_in=info.sample_rate, sr_out=rate, cutoff_hz=choice.cutoff_hz,
            cutoff_source=choice.source, rtf=(time.perf_counter() - t_start) / duration_s,
            model_seconds=timing.model_seconds, phase_seconds=timing.phase_seconds, peak=stats.peak,
            subtype=subtype, channels=info.channels, in_path=str(src), out_path=str(dst), copied=copied,
            messages=list(choice.messages), limited_seconds=stats.limited_seconds, limit_db=stats.limit_db,
            clipped_samples=stats.clipped_samples, model="" if copied else choice.model,
            wide=not copied and choice.model != self.name)

    # ----------------------------------------------------------------------------- network
    def _autocast(self) -> AbstractContextManager[object]:
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def predict_magnitude(self, known: torch.Tensor, cutoff_bins: int) -> torch.Tensor:
        """Predicted magnitude ``[B, F, M]`` from the input's complex STFT ``[B, F, M]`` (model output, all bins);
        for a model that predicts phase, complex: the magnitude with the predicted phase."""
        logp = log_power(known)
        cut = torch.full((known.shape[0],), int(cutoff_bins), device=known.device)
        inputs = build_inputs(logp, cut, self.model_cfg, known)
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), self._autocast():
            out = self.model(inputs)
        return self._magnitude(out, known, cutoff_bins)

    def predict_magnitudes(self, requests: Sequence[tuple[torch.Tensor, int]]) -> list[torch.Tensor]:
        """:meth:`predict_magnitude` of several signals ``(known [C_i, F, M_i], cutoff_bins_i)`` in one network
        call: each is padded to the longest and computed as if alone (``UNet.forward``'s ``n_frames``; a
        GroupNorm model, whose statistics would see the padding, makes one call each)."""
        if len(requests) == 1 or self.model_cfg.norm == "group":  # GroupNorm's statistics would see the padding
            return [self.predict_magnitude(*r) for r in requests]
        t = max(k.shape[-1] for k, _ in requests)
        padded = [torch.nn.functional.pad(known, (0, t - known.shape[-1])) for known, _ in requests]
        cuts, lengths = [], []
        for known, cutoff_bins in requests:
            cuts += [int(cutoff_bins)] * known.shape[0]
            lengths += [known.shape[-1]] * known.shape[0]
        spec = torch.cat(padded)
        x = build_inputs(log_power(spec), torch.tensor(cuts, device=self.device), self.model_cfg, spec)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), self._autocast():
            feat = self.model(x, n_frames=torch.tensor(lengths, device=self.device))
        out, start = [], 0
        for known, cutoff_bins in requests:
            c, m = known.shape[0], known.shape[-1]
            out.append(self._magnitude(feat[start:start + c, :, :, :m], known, cutoff_bins))
            start += c
        return out

    def _magnitude(self, out: torch.Tensor, known: torch.Tensor, cutoff_bins: int) -> torch.Tensor:
        """The network's output ``[B, C_out, F, M]`` as a magnitude ``[B, F, M]``, checked, under the safety net
        (complex, with the predicted phase, for a model that predicts phase)."""
        mag = log_power_to_magnitude(denormalize(out[:, 0].float()))
        if not torch.isfinite(mag).all():
            raise SpecsrError(f"model {self.name}: produced non-finite output (a broken checkpoint?)")
        if cutoff_bins > DC_BINS:
            # A safety net, frame by frame (so chunking is unaffected): no new bin louder than the
            # loudest bin the input has in that frame (a DC offset aside). Natural audio does not rise
            # above its cutoff like that, and a model pushed outside its training data sometimes does.
            mag = torch.minimum(mag, known[:, DC_BINS:cutoff_bins].abs().amax(dim=1, keepdim=True))
        if self.model_cfg.predict_phase:
            return phase_unit(out[:, 1:3], mag)
        return mag


def _nothing_message(sr_in: int, sr_out: int) -> str:
    return (f"nothing to add: the input ({sr_in} Hz) has content up to the output's Nyquist frequency "
            f"({sr_out / 2:g} Hz)")


@dataclass(frozen=True)
class Layout:
    """How an array was given (:func:`as_channels_first`), to give the result back the same way."""

    mono: bool = False
    time_first: bool = False
    device: torch.device | None = None  # a torch tensor's device; None: numpy

    def restore(self, out: np.ndarray) -> np.ndarray | torch.Tensor:
        """``out`` ``[C, T']`` in the input's layout and type."""
        y = out[0] if self.mono else (out.T if self.time_first else out)
        y = np.ascontiguousarray(y)
        return torch.from_numpy(y).to(self.device) if self.device is not None else y


def as_channels_first(wav: np.ndarray | torch.Tensor) -> tuple[np.ndarray, Layout]:
    """``[C, T]`` float32 from ``[T]``, ``[C, T]`` or ``[T, C]``, float or integer PCM, numpy or torch."""
    device = None
    if isinstance(wav, torch.Tensor):
        device = wav.device
        wav = wav.detach().cpu().numpy()
    x = np.asarray(wav)
    if x.dtype.kind in "iu":  # integer PCM: full scale is ±1
        info = np.iinfo(x.dtype)
        offset = (int(info.max) + 1) // 2 if x.dtype.kind == "u" else 0
        x = (x.astype(np.float64) - offset) / (int(info.max) + 1 - offset)
    elif x.dtype.kind not in "f":
        raise SpecsrError(f"expected audio samples as numbers, got an array of {x.dtype}")
    if x.ndim == 1:
        layout = Layout(mono=True, device=device)
        x = x[None]
    elif x.ndim == 2:
        rows, cols = x.shape
        if rows <= MAX_CHANNELS and rows <= cols:
            layout = Layout(device=device)
        elif cols <= MAX_CHANNELS:
            layout, x = Layout(time_first=True, device=device), x.T  # [T, C], as soundfile.read gives it
        else:
            raise SpecsrError(f"cannot tell channels from time in an array shaped {x.shape}: pass [C, T] or "
                              f"[T, C] with at most {MAX_CHANNELS} channels")
    else:
        raise SpecsrError(f"expected audio shaped [T], [C, T] or [T, C], got {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise SpecsrError("the input holds no samples")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise SpecsrError("the input contains NaN or infinite samples")
    return x, layout


def _check_rate(sr_in: int) -> None:
    if not isinstance(sr_in, int | np.integer) or sr_in <= 0:
        raise SpecsrError(f"the input sample rate must be a positive integer, got {sr_in!r}")


def _report_progress(pairs: Iterable[tuple[np.ndarray, np.ndarray]], progress: Callable[[float], None],
                     sr_out: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    done = 0
    for out, low in pairs:
        done += out.shape[1]
        progress(done / sr_out)
        yield out, low


def _peaks(pairs: Iterable[tuple[np.ndarray, np.ndarray]], stats: LimiterStats) -> Iterator[np.ndarray]:
    """Float output: as it is, its peak recorded."""
    for out, _ in pairs:
        stats.peak = max(stats.peak, float(np.abs(out).max(initial=0.0)))
        yield out
