"""The repository's data scripts (scripts/): what they write is what specsr reads."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from specsr.evaluate import discover_clips

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def test_make_compare_set_writes_a_compare_layout(tmp_path):
    src = tmp_path / "clips"
    src.mkdir()
    rng = np.random.default_rng(0)
    sf.write(src / "a.flac", 0.1 * rng.standard_normal(44100).astype(np.float32), 44100)  # truth stays 44.1 kHz
    sf.write(src / "b.wav", 0.1 * rng.standard_normal((48000, 2)).astype(np.float32), 48000)  # stereo: mixed down
    out = tmp_path / "heldout"
    r = subprocess.run([sys.executable, str(SCRIPTS / "make_compare_set.py"), str(src), "-o", str(out),
                        "--set", "mine", "--rates", "8000,11025"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    clips, warnings = discover_clips(out)
    assert not warnings
    assert sorted((c.sr_in, c.name) for c in clips) == [(8000, "a"), (8000, "b"), (11025, "a"), (11025, "b")]
    for clip in clips:
        truth, sr_truth = sf.read(clip.truth)
        low, sr_low = sf.read(clip.input)
        # a 44.1 kHz source keeps its rate (the metric then scores below 0.95 of its Nyquist); the input is made
        # from it at 48 kHz
        assert sr_truth == (44100 if clip.name == "a" else 48000) and sr_low == clip.sr_in and truth.ndim == 1
        assert abs(len(low) - len(truth) * clip.sr_in / sr_truth) <= 1


def test_make_compare_set_sinc_inputs_are_48k_and_roll_off(tmp_path):
    """--filter sinc: 48 kHz inputs of the truth's length, the band kept well below the low Nyquist and
    fallen by ~10 dB at it, as a toolkit resampler leaves it (the clip's sr_in still says the low rate)."""
    src = tmp_path / "clips"
    src.mkdir()
    sf.write(src / "n.flac", 0.1 * np.random.default_rng(1).standard_normal(96000).astype(np.float32), 48000)
    out = tmp_path / "heldout"
    r = subprocess.run([sys.executable, str(SCRIPTS / "make_compare_set.py"), str(src), "-o", str(out),
                        "--rates", "16000", "--filter", "sinc"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    (clip,), _ = discover_clips(out)
    truth, _ = sf.read(clip.truth)
    low, sr_low = sf.read(clip.input)
    assert clip.sr_in == 16000 and sr_low == 48000 and len(low) == len(truth)
    spec = lambda x, lo, hi: (np.abs(np.fft.rfft(x)) ** 2)[int(lo * 2):int(hi * 2)].sum()  # noqa: E731 (0.5 Hz bins)
    assert abs(10 * np.log10(spec(low, 1000, 5000) / spec(truth, 1000, 5000))) < 0.1
    assert -13 < 10 * np.log10(spec(low, 7900, 8100) / spec(truth, 7900, 8100)) < -7


def test_make_compare_set_refuses_an_empty_folder(tmp_path):
    r = subprocess.run([sys.executable, str(SCRIPTS / "make_compare_set.py"), str(tmp_path), "-o",
                        str(tmp_path / "out")], capture_output=True, text=True)
    assert r.returncode == 2 and "no audio files" in r.stderr and "Traceback" not in r.stderr


def _augment_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("augment_speech", SCRIPTS / "augment_speech.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _peak_hz(wav: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(wav * np.hanning(len(wav))))
    return float(np.argmax(spectrum) * sr / len(wav))


def test_tape_speed_raises_pitch_and_tempo_and_keeps_the_band_full():
    aug = _augment_module()
    sr = 48000
    t = np.arange(sr) / sr
    tone = 0.5 * np.sin(2 * np.pi * 1000 * t)
    fast = aug.tape_speed(tone, 1.25)
    assert abs(len(fast) - sr / 1.25) <= 1
    assert abs(_peak_hz(fast[1000:-1000], sr) - 1250) < 5
    # white noise sped up: its band still reaches the top (the filter's transition aside)
    noise = np.random.default_rng(0).standard_normal(sr)
    spec = np.abs(np.fft.rfft(aug.tape_speed(noise, 1.2))) ** 2
    freqs = np.fft.rfftfreq(int(round(sr / 1.2)), 1 / sr)
    top, mid = spec[(freqs > 21000) & (freqs < 22500)].mean(), spec[(freqs > 8000) & (freqs < 12000)].mean()
    assert 10 * np.log10(top / mid) > -3
    with pytest.raises(ValueError, match="empties the top band"):
        aug.tape_speed(tone, 0.9)


def test_tempo_stretch_keeps_pitch():
    aug = _augment_module()
    sr = 48000
    tone = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(sr) / sr)
    slow = aug.augment(tone, 1.0, 0.8)
    assert abs(len(slow) - sr / 0.8) <= aug.STRETCH_HOP
    assert abs(_peak_hz(slow[4000:-4000], sr) - 1000) < 5
    assert np.abs(slow).max() <= 0.5 + 1e-6


def test_augment_speech_writes_variants_with_their_draws(tmp_path):
    src = tmp_path / "speech"
    src.mkdir()
    sf.write(src / "a.flac", 0.1 * np.random.default_rng(0).standard_normal(48000).astype(np.float32), 48000)
    out = tmp_path / "aug"
    cmd = [sys.executable, str(SCRIPTS / "augment_speech.py"), str(src), "-o", str(out), "--variants", "2"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.glob("*.flac")) == ["a_aug0.flac", "a_aug1.flac"]
    assert sf.info(out / "a_aug0.flac").samplerate == 48000
    assert "| a_aug1.flac |" in (out / "README.md").read_text()
    first = sf.read(out / "a_aug0.flac")[0]
    assert subprocess.run(cmd + ["-o", str(tmp_path / "again")], capture_output=True).returncode == 0
    assert np.array_equal(first, sf.read(tmp_path / "again" / "a_aug0.flac")[0])  # seeded: the same files
    r = subprocess.run(cmd[:2] + [str(tmp_path / "none"), "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 2 and "no audio files" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run(cmd + ["--speed", "0.9:1.1"], capture_output=True, text=True)
    assert r.returncode == 2 and "--speed must be >= 1" in r.stderr
