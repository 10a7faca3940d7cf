"""Training datasets of low/high-resolution spectrogram pairs: the writer (``specsr convert``) and the reader.

Method. Every full-band source file is mixed to mono, resampled to ``sr_out``, trimmed of leading and
trailing silence and cut into segments of ``segment_seconds``. Each segment gives ``variants`` pairs: a
degradation drawn by :func:`specsr.degrade.random_degradation` (input rate and filter family) turns the
segment, optionally with a low coloured noise floor added first (real recordings have one; the target
keeps it too), into its low-resolution version. Both are stored as log10-power spectrograms of the
model's STFT. The random draws of a segment come from ``(seed, relative source path, segment index)``
only, so a dataset does not depend on worker scheduling, on file order or on being resumed.

Splits are by group (a VCTK speaker, otherwise a source folder), so that validation never hears a
training speaker; VCTK's standard test speakers are never written at all.

On disk, ``DATASET_DIR``::

    manifest.json                 what is in the dataset (see ``build_dataset``); a shard counts only
                                  once it is listed here
    shards/<name>.input.npy       float16 [N, F, n_frames]  log10-power of the degraded segments
    shards/<name>.target.npy      float16 [N, F, n_frames]  log10-power of the full-band segments
    shards/<name>.wav_input.npy   float32 [N, segment_samples]  (val shards only) degraded waveforms
    shards/<name>.wav_target.npy  float32 [N, segment_samples]  (val shards only) full-band waveforms

The reader is :func:`load_dataset_info` and :class:`SpectrogramPairs` (a torch ``Dataset`` over
memory-mapped shards).
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import re
import shutil
import sys
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch

from specsr import __version__
from specsr.audio import AudioInfo, audio_info, find_audio_files, read_audio, resample
from specsr.config import DEFAULT_SR_IN_CHOICES, STFT_PRESETS, VCTK_TEST_SPEAKERS, STFTConfig
from specsr.cutoff import detect_cutoff
from specsr.degrade import FILTER_FAMILIES, apply, random_degradation
from specsr.errors import SpecsrError
from specsr.spectral import LOG_POWER_FLOOR, log_power, n_frames, stft
from specsr.utils import atomic_write_text

MANIFEST_NAME = "manifest.json"
DATASET_FORMAT = "specsr-dataset"
DATASET_VERSION = 1
FEATURE = "log10_power"
SPLITS = ("train", "val")
# The value a crop pads with: log10 of the log-power floor (silence).
LOG_POWER_PAD = math.log10(LOG_POWER_FLOOR)

# Fixed parts of the recipe (recorded in the manifest's settings, so a change is noticed on resume).
TRIM_DB = 60.0  # leading/trailing frames this far below the loudest frame are trimmed
SILENT_SEGMENT_DB = 50.0  # segments this far below the file's loudest segment are dropped
NOISE_FLOOR_PROB = 0.5  # share of variants that get a noise floor
_TRIM_BLOCK = 1024  # samples per frame of the silence trim
_READ_BLOCK = 1 << 22  # frames per read of a long file
_SHARD_DIR = "shards"
_WORK_DIR = "tmp"  # worker outputs on their way into shards; removed at the start and the end of a run
_WAVE_KINDS = ("wav_input", "wav_target")
_SPEC_KINDS = ("input", "target")

_VCTK_ROOTS = ("wav48_silence_trimmed", "wav48")
_SPEAKER_DIR = re.compile(r"^(p\d{3}|s\d+)$")
_VCTK_NAME = re.compile(r"^(p\d{3}|s\d+)_\d+(?:_mic(\d))?$")


def stable_hash(text: str) -> int:
    """A hash that is the same in every process and Python version (CRC-32 of UTF-8)."""
    return zlib.crc32(text.encode("utf-8"))


# ----------------------------------------------------------------------------------------------------
# Finding sources


@dataclass(frozen=True)
class SourceFile:
    """One source file: where it is, its key in the manifest, its group and (VCTK) speaker."""

    path: Path
    relpath: str
    group: str
    speaker: str | None = None


@dataclass
class SourceScan:
    """Result of :func:`discover_sources`: usable files, excluded test files, ignored microphones."""

    files: list[SourceFile]
    test_files: dict[str, int] = field(default_factory=dict)  # test speaker -> number of files
    other_mics: int = 0
    n_vctk: int = 0


def discover_sources(sources: Sequence[str | os.PathLike], *, test_speakers: Iterable[str] = VCTK_TEST_SPEAKERS,
                     all_mics: bool = False) -> SourceScan:
    """Find the audio files of ``sources`` (folders, single files, or .txt lists of paths).

    Keys (``relpath``) are paths relative to their source (prefixed with the source's name when there
    are several sources). Groups: the speaker in a VCTK layout (``wav48_silence_trimmed/pXXX`` or
    ``wav48/pXXX``), otherwise the file's folder relative to its source, or the file itself at the top.
    VCTK-named files (``pXXX_NNN_micK``) other than mic1 are ignored unless ``all_mics``; files of a
    test speaker (by VCTK folder or VCTK file name) are counted in ``test_files`` and left out.
    """
    if not sources:
        raise SpecsrError("no SOURCE given")
    tests = {s.strip().lower() for s in test_speakers if s.strip()}
    roots = [Path(s) for s in sources]
    labels = _source_labels(roots) if len(roots) > 1 else [""]
    scan = SourceScan(files=[])
    seen: set[str] = set()
    for root, label in zip(roots, labels, strict=True):
        for path, rel, top in _list_source(root):
            key = f"{label}/{rel.as_posix()}" if label else rel.as_posix()
            if key in seen:
                continue
            seen.add(key)
            speaker, in_layout, mic = _vctk_speaker(top, rel)
            if mic is not None and mic != "1" and not all_mics:
                scan.other_mics += 1
                continue
            if speaker is not None and speaker in tests:
                scan.test_files[speaker] = scan.test_files.get(speaker, 0) + 1
                continue
            if in_layout:
                group = speaker or key
                scan.n_vctk += 1
            else:
                parent = rel.parent.as_posix()
                group = (f"{label}/{parent}" if label else parent) if parent not in ("", ".") else key
            scan.files.append(SourceFile(path=path, relpath=key, group=group, speaker=speaker))
    scan.files.sort(key=lambda f: f.relpath)
    return scan


def _source_labels(roots: list[Path]) -> list[str]:
    labels: list[str] = []
    for root in roots:
        base = (root.stem if root.is_file() else root.resolve().name) or "source"
        label, n = base, 2
        while label in labels:
            label, n = f"{base}-{n}", n + 1
        labels.append(label)
    return labels


def _list_source(root: Path) -> list[tuple[Path, PurePosixPath, str]]:
    """``(path, path relative to the source, name of the source folder)`` of every listed file."""
    if not root.exists():
        raise SpecsrError(f"{root}: no such file or folder")
    if root.is_file() and root.suffix.lower() == ".txt":
        base = root.resolve().parent
        try:
            lines = root.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecsrError(f"{root}: cannot read the list of files ({exc})") from None
        out = []
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            p = Path(line)
            full = p if p.is_absolute() else base / p
            out.append((full, PurePosixPath(p.as_posix().lstrip("/")), base.name))
        return out
    if root.is_file():
        return [(root, PurePosixPath(root.name), root.resolve().parent.name)]
    try:
        files = find_audio_files(root)
    except OSError as exc:
        raise SpecsrError(f"{root}: cannot list the folder ({exc.strerror or exc})") from None
    return [(p, PurePosixPath(p.relative_to(root).as_posix()), root.resolve().name) for p in files]


def _vctk_speaker(top: str, rel: PurePosixPath) -> tuple[str | None, bool, str | None]:
    """``(speaker, in a VCTK folder layout, mic number)`` of a file, from its folders and name."""
    dirs = (top, *rel.parts[:-1])
    speaker, in_layout = None, False
    for i in range(len(dirs) - 1):
        if dirs[i] in _VCTK_ROOTS and _SPEAKER_DIR.match(dirs[i + 1]):
            speaker, in_layout = dirs[i + 1], True
    m = _VCTK_NAME.match(rel.stem)
    if m is None:
        return speaker, in_layout, None
    return speaker or m.group(1), in_layout, m.group(2)


def assign_splits(files: Sequence[SourceFile], val_fraction: float, seed: int,
                  usable: Callable[[SourceFile], bool] | None = None,
                  val_groups: Sequence[str] | None = None) -> tuple[dict[str, str], str]:
    """Split ``files`` into train/val by group; returns ``({relpath: split}, "group" | "file")``.

    Groups are ranked by ``stable_hash(seed:group)``; the first ``round(val_fraction · n_groups)`` of
    them (at least one when there are two or more groups and ``val_fraction > 0``) that hold a
    ``usable`` file go to val, as long as a usable group is left for train. ``usable`` is a cheap
    guess (e.g. from the file header) that keeps a group of unusable files from taking val's place.
    With a single group, whole files are split the same way instead (mode ``"file"``).
    ``val_groups`` names the val groups instead (``val_fraction`` and ``seed`` are then not used).
    """
    by_group: dict[str, list[SourceFile]] = {}
    for f in files:
        by_group.setdefault(f.group, []).append(f)
    if val_groups:
        chosen = set(val_groups)
        unknown = sorted(chosen - set(by_group))
        if unknown:
            known = sorted(by_group)
            listed = ", ".join(known[:20]) + (f", … ({len(known)} in all)" if len(known) > 20 else "")
            raise SpecsrError(f"--val-groups: no group named {', '.join(unknown)}; groups: {listed}")
        if chosen >= set(by_group):
            raise SpecsrError("--val-groups names every group: leave at least one for training")
        return {f.relpath: "val" if f.group in chosen else "train" for f in files}, "group"
    if len(by_group) >= 2:
        val = _pick_val(by_group, val_fraction, seed, usable)
        return {f.relpath: "val" if f.group in val else "train" for f in files}, "group"
    val = _pick_val({f.relpath: [f] for f in files}, val_fraction, seed, usable)
    return {f.relpath: "val" if f.relpath in val else "train" for f in files}, "file"


def _pick_val(units: dict[str, list[SourceFile]], val_fraction: float, seed: int,
              usable: Callable[[SourceFile], bool] | None) -> set[str]:
    n = len(units)
    if n < 2 or val_fraction <= 0:
        return set()
    k = min(n - 1, max(1, round(val_fraction * n)))
    val: list[str] = []
    for name in sorted(units, key=lambda u: (stable_hash(f"{seed}:{u}"), u)):
        if usable is not None and not any(usable(f) for f in units[name]):
            continue  # checked lazily: only the first few groups of the ranking are looked at
        if len(val) == k:
            return set(val)  # and a usable group is left for train
        val.append(name)
    return set(val[:-1])  # no usable group left for train: give it the last one


def _header_usable(sr_out: int, min_seconds: float) -> Callable[[SourceFile], bool]:
    """Whether a file's header promises a usable source (readable, rate and length high enough)."""

    def usable(f: SourceFile) -> bool:
        try:
            info = audio_info(f.path)
        except SpecsrError:
            return False
        return info.sample_rate >= 0.9 * sr_out and info.seconds >= min_seconds

    return usable


# ----------------------------------------------------------------------------------------------------
# Per-file work (runs in worker processes)


@dataclass(frozen=True)
class _Recipe:
    """Everything a worker needs to turn a file into pairs (picklable)."""

    stft: STFTConfig
    sr_out: int
    segment_samples: int
    n_frames: int
    sr_in_choices: tuple[int, ...] | None
    sr_in_range: tuple[int, int] | None
    families: tuple[str, ...]
    variants: int
    seed: int
    noise_floor_db: tuple[float, float] | None
    min_content_hz: float
    allow_band_limited: bool


@dataclass(frozen=True)
class _FileTask:
    index: int
    source: SourceFile
    split: str
    work_dir: str
    recipe: _Recipe


@dataclass
class _FileResult:
    relpath: str
    split: str
    status: str  # "used" | "skipped"
    reason: str = ""
    detail: str = ""
    seconds: float = 0.0  # audio kept in segments (without padding)
    sample_rate: int = 0
    n_segments: int = 0
    silent_segments: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)
    arrays: dict[str, str] = field(default_factory=dict)  # kind -> .npy path in the work folder

    def record(self) -> dict[str, Any]:
        """The entry of ``manifest["sources"]``."""
        if self.status == "skipped":
            return {"status": "skipped", "split": self.split, "reason": self.reason, "detail": self.detail}
        return {"status": "used", "split": self.split, "n_items": len(self.items), "seconds": round(self.seconds, 3),
                "sample_rate": self.sample_rate, "n_segments": self.n_segments,
                "silent_segments": self.silent_segments}


def _init_worker() -> None:
    torch.set_num_threads(1)  # one process per core


def _process_file(task: _FileTask) -> _FileResult:
    """Never raises for a bad file: returns a skipped result with a reason instead."""
    try:
        return _process_file_unsafe(task)
    except SpecsrError as exc:
        return _skipped(task, "unreadable", str(exc))
    except MemoryError:
        return _skipped(task, "error", "out of memory")
    except Exception as exc:  # an exotic file must not end a long run; it is counted and reported
        return _skipped(task, "error", f"{type(exc).__name__}: {exc}")


def _skipped(task: _FileTask, reason: str, detail: str = "") -> _FileResult:
    return _FileResult(task.source.relpath, task.split, "skipped", reason=reason, detail=detail)


def _process_file_unsafe(task: _FileTask) -> _FileResult:
    src, r = task.source, task.recipe
    if not src.path.exists():
        return _skipped(task, "missing", f"{src.path}: no such file")
    if src.path.stat().st_size == 0:
        return _skipped(task, "empty", f"{src.path}: the file is empty (0 bytes)")
    try:
        info = audio_info(src.path)
    except SpecsrError as exc:
        return _skipped(task, "unreadable", str(exc))
    if info.n_frames == 0:
        return _skipped(task, "empty", f"{src.path}: the file holds no samples")
    sr = info.sample_rate
    if sr < 0.9 * r.sr_out:
        return _skipped(task, "rate below sr_out", f"{sr} Hz < 0.9 x {r.sr_out} Hz")
    mono = _read_mono(src.path, info)
    est = detect_cutoff(mono, sr)
    if est.silent:
        return _skipped(task, "silent")
    # content limit: the detected edge of a band-limited file, else Nyquist
    content_hz = est.cutoff_hz if est.band_limited else sr / 2
    if est.band_limited and est.cutoff_hz < min(r.min_content_hz, 0.8 * sr / 2) and not r.allow_band_limited:
        return _skipped(task, "band-limited", f"no content above {est.cutoff_hz:.0f} Hz")
    x = resample(mono, sr, r.sr_out) if sr != r.sr_out else mono
    del mono
    start, stop = _trim_bounds(x, TRIM_DB)
    seg_len = r.segment_samples
    if 2 * (stop - start) < seg_len:
        return _skipped(task, "too short", f"{(stop - start) / r.sr_out:.2f} s of sound")
    n_seg = (stop - start) // seg_len + int(2 * ((stop - start) % seg_len) >= seg_len)
    bounds = [(start + k * seg_len, min(start + (k + 1) * seg_len, stop)) for k in range(n_seg)]
    level_db = np.array([10 * np.log10(np.mean(np.square(x[a:b], dtype=np.float64)) + 1e-20) for a, b in bounds])
    kept = [k for k in range(n_seg) if level_db[k] >= level_db.max() - SILENT_SEGMENT_DB]
    if not kept:
        return _skipped(task, "silent")

    n_items = len(kept) * r.variants
    stem = Path(task.work_dir) / f"{task.index:07d}-{stable_hash(src.relpath):08x}"
    kinds = _SPEC_KINDS + (_WAVE_KINDS if task.split == "val" else ())
    out: dict[str, np.ndarray] = {}
    paths: dict[str, str] = {}
    for kind in kinds:
        paths[kind] = f"{stem}.{kind}.npy"
        shape = (n_items, r.stft.n_bins, r.n_frames) if kind in _SPEC_KINDS else (n_items, seg_len)
        dtype = np.float16 if kind in _SPEC_KINDS else np.float32
        out[kind] = np.lib.format.open_memmap(paths[kind], mode="w+", dtype=dtype, shape=shape)
    items: list[dict[str, Any]] = []
    seconds = 0.0
    for j, k in enumerate(kept):
        a, b = bounds[k]
        seconds += (b - a) / r.sr_out
        segment = np.zeros(seg_len, dtype=np.float32)
        segment[: b - a] = x[a:b]  # the last segment may be zero-padded
        lows, targets, metas = _make_variants(segment, k, src, task.split, content_hz, sr, r)
        spec = log_power(stft(torch.from_numpy(np.concatenate([lows, targets])), r.stft)).numpy()
        rows = slice(j * r.variants, (j + 1) * r.variants)
        out["input"][rows] = spec[: r.variants]
        out["target"][rows] = spec[r.variants:]
        if task.split == "val":
            out["wav_input"][rows] = lows
            out["wav_target"][rows] = targets
        items.extend(metas)
    for arr in out.values():
        arr.flush()  # type: ignore[attr-defined]
    del out
    return _FileResult(src.relpath, task.split, "used", seconds=seconds, sample_rate=sr, n_segments=n_seg,
                       silent_segments=n_seg - len(kept), items=items, arrays=paths)


def _make_variants(segment: np.ndarray, seg_index: int, src: SourceFile, split: str, content_hz: float,
                   source_sr: int, r: _Recipe) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """``variants`` (degraded ``[V, T]``, full-band ``[V, T]``, item records) of one segment ``[T]``."""
    rng = np.random.default_rng([r.seed, stable_hash(src.relpath), seg_index])
    lows = np.empty((r.variants, len(segment)), dtype=np.float32)
    targets = np.empty_like(lows)
    metas = []
    for v in range(r.variants):
        d = random_degradation(rng, sr_in_choices=r.sr_in_choices, sr_in_range=r.sr_in_range, families=r.families)
        target = segment
        noise_db: float | None = None
        colour: str | None = None
        if r.noise_floor_db is not None and rng.random() < NOISE_FLOOR_PROB:
            noise_db = float(rng.uniform(*r.noise_floor_db))
            colour = "pink" if rng.random() < 0.5 else "white"
            target = segment + _noise_floor(rng, len(segment), r.sr_out, noise_db, colour)
        targets[v] = target
        lows[v] = apply(target, r.sr_out, d)
        metas.append({
            "id": f"{src.relpath}:{seg_index}:{v}", "source": src.relpath, "group": src.group, "split": split,
            "segment": seg_index, "variant": v, "sr_in": d.sr_in, "filter": d.filter, "filter_order": d.order,
            "cutoff_hz": round(d.cutoff_hz, 3), "source_sr": source_sr, "source_nyquist_hz": round(content_hz, 3),
            "noise_floor_db": None if noise_db is None else round(noise_db, 3), "noise_colour": colour,
        })
    return lows, targets, metas


def _noise_floor(rng: np.random.Generator, n_samples: int, sample_rate: int, level_db: float,
                 colour: str) -> np.ndarray:
    """Gaussian noise ``[n_samples]`` at RMS ``level_db`` dBFS; ``pink`` falls 3 dB per octave (above 20 Hz)."""
    noise = rng.standard_normal(n_samples)
    if colour == "pink":
        spec = np.fft.rfft(noise)
        freqs = np.maximum(np.fft.rfftfreq(n_samples, 1.0 / sample_rate), 20.0)
        spec /= np.sqrt(freqs / 20.0)
        spec[0] = 0.0
        noise = np.fft.irfft(spec, n_samples)
    rms = float(np.sqrt(np.mean(noise**2))) or 1.0
    return (noise * (10 ** (level_db / 20) / rms)).astype(np.float32)


def _read_mono(path: Path, info: AudioInfo) -> np.ndarray:
    """The file mixed to mono (mean of channels), float32 ``[T]``; long files are read in blocks."""
    if info.n_frames <= _READ_BLOCK:
        wav, _ = read_audio(path)
        return wav.mean(axis=0) if wav.shape[0] > 1 else wav[0]
    mono = np.empty(info.n_frames, dtype=np.float32)
    pos = 0
    while pos < info.n_frames:
        wav, _ = read_audio(path, allow_empty=True, start=pos, stop=min(info.n_frames, pos + _READ_BLOCK))
        if wav.shape[1] == 0:
            break
        mono[pos:pos + wav.shape[1]] = wav.mean(axis=0)
        pos += wav.shape[1]
    if pos == 0:
        raise SpecsrError(f"{path}: the file holds no samples")
    return mono[:pos]


def _trim_bounds(x: np.ndarray, trim_db: float) -> tuple[int, int]:
    """``(start, stop)`` of ``x`` ``[T]`` without the leading/trailing frames ``trim_db`` below the loudest."""
    n_blocks = -(-len(x) // _TRIM_BLOCK)
    padded = np.zeros(n_blocks * _TRIM_BLOCK, dtype=np.float64)
    padded[: len(x)] = x
    energy = np.mean(padded.reshape(n_blocks, _TRIM_BLOCK) ** 2, axis=1)
    peak = float(energy.max()) if n_blocks else 0.0
    if peak <= 0:
        return 0, 0
    active = np.flatnonzero(energy >= peak * 10 ** (-trim_db / 10))
    return int(active[0]) * _TRIM_BLOCK, min(len(x), (int(active[-1]) + 1) * _TRIM_BLOCK)


# ----------------------------------------------------------------------------------------------------
# Shards and manifest (parent process)


def _shard_file(shard_dir: Path, name: str, kind: str) -> Path:
    return shard_dir / f"{name}.{kind}.npy"


class _ShardWriter:
    """Fills the shards of one split, item by item, in memory-mapped temp files renamed when complete."""

    def __init__(self, shard_dir: Path, split: str, first_index: int, shard_size: int, n_bins: int,
                 n_frames: int, segment_samples: int) -> None:
        self.shard_dir, self.split, self.next_index, self.shard_size = shard_dir, split, first_index, shard_size
        self.kinds = _SPEC_KINDS + (_WAVE_KINDS if split == "val" else ())
        self.shapes = {k: (n_bins, n_frames) if k in _SPEC_KINDS else (segment_samples,) for k in self.kinds}
        self.arrays: dict[str, np.ndarray] = {}
        self.items: list[dict[str, Any]] = []

    @property
    def name(self) -> str:
        return f"{self.split}-{self.next_index:05d}"

    def _tmp(self, kind: str) -> Path:
        return self.shard_dir / f"{self.name}.{kind}.npy.tmp"

    def add(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> tuple[dict[str, Any], list[dict]] | None:
        """Append one item; returns ``(shard record, its items)`` when that fills the shard."""
        if not self.arrays:
            for kind in self.kinds:
                dtype = np.float16 if kind in _SPEC_KINDS else np.float32
                self.arrays[kind] = np.lib.format.open_memmap(
                    self._tmp(kind), mode="w+", dtype=dtype, shape=(self.shard_size, *self.shapes[kind]))
        i = len(self.items)
        for kind in self.kinds:
            self.arrays[kind][i] = arrays[kind]
        self.items.append({**meta, "shard": self.name, "index": i})
        return self.close() if len(self.items) == self.shard_size else None

    def close(self) -> tuple[dict[str, Any], list[dict]] | None:
        """Finish the current shard (a partial one is cut to its items); None when it is empty."""
        if not self.items:
            return None
        n = len(self.items)
        for kind in self.kinds:
            arr = self.arrays[kind]
            tmp = self._tmp(kind)
            if n < self.shard_size:  # copy the filled rows into a file of the exact shape
                cut = tmp.with_name(tmp.name + ".cut")
                exact = np.lib.format.open_memmap(cut, mode="w+", dtype=arr.dtype, shape=(n, *arr.shape[1:]))
                for start in range(0, n, 16):
                    stop = min(n, start + 16)
                    exact[start:stop] = arr[start:stop]
                exact.flush()
                del exact
                del arr
                tmp.unlink()
                tmp = cut
            else:
                arr.flush()  # type: ignore[attr-defined]
                del arr
            self.arrays[kind] = None  # type: ignore[assignment]
            os.replace(tmp, _shard_file(self.shard_dir, self.name, kind))
        record = {"name": self.name, "split": self.split, "n_items": n}
        items = self.items
        self.arrays, self.items = {}, []
        self.next_index += 1
        return record, items


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, separators=(",", ":")))


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecsrError(f"{root}: not a specsr dataset (no {MANIFEST_NAME})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SpecsrError(f"{path}: cannot read the manifest ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != DATASET_FORMAT:
        raise SpecsrError(f"{root}: not a specsr dataset ({MANIFEST_NAME} has no format {DATASET_FORMAT!r})")
    if data.get("version") != DATASET_VERSION:
        raise SpecsrError(f"{root}: dataset version {data.get('version')!r} is not supported "
                          f"(this specsr reads version {DATASET_VERSION})")
    return data


def _prepare_output(root: Path) -> dict[str, Any] | None:
    """Create or check the output folder; the existing manifest when resuming, else None."""
    if root.exists() and not root.is_dir():
        raise SpecsrError(f"{root}: exists and is not a folder")
    if root.is_dir():
        if (root / MANIFEST_NAME).exists():
            manifest = _read_manifest(root)
        elif any(root.iterdir()):
            raise SpecsrError(f"{root}: the folder is not empty and is not a specsr dataset; "
                              "choose an empty or new folder")
        else:
            manifest = None
    else:
        try:
            root.mkdir(parents=True)
        except OSError as exc:
            raise SpecsrError(f"{root}: cannot create the output folder ({exc.strerror or exc})") from None
        manifest = None
    probe = root / f".specsr-write-test.{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
        (root / _SHARD_DIR).mkdir(exist_ok=True)
    except OSError as exc:
        raise SpecsrError(f"{root}: the output folder is not writable ({exc.strerror or exc})") from None
    return manifest


def _remove_strays(root: Path, manifest: dict[str, Any]) -> int:
    """Delete files no manifest entry accounts for (temp files, shards of a killed run)."""
    listed = {f"{s['name']}.{kind}.npy" for s in manifest["shards"]
              for kind in _SPEC_KINDS + (_WAVE_KINDS if s["split"] == "val" else ())}
    removed = 0
    for p in (root / _SHARD_DIR).iterdir():
        if p.name not in listed:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
            removed += 1
    for p in root.glob(f".{MANIFEST_NAME}.*.tmp"):
        p.unlink()
        removed += 1
    if (root / _WORK_DIR).exists():
        shutil.rmtree(root / _WORK_DIR)
    return removed


def _settings_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human-readable differences between two JSON-like settings dicts."""
    diffs = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True):
            diffs.append(f"{key} (dataset: {json.dumps(a)}, requested: {json.dumps(b)})")
    return diffs


def _folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


# ----------------------------------------------------------------------------------------------------
# The builder


@dataclass
class ConvertSummary:
    """What :func:`build_dataset` did (the whole dataset, plus what this run added)."""

    output_dir: str
    files_used: int
    files_skipped: dict[str, int]
    files_processed: int  # this run
    files_resumed: int  # recorded by an earlier run, not processed again
    files_left: int  # not processed because of max_files
    other_mics: int
    seconds_used: float
    segments_used: int
    segments_silent: int
    pairs: dict[str, int]
    groups: dict[str, int]
    split_mode: str
    test_files: dict[str, int]
    n_shards: int
    disk_bytes: int
    wall_seconds: float
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self) -> str:
        """A few lines for the terminal."""
        skipped = sum(self.files_skipped.values())
        reasons = ", ".join(f"{r}: {n}" for r, n in sorted(self.files_skipped.items(), key=lambda kv: -kv[1]))
        lines = [f"dataset: {self.output_dir}"]
        files = f"files: {self.files_used} used, {skipped} skipped" + (f" ({reasons})" if reasons else "")
        if self.other_mics:
            files += f"; {self.other_mics} files of other microphones ignored"
        lines.append(files)
        lines.append(f"audio used: {self.seconds_used / 60:.1f} min in {self.segments_used} segments"
                     f" ({self.segments_silent} silent segments dropped)")
        lines.append("pairs: " + ", ".join(f"{s} {self.pairs.get(s, 0)}" for s in SPLITS))
        by = "speaker/folder" if self.split_mode == "group" else "file (only one group)"
        lines.append("groups: " + ", ".join(f"{s} {self.groups.get(s, 0)}" for s in SPLITS) + f" (split by {by})")
        tests = ", ".join(f"{s} ({n} files)" for s, n in sorted(self.test_files.items())) or "none found"
        lines.append(f"test speakers excluded: {tests}")
        size = f"{self.disk_bytes / 1e9:.2f} GB" if self.disk_bytes >= 1e9 else f"{self.disk_bytes / 1e6:.1f} MB"
        lines.append(f"disk: {size} in {self.n_shards} shards")
        run = f"time: {self.wall_seconds:.1f} s ({self.files_processed} files processed this run"
        if self.files_resumed:
            run += f", {self.files_resumed} done before"
        if self.files_left:
            run += f", {self.files_left} left for a later run"
        lines.append(run + ")")
        return "\n".join(lines)


def build_dataset(
    sources: Sequence[str | os.PathLike],
    output_dir: str | os.PathLike,
    *,
    sr_out: int = 48000,
    sr_in_choices: Sequence[int] | None = None,
    sr_in_range: tuple[int, int] | None = None,
    filters: Sequence[str] = ("mix",),
    variants: int = 4,
    segment_seconds: float = 3.0,
    val_fraction: float = 0.1,
    val_groups: Sequence[str] | None = None,
    workers: int | None = None,
    stft_preset: str = "48k-2048",
    seed: int = 0,
    test_speakers: Sequence[str] = VCTK_TEST_SPEAKERS,
    allow_band_limited: bool = False,
    noise_floor_db: tuple[float, float] | None = (-90.0, -60.0),
    max_files: int | None = None,
    all_mics: bool = False,
    min_content_hz: float = 16000.0,
    shard_size: int = 256,
    progress: bool = True,
    on_warning: Callable[[str], None] | None = None,
) -> ConvertSummary:
    """Build (or resume) a dataset of spectrogram pairs from ``sources`` in ``output_dir``.

    ``sr_in_choices`` (``DEFAULT_SR_IN_CHOICES`` when neither is given) or ``sr_in_range`` (Hz, uniform) give the input
    rates; ``filters`` are degradation families (``"mix"`` = all of them). ``val_groups`` names the
    validation groups (speakers or top-level folders) instead of drawing ``val_fraction`` of them.
    ``noise_floor_db`` is the dBFS range of the noise floor added to half the variants (None: no
    noise). ``max_files`` limits this run to the first files (sorted); a rerun goes on where a run
    stopped. ``on_warning`` receives one line per unreadable file. Raises :class:`SpecsrError` for
    bad settings, a source without audio, an output folder that is not writable, not a dataset, or
    built with other settings.
    """
    t0 = time.monotonic()
    warn = on_warning or (lambda _msg: None)
    settings, recipe = _check_settings(
        sr_out=sr_out, sr_in_choices=sr_in_choices, sr_in_range=sr_in_range, filters=filters, variants=variants,
        segment_seconds=segment_seconds, val_fraction=val_fraction, stft_preset=stft_preset, seed=seed,
        test_speakers=test_speakers, allow_band_limited=allow_band_limited, noise_floor_db=noise_floor_db,
        all_mics=all_mics, min_content_hz=min_content_hz)
    if val_groups:  # recorded only when used, so that datasets built before the option still resume
        settings["val_groups"] = sorted(set(val_groups))
    n_workers = min(2, os.cpu_count() or 1) if workers is None else workers
    if n_workers < 1:
        raise SpecsrError(f"workers must be >= 1, got {n_workers}")
    if shard_size < 1:
        raise SpecsrError(f"shard size must be >= 1, got {shard_size}")
    if max_files is not None and max_files < 1:
        raise SpecsrError(f"max files must be >= 1, got {max_files}")

    scan = discover_sources(sources, test_speakers=settings["test_speakers"], all_mics=all_mics)
    if not scan.files:
        where = ", ".join(str(s) for s in sources)
        if scan.test_files:
            raise SpecsrError(f"{where}: only files of test speakers ({', '.join(sorted(scan.test_files))}) found")
        raise SpecsrError(f"{where}: no audio files found")
    usable = _header_usable(sr_out, recipe.segment_samples / sr_out / 2)
    splits, split_mode = assign_splits(scan.files, val_fraction, seed, usable, val_groups=val_groups)

    root = Path(output_dir)
    manifest = _prepare_output(root)
    header = {"format": DATASET_FORMAT, "version": DATASET_VERSION, "stft": recipe.stft.to_dict(), "sr_out": sr_out,
              "segment_samples": recipe.segment_samples, "n_frames": recipe.n_frames, "feature": FEATURE,
              "settings": settings}
    if manifest is None:
        manifest = {**header, "specsr_version": __version__, "shard_size": shard_size, "split_mode": split_mode,
                    "shards": [], "items": [], "sources": {}, "summary": {}}
    else:
        fixed = [k for k in header if k != "settings"]
        diffs = _settings_diff({k: manifest.get(k) for k in fixed}, {k: header[k] for k in fixed})
        diffs += _settings_diff(manifest.get("settings") or {}, settings)
        if diffs:
            raise SpecsrError(f"{root} was built with other settings: {'; '.join(diffs)}; "
                              "use the same options or a new output folder")
        moved = [k for k, rec in manifest["sources"].items()
                 if rec.get("status") == "used" and k in splits and rec.get("split") != splits[k]]
        if moved:
            raise SpecsrError(f"{root}: the train/val split changed since this dataset was started (e.g. {moved[0]}: "
                              f"{manifest['sources'][moved[0]]['split']} -> {splits[moved[0]]}); the source files "
                              "changed: build into a new output folder")
        _remove_strays(root, manifest)
    _write_json_atomic(root / MANIFEST_NAME, manifest)

    considered = scan.files if max_files is None else scan.files[:max_files]
    done = manifest["sources"]
    todo = [f for f in considered if f.relpath not in done]
    work_dir = root / _WORK_DIR
    work_dir.mkdir(exist_ok=True)
    shard_dir = root / _SHARD_DIR
    writers = {s: _ShardWriter(shard_dir, s, sum(1 for x in manifest["shards"] if x["split"] == s), shard_size,
                               recipe.stft.n_bins, recipe.n_frames, recipe.segment_samples) for s in SPLITS}
    state = _BuildState(root, manifest)
    tasks = (_FileTask(i, f, splits[f.relpath], str(work_dir), recipe) for i, f in enumerate(todo))
    warnings: list[str] = []
    if split_mode == "file" and val_fraction > 0:
        warnings.append("only one group (folder or speaker) found: val holds whole files instead of groups")

    from tqdm import tqdm

    bar = tqdm(total=len(todo), unit="file", file=sys.stderr, disable=not progress, dynamic_ncols=True)
    seconds_run, pairs_run = 0.0, 0
    try:
        for res in _run_tasks(tasks, n_workers):
            if res.status == "skipped":
                state.record_skipped(res)
                if res.reason in ("unreadable", "empty", "missing", "error"):
                    warn(f"skipped {res.relpath}: {res.detail or res.reason}")
            else:
                state.expect(res)
                arrays = {k: np.load(p, mmap_mode="r") for k, p in res.arrays.items()}
                for i, meta in enumerate(res.items):
                    done_shard = writers[res.split].add({k: a[i] for k, a in arrays.items()}, meta)
                    if done_shard is not None:
                        state.shard_done(*done_shard)
                del arrays
                for p in res.arrays.values():
                    Path(p).unlink(missing_ok=True)
                seconds_run += res.seconds
                pairs_run += len(res.items)
            bar.update(1)
            bar.set_postfix(min=f"{seconds_run / 60:.1f}", pairs=pairs_run, refresh=False)
        for writer in writers.values():
            done_shard = writer.close()
            if done_shard is not None:
                state.shard_done(*done_shard)
    finally:
        bar.close()
        state.save(force=True)  # what is complete so far stays usable, even after an interrupt
    shutil.rmtree(work_dir, ignore_errors=True)

    summary = _summarise(manifest, scan, len(todo), len(considered) - len(todo), len(scan.files) - len(considered),
                         split_mode, root, time.monotonic() - t0, warnings)
    for s in SPLITS:
        if summary.pairs.get(s, 0) == 0 and not (s == "val" and val_fraction == 0) and summary.files_left == 0:
            warnings.append(f"the {s} split is empty")
    manifest["summary"] = summary.to_dict()
    _write_json_atomic(root / MANIFEST_NAME, manifest)
    if not manifest["items"]:
        reasons = ", ".join(f"{r}: {n}" for r, n in summary.files_skipped.items())
        raise SpecsrError(f"no training pairs were written: every source file was skipped ({reasons})")
    return summary


def _check_settings(*, sr_out: int, sr_in_choices: Sequence[int] | None, sr_in_range: tuple[int, int] | None,
                    filters: Sequence[str], variants: int, segment_seconds: float, val_fraction: float,
                    stft_preset: str, seed: int, test_speakers: Sequence[str], allow_band_limited: bool,
                    noise_floor_db: tuple[float, float] | None, all_mics: bool,
                    min_content_hz: float) -> tuple[dict[str, Any], _Recipe]:
    """Validate the options; returns the manifest's ``settings`` and the workers' recipe."""
    if stft_preset not in STFT_PRESETS:
        raise SpecsrError(f"unknown STFT preset {stft_preset!r}; choose from {', '.join(STFT_PRESETS)}")
    cfg = STFT_PRESETS[stft_preset]
    if cfg.sample_rate != sr_out:
        raise SpecsrError(f"STFT preset {stft_preset} is for {cfg.sample_rate} Hz but sr_out is {sr_out} Hz")
    if sr_in_choices is not None and sr_in_range is not None:
        raise SpecsrError("give input rates as a list or as a range, not both")
    choices = tuple(int(s) for s in sr_in_choices) if sr_in_choices is not None else None
    rng_hz = (int(sr_in_range[0]), int(sr_in_range[1])) if sr_in_range is not None else None
    if choices is None and rng_hz is None:
        choices = DEFAULT_SR_IN_CHOICES
    if choices is not None and (not choices or any(not 0 < s < sr_out for s in choices)):
        raise SpecsrError(f"input rates must be between 0 and sr_out={sr_out} Hz, got {list(choices)}")
    if rng_hz is not None and not 0 < rng_hz[0] <= rng_hz[1] < sr_out:
        raise SpecsrError(f"the input rate range must be low:high within (0, {sr_out}) Hz, got {rng_hz}")
    families: list[str] = []
    for name in filters:
        for fam in FILTER_FAMILIES if name == "mix" else (name,):
            if fam not in FILTER_FAMILIES:
                raise SpecsrError(f"unknown filter {fam!r}; choose mix or from {', '.join(FILTER_FAMILIES)}")
            if fam not in families:
                families.append(fam)
    if not families:
        raise SpecsrError("no degradation filter given")
    if not isinstance(variants, int) or variants < 1:
        raise SpecsrError(f"variants must be >= 1, got {variants!r}")
    segment_samples = int(round(segment_seconds * sr_out))
    if not segment_seconds > 0 or segment_samples < cfg.n_fft:
        raise SpecsrError(f"segment seconds must give at least n_fft={cfg.n_fft} samples, got {segment_seconds}")
    if not 0 <= val_fraction < 1:
        raise SpecsrError(f"val fraction must be in [0, 1), got {val_fraction}")
    if not isinstance(seed, int) or seed < 0:
        raise SpecsrError(f"seed must be a non-negative integer, got {seed!r}")
    noise = None
    if noise_floor_db is not None:
        noise = (float(noise_floor_db[0]), float(noise_floor_db[1]))
        if not noise[0] <= noise[1] <= 0:
            raise SpecsrError(f"noise floor must be a dBFS range low:high <= 0, got {noise_floor_db}")
    if min_content_hz < 0:
        raise SpecsrError(f"min content frequency must be >= 0 Hz, got {min_content_hz}")
    tests = sorted({s.strip().lower() for s in test_speakers if s.strip()})
    settings = {
        "sr_in_choices": list(choices) if choices is not None else None,
        "sr_in_range": list(rng_hz) if rng_hz is not None else None, "filters": families, "variants": variants,
        "segment_seconds": float(segment_seconds), "seed": seed,
        "noise_floor_db": list(noise) if noise is not None else None, "noise_floor_prob": NOISE_FLOOR_PROB,
        "val_fraction": float(val_fraction), "test_speakers": tests, "min_content_hz": float(min_content_hz),
        "allow_band_limited": bool(allow_band_limited), "all_mics": bool(all_mics), "trim_db": TRIM_DB,
        "silent_segment_db": SILENT_SEGMENT_DB,
    }
    recipe = _Recipe(stft=cfg, sr_out=sr_out, segment_samples=segment_samples, n_frames=n_frames(segment_samples, cfg),
                     sr_in_choices=choices, sr_in_range=rng_hz, families=tuple(families), variants=variants, seed=seed,
                     noise_floor_db=noise, min_content_hz=float(min_content_hz),
                     allow_band_limited=bool(allow_band_limited))
    return settings, recipe


def _run_tasks(tasks: Iterator[_FileTask], workers: int) -> Iterator[_FileResult]:
    """Results in task order (so shards are laid out the same whatever the scheduling)."""
    if workers == 1:
        for task in tasks:
            yield _process_file(task)
        return
    ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold torch threads
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker)
    try:
        window: deque[Future[_FileResult]] = deque()
        for task in tasks:
            window.append(pool.submit(_process_file, task))
            if len(window) >= 2 * workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()
    finally:  # on an interrupt, do not start the files still queued
        pool.shutdown(wait=True, cancel_futures=True)


class _BuildState:
    """The in-memory manifest: records shards, items and finished sources; saves it atomically."""

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root, self.manifest = root, manifest
        self.pending: dict[str, tuple[int, dict[str, Any]]] = {}  # source -> (items not in a shard yet, record)
        self.last_save_s = 0.0
        self.last_save_at = time.monotonic()

    def record_skipped(self, res: _FileResult) -> None:
        self.manifest["sources"][res.relpath] = res.record()

    def expect(self, res: _FileResult) -> None:
        self.pending[res.relpath] = (len(res.items), res.record())

    def shard_done(self, record: dict[str, Any], items: list[dict[str, Any]]) -> None:
        self.manifest["shards"].append(record)
        self.manifest["items"].extend(items)
        for counts in Counter(it["source"] for it in items).items():
            src, n = counts
            left, rec = self.pending[src]
            if left - n == 0:
                self.manifest["sources"][src] = rec
                del self.pending[src]
            else:
                self.pending[src] = (left - n, rec)
        self.save()

    def save(self, force: bool = False) -> None:
        """Write the manifest; a large one at most every ten times its own writing time."""
        now = time.monotonic()
        if not force and now - self.last_save_at < 10 * self.last_save_s:
            return
        _write_json_atomic(self.root / MANIFEST_NAME, self.manifest)
        self.last_save_at = time.monotonic()
        self.last_save_s = self.last_save_at - now


def _summarise(manifest: dict[str, Any], scan: SourceScan, processed: int, resumed: int, left: int, split_mode: str,
               root: Path, wall_s: float, warnings: list[str]) -> ConvertSummary:
    sources = manifest["sources"]
    used = [r for r in sources.values() if r["status"] == "used"]
    skipped = Counter(r["reason"] for r in sources.values() if r["status"] == "skipped")
    pairs = Counter(it["split"] for it in manifest["items"])
    groups = {s: len({it["group"] for it in manifest["items"] if it["split"] == s}) for s in SPLITS}
    return ConvertSummary(
        output_dir=str(root), files_used=len(used), files_skipped=dict(skipped), files_processed=processed,
        files_resumed=resumed, files_left=left, other_mics=scan.other_mics,
        seconds_used=sum(r["seconds"] for r in used), segments_used=sum(r["n_segments"] - r["silent_segments"]
                                                                        for r in used),
        segments_silent=sum(r["silent_segments"] for r in used), pairs={s: pairs.get(s, 0) for s in SPLITS},
        groups=groups, split_mode=split_mode, test_files=dict(scan.test_files), n_shards=len(manifest["shards"]),
        disk_bytes=_folder_bytes(root), wall_seconds=wall_s, warnings=warnings)


# ----------------------------------------------------------------------------------------------------
# The reader


@dataclass(frozen=True)
class DatasetInfo:
    """A parsed ``manifest.json``."""

    root: Path
    stft: STFTConfig
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
    data = _read_manifest(root)
    try:
        raw = (root / MANIFEST_NAME).read_bytes()
        info = DatasetInfo(root=root, stft=STFTConfig.from_dict(data["stft"]), sr_out=int(data["sr_out"]),
                           n_frames=int(data["n_frames"]), segment_samples=int(data["segment_samples"]),
                           settings=dict(data["settings"]), items=list(data["items"]), shards=list(data["shards"]),
                           manifest_sha256=hashlib.sha256(raw).hexdigest())
    except (KeyError, TypeError, ValueError) as exc:
        raise SpecsrError(f"{root / MANIFEST_NAME}: malformed manifest ({type(exc).__name__}: {exc})") from None
    for shard in info.shards:
        for kind in _SPEC_KINDS:
            if not _shard_file(root / _SHARD_DIR, shard["name"], kind).is_file():
                raise SpecsrError(f"{root}: shard {shard['name']} is listed but its {kind} file is missing")
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
                for kind in _WAVE_KINDS:
                    if not _shard_file(self.info.root / _SHARD_DIR, name, kind).is_file():
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
            self._arrays[key] = np.load(_shard_file(self.info.root / _SHARD_DIR, shard, kind), mmap_mode="r")
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
            for kind in _WAVE_KINDS:
                out[kind] = torch.from_numpy(np.array(self._array(it["shard"], kind)[it["index"]], dtype=np.float32))
        return out
