"""``specsr evaluate``: score files against references, or compare systems on a demo-clip folder."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from tqdm import tqdm

from specsr.cli import options as opt
from specsr.cli.app import command, warn
from specsr.errors import SpecsrError
from specsr.utils import atomic_write_text, check_output_path


@command("evaluate")
def evaluate_cmd(
    ref: Path | None = typer.Argument(None, help="Reference file or folder (the full-band truth)."),
    est: Path | None = typer.Argument(None, help="Estimate file or folder (matched to REF by relative path)."),
    sr_in: int | None = typer.Option(None, "--sr-in", help="Input rate in Hz: bins above sr_in/2 are the high band."),
    compare_dir: Path | None = typer.Option(None, "--compare", help="Folder laid out as <set>/<ratio>/<clip>/."),
    sets: str | None = typer.Option(None, "--sets", help="With --compare: comma-separated sets to include."),
    model: opt.Model = None,
    wide_model: opt.WideModel = None,
    phase: opt.Phase = None,
    n_iter: opt.NIter = None,
    quality: opt.Quality = None,
    device: opt.Device = "auto",
    baselines: bool = typer.Option(True, "--baselines/--no-baselines", help="With --compare: model-free baselines."),
    csv_path: Path | None = typer.Option(None, "--csv", help="Write per-file (or per-clip) metrics as CSV."),
    markdown: Path | None = typer.Option(None, "--markdown", help="With --compare: also write the tables here."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite existing --csv / --markdown files."),
    quiet: opt.Quiet = False,
) -> None:
    """LSD / LSD-HF / LSD-LF / SNR, exactly as NU-Wave 2 and AP-BWE report them (48 kHz, 2048/512).

    With --compare, --model adds a specsr model's output (--phase, --n-iter, --device as for upsample).
    """
    from specsr import evaluate as ev
    from specsr.metrics import METRIC_COLUMNS, Scores

    def bar(items: list, unit: str) -> tqdm:
        return tqdm(items, unit=unit, disable=quiet, leave=False, dynamic_ncols=True)

    if markdown is not None and compare_dir is None:
        raise SpecsrError("--markdown goes with --compare (the tables it writes); for two files or folders use --csv")
    for out in (csv_path, markdown):  # before any scoring, which can take minutes
        if out is not None:
            check_output_path(out, overwrite=force)
    if compare_dir is not None:
        if ref is not None or est is not None:
            raise SpecsrError("--compare takes a folder; do not also give REF and EST")
        extra = {}
        if wide_model is not None and model is None:
            raise SpecsrError("--wide-model goes with --model (the model whose high cutoffs it takes)")
        if model is not None:
            from specsr.pipeline import load_model

            settings = opt.inference_settings(phase=phase, n_iter=n_iter, quality=quality)
            upsampler = load_model(model, device=device, settings=settings, wide_model=wide_model)
            extra = {"specsr": ev.model_system(upsampler)}
        result = ev.compare(compare_dir, sets=sets.split(",") if sets else None, baselines=baselines,
                            extra_systems=extra, progress=lambda xs: bar(xs, "clip"))
        for w in result.warnings:
            warn(w)
        table = ev.format_markdown(result)
        typer.echo(table)
        if markdown is not None:
            atomic_write_text(markdown, table + "\n")
        if csv_path is not None:
            atomic_write_text(csv_path, ev.per_clip_csv(result.per_clip))
        return

    if ref is None or est is None:
        raise SpecsrError("give REF and EST (files or folders), or --compare DIR")
    if sr_in is None:
        raise SpecsrError("--sr-in is required: the input rate that splits LSD-LF from LSD-HF (e.g. 16000)")
    report = ev.evaluate_paths(ref, est, sr_in, progress=lambda xs: bar(xs, "file"))
    for w in report.warnings:
        warn(w)
    width = max([len(r.name) for r in report.results] + [4])
    typer.echo(f"{'file':<{width}}  " + " ".join(f"{label:>9}" for _k, label, _d, _b in METRIC_COLUMNS))

    def cells(s: Scores) -> str:
        return " ".join(_n(getattr(s, key), 9, digits) for key, _label, digits, _better in METRIC_COLUMNS)

    for r in report.results:
        typer.echo(f"{r.name:<{width}}  {cells(r.scores)}")
    typer.echo(f"{'mean':<{width}}  {cells(report.mean)}"
               f"   ({len(report.results)} file{'s' if len(report.results) != 1 else ''}, sr_in {sr_in} Hz)")
    if csv_path is not None:
        ev.write_csv(report, csv_path)


def _n(x: float, width: int = 7, digits: int = 3) -> str:
    return f"{x:>{width}.{digits}f}" if math.isfinite(x) else f"{'–':>{width}}"

