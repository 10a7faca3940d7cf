"""Options several commands share, defined once (their defaults are :data:`specsr.config.INFERENCE_DEFAULTS`).

Inference options default to "not given" (None): the library then uses its own defaults, so a value
is never restated here, and the help shows the library's default.
"""

from __future__ import annotations

from typing import Annotated

import typer

from specsr.config import INFERENCE_DEFAULTS, PHASE_METHODS, PRECISIONS, QUALITY_PRESETS, InferenceConfig
from specsr.errors import SpecsrError

_D = INFERENCE_DEFAULTS

Model = Annotated[str | None, typer.Option(
    "--model", "-m", metavar="PATH|NAME",
    help="Checkpoint path or bundled model name. Default ('bundled'): the default model, which hands "
         "cutoffs above its trained range to the bundled wide model; a name or path: that model alone.")]
WideModel = Annotated[str | None, typer.Option(
    "--wide-model", metavar="PATH|NAME",
    help="Checkpoint path or bundled name of the model that takes the cutoffs above --model's trained range "
         "(the default model's: the bundled wide model).")]
Phase = Annotated[str | None, typer.Option(
    "--phase", metavar="|".join(PHASE_METHODS),
    help=f"Phase of the new band: fast Griffin-Lim, Griffin-Lim, the low-res phase copied up, or the network's "
         f"own (learned: a model trained with predict_phase; FGLA passes start from it) (default {_D.phase}).",
    show_default=False)]
NIter = Annotated[int | None, typer.Option(
    "--n-iter", metavar="N", help=f"Phase iterations, fgla, griffinlim and learned (default {_D.n_iter}).",
    show_default=False)]
Device = Annotated[str, typer.Option(
    "--device", metavar="auto|cpu|cuda[:N]|mps", help="Where the network runs (auto: CUDA when present).")]
Precision = Annotated[str | None, typer.Option(
    "--precision", metavar="|".join(PRECISIONS),
    help=f"Network precision; auto is bf16 on a CPU with native bf16 kernels, fp32 elsewhere "
         f"(default {_D.precision}).", show_default=False)]
ChunkSeconds = Annotated[float | None, typer.Option(
    "--chunk-seconds", metavar="S", help=f"Audio per chunk: bounds memory, never changes the output "
                                         f"(default {_D.chunk_seconds:g}).", show_default=False)]
Quality = Annotated[str | None, typer.Option(
    "--quality", metavar="|".join(QUALITY_PRESETS),
    help="Preset: fast (low-res phase), default, best (128 fgla iterations); --phase/--n-iter override it.",
    show_default=False)]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or summary lines.")]



_FLAGS = {"phase": "--phase", "n_iter (phase iterations)": "--n-iter", "chunk_seconds": "--chunk-seconds",
          "precision": "--precision"}


def inference_settings(*, phase: str | None = None, n_iter: int | None = None, chunk_seconds: float | None = None,
                       precision: str | None = None, quality: str | None = None) -> InferenceConfig:
    """The defaults (or a ``--quality`` preset) with the options given, checked before any model loads; errors
    name the flag."""
    if quality is not None:
        if quality not in QUALITY_PRESETS:
            raise SpecsrError(f"--quality must be one of {', '.join(QUALITY_PRESETS)}, got {quality!r}")
        preset = QUALITY_PRESETS[quality]
        phase = preset.get("phase") if phase is None else phase
        n_iter = preset.get("n_iter") if n_iter is None else n_iter
    try:
        return INFERENCE_DEFAULTS.with_overrides(phase=phase, n_iter=n_iter, chunk_seconds=chunk_seconds,
                                                 precision=precision)
    except SpecsrError as exc:
        message = str(exc)
        for name, flag in _FLAGS.items():
            if message.startswith(name + " "):
                message = flag + message[len(name):]
        raise SpecsrError(message) from None
