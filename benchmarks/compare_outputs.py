"""A model's output beside the truth for every clip of a ``specsr evaluate --compare`` folder, both mono at
48 kHz and cut to a common length: what the structure diagnostics (``band_bias.py``, ``lattice.py``) read."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from specsr.audio import read_audio
from specsr.evaluate import Clip, discover_clips
from specsr.pipeline import Upsampler


def mono_outputs(ups: Upsampler, compare: str, sets: str | None) -> Iterator[tuple[Clip, np.ndarray, np.ndarray]]:
    """``(clip, truth [N], output [N])`` per clip with an input (``sets``: comma-separated, or all)."""
    clips, _ = discover_clips(compare, sets.split(",") if sets else None)
    for clip in clips:
        if clip.input is None:
            continue
        truth = read_audio(clip.truth)[0].mean(0)
        x, sr = read_audio(clip.input)
        y = ups.upsample(x.mean(0), sr)[0]
        n = min(len(truth), len(y))
        yield clip, truth[:n], y[:n]
