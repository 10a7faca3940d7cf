"""The repository's data scripts (scripts/): what they write is what specsr reads."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from specsr.evaluate import discover_clips

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def test_make_compare_set_writes_a_compare_layout(tmp_path):
    src = tmp_path / "clips"
    src.mkdir()
    rng = np.random.default_rng(0)
    sf.write(src / "a.flac", 0.1 * rng.standard_normal(44100).astype(np.float32), 44100)  # resampled to 48 kHz
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
        assert sr_truth == 48000 and sr_low == clip.sr_in and truth.ndim == 1
        assert abs(len(low) - len(truth) * clip.sr_in / 48000) <= 1


def test_make_compare_set_refuses_an_empty_folder(tmp_path):
    r = subprocess.run([sys.executable, str(SCRIPTS / "make_compare_set.py"), str(tmp_path), "-o",
                        str(tmp_path / "out")], capture_output=True, text=True)
    assert r.returncode == 2 and "no audio files" in r.stderr and "Traceback" not in r.stderr
