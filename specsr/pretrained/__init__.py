"""The bundled models: which checkpoints ship inside the package, and their checksums.

Every bundled checkpoint is listed in :data:`REGISTRY` with the sha256 of its file; it is checked
each time the file is loaded, so a corrupt or replaced file is refused instead of silently giving
other results. A new bundled model is a file in this folder plus one entry here (its attribution in
``ATTRIBUTION.md``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from specsr.errors import SpecsrError

PRETRAINED_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL = "specsr-unet-48k-v6"
WIDE_MODEL = "specsr-unet-48k-v5-wide"  # trained on cutoffs 11-22.05 kHz (MP3 shelves, 32 and 44.1 kHz sources)
# The default is a pair: DEFAULT_MODEL predicts above cutoffs in its trained range (2-12 kHz), WIDE_MODEL above
# higher ones (:meth:`specsr.pipeline.Upsampler.model_for`). A model asked for by name is that model alone.


@dataclass(frozen=True)
class BundledModel:
    """A model shipped as ``specsr/pretrained/<name>.pt``."""

    name: str
    sha256: str
    description: str

    @property
    def path(self) -> Path:
        return PRETRAINED_DIR / f"{self.name}.pt"


REGISTRY: dict[str, BundledModel] = {m.name: m for m in (
    BundledModel("specsr-unet-48k-v1", "9e79f42408ff43ea9a53c2c7678c916dc03b2d91f65dd2f13c8b48921304dd5a",
                 "U-Net, 583k parameters (float16), any input rate 4-24 kHz -> 48 kHz; trained on ~34 min of "
                 "permissively licensed music and speech (see ATTRIBUTION.md)"),
    BundledModel("specsr-unet-48k-v2", "2d567e9b7c269547f46a454b8701b608e56ab65c0fff572767a6a8b59a6effee",
                 "patch-4 U-Net, 574k parameters (float16), any input rate 4-24 kHz -> 48 kHz; trained with level, "
                 "texture and fixed-pattern terms on ~40 min of permissively licensed music and speech "
                 "(see ATTRIBUTION.md)"),
    BundledModel("specsr-unet-48k-v3", "1837aafce3c9287ae54efaa6bf0affa7cd89425b2c71363b3488f33ceb5ff6f1",
                 "patch-8 U-Net, 574k parameters (float16), any input rate 4-24 kHz -> 48 kHz; v2's recipe on a "
                 "network twice as fast (see the README's model card and ATTRIBUTION.md)"),
    BundledModel("specsr-unet-48k-v4", "32978f2d880523ee95802a7aaf887dfdbda8385c80c8a27b1306a19d27544354",
                 "patch-8 U-Net, 574k parameters (float16), any input rate 4-24 kHz -> 48 kHz; v3's recipe with "
                 "augmented real speech, chosen on a held-out VCTK speaker (see the README's model card)"),
    BundledModel(DEFAULT_MODEL, "6a17774f51e46ee0e520121d9e2118388316d4873ba0c165ab46aac233fe7808",
                 "patch-8 U-Net, 574k parameters (float16), any input rate 4-24 kHz -> 48 kHz; v5's recipe with the "
                 "synthetic voices' top band left out of the loss; cutoffs above 12 kHz go to its wide partner (see "
                 "the README's model card)"),
    BundledModel("specsr-unet-48k-v5", "2ef5a8e915918b00fc643889a5f0325fd50d83d646fed82996c7d8ebdb5124e9",
                 "patch-8 U-Net, 574k parameters (float16), any input rate 4-24 kHz -> 48 kHz; v4's recipe from a "
                 "stage 1 three times as long (see the README's model card)"),
    BundledModel(WIDE_MODEL, "57ea3079a8d965d868a4f5af8d347ab01e349ac039db40e7067d0d9a7ad97fc1",
                 "v5 fine-tuned on cutoffs 11-22.05 kHz only (MP3 shelves at 14-20 kHz, 32 and 44.1 kHz sources): the "
                 "default's partner for cutoffs above 12 kHz (see the README's model card)"),
    BundledModel("specsr-unet-48k-v4-wide", "33ed0c51241eca6a797b8c6ff09bc0601aab0bf6efaf465440df6fa5f9e26cbc",
                 "v4 fine-tuned on cutoffs 2-22.05 kHz (MP3 shelves at 14-20 kHz, 44.1 kHz sources); 0.02 LSD "
                 "behind v4 on 4-12 kHz cutoffs (see the README's model card)"),
    BundledModel("specsr-unet-48k-v3-wide", "7bc2501804f85fe7fb7cbf3b155cbed06ee00193edad6aa98974c9cb4895c337",
                 "v3 fine-tuned on cutoffs 2-22.05 kHz (MP3 shelves at 14-20 kHz, 44.1 kHz sources); v2's held-out "
                 "speech LSD on 4-12 kHz cutoffs, 0.02 behind v3 there (see the README's model card)"),
    BundledModel("specsr-unet-48k-v2-wide", "0fa281eed91cced4f0468682788ea0790f9ebd651bd638843ef79f9cccfda694",
                 "v2 fine-tuned on cutoffs 2-22.05 kHz (MP3 shelves at 14-20 kHz, 44.1 kHz sources); 0.03 LSD "
                 "behind v2 on 4-12 kHz cutoffs (see the README's model card)"),
)}


def list_bundled_models() -> list[BundledModel]:
    """The bundled models whose file is installed, sorted by name."""
    return sorted((m for m in REGISTRY.values() if m.path.is_file()), key=lambda m: m.name)


def is_bundled_name(name: str | os.PathLike | None) -> bool:
    """Whether ``name`` asks for a bundled model (``None`` and ``"bundled"`` mean the default one)."""
    return name is None or (isinstance(name, str) and (name == "bundled" or name in REGISTRY))


def is_default_name(name: str | os.PathLike | None) -> bool:
    """Whether ``name`` asks for the default model without naming it (``None`` or ``"bundled"``): the pair of
    :data:`DEFAULT_MODEL` and :data:`WIDE_MODEL`."""
    return name is None or name == "bundled"


def bundled_path(name: str | None = None) -> Path:
    """The checked file of a bundled model (``None`` or ``"bundled"``: the default)."""
    wanted = DEFAULT_MODEL if name in (None, "bundled") else str(name)
    installed = {m.name: m for m in list_bundled_models()}
    if wanted not in installed:
        listed = ", ".join(installed) or "none installed"
        raise SpecsrError(f"no bundled model named {wanted!r} (bundled: {listed}); pass a checkpoint path made by "
                          "specsr train/export instead")
    model = installed[wanted]
    digest = file_sha256(model.path)
    if digest != model.sha256:
        raise SpecsrError(f"{model.path}: checksum mismatch (sha256 {digest[:12]}…, expected {model.sha256[:12]}…): "
                          "the bundled file is corrupt or was replaced; reinstall specsr")
    return model.path


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
