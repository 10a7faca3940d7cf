"""``specsr train`` and ``specsr export``: thin layers over :mod:`specsr.train`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer

from specsr.cli import options as opt
from specsr.cli.app import command


def _resolve_config(config: Path | None, overrides: dict[str, dict]):  # noqa: ANN202
    from specsr.config import RunConfig, load_toml

    data = load_toml(str(config)) if config is not None else {}
    for table, values in overrides.items():
        for key, value in values.items():
            if value is not None:
                data.setdefault(table, {})[key] = value
    return RunConfig.from_dict(data)


def train_cmd(
    dataset_dir: Path = typer.Argument(..., help="A dataset folder made by specsr convert."),
    output: Path = typer.Option(..., "-o", "--output", help="Run folder (checkpoints, metrics, config)."),
    config: Path | None = typer.Option(None, "--config",
                                        help="TOML file with [stft] [task] [model] [train] [degrade]."),
    model: str | None = typer.Option(None, "--model", help="unet or srgan (overrides the config)."),
    steps: int | None = typer.Option(None, "--steps", help="Total optimisation steps."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Items per step and process."),
    lr: float | None = typer.Option(None, "--lr", help="Peak learning rate (unset: 2e-3 from scratch, 2e-4 "
                                                                  "with --warm-start)."),
    device: opt.Device = "auto",
    amp: bool | None = typer.Option(None, "--amp/--no-amp", help="bf16 (fp16 where bf16 is missing) autocast; "
                                                                 "ignored on a CPU without native bf16."),
    resume: bool = typer.Option(False, "--resume", help="Continue from RUN/last.pt."),
    val_every: int | None = typer.Option(None, "--val-every", help="Validate every N steps."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed."),
    warm_start: str | None = typer.Option(None, "--warm-start", help="Start the generator from this checkpoint "
                                                                       "(fine-tuning; SRGAN from a U-Net)."),
    nproc: int = typer.Option(1, "--nproc", help="Processes (GPUs) for DistributedDataParallel via torchrun."),
    force: bool = typer.Option(False, "--force", "-f", help="Start over in a folder that holds another run."),
    quiet: opt.Quiet = False,
) -> None:
    """Train a U-Net or SRGAN on a dataset from specsr convert (pairs made on the fly from its audio, or its fixed
    pairs); validates LSD on reconstructed audio."""
    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        _relaunch_with_torchrun(nproc)
        return
    from specsr.train import train

    cfg = _resolve_config(config, {
        "model": {"arch": model},
        "train": {"steps": steps, "batch_size": batch_size, "lr": lr, "amp": amp, "val_every": val_every,
                  "seed": seed, "warm_start": warm_start},
    })
    if cfg.model.arch == "srgan" and not cfg.train.warm_start and not resume:
        typer.echo("specsr: note: SRGAN from scratch; --warm-start RUN/best.pt of a U-Net usually trains better",
                   err=True)
    if cfg.train.warm_start and cfg.train.lr is None and not resume:
        typer.echo(f"specsr: note: warm start: peak learning rate {cfg.train.peak_lr:g}, the fine-tuning default "
                   "(--lr sets another)", err=True)
    summary = train(dataset_dir, output, cfg, device=device, resume=resume, force=force, quiet=quiet)
    if int(os.environ.get("RANK", "0")) == 0:
        best = f"{summary.best_val_lsd:.3f}" if summary.best_val_lsd is not None else "n/a"
        typer.echo(f"trained to step {summary.step} ({summary.n_params:,} parameters, "
                   f"{summary.steps_per_s:.2f} steps/s); best validation LSD {best}; checkpoints in {summary.run_dir}")


def _relaunch_with_torchrun(nproc: int) -> None:
    """``specsr train --nproc N …`` → ``python -m torch.distributed.run --nproc_per_node N -m specsr train …``."""
    args, skip = [], False
    argv = sys.argv[1:]
    if argv and argv[0] == "train":
        argv = argv[1:]
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        args.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "specsr", "train", *args]
    code = subprocess.call(cmd)
    if code != 0:
        raise typer.Exit(code)


command("train")(train_cmd)


@command("export")
def export_cmd(
    checkpoint: Path = typer.Argument(..., help="A checkpoint from specsr train (e.g. RUN/best.pt)."),
    output: Path = typer.Option(..., "-o", "--output", help="Inference checkpoint to write."),
    half: bool = typer.Option(False, "--half", help="Store weights as float16 (half the size)."),
    name: str | None = typer.Option(None, "--name", help="Model name stored in the file (e.g. specsr-unet-v1)."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite OUTPUT."),
) -> None:
    """Strip training state from a checkpoint: a small file for specsr upsample --model."""
    from specsr.checkpoint import export

    path = export(checkpoint, output, half=half, name=name, overwrite=force)
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
