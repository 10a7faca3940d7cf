"""One source file to what a dataset stores, in worker processes: read and mix to mono, resample, trim the
silences and cut into segments; then either the kept segments as 16-bit PCM (an audio dataset: training
makes the pairs on the fly) or each segment's degraded variants (:func:`specsr.degrade.random_degradation`,
optionally over a noise floor) with both sides' log-power spectrograms (``--spectrograms``); and the
process pool that runs files in order with a bounded amount of results in memory.

A worker returns a file's arrays in memory (pickled through the pool); the parent writes them into the
shards (:mod:`specsr.dataset.convert`), so every array reaches the disk once.
"""

from __future__ import annotations

import math
import multiprocessing
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from specsr.audio import AudioInfo, audio_info, read_audio, resample
from specsr.config import STFTConfig
from specsr.cutoff import detect_cutoff
from specsr.dataset.reader import SPEC_KINDS, shard_kinds
from specsr.dataset.segments import PCM_SCALE
from specsr.dataset.sources import SourceFile, in_group, stable_hash
from specsr.degrade import apply, random_degradation
from specsr.errors import SpecsrError
from specsr.spectral import log_power, stft

# Fixed parts of the recipe (recorded in the manifest's settings, so a change is noticed on resume).
TRIM_DB = 60.0  # leading/trailing frames this far below the loudest frame are trimmed
SILENT_SEGMENT_DB = 50.0  # segments this far below the file's loudest segment are dropped
NOISE_FLOOR_PROB = 0.5  # share of variants that get a noise floor
_TRIM_BLOCK = 1024  # samples per frame of the silence trim
_READ_BLOCK = 1 << 22  # frames per read of a long file
# Memory: a file's result holds all its arrays (a pair of 3-s segments of the 48k-2048 STFT is 1.2 MB,
# twice that with the waveforms of val). At most 2 x workers files are in flight (queued, in a worker,
# or done and waiting for their turn), and beyond the first of them no more than _IN_FLIGHT_BYTES by
# their headers' estimate, so that long files do not add up; plus the pickled copy of the one result
# being received.
_IN_FLIGHT_BYTES = 2 << 30


@dataclass(frozen=True)
class Recipe:
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
    kind: str = "spectrograms"  # or "audio"
    content_limits: tuple[tuple[str, float], ...] = ()  # (group, Hz): content taken to end there (ConvertConfig)

    def layout(self, kind: str) -> tuple[np.dtype, tuple[int, ...]]:
        """dtype and shape of one item of the array ``kind``."""
        if kind in SPEC_KINDS:
            return np.dtype(np.float16), (self.stft.n_bins, self.n_frames)
        return np.dtype(np.float32), (self.segment_samples,)


@dataclass(frozen=True)
class FileTask:
    source: SourceFile
    split: str
    recipe: Recipe


@dataclass
class FileResult:
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
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # kind -> [n_items, ...], row i is items[i]

    def record(self) -> dict[str, Any]:
        """The entry of ``manifest["sources"]``."""
        if self.status == "skipped":
            return {"status": "skipped", "split": self.split, "reason": self.reason, "detail": self.detail}
        return {"status": "used", "split": self.split, "n_items": len(self.items), "seconds": round(self.seconds, 3),
                "sample_rate": self.sample_rate, "n_segments": self.n_segments,
                "silent_segments": self.silent_segments}


def _init_worker() -> None:
    torch.set_num_threads(1)  # one process per core


def _process_file(task: FileTask) -> FileResult:
    """Never raises for a bad file: returns a skipped result with a reason instead."""
    try:
        return _process_file_unsafe(task)
    except SpecsrError as exc:
        return _skipped(task, "unreadable", str(exc))
    except MemoryError:
        return _skipped(task, "error", "out of memory")
    except Exception as exc:  # an exotic file must not end a long run; it is counted and reported
        return _skipped(task, "error", f"{type(exc).__name__}: {exc}")


def _skipped(task: FileTask, reason: str, detail: str = "") -> FileResult:
    return FileResult(task.source.relpath, task.split, "skipped", reason=reason, detail=detail)


def _process_file_unsafe(task: FileTask) -> FileResult:
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
    # content limit: the detected edge of a band-limited file, else Nyquist; lower where the group's is set
    content_hz = est.cutoff_hz if est.band_limited else sr / 2
    for group, limit_hz in r.content_limits:
        if in_group(src.group, group):
            content_hz = min(content_hz, limit_hz)
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
    if r.kind == "audio":
        return _audio_result(task, x, [bounds[k] for k in kept], kept, n_seg, content_hz, sr)

    n_items = len(kept) * r.variants
    out: dict[str, np.ndarray] = {}
    for kind in shard_kinds(task.split):
        dtype, shape = r.layout(kind)
        out[kind] = np.empty((n_items, *shape), dtype=dtype)
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
    return FileResult(src.relpath, task.split, "used", seconds=seconds, sample_rate=sr, n_segments=n_seg,
                       silent_segments=n_seg - len(kept), items=items, arrays=out)


def _audio_result(task: FileTask, x: np.ndarray, bounds: list[tuple[int, int]], kept: list[int], n_seg: int,
                  content_hz: float, source_sr: int) -> FileResult:
    """The kept segments of ``x`` as one int16 array (``arrays["pcm"]``), one item per segment (its ``start``
    and ``n_samples`` in that array). A file whose peak would clip 16 bits is scaled down (``gain``)."""
    src, r = task.source, task.recipe
    peak = max(float(np.max(np.abs(x[a:b]))) for a, b in bounds)
    full_scale = 32767.0 / PCM_SCALE
    gain = full_scale / peak if peak > full_scale else 1.0
    pcm = np.empty(sum(b - a for a, b in bounds), dtype=np.int16)
    items: list[dict[str, Any]] = []
    pos = 0
    for k, (a, b) in zip(kept, bounds, strict=True):
        seg = x[a:b] if gain == 1.0 else x[a:b] * np.float32(gain)
        pcm[pos:pos + b - a] = np.clip(np.rint(seg * PCM_SCALE), -32768, 32767).astype(np.int16)
        items.append({"id": f"{src.relpath}:{k}", "source": src.relpath, "group": src.group, "split": task.split,
                      "segment": k, "start": pos, "n_samples": b - a, "source_sr": source_sr,
                      "source_nyquist_hz": round(content_hz, 3), "gain": round(gain, 6)})
        pos += b - a
    return FileResult(src.relpath, task.split, "used", seconds=pos / r.sr_out, sample_rate=source_sr,
                      n_segments=n_seg, silent_segments=n_seg - len(kept), items=items, arrays={"pcm": pcm})


def _make_variants(segment: np.ndarray, seg_index: int, src: SourceFile, split: str, content_hz: float,
                   source_sr: int, r: Recipe) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
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


def _result_bytes(task: FileTask) -> int:
    """About the most bytes of arrays the file's result can hold, from its header (0 if unreadable)."""
    r = task.recipe
    try:
        seconds = audio_info(task.source.path).seconds
    except SpecsrError:
        return 0
    if r.kind == "audio":
        return math.ceil(seconds * r.sr_out) * 2
    per_item = 0
    for kind in shard_kinds(task.split):
        dtype, shape = r.layout(kind)
        per_item += math.prod(shape) * dtype.itemsize
    return math.ceil(seconds * r.sr_out / r.segment_samples) * r.variants * per_item


def run_tasks(tasks: Iterator[FileTask], workers: int) -> Iterator[FileResult]:
    """Results in task order (so shards are laid out the same whatever the scheduling)."""
    if workers == 1:
        for task in tasks:
            yield _process_file(task)
        return
    ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold torch threads
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker)
    try:
        window: deque[tuple[Future[FileResult], int]] = deque()  # see _IN_FLIGHT_BYTES
        held = 0
        for task in tasks:
            size = _result_bytes(task)
            while window and (len(window) >= 2 * workers or held + size > _IN_FLIGHT_BYTES):
                future, done_size = window.popleft()
                held -= done_size
                yield future.result()
            window.append((pool.submit(_process_file, task), size))
            held += size
        while window:
            yield window.popleft()[0].result()
    finally:  # on an interrupt, do not start the files still queued
        pool.shutdown(wait=True, cancel_futures=True)
