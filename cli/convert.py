"""``specsr convert``: build (or resume) a training dataset: audio segments (pairs made in training), or
fixed low/high-resolution spectrogram pairs with ``--spectrograms``."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from specsr.cli.app import command, warn
from specsr.config import DEFAULT_SR_IN_CHOICES, ConvertConfig
from specsr.errors import SpecsrError

_D = ConvertConfig()  # the defaults


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(float(v)) for v in text.split(",") if v.strip())
    except ValueError:
        raise SpecsrError(f"{what}: expected comma-separated numbers (Hz), got {text!r}") from None


def _pair(text: str, what: str) -> tuple[float, float]:
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise SpecsrError(f"{what}: expected LOW:HIGH, got {text!r}") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def _span_text(span: tuple[float, float] | None) -> str:
    return "off" if span is None else f"{span[0]:g}:{span[1]:g}"


@command("convert")
def convert(
    sources: list[Path] = typer.Argument(..., help="Folders of audio (plain or VCTK), audio files, or .txt lists "
                                         "of paths (relative to the list's folder).", show_default=False),
    output: Path = typer.Option(..., "-o", "--output", help="Dataset folder (created; rerun to resume)."),
    sr_out: int = typer.Option(_D.sr_out, "--sr-out", help="Output (model) sample rate, Hz."),
    sr_in: str | None = typer.Option(None, "--sr-in", help="Input rates to draw from, Hz, comma-separated "
                                     f"(default {','.join(map(str, _D.sr_in_choices or DEFAULT_SR_IN_CHOICES))})."),
    sr_in_range: str | None = typer.Option(None, "--sr-in-range", help="Draw input rates uniformly from LOW:HIGH Hz "
                                           "instead of --sr-in."),
    filters: str = typer.Option(",".join(_D.filters), "--filters", help="Degradation filters: mix, or a comma list "
                                "of resample_poly, soxr, cheby1, butter, sinc."),
    variants: int = typer.Option(_D.variants, "--variants", help="--spectrograms: degraded versions of each segment."),
    segment_seconds: float = typer.Option(_D.segment_seconds, "--segment-seconds", help="Segment length, s."),
    val_fraction: float = typer.Option(_D.val_fraction, "--val-fraction",
                                       help="Share of groups (speakers/folders) for val."),
    val_groups: str | None = typer.Option(None, "--val-groups", help="Comma-separated groups (speakers/folders) "
                                          "to validate on, instead of --val-fraction's random draw."),
    workers: int | None = typer.Option(None, "--workers", help="Worker processes (default min(2, CPU cores))."),
    stft_preset: str = typer.Option(_D.stft_preset, "--stft-preset", help="STFT preset (its rate must be --sr-out)."),
    seed: int = typer.Option(_D.seed, "--seed", help="Seed of the split (and of --spectrograms' degradations)."),
    test_speakers: str = typer.Option(",".join(_D.test_speakers), "--test-speakers",
                                      help="Speakers never written (comma-separated; 'none' for none)."),
    allow_band_limited: bool = typer.Option(_D.allow_band_limited, "--allow-band-limited",
                                            help="Keep sources with no content above --min-content-hz."),
    min_content_hz: float = typer.Option(_D.min_content_hz, "--min-content-hz",
                                         help="Band-limited sources must reach this (or 0.8 x their Nyquist)."),
    content_limit: list[str] = typer.Option([], "--content-limit", metavar="GROUP=HZ",
                                            help="Take the sources of GROUP (a group or a folder above groups) to "
                                            "hold content up to HZ only: the loss leaves their bins above 0.95 x "
                                            "HZ out (a vocoder's or codec's top band). Repeatable."),
    noise_floor_db: str = typer.Option(_span_text(_D.noise_floor_db), "--noise-floor-db",
                                       help="dBFS range of the noise floor added to half the variants, or 'off'."),
    max_files: int | None = typer.Option(None, "--max-files", help="Use only the first N source files (sorted)."),
    all_mics: bool = typer.Option(_D.all_mics, "--all-mics", help="VCTK: use every microphone, not only mic1."),
    shard_size: int = typer.Option(_D.shard_size, "--shard-size", help="Segments (or pairs) per shard file."),
    spectrograms: bool = typer.Option(_D.spectrograms, "--spectrograms", help="Write fixed spectrogram pairs "
                                      "(--sr-in, --filters, --variants, --noise-floor-db apply) instead of audio."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Build a training dataset from full-band audio: 16-bit audio shards (training draws a fresh degradation
    for every example), or fixed spectrogram pairs with --spectrograms."""
    from tqdm import tqdm

    noise = None if noise_floor_db.strip().lower() in ("off", "none", "") else _pair(noise_floor_db, "--noise-floor-db")
    rng_hz = _pair(sr_in_range, "--sr-in-range") if sr_in_range else None
    config = ConvertConfig(
        sr_out=sr_out, sr_in_choices=_ints(sr_in, "--sr-in") if sr_in else None,
        sr_in_range=(int(rng_hz[0]), int(rng_hz[1])) if rng_hz else None, filters=_names(filters),
        variants=variants, segment_seconds=segment_seconds, val_fraction=val_fraction,
        val_groups=_names(val_groups) if val_groups else None, stft_preset=stft_preset, seed=seed,
        test_speakers=() if test_speakers.strip().lower() in ("", "none") else tuple(test_speakers.split(",")),
        allow_band_limited=allow_band_limited, noise_floor_db=noise, all_mics=all_mics,
        min_content_hz=min_content_hz, content_limits=tuple(content_limit), shard_size=shard_size,
        spectrograms=spectrograms)

    def on_warning(message: str) -> None:
        if quiet:
            warn(message)
        else:  # keep the progress bar intact
            tqdm.write(f"specsr: warning: {message}", file=sys.stderr)

    from specsr.dataset import build_dataset

    summary = build_dataset(sources, output, config, workers=workers, max_files=max_files, progress=not quiet,
                            on_warning=on_warning)
    for message in summary.warnings:
        warn(message)
    typer.echo(summary.format())
