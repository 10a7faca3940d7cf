"""Finding the sources of a dataset and splitting them: folders, files and .txt lists of paths, VCTK's
layouts and rules (mic1 only, test speakers left out), and the train/val split by group."""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from specsr.audio import audio_info, find_audio_files
from specsr.config import VCTK_TEST_SPEAKERS
from specsr.errors import SpecsrError
from specsr.utils import read_path_list

_VCTK_ROOTS = ("wav48_silence_trimmed", "wav48")
_SPEAKER_DIR = re.compile(r"^(p\d{3}|s\d+)$")
_VCTK_NAME = re.compile(r"^(p\d{3}|s\d+)_\d+(?:_mic(\d))?$")


def stable_hash(text: str) -> int:
    """A hash that is the same in every process and Python version (CRC-32 of UTF-8)."""
    return zlib.crc32(text.encode("utf-8"))


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
        base_name = root.resolve().parent.name
        return [(full, rel, base_name) for full, rel in read_path_list(root)]
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


def in_group(group: str, name: str) -> bool:
    """``group`` is ``name`` or lies under it (``speech-synthetic/mei`` is in ``speech-synthetic``)."""
    return group == name or group.startswith(name + "/")


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


def header_usable(sr_out: int, min_seconds: float) -> Callable[[SourceFile], bool]:
    """Whether a file's header promises a usable source (readable, rate and length high enough)."""

    def usable(f: SourceFile) -> bool:
        try:
            info = audio_info(f.path)
        except SpecsrError:
            return False
        return info.sample_rate >= 0.9 * sr_out and info.seconds >= min_seconds

    return usable
