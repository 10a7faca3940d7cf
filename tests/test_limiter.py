"""The new-band limiter: below full scale, local, only the new band, the same whatever the block sizes."""

from __future__ import annotations

import numpy as np

from specsr.limiter import CEILING, LimiterStats, limit_new_band, required_gain


def signal_with_a_transient(n: int = 48000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    low = (0.6 * np.sin(np.arange(n) / 7.0)).astype(np.float32)[None].repeat(2, 0)
    new = (0.05 * rng.standard_normal((2, n))).astype(np.float32)
    new[:, 20000:20050] += 1.5
    return low + new, low


def run(pairs, sr=48000):
    stats = LimiterStats(sr)
    return np.concatenate(list(limit_new_band(pairs, sr, stats)), axis=1), stats


def test_limits_locally_and_only_the_new_band():
    full, low = signal_with_a_transient()
    out, stats = run([(full, low)])
    assert out.shape == full.shape and np.abs(out).max() <= CEILING
    far = np.r_[0:19000, 21500:full.shape[1]]
    assert np.array_equal(out[:, far], full[:, far])  # untouched, bit for bit
    near = slice(19990, 20060)
    # the input's band is all there: what was removed is a fraction of the new band, never of the input's
    removed = (full - out)[:, near]
    new = (full - low)[:, near]
    assert np.all(np.abs(removed) <= np.abs(new) + 1e-6)
    assert 0 < stats.limited_seconds < 0.05 and -40 < stats.limit_db < 0 and stats.clipped_samples == 0


def test_blocks_of_any_size_give_the_same_samples():
    full, low = signal_with_a_transient()
    whole, _ = run([(full, low)])
    for size in (1, 333, 7000, 20025):
        blocks = ((full[:, i:i + size], low[:, i:i + size]) for i in range(0, full.shape[1], size))
        assert np.array_equal(run(blocks)[0], whole), size


def test_the_inputs_own_overshoot_is_clipped_and_counted():
    low = np.full((1, 100), 1.2, np.float32)
    out, stats = run([(low, low)])
    assert np.abs(out).max() <= CEILING and stats.clipped_samples == 100


def test_required_gain_is_exact():
    low = np.array([[0.5, -0.5, 0.1]], np.float32)
    new = np.array([[1.0, -1.0, 0.1]], np.float32)
    g = required_gain(low, new, ceiling=1.0)
    assert np.allclose(g, [0.5, 0.5, 1.0])


def test_samples_the_input_alone_clips_do_not_turn_the_new_band_down():
    """A hot input (overshoots everywhere, as a decoded AAC has): those samples are clipped and counted, and
    the new band around them keeps its level (it used to be turned down by 120 dB over the whole file)."""
    sr = 48000
    rng = np.random.default_rng(0)
    low = (0.5 * np.sin(2 * np.pi * 200 * np.arange(sr) / sr))[None].astype(np.float32)
    low[0, ::400] = 1.05  # an overshoot every 8 ms
    new = (0.01 * rng.standard_normal((1, sr))).astype(np.float32)
    stats = LimiterStats(sr)
    out = np.concatenate(list(limit_new_band([(low + new, low)], sr, stats)), axis=1)
    assert stats.clipped_samples >= sr // 400 - 1
    assert stats.limited_seconds < 0.01  # only where input + new, not the input alone, pass full scale
    keep = np.abs(low[0]) < 0.9
    np.testing.assert_allclose(out[0, keep], (low + new)[0, keep], atol=1e-6)
