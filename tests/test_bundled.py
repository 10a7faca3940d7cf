"""The bundled model: it loads offline by default, describes itself, and improves the example clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import specsr
from specsr.audio import read_audio
from specsr.metrics import score_signals, to_metric_signal
from specsr.pretrained import DEFAULT_MODEL, WIDE_MODEL, list_bundled_models

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_bundled_model_is_listed_and_self_describing():
    names = [m.name for m in list_bundled_models()]
    assert DEFAULT_MODEL in names
    ups = specsr.load_model(device="cpu")
    assert ups.sr_out == 48000 and ups.name == DEFAULT_MODEL
    assert ups.loaded.provenance.get("dataset_manifest_sha256")
    assert ups.loaded.model_cfg.use_position and ups.loaded.model_cfg.use_cutoff


@pytest.mark.slow
def test_bundled_alias_is_the_default_model():
    assert specsr.load_model("bundled").loaded.name == specsr.load_model().loaded.name == DEFAULT_MODEL


def test_bundled_model_beats_the_input_on_the_example():
    low, sr_in = read_audio(EXAMPLES / "p232_400_16k.wav")
    ref, _ = read_audio(EXAMPLES / "p232_400_48k_reference.flac")
    out, sr_out = specsr.load_model(device="cpu").upsample(low, sr_in, n_iter=8)
    assert out.shape == (1, ref.shape[1]) and np.isfinite(out).all()
    got, _ = score_signals(to_metric_signal(ref, 48000), to_metric_signal(out, sr_out), 16000)
    given, _ = score_signals(to_metric_signal(ref, 48000), to_metric_signal(low, sr_in), 16000)
    assert got.lsd < 0.6 * given.lsd
    assert got.lsd_lf < given.lsd_lf + 0.05  # the low band is kept


def test_cli_lists_bundled_models(cli_app):
    r = CliRunner().invoke(cli_app, ["upsample", "--list-models"])
    assert r.exit_code == 0 and DEFAULT_MODEL in r.output


def test_the_default_hands_a_16_khz_cutoff_to_the_wide_model():
    """An MP3-like input cut at 16 kHz is outside the default model's range: the default (no model named) hands
    it to the wide model, trained up to 22.05 kHz, without a warning; the default model asked for by name warns
    and names the wide one."""
    rng = np.random.default_rng(0)
    wav = (0.1 * rng.standard_normal((1, 32000))).astype(np.float32)
    named = specsr.load_model(DEFAULT_MODEL, device="cpu").choose_cutoff(wav, 32000)
    assert any(WIDE_MODEL in m for m in named.messages) and named.model == DEFAULT_MODEL
    default = specsr.load_model(device="cpu")
    choice = default.choose_cutoff(wav, 32000)
    assert choice.cutoff_hz == 16000 and choice.model == WIDE_MODEL
    assert not any("outside the range" in m for m in choice.messages)
    wide = default.model_for(choice.cutoff_hz)
    assert wide.name == WIDE_MODEL and wide.task.max_cutoff_hz == 22050.0
    assert default.model_for(8000.0) is default
