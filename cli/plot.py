"""``specsr plot``: spectrograms of an input, its upsampled output and the truth, side by side; or the
low/high-resolution images of a dataset item."""

from __future__ import annotations

from pathlib import Path

import typer

from specsr.cli.app import command


@command("plot")
def plot_cmd(
    input_path: Path = typer.Argument(..., metavar="INPUT", help="The low-resolution input file (or a dataset "
                                      "folder: the images of one item)."),
    upsampled: Path | None = typer.Argument(None, metavar="UPSAMPLED", help="Its upsampled output."),
    reference: Path | None = typer.Option(None, "--reference", "-r", help="The full-band truth: adds LSD "
                                          "to the titles."),
    output: Path = typer.Option(..., "--output", "-o", help="Figure to write (.png)."),
    freq_scale: str = typer.Option("linear", "--freq-scale", help="Frequency axis: linear|log."),
    sr_in: int | None = typer.Option(None, "--sr-in", help="With --reference: LSD-HF starts at sr_in/2 "
                                     "(default: the input file's rate)."),
    channels: bool = typer.Option(False, "--channels", help="One row per channel instead of the channel mean."),
    item: str | None = typer.Option(None, "--item", help="A dataset: the item to show (index or id; default 0)."),
    split: str = typer.Option("train", "--split", help="A dataset: train or val."),
    seed: int = typer.Option(0, "--seed", help="An audio dataset: seed of the degradation drawn for the item."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite an existing figure."),
) -> None:
    """Spectrograms on one dB scale, frequency in kHz, the detected cutoff dashed."""
    from specsr.errors import SpecsrError
    from specsr.plotting import plot_dataset_item, plot_files

    if input_path.is_dir():
        if upsampled is not None or reference is not None:
            raise SpecsrError(f"{input_path} is a dataset folder: it takes --item, not UPSAMPLED or --reference")
        done = plot_dataset_item(input_path, out_path=output, item=item or "0", split=split, freq_scale=freq_scale,
                                 force=force, seed=seed)
        typer.echo(f"wrote {done.out_path}; cutoff {done.cutoff_hz / 1000:.2f} kHz")
        return
    if item is not None:
        raise SpecsrError("--item is for a dataset folder; INPUT is a file")

    summary = plot_files(input_path, upsampled, reference_path=reference, out_path=output, freq_scale=freq_scale,
                         sr_in=sr_in, force=force, channels=channels)
    line = f"wrote {summary.out_path}"
    for role, s in summary.scores.items():
        line += f"; {role}: LSD {s['lsd']:.3f}, LSD-HF {s['lsd_hf']:.3f}"
    typer.echo(line)
