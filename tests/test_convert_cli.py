"""``specsr convert`` through the typer app: summary on success, one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import assert_one_line_error
from typer.testing import CliRunner

import specsr.cli.convert  # noqa: F401  (registers the command, as cli.main does)
from specsr.cli.app import app
from specsr.config import ConvertConfig
from specsr.dataset.reader import load_dataset_info

FAST = ["--segment-seconds", "0.5", "--variants", "1", "--workers", "1", "--quiet", "--spectrograms"]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for group in ("a", "b"):
        (tmp_path / "src" / group).mkdir(parents=True)
        sf.write(tmp_path / "src" / group / "x.wav", (0.1 * rng.standard_normal(57600)).astype(np.float32), 48000)
    (tmp_path / "src" / "a" / "broken.wav").write_bytes(b"RIFF not really")
    return tmp_path / "src"


def run(*args: str | Path):
    return CliRunner().invoke(app, ["convert", *map(str, args)])


def test_help_shows_the_defaults_of_convert_config() -> None:
    result = run("--help")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    d = ConvertConfig()
    for option, default in (("--sr-out", d.sr_out), ("--variants", d.variants), ("--shard-size", d.shard_size),
                            ("--segment-seconds", d.segment_seconds), ("--noise-floor-db", "-90:-60"),
                            ("--stft-preset", d.stft_preset), ("--min-content-hz", d.min_content_hz)):
        assert option in text and f"[default: {default}]" in text


def test_convert_prints_a_summary(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    result = run(source, "-o", out, "--noise-floor-db", "-80:-70", "--filters", "soxr,cheby1", *FAST)
    assert result.exit_code == 0, result.output
    assert "files: 2 used, 1 skipped (unreadable: 1)" in result.stdout
    assert "pairs: train 2, val 2" in result.stdout and "groups: train 1, val 1" in result.stdout
    assert "broken.wav" in result.stderr  # warned about
    info = load_dataset_info(out)
    assert info.settings["noise_floor_db"] == [-80.0, -70.0]
    assert {it["filter"] for it in info.items} <= {"soxr", "cheby1"}
    again = run(source, "-o", out, "--noise-floor-db=-80:-70", "--filters", "soxr,cheby1", *FAST)
    assert again.exit_code == 0 and "3 done before" in again.stdout


def test_convert_rate_range_and_no_noise(source: Path, tmp_path: Path) -> None:
    result = run(source, "-o", tmp_path / "ds", "--sr-in-range", "4000:6000", "--noise-floor-db", "off", *FAST)
    assert result.exit_code == 0, result.output
    items = load_dataset_info(tmp_path / "ds").items
    assert all(4000 <= it["sr_in"] <= 6000 and it["noise_floor_db"] is None for it in items)


def test_no_audio_in_source(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no audio here")
    assert_one_line_error(run(tmp_path / "empty", "-o", tmp_path / "ds", *FAST), "no audio files found")


def test_bad_options_and_folders(source: Path, tmp_path: Path) -> None:
    assert_one_line_error(run(source, "-o", tmp_path / "a", "--stft-preset", "nope", *FAST), "unknown STFT preset")
    assert_one_line_error(run(source, "-o", tmp_path / "b", "--sr-in", "8000,48000", *FAST), "input rates")
    assert_one_line_error(run(source, "-o", tmp_path / "c", "--sr-in-range", "4000", *FAST), "--sr-in-range")
    assert_one_line_error(run(source, "-o", tmp_path / "d", "--filters", "fir", *FAST), "unknown filter")
    assert_one_line_error(run(tmp_path / "missing", "-o", tmp_path / "e", *FAST), "no such file or folder")
    assert run(source, "-o", tmp_path / "ds", *FAST).exit_code == 0
    assert_one_line_error(run(source, "-o", tmp_path / "ds", "--seed", "5", *FAST), "seed")
    assert_one_line_error(run(source, "-o", source, *FAST), "not a specsr dataset")
