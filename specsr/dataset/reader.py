"""Reading a dataset: the on-disk format's names and checks, :func:`load_dataset_info` (the parsed
manifest) and :class:`SpectrogramPairs`, the reader of a spectrogram dataset (a torch ``Dataset`` over
memory-mapped shards). Audio datasets are read by :mod:`specsr.dataset.segments`.

Versions: 2 (this one) has a ``kind``, ``audio`` or ``spectrograms``; version 1 (specsr before audio
datasets) held spectrogram pairs only and is read as such.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from specsr.config import STFTConfig
from specsr.errors import SpecsrError
from specsr.spectral import LOG_POWER_FLOOR

MANIFEST_NAME = "manifest.json"
DATASET_FORMAT = "specsr-dataset"
DATASET_VERSION = 2
READABLE_VERSIONS = (1, 2)
KINDS = ("audio", "spectrograms")
FEATURE = "log10_power"
SPLITS = ("train", "val")
SHARD_DIR = "shards"
SPEC_KINDS = ("input", "target")  # float16 [N, F, n_frames], in every shard
WAVE_KINDS = ("wav_input", "wav_target")  # float32 [N, segment_samples], in val shards only
AUDIO_SHARD_SUFFIX = ".wav"  # an audio shard: 16-bit mono PCM WAV at sr_out, the segments one after another
# The value a crop pads with: log10 of the log-power floor (silence).
LOG_POWER_PAD = math.log10(LOG_POWER_FLOOR)


def shard_kinds(split: str) -> tuple[str, ...]:
    """The arrays a shard of ``split`` holds."""
    return SPEC_KINDS + (WAVE_KINDS if split == "val" else ())


def shard_file(shard_dir: Path, name: str, kind: str) -> Path:
    return shard_dir / f"{name}.{kind}.npy"


def shard_file_names(dataset_kind: str, shard: dict[str, Any]) -> list[str]:
    """The file names (in ``shards/``) of a shard record of a dataset of ``dataset_kind``."""
    if dataset_kind == "audio":
        return [shard["name"] + AUDIO_SHARD_SUFFIX]
    return [f"{shard['name']}.{kind}.npy" for kind in shard_kinds(shard["split"])]


def dataset_kind(manifest: dict[str, Any]) -> str:
    """``audio`` or ``spectrograms`` (a version-1 dataset)."""
    return str(manifest.get("kind", "spectrograms"))


def read_manifest(root: Path) -> dict[str, Any]:
    """``root/manifest.json``, checked to be a specsr dataset of the version this code reads."""
    path = root / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecsrError(f"{root}: not a specsr dataset (no {MANIFEST_NAME})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SpecsrError(f"{path}: cannot read the manifest ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != DATASET_FORMAT:
        raise SpecsrError(f"{root}: not a specsr dataset ({MANIFEST_NAME} has no format {DATASET_FORMAT!r})")
    version = data.get("version")
    if version not in READABLE_VERSIONS:
        newer = isinstance(version, int) and version > DATASET_VERSION
        raise SpecsrError(f"{root}: dataset version {version!r} is not supported (this specsr reads versions "
                          f"{', '.join(map(str, READABLE_VERSIONS))})"
                          + ("; it was made by a newer specsr: upgrade" if newer else "; rerun specsr convert"))
    if dataset_kind(data) not in KINDS:
        raise SpecsrError(f"{root}: unknown dataset kind {data.get('kind')!r}; rerun specsr convert")
    return data


@dataclass(frozen=True)
class DatasetInfo:
    """A parsed ``manifest.json``."""

    root: Path
    kind: str  # "audio" or "spectrograms"
    version: int
    stft: STFTConfig | None  # spectrogram datasets: the STFT of their images
    sr_out: int
    n_frames: int
    segment_samples: int
    settings: dict
    items: list[dict]
    shards: list[dict]
    manifest_sha256: str


def load_dataset_info(root: str | os.PathLike) -> DatasetInfo:
    """Read and check ``root/manifest.json``; ``SpecsrError`` if it is not a specsr dataset we can read."""
    root = Path(root)
    if not root.is_dir():
        raise SpecsrError(f"{root}: no such dataset folder")
    data = read_manifest(root)
    try:
        raw = (root / MANIFEST_NAME).read_bytes()
        kind = dataset_kind(data)
        info = DatasetInfo(root=root, kind=kind, version=int(data["version"]),
                           stft=STFTConfig.from_dict(data["stft"]) if kind == "spectrograms" else None,
                           sr_out=int(data["sr_out"]), n_frames=int(data.get("n_frames", 0)),
                           segment_samples=int(data["segment_samples"]),
                           settings=dict(data["settings"]), items=list(data["items"]), shards=list(data["shards"]),
                           manifest_sha256=hashlib.sha256(raw).hexdigest())
    except (KeyError, TypeError, ValueError) as exc:
        raise SpecsrError(f"{root / MANIFEST_NAME}: malformed manifest ({type(exc).__name__}: {exc})") from None
    for shard in info.shards:
        # an audio shard's one file, or a pair shard's images (val's waveforms: checked by the reader needing them)
        for name in shard_file_names(info.kind, shard)[: len(SPEC_KINDS)]:
            if not (root / SHARD_DIR / name).is_file():
                raise SpecsrError(f"{root}: shard {shard['name']} is listed but its file {name} is missing")
    return info


class SpectrogramPairs(torch.utils.data.Dataset):
    """Pairs of one split of a dataset, read from memory-mapped shards (opened lazily in each worker).

    ``dataset[i]`` is a dict: ``input`` / ``target`` float32 ``[F, T]`` log10-power (``T = n_frames``, or
    ``crop_frames`` with a crop), ``cutoff_hz`` and ``source_nyquist_hz`` (float32 scalars) and ``sr_in``
    (int64 scalar). A crop takes ``crop_frames`` frames at a random offset; a shorter segment is padded
    with ``LOG_POWER_PAD`` (silence). Offsets come from torch's RNG inside DataLoader workers (which
    DataLoader seeds) and from a generator seeded with ``seed`` in the main process.
    ``with_waveforms`` (val only) adds ``wav_input`` / ``wav_target`` float32 ``[segment_samples]`` and
    turns cropping off.
    """

    def __init__(self, root: str | os.PathLike, split: str, crop_frames: int | None = None, *, seed: int = 0,
                 with_waveforms: bool = False) -> None:
        if split not in SPLITS:
            raise SpecsrError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
        if crop_frames is not None and crop_frames < 1:
            raise SpecsrError(f"crop frames must be >= 1, got {crop_frames}")
        self.info = load_dataset_info(root)
        if self.info.kind != "spectrograms":
            raise SpecsrError(f"{root}: an audio dataset holds no spectrogram pairs (training makes them on the "
                              "fly); specsr convert --spectrograms writes them")
        self.split = split
        self.items = [it for it in self.info.items if it["split"] == split]
        if not self.items:
            raise SpecsrError(f"{root}: the dataset has no {split} items")
        self.with_waveforms = with_waveforms
        self.crop_frames = None if with_waveforms else crop_frames
        self.seed = seed
        if with_waveforms:
            if split != "val":
                raise SpecsrError("waveforms are stored for the val split only")
            for name in {it["shard"] for it in self.items}:
                for kind in WAVE_KINDS:
                    if not shard_file(self.info.root / SHARD_DIR, name, kind).is_file():
                        raise SpecsrError(f"{root}: shard {name} has no {kind} file")
        self._arrays: dict[tuple[str, str], np.ndarray] = {}
        self._generator: torch.Generator | None = None

    def __len__(self) -> int:
        return len(self.items)

    @property
    def generator(self) -> torch.Generator:
        """The main process's crop-offset generator (training saves and restores its state on resume)."""
        if self._generator is None:
            self._generator = torch.Generator().manual_seed(self.seed)
        return self._generator

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_arrays"], state["_generator"] = {}, None  # each worker maps the files itself
        return state

    def _array(self, shard: str, kind: str) -> np.ndarray:
        key = (shard, kind)
        if key not in self._arrays:
            self._arrays[key] = np.load(shard_file(self.info.root / SHARD_DIR, shard, kind), mmap_mode="r")
        return self._arrays[key]

    def _offset(self, high: int) -> int:
        """A random integer in ``[0, high]``."""
        if torch.utils.data.get_worker_info() is not None:
            return int(torch.randint(0, high + 1, (1,)).item())
        return int(torch.randint(0, high + 1, (1,), generator=self.generator).item())

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        it = self.items[i]
        x = torch.from_numpy(np.asarray(self._array(it["shard"], "input")[it["index"]], dtype=np.float32))
        y = torch.from_numpy(np.asarray(self._array(it["shard"], "target")[it["index"]], dtype=np.float32))
        if self.crop_frames is not None:
            n = x.shape[-1]
            if n >= self.crop_frames:
                start = self._offset(n - self.crop_frames)
                x, y = x[:, start:start + self.crop_frames], y[:, start:start + self.crop_frames]
            else:
                pad = (0, self.crop_frames - n)
                x = torch.nn.functional.pad(x, pad, value=LOG_POWER_PAD)
                y = torch.nn.functional.pad(y, pad, value=LOG_POWER_PAD)
        out = {"input": x.contiguous(), "target": y.contiguous(),
               "cutoff_hz": torch.tensor(float(it["cutoff_hz"]), dtype=torch.float32),
               "source_nyquist_hz": torch.tensor(float(it["source_nyquist_hz"]), dtype=torch.float32),
               "sr_in": torch.tensor(int(it["sr_in"]), dtype=torch.int64)}
        if self.with_waveforms:
            for kind in WAVE_KINDS:
                out[kind] = torch.from_numpy(np.array(self._array(it["shard"], kind)[it["index"]], dtype=np.float32))
        return out
