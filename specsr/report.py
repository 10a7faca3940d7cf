"""A listening page like the papers' demo pages, generated from the same data ``evaluate --compare`` scores.

:func:`build_report` takes a folder laid out like ``shared/data/eval``
(``<set>/<ratio>/<clip>/{truth,input,<system>}.*``), scores it with :func:`specsr.evaluate.score_clip`
(the very function behind :func:`specsr.evaluate.compare`, so the summary numbers are compare's),
and writes a self-contained folder:

- ``index.html``: a summary table per set and ratio (mean LSD / LSD-HF / LSD-LF / SNR per system, the
  best of each column in bold), a "how measured" paragraph, then per clip an audio player and a
  spectrogram per system, truth last. Plain HTML and CSS with relative links, plus a few lines of
  optional JavaScript that pause the other players when one starts; it opens from the file system
  and can be published as is;
- ``clips/<set>/<ratio>/<clip>/<system>.{flac,wav,…,png}``: the audio that was scored and its
  spectrogram (the scored signal: channel mean at 48 kHz, one colour scale per clip);
- ``summary.csv`` and ``clips.csv``: the numbers of the page.

Audio files are copied as they are when browsers play them (FLAC, 16-bit WAV, MP3, Ogg); anything
else is transcoded to FLAC, and outputs computed by the report (baselines, a specsr model) are
written as 24-bit FLAC. The page says which. :func:`build_pair_report` does the same for one input,
its output and (optionally) a reference.

The folder appears under its final name only when complete; an existing one is replaced only with
``force`` and only if it is empty or a previous report.
"""

from __future__ import annotations

import csv
import html
import io
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

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
from specsr.metrics import METRIC_SR, Scores

MARKER = ".specsr-report"
# Played by current Chrome, Firefox and Safari as they are (WAV only as 16-bit PCM).
BROWSER_FORMATS = {("FLAC", None), ("MP3", None), ("OGG", None), ("WAV", "PCM_16"), ("WAV", "PCM_U8")}
_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")
THUMB_WIDTH_PX, THUMB_HEIGHT_PX = 264, 170  # five systems side by side on a 1480 px page


@dataclass(frozen=True)
class Entry:
    """One system on one clip as the page shows it."""

    name: str
    kind: str
    scores: Scores | None
    audio: str  # path relative to the report folder
    image: str
    note: str  # how the audio got here: copied / transcoded / computed


@dataclass(frozen=True)
class ShownClip:
    set: str
    ratio: str
    sr_in: int
    name: str
    entries: list[Entry]
    vmin_db: float
    vmax_db: float
    seconds: float


@dataclass
class ReportSummary:
    """What :func:`build_report` wrote."""

    out_dir: Path
    rows: list[CompareRow]
    per_clip: list[dict]
    n_clips: int
    n_shown: int
    warnings: list[str] = field(default_factory=list)
    transcoded: list[str] = field(default_factory=list)

    @property
    def index(self) -> Path:
        return self.out_dir / "index.html"


def build_report(root: str | os.PathLike, out_dir: str | os.PathLike, *, sets: list[str] | None = None,
                 max_clips: int | None = None, baselines: bool = True, model: str | None = None,
                 phase: str = "fgla", n_iter: int = 32, device: str = "auto",
                 extra_systems: dict[str, SystemFn] | None = None,
                 title: str = "", notes: Iterable[str] = (), force: bool = False,
                 progress: Callable[[Iterable], Iterable] | None = None) -> ReportSummary:
    """A listening page for a comparison folder (see the module docstring).

    ``model`` (a checkpoint path, a bundled name or ``"bundled"`` for the default) adds a system
    ``specsr`` that upsamples each clip's input with ``phase``. ``max_clips`` limits the clips shown
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
    extra_systems, notes = _with_model(model, phase, n_iter, device, extra_systems, notes)
    title = title or f"specsr report: {Path(root).resolve().name}"
    source = f"Generated from <code>{html.escape(str(root))}</code>"
    return _build(clips, warnings, out, max_clips=max_clips, baselines=baselines, extra_systems=extra_systems,
                  title=title, source=source, notes=list(notes), progress=progress)


def build_pair_report(input_path: str | os.PathLike, out_dir: str | os.PathLike, *,
                      output_path: str | os.PathLike | None = None,
                      reference_path: str | os.PathLike | None = None, sr_in: int | None = None,
                      baselines: bool = True, model: str | None = None, phase: str = "fgla",
                      n_iter: int = 32, device: str = "auto", extra_systems: dict[str, SystemFn] | None = None,
                      title: str = "", notes: Iterable[str] = (), force: bool = False) -> ReportSummary:
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
    if sr_in is None:
        sr_in = _guess_sr_in(inp, info.sample_rate, output_path)
    if not 0 < sr_in <= METRIC_SR:
        raise SpecsrError(f"--sr-in must be in (0, {METRIC_SR}], got {sr_in}")
    extra_systems, notes = _with_model(model, phase, n_iter, device, extra_systems, notes)  # files checked first
    clip = Clip("pair", f"{sr_in / 1000:g}k-{METRIC_SR / 1000:g}k", sr_in, inp.stem,
                Path(reference_path) if reference_path is not None else None, inp, systems)
    warnings = [] if reference_path is not None else ["no reference given: nothing is scored"]
    source = f"Generated from <code>{html.escape(str(inp))}</code>"
    return _build([clip], warnings, out, max_clips=None, baselines=baselines, extra_systems=extra_systems,
                  title=title or f"specsr report: {inp.name}", source=source, notes=list(notes), progress=None)


def _with_model(model: str | None, phase: str, n_iter: int, device: str, extra_systems: dict[str, SystemFn] | None,
                notes: Iterable[str]) -> tuple[dict[str, SystemFn], list[str]]:
    """Add the system ``specsr`` (``model`` run on each input) and a line saying what it is."""
    systems, lines = dict(extra_systems or {}), list(notes)
    if model is None:
        return systems, lines
    from specsr.evaluate import model_system
    from specsr.phase import METHODS
    from specsr.pipeline import load_model

    if phase not in METHODS:
        raise SpecsrError(f"--phase must be one of {', '.join(METHODS)}, got {phase!r}")
    if n_iter < 0:
        raise SpecsrError(f"--n-iter must be >= 0, got {n_iter}")

    upsampler = load_model(model, device=device)
    from specsr.models import count_parameters

    n_params = count_parameters(upsampler.loaded.model)  # the checkpoint's (inference folds BatchNorm away)
    systems["specsr"] = model_system(upsampler, phase=phase, n_iter=n_iter)
    lines.append(f"<i>specsr</i> is the model <code>{html.escape(upsampler.loaded.name)}</code> ({n_params:,} "
                 f"parameters, {upsampler.sr_out} Hz out) run by this report on each input as given, phase "
                 f"reconstruction <code>{html.escape(phase)}</code>"
                 + (f" ({n_iter} iterations)" if phase != "lowres" else "") + f", on {upsampler.device.type}.")
    return systems, lines


def _guess_sr_in(inp: Path, sr_file: int, output_path: str | os.PathLike | None) -> int:
    sr_out = audio_info(output_path).sample_rate if output_path is not None else METRIC_SR
    if sr_file < sr_out:
        return sr_file
    from specsr.audio import read_audio
    from specsr.cutoff import detect_cutoff

    est = detect_cutoff(*read_audio(inp))
    if not est.band_limited:
        raise SpecsrError(f"{inp}: the input is full band at {sr_file} Hz; give --sr-in (the rate it was "
                          "band-limited to)")
    return int(round(2 * est.cutoff_hz / 100) * 100)


# ---------------------------------------------------------------------------------------------
# building


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
        n_scored = 0
        for clip in (progress(clips) if progress else clips):
            scored = score_clip(clip, baselines=chosen, extra_systems=extra_systems, keep_audio=True,
                                warnings=warnings)
            if scored is None:
                continue
            n_scored += 1
            kinds.update({o.name: o.kind for o in scored.outputs})
            per_clip.extend(per_clip_rows(scored))
            group = (clip.set, clip.ratio)
            if max_clips is None or n_per_group.get(group, 0) < max_clips:
                n_per_group[group] = n_per_group.get(group, 0) + 1
                shown.append(_write_clip_assets(scored, tmp, transcoded))
        if n_scored == 0:
            raise SpecsrError("no clip could be read; nothing to report")
        rows = aggregate(per_clip, kinds)
        page = render_html(title=title, source=source, rows=rows, clips=shown, n_clips=n_scored,
                           warnings=warnings, transcoded=transcoded, notes=notes)
        (tmp / "index.html").write_text(page, encoding="utf-8")
        (tmp / "summary.csv").write_text(_summary_csv(rows), encoding="utf-8")
        (tmp / "clips.csv").write_text(per_clip_csv(per_clip), encoding="utf-8")
        (tmp / MARKER).write_text("written by specsr report; `specsr report --force` may replace this folder\n",
                                  encoding="utf-8")
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


def _safe(name: str) -> str:
    """A file-name-safe version of a set, ratio, clip or system name."""
    return _SAFE.sub("_", name).strip(".") or "_"


def _write_clip_assets(scored: ScoredClip, tmp: Path, transcoded: list[str]) -> ShownClip:
    """Audio and a spectrogram per output of one clip, under ``clips/<set>/<ratio>/<clip>/``."""
    from specsr.plotting import colour_limits, plot_thumbnail, spectrogram_db

    c = scored.clip
    rel_dir = Path("clips", _safe(c.set), _safe(c.ratio), _safe(c.name))
    folder = tmp / rel_dir
    folder.mkdir(parents=True, exist_ok=True)
    panels = [spectrogram_db(o.signal, METRIC_SR, max_columns=640) for o in scored.outputs]
    truth = [p for p, o in zip(panels, scored.outputs, strict=True) if o.kind == "truth"]
    vmin, vmax = colour_limits(truth or panels)
    entries = []
    used: set[str] = set()
    for out, panel in zip(scored.outputs, panels, strict=True):
        stem = _safe(out.name)
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
    return ShownClip(c.set, c.ratio, c.sr_in, c.name, entries, vmin, vmax, seconds)


def _write_entry_audio(out: SystemOutput, folder: Path, stem: str, rel_dir: Path) -> tuple[str, str]:
    """Put one output's audio in ``folder``; returns its relative path and how it got there."""
    if out.path is not None:
        info = audio_info(out.path)
        fmt = info.format
        if (fmt, None) in BROWSER_FORMATS or (fmt, info.subtype) in BROWSER_FORMATS:
            name = f"{stem}{out.path.suffix.lower()}"
            shutil.copyfile(out.path, folder / name)
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


# ---------------------------------------------------------------------------------------------
# tables


def _summary_csv(rows: list[CompareRow]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["set", "ratio", "sr_in", "system", "kind", "n_clips", "lsd", "lsd_hf", "lsd_lf", "snr"])
    for r in rows:
        m = r.mean
        w.writerow([r.set, r.ratio, r.sr_in, r.system, r.kind, r.n_clips, m.lsd, m.lsd_hf, m.lsd_lf, m.snr])
    return buf.getvalue()


METRIC_COLUMNS = (("lsd", "LSD", "low"), ("lsd_hf", "LSD-HF", "low"), ("lsd_lf", "LSD-LF", "low"),
                  ("snr", "SNR (dB)", "high"))


def best_values(rows: list[CompareRow]) -> dict[str, float]:
    """Per metric, the best mean among the contenders (every system but the input as given)."""
    best = {}
    for key, _label, better in METRIC_COLUMNS:
        values = [getattr(r.mean, key) for r in rows if r.system != "input" and math.isfinite(getattr(r.mean, key))]
        if values:
            best[key] = min(values) if better == "low" else max(values)
    return best


# ---------------------------------------------------------------------------------------------
# HTML

_CSS = """
:root { color-scheme: light; --fg: #1d1f23; --muted: #5d6470; --line: #d9dde3; --accent: #0b5cad; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       margin: 0 auto; max-width: 1480px; padding: 24px 28px 60px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 34px 0 10px; border-bottom: 1px solid var(--line); }
h3 { font-size: 17px; margin: 22px 0 8px; } p.meta, .muted { color: var(--muted); }
nav a { margin-right: 14px; color: var(--accent); }
.tables { display: flex; flex-wrap: wrap; gap: 18px 22px; }
table.summary { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 14px; }
table.summary caption { text-align: left; font-weight: 600; padding-bottom: 4px; }
table.summary th, table.summary td { padding: 3px 8px; border-bottom: 1px solid var(--line); text-align: right; }
table.summary th:first-child, table.summary td:first-child, table.summary td.kind { text-align: left; }
table.summary td.kind { color: var(--muted); font-size: 12px; }
tr.computed td:first-child { font-weight: 600; color: var(--accent); }
.clip { margin: 18px 0 26px; } .clip h4 { margin: 0 0 2px; font-size: 15px; }
.row { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 8px; }
figure.sys { margin: 0; width: 274px; border: 1px solid var(--line); border-radius: 6px; padding: 4px; }
figure.sys.truth { border-color: #2e8b57; } figure.sys.computed { border-color: var(--accent); }
figure.sys figcaption { font-size: 12.5px; min-height: 54px; }
figure.sys figcaption .name { font-weight: 600; } figure.sys figcaption .kind { color: var(--muted); font-size: 12px; }
figure.sys audio { width: 100%; height: 34px; margin: 4px 0; display: block; }
figure.sys img { display: block; }
.warnings li { color: #8a4b00; }
"""

# Optional: one player at a time. The page works the same without it.
_JS = """document.addEventListener('play', function (e) {
  document.querySelectorAll('audio').forEach(function (a) { if (a !== e.target) { a.pause(); } });
}, true);"""


def _fmt(x: float | None, digits: int = 3) -> str:
    return f"{x:.{digits}f}" if x is not None and math.isfinite(x) else "–"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _href(rel: str) -> str:
    return quote(rel, safe="/")


def render_html(*, title: str, source: str, rows: list[CompareRow], clips: list[ShownClip], n_clips: int,
                warnings: list[str], transcoded: list[str], notes: list[str]) -> str:
    """The page. Every number in it comes from ``rows`` (summary) and ``clips`` (per clip)."""
    from specsr import __version__

    groups = list(dict.fromkeys((r.set, r.ratio, r.sr_in) for r in rows))
    shown_groups = list(dict.fromkeys((c.set, c.ratio, c.sr_in) for c in clips))
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    h: list[str] = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">{source} by specsr {_e(__version__)} on {stamp}: {n_clips} clip'
        f'{"s" if n_clips != 1 else ""} scored, {len(clips)} shown below.</p>',
        '<nav><a href="#summary">Summary</a><a href="#how">How this was measured</a>'
        + ('<a href="#notes">Notes</a>' if warnings or transcoded else "")
        + "".join(f'<a href="#{_anchor(s, r)}">{_e(s)} · {_e(r)}</a>' for s, r, _ in shown_groups) + "</nav>",
        '<section id="summary">', "<h2>Summary</h2>",
    ]
    if rows:
        h.append('<p class="muted">Mean over the clips of each set and ratio; lower is better for the LSDs, '
                 "higher for SNR. Best of each column in bold (the input as given is not a contender).</p>")
        h.append('<div class="tables">')
        for set_name, ratio, sr_in in groups:
            h.extend(_summary_table(set_name, ratio, sr_in, [r for r in rows if (r.set, r.ratio) == (set_name, ratio)]))
        h.append("</div>")
    else:
        h.append('<p class="muted">No reference: nothing was scored. The players and spectrograms below are '
                 "for listening and looking only.</p>")
    h += ["</section>", '<section id="how">', "<h2>How this was measured</h2>", f"<p>{_how_measured(n_clips)}</p>"]
    h += [f"<p>{note}</p>" for note in notes]
    h.append("</section>")
    if warnings or transcoded:
        h += ['<section id="notes">', "<h2>Notes</h2>"]
        if warnings:
            h.append('<p>Skipped or incomplete:</p><ul class="warnings">')
            h += [f"<li>{_e(w)}</li>" for w in warnings]
            h.append("</ul>")
        if transcoded:
            h.append("<p>Transcoded for browsers (the scores are of the original files):</p><ul>")
            h += [f"<li>{_e(t)}</li>" for t in transcoded]
            h.append("</ul>")
        h.append("</section>")
    for set_name, ratio, sr_in in shown_groups:
        group_clips = [c for c in clips if (c.set, c.ratio) == (set_name, ratio)]
        n_all = max((r.n_clips for r in rows if (r.set, r.ratio) == (set_name, ratio)), default=len(group_clips))
        more = f", {len(group_clips)} of {n_all} clips shown" if n_all > len(group_clips) else ""
        h += [f'<section id="{_anchor(set_name, ratio)}">',
              f"<h2>{_e(set_name)} · {_e(ratio)} <span class=\"muted\">(input band-limited to "
              f"{sr_in / 2000:g} kHz{more})</span></h2>"]
        for clip in group_clips:
            h.extend(_clip_block(clip))
        h.append("</section>")
    h += [f"<script>{_JS}</script>", "</body>", "</html>", ""]
    return "\n".join(h)


def _anchor(set_name: str, ratio: str) -> str:
    return "set-" + _safe(f"{set_name}-{ratio}").replace(".", "-").replace("+", "plus")


def _summary_table(set_name: str, ratio: str, sr_in: int, rows: list[CompareRow]) -> list[str]:
    n = max(r.n_clips for r in rows)
    best = best_values(rows)
    out = ['<table class="summary">',
           f"<caption>{_e(set_name)} · {_e(ratio)} — sr_in {sr_in} Hz, {n} clip{'s' if n != 1 else ''}</caption>",
           "<thead><tr><th>system</th><th>kind</th>" + "".join(f"<th>{label}</th>" for _k, label, _b in METRIC_COLUMNS)
           + "</tr></thead>", "<tbody>"]
    for r in rows:
        label = _e(r.system) + ("" if r.n_clips == n else f" ({r.n_clips} clips)")
        cells = []
        for key, _label, _better in METRIC_COLUMNS:
            value = getattr(r.mean, key)
            text = _fmt(value, 2 if key == "snr" else 3)
            if r.system != "input" and key in best and math.isfinite(value) and abs(value - best[key]) < 1e-9:
                text = f"<b>{text}</b>"
            cells.append(f'<td data-metric="{key}" data-value="{value!r}">{text}</td>')
        out.append(f'<tr class="{_e(r.kind)}" data-set="{_e(r.set)}" data-ratio="{_e(r.ratio)}" '
                   f'data-system="{_e(r.system)}" data-clips="{r.n_clips}"><td>{label}</td>'
                   f'<td class="kind">{_e(r.kind)}</td>{"".join(cells)}</tr>')
    out += ["</tbody>", "</table>"]
    return out


def _clip_block(clip: ShownClip) -> list[str]:
    out = [f'<article class="clip" id="{_anchor(clip.set, clip.ratio)}-{_safe(clip.name)}">',
           f"<h4>{_e(clip.name)} <span class=\"muted\">· {clip.seconds:.2f} s</span></h4>",
           f'<p class="muted">Spectrograms of the scored signal (48 kHz, channel mean); one colour scale for '
           f"this clip, {clip.vmin_db:.0f} to {clip.vmax_db:.0f} dB re a full-scale sine; dashed line: "
           f"sr_in / 2 = {clip.sr_in / 2000:g} kHz, where LSD-HF starts.</p>", '<div class="row">']
    for e in clip.entries:
        if e.scores is not None:
            s = e.scores
            metrics = f"LSD {_fmt(s.lsd)} · HF {_fmt(s.lsd_hf)} · LF {_fmt(s.lsd_lf)}<br>SNR {_fmt(s.snr, 1)} dB"
        elif e.kind == "truth":
            metrics = "reference"
        else:
            metrics = "not scored"
        alt = f"spectrogram of {e.name}, {clip.name}"
        out.append(
            f'<figure class="sys {_e(e.kind)}" data-system="{_e(e.name)}">'
            f'<figcaption><span class="name">{_e(e.name)}</span> <span class="kind">{_e(e.kind)}</span><br>'
            f"{metrics}</figcaption>"
            f'<audio controls preload="metadata" src="{_e(_href(e.audio))}" title="{_e(e.note)}"></audio>'
            f'<img src="{_e(_href(e.image))}" alt="{_e(alt)}" width="{THUMB_WIDTH_PX}" '
            f'height="{THUMB_HEIGHT_PX}"></figure>')
    out += ["</div>", "</article>"]
    return out


def _how_measured(n_clips: int) -> str:
    return (
        "LSD, LSD-HF, LSD-LF and SNR exactly as NU-Wave 2 and AP-BWE report them: every file is scored on its "
        "channel mean at 48 kHz, trimmed to the shorter of estimate and truth, at its own level (no "
        "renormalisation); STFT with a 2048-point Hann window and hop 512; L = log10(max(|X|², 1e-8)); LSD is the "
        "mean over frames of the RMS over bins of L<sub>est</sub> − L<sub>truth</sub>; LSD-HF takes the bins at "
        "and above sr_in / 2, LSD-LF those below; SNR = 20·log10(‖truth‖ / ‖truth − estimate‖). Tables average "
        f"clips ({n_clips} in all). Inputs are taken as given in the folder (on published demo clips, each paper "
        "band-limited its own inputs); the baselines and any specsr model are computed from those same inputs. "
        "Baselines: <i>input</i> is the input as given; <i>sinc</i> interpolates it from sr_in; "
        "<i>noise-fill</i> fills the missing band with noise at the level of the input's top 2 kHz, falling "
        "3 dB per octave — no learning at all, so any system worth listening to should beat it. Systems of kind "
        "<i>published</i> are the files found in the folder (on demo clips, what each paper released), scored "
        "as they are. The players play what was scored."
    )
