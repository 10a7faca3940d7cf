"""Scoring files and comparing systems with the one metric (:mod:`specsr.metrics`).

Two entry points:

- :func:`evaluate_paths`: a reference and an estimate (two files, or two folders matched by
  relative path) → LSD / LSD-HF / LSD-LF / SNR per file and the mean;
- :func:`compare`: a folder laid out like ``shared/data/eval``
  (``<set>/<ratio>/<clip>/{truth,input,<system>}.*``) → per set and ratio, every system's mean
  on identical clips, beside the model-free baselines and, optionally, systems computed on the fly
  from each input (``extra_systems``, e.g. a specsr model).

Files at any rate and channel count are scored on their channel mean at 48 kHz, trimmed to equal
length, at their own level.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import warnings as pywarnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from specsr.audio import AUDIO_EXTENSIONS, find_audio_files, read_audio
from specsr.baselines import BASELINE_FUNCS
from specsr.errors import SpecsrError
from specsr.metrics import (
    METRIC_COLUMNS,
    METRIC_SR,
    SCORE_FIELDS,
    Scores,
    load_for_metric,
    load_reference,
    mean_scores,
    to_metric_signal,
)
from specsr.utils import atomic_write_text

if TYPE_CHECKING:
    from specsr.pipeline import Upsampler

MISALIGN_WARN_MS = 5.0

# A system computed from a clip's input: (wav [C, T], sr of the file, nominal sr_in) -> (wav [C, T'], sr).
SystemFn = Callable[[np.ndarray, int, int], tuple[np.ndarray, int]]


@dataclass(frozen=True)
class PairResult:
    """Scores of one estimate file against its reference."""

    name: str
    scores: Scores
    length_diff_ms: float


@dataclass
class EvaluationReport:
    results: list[PairResult]
    mean: Scores
    warnings: list[str] = field(default_factory=list)


def evaluate_pair(ref_path: str | Path, est_path: str | Path, sr_in: int) -> PairResult:
    scores, diff_ms = load_reference(ref_path).score(load_for_metric(est_path), sr_in)
    return PairResult(str(est_path), scores, diff_ms)


def match_files(ref_dir: Path, est_dir: Path) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """Pair files of two folders by relative path (extension ignored). Returns pairs and the
    relative paths of references that have no estimate."""
    def key(p: Path, root: Path) -> str:
        return str(p.relative_to(root).with_suffix(""))

    ests = {key(p, est_dir): p for p in find_audio_files(est_dir)}
    pairs, missing = [], []
    for ref in find_audio_files(ref_dir):
        k = key(ref, ref_dir)
        if k in ests:
            pairs.append((k, ref, ests[k]))
        else:
            missing.append(k)
    return pairs, missing


def evaluate_paths(ref: str | Path, est: str | Path, sr_in: int,
                   progress: Callable[[Iterable], Iterable] | None = None) -> EvaluationReport:
    """Score ``est`` against ``ref``: two files, or two folders matched by relative path."""
    ref, est = Path(ref), Path(est)
    for p in (ref, est):
        if not p.exists():
            raise SpecsrError(f"{p}: no such file or folder")
    if ref.is_dir() != est.is_dir():
        raise SpecsrError("give two files or two folders, not one of each")
    if ref.is_dir():
        pairs, missing = match_files(ref, est)
        if not pairs:
            raise SpecsrError(f"no files in {est} match the references in {ref} by relative path")
    else:
        pairs, missing = [(est.name, ref, est)], []
    warnings = [f"{m}: no estimate found, skipped" for m in missing]
    results = []
    for name, r, e in (progress(pairs) if progress else pairs):
        res = evaluate_pair(r, e, sr_in)
        results.append(PairResult(name, res.scores, res.length_diff_ms))
        if res.length_diff_ms > MISALIGN_WARN_MS:
            warnings.append(f"{name}: lengths differ by {res.length_diff_ms:.1f} ms (misaligned?); trimmed")
    return EvaluationReport(results, mean_scores([r.scores for r in results]), warnings)


def write_csv(report: EvaluationReport, path: str | Path) -> None:
    """Per-file metrics and the mean as CSV (atomic)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["file", *SCORE_FIELDS, "length_diff_ms"])
    for r in report.results:
        w.writerow([r.name, *(_f(getattr(r.scores, name)) for name in SCORE_FIELDS), f"{r.length_diff_ms:.2f}"])
    w.writerow(["mean", *(_f(getattr(report.mean, name)) for name in SCORE_FIELDS), ""])
    atomic_write_text(path, buf.getvalue())


def _f(x: float) -> str:
    return f"{x:.4f}" if math.isfinite(x) else ""


# ---------------------------------------------------------------------------------------------
# Comparison over a demo-clip folder


@dataclass(frozen=True)
class Clip:
    """One clip of a comparison folder: truth, input and published systems' outputs.

    ``file_kind`` is the kind the files of ``systems`` are listed under: ``"published"`` for a
    comparison folder's (what each paper released), ``"given"`` for a file the user names.
    """

    set: str
    ratio: str
    sr_in: int
    name: str
    truth: Path | None
    input: Path | None
    systems: dict[str, Path]
    file_kind: str = "published"


@dataclass
class CompareRow:
    set: str
    ratio: str
    sr_in: int
    system: str
    kind: str  # "baseline" | "published" | "given" | "computed"
    n_clips: int
    mean: Scores


@dataclass
class CompareResult:
    rows: list[CompareRow]
    per_clip: list[dict]
    warnings: list[str] = field(default_factory=list)


_RATIO_RE = re.compile(r"^(\d+(?:\.\d+)?)k-(\d+(?:\.\d+)?)k$")


def _sr_from_ratio(ratio: str) -> int | None:
    m = _RATIO_RE.match(ratio)
    return int(round(float(m.group(1)) * 1000)) if m else None


def discover_clips(root: str | os.PathLike, sets: list[str] | None = None) -> tuple[list[Clip], list[str]]:
    """Find ``<set>/<ratio>/<clip>/`` folders, ordered by set, input rate and name. Returns the clips
    and warnings for skipped ones."""
    root = Path(root)
    if not root.is_dir():
        raise SpecsrError(f"{root}: not a folder")
    manifest_sr = _manifest_rates(root / "manifest.csv")
    clips, warnings = [], []
    for clip_dir in sorted(p for p in root.glob("*/*/*") if p.is_dir()):
        set_name, ratio, name = clip_dir.parts[-3:]
        if sets and set_name not in sets:
            continue
        sr_in = manifest_sr.get((set_name, ratio)) or _sr_from_ratio(ratio)
        if sr_in is None:
            warnings.append(f"{set_name}/{ratio}: cannot tell the input rate from the folder name, skipped")
            continue
        files = {p.stem: p for p in sorted(clip_dir.iterdir()) if p.suffix.lower() in AUDIO_EXTENSIONS}
        truth = files.pop("truth", None)
        inp = files.pop("input", None)
        if truth is None:
            warnings.append(f"{set_name}/{ratio}/{name}: no truth file, skipped")
            continue
        clips.append(Clip(set_name, ratio, sr_in, name, truth, inp, files))
    if not clips:
        raise SpecsrError(f"{root}: no clips found (expected <set>/<ratio>/<clip>/truth.* folders)")
    clips.sort(key=lambda c: (c.set, c.sr_in, c.ratio, c.name))  # 8k before 12k
    return clips, warnings


def _manifest_rates(path: Path) -> dict[tuple[str, str], int]:
    if not path.exists():
        return {}
    with open(path, newline="") as fh:
        return {(r["set"], r["ratio"]): int(r["sr_in"]) for r in csv.DictReader(fh)
                if r.get("set") and r.get("ratio") and r.get("sr_in")}


@dataclass
class SystemOutput:
    """One system's output for one clip, as scored.

    ``signal`` is the mono 48 kHz signal the metric saw. ``path`` is the file that was read (published
    systems, the input as given, the truth); computed systems (baselines, models) keep their audio in
    ``audio`` (``[C, T]`` and its rate) when asked to.
    """

    name: str
    kind: str  # "baseline" | "published" | "given" | "computed" | "truth"
    signal: np.ndarray
    scores: Scores | None
    path: Path | None = None
    audio: tuple[np.ndarray, int] | None = None


@dataclass
class ScoredClip:
    clip: Clip
    outputs: list[SystemOutput]  # baselines, published, computed; the truth last (when there is one)


def score_clip(clip: Clip, *, baselines: bool | tuple[str, ...] = True,
               extra_systems: dict[str, SystemFn] | None = None, keep_audio: bool = False,
               warnings: list[str] | None = None) -> ScoredClip | None:
    """Score every system of ``clip`` against its truth (``None`` when the truth cannot be read).

    ``baselines``: all of :data:`BASELINE_FUNCS` (``True``), none, or the names given. Without a
    truth (``clip.truth is None``) the outputs are computed but not scored. Problems with single
    files are appended to ``warnings`` and the file is skipped.
    """
    names = list(BASELINE_FUNCS) if baselines is True else list(baselines or ())
    unknown = [n for n in names if n not in BASELINE_FUNCS]
    if unknown:
        raise SpecsrError(f"unknown baseline(s) {', '.join(unknown)}; known: {', '.join(BASELINE_FUNCS)}")
    warnings = [] if warnings is None else warnings
    where = f"{clip.set}/{clip.ratio}/{clip.name}"
    truth = None
    if clip.truth is not None:
        try:
            truth = load_reference(clip.truth)  # its spectrum is computed once
        except SpecsrError as exc:
            warnings.append(f"{where}: {exc}; clip skipped")
            return None
    computed: list[SystemOutput] = []  # baselines first, then extra systems
    if clip.input is not None and (names or extra_systems):
        try:
            wav_in, sr_file = read_audio(clip.input)
        except SpecsrError as exc:
            warnings.append(f"{where}: {exc}; baselines and computed systems skipped for this clip")
        else:
            systems: list[tuple[str, Callable[..., object], str]] = [
                (name, BASELINE_FUNCS[name], "baseline") for name in names]
            systems += [(name, fn, "computed") for name, fn in (extra_systems or {}).items()]
            for name, fn, kind in systems:
                failure = None
                with pywarnings.catch_warnings(record=True) as caught:  # e.g. a cutoff outside the model's range
                    pywarnings.simplefilter("always")
                    try:
                        result = fn(wav_in, sr_file, clip.sr_in)  # baselines: [C, T] at 48 kHz; systems: (wav, sr)
                    except SpecsrError as exc:  # e.g. nothing to add to a full-band input
                        failure = exc
                warnings.extend(f"{where}/{name}: {w.message}" for w in caught)
                if failure is not None:
                    warnings.append(f"{where}/{name}: {failure}; skipped")
                    continue
                wav_out, sr_out = result if isinstance(result, tuple) else (result, METRIC_SR)
                out = SystemOutput(name, kind, to_metric_signal(wav_out, sr_out), None)
                if name == "input":  # the file as given: resampled for the metric only
                    out.path = clip.input
                elif keep_audio:
                    out.audio = (wav_out, sr_out)
                computed.append(out)
    elif clip.input is None:
        warnings.append(f"{where}: no input file; baselines and computed systems skipped for this clip")
    published: list[SystemOutput] = []
    taken = set(BASELINE_FUNCS) | set(extra_systems or {})
    for name, path in clip.systems.items():
        if name in taken:  # e.g. a specsr.flac in the folder and --model: never average the two
            warnings.append(f"{where}: {path.name} has the name of a computed system; scored as {name}-file")
            name = f"{name}-file"
        try:
            published.append(SystemOutput(name, clip.file_kind, load_for_metric(path), None, path=path))
        except SpecsrError as exc:
            warnings.append(f"{where}: {exc}; skipped")
    outputs = ([o for o in computed if o.kind == "baseline"] + published
               + [o for o in computed if o.kind == "computed"])
    if truth is not None:
        for out in outputs:
            out.scores, diff_ms = truth.score(out.signal, clip.sr_in)
            if diff_ms > MISALIGN_WARN_MS:
                warnings.append(f"{where}/{out.name}: lengths differ by {diff_ms:.1f} ms")
        outputs.append(SystemOutput("truth", "truth", truth.signal.numpy(), None, path=clip.truth))
    return ScoredClip(clip, outputs)


def per_clip_rows(scored: ScoredClip) -> list[dict]:
    """The scored outputs of a clip as rows of :attr:`CompareResult.per_clip`."""
    c = scored.clip
    return [{"set": c.set, "ratio": c.ratio, "sr_in": c.sr_in, "clip": c.name, "system": o.name,
             **o.scores.as_dict()} for o in scored.outputs if o.scores is not None]


def compare(root: str | Path, *, sets: list[str] | None = None, baselines: bool | tuple[str, ...] = True,
            extra_systems: dict[str, SystemFn] | None = None,
            progress: Callable[[Iterable], Iterable] | None = None) -> CompareResult:
    """Mean metrics per (set, ratio, system) over the clips that have that system."""
    clips, warnings = discover_clips(root, sets)
    per_clip: list[dict] = []
    kinds: dict[str, str] = {}
    for clip in (progress(clips) if progress else clips):
        scored = score_clip(clip, baselines=baselines, extra_systems=extra_systems, warnings=warnings)
        if scored is None:
            continue
        kinds.update({o.name: o.kind for o in scored.outputs})
        per_clip.extend(per_clip_rows(scored))
    return CompareResult(aggregate(per_clip, kinds), per_clip, warnings)


def model_system(upsampler: Upsampler, *, phase: str | None = None, n_iter: int | None = None) -> SystemFn:
    """A :func:`compare` system that runs a loaded specsr model on each clip's input (``phase`` / ``n_iter``
    override the upsampler's settings)."""

    def run(wav: np.ndarray, sr: int, sr_in: int) -> tuple[np.ndarray, int]:
        return upsampler.upsample(wav, sr, phase=phase, n_iter=n_iter)

    return run


_KIND_ORDER = {"baseline": 0, "published": 1, "given": 1, "computed": 2, "truth": 3}
_BASELINE_ORDER = {name: i for i, name in enumerate(BASELINE_FUNCS)}


PER_CLIP_FIELDS = ("set", "ratio", "sr_in", "clip", "system", *SCORE_FIELDS)


def per_clip_csv(per_clip: list[dict]) -> str:
    """:attr:`CompareResult.per_clip` as CSV text (one row per clip and system)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=PER_CLIP_FIELDS)
    w.writeheader()
    w.writerows(per_clip)
    return buf.getvalue()


def aggregate(per_clip: list[dict], kinds: dict[str, str]) -> list[CompareRow]:
    groups: dict[tuple[str, str, int, str], list[Scores]] = {}
    for r in per_clip:
        groups.setdefault((r["set"], r["ratio"], r["sr_in"], r["system"]), []).append(
            Scores(**{name: r.get(name, math.nan) for name in SCORE_FIELDS}))
    rows = [CompareRow(s, ratio, sr_in, system, kinds.get(system, "published"), len(v), mean_scores(v))
            for (s, ratio, sr_in, system), v in groups.items()]
    rows.sort(key=lambda r: (r.set, r.sr_in, _KIND_ORDER[r.kind], _BASELINE_ORDER.get(r.system, 99), r.system))
    return rows


def format_markdown(result: CompareResult) -> str:
    """One markdown table per (set, ratio); the best LSD among non-input systems in bold."""
    out: list[str] = []
    keys = list(dict.fromkeys((r.set, r.ratio, r.sr_in) for r in result.rows))
    for set_name, ratio, sr_in in keys:
        rows = [r for r in result.rows if (r.set, r.ratio) == (set_name, ratio)]
        n = max(r.n_clips for r in rows)
        out.append(f"### {set_name} · {ratio} (sr_in {sr_in} Hz, {n} clip{'s' if n != 1 else ''})\n")
        out.append("| system | kind | " + " | ".join(label for _k, label, _d, _b in METRIC_COLUMNS) + " |")
        out.append("|---|---|" + "---|" * len(METRIC_COLUMNS))
        contenders = [r for r in rows if r.system != "input" and math.isfinite(r.mean.lsd)]
        best = min((r.mean.lsd for r in contenders), default=None)
        for r in rows:
            m = r.mean
            cells = [_fmt(getattr(m, key), digits) for key, _label, digits, _better in METRIC_COLUMNS]
            if best is not None and r.system != "input" and abs(m.lsd - best) < 5e-4:
                cells[0] = f"**{cells[0]}**"
            n_note = "" if r.n_clips == n else f" ({r.n_clips} clips)"
            out.append(f"| {r.system}{n_note} | {r.kind} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def _fmt(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}" if math.isfinite(x) else "–"
