"""Spectrogram figures: input, output and (optionally) the truth side by side, on one dB scale.

matplotlib is imported inside the functions only, so importing specsr stays fast, and only its
object API is used (``Figure`` drawn on an Agg canvas, never ``pyplot`` nor ``matplotlib.use``): a
notebook's backend and figures are left alone. Each panel shows the channel mean of a file at its
own rate, with the same frequency resolution (≈ 23 Hz per bin, the bin width of the metric's STFT,
:data:`specsr.metrics.METRIC_STFT`) and the same colour scale, so that what the model added can be
read against the input's band and the truth. The cutoff where the prediction takes over is drawn as
a dashed line. Spectrograms are computed by the project's one STFT, :func:`specsr.spectral.stft`.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from specsr.audio import read_audio
from specsr.cutoff import detect_cutoff
from specsr.errors import SpecsrError
from specsr.utils import atomic_write, check_output_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FREQ_SCALES = ("linear", "log")
DYNAMIC_RANGE_DB = 100.0
MAX_COLUMNS = 1600  # frames drawn per panel; long files use a larger hop


@dataclass(frozen=True)
class Panel:
    """One spectrogram: ``level_db`` ``[F, N]`` over ``freqs_hz`` ``[F]`` and ``times_s`` ``[N]``."""

    title: str
    level_db: np.ndarray
    freqs_hz: np.ndarray
    times_s: np.ndarray
    sample_rate: int


@dataclass(frozen=True)
class PlotSummary:
    """What :func:`plot_files` drew."""

    out_path: Path
    cutoff_hz: float
    cutoff_detected: bool
    scores: dict[str, dict[str, float]]
    sr_in: int | None = None  # LSD-HF starts at sr_in / 2 (with a reference)


def spectrogram_db(wav: np.ndarray, sample_rate: int, *, max_columns: int = MAX_COLUMNS,
                   channel: int | None = None) -> Panel:
    """Power spectrogram in dB (0 dB = a full-scale sine) of the channel mean of ``wav`` ``[C, T]`` or ``[T]``
    (or of one ``channel``)."""
    import torch

    from specsr.config import STFTConfig
    from specsr.metrics import METRIC_STFT
    from specsr.spectral import stft, window

    x = np.asarray(wav, dtype=np.float32)
    if x.ndim == 2:
        mono = x.mean(axis=0) if channel is None else x[channel]
    else:
        mono = x
    sample_rate = int(sample_rate)
    bin_hz = METRIC_STFT.sample_rate / METRIC_STFT.n_fft
    n_fft = max(64, 2 * int(round(sample_rate / bin_hz / 2)))  # the same bin width at every rate
    hop = max(n_fft // 4, int(math.ceil(len(mono) / max_columns)))
    cfg = STFTConfig(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop)  # Hann, centred
    spec = stft(torch.from_numpy(np.ascontiguousarray(mono)), cfg)  # zero-pads very short signals itself
    # a full-scale sine has |X| = sum(win) / 2 at its bin
    level = 20 * torch.log10(spec.abs().clamp_min(1e-10) / (window(cfg).sum() / 2))
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    times = np.arange(spec.shape[-1]) * hop / sample_rate
    return Panel("", level.numpy(), freqs, times, sample_rate)


def plot_panels(panels: list[Panel], out_path: str | os.PathLike, *, freq_scale: str = "linear",
                cutoff_hz: float | None = None, cutoff_label: str = "cutoff", suptitle: str = "",
                force: bool = False, n_rows: int = 1) -> Path:
    """Draw ``panels`` side by side (in ``n_rows`` rows, filled row by row) on one colour scale and write a
    PNG atomically."""
    if freq_scale not in FREQ_SCALES:
        raise SpecsrError(f"--freq-scale must be linear or log, got {freq_scale!r}")
    out = _check_output(out_path, force)
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    vmin, vmax = colour_limits(panels)
    top_hz = max(p.sample_rate / 2 for p in panels)
    cmap = colormaps["magma"]
    n_cols = len(panels) // n_rows
    fig = Figure(figsize=(4.6 * n_cols + 1.0, 4.4 * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, sharey=True, sharex=True, squeeze=False)
    mesh = None
    for ax, panel in zip(axes.ravel(), panels, strict=True):
        ax.set_facecolor(cmap(0.0))  # above a file's own Nyquist: nothing, drawn as the floor
        t = panel.times_s
        t_edge = np.append(t, t[-1] + (t[1] - t[0] if len(t) > 1 else 0.01))
        f = panel.freqs_hz
        f_edge = np.append(f - (f[1] - f[0]) / 2, f[-1] + (f[1] - f[0]) / 2).clip(min=0)
        mesh = ax.pcolormesh(t_edge, f_edge, panel.level_db, vmin=vmin, vmax=vmax, cmap=cmap, shading="flat",
                             rasterized=True)
        if cutoff_hz is not None:
            ax.axhline(cutoff_hz, color="#7fdbff", linestyle="--", linewidth=1.0, alpha=0.9)
        ax.set_title(panel.title, fontsize=9)
        ax.set_xlim(t_edge[0], t_edge[-1])
    for ax in axes[-1]:
        ax.set_xlabel("time (s)")
    ax0 = axes[0][0]
    if freq_scale == "log":
        ax0.set_yscale("log")
        ax0.set_ylim(50, top_hz)
    else:
        ax0.set_ylim(0, top_hz)
    ax0.yaxis.set_major_formatter(FuncFormatter(lambda hz, _pos: f"{hz / 1000:g}"))
    for row in axes:
        row[0].set_ylabel("frequency (kHz)")
    if cutoff_hz is not None:
        ax0.text(0.02, cutoff_hz, f" {cutoff_label}", color="#7fdbff", fontsize=8, va="bottom",
                 transform=ax0.get_yaxis_transform())
    if mesh is not None:  # always: there is at least one panel
        cbar = fig.colorbar(mesh, ax=axes.ravel().tolist(), fraction=0.03, pad=0.01)
        cbar.set_label("level (dB re full-scale sine)")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    _save_figure(fig, out, dpi=110)
    return out


def colour_limits(panels: list[Panel]) -> tuple[float, float]:
    """One colour scale for ``panels``: the loudest bin rounded up to 10 dB, :data:`DYNAMIC_RANGE_DB` below it
    (the lowest two bins left out: a DC offset would set the scale)."""
    vmax = max(float(np.max(p.level_db[2:] if len(p.level_db) > 2 else p.level_db)) for p in panels)
    vmax = math.ceil(vmax / 10) * 10
    return vmax - DYNAMIC_RANGE_DB, vmax


def plot_thumbnail(panel: Panel, out_path: str | os.PathLike, *, vmin_db: float, vmax_db: float,
                   cutoff_hz: float | None = None, width_px: int = 320, height_px: int = 200,
                   force: bool = False) -> Path:
    """A small spectrogram PNG (kHz axis, seconds axis, no colour bar) on a given colour scale.

    For pages that put many panels side by side: every thumbnail of a comparison is drawn with the
    same ``vmin_db``/``vmax_db`` and the same size. ``cutoff_hz`` is drawn as a dashed line.
    """
    out = _check_output(out_path, force)
    from matplotlib.figure import Figure

    dpi = 100
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    ax = fig.add_axes((0.14, 0.19, 0.84, 0.77))
    f, t = panel.freqs_hz, panel.times_s
    t_end = t[-1] + (t[1] - t[0] if len(t) > 1 else 0.01)
    df = (f[1] - f[0]) / 2 if len(f) > 1 else 0.0
    ax.imshow(panel.level_db, origin="lower", aspect="auto", cmap="magma", vmin=vmin_db, vmax=vmax_db,
              extent=(t[0], t_end, (f[0] - df) / 1000, (f[-1] + df) / 1000), interpolation="nearest")
    if cutoff_hz is not None:
        ax.axhline(cutoff_hz / 1000, color="#7fdbff", linestyle="--", linewidth=0.9, alpha=0.9)
    ax.set_ylim(0, panel.sample_rate / 2000)
    ax.tick_params(labelsize=7, length=2, pad=1)
    ax.set_ylabel("kHz", fontsize=7, labelpad=1)
    ax.set_xlabel("s", fontsize=7, labelpad=0)
    _save_figure(fig, out, dpi=dpi, palette=True)
    return out


def _save_figure(fig: Figure, out: Path, *, dpi: int, palette: bool = False) -> None:
    """Write ``fig`` as PNG atomically (:func:`specsr.utils.atomic_write`), drawn on its own Agg canvas.

    The figure belongs to no pyplot figure manager, so there is nothing to close: it is freed with
    its last reference. ``palette``: store 256 colours (median cut, no dithering) instead of RGBA —
    about 3× smaller for spectrogram thumbnails and indistinguishable by eye (one colour map plus
    axis text).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # attaches itself to fig: savefig draws with Agg, no global backend involved

    def write(fh: IO[bytes]) -> None:
        if not palette:
            fig.savefig(fh, dpi=dpi, format="png")
            return
        from PIL import Image  # Pillow: a dependency of matplotlib

        buf = io.BytesIO()
        fig.savefig(buf, dpi=dpi, format="png")
        buf.seek(0)
        image = Image.open(buf).convert("RGB")
        image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(fh, format="PNG")

    atomic_write(out, write, binary=True)


def _check_output(out_path: str | os.PathLike, force: bool) -> Path:
    out = Path(out_path)
    if out.suffix.lower() != ".png":
        raise SpecsrError(f"{out}: the figure is written as PNG; name it *.png")
    return check_output_path(out, overwrite=force)


def plot_files(input_path: str | os.PathLike, upsampled_path: str | os.PathLike | None = None, *,
               reference_path: str | os.PathLike | None = None, out_path: str | os.PathLike,
               freq_scale: str = "linear", sr_in: int | None = None, force: bool = False,
               channels: bool = False) -> PlotSummary:
    """Spectrograms of the input, the upsampled output and the reference (each optional but the input).

    ``channels``: one row per channel (a file with fewer channels, e.g. a mono reference, repeats its
    last one) instead of one row of channel means. Metrics are always on channel means.

    The dashed line is the input's detected cutoff. With a reference, LSD / LSD-HF / LSD-LF of the
    input (resampled) and of the output against it are in the titles, computed by
    :func:`specsr.metrics.score` on channel means at 48 kHz; the high band starts at ``sr_in / 2``
    (:func:`specsr.metrics.split_rate`: ``sr_in`` if given, else the input file's rate).
    """
    out = _check_output(out_path, force)
    wav_in, sr_file = read_audio(input_path)
    est = detect_cutoff(wav_in, sr_file)
    cutoff_hz = est.cutoff_hz
    files: list[tuple[str, Path]] = [("input", Path(input_path))]
    if upsampled_path is not None:
        files.append(("output", Path(upsampled_path)))
    if reference_path is not None:
        files.append(("reference", Path(reference_path)))
    loaded = {"input": (wav_in, sr_file)}
    for role, path in files[1:]:
        loaded[role] = read_audio(path)

    scores: dict[str, dict[str, float]] = {}
    if reference_path is not None:
        from specsr.metrics import split_rate

        sr_in = split_rate(sr_in, sr_file, str(input_path))
        ref = _metric_signal(*loaded["reference"])
        for role in ("input", "output"):
            if role in loaded:
                scores[role] = _score(ref, _metric_signal(*loaded[role]), sr_in, loaded["reference"][1])

    n_rows = max(w.shape[0] for w, _sr in loaded.values()) if channels else 1
    panels = []
    for row in range(n_rows):
        for role, path in files:
            wav, sr = loaded[role]
            channel = min(row, wav.shape[0] - 1) if channels else None
            panel = spectrogram_db(wav, sr, channel=channel)
            title = f"{role}: {path.name}\n{sr / 1000:g} kHz, {wav.shape[0]} ch, {wav.shape[1] / sr:.2f} s"
            if channel is not None:
                title += f", channel {channel + 1}"
            if role in scores and row == 0:
                s = scores[role]
                title += f"\nLSD {s['lsd']:.2f} · LSD-HF {s['lsd_hf']:.2f} · LSD-LF {s['lsd_lf']:.2f}"
                if channels:
                    title += " (channel mean)"
            panels.append(Panel(title, panel.level_db, panel.freqs_hz, panel.times_s, sr))
    if est.silent:
        label, line = "silent input", None
    elif est.band_limited:
        label, line = f"cutoff {cutoff_hz / 1000:.2f} kHz (detected)", cutoff_hz
    else:
        label, line = f"full band to {cutoff_hz / 1000:.2f} kHz", cutoff_hz
    suptitle = ""
    if scores:
        suptitle = f"metrics vs reference, high band above {sr_in / 2000:.2f} kHz (sr_in/2)"  # type: ignore[operator]
        if est.band_limited:
            suptitle += f"; input's detected cutoff {cutoff_hz / 1000:.2f} kHz"
    plot_panels(panels, out, freq_scale=freq_scale, cutoff_hz=line, cutoff_label=label, suptitle=suptitle,
                force=force, n_rows=n_rows)
    return PlotSummary(out, float(cutoff_hz), bool(est.band_limited), scores, sr_in)


def plot_dataset_item(dataset_dir: str | os.PathLike, *, out_path: str | os.PathLike, item: str = "0",
                      split: str = "train", freq_scale: str = "linear", force: bool = False,
                      seed: int = 0) -> PlotSummary:
    """The low/high-resolution images of one dataset item as the model sees them (its STFT's log-power):
    a spectrogram dataset's stored pair, or, for an audio dataset, a pair drawn on the fly from the segment
    (the degradation from ``seed``, as a validation pair is). ``item``: an index in ``split`` or an item id."""
    from specsr.config import STFT_PRESETS, DegradeConfig, TaskConfig
    from specsr.dataset.onthefly import PairMaker, validation_pairs
    from specsr.dataset.reader import SpectrogramPairs, load_dataset_info
    from specsr.dataset.segments import AudioSegments
    from specsr.spectral import window

    out = _check_output(out_path, force)
    info = load_dataset_info(dataset_dir)
    reader: SpectrogramPairs | AudioSegments
    if info.kind == "spectrograms":
        reader = SpectrogramPairs(dataset_dir, split)
    else:
        reader = AudioSegments(dataset_dir, split)
    ids = [it["id"] for it in reader.items]
    index = ids.index(item) if item in ids else int(item) if item.lstrip("-").isdigit() else -1
    if not 0 <= index < len(ids):
        raise SpecsrError(f"--item {item}: not an index below {len(ids)} nor an item id of the {split} split "
                          f"(e.g. {ids[0]})")
    # a spectrogram dataset's own STFT; for audio, the preset at its rate (what training would use)
    stft_cfg = info.stft or next((c for c in STFT_PRESETS.values() if c.sample_rate == info.sr_out), None)
    if stft_cfg is None:
        raise SpecsrError(f"{dataset_dir}: no STFT for the dataset's rate {info.sr_out} Hz")
    if isinstance(reader, SpectrogramPairs):
        pair = reader[index]
        meta = reader.items[index]
        what = f"stored pair, {meta['filter']} through {meta['sr_in'] / 1000:g} kHz"
    else:
        maker = PairMaker(stft_cfg, TaskConfig(), DegradeConfig(), crop_frames=1, gain_db_range=(0.0, 0.0), seed=seed)
        drawn = validation_pairs(reader, maker, 1, indices=[index])[0]
        pair = {k: v for k, v in drawn.items() if k != "draw"}
        what = f"drawn on the fly (seed {seed}), {drawn['draw'].filter} at {drawn['draw'].cutoff_hz / 1000:.2f} kHz"
    offset_db = 20 * math.log10(float(window(stft_cfg).sum()) / 2)  # 0 dB = a full-scale sine, as plot_files
    freqs = np.arange(stft_cfg.n_bins) * stft_cfg.sample_rate / stft_cfg.n_fft
    panels = []
    for key, role in (("input", "low resolution (model input)"), ("target", "full band (target)")):
        logp = pair[key].numpy()
        times = np.arange(logp.shape[-1]) * stft_cfg.hop_length / stft_cfg.sample_rate
        panels.append(Panel(f"{role}\n{ids[index]}", 10 * logp - offset_db, freqs, times, stft_cfg.sample_rate))
    cutoff = float(pair["cutoff_hz"])
    plot_panels(panels, out, freq_scale=freq_scale, cutoff_hz=cutoff, cutoff_label=f"cutoff {cutoff / 1000:.2f} kHz",
                suptitle=f"{Path(dataset_dir).name}: {split} item {index} ({what})", force=force)
    return PlotSummary(out, cutoff, True, {}, int(pair["sr_in"]))


def _metric_signal(wav: np.ndarray, sr: int) -> np.ndarray:
    from specsr.metrics import to_metric_signal

    return to_metric_signal(wav, sr)


def _score(ref: np.ndarray, est: np.ndarray, sr_in: int, ref_sr: int) -> dict[str, float]:
    from specsr.metrics import score_signals

    return score_signals(ref, est, sr_in, ref_sr)[0].as_dict()
