"""The report's page: HTML, CSS and JavaScript from numbers already computed; no files, no scoring.

:func:`render_html` turns the summary rows and the clips shown (:class:`ShownClip`) into
``index.html``; everything here is string formatting and escaping. The "how measured" prose takes
the metric's numbers from :data:`specsr.metrics.METRIC_STFT`, so it cannot drift from the metric.
"""

from __future__ import annotations

import functools
import html
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote

from specsr.evaluate import Clip, CompareRow
from specsr.metrics import METRIC_COLUMNS, METRIC_SR, METRIC_STFT, Scores, closeness

THUMB_WIDTH_PX, THUMB_HEIGHT_PX = 264, 170  # five systems side by side on a 1480 px page
_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")


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
    """One clip on the page: its entries (truth last) and the colour scale they share."""

    clip: Clip
    entries: list[Entry]
    vmin_db: float
    vmax_db: float
    seconds: float


def safe_name(name: str) -> str:
    """A file-name-safe version of a set, ratio, clip or system name (also used in anchors)."""
    return _SAFE.sub("_", name).strip(".") or "_"


def source_line(path: object) -> str:
    """The page's "Generated from …" (HTML)."""
    return f"Generated from <code>{html.escape(str(path))}</code>"


def model_note(name: str, n_params: int, sr_out: int, phase: str, n_iter: int, device_type: str,
               wide_model: str = "") -> str:
    """The "how measured" line saying what the system ``specsr`` is (HTML); ``wide_model``: the partner that takes
    the cutoffs above the model's trained range, if it has one."""
    return (f"<i>specsr</i> is the model <code>{html.escape(name)}</code> ({n_params:,} "
            f"parameters, {sr_out} Hz out"
            + (f"; cutoffs above its trained range: <code>{html.escape(wide_model)}</code>" if wide_model else "")
            + f") run by this report on each input as given, phase reconstruction <code>{html.escape(phase)}</code>"
            + (f" ({n_iter} iterations)" if phase != "lowres" else "") + f", on {device_type}.")


def best_values(rows: list[CompareRow]) -> dict[str, float]:
    """Per metric, the best mean among the contenders (every system but the input as given)."""
    best = {}
    for key, _label, _digits, better in METRIC_COLUMNS:
        values = [getattr(r.mean, key) for r in rows if r.system != "input" and math.isfinite(getattr(r.mean, key))]
        if values:
            best[key] = min(values, key=functools.partial(closeness, better=better))
    return best


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
    shown_groups = list(dict.fromkeys((s.clip.set, s.clip.ratio, s.clip.sr_in) for s in clips))
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
        group_clips = [s for s in clips if (s.clip.set, s.clip.ratio) == (set_name, ratio)]
        n_all = max((r.n_clips for r in rows if (r.set, r.ratio) == (set_name, ratio)), default=len(group_clips))
        more = f", {len(group_clips)} of {n_all} clips shown" if n_all > len(group_clips) else ""
        h += [f'<section id="{_anchor(set_name, ratio)}">',
              f"<h2>{_e(set_name)} · {_e(ratio)} <span class=\"muted\">(input band-limited to "
              f"{sr_in / 2000:g} kHz{more})</span></h2>"]
        for shown in group_clips:
            h.extend(_clip_block(shown))
        h.append("</section>")
    h += [f"<script>{_JS}</script>", "</body>", "</html>", ""]
    return "\n".join(h)


def _anchor(set_name: str, ratio: str) -> str:
    return "set-" + safe_name(f"{set_name}-{ratio}").replace(".", "-").replace("+", "plus")


def _summary_table(set_name: str, ratio: str, sr_in: int, rows: list[CompareRow]) -> list[str]:
    n = max(r.n_clips for r in rows)
    best = best_values(rows)
    out = ['<table class="summary">',
           f"<caption>{_e(set_name)} · {_e(ratio)} — sr_in {sr_in} Hz, {n} clip{'s' if n != 1 else ''}</caption>",
           "<thead><tr><th>system</th><th>kind</th>" + "".join(f"<th>{label}</th>" for _k, label, _d, _b in
                                                               METRIC_COLUMNS)
           + "</tr></thead>", "<tbody>"]
    for r in rows:
        label = _e(r.system) + ("" if r.n_clips == n else f" ({r.n_clips} clips)")
        cells = []
        for key, _label, digits, _better in METRIC_COLUMNS:
            value = getattr(r.mean, key)
            text = _fmt(value, digits)
            if r.system != "input" and key in best and math.isfinite(value) and abs(value - best[key]) < 1e-9:
                text = f"<b>{text}</b>"
            cells.append(f'<td data-metric="{key}" data-value="{value!r}">{text}</td>')
        out.append(f'<tr class="{_e(r.kind)}" data-set="{_e(r.set)}" data-ratio="{_e(r.ratio)}" '
                   f'data-system="{_e(r.system)}" data-clips="{r.n_clips}"><td>{label}</td>'
                   f'<td class="kind">{_e(r.kind)}</td>{"".join(cells)}</tr>')
    out += ["</tbody>", "</table>"]
    return out


def _clip_block(shown: ShownClip) -> list[str]:
    clip = shown.clip
    out = [f'<article class="clip" id="{_anchor(clip.set, clip.ratio)}-{safe_name(clip.name)}">',
           f"<h4>{_e(clip.name)} <span class=\"muted\">· {shown.seconds:.2f} s</span></h4>",
           f'<p class="muted">Spectrograms of the scored signal ({METRIC_SR / 1000:g} kHz, channel mean); one '
           f"colour scale for this clip, {shown.vmin_db:.0f} to {shown.vmax_db:.0f} dB re a full-scale sine; "
           f"dashed line: sr_in / 2 = {clip.sr_in / 2000:g} kHz, where LSD-HF starts.</p>", '<div class="row">']
    for e in shown.entries:
        if e.scores is not None:
            s = e.scores
            metrics = (f"LSD {_fmt(s.lsd)} · HF {_fmt(s.lsd_hf)} · LF {_fmt(s.lsd_lf)}<br>SNR {_fmt(s.snr, 1)} dB · "
                       f"bias {_fmt(s.band_bias_db, 1)} dB · r {_fmt(s.envelope_r, 2)} · texture {_fmt(s.texture, 2)}")
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
    m = METRIC_STFT
    return (
        "LSD, LSD-HF, LSD-LF and SNR exactly as NU-Wave 2 and AP-BWE report them: every file is scored on its "
        f"channel mean at {METRIC_SR / 1000:g} kHz, trimmed to the shorter of estimate and truth, at its own level "
        f"(no renormalisation); STFT with a {m.n_fft}-point {m.window.capitalize()} window and hop {m.hop_length}; "
        "L = log10(max(|X|², 1e-8)); LSD is the "
        "mean over frames of the RMS over bins of L<sub>est</sub> − L<sub>truth</sub>; LSD-HF takes the bins at "
        "and above sr_in / 2, LSD-LF those below; SNR = 20·log10(‖truth‖ / ‖truth − estimate‖). Tables average "
        f"clips ({n_clips} in all). Inputs are taken as given in the folder (on published demo clips, each paper "
        "band-limited its own inputs); the baselines and any specsr model are computed from those same inputs. "
        "Baselines: <i>input</i> is the input as given; <i>sinc</i> interpolates it from sr_in; "
        "<i>noise-fill</i> fills the missing band with noise at the level of the input's top 2 kHz, falling "
        "3 dB per octave — no learning at all, so any system worth listening to should beat it. Systems of kind "
        "<i>published</i> are the files found in the folder (on demo clips, what each paper released), scored "
        "as they are; a file named on the command line (single-pair mode) is of kind <i>given</i>. The players play "
        "what was scored."
    )
