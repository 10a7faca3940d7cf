"""``specsr report``: a listening page (HTML + audio + spectrograms) for a comparison folder or one pair."""

from __future__ import annotations

from pathlib import Path

import typer
from tqdm import tqdm

from specsr.cli import options as opt
from specsr.cli.app import command, warn
from specsr.errors import SpecsrError


@command("report")
def report_cmd(
    root: Path | None = typer.Argument(None, metavar="DIR", help="Folder laid out as <set>/<ratio>/<clip>/ "
                                       "with truth.*, input.* and one file per system (like shared/data/eval)."),
    report_dir: Path = typer.Option(Path("specsr-report"), "--report-dir", "-o", help="Folder to write (index.html, "
                                    "audio, PNGs)."),
    model: opt.Model = None,
    wide_model: opt.WideModel = None,
    sets: str | None = typer.Option(None, "--sets", help="Comma-separated sets of DIR to include (default: all)."),
    max_clips: int | None = typer.Option(None, "--max-clips", help="Clips shown per set and ratio (the summary "
                                         "still covers all)."),
    input_path: Path | None = typer.Option(None, "--input", help="Single-pair mode: the low-resolution input."),
    output_path: Path | None = typer.Option(None, "--output", help="Single-pair mode: its upsampled output."),
    reference: Path | None = typer.Option(None, "--reference", help="Single-pair mode: the full-band truth (adds "
                                          "metrics)."),
    sr_in: int | None = typer.Option(None, "--sr-in", help="Single-pair mode: LSD-HF starts at sr_in/2 "
                                     "(default: the input file's rate)."),
    phase: opt.Phase = None,
    n_iter: opt.NIter = None,
    device: opt.Device = "auto",
    baselines: bool = typer.Option(True, "--baselines/--no-baselines", help="Include the model-free baselines "
                                   "sinc and noise fill (the input is always shown)."),
    title: str = typer.Option("", "--title", help="Page title (default: 'specsr report: <DIR or input name>')."),
    force: bool = typer.Option(False, "--force", "-f", help="Replace REPORT_DIR if it is a previous report."),
    quiet: opt.Quiet = False,
) -> None:
    """A demo page like the papers': summary tables, then per clip an audio player and a spectrogram per system.

    \b
    specsr report ../shared/data/eval -o report --model bundled
    specsr report --input in.wav --output out.wav --reference truth.wav -o report
    """
    from specsr import report as rp

    opt.inference_settings(phase=phase, n_iter=n_iter)  # checked before anything else
    pair_options = [input_path, output_path, reference, sr_in]
    if root is not None:
        if any(o is not None for o in pair_options):
            raise SpecsrError("give DIR, or --input/--output/--reference for one pair, not both")
        summary = rp.build_report(root, report_dir, sets=sets.split(",") if sets else None, max_clips=max_clips,
                                  baselines=baselines, model=model, wide_model=wide_model, phase=phase, n_iter=n_iter,
                                  device=device, title=title, force=force,
                                  progress=lambda xs: tqdm(xs, unit="clip", disable=quiet, leave=False,
                                                           dynamic_ncols=True))
    elif input_path is not None:
        if sets is not None or max_clips is not None:
            raise SpecsrError("--sets and --max-clips apply to DIR, not to a single pair")
        summary = rp.build_pair_report(input_path, report_dir, output_path=output_path, reference_path=reference,
                                       sr_in=sr_in, baselines=baselines, model=model, wide_model=wide_model,
                                       phase=phase, n_iter=n_iter, device=device, title=title, force=force)
    else:
        raise SpecsrError("give DIR (a comparison folder) or --input with --output and/or --model")
    for w in summary.warnings:
        warn(w)
    size_mb = sum(p.stat().st_size for p in summary.out_dir.rglob("*") if p.is_file()) / 1e6
    typer.echo(f"wrote {summary.index} ({summary.n_clips} clip{'s' if summary.n_clips != 1 else ''} scored, "
               f"{summary.n_shown} shown, {size_mb:.1f} MB"
               + (f", {len(summary.transcoded)} file(s) transcoded for browsers" if summary.transcoded else "") + ")")
