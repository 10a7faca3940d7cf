"""Audio I/O and resampling: channels, subtypes, atomic writes, the exact length contract."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from conftest import noise

from specsr.audio import (
    audio_info,
    read_audio,
    resample,
    resampled_blocks,
    resampled_length,
    upsample_filter,
    write_audio,
)
from specsr.errors import SpecsrError


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "FLOAT"])
def test_read_keeps_channels_and_float32(tmp_path, subtype):
    wav = noise(0.1, 16000, channels=2)
    ext = "wav"
    p = tmp_path / f"x.{ext}"
    sf.write(p, wav.T, 16000, subtype=subtype)
    got, sr = read_audio(p)
    assert sr == 16000 and got.shape == wav.shape and got.dtype == np.float32
    assert np.abs(got - wav).max() < (0.02 if subtype == "PCM_U8" else 1e-3)


def test_write_is_atomic_and_refuses_overwrite(tmp_path):
    p = tmp_path / "out.flac"
    write_audio(p, noise(0.05, 48000), 48000, subtype="PCM_24")
    with pytest.raises(SpecsrError, match="exists"):
        write_audio(p, noise(0.05, 48000), 48000)
    write_audio(p, noise(0.05, 48000, seed=1), 48000, overwrite=True)
    assert [q.name for q in tmp_path.iterdir()] == ["out.flac"]  # no temp files left


def test_write_errors(tmp_path):
    with pytest.raises(SpecsrError, match="does not exist"):
        write_audio(tmp_path / "nope" / "x.wav", noise(0.01, 8000), 8000)
    with pytest.raises(SpecsrError, match="cannot write"):
        write_audio(tmp_path / "x.mp4", noise(0.01, 8000), 8000)


def test_read_errors(tmp_path):
    with pytest.raises(SpecsrError, match="no such file"):
        read_audio(tmp_path / "missing.wav")
    with pytest.raises(SpecsrError, match="directory"):
        read_audio(tmp_path)
    bad = tmp_path / "garbage.wav"
    bad.write_bytes(b"RIFF\x00\x01garbage" * 10)
    with pytest.raises(SpecsrError, match="not a readable audio file"):
        read_audio(bad)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 1)), 16000)
    with pytest.raises(SpecsrError, match="no samples"):
        read_audio(empty)
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.array([[0.0], [np.nan]]), 16000, subtype="FLOAT")
    with pytest.raises(SpecsrError, match="NaN"):
        read_audio(nan)


@pytest.mark.parametrize("method", ["soxr", "resample_poly", "sinc"])
@pytest.mark.parametrize(("sr_in", "sr_out"), [(8000, 48000), (16000, 48000), (22050, 48000), (44100, 48000),
                                          (11025, 44100), (48000, 16000), (12000, 48000)])
@pytest.mark.parametrize("n", [1, 7, 1001, 4799])
def test_resample_length_contract(method, sr_in, sr_out, n):
    x = noise(n / sr_in, sr_in, channels=2)[:, :n]
    y = resample(x, sr_in, sr_out, method=method)
    assert y.shape == (2, resampled_length(n, sr_in, sr_out))
    assert resampled_length(n, sr_in, sr_out) == round(n * sr_out / sr_in)


@pytest.mark.parametrize("sr_low", [8000, 16000, 22050])
def test_short_sinc_rolls_off_like_a_toolkit_resampler(sr_low):
    """Down and up with the ``sinc`` method: flat to half the Nyquist, falling from ~0.8 of it, -10 dB at it
    (images included), leaking images above it, next to nothing left beyond 1.4 times it."""
    from scipy.signal import welch

    x = noise(4.0, 48000, seed=1)[0]
    y = resample(resample(x, 48000, sr_low, method="sinc"), sr_low, 48000, method="sinc")
    f, p_y = welch(y, 48000, nperseg=4096)
    _, p_x = welch(x, 48000, nperseg=4096)
    level = lambda ratio: 10 * np.log10(p_y[np.argmin(abs(f - ratio * sr_low / 2))] /  # noqa: E731
                                        p_x[np.argmin(abs(f - ratio * sr_low / 2))])
    assert abs(level(0.5)) < 0.2 and -2.5 < level(0.83) < -1.0
    assert -12.0 < level(1.0) < -8.0 and -30.0 < level(1.17) < -18.0 and level(1.4) < -50.0


def test_resample_preserves_a_tone():
    sr_in, sr_out = 16000, 48000
    t = np.arange(sr_in) / sr_in
    x = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    y = resample(x, sr_in, sr_out)
    ref = np.sin(2 * np.pi * 1000 * np.arange(sr_out) / sr_out)
    assert np.abs(y[1000:-1000] - ref[1000:-1000]).max() < 1e-3


@pytest.mark.parametrize("sr_in", [8000, 11025, 16000, 22050, 44100])
@pytest.mark.parametrize("n", [1, 7, 1001, 4799])
def test_passband_length_contract(sr_in, n):
    x = noise(n / sr_in, sr_in, channels=2)[:, :n]
    assert resample(x, sr_in, 48000, method="passband").shape == (2, resampled_length(n, sr_in, 48000))


@pytest.mark.parametrize(("attenuation_db", "width", "cutoff"),
                         [(80.0, 0.05 / 3, 1.025 / 3), (80.0, 0.05 / 160, 1.025 / 160), (80.0, 0.02 / 6, 0.99 / 6),
                          (60.0, 0.1, 0.5), (30.0, 0.2, 0.3), (15.0, 0.3, 0.4)])
def test_kaiser_lowpass_is_scipys_design(attenuation_db, width, cutoff):
    from scipy.signal import firwin, kaiserord

    from specsr.audio import kaiser_lowpass

    numtaps, beta = kaiserord(attenuation_db, width)
    ref = firwin(numtaps | 1, cutoff, window=("kaiser", beta))
    got = kaiser_lowpass(attenuation_db, width, cutoff)
    assert got.shape == ref.shape and np.abs(got - ref).max() < 1e-12


@pytest.mark.parametrize("sr_in", [8000, 11025, 16000, 22050, 32000, 44100])
@pytest.mark.parametrize("n", [5, 4799, 70001])
def test_passband_is_resample_poly_with_its_filter(sr_in, n):
    """The strided conv1d over the filter's phases computes scipy's resample_poly (same filter, centred) to float32
    rounding, at short and block-spanning lengths."""
    from fractions import Fraction

    from scipy.signal import resample_poly

    from specsr.audio import upsample_filter

    x = noise(n / sr_in + 0.01, sr_in, channels=2, seed=n)[:, :n]
    frac = Fraction(48000, sr_in)
    ref = resample_poly(x.astype(np.float64), frac.numerator, frac.denominator, axis=-1,
                        window=upsample_filter(frac.numerator))
    got = resample(x, sr_in, 48000, method="passband")
    m = min(got.shape[1], ref.shape[1])
    assert np.abs(got[:, :m] - ref[:, :m]).max() < 1e-5 * max(1.0, np.abs(ref).max())


@pytest.mark.parametrize("sr_in", [8000, 16000, 22050])
def test_passband_stream_equals_whole_exactly(sr_in, tmp_path):
    x = noise(2.3, sr_in, channels=2, seed=3)
    path = tmp_path / "x.wav"
    sf.write(path, x.T, sr_in, subtype="FLOAT")
    whole = resample(x, sr_in, 48000, method="passband")
    streamed = np.concatenate(list(resampled_blocks(path, audio_info(path), 48000, method="passband",
                                                    block_frames=3001)), axis=1)
    assert np.array_equal(whole, streamed)


def test_passband_keeps_the_input_band_up_to_its_nyquist():
    """soxr's (and any anti-imaging filter's) transition lies below the input's Nyquist: a notch specsr would
    keep 'exactly' below the seam. The passband filter is flat up to the Nyquist, and images above it are in
    the band the model replaces."""
    from scipy.signal import freqz

    sr_in, up = 16000, 3
    h = upsample_filter(up)
    f, resp = freqz(h, worN=1 << 16, fs=sr_in * up)
    db = 20 * np.log10(np.abs(resp) + 1e-12)
    assert np.abs(db[f <= 0.999 * sr_in / 2]).max() < 0.01
    assert db[f >= 1.05 * sr_in / 2].max() < -79
    x = noise(4.0, sr_in, seed=1)
    spectrum = {m: np.abs(np.fft.rfft(resample(x, sr_in, 48000, method=m)[0])) ** 2 for m in ("soxr", "passband")}
    freqs = np.fft.rfftfreq(4 * 48000, 1 / 48000)
    top = (freqs > 0.975 * sr_in / 2) & (freqs < 0.995 * sr_in / 2)
    mid = (freqs > 0.4 * sr_in / 2) & (freqs < 0.6 * sr_in / 2)
    level = {m: 10 * np.log10(s[top].mean() / s[mid].mean()) for m, s in spectrum.items()}
    assert abs(level["passband"]) < 0.5 and level["soxr"] < -20
