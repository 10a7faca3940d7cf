"""The one STFT: equal to torch.stft bit for bit, round trips at odd lengths, inference frames == training
features; log-power inversion, cutoff bins."""

from __future__ import annotations

import pytest
import torch

from specsr import spectral
from specsr.config import STFTConfig
from specsr.spectral import cutoff_bin, cutoff_bins, istft, log_power, log_power_to_magnitude, n_frames, stft


@pytest.mark.parametrize("length", [1, 100, 1023, 1025, 4097, 48001])
def test_stft_round_trip_odd_lengths(length):
    cfg = STFTConfig()
    x = torch.randn(2, 3, length)
    spec = stft(x, cfg)
    assert spec.shape == (2, 3, cfg.n_bins, n_frames(length, cfg))
    y = istft(spec, cfg, length)
    assert y.shape == x.shape
    assert torch.allclose(x, y, atol=1e-4)


def test_log_power_inverse():
    spec = torch.randn(4, 1025, 10, dtype=torch.complex64)
    mag = log_power_to_magnitude(log_power(spec))
    assert torch.allclose(mag, spec.abs().clamp_min(1e-5), rtol=1e-4)


def test_cutoff_bin():
    cfg = STFTConfig()
    assert cutoff_bin(8000, cfg) == 8000 * 2048 // 48000 + 1  # 341.33 → first bin at or above is 342
    assert cutoff_bin(12000, cfg) == 512
    assert cutoff_bin(0, cfg) == 0 and cutoff_bin(24000, cfg) == 1024 and cutoff_bin(1e9, cfg) == cfg.n_bins


def test_stft_config_validation():
    with pytest.raises(ValueError, match="hop_length"):
        STFTConfig(hop_length=0)
    assert STFTConfig(hop_length=4096).hop_length == 4096  # sparse analysis (long files' plots)
    with pytest.raises(ValueError, match="window"):
        STFTConfig(window="kaiser")
    cfg = STFTConfig(44100, 1024, 256)
    assert STFTConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown key"):
        STFTConfig.from_dict({"hop": 3})


def test_cutoff_bins_equal_cutoff_bin_elementwise():
    cfg = STFTConfig(48000, 2048, 512)
    edges = [k * cfg.sample_rate / cfg.n_fft for k in (0, 1, 170, 341, 682, 1024)]  # exact bin frequencies
    hz = edges + [-5.0, 3999.9, 4000.0, 7990.0, 8000.0, 11025.0, 23999.0, 24000.0, 30000.0]
    for dtype in (torch.float32, torch.float64):
        t = torch.tensor(hz, dtype=dtype).reshape(3, -1)
        expected = torch.tensor([cutoff_bin(float(v), cfg) for v in t.flatten()]).reshape(3, -1)
        assert torch.equal(cutoff_bins(t, cfg), expected)


@pytest.mark.parametrize("length", [1, 700, 1025, 4097, 48001])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cfg", [STFTConfig(), STFTConfig(44100, 1024, 256, window="hamming")])
def test_stft_is_torch_stft_bit_for_bit(length, dtype, cfg):
    x = torch.randn(3, length, dtype=dtype)
    ref_in = x if length > cfg.n_fft // 2 else torch.nn.functional.pad(x, (0, cfg.n_fft // 2 + 1 - length))
    win = spectral.window(cfg, dtype=dtype)
    ref = torch.stft(ref_in, cfg.n_fft, cfg.hop_length, window=win, center=True, return_complex=True)
    assert torch.equal(stft(x, cfg), ref)
    # the frame-domain STFT of the padded signal is the same computation
    assert torch.equal(spectral.frames(spectral.center_pad(x, cfg), cfg), ref)


def test_overlap_add_inverts_frames_exactly_where_covered():
    cfg = STFTConfig()
    sig = torch.randn(2, 9 * cfg.hop_length + cfg.n_fft, dtype=torch.float64)
    back = spectral.overlap_add(spectral.frames(sig, cfg), cfg)
    assert back.shape == sig.shape
    assert torch.allclose(back[:, 4:-4], sig[:, 4:-4], atol=1e-12)  # the outermost samples: window ≈ 0


def test_inference_frames_are_the_training_features():
    """What the network sees at inference is exactly what ``specsr convert`` stores for training."""
    import numpy as np

    from specsr.chunking import ChunkEngine
    from specsr.config import InferenceConfig

    cfg = STFTConfig()
    wav = torch.randn(1, 2 * 48000 + 123) * 0.1

    class Recorder:
        stft, device, frame_multiple, receptive_field_frames = cfg, torch.device("cpu"), 16, 137

        def __init__(self) -> None:
            self.seen: list[torch.Tensor] = []

        def predict_magnitude(self, known: torch.Tensor, cutoff_bins: int) -> torch.Tensor:
            self.seen.append(known)
            return known.abs()

    rec = Recorder()
    engine = ChunkEngine(rec, 1, wav.shape[-1], 8000.0, 8000.0, InferenceConfig(n_iter=0))
    list(engine.run([wav.numpy().astype(np.float32)]))
    assert len(rec.seen) == 1  # one model call covers a short signal
    features = log_power(stft(wav, cfg))  # as specsr.dataset computes them
    assert torch.equal(log_power(rec.seen[0]), features)


def test_the_shared_window_serves_autograd_after_inference_mode():
    """The window is made once and shared; made first under inference_mode it must still be a normal tensor."""
    cfg = STFTConfig(n_fft=256, hop_length=64, window="hamming")
    with torch.inference_mode():
        spectral.window(cfg)
    sig = torch.randn(1, 1000, requires_grad=True)
    spectral.stft(sig, cfg).abs().sum().backward()
    assert sig.grad is not None and torch.isfinite(sig.grad).all()
    assert spectral.window(cfg) is spectral.window(cfg)
