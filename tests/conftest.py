"""Shared fixtures: tiny synthetic signals written to tmp_path, paths of the shared data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

# Tiny models gain nothing from threads, and OpenMP threads that spin-wait slow down by 50× when the
# CPU is shared with other jobs: one thread keeps the suite fast and its timing predictable.
torch.set_num_threads(1)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def noise(seconds: float, sr: int, channels: int = 1, seed: int = 0, level: float = 0.1) -> np.ndarray:
    """White noise ``[C, T]`` float32."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((channels, int(round(seconds * sr)))) * level).astype(np.float32)


def brickwall(wav: np.ndarray, sr: int, cutoff_hz: float) -> np.ndarray:
    """Ideal lowpass by zeroing FFT bins above ``cutoff_hz``."""
    spec = np.fft.rfft(wav, axis=-1)
    freqs = np.fft.rfftfreq(wav.shape[-1], 1 / sr)
    spec[..., freqs >= cutoff_hz] = 0
    return np.fft.irfft(spec, n=wav.shape[-1], axis=-1).astype(np.float32)


def make_checkpoint_file(path: Path, *, loud: bool = False, cfg=None, seed: int = 0, task=None) -> Path:
    """A random-init tiny U-Net checkpoint (channels 4, 8); ``loud`` shifts its output so that the new band is
    as loud as the old; ``task`` (default ``TaskConfig()``) its trained cutoff range."""
    from specsr.checkpoint import make_checkpoint, save_checkpoint
    from specsr.config import ModelConfig, STFTConfig, TaskConfig
    from specsr.models import build_model

    cfg = cfg or ModelConfig(channels=(4, 8), freq_mix_layers=1)
    torch.manual_seed(seed)
    model = build_model(cfg, STFTConfig())
    if loud:
        with torch.no_grad():
            model.out.bias.fill_(1.5)
    return save_checkpoint(make_checkpoint(model, cfg, STFTConfig(), task or TaskConfig(), name=path.stem), path)


def randomise_freq_mix(model: torch.nn.Module, std: float = 0.3) -> None:
    """Frequency-mixing layers start as the identity (a zero mixing matrix): give them weights, so that a test
    sees what they do."""
    from specsr.models import FreqMix

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, FreqMix):
                m.freq.weight.normal_(0, std)


def assert_one_line_error(result, *fragments: str) -> None:
    """A CLI result that failed with exactly one ``specsr: error: …`` line on stderr and no traceback."""
    assert result.exit_code != 0
    assert "Traceback" not in result.output + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("specsr: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def write_wav(tmp_path: Path):
    def _write(name: str, wav: np.ndarray, sr: int, subtype: str = "PCM_16") -> Path:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(p, np.atleast_2d(wav).T, sr, subtype=subtype)
        return p

    return _write


@pytest.fixture(scope="session")
def cli_app():
    from specsr.cli.main import app  # registers every command


    return app
