"""Settings as frozen dataclasses: STFT, task, model, training. One source of truth for each.

Every dataclass round-trips through ``to_dict`` / ``from_dict`` (plain JSON/TOML types only), and
validates itself on construction so that a wrong value fails early with a message that says what
is wrong and what would be right.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from specsr.errors import SpecsrError

T = TypeVar("T", bound="_Config")

WINDOWS = ("hann", "hamming", "blackman")
DEFAULT_SR_IN_CHOICES = (8000, 12000, 16000, 24000)  # Hz, when neither choices nor a range is given
# VCTK 0.92's standard test speakers: never in train or val.
VCTK_TEST_SPEAKERS = ("p347", "p351", "p360", "p361", "p362", "p363", "p364", "p374", "p376", "s5")


class _Config:
    """Mixin: dict round trip with unknown-key and type checks."""

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
            raise SpecsrError(f"{cls.__name__}: expected a table/dict, got {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise SpecsrError(
                f"{cls.__name__}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            kwargs[name] = tuple(value) if isinstance(value, list) else value
        return cls(**kwargs)

    def replace(self: T, **changes: Any) -> T:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise SpecsrError(message)


@dataclass(frozen=True)
class STFTConfig(_Config):
    """The one STFT of a model: analysis at ``sample_rate`` with ``n_fft`` / ``hop_length``."""

    sample_rate: int = 48000
    n_fft: int = 2048
    hop_length: int = 512
    window: str = "hann"
    center: bool = True

    def __post_init__(self) -> None:
        _check(isinstance(self.sample_rate, int) and self.sample_rate > 0,
               f"STFT sample_rate must be a positive integer (Hz), got {self.sample_rate!r}")
        _check(isinstance(self.n_fft, int) and self.n_fft >= 16 and self.n_fft % 2 == 0,
               f"STFT n_fft must be an even integer >= 16, got {self.n_fft!r}")
        _check(isinstance(self.hop_length, int) and 0 < self.hop_length <= self.n_fft,
               f"STFT hop_length must be in 1..n_fft ({self.n_fft}), got {self.hop_length!r}")
        _check(self.window in WINDOWS, f"STFT window must be one of {WINDOWS}, got {self.window!r}")
        _check(isinstance(self.center, bool), f"STFT center must be true/false, got {self.center!r}")

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    def bin_hz(self) -> float:
        return self.sample_rate / self.n_fft


STFT_PRESETS: dict[str, STFTConfig] = {
    # The metric's STFT: measurably the best synthesis STFT for phase reconstruction (DESIGN.md).
    "48k-2048": STFTConfig(48000, 2048, 512),
    "48k-1024": STFTConfig(48000, 1024, 256),
    "44k-2048": STFTConfig(44100, 2048, 512),
}


@dataclass(frozen=True)
class TaskConfig(_Config):
    """What a model is for: input rates (or cutoffs) it was trained on, and its output rate."""

    sr_out: int = 48000
    sr_in_choices: tuple[int, ...] = (8000, 12000, 16000, 24000)
    min_cutoff_hz: float = 2000.0
    max_cutoff_hz: float = 12000.0

    def __post_init__(self) -> None:
        _check(isinstance(self.sr_out, int) and self.sr_out > 0,
               f"sr_out must be a positive integer, got {self.sr_out!r}")
        _check(len(self.sr_in_choices) > 0, "sr_in_choices must list at least one input rate")
        for sr_in in self.sr_in_choices:
            _check(isinstance(sr_in, int) and 0 < sr_in < self.sr_out,
                   f"every input rate must be an integer below sr_out={self.sr_out}, got {sr_in!r}")
        _check(0 < self.min_cutoff_hz <= self.max_cutoff_hz < self.sr_out / 2,
               f"need 0 < min_cutoff_hz <= max_cutoff_hz < sr_out/2, got "
               f"{self.min_cutoff_hz}..{self.max_cutoff_hz} for sr_out={self.sr_out}")


@dataclass(frozen=True)
class ModelConfig(_Config):
    """Architecture of the spectrogram U-Net (generator) and, for SRGAN, its discriminator.

    ``channels`` are the widths of the encoder levels (each level halves frequency and time);
    ``freq_mix_layers`` bottleneck layers mix information along the whole frequency axis.
    """

    arch: str = "unet"
    channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    freq_mix_layers: int = 2
    use_position: bool = True
    use_cutoff: bool = True
    norm: str = "batch"
    disc_channels: tuple[int, ...] = (16, 32, 64, 128)

    def __post_init__(self) -> None:
        _check(self.arch in ("unet", "srgan"), f"model arch must be 'unet' or 'srgan', got {self.arch!r}")
        _check(len(self.channels) >= 1 and all(isinstance(c, int) and c > 0 for c in self.channels),
               f"model channels must be positive integers, got {self.channels!r}")
        _check(isinstance(self.freq_mix_layers, int) and self.freq_mix_layers >= 0,
               f"freq_mix_layers must be >= 0, got {self.freq_mix_layers!r}")
        _check(self.norm in ("batch", "group", "none"), f"norm must be batch|group|none, got {self.norm!r}")
        _check(len(self.disc_channels) >= 1, "disc_channels must not be empty")

    @property
    def n_inputs(self) -> int:
        return 1 + int(self.use_position) + int(self.use_cutoff)

    @property
    def frame_multiple(self) -> int:
        return 2 ** (len(self.channels) - 1)


@dataclass(frozen=True)
class TrainConfig(_Config):
    """Optimisation settings of ``specsr train`` (a TOML file may hold all of them)."""

    steps: int = 20000
    batch_size: int = 8
    crop_frames: int = 128
    lr: float = 2e-3
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
    phase_iters: int = 32
    gain_db_range: tuple[float, ...] = (-12.0, 6.0)
    adv_weight: float = 0.05
    fm_weight: float = 2.0
    disc_lr: float = 2e-4
    warm_start: str = ""
    source_balance: float = 0.0

    def __post_init__(self) -> None:
        _check(isinstance(self.steps, int) and self.steps >= 1, f"steps must be >= 1, got {self.steps!r}")
        _check(isinstance(self.batch_size, int) and self.batch_size >= 1,
               f"batch_size must be >= 1, got {self.batch_size!r}")
        _check(isinstance(self.crop_frames, int) and self.crop_frames >= 8,
               f"crop_frames must be >= 8, got {self.crop_frames!r}")
        _check(self.lr > 0, f"lr must be > 0, got {self.lr!r}")
        _check(0 < self.lr_min_ratio <= 1, f"lr_min_ratio must be in (0, 1], got {self.lr_min_ratio!r}")
        _check(self.val_every >= 1 and self.save_every >= 1 and self.log_every >= 1,
               "val_every, save_every and log_every must be >= 1")
        _check(0.0 <= self.source_balance <= 1.0, f"source_balance must be in [0, 1], got {self.source_balance!r}")
        _check(len(self.gain_db_range) == 2 and self.gain_db_range[0] <= self.gain_db_range[1],
               f"gain_db_range must be [low, high], got {self.gain_db_range!r}")


@dataclass(frozen=True)
class RunConfig(_Config):
    """Everything a training run needs: the tables of a TOML config file."""

    stft: STFTConfig = field(default_factory=STFTConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:  # type: ignore[override]
        if not isinstance(data, dict):
            raise SpecsrError("config: expected tables [stft], [task], [model], [train]")
        unknown = sorted(set(data) - {"stft", "task", "model", "train"})
        if unknown:
            raise SpecsrError(f"config: unknown table(s) {', '.join(unknown)}; known: stft, task, model, train")
        return cls(
            stft=STFTConfig.from_dict(data.get("stft", {})),
            task=TaskConfig.from_dict(data.get("task", {})),
            model=ModelConfig.from_dict(data.get("model", {})),
            train=TrainConfig.from_dict(data.get("train", {})),
        )


def load_toml(path: str) -> dict[str, Any]:
    """Read a TOML file into a dict, with a one-line error on bad syntax."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise SpecsrError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecsrError(f"config file {path} is not valid TOML: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Dataset conversion settings (specsr convert)
