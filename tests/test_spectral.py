"""STFT / iSTFT round trips at odd lengths, log-power inversion, cutoff bins."""

from __future__ import annotations

import pytest
import torch

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
        STFTConfig(hop_length=4096)
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
