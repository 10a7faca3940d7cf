"""Self-describing checkpoints: weights plus the exact model, STFT and task config to use them; export.

A checkpoint is a plain dict saved with ``torch.save`` and loaded with ``weights_only=True``::

    format: "specsr-checkpoint"      version: FORMAT_VERSION
    kind: "inference" | "training"   name: e.g. "specsr-unet-48k-v1"
    model / stft / task: config dicts (the model is rebuilt from them, ``strict=True``; a task written
                         by older versions, with ``sr_out`` / ``sr_in_choices``, still loads)
    state_dict: weights of the unwrapped generator (no ``module.`` / ``_orig_mod.`` prefixes)
    provenance: dataset manifest hash, step, git commit, specsr version, time, train config
    training only: optimizer, scheduler, discriminator, RNG states, step
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from specsr.config import ModelConfig, STFTConfig, TaskConfig
from specsr.errors import SpecsrError
from specsr.models import UNet, build_model
from specsr.utils import atomic_write, check_output_path

FORMAT = "specsr-checkpoint"
FORMAT_VERSION = 1


@dataclass
class LoadedModel:
    """A generator rebuilt from a checkpoint, with everything needed to use it."""

    model: UNet
    model_cfg: ModelConfig
    stft: STFTConfig
    task: TaskConfig
    name: str
    provenance: dict[str, Any] = field(default_factory=dict)
    path: str = ""


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """Strip DistributedDataParallel / torch.compile wrappers."""
    while True:
        if hasattr(module, "module") and isinstance(module.module, torch.nn.Module):  # DDP
            module = module.module
        elif hasattr(module, "_orig_mod"):  # torch.compile
            module = module._orig_mod  # type: ignore[assignment]
        else:
            return module


def make_checkpoint(model: torch.nn.Module, model_cfg: ModelConfig, stft: STFTConfig, task: TaskConfig, *,
                    name: str, provenance: dict[str, Any] | None = None, kind: str = "inference",
                    extra: dict[str, Any] | None = None, half: bool = False) -> dict[str, Any]:
    state = {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    ckpt: dict[str, Any] = {
        "format": FORMAT, "version": FORMAT_VERSION, "kind": kind, "name": name,
        "model": model_cfg.to_dict(), "stft": stft.to_dict(), "task": task.to_dict(),
        "state_dict": state, "provenance": dict(provenance or {}),
    }
    if extra:
        ckpt.update(extra)
    return ckpt


def save_checkpoint(ckpt: dict[str, Any], path: str | os.PathLike) -> Path:
    """Atomic save: temp file in the same folder, fsync, rename."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(p, lambda fh: torch.save(ckpt, fh), binary=True)


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and validate the dict (``weights_only=True``); clear errors for anything else."""
    p = Path(path)
    if not p.exists():
        raise SpecsrError(f"{p}: no such checkpoint file")
    if p.is_dir():
        raise SpecsrError(f"{p}: is a directory, expected a checkpoint file")
    if not p.stat().st_size:
        raise SpecsrError(f"{p}: the checkpoint file is empty")
    if not zipfile.is_zipfile(p):
        raise SpecsrError(f"{p}: not a specsr checkpoint ({_what_file(p)})")
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except Exception:  # the weights-only unpickler raises many kinds on corrupt input
        raise SpecsrError(f"{p}: not a readable specsr checkpoint (a zip archive torch cannot load as one: "
                          "corrupt, truncated or another program's file)") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise SpecsrError(f"{p}: not a specsr checkpoint")
    version = ckpt.get("version")
    if version != FORMAT_VERSION:
        raise SpecsrError(f"{p}: checkpoint format version {version!r} is not supported "
                          f"(this specsr reads version {FORMAT_VERSION})")
    for key in ("model", "stft", "task", "state_dict"):
        if key not in ckpt:
            raise SpecsrError(f"{p}: checkpoint lacks '{key}'")
    return ckpt


_MAGIC = {  # the first bytes of files people give as --model by mistake
    b"RIFF": "a WAV file", b"fLaC": "a FLAC file", b"OggS": "an Ogg file", b"FORM": "an AIFF file",
    b"ID3": "an MP3 file", b"PK\x03\x04": "a zip archive cut short: truncated or corrupt",
    b"\x80\x02": "an old-style pickle, which specsr does not load",
}


def _what_file(p: Path) -> str:
    """A few words on what a file that is not a torch zip archive looks like, for the error line."""
    with open(p, "rb") as fh:
        head = fh.read(16)
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            return f"it looks like {what}"
    return "not a file torch.save wrote"


def model_from_checkpoint(ckpt: dict[str, Any], path: str = "") -> LoadedModel:
    """Rebuild the generator of a checkpoint dict (as :func:`read_checkpoint` returns it), in eval mode."""
    try:
        model_cfg = ModelConfig.from_dict(ckpt["model"])
        stft = STFTConfig.from_dict(ckpt["stft"])
        task = TaskConfig.from_saved(ckpt["task"], stft.sample_rate)
    except SpecsrError as exc:
        raise SpecsrError(f"{path or 'checkpoint'}: {exc}") from None
    model = build_model(model_cfg, stft)
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise SpecsrError(f"{path or 'checkpoint'}: weights do not match its model config "
                          f"({str(exc).splitlines()[0]})") from None
    model.eval()
    return LoadedModel(model, model_cfg, stft, task, str(ckpt.get("name", "")), dict(ckpt.get("provenance", {})), path)


def load_checkpoint(path: str | os.PathLike) -> LoadedModel:
    """Rebuild the generator of a checkpoint file (inference or training), in eval mode, on CPU."""
    return model_from_checkpoint(read_checkpoint(path), str(path))


def export(checkpoint: str | os.PathLike, output: str | os.PathLike, *, half: bool = False, name: str | None = None,
           overwrite: bool = False) -> Path:
    """Strip a training checkpoint to weights + configs + provenance (optionally float16)."""
    ckpt = read_checkpoint(checkpoint)
    out = check_output_path(output, overwrite=overwrite)
    keep = ("format", "version", "model", "stft", "task", "provenance")
    slim: dict[str, Any] = {k: ckpt[k] for k in keep if k in ckpt}
    slim["kind"] = "inference"
    slim["name"] = name or ckpt.get("name", "specsr-model")
    slim["state_dict"] = {k: (v.half() if half and v.is_floating_point() else v) for k, v in ckpt["state_dict"].items()}
    return save_checkpoint(slim, out)
