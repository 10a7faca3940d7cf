"""Writing a dataset (``specsr convert``): the shards, the manifest, resuming a stopped run, and
:func:`build_dataset` (with its settings check and :class:`ConvertSummary`). The per-file work runs in
worker processes (:mod:`specsr.dataset.pairs`).

Two kinds: ``audio`` (the default; the kept segments as 16-bit PCM WAV shards, :class:`_AudioShardWriter`)
and ``spectrograms`` (fixed low/high-resolution pairs, :class:`_ShardWriter`). Every array reaches the disk
once: the workers return a file's arrays in memory and the parent copies them straight into the temp
files of their shard, renamed into place when complete (a partial last spectrogram shard is cut to its
items in place, :func:`_keep_rows`). A write that fails (a full disk) removes the unfinished shard; the
manifest lists only complete ones, so a rerun resumes after the last of them.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from specsr import __version__
from specsr.config import DEFAULT_SR_IN_CHOICES, STFT_PRESETS, ConvertConfig
from specsr.dataset.pairs import NOISE_FLOOR_PROB, SILENT_SEGMENT_DB, TRIM_DB, FileResult, FileTask, Recipe, run_tasks
from specsr.dataset.reader import (
    AUDIO_SHARD_SUFFIX,
    DATASET_FORMAT,
    DATASET_VERSION,
    FEATURE,
    MANIFEST_NAME,
    SHARD_DIR,
    SPLITS,
    dataset_kind,
    read_manifest,
    shard_file,
    shard_file_names,
    shard_kinds,
)
from specsr.dataset.segments import wav_header, write_shard_header
from specsr.dataset.sources import SourceScan, assign_splits, discover_sources, header_usable, in_group
from specsr.degrade import family_names
from specsr.errors import SpecsrError
from specsr.spectral import n_frames
from specsr.utils import atomic_output, atomic_write_text

_LEGACY_WORK_DIR = "tmp"  # where earlier versions left worker outputs on their way into shards


NAMED_SKIPS = 10  # skipped files named on stderr per reason and run; the manifest lists them all
VAL_GROUP_SHARE_WARN = 0.25  # a larger share of val in one group is warned about
VAL_EXCESS_WARN = 0.05  # val holding more than twice, and this much more than, the fraction asked is warned about

# ----------------------------------------------------------------------------------------------------
# Shards and manifest (parent process)


def _keep_rows(path: Path, n: int) -> None:
    """Cut the ``.npy`` file ``path`` to its first ``n`` rows in place: a new header with the new shape,
    of the old header's length (numpy pads a header so that its first axis can grow to 21 digits), and
    the data truncated after row ``n``."""
    fmt = np.lib.format
    with open(path, "r+b") as fh:
        version = fmt.read_magic(fh)
        read, write = {(1, 0): (fmt.read_array_header_1_0, fmt.write_array_header_1_0),
                       (2, 0): (fmt.read_array_header_2_0, fmt.write_array_header_2_0)}[version]
        shape, fortran_order, dtype = read(fh)
        data_offset = fh.tell()
        header = io.BytesIO()
        write(header, {"descr": fmt.dtype_to_descr(dtype), "fortran_order": fortran_order, "shape": (n, *shape[1:])})
        if fortran_order or header.tell() != data_offset:
            raise RuntimeError(f"{path}: the .npy header has no room to rewrite its shape in place")
        fh.seek(0)
        fh.write(header.getvalue())
        fh.truncate(data_offset + n * math.prod(shape[1:]) * dtype.itemsize)


class _ShardFilling:
    """What both shard writers share: the split's next shard (name, index, items) and the temp files of the one
    being filled (from :func:`~specsr.utils.atomic_output`: fsynced and renamed into place when complete)."""

    def __init__(self, shard_dir: Path, split: str, first_index: int, shard_size: int) -> None:
        self.shard_dir, self.split, self.next_index, self.shard_size = shard_dir, split, first_index, shard_size
        self.items: list[dict[str, Any]] = []
        self._files: contextlib.ExitStack | None = None  # the temp files of the shard being filled

    @property
    def name(self) -> str:
        return f"{self.split}-{self.next_index:05d}"

    def close(self) -> tuple[dict[str, Any], list[dict]] | None:
        """Finish the current shard (a partial one is cut to its items); None when it is empty."""
        return self._finish() if self.items else None

    def _finish(self) -> tuple[dict[str, Any], list[dict]]:
        raise NotImplementedError

    def _remove_temp_files(self) -> None:
        files, self._files = self._files, None
        if files is not None:  # an exception tells each atomic_output to remove its file
            stop = SpecsrError("the shard was not finished")
            files.__exit__(type(stop), stop, None)

    def _rename_into_place(self, record: dict[str, Any]) -> tuple[dict[str, Any], list[dict]]:
        files, self._files = self._files, None
        if files is not None:
            files.close()  # fsync each file and rename it into place
        items, self.items = self.items, []
        self.next_index += 1
        return record, items


class _ShardWriter(_ShardFilling):
    """Fills the spectrogram shards of one split, file by file, in memory-mapped temp files beside them."""

    def __init__(self, shard_dir: Path, split: str, first_index: int, shard_size: int, recipe: Recipe) -> None:
        super().__init__(shard_dir, split, first_index, shard_size)
        self.layouts = {kind: recipe.layout(kind) for kind in shard_kinds(split)}
        self._tmp: dict[str, Path] = {}
        self._arrays: dict[str, np.ndarray] = {}

    def add(self, arrays: dict[str, np.ndarray], metas: list[dict[str, Any]]) -> list[tuple[dict, list[dict]]]:
        """Append a file's items (``metas``; row ``i`` of each array is ``metas[i]``); returns
        ``(shard record, its items)`` of each shard that this fills."""
        filled = []
        done = 0
        while done < len(metas):
            if self._files is None:
                self._open()
            start = len(self.items)
            n = min(self.shard_size - start, len(metas) - done)
            for kind, arr in self._arrays.items():
                arr[start:start + n] = arrays[kind][done:done + n]
            self.items.extend({**meta, "shard": self.name, "index": start + i}
                              for i, meta in enumerate(metas[done:done + n]))
            done += n
            if len(self.items) == self.shard_size:
                filled.append(self._finish())
        return filled

    def abort(self) -> None:
        """Remove the temp files of an unfinished shard (the run stopped)."""
        self._arrays.clear()  # unmap them first
        self._remove_temp_files()
        self._tmp, self.items = {}, []

    def _open(self) -> None:
        self._files = contextlib.ExitStack()
        try:
            for kind, (dtype, shape) in self.layouts.items():
                self._tmp[kind] = self._files.enter_context(atomic_output(shard_file(self.shard_dir, self.name, kind)))
                self._arrays[kind] = np.lib.format.open_memmap(self._tmp[kind], mode="w+", dtype=dtype,
                                                               shape=(self.shard_size, *shape))
        except BaseException:
            self.abort()
            raise

    def _finish(self) -> tuple[dict[str, Any], list[dict]]:
        n = len(self.items)
        try:
            for kind in self.layouts:
                self._arrays.pop(kind).flush()  # type: ignore[attr-defined]
                if n < self.shard_size:
                    _keep_rows(self._tmp[kind], n)
        except BaseException:
            self.abort()
            raise
        self._tmp = {}
        return self._rename_into_place({"name": self.name, "split": self.split, "n_items": n})


class _AudioShardWriter(_ShardFilling):
    """Fills the audio shards of one split: segments appended to a 16-bit WAV temp file, whose header gets
    its sizes when the shard holds ``shard_size`` segments or the run ends."""

    def __init__(self, shard_dir: Path, split: str, first_index: int, shard_size: int, sample_rate: int) -> None:
        super().__init__(shard_dir, split, first_index, shard_size)
        self.sample_rate = sample_rate
        self._fh: io.BufferedWriter | None = None
        self._n_samples = 0

    def add(self, arrays: dict[str, np.ndarray], metas: list[dict[str, Any]]) -> list[tuple[dict, list[dict]]]:
        pcm = arrays["pcm"]
        filled = []
        for meta in metas:
            fh = self._fh if self._fh is not None else self._open()
            start, n = int(meta["start"]), int(meta["n_samples"])
            try:
                fh.write(pcm[start:start + n].astype("<i2").tobytes())
            except BaseException:
                self.abort()
                raise
            item = {k: v for k, v in meta.items() if k != "start"}
            self.items.append({**item, "shard": self.name, "offset": self._n_samples})
            self._n_samples += n
            if len(self.items) == self.shard_size:
                filled.append(self._finish())
        return filled

    def abort(self) -> None:
        """Remove the temp file of an unfinished shard (the run stopped, or a write failed)."""
        fh, self._fh = self._fh, None
        if fh is not None:
            with contextlib.suppress(OSError):
                fh.close()
        self._remove_temp_files()
        self.items, self._n_samples = [], 0

    def _open(self) -> io.BufferedWriter:
        self._files = contextlib.ExitStack()
        try:
            tmp = self._files.enter_context(atomic_output(self.shard_dir / (self.name + AUDIO_SHARD_SUFFIX)))
            fh = self._fh = open(tmp, "wb")  # noqa: SIM115 (closed in _finish or abort)
            fh.write(wav_header(self.sample_rate, 0))
        except BaseException:
            self.abort()
            raise
        return fh

    def _finish(self) -> tuple[dict[str, Any], list[dict]]:
        fh, self._fh = self._fh, None
        try:
            if fh is not None:  # a shard is open whenever it holds items
                write_shard_header(fh, self.sample_rate, self._n_samples)
                fh.close()
        except BaseException:
            self._fh = fh
            self.abort()
            raise
        record = {"name": self.name, "split": self.split, "n_items": len(self.items), "n_samples": self._n_samples}
        self._n_samples = 0
        return self._rename_into_place(record)


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, separators=(",", ":")))


def _prepare_output(root: Path) -> dict[str, Any] | None:
    """Create or check the output folder; the existing manifest when resuming, else None."""
    if root.exists() and not root.is_dir():
        raise SpecsrError(f"{root}: exists and is not a folder")
    if root.is_dir():
        if (root / MANIFEST_NAME).exists():
            manifest = read_manifest(root)
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
        (root / SHARD_DIR).mkdir(exist_ok=True)
    except OSError as exc:
        raise SpecsrError(f"{root}: the output folder is not writable ({exc.strerror or exc})") from None
    return manifest


def _remove_strays(root: Path, manifest: dict[str, Any]) -> None:
    """Delete files no manifest entry accounts for (temp files, shards of a killed run, old work folders)."""
    kind = dataset_kind(manifest)
    listed = {name for s in manifest["shards"] for name in shard_file_names(kind, s)}
    for p in (root / SHARD_DIR).iterdir():
        if p.name not in listed:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    for p in root.glob(f".{MANIFEST_NAME}.*.tmp"):
        p.unlink()
    if (root / _LEGACY_WORK_DIR).exists():
        shutil.rmtree(root / _LEGACY_WORK_DIR)


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
    kind: str = "audio"  # or "spectrograms"

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
        what = "segments" if self.kind == "audio" else "pairs"
        lines.append(f"{what}: " + ", ".join(f"{s} {self.pairs.get(s, 0)}" for s in SPLITS))
        by = "speaker/folder" if self.split_mode == "group" else "file (only one group)"
        lines.append("groups: " + ", ".join(f"{s} {self.groups.get(s, 0)}" for s in SPLITS) + f" (split by {by})")
        tests = ", ".join(f"{s} ({n} files)" for s, n in sorted(self.test_files.items())) or "none found"
        lines.append(f"test speakers excluded: {tests}")
        size = f"{self.disk_bytes / 1e9:.2f} GB" if self.disk_bytes >= 1e9 else f"{self.disk_bytes / 1e6:.1f} MB"
        per_min = f" ({self.disk_bytes / 1e6 / (self.seconds_used / 60):.1f} MB per minute of audio)" \
            if self.seconds_used > 0 else ""
        lines.append(f"disk: {size} in {self.n_shards} shards{per_min}")
        run = f"time: {self.wall_seconds:.1f} s ({self.files_processed} files processed this run"
        if self.files_resumed:
            run += f", {self.files_resumed} done before"
        if self.files_left:
            run += f", {self.files_left} left for a later run"
        lines.append(run + ")")
        return "\n".join(lines)


def build_dataset(sources: Sequence[str | os.PathLike], output_dir: str | os.PathLike,
                  config: ConvertConfig | None = None, *, workers: int | None = None, max_files: int | None = None,
                  progress: bool = True, on_warning: Callable[[str], None] | None = None,
                  **overrides: Any) -> ConvertSummary:
    """Build (or resume) a dataset from ``sources`` in ``output_dir``: audio segments (the default), or
    spectrogram pairs with ``spectrograms=True``.

    ``config`` is the recipe (:class:`~specsr.config.ConvertConfig`, whose defaults are used when None);
    ``overrides`` replace some of its fields (``build_dataset(src, out, variants=2)``). ``workers``:
    processes (default min(2, CPU cores)). ``max_files`` limits this run to the first files (sorted); a
    rerun goes on where a run stopped. ``on_warning`` receives one line per unreadable file. Raises
    :class:`SpecsrError` for bad settings, a source without audio, an output folder that is not
    writable, not a dataset, or built with other settings.
    """
    t0 = time.monotonic()
    cfg = replace(config or ConvertConfig(), **overrides)
    warn = on_warning or (lambda _msg: None)
    settings, recipe = _check_settings(cfg)
    n_workers = min(2, os.cpu_count() or 1) if workers is None else workers
    if n_workers < 1:
        raise SpecsrError(f"workers must be >= 1, got {n_workers}")
    if max_files is not None and max_files < 1:
        raise SpecsrError(f"max files must be >= 1, got {max_files}")

    scan = discover_sources(sources, test_speakers=settings["test_speakers"], all_mics=cfg.all_mics)
    if not scan.files:
        where = ", ".join(str(s) for s in sources)
        if scan.test_files:
            raise SpecsrError(f"{where}: only files of test speakers ({', '.join(sorted(scan.test_files))}) found")
        raise SpecsrError(f"{where}: no audio files found")
    groups = {f.group for f in scan.files}
    unknown = [g for g, _hz in recipe.content_limits if not any(in_group(x, g) for x in groups)]
    if unknown:
        raise SpecsrError(f"--content-limit: no group named {', '.join(unknown)} or under it; groups: "
                          f"{', '.join(sorted(groups))}")
    usable = header_usable(cfg.sr_out, recipe.segment_samples / cfg.sr_out / 2)
    splits, split_mode = assign_splits(scan.files, cfg.val_fraction, cfg.seed, usable, val_groups=cfg.val_groups)

    root = Path(output_dir)
    made_root = not root.exists()
    manifest = _prepare_output(root)
    started_here = manifest is None  # a new dataset, not one resumed
    if recipe.kind == "audio":
        header = {"format": DATASET_FORMAT, "version": DATASET_VERSION, "kind": "audio", "sr_out": cfg.sr_out,
                  "segment_samples": recipe.segment_samples, "sample_format": "pcm16", "settings": settings}
    else:
        header = {"format": DATASET_FORMAT, "version": DATASET_VERSION, "kind": "spectrograms",
                  "stft": recipe.stft.to_dict(), "sr_out": cfg.sr_out, "segment_samples": recipe.segment_samples,
                  "n_frames": recipe.n_frames, "feature": FEATURE, "settings": settings}
    if manifest is not None:
        _check_resumable(root, manifest, recipe.kind)
    if manifest is None:
        manifest = {**header, "specsr_version": __version__, "shard_size": cfg.shard_size, "split_mode": split_mode,
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
    first = {s: sum(1 for x in manifest["shards"] if x["split"] == s) for s in SPLITS}
    writers: dict[str, _ShardWriter | _AudioShardWriter] = {
        s: _AudioShardWriter(root / SHARD_DIR, s, first[s], cfg.shard_size, cfg.sr_out) if recipe.kind == "audio"
        else _ShardWriter(root / SHARD_DIR, s, first[s], cfg.shard_size, recipe) for s in SPLITS}
    state = _BuildState(root, manifest)
    tasks = (FileTask(f, splits[f.relpath], recipe) for f in todo)
    warnings: list[str] = []
    if split_mode == "file" and cfg.val_fraction > 0:
        warnings.append("only one group (folder or speaker) found: val holds whole files instead of groups")

    from tqdm import tqdm

    bar = tqdm(total=len(todo), unit="file", file=sys.stderr, disable=not progress, dynamic_ncols=True)
    seconds_run, pairs_run = 0.0, 0
    postfix_name = "segments" if recipe.kind == "audio" else "pairs"
    named: dict[str, int] = {}  # skip reason -> files skipped for it this run
    try:
        for res in run_tasks(tasks, n_workers):
            if res.status == "skipped":
                state.record_skipped(res)
                named[res.reason] = named.get(res.reason, 0) + 1
                if named[res.reason] <= NAMED_SKIPS:
                    warn(f"skipped {res.relpath}: {res.reason}" + (f" ({res.detail})" if res.detail else ""))
                elif named[res.reason] == NAMED_SKIPS + 1:
                    warn(f"more files skipped as {res.reason}: not named one by one; the summary counts them and "
                         f"{MANIFEST_NAME} lists each under 'sources'")
            else:
                state.expect(res)
                for shard in writers[res.split].add(res.arrays, res.items):
                    state.shard_done(*shard)
                res.arrays.clear()  # written: free them before the next file arrives
                seconds_run += res.seconds
                pairs_run += len(res.items)
            bar.update(1)
            bar.set_postfix({"min": f"{seconds_run / 60:.1f}", postfix_name: pairs_run}, refresh=False)
        for writer in writers.values():
            last = writer.close()
            if last is not None:
                state.shard_done(*last)
    except BaseException as exc:
        for writer in writers.values():
            writer.abort()
        bar.close()
        if started_here and not manifest["shards"]:
            _discard(root, made_root)  # nothing to resume from: leave no half-made dataset behind
        else:
            with contextlib.suppress(OSError):  # a full disk may refuse the manifest too: the last one stays
                state.save(force=True)  # what is complete so far stays usable, even after an interrupt
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            kept = (f"the dataset keeps its {len(manifest['shards'])} complete shards; free space and rerun the same "
                    "command to resume" if manifest["shards"] else "nothing was kept")
            raise SpecsrError(f"{root}: out of disk space while writing a shard; the unfinished shard was removed; "
                              f"{kept}") from None
        if isinstance(exc, OSError):
            raise SpecsrError(f"{root}: cannot write the dataset ({exc.strerror or exc}); the unfinished shard was "
                              "removed; rerun to resume") from None
        raise
    bar.close()
    state.save(force=True)

    summary = _summarise(manifest, scan, len(todo), len(considered) - len(todo), len(scan.files) - len(considered),
                         split_mode, root, time.monotonic() - t0, warnings)
    summary.kind = recipe.kind
    for s in SPLITS:
        if summary.pairs.get(s, 0) == 0 and not (s == "val" and cfg.val_fraction == 0) and summary.files_left == 0:
            warnings.append(f"the {s} split is empty")
    warnings.extend(_val_share_warnings(manifest["items"], cfg.val_fraction, postfix_name))
    if not manifest["items"]:
        if started_here:
            _discard(root, made_root)
        reasons = ", ".join(f"{r}: {n}" for r, n in summary.files_skipped.items())
        raise SpecsrError(f"no training {postfix_name} were written: every source file was skipped ({reasons})"
                          + ("; no dataset was left behind" if started_here else ""))
    manifest["summary"] = summary.to_dict()
    _write_json_atomic(root / MANIFEST_NAME, manifest)
    return summary


def _val_share_warnings(items: list[dict[str, Any]], val_fraction: float, noun: str = "pairs") -> list[str]:
    """Warnings when the split by group came out lopsided: validation holds far more of the pairs than asked
    (a large group drawn for it: training loses that much), or one group is most of validation (validation
    mostly measures it; only when val has several groups)."""
    val = Counter(it["group"] for it in items if it["split"] == "val")
    total = sum(val.values())
    out = []
    if items and total / len(items) > max(2 * val_fraction, val_fraction + VAL_EXCESS_WARN):
        out.append(f"validation holds {100 * total / len(items):.0f} % of the {noun} ({', '.join(sorted(val))}; "
                   f"{100 * val_fraction:.0f} % asked): training loses them; --val-groups chooses smaller groups")
    if len(val) >= 2 and total:
        group, n = val.most_common(1)[0]
        if n / total > VAL_GROUP_SHARE_WARN:
            out.append(f"validation is {100 * n / total:.0f} % one group ({group}: {n} of {total} {noun}): "
                       "validation LSD will mostly measure it; --val-groups chooses the validation groups")
    return out


def _discard(root: Path, made_root: bool) -> None:
    """Remove a dataset this run started and could not fill: its manifest and shard folder, and the output
    folder itself when this run made it."""
    (root / MANIFEST_NAME).unlink(missing_ok=True)
    shutil.rmtree(root / SHARD_DIR, ignore_errors=True)
    if made_root and root.is_dir() and not any(root.iterdir()):
        root.rmdir()


def _check_settings(cfg: ConvertConfig) -> tuple[dict[str, Any], Recipe]:
    """Check the recipe (the one place that does); returns the manifest's ``settings`` and the workers' recipe."""
    kind = "spectrograms" if cfg.spectrograms else "audio"
    if kind == "audio":
        defaults = ConvertConfig()
        pair_options = {"sr_in_choices": "--sr-in", "sr_in_range": "--sr-in-range", "filters": "--filters",
                        "variants": "--variants", "noise_floor_db": "--noise-floor-db", "stft_preset": "--stft-preset"}
        given = [flag for name, flag in pair_options.items() if getattr(cfg, name) != getattr(defaults, name)]
        if given:
            raise SpecsrError(f"{', '.join(given)}: for fixed spectrogram pairs only (add --spectrograms); an audio "
                              "dataset stores the audio, and training draws a fresh degradation for every example "
                              "([degrade] in the training config)")
    if cfg.stft_preset not in STFT_PRESETS:
        raise SpecsrError(f"unknown STFT preset {cfg.stft_preset!r}; choose from {', '.join(STFT_PRESETS)}")
    stft_cfg, sr_out = STFT_PRESETS[cfg.stft_preset], cfg.sr_out
    if kind == "spectrograms" and stft_cfg.sample_rate != sr_out:
        raise SpecsrError(f"STFT preset {cfg.stft_preset} is for {stft_cfg.sample_rate} Hz but sr_out is {sr_out} Hz")
    if cfg.sr_in_choices is not None and cfg.sr_in_range is not None:
        raise SpecsrError("give input rates as a list or as a range, not both")
    choices = tuple(int(s) for s in cfg.sr_in_choices) if cfg.sr_in_choices is not None else None
    rng_hz = (int(cfg.sr_in_range[0]), int(cfg.sr_in_range[1])) if cfg.sr_in_range is not None else None
    if choices is None and rng_hz is None:
        choices = DEFAULT_SR_IN_CHOICES
    if choices is not None and (not choices or any(not 0 < s < sr_out for s in choices)):
        raise SpecsrError(f"input rates must be between 0 and sr_out={sr_out} Hz, got {list(choices)}")
    if rng_hz is not None and not 0 < rng_hz[0] <= rng_hz[1] < sr_out:
        raise SpecsrError(f"the input rate range must be low:high within (0, {sr_out}) Hz, got {rng_hz}")
    if not 8000 <= sr_out <= 384000:
        raise SpecsrError(f"sr_out must be a rate in 8000..384000 Hz, got {sr_out}")
    families = list(family_names(cfg.filters))
    if not isinstance(cfg.variants, int) or cfg.variants < 1:
        raise SpecsrError(f"variants must be >= 1, got {cfg.variants!r}")
    segment_samples = int(round(cfg.segment_seconds * sr_out))
    min_samples = stft_cfg.n_fft if kind == "spectrograms" else sr_out // 10
    if not cfg.segment_seconds > 0 or segment_samples < min_samples:
        raise SpecsrError(f"segment seconds must give at least {min_samples} samples"
                          + (f" (n_fft={stft_cfg.n_fft})" if kind == "spectrograms" else " (0.1 s)")
                          + f", got {cfg.segment_seconds}")
    if not 0 <= cfg.val_fraction < 1:
        raise SpecsrError(f"val fraction must be in [0, 1), got {cfg.val_fraction}")
    if not isinstance(cfg.seed, int) or cfg.seed < 0:
        raise SpecsrError(f"seed must be a non-negative integer, got {cfg.seed!r}")
    noise = None
    if cfg.noise_floor_db is not None:
        noise = (float(cfg.noise_floor_db[0]), float(cfg.noise_floor_db[1]))
        if not noise[0] <= noise[1] <= 0:
            raise SpecsrError(f"noise floor must be a dBFS range low:high <= 0, got {cfg.noise_floor_db}")
    if cfg.min_content_hz < 0:
        raise SpecsrError(f"min content frequency must be >= 0 Hz, got {cfg.min_content_hz}")
    if cfg.shard_size < 1:
        raise SpecsrError(f"shard size must be >= 1, got {cfg.shard_size}")
    limits = parse_content_limits(cfg.content_limits)
    tests = sorted({s.strip().lower() for s in cfg.test_speakers if s.strip()})
    recipe = Recipe(stft=stft_cfg, sr_out=sr_out, segment_samples=segment_samples,
                    n_frames=n_frames(segment_samples, stft_cfg), sr_in_choices=choices, sr_in_range=rng_hz,
                    families=tuple(families), variants=cfg.variants, seed=cfg.seed, noise_floor_db=noise,
                    min_content_hz=float(cfg.min_content_hz), allow_band_limited=bool(cfg.allow_band_limited),
                    kind=kind, content_limits=limits)
    optional: dict[str, Any] = {}  # recorded only when used, so that datasets built before the options still resume
    if cfg.val_groups:
        optional["val_groups"] = sorted(set(cfg.val_groups))
    if limits:
        optional["content_limits"] = dict(limits)
    if kind == "audio":
        settings: dict[str, Any] = {
            "segment_seconds": float(cfg.segment_seconds), "seed": cfg.seed, "val_fraction": float(cfg.val_fraction),
            "test_speakers": tests, "min_content_hz": float(cfg.min_content_hz),
            "allow_band_limited": bool(cfg.allow_band_limited), "all_mics": bool(cfg.all_mics), "trim_db": TRIM_DB,
            "silent_segment_db": SILENT_SEGMENT_DB, **optional}
        return settings, recipe
    settings = {
        "sr_in_choices": list(choices) if choices is not None else None,
        "sr_in_range": list(rng_hz) if rng_hz is not None else None, "filters": families, "variants": cfg.variants,
        "segment_seconds": float(cfg.segment_seconds), "seed": cfg.seed,
        "noise_floor_db": list(noise) if noise is not None else None, "noise_floor_prob": NOISE_FLOOR_PROB,
        "val_fraction": float(cfg.val_fraction), "test_speakers": tests, "min_content_hz": float(cfg.min_content_hz),
        "allow_band_limited": bool(cfg.allow_band_limited), "all_mics": bool(cfg.all_mics), "trim_db": TRIM_DB,
        "silent_segment_db": SILENT_SEGMENT_DB, **optional,
    }
    return settings, recipe


def parse_content_limits(entries: tuple[str, ...]) -> tuple[tuple[str, float], ...]:
    """``("speech-synthetic=22050", …)`` → ``(("speech-synthetic", 22050.0), …)``, sorted by group; one line
    naming the entry for anything else."""
    limits: dict[str, float] = {}
    for entry in entries:
        group, sep, hz_text = entry.partition("=")
        group = group.strip().strip("/")
        try:
            hz = float(hz_text) if sep else float("nan")
        except ValueError:
            hz = float("nan")
        if not group or not hz > 0:
            raise SpecsrError(f"--content-limit: expected GROUP=HZ (a group or folder, a frequency > 0), got {entry!r}")
        if group in limits:
            raise SpecsrError(f"--content-limit: {group} is given twice")
        limits[group] = hz
    return tuple(sorted(limits.items()))


def _check_resumable(root: Path, manifest: dict[str, Any], kind: str) -> None:
    """A rerun adds to a dataset of the same kind and format version only."""
    have = dataset_kind(manifest)
    if manifest.get("version") != DATASET_VERSION:
        raise SpecsrError(f"{root}: a dataset of an older format (version {manifest.get('version')}, {have}); "
                          "training still reads it, but convert cannot add to it: rerun specsr convert into a "
                          "new output folder")
    if have != kind:
        flag = "without --spectrograms" if have == "audio" else "with --spectrograms"
        raise SpecsrError(f"{root} holds {'audio segments' if have == 'audio' else 'spectrogram pairs'}; "
                          f"resume it {flag}, or build into a new output folder")


class _BuildState:
    """The in-memory manifest: records shards, items and finished sources; saves it atomically."""

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root, self.manifest = root, manifest
        self.pending: dict[str, tuple[int, dict[str, Any]]] = {}  # source -> (items not in a shard yet, record)
        self.last_save_s = 0.0
        self.last_save_at = time.monotonic()

    def record_skipped(self, res: FileResult) -> None:
        self.manifest["sources"][res.relpath] = res.record()

    def expect(self, res: FileResult) -> None:
        self.pending[res.relpath] = (len(res.items), res.record())

    def shard_done(self, record: dict[str, Any], items: list[dict[str, Any]]) -> None:
        self.manifest["shards"].append(record)
        self.manifest["items"].extend(items)
        for src, n in Counter(it["source"] for it in items).items():
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
