"""specsr: audio super-resolution in the spectrogram domain.

    >>> import specsr
    >>> upsampler = specsr.load_model("model.pt")       # or None: the bundled model
    >>> wav_48k, sr_out = upsampler.upsample(wav, 16000)  # wav: float32 [C, T]

Importing the package is light (torch, numpy, soundfile); matplotlib loads only for plots.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Upsampler", "__version__", "load_model"]

if TYPE_CHECKING:
    from specsr.pipeline import Upsampler, load_model


def __getattr__(name: str) -> Any:
    # Lazy: `import specsr.audio` (used by every CLI command) need not import the pipeline's torch stack.
    if name in ("load_model", "Upsampler"):
        from specsr import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'specsr' has no attribute {name!r}")
