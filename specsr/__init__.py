"""specsr: audio super-resolution in the spectrogram domain.

    >>> import specsr
    >>> upsampler = specsr.load_model()                     # the bundled model, or a checkpoint path
    >>> wav_48k, sr_out = upsampler.upsample(wav, 16000)    # [T], [C, T] or [T, C]; numpy or torch
    >>> report = upsampler.upsample_file("in.wav", "out.wav")

Importing the package is light: the names below load their modules (torch, numpy) on first use;
matplotlib loads only for plots.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> the module that defines it
_API = {
    "load_model": "specsr.pipeline",
    "Upsampler": "specsr.pipeline",
    "UpsampleReport": "specsr.pipeline",
    "NothingToAddError": "specsr.pipeline",
    "UpsampleWarning": "specsr.pipeline",
    "InferenceConfig": "specsr.config",
    "INFERENCE_DEFAULTS": "specsr.config",
    "SpecsrError": "specsr.errors",
    "list_bundled_models": "specsr.pretrained",
}

__all__ = ["INFERENCE_DEFAULTS", "InferenceConfig", "NothingToAddError", "SpecsrError", "UpsampleReport",
           "UpsampleWarning", "Upsampler", "__version__", "list_bundled_models", "load_model"]

if TYPE_CHECKING:
    from specsr.config import INFERENCE_DEFAULTS, InferenceConfig
    from specsr.errors import SpecsrError
    from specsr.pipeline import NothingToAddError, Upsampler, UpsampleReport, UpsampleWarning, load_model
    from specsr.pretrained import list_bundled_models


def __getattr__(name: str) -> Any:
    # Lazy: `import specsr.audio` (used by every CLI command) need not import the pipeline's torch stack.
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'specsr' has no attribute {name!r}")
