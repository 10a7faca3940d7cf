"""Building a report: scoring the clips, writing their audio and thumbnails, and the folder itself.

Clips are scored with :func:`specsr.evaluate.score_clip` (what ``evaluate --compare`` uses); each
output's audio is copied or transcoded for browsers and drawn as a thumbnail on the clip's colour
scale; the page (:mod:`specsr.report.render`) and the CSVs go into a temporary folder next to the
target, which is renamed into place only when complete. ``force`` replaces an existing folder only
if it is empty or carries the report's marker file.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from specsr.audio import audio_info, write_audio
from specsr.errors import SpecsrError
from specsr.evaluate import (
    Clip,
    CompareRow,
    ScoredClip,
    SystemFn,
    SystemOutput,
    aggregate,
    discover_clips,
    per_clip_csv,
    per_clip_rows,
    score_clip,
)
from specsr.metrics import METRIC_SR, SCORE_FIELDS, split_rate
from specsr.report.render import (
    THUMB_HEIGHT_PX,
    THUMB_WIDTH_PX,
    Entry,
    ShownClip,
    model_note,
    render_html,
    safe_name,
    source_line,
)
from specsr.utils import atomic_output, atomic_write_text

MARKER = ".specsr-report"
# Played by current Chrome, Firefox and Safari as they are (WAV only as 16-bit PCM).
BROWSER_FORMATS = {("FLAC", None), ("MP3", None), ("OGG", None), ("WAV", "PCM_16"), ("WAV", "PCM_U8")}


@dataclass
class ReportSummary:
    """What :func:`build_report` wrote."""

    out_dir: Path
    rows: list[CompareRow]
    per_clip: list[dict]
    n_clips: int  # clips scored against a truth (a pair without a reference: 0)
    n_shown: int
    warnings: list[str] = field(default_factory=list)
    transcoded: list[str] = field(default_factory=list)

    @property
    def index(self) -> Path:
        return self.out_dir / "index.html"


def build_report(root: str | os.PathLike, out_dir: str | os.PathLike, *, sets: list[str] | None = None,
                 max_clips: int | None = None, baselines: bool = True, model: str | None = None,
                 wide_model: str | None = None, phase: str | None = None, n_iter: int | None = None,
                 device: str = "auto",
                 extra_systems: dict[str, SystemFn] | None = None,
                 title: str = "", notes: Iterable[str] = (), force: bool = False,
                 progress: Callable[[Iterable], Iterable] | None = None) -> ReportSummary:
    """A listening page for a comparison folder (see :mod:`specsr.report`).

    ``model`` (a checkpoint path, a bundled name or ``"bundled"`` for the default) adds a system
    ``specsr`` that upsamples each clip's input with ``phase`` (``wide_model``: its partner for high cutoffs,
    :func:`specsr.pipeline.load_model`). ``max_clips`` limits the clips shown
    per set and ratio; the summary still covers every clip, so it equals
    :func:`specsr.evaluate.compare` on the same folder. ``notes`` are extra lines for the "how
    measured" paragraph.
    """
    if max_clips is not None and max_clips < 0:
        raise SpecsrError(f"--max-clips must be 0 or more, got {max_clips}")
    out = _check_out_dir(out_dir, force)
    if Path(root).is_dir() and out.resolve().is_relative_to(Path(root).resolve()):
        raise SpecsrError(f"{out_dir}: inside {root}; write the report outside the folder it reports on")
    clips, warnings = discover_clips(root, sets)
    extra_systems, notes = _with_model(model, wide_model, phase, n_iter, device, extra_systems, notes)
    title = title or f"specsr report: {Path(root).resolve().name}"
    return _build(clips, warnings, out, max_clips=max_clips, baselines=baselines, extra_systems=extra_systems,
                  title=title, source=source_line(root), notes=list(notes), progress=progress)


def build_pair_report(input_path: str | os.PathLike, out_dir: str | os.PathLike, *,
                      output_path: str | os.PathLike | None = None,
                      reference_path: str | os.PathLike | None = None, sr_in: int | None = None,
                      baselines: bool = True, model: str | None = None, wide_model: str | None = None,
                      phase: str | None = None, n_iter: int | None = None, device: str = "auto",
                      extra_systems: dict[str, SystemFn] | None = None, title: str = "",
                      notes: Iterable[str] = (), force: bool = False) -> ReportSummary:
    """A listening page for one input, its upsampled ``output_path`` and optionally the reference.

    Either ``output_path`` or ``model`` (or both) must be given. ``sr_in`` (the rate whose Nyquist
    splits LSD-LF from LSD-HF) defaults to the input file's rate when it is below the output's,
    otherwise to twice the input's detected cutoff.
    """
    out = _check_out_dir(out_dir, force)
    inp = Path(input_path)
    info = audio_info(inp)
    if output_path is None and model is None and not extra_systems:
        raise SpecsrError("give the upsampled file (--output) or a model to run (--model)")
    systems = {}
    if output_path is not None:
        audio_info(output_path)
        systems["output"] = Path(output_path)
    if reference_path is not None:
        audio_info(reference_path)
    sr_in = split_rate(sr_in, info.sample_rate, str(inp))
    extra_systems, notes = _with_model(model, wide_model, phase, n_iter, device, extra_systems,
                                       notes)  # files checked first
    clip = Clip("pair", f"{sr_in / 1000:g}k-{METRIC_SR / 1000:g}k", sr_in, inp.stem,
                Path(reference_path) if reference_path is not None else None, inp, systems, file_kind="given")
    warnings = [] if reference_path is not None else ["no reference given: nothing is scored"]
    return _build([clip], warnings, out, max_clips=None, baselines=baselines, extra_systems=extra_systems,
                  title=title or f"specsr report: {inp.name}", source=source_line(inp), notes=list(notes),
                  progress=None)


def _with_model(model: str | None, wide_model: str | None, phase: str | None, n_iter: int | None, device: str,
                extra_systems: dict[str, SystemFn] | None,
                notes: Iterable[str]) -> tuple[dict[str, SystemFn], list[str]]:
    """Add the system ``specsr`` (``model`` run on each input) and a line saying what it is.

    ``phase`` / ``n_iter``: None takes :data:`specsr.config.INFERENCE_DEFAULTS`; checked before the model loads.
    """
    systems, lines = dict(extra_systems or {}), list(notes)
    if model is None:
        if wide_model is not None:
            raise SpecsrError("--wide-model goes with --model (the model whose high cutoffs it takes)")
        return systems, lines
    from specsr.config import INFERENCE_DEFAULTS
    from specsr.evaluate import model_system
    from specsr.models import count_parameters
    from specsr.pipeline import load_model

    settings = INFERENCE_DEFAULTS.with_overrides(phase=phase, n_iter=n_iter)
    upsampler = load_model(model, device=device, settings=settings, wide_model=wide_model)
    n_params = count_parameters(upsampler.loaded.model)  # the checkpoint's (inference folds BatchNorm away)
    systems["specsr"] = model_system(upsampler)
    wide = "" if upsampler.wide_model is None else str(upsampler.wide_model)
    lines.append(model_note(upsampler.loaded.name, n_params, upsampler.sr_out, settings.phase, settings.n_iter,
                            upsampler.device.type, wide))
    return systems, lines


# ---------------------------------------------------------------------------------------------
# the folder


def _build(clips: list[Clip], warnings: list[str], out: Path, *, max_clips: int | None, baselines: bool,
           extra_systems: dict[str, SystemFn] | None, title: str, source: str, notes: list[str],
           progress: Callable[[Iterable], Iterable] | None) -> ReportSummary:
    # the input as given is always on the page; `baselines` adds the model-free ones
    chosen: bool | tuple[str, ...] = True if baselines else ("input",)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        per_clip: list[dict] = []
        kinds: dict[str, str] = {}
        shown: list[ShownClip] = []
        transcoded: list[str] = []
        n_per_group: dict[tuple[str, str], int] = {}
        n_read = n_scored = 0  # clips read; of those, clips with a truth to score against
        for clip in (progress(clips) if progress else clips):
            scored = score_clip(clip, baselines=chosen, extra_systems=extra_systems, keep_audio=True,
                                warnings=warnings)
            if scored is None:
                continue
            n_read += 1
            n_scored += clip.truth is not None
            kinds.update({o.name: o.kind for o in scored.outputs})
            per_clip.extend(per_clip_rows(scored))
            group = (clip.set, clip.ratio)
            if max_clips is None or n_per_group.get(group, 0) < max_clips:
                n_per_group[group] = n_per_group.get(group, 0) + 1
                shown.append(_write_clip_assets(scored, tmp, transcoded))
        if n_read == 0:
            raise SpecsrError("no clip could be read; nothing to report")
        rows = aggregate(per_clip, kinds)
        page = render_html(title=title, source=source, rows=rows, clips=shown, n_clips=n_scored,
                           warnings=warnings, transcoded=transcoded, notes=notes)
        atomic_write_text(tmp / "index.html", page)
        atomic_write_text(tmp / "summary.csv", _summary_csv(rows))
        atomic_write_text(tmp / "clips.csv", per_clip_csv(per_clip))
        atomic_write_text(tmp / MARKER, "written by specsr report; `specsr report --force` may replace this folder\n")
        _make_public(tmp)
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ReportSummary(out, rows, per_clip, n_scored, len(shown), warnings, transcoded)


def _check_out_dir(out_dir: str | os.PathLike, force: bool) -> Path:
    out = Path(out_dir).absolute()
    parent = out.parent
    if not parent.is_dir():
        raise SpecsrError(f"{out_dir}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise SpecsrError(f"{out_dir}: the folder {parent} is not writable")
    if out.exists() or out.is_symlink():
        if not force:
            raise SpecsrError(f"{out_dir}: exists already (use --force to replace it)")
        if not out.is_dir() or out.is_symlink():
            raise SpecsrError(f"{out_dir}: exists and is not a folder; not replacing it")
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise SpecsrError(f"{out_dir}: exists and is not a specsr report; not replacing it")
    return out


def _swap_into_place(tmp: Path, out: Path) -> None:
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        os.replace(out, old / "report")
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def _make_public(root: Path) -> None:
    """mkdtemp makes a private folder; give the report the permissions ``mkdir`` would have."""
    umask = os.umask(0)
    os.umask(umask)
    for folder, _dirs, files in os.walk(root):
        os.chmod(folder, 0o777 & ~umask)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o666 & ~umask)


def _summary_csv(rows: list[CompareRow]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["set", "ratio", "sr_in", "system", "kind", "n_clips", *SCORE_FIELDS])
    for r in rows:
        w.writerow([r.set, r.ratio, r.sr_in, r.system, r.kind, r.n_clips, *(getattr(r.mean, k) for k in SCORE_FIELDS)])
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# the clips' assets


def _write_clip_assets(scored: ScoredClip, tmp: Path, transcoded: list[str]) -> ShownClip:
    """Audio and a spectrogram per output of one clip, under ``clips/<set>/<ratio>/<clip>/``."""
    from specsr.plotting import colour_limits, plot_thumbnail, spectrogram_db

    c = scored.clip
    rel_dir = Path("clips", safe_name(c.set), safe_name(c.ratio), safe_name(c.name))
    folder = tmp / rel_dir
    folder.mkdir(parents=True, exist_ok=True)
    panels = [spectrogram_db(o.signal, METRIC_SR, max_columns=640) for o in scored.outputs]
    truth = [p for p, o in zip(panels, scored.outputs, strict=True) if o.kind == "truth"]
    vmin, vmax = colour_limits(truth or panels)
    entries = []
    used: set[str] = set()
    for out, panel in zip(scored.outputs, panels, strict=True):
        stem = safe_name(out.name)
        while stem in used:
            stem += "_"
        used.add(stem)
        audio_rel, note = _write_entry_audio(out, folder, stem, rel_dir)
        if note.startswith("transcoded"):
            transcoded.append(f"{c.set}/{c.ratio}/{c.name}/{out.name}: {note}")
        image_rel = rel_dir / f"{stem}.png"
        plot_thumbnail(panel, tmp / image_rel, vmin_db=vmin, vmax_db=vmax, cutoff_hz=c.sr_in / 2,
                       width_px=THUMB_WIDTH_PX, height_px=THUMB_HEIGHT_PX)
        entries.append(Entry(out.name, out.kind, out.scores, image=image_rel.as_posix(), audio=audio_rel, note=note))
    seconds = len(scored.outputs[-1].signal) / METRIC_SR if scored.outputs else 0.0
    return ShownClip(c, entries, vmin, vmax, seconds)


def _write_entry_audio(out: SystemOutput, folder: Path, stem: str, rel_dir: Path) -> tuple[str, str]:
    """Put one output's audio in ``folder``; returns its relative path and how it got there."""
    if out.path is not None:
        info = audio_info(out.path)
        fmt = info.format
        if (fmt, None) in BROWSER_FORMATS or (fmt, info.subtype) in BROWSER_FORMATS:
            name = f"{stem}{out.path.suffix.lower()}"
            with atomic_output(folder / name) as tmp_copy:
                shutil.copyfile(out.path, tmp_copy)
            return (rel_dir / name).as_posix(), f"the scored file, copied as is ({fmt})"
        from specsr.audio import read_audio

        wav, sr = read_audio(out.path)
        subtype = "PCM_16" if info.subtype in ("PCM_16", "PCM_S8", "PCM_U8") else "PCM_24"
        name = f"{stem}.flac"
        write_audio(folder / name, _clipped(wav), sr, subtype=subtype)
        return (rel_dir / name).as_posix(), (f"transcoded from {fmt} {info.subtype} to FLAC "
                                             f"{subtype.replace('PCM_', '')}-bit for browsers")
    if out.audio is None:
        raise SpecsrError(f"{out.name}: no audio kept for the report")  # a programming error, not user input
    wav, sr = out.audio
    name = f"{stem}.flac"
    peak = float(np.max(np.abs(wav))) if wav.size else 0.0
    write_audio(folder / name, _clipped(wav), sr, subtype="PCM_24")
    note = "computed by this report (scored as float), written as 24-bit FLAC"
    if peak > 1.0:
        note += f"; peaks up to {peak:.2f} clipped to full scale in the file (not in the scores)"
    return (rel_dir / name).as_posix(), note


def _clipped(wav: np.ndarray) -> np.ndarray:
    return np.clip(wav, -1.0, 1.0)
