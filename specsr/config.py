"""Settings as frozen dataclasses: STFT, task, model, training, inference. Every default lives here.

Every dataclass round-trips through ``to_dict`` / ``from_dict`` (plain JSON/TOML types only) and
checks itself on construction: each value against its field's annotation (a TOML ``lr = "fast"``
fails with one line naming ``[train] lr`` and the expected type), then the value ranges, so that a
wrong value fails early with a message that says what is wrong and what would be right.

This module imports nothing heavy (no torch, numpy): the CLI reads its defaults at start-up.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar

from specsr.errors import SpecsrError

T = TypeVar("T", bound="_Config")

WINDOWS = ("hann", "hamming", "blackman")
PHASE_METHODS = ("fgla", "griffinlim", "lowres", "learned")  # see specsr.phase
LEVEL_NORMS = ("l1", "rms")  # [train] level_norm, see specsr.losses.band_level_l1
PRECISIONS = ("auto", "fp32", "bf16")
DEFAULT_SR_IN_CHOICES = (8000, 12000, 16000, 24000)  # Hz, when neither choices nor a range is given
# The input rates real files come at: the on-the-fly degradations draw among those within the task's range.
COMMON_INPUT_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100)
# A recording's top 5 % below its Nyquist is its anti-aliasing filter's transition (and a resampler's): the
# loss trains a source's bins below this fraction of its Nyquist only, and the metric scores a truth stored
# below 48 kHz up to there (specsr.losses.band_mask, specsr.metrics.reference_top_bin)
SOURCE_NYQUIST_MARGIN = 0.95
# VCTK 0.92's standard test speakers: never in train or val.
VCTK_TEST_SPEAKERS = ("p347", "p351", "p360", "p361", "p362", "p363", "p364", "p374", "p376", "s5")


class _Config:
    """Mixin: dict round trip with unknown-key checks, and type checks from the field annotations."""

    TABLE: ClassVar[str] = ""  # the table's name in a TOML config, for messages

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, _Config):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        if not isinstance(data, dict):
            raise SpecsrError(f"[{cls.TABLE}]: expected a table, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecsrError(f"[{cls.TABLE}]: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**{name: tuple(value) if isinstance(value, list) else value for name, value in data.items()})

    def with_overrides(self: T, **changes: Any) -> T:
        """A copy with the ``changes`` that are not None (options a caller did not give stay as they are)."""
        given = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **given) if given else self  # type: ignore[type-var]

    def _check_types(self) -> None:
        """Check (and coerce int → float where a float is expected) every field against its annotation."""
        hints = _type_hints(type(self))
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            ok, coerced = _conforms(value, hints[f.name])
            if not ok:
                raise SpecsrError(f"[{self.TABLE}] {f.name}: expected {_describe(hints[f.name])}, got {value!r}")
            if coerced is not value:
                object.__setattr__(self, f.name, coerced)


_HINTS: dict[type, dict[str, Any]] = {}


def _type_hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _conforms(value: Any, hint: Any) -> tuple[bool, Any]:
    """``(value matches hint, value coerced to it)`` for the few types configs use."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:  # X | None
        if value is None:
            return True, None
        (inner,) = [a for a in args if a is not type(None)]
        return _conforms(value, inner)
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False, value
        return True, float(value)
    if hint is str:
        return isinstance(value, str), value
    if origin is tuple:  # tuple[X, ...] or a fixed tuple[X, Y]
        if not isinstance(value, tuple | list):
            return False, value
        element_hints = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
        if len(element_hints) != len(value):
            return False, value
        items = [_conforms(v, h) for v, h in zip(value, element_hints, strict=True)]
        if not all(ok for ok, _ in items):
            return False, value
        return True, tuple(v for _, v in items)
    if isinstance(hint, type) and issubclass(hint, _Config):
        return isinstance(value, hint), value
    raise TypeError(f"config type {hint!r} is not supported")  # a programming error, not bad input


def _describe(hint: Any) -> str:
    """What a value of ``hint`` looks like in a TOML file."""
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}
    plurals = {bool: "true/false values", int: "whole numbers", float: "numbers", str: "strings"}
    if hint in names:
        return names[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        return _describe(next(a for a in args if a is not type(None))) + " (or left out)"
    if origin is tuple and args and args[0] in plurals:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {plurals[args[0]]}"
        return f"a list of {len(args)} {plurals[args[0]]}"
    return f"a [{getattr(hint, 'TABLE', hint)}] table"


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise SpecsrError(message)


@dataclass(frozen=True)
class STFTConfig(_Config):
    """The one STFT of a model: analysis at ``sample_rate`` (the model's output rate), ``n_fft`` / ``hop_length``."""

    TABLE: ClassVar[str] = "stft"
    sample_rate: int = 48000
    n_fft: int = 2048
    hop_length: int = 512
    window: str = "hann"
    center: bool = True

    def __post_init__(self) -> None:
        self._check_types()
        _check(self.sample_rate > 0, f"[stft] sample_rate must be a positive number of Hz, got {self.sample_rate!r}")
        _check(self.n_fft >= 16 and self.n_fft % 2 == 0,
               f"[stft] n_fft must be an even integer >= 16, got {self.n_fft!r}")
        _check(self.hop_length >= 1, f"[stft] hop_length must be >= 1, got {self.hop_length!r}")
        _check(self.window in WINDOWS, f"[stft] window must be one of {', '.join(WINDOWS)}, got {self.window!r}")

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    def bin_hz(self) -> float:
        return self.sample_rate / self.n_fft


STFT_PRESETS: dict[str, STFTConfig] = {
    # The metric's STFT, and measurably the best synthesis STFT for phase reconstruction (docs/method.md).
    "48k-2048": STFTConfig(48000, 2048, 512),
    "48k-1024": STFTConfig(48000, 1024, 256),
    "44k-2048": STFTConfig(44100, 2048, 512),
}


@dataclass(frozen=True)
class TaskConfig(_Config):
    """What a model is for: the range of cutoffs it was trained to extend from (its output rate is the STFT's)."""

    TABLE: ClassVar[str] = "task"
    min_cutoff_hz: float = 2000.0
    max_cutoff_hz: float = 12000.0

    def __post_init__(self) -> None:
        self._check_types()
        _check(0 < self.min_cutoff_hz <= self.max_cutoff_hz,
               f"[task] need 0 < min_cutoff_hz <= max_cutoff_hz, got {self.min_cutoff_hz}..{self.max_cutoff_hz}")

    @classmethod
    def from_saved(cls, data: dict[str, Any], sample_rate: int) -> TaskConfig:
        """From a checkpoint or run written by an older specsr, whose task also held ``sr_out`` (the STFT's rate)
        and ``sr_in_choices`` (never used)."""
        data = dict(data)
        data.pop("sr_in_choices", None)
        sr_out = data.pop("sr_out", sample_rate)
        _check(sr_out == sample_rate, f"[task] sr_out {sr_out} differs from the STFT's sample_rate {sample_rate}")
        return cls.from_dict(data)


@dataclass(frozen=True)
class ModelConfig(_Config):
    """Architecture of the spectrogram U-Net (generator) and, for SRGAN, its discriminator.

    ``channels`` are the widths of the encoder levels (each level halves frequency and time);
    ``freq_mix_layers`` bottleneck layers mix information along the whole frequency axis;
    ``freq_mix_levels``: one such layer also after the block of each of that many levels next to the
    bottleneck, down and up (``len(channels) - 1``: every scale; 0: the bottleneck alone);
    ``patch_bins`` adjacent frequency bins are folded into channels before the first level (and unfolded
    after the last): the full-resolution convolutions then run on 1/``patch_bins`` of the image;
    ``predict_phase``: the network also sees the input's phase (two more input channels) and predicts the new
    band's (two more outputs), for ``--phase learned``.
    """

    TABLE: ClassVar[str] = "model"
    arch: str = "unet"
    channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    freq_mix_layers: int = 2
    freq_mix_levels: int = 0
    use_position: bool = True
    use_cutoff: bool = True
    norm: str = "batch"
    disc_channels: tuple[int, ...] = (16, 32, 64, 128)
    # one discriminator per entry "FxT": the image average-pooled F times along frequency and T times along time
    # before it ("4x1": the band's envelope at full time resolution; "1x4": harmonics, fine frequency)
    disc_scales: tuple[str, ...] = ("1x1", "2x2")
    patch_bins: int = 1
    predict_phase: bool = False

    def __post_init__(self) -> None:
        self._check_types()
        _check(self.arch in ("unet", "srgan"), f"[model] arch must be unet or srgan, got {self.arch!r}")
        _check(1 <= self.patch_bins <= 64, f"[model] patch_bins must be in 1..64, got {self.patch_bins!r}")
        _check(len(self.channels) >= 1 and all(c > 0 for c in self.channels),
               f"[model] channels must be a non-empty list of positive integers, got {list(self.channels)}")
        _check(self.freq_mix_layers >= 0, f"[model] freq_mix_layers must be >= 0, got {self.freq_mix_layers!r}")
        _check(0 <= self.freq_mix_levels <= len(self.channels) - 1,
               f"[model] freq_mix_levels must be in 0..{len(self.channels) - 1} (the levels above the bottleneck: "
               f"len(channels) - 1), got {self.freq_mix_levels!r}")
        _check(self.norm in ("batch", "group", "none"), f"[model] norm must be batch, group or none, got {self.norm!r}")
        _check(len(self.disc_channels) >= 1 and all(c > 0 for c in self.disc_channels),
               f"[model] disc_channels must be a non-empty list of positive integers, got {list(self.disc_channels)}")
        _check(len(self.disc_scales) >= 1 and all(_parse_scale(s) is not None for s in self.disc_scales),
               f"[model] disc_scales must be a non-empty list of \"FxT\" pooling factors (1-16 each, e.g. \"2x2\"), "
               f"got {list(self.disc_scales)}")

    @property
    def disc_pools(self) -> tuple[tuple[int, int], ...]:
        """``disc_scales`` as ``(frequency, time)`` pooling factors."""
        return tuple(_parse_scale(s) or (1, 1) for s in self.disc_scales)  # checked on construction

    @property
    def n_inputs(self) -> int:
        """Input channels: log-power, then the cutoff mask and the position, then cos and sin of the phase."""
        return 1 + int(self.use_position) + int(self.use_cutoff) + 2 * int(self.predict_phase)

    @property
    def n_outputs(self) -> int:
        """Output channels: log-power, then (``predict_phase``) an unnormalised cos and sin of the phase."""
        return 3 if self.predict_phase else 1

    @property
    def frame_multiple(self) -> int:
        return 2 ** (len(self.channels) - 1)


def _parse_scale(text: str) -> tuple[int, int] | None:
    """``"FxT"`` → ``(F, T)`` with both in 1..16; None for anything else."""
    f, sep, t = text.partition("x")
    if not (sep and f.isdigit() and t.isdigit() and 1 <= int(f) <= 16 and 1 <= int(t) <= 16):
        return None
    return int(f), int(t)


@dataclass(frozen=True)
class InferenceConfig(_Config):
    """How ``specsr upsample`` (and evaluate, report, training's validation) runs a model.

    ``phase``: reconstruction of the new band's phase (:mod:`specsr.phase`); ``n_iter``: its
    iterations; ``chunk_seconds``: audio per chunk (bounds memory, never changes the output);
    ``precision``: of the network (``auto``: bf16 on a CPU with native bf16 kernels, fp32 elsewhere;
    phase is always fp32).
    """

    TABLE: ClassVar[str] = "inference"
    phase: str = "fgla"
    n_iter: int = 8  # FGLA passes: on held-out speech 8 score as 32 (README, "Model v3")
    chunk_seconds: float = 20.0
    precision: str = "auto"

    def __post_init__(self) -> None:
        self._check_types()
        _check(self.phase in PHASE_METHODS, f"phase must be one of {', '.join(PHASE_METHODS)}, got {self.phase!r}")
        _check(self.n_iter >= 0, f"n_iter (phase iterations) must be >= 0, got {self.n_iter!r}")
        _check(math.isfinite(self.chunk_seconds) and self.chunk_seconds > 0,
               f"chunk_seconds must be > 0, got {self.chunk_seconds!r}")
        _check(self.precision in PRECISIONS,
               f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")


INFERENCE_DEFAULTS = InferenceConfig()

# --quality: named inference settings (explicit --phase / --n-iter override them); measured in the README
QUALITY_PRESETS: dict[str, dict[str, Any]] = {
    "fast": {"phase": "lowres"},  # the low-res phase copied upward: no iterations
    "default": {},  # INFERENCE_DEFAULTS
    "best": {"phase": "fgla", "n_iter": 128},
}


LR_FROM_SCRATCH = 2e-3  # [train] lr unset, a run from random weights
LR_WARM_START = 2e-4  # [train] lr unset, a run from --warm-start (fine-tuning)


@dataclass(frozen=True)
class TrainConfig(_Config):
    """Optimisation settings of ``specsr train`` (a TOML file may hold all of them)."""

    TABLE: ClassVar[str] = "train"
    steps: int = 20000
    batch_size: int = 8
    crop_frames: int = 128
    lr: float | None = None  # the peak; None: LR_FROM_SCRATCH, or LR_WARM_START with warm_start
    lr_min_ratio: float = 0.05
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    val_every: int = 500
    save_every: int = 100
    log_every: int = 10
    seed: int = 0
    amp: bool = False
    num_workers: int = 0
    max_val_items: int = 32
    phase_iters: int = INFERENCE_DEFAULTS.n_iter  # validation reconstructs audio like specsr upsample
    gain_db_range: tuple[float, ...] = (-12.0, 6.0)
    level_weight: float = 0.0  # band_level_l1: the level of each group's mean power (a haze is too quiet)
    level_norm: str = "l1"  # band_level_l1's norm: l1 (the median level) or rms (the mean level)
    band_level_weight: float = 0.0  # band_level_l1 over the whole new band per frame (the metric's band level)
    texture_weight: float = 0.0  # texture_l1: each group's roughness (a haze is too smooth)
    texture_fixed_patterns: bool = False  # texture_l1 also counts patterns fixed in place (v2 stage 1)
    pattern_weight: float = 0.0  # fixed_pattern_l1: the fine structure that stays in place (no lattice)
    pattern_smooth_bins: tuple[int, ...] = (9,)  # its scales: moving means (odd bins); 129 also sees kHz stripes
    l1_weight: float = 1.0  # masked_l1 per bin: it predicts the median of what could be there (a haze)
    adv_weight: float = 0.05
    fm_weight: float = 2.0
    disc_band_only: bool = False  # SRGAN: judge only patches over the new band (the low band is the input's)
    disc_lr: float = 2e-4
    warm_start: str = ""
    source_balance: float = 0.0
    ema_decay: float = 0.0  # > 0: checkpoints hold an exponential moving average of the weights (e.g. 0.999)
    # [model] predict_phase only: the new band's phase, AP-BWE's anti-wrapping losses against the truth's ...
    phase_weight: float = 0.0
    # ... and the output itself: L1 on the log-power of the new band after one inverse STFT and STFT of the
    # predicted magnitude with the predicted phase (what --phase learned --n-iter 0 writes)
    rebuild_weight: float = 0.0

    def __post_init__(self) -> None:
        self._check_types()
        _check(self.steps >= 1, f"[train] steps must be >= 1, got {self.steps!r}")
        _check(self.batch_size >= 1, f"[train] batch_size must be >= 1, got {self.batch_size!r}")
        _check(self.crop_frames >= 8, f"[train] crop_frames must be >= 8, got {self.crop_frames!r}")
        _check(self.lr is None or self.lr > 0, f"[train] lr must be > 0, got {self.lr!r}")
        _check(0 < self.lr_min_ratio <= 1, f"[train] lr_min_ratio must be in (0, 1], got {self.lr_min_ratio!r}")
        _check(self.val_every >= 1 and self.save_every >= 1 and self.log_every >= 1,
               "[train] val_every, save_every and log_every must be >= 1")
        _check(self.num_workers >= 0, f"[train] num_workers must be >= 0, got {self.num_workers!r}")
        _check(self.max_val_items >= 1, f"[train] max_val_items must be >= 1, got {self.max_val_items!r}")
        _check(self.phase_iters >= 0, f"[train] phase_iters must be >= 0, got {self.phase_iters!r}")
        _check(min(self.level_weight, self.band_level_weight, self.texture_weight, self.pattern_weight,
                   self.l1_weight, self.adv_weight, self.fm_weight, self.phase_weight, self.rebuild_weight) >= 0,
               "[train] l1_weight, level_weight, band_level_weight, texture_weight, pattern_weight, adv_weight, "
               "fm_weight, phase_weight and rebuild_weight must be >= 0")
        _check(len(self.pattern_smooth_bins) >= 1 and all(n >= 3 and n % 2 == 1 for n in self.pattern_smooth_bins),
               f"[train] pattern_smooth_bins must be a non-empty list of odd widths >= 3, "
               f"got {list(self.pattern_smooth_bins)}")
        _check(self.level_norm in LEVEL_NORMS,
               f"[train] level_norm must be one of {', '.join(LEVEL_NORMS)}, got {self.level_norm!r}")
        _check(0.0 <= self.source_balance <= 1.0,
               f"[train] source_balance must be in [0, 1], got {self.source_balance!r}")
        _check(0.0 <= self.ema_decay < 1.0, f"[train] ema_decay must be in [0, 1), got {self.ema_decay!r}")
        _check(len(self.gain_db_range) == 2 and self.gain_db_range[0] <= self.gain_db_range[1],
               f"[train] gain_db_range must be [low, high], got {list(self.gain_db_range)}")

    @property
    def peak_lr(self) -> float:
        """``lr`` as set, else the default for the run: a fine-tuning rate when warm-starting, since the
        from-scratch rate undoes a trained model within a few steps."""
        if self.lr is not None:
            return self.lr
        return LR_WARM_START if self.warm_start else LR_FROM_SCRATCH


@dataclass(frozen=True)
class DegradeConfig(_Config):
    """How training draws a fresh degradation for every example of an audio dataset (``specsr convert``'s
    default; spectrogram datasets hold theirs fixed). The draws are made by :mod:`specsr.degrade`.

    The cutoff lies within ``[task]``'s range: with probability ``rate_prob`` it is the Nyquist of one of
    ``rates`` (those in range), otherwise uniform over the range (through the rate whose Nyquist it is,
    rounded up to 100 Hz). ``families``: filter families (``"mix"``: all of them); IIR families draw an order
    in ``iir_order`` and a cutoff up to ``cutoff_jitter`` below the rate's Nyquist. With probability
    ``shelf_prob`` the example is instead an MP3-like shelf: a steep cut at ``shelf_hz`` (within the task's
    range) that leaves the band above ``shelf_db`` dB down, without a rate change. With probability
    ``noise_prob`` a white or pink noise floor in ``noise_floor_db`` dBFS is added first (the target keeps
    it); every example gets a gain in ``[train] gain_db_range``.
    """

    TABLE: ClassVar[str] = "degrade"
    rates: tuple[int, ...] = COMMON_INPUT_RATES
    rate_prob: float = 0.5
    families: tuple[str, ...] = ("mix",)
    iir_order: tuple[int, int] = (4, 12)
    cutoff_jitter: float = 0.1
    noise_floor_db: tuple[float, float] = (-90.0, -60.0)
    noise_prob: float = 0.5
    shelf_prob: float = 0.1
    shelf_hz: tuple[float, float] = (14000.0, 20000.0)
    shelf_db: tuple[float, float] = (20.0, 60.0)

    def __post_init__(self) -> None:
        if isinstance(self.families, str):
            object.__setattr__(self, "families", (self.families,))
        self._check_types()
        for name in ("rate_prob", "noise_prob", "shelf_prob"):
            value = getattr(self, name)
            _check(0.0 <= value <= 1.0, f"[degrade] {name} must be in [0, 1], got {value!r}")
        _check(all(r > 0 for r in self.rates), f"[degrade] rates must be > 0 Hz, got {list(self.rates)}")
        _check(1 <= self.iir_order[0] <= self.iir_order[1] <= 24,
               f"[degrade] iir_order must be [low, high] within 1..24, got {list(self.iir_order)}")
        _check(0.0 <= self.cutoff_jitter < 1.0,
               f"[degrade] cutoff_jitter must be in [0, 1), got {self.cutoff_jitter!r}")
        lo, hi = self.noise_floor_db
        _check(lo <= hi <= 0.0, f"[degrade] noise_floor_db must be [low, high] dBFS <= 0, got {[lo, hi]}")
        _check(0 < self.shelf_hz[0] <= self.shelf_hz[1], f"[degrade] shelf_hz must be [low, high] Hz, "
               f"got {list(self.shelf_hz)}")
        _check(0 < self.shelf_db[0] <= self.shelf_db[1], f"[degrade] shelf_db must be [low, high] dB > 0, "
               f"got {list(self.shelf_db)}")


@dataclass(frozen=True)
class RunConfig(_Config):
    """Everything a training run needs: the tables of a TOML config file."""

    TABLE: ClassVar[str] = "config"
    stft: STFTConfig = field(default_factory=STFTConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    degrade: DegradeConfig = field(default_factory=DegradeConfig)

    def __post_init__(self) -> None:
        self._check_types()
        _check(self.model.predict_phase or not (self.train.phase_weight or self.train.rebuild_weight),
               "[train] phase_weight and rebuild_weight train a predicted phase: they need [model] predict_phase = "
               "true")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        if not isinstance(data, dict):
            raise SpecsrError("config: expected tables [stft], [task], [model], [train], [degrade]")
        unknown = sorted(set(data) - {"stft", "task", "model", "train", "degrade"})
        if unknown:
            raise SpecsrError(f"config: unknown table(s) {', '.join(unknown)}; known: stft, task, model, train, "
                              "degrade")
        task = data.get("task", {})
        if isinstance(task, dict) and ("sr_out" in task or "sr_in_choices" in task):
            raise SpecsrError("[task] sr_out and sr_in_choices are gone: the output rate is [stft] sample_rate, the "
                              "input rates are the dataset's (specsr convert --sr-in); remove them from the config")
        return cls(
            stft=STFTConfig.from_dict(data.get("stft", {})),
            task=TaskConfig.from_dict(task),
            model=ModelConfig.from_dict(data.get("model", {})),
            train=TrainConfig.from_dict(data.get("train", {})),
            degrade=DegradeConfig.from_dict(data.get("degrade", {})),
        )


def load_toml(path: str) -> dict[str, Any]:
    """Read a TOML file into a dict, with a one-line error on bad syntax."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise SpecsrError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise SpecsrError(f"config file {path} is a folder") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecsrError(f"config file {path} is not valid TOML: {exc}") from None


def to_toml(data: dict[str, dict[str, Any]]) -> str:
    """Render ``{table: {key: value}}`` with scalar / list values as TOML (``tomllib`` only reads)."""
    lines: list[str] = []
    for table, values in data.items():
        lines.append(f"[{table}]")
        for key, value in values.items():
            if value is None:  # TOML has no null: an unset value is left out, and reads back as unset
                lines.append(f"# {key}: unset")
                continue
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


# ---------------------------------------------------------------------------------------------
# Dataset conversion settings (specsr convert)


@dataclass(frozen=True)
class ConvertConfig(_Config):
    """The recipe of a dataset: what ``specsr convert`` (:func:`specsr.dataset.build_dataset`) makes of its
    sources. These are the defaults of both.

    By default a dataset holds the audio (full-band segments as 16-bit PCM; training draws the degradations,
    :class:`DegradeConfig`); ``spectrograms`` writes fixed low/high-resolution spectrogram pairs instead, and
    only then do the degradation settings here apply (``sr_in_choices`` … ``noise_floor_db``, ``stft_preset``).

    ``sr_in_choices`` (``DEFAULT_SR_IN_CHOICES`` when neither is given) or ``sr_in_range`` (Hz, uniform)
    give the input rates; ``filters`` are degradation families (``"mix"``: all of them); ``variants``
    degraded versions of each segment of ``segment_seconds``. ``val_groups`` names the validation groups
    (speakers or folders) instead of drawing ``val_fraction`` of them with ``seed`` (which also seeds the
    degradations). ``noise_floor_db``: the dBFS range of the noise floor added to half the variants
    (None: none). ``test_speakers`` are never written; ``all_mics`` keeps VCTK microphones other than
    mic1; ``allow_band_limited`` keeps sources with no content above ``min_content_hz`` (or 0.8 × their
    Nyquist). ``content_limits``: ``"GROUP=HZ"`` entries; the sources of that group (or of the groups under
    that folder) are taken to hold content up to HZ only, whatever their rate, so the loss leaves their bins
    above 0.95 × HZ out (a vocoder's or a codec's top band that should not be learned). ``shard_size``:
    segments (or pairs) per shard file.

    Sequences are kept as tuples (a single string counts as a list of one). Types are checked here;
    ``build_dataset`` checks the values (the filter names live in ``specsr.degrade``, which this module
    must not import).
    """

    TABLE: ClassVar[str] = "convert"

    sr_out: int = 48000
    sr_in_choices: tuple[int, ...] | None = None
    sr_in_range: tuple[int, int] | None = None
    filters: tuple[str, ...] = ("mix",)
    variants: int = 4
    segment_seconds: float = 3.0
    val_fraction: float = 0.1
    val_groups: tuple[str, ...] | None = None
    stft_preset: str = "48k-2048"
    seed: int = 0
    test_speakers: tuple[str, ...] = VCTK_TEST_SPEAKERS
    allow_band_limited: bool = False
    noise_floor_db: tuple[float, float] | None = (-90.0, -60.0)
    all_mics: bool = False
    min_content_hz: float = 16000.0
    content_limits: tuple[str, ...] = ()
    shard_size: int = 256
    spectrograms: bool = False

    def __post_init__(self) -> None:
        for name in ("sr_in_choices", "sr_in_range", "filters", "val_groups", "test_speakers", "noise_floor_db",
                     "content_limits"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, (value,))
            elif value is not None and not isinstance(value, tuple | list):
                object.__setattr__(self, name, tuple(value))
        self._check_types()
