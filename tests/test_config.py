"""Settings: every value checked against its annotation (one-line messages), defaults in one place,
round trips, and configs written by older versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from specsr.config import (
    INFERENCE_DEFAULTS,
    ConvertConfig,
    InferenceConfig,
    ModelConfig,
    RunConfig,
    TaskConfig,
    TrainConfig,
    load_toml,
    to_toml,
)
from specsr.errors import SpecsrError


@pytest.mark.parametrize(("tables", "message"), [
    ({"train": {"lr": "fast"}}, "[train] lr: expected a number (or left out), got 'fast'"),
    ({"train": {"amp": 1}}, "[train] amp: expected true or false, got 1"),
    ({"train": {"steps": 2.5}}, "[train] steps: expected a whole number, got 2.5"),
    ({"model": {"channels": 16}}, "[model] channels: expected a list of whole numbers, got 16"),
    ({"model": {"channels": [16, "a"]}}, "[model] channels: expected a list of whole numbers"),
    ({"stft": {"window": 3}}, "[stft] window: expected a string, got 3"),
    ({"task": {"min_cutoff_hz": "2k"}}, "[task] min_cutoff_hz: expected a number, got '2k'"),
    ({"train": {"gain_db_range": ["x", 1]}}, "[train] gain_db_range: expected a list of numbers"),
])
def test_wrong_types_fail_with_one_line_naming_the_key(tables, message):
    with pytest.raises(SpecsrError) as info:
        RunConfig.from_dict(tables)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_whole_numbers_are_accepted_where_numbers_are_expected():
    cfg = RunConfig.from_dict({"train": {"lr": 1, "gain_db_range": [-6, 0]}})
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)
    assert cfg.train.gain_db_range == (-6.0, 0.0)


def test_toml_round_trip(tmp_path):
    cfg = RunConfig(model=ModelConfig(channels=(4, 8)), train=TrainConfig(steps=7, amp=True))
    (tmp_path / "c.toml").write_text(to_toml(cfg.to_dict()))
    assert RunConfig.from_dict(load_toml(str(tmp_path / "c.toml"))) == cfg


def test_task_without_rates_and_older_tasks():
    with pytest.raises(SpecsrError, match=r"\[task\] sr_out and sr_in_choices are gone"):
        RunConfig.from_dict({"task": {"sr_out": 48000}})
    old = {"sr_out": 48000, "sr_in_choices": [8000, 16000], "min_cutoff_hz": 2000.0, "max_cutoff_hz": 12000.0}
    assert TaskConfig.from_saved(old, 48000) == TaskConfig()  # a checkpoint written by v0.1 loads
    with pytest.raises(SpecsrError, match="differs from the STFT's sample_rate"):
        TaskConfig.from_saved(old, 44100)


def test_inference_settings_one_place():
    assert TrainConfig().phase_iters == INFERENCE_DEFAULTS.n_iter
    s = INFERENCE_DEFAULTS.with_overrides(phase=None, n_iter=4, chunk_seconds=None)
    assert s == InferenceConfig(n_iter=4) and INFERENCE_DEFAULTS.with_overrides() is INFERENCE_DEFAULTS
    for bad, message in ((dict(phase="magic"), "phase must be one of fgla, griffinlim, lowres"),
                         (dict(n_iter=-1), "n_iter (phase iterations) must be >= 0"),
                         (dict(chunk_seconds=0.0), "chunk_seconds must be > 0"),
                         (dict(precision="fp8"), "precision must be one of auto, fp32, bf16"),
                         (dict(n_iter="8"), "[inference] n_iter: expected a whole number")):
        with pytest.raises(SpecsrError) as info:
            INFERENCE_DEFAULTS.with_overrides(**bad)
        assert str(info.value).startswith(message)


def test_convert_config_types():
    cfg = ConvertConfig(sr_in_range=[4000, 24000], filters="soxr", noise_floor_db=(-90, -60))
    assert cfg.sr_in_range == (4000, 24000) and cfg.filters == ("soxr",) and cfg.noise_floor_db == (-90.0, -60.0)
    with pytest.raises(SpecsrError, match=r"\[convert\] sr_in_range: expected a list of 2 whole numbers"):
        ConvertConfig(sr_in_range=(1, 2, 3))


def test_quality_presets_map_to_settings_and_flags_override_them():
    from specsr.cli.options import inference_settings
    from specsr.config import INFERENCE_DEFAULTS, QUALITY_PRESETS

    assert inference_settings(quality="default") == INFERENCE_DEFAULTS
    assert inference_settings(quality="fast").phase == "lowres"
    best = inference_settings(quality="best")
    assert best.phase == "fgla" and best.n_iter > INFERENCE_DEFAULTS.n_iter
    assert inference_settings(quality="best", n_iter=4).n_iter == 4  # an explicit flag wins
    assert inference_settings(quality="fast", phase="fgla").phase == "fgla"
    assert set(QUALITY_PRESETS) == {"fast", "default", "best"}
    with pytest.raises(SpecsrError, match="--quality must be one of fast, default, best, got 'ultra'"):
        inference_settings(quality="ultra")


def test_default_toml_lists_every_key_and_the_defaults():
    from pathlib import Path

    from specsr.config import RunConfig, load_toml

    data = load_toml(str(Path(__file__).resolve().parents[1] / "configs" / "default.toml"))
    defaults = RunConfig().to_dict()
    for table, values in defaults.items():
        listed = set(data[table]) | ({"lr"} if table == "train" else set())  # lr: unset means the default rule
        assert listed == set(values), table
    assert RunConfig.from_dict(data).degrade == RunConfig().degrade


def test_degrade_config_checks():
    from specsr.config import DegradeConfig

    assert DegradeConfig(families="soxr").families == ("soxr",)
    with pytest.raises(SpecsrError, match=r"\[degrade\] rate_prob must be in \[0, 1\], got 1.5"):
        DegradeConfig(rate_prob=1.5)
    with pytest.raises(SpecsrError, match=r"\[degrade\] iir_order: expected a list of 2 whole numbers"):
        DegradeConfig(iir_order=(4,))
    with pytest.raises(SpecsrError, match=r"\[degrade\] noise_floor_db must be \[low, high\] dBFS <= 0"):
        DegradeConfig(noise_floor_db=(-60.0, 10.0))


@pytest.mark.parametrize("field", ["level_weight", "band_level_weight", "texture_weight", "pattern_weight"])
def test_negative_loss_weights_are_refused(field):
    with pytest.raises(SpecsrError, match=field):
        TrainConfig(**{field: -0.5})
    assert getattr(TrainConfig(**{field: 2.0}), field) == 2.0


def test_pattern_scales_are_odd_widths():
    assert TrainConfig(pattern_smooth_bins=[9, 129]).pattern_smooth_bins == (9, 129)
    for bad in ([], [8], [1], [9, 64]):
        with pytest.raises(SpecsrError, match=r"\[train\] pattern_smooth_bins must be a non-empty list of odd"):
            TrainConfig(pattern_smooth_bins=bad)


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.toml")),
                         ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    """Each recipe in configs/ (the bundled models', the experiments', the wide partner's) is a valid config."""
    cfg = RunConfig.from_dict(load_toml(str(path)))
    assert cfg.task.min_cutoff_hz < cfg.task.max_cutoff_hz <= cfg.stft.sample_rate / 2
