"""``specsr plot`` and specsr.plotting: a PNG with the panels, the cutoff and the metrics."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import brickwall, noise
from typer.testing import CliRunner

import specsr.cli.plot  # noqa: F401  (registers the command, as cli.main does)
from specsr.audio import resample
from specsr.cli.app import app
from specsr.errors import SpecsrError
from specsr.plotting import plot_files, spectrogram_db

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def trio(write_wav):
    truth = noise(1.0, 48000, seed=4)
    low = resample(brickwall(truth, 48000, 3900), 48000, 8000)
    up = resample(low, 8000, 48000) + noise(1.0, 48000, seed=5, level=0.02)  # an "output": input plus noise
    return (write_wav("in.wav", low, 8000), write_wav("up.wav", up, 48000), write_wav("truth.wav", truth, 48000))


def test_plot_files_with_reference(trio, tmp_path):
    src, up, truth = trio
    summary = plot_files(src, up, reference_path=truth, out_path=tmp_path / "fig.png")
    data = (tmp_path / "fig.png").read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 20_000
    assert summary.cutoff_detected and 3600 < summary.cutoff_hz < 4001
    assert set(summary.scores) == {"input", "output"}
    assert summary.sr_in == 8000  # the one rule: the file's own rate (it used to be twice the detected cutoff)
    assert summary.scores["input"]["lsd_lf"] < 1.0 < summary.scores["input"]["lsd_hf"]
    assert plot_files(src, up, reference_path=truth, out_path=tmp_path / "f2.png", sr_in=7800).sr_in == 7800
    with pytest.raises(SpecsrError, match="stored at 48000 Hz: give the rate it was made at"):
        plot_files(up, reference_path=truth, out_path=tmp_path / "f3.png")
    with pytest.raises(SpecsrError, match="exists already"):
        plot_files(src, out_path=tmp_path / "fig.png")
    plot_files(src, out_path=tmp_path / "fig.png", force=True, freq_scale="log")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f2.png", "fig.png", "in.wav", "truth.wav", "up.wav"]


def test_plot_cli(trio, tmp_path):
    src, up, truth = trio
    result = CliRunner().invoke(app, ["plot", str(src), str(up), "--reference", str(truth), "-o",
                                      str(tmp_path / "cmp.png"), "--sr-in", "8000"])
    assert result.exit_code == 0, result.stderr
    assert "LSD" in result.stdout and (tmp_path / "cmp.png").read_bytes()[:8] == PNG_MAGIC
    result = CliRunner().invoke(app, ["plot", str(src), "-o", str(tmp_path / "cmp.png")])
    assert result.exit_code == 1 and "--force" in result.stderr and "Traceback" not in result.stderr
    result = CliRunner().invoke(app, ["plot", str(src), "-o", str(tmp_path / "cmp.jpg")])
    assert result.exit_code == 1 and "png" in result.stderr.lower()
    result = CliRunner().invoke(app, ["plot", str(src), "-o", str(tmp_path / "x.png"), "--freq-scale", "mel"])
    assert result.exit_code == 1 and "--freq-scale" in result.stderr


def test_spectrogram_levels():
    sr = 16000
    t = np.arange(sr) / sr
    f0 = spectrogram_db(np.zeros((1, sr), np.float32), sr).freqs_hz[43]  # a bin centre near 1 kHz
    panel = spectrogram_db(np.sin(2 * np.pi * f0 * t)[None].astype(np.float32), sr)
    k = int(np.argmax(panel.level_db[:, 5]))
    assert k == 43
    assert panel.level_db[k, 5] == pytest.approx(0.0, abs=0.5)  # a full-scale sine is 0 dB
    assert panel.freqs_hz[1] == pytest.approx(48000 / 2048, rel=0.01)  # the same resolution at every rate


def test_matplotlib_is_not_imported_for_upsample():
    code = ("import sys, specsr, specsr.pipeline, specsr.cli.upsample, specsr.cli.plot, specsr.plotting; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_plotting_leaves_matplotlib_global_state_alone(trio, tmp_path):
    """No ``matplotlib.use``, no pyplot: a notebook's backend and figure list stay as they were."""
    code = ("import sys, matplotlib; matplotlib.use('svg'); "
            "from specsr.plotting import plot_files, plot_thumbnail, spectrogram_db; "
            "import numpy as np; "
            "plot_files(sys.argv[1], sys.argv[2], reference_path=sys.argv[3], out_path=sys.argv[4]); "
            "p = spectrogram_db(np.zeros((1, 4800), np.float32), 48000); "
            "plot_thumbnail(p, sys.argv[5], vmin_db=-100, vmax_db=0, cutoff_hz=4000); "
            "print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, *map(str, trio), str(tmp_path / "fig.png"),
                          str(tmp_path / "thumb.png")], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["svg", "False"]
    assert (tmp_path / "fig.png").read_bytes()[:8] == PNG_MAGIC
    assert (tmp_path / "thumb.png").read_bytes()[:8] == PNG_MAGIC


def test_long_file_hop_longer_than_the_window():
    sr = 8000  # n_fft 342 at 8 kHz; 80 s in 1600 columns is a hop of 400
    panel = spectrogram_db(noise(80.0, sr, seed=1), sr)
    assert panel.level_db.shape == (172, 1601)
    assert panel.times_s[1] == pytest.approx(400 / sr)


def test_channels_option_draws_a_row_per_channel(tmp_path):
    from PIL import Image

    sr = 16000
    rng = np.random.default_rng(0)
    stereo = np.stack([0.1 * rng.standard_normal(sr), np.zeros(sr)]).astype(np.float32)
    src = tmp_path / "st.wav"
    sf.write(src, stereo.T, sr)
    one = plot_files(src, out_path=tmp_path / "mean.png")
    two = plot_files(src, src, out_path=tmp_path / "rows.png", channels=True)
    h_one = Image.open(one.out_path).size[1]
    w_two, h_two = Image.open(two.out_path).size
    assert h_two > 1.7 * h_one  # two rows
    assert w_two > 1.7 * Image.open(one.out_path).size[0]  # two files side by side
    from specsr.plotting import spectrogram_db

    left, right = spectrogram_db(stereo, sr, channel=0), spectrogram_db(stereo, sr, channel=1)
    assert left.level_db.mean() > right.level_db.mean() + 40  # each row is its own channel, not the mean


def test_plot_shows_a_dataset_items_images(tmp_path):
    from conftest import assert_one_line_error

    from specsr.dataset import build_dataset

    src = tmp_path / "src"
    for g in ("a", "b"):
        (src / g).mkdir(parents=True)
        sf.write(src / g / "x.wav", noise(1.0, 48000)[0], 48000)
    build_dataset([src], tmp_path / "audio", segment_seconds=0.5, workers=1, progress=False)
    build_dataset([src], tmp_path / "spec", segment_seconds=0.5, workers=1, progress=False, spectrograms=True,
                  variants=1)
    for kind in ("audio", "spec"):
        out = tmp_path / f"{kind}.png"
        result = CliRunner().invoke(app, ["plot", str(tmp_path / kind), "--item", "1", "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "cutoff" in result.output
    result = CliRunner().invoke(app, ["plot", str(tmp_path / "audio"), "--item", "99", "-o", str(tmp_path / "x.png")])
    assert_one_line_error(result, "--item 99: not an index below")
    result = CliRunner().invoke(app, ["plot", str(src / "a" / "x.wav"), "--item", "1", "-o", str(tmp_path / "y.png")])
    assert_one_line_error(result, "--item is for a dataset folder")
