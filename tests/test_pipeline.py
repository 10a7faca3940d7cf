"""The inference pipeline: length contract, faithful low band, exact chunking, files, edge cases."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import brickwall, make_checkpoint_file, noise, randomise_freq_mix

from specsr import chunking, pipeline, pretrained
from specsr.audio import resample, resampled_length
from specsr.checkpoint import load_checkpoint
from specsr.config import ModelConfig, STFTConfig, TaskConfig
from specsr.errors import SpecsrError
from specsr.metrics import metric_log_power, score, snr_db
from specsr.models import build_model
from specsr.pipeline import NothingToAddError, UpsampleWarning, load_model

TINY = ModelConfig(channels=(4, 8), freq_mix_layers=1)


@pytest.fixture(scope="module")
def ups(tmp_path_factory):
    path = make_checkpoint_file(tmp_path_factory.mktemp("models") / "tiny.pt")
    return load_model(path, device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def loud(tmp_path_factory):
    path = make_checkpoint_file(tmp_path_factory.mktemp("models") / "loud.pt", loud=True)
    return load_model(path, device="cpu", precision="fp32")


def lowres(seconds: float, sr_in: int, channels: int = 1, seed: int = 0, level: float = 0.1) -> np.ndarray:
    """Noise band-limited a little below ``sr_in / 2``, stored at ``sr_in``: ``[C, T]``."""
    return brickwall(noise(seconds, sr_in, channels, seed, level), sr_in, 0.45 * sr_in)


def quiet_upsample(ups, wav, sr_in, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UpsampleWarning)
        return ups.upsample(wav, sr_in, **kw)


@pytest.mark.parametrize("sr_in", [8000, 16000, 22050, 44100])
@pytest.mark.parametrize("extra", [0, 1, 7])
def test_output_length_is_exact(ups, sr_in, extra):
    x = lowres(0.3, sr_in)[:, : int(0.3 * sr_in) - 3 + extra]
    y, sr_out = quiet_upsample(ups, x, sr_in, n_iter=2)
    assert sr_out == 48000
    assert y.shape == (1, resampled_length(x.shape[1], sr_in, 48000))
    assert y.dtype == np.float32 and np.isfinite(y).all()


@pytest.mark.parametrize("sr_in", [8000, 16000, 24000])
def test_low_band_is_the_input(loud, sr_in):
    x = lowres(1.0, sr_in, seed=sr_in)
    y, _ = quiet_upsample(loud, x, sr_in, n_iter=8)
    base = resample(x, sr_in, 48000)
    choice = loud.choose_cutoff(x, sr_in)
    assert choice.source == "detected" and 0.4 * sr_in < choice.cutoff_hz <= 0.46 * sr_in
    k = int(choice.cutoff_hz / (48000 / 2048)) - 2  # below the crossfade
    lp_out, lp_in = metric_log_power(torch.from_numpy(y[0])), metric_log_power(torch.from_numpy(base[0]))
    lsd_low = torch.sqrt(((lp_out[:k] - lp_in[:k]) ** 2).mean(0)).mean()
    assert lsd_low < 0.02
    # the loud model really did add a band: the output is not just the input
    assert score(base[0], y[0], sr_in).lsd_hf > 1.0
    cut = choice.cutoff_hz * 0.97
    # the bound is set by the window's leakage from the bins at the seam (input, crossfade, roll-off rule)
    # into those just below it: 39.6 dB at 8 kHz, 46-50 dB at 16/24 kHz
    assert snr_db(torch.from_numpy(brickwall(base, 48000, cut)), torch.from_numpy(brickwall(y, 48000, cut))) > 38


@pytest.mark.parametrize("phase", ["fgla", "lowres"])
def test_chunked_equals_whole_file(loud, phase):
    x = lowres(2.5, 16000, channels=2, seed=3)
    whole, _ = loud.upsample(x, 16000, n_iter=6, phase=phase, chunk_seconds=100)
    chunked, _ = loud.upsample(x, 16000, n_iter=6, phase=phase, chunk_seconds=0.3)
    peak = np.abs(whole).max()
    assert peak > 0.1
    assert np.array_equal(whole, chunked)  # exact, not close
    lsd_whole = score(resample(x[0], 16000, 48000), whole[0], 16000).lsd
    lsd_chunked = score(resample(x[0], 16000, 48000), chunked[0], 16000).lsd
    assert abs(lsd_whole - lsd_chunked) <= 0.01


def test_chunked_equals_whole_file_deep_model_bf16(tmp_path):
    """Three levels (pooling stride 4), bf16 autocast, chunks that do not align with the stride."""
    cfg = ModelConfig(channels=(4, 8, 8), freq_mix_layers=1, norm="none")
    ups = load_model(make_checkpoint_file(tmp_path / "deep.pt", cfg=cfg, loud=True), device="cpu", precision="bf16")
    x = lowres(3.0, 12000, channels=1, seed=5)
    whole, _ = ups.upsample(x, 12000, n_iter=4, chunk_seconds=100)
    chunked, _ = ups.upsample(x, 12000, n_iter=4, chunk_seconds=0.37)
    assert np.array_equal(whole, chunked)


@pytest.mark.parametrize("mix_levels", [0, 2])
def test_receptive_field_bound(tmp_path, mix_levels):
    """A change in one input frame never reaches further than receptive_field_frames (frequency mixing at
    every level is pointwise in time: the same bound)."""
    cfg = ModelConfig(channels=(4, 8, 8), freq_mix_layers=1, norm="none", use_position=False,
                      freq_mix_levels=mix_levels)
    torch.manual_seed(1)
    model = build_model(cfg, STFTConfig()).eval()
    randomise_freq_mix(model, std=0.1)
    rf = model.receptive_field_frames
    assert rf == 2 + 9 * (2 ** (len(cfg.channels) - 1) - 1)  # the closed form for this layout
    x = torch.randn(1, cfg.n_inputs, 1025, 96)
    y0 = model(x)
    x[..., 48] += 10.0
    changed = ((model(x) - y0).abs().amax(dim=(0, 1, 2)) > 0).nonzero().flatten()
    assert changed.min() >= 48 - rf and changed.max() <= 48 + rf
    assert changed.max() - 48 > rf // 2  # and it is not a loose bound


def test_file_streaming_equals_in_memory(loud, tmp_path, write_wav):
    x = lowres(1.3, 22050, channels=2, seed=9)
    src = write_wav("in.wav", x, 22050, subtype="FLOAT")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UpsampleWarning)
        report = loud.upsample_file(src, tmp_path / "out.wav", float_output=True, n_iter=4, chunk_seconds=0.5)
    y_file, sr = sf.read(tmp_path / "out.wav", dtype="float32", always_2d=True)
    y_mem, _ = quiet_upsample(loud, x, 22050, n_iter=4, chunk_seconds=0.5)
    assert sr == 48000 and report.sr_out == 48000 and report.subtype == "FLOAT"
    assert np.array_equal(y_file.T, y_mem)  # the same numbers, streamed through a float file
    assert report.cutoff_source == "detected" and report.channels == 2
    assert report.duration_s == pytest.approx(x.shape[1] / 22050)
    assert report.rtf > 0 and report.model_seconds > 0 and report.phase_seconds > 0


@pytest.mark.parametrize("channels", [2, 6])
def test_multichannel(ups, channels):
    x = lowres(0.5, 16000, channels=channels)
    x[1] *= 0.1
    y, _ = ups.upsample(x, 16000, n_iter=2)
    assert y.shape == (channels, 24000)
    base = resample(x, 16000, 48000)
    for c in range(channels):  # channels stay separate
        assert snr_db(torch.from_numpy(brickwall(base[c], 48000, 6000)),
                      torch.from_numpy(brickwall(y[c], 48000, 6000))) > 30


def test_silent_input_gives_silent_output(ups, tmp_path, write_wav):
    y, _ = ups.upsample(np.zeros((2, 8000), np.float32), 16000)
    assert y.shape == (2, 24000) and np.isfinite(y).all() and not y.any()
    # silence inside a file: no invented band over digital zeros
    x = lowres(1.0, 16000)
    x[:, 4000:12000] = 0
    y, _ = quiet_upsample(ups, x, 16000, n_iter=2)
    assert np.abs(y[:, 16000:32000]).max() < 1e-6


def test_one_sample_file(ups, tmp_path, write_wav):
    src = write_wav("one.wav", np.array([[0.5]], np.float32), 8000)
    report = ups.upsample_file(src, tmp_path / "one_48k.wav")
    y, sr = sf.read(tmp_path / "one_48k.wav", always_2d=True)
    assert y.shape == (6, 1) and sr == 48000 and np.isfinite(y).all()
    assert report.duration_s == pytest.approx(1 / 8000)


@pytest.mark.parametrize("phase", ["fgla", "griffinlim", "lowres"])
def test_phase_modes(ups, phase):
    y, _ = quiet_upsample(ups, lowres(0.4, 8000), 8000, phase=phase, n_iter=3)
    assert np.isfinite(y).all() and y.shape == (1, 19200)


def test_loud_output_limits_the_new_band_only_where_needed(loud, tmp_path, write_wav):
    """A full-scale input: the sum passes full scale; the input's band keeps its exact level (no global
    scaling), the new band is turned down locally, and --float keeps everything."""
    x = lowres(1.2, 16000, level=0.02)
    burst = lowres(0.05, 16000, seed=3)[0]
    x[0, 8000:8000 + len(burst)] = 0.95 * burst / np.abs(burst).max()  # one transient near full scale
    src = write_wav("loud.wav", x, 16000, subtype="FLOAT")
    report = loud.upsample_file(src, tmp_path / "out.wav", n_iter=4, float_output=True)
    y_float, _ = sf.read(tmp_path / "out.wav", always_2d=True, dtype="float32")
    assert report.peak > 1.0 and report.limited_seconds == 0 and np.abs(y_float).max() > 1.0
    report = loud.upsample_file(src, tmp_path / "out16.flac", n_iter=4)
    y16, _ = sf.read(tmp_path / "out16.flac", always_2d=True, dtype="float32")
    assert report.subtype == "PCM_24" and np.abs(y16).max() <= 1.0
    assert 0 < report.limited_seconds < 0.1 and report.limit_db < 0 and "limited" in report.summary()
    # away from the transient the output is the float output, to the bit depth (no global scaling)
    far = np.r_[0:24000 - 2400, 26400 + 2400:y16.shape[0]]
    assert np.abs(y16[far] - y_float[far]).max() < 2 ** -22
def test_nothing_to_add(ups):
    x = noise(0.3, 48000)
    with pytest.raises(NothingToAddError, match="nothing to add"):
        ups.upsample(x, 48000)
    y, sr = ups.upsample(x, 48000, copy_full_band=True)
    assert np.array_equal(y, x)
    y, _ = ups.upsample(noise(0.3, 96000), 96000, copy_full_band=True)
    assert y.shape == (1, 14400)


def test_cutoff_choices(ups):
    x = lowres(0.5, 16000)
    with pytest.warns(UpsampleWarning, match="above the input's Nyquist"):
        ups.upsample(x, 16000, cutoff_hz=9000, n_iter=1)
    choice = ups.choose_cutoff(x, 16000, 5000)
    assert choice.source == "given" and choice.cutoff_hz == 5000
    full = noise(0.5, 16000)
    choice = ups.choose_cutoff(full, 16000)
    assert choice.source == "nominal" and choice.cutoff_hz == 8000
    with pytest.warns(UpsampleWarning, match="outside the range"):
        ups.upsample(lowres(0.5, 44100), 44100, n_iter=1)
    with pytest.raises(SpecsrError, match="positive"):
        ups.upsample(x, 16000, cutoff_hz=-3)


def test_bad_inputs(ups):
    with pytest.raises(SpecsrError, match="NaN"):
        ups.upsample(np.full((1, 100), np.nan, np.float32), 16000)
    with pytest.raises(SpecsrError, match="no samples"):
        ups.upsample(np.zeros((1, 0), np.float32), 16000)
    with pytest.raises(SpecsrError, match="phase"):
        ups.upsample(lowres(0.1, 16000), 16000, phase="magic")
    with pytest.raises(SpecsrError, match="sample rate"):
        ups.upsample(lowres(0.1, 16000), 0)


def test_bf16_stays_close_to_fp32(tmp_path):
    path = make_checkpoint_file(tmp_path / "m.pt", loud=True)
    x = lowres(1.0, 16000)
    y32, _ = load_model(path, device="cpu", precision="fp32").upsample(x, 16000, n_iter=4)
    y16, _ = load_model(path, device="cpu", precision="bf16").upsample(x, 16000, n_iter=4)
    ref = resample(x[0], 16000, 48000)
    assert abs(score(ref, y32[0], 16000).lsd - score(ref, y16[0], 16000).lsd) < 0.02


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_uses_bf16_only_with_native_cpu_kernels(tmp_path, monkeypatch, native):
    """On an AVX2-only CPU bf16 is emulated and far slower than fp32: ``auto`` must pick fp32 there."""
    import specsr.pipeline

    monkeypatch.setattr(specsr.pipeline, "cpu_has_fast_bf16", lambda: native)
    path = make_checkpoint_file(tmp_path / "m.pt")
    assert load_model(path, device="cpu").precision == ("bf16" if native else "fp32")
    assert load_model(path, device="cpu", precision="bf16").precision == "bf16"  # asked for: honoured


def test_load_model_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path / "none")
    missing = rf"no bundled model named '{pretrained.DEFAULT_MODEL}' \(bundled: none installed\)"
    with pytest.raises(SpecsrError, match=missing):
        load_model(None)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(SpecsrError, match="checkpoint"):
        load_model(junk)
    with pytest.raises(SpecsrError, match="no such checkpoint"):
        load_model(tmp_path / "missing.pt")
    with pytest.raises(SpecsrError, match="bundled"):
        load_model("some-name")


def test_bundled_registry_checks_the_checksum(tmp_path, monkeypatch):
    folder = tmp_path / "pretrained"
    folder.mkdir()
    path = make_checkpoint_file(folder / "specsr-48k.pt")
    entry = pretrained.BundledModel("specsr-48k", pretrained.file_sha256(path), "tiny test model")
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", folder)
    monkeypatch.setattr(pretrained, "REGISTRY", {"specsr-48k": entry})
    monkeypatch.setattr(pretrained, "DEFAULT_MODEL", "specsr-48k")
    assert pretrained.list_bundled_models() == [entry]
    assert load_model(None, device="cpu").name == "specsr-48k"
    assert load_model("specsr-48k", device="cpu").sr_out == 48000
    with open(path, "ab") as fh:  # one byte more: not the file that was shipped
        fh.write(b"\0")
    with pytest.raises(SpecsrError, match="checksum mismatch"):
        load_model("bundled")


def test_the_shipped_checkpoints_match_the_registry():
    for model in pretrained.REGISTRY.values():
        assert pretrained.file_sha256(model.path) == model.sha256, model.name


def test_failure_leaves_no_partial_output(ups, tmp_path, write_wav, monkeypatch):
    src = write_wav("in.wav", lowres(1.5, 16000), 16000)
    calls = []
    original = pipeline.Upsampler.predict_magnitude

    def flaky(self, known, cutoff_bins):
        calls.append(1)
        if len(calls) > 2:
            raise SpecsrError("simulated failure mid-file")
        return original(self, known, cutoff_bins)

    monkeypatch.setattr(pipeline.Upsampler, "predict_magnitude", flaky)
    monkeypatch.setattr(chunking, "MODEL_FRAME_BUDGET", 40)  # many small model calls
    with pytest.raises(SpecsrError, match="simulated"):
        ups.upsample_file(src, tmp_path / "out.wav", n_iter=2, chunk_seconds=0.2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]


def test_refuses_to_overwrite(ups, tmp_path, write_wav):
    src = write_wav("in.wav", lowres(0.2, 16000), 16000)
    (tmp_path / "out.wav").write_bytes(b"keep me")
    with pytest.raises(SpecsrError, match="exists already"):
        ups.upsample_file(src, tmp_path / "out.wav")
    assert (tmp_path / "out.wav").read_bytes() == b"keep me"
    ups.upsample_file(src, tmp_path / "out.wav", force=True, n_iter=1)
    assert sf.info(str(tmp_path / "out.wav")).samplerate == 48000


def test_long_file_cutoff_from_excerpts(ups, tmp_path, write_wav, monkeypatch):
    monkeypatch.setattr(pipeline, "LONG_FILE_SECONDS", 0.5)
    src = write_wav("long.flac", lowres(3.0, 16000), 16000)
    report = ups.upsample_file(src, tmp_path / "long_48k.flac", n_iter=1)
    assert report.cutoff_source == "detected" and 6400 < report.cutoff_hz <= 7300
    assert report.subtype == "PCM_16" and sf.info(str(tmp_path / "long_48k.flac")).frames == 144000


def test_unknown_or_missing_device(tmp_path):
    path = make_checkpoint_file(tmp_path / "m.pt")
    with pytest.raises(SpecsrError, match="unknown device"):
        load_model(path, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(SpecsrError, match="CUDA is not available"):
            load_model(path, device="cuda")
    with pytest.raises(SpecsrError, match="precision"):
        load_model(path, device="cpu", precision="fp8")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(tmp_path):
    path = make_checkpoint_file(tmp_path / "m.pt", loud=True)
    x = lowres(1.0, 16000, channels=2)
    y_cpu, _ = load_model(path, device="cpu", precision="fp32").upsample(x, 16000, n_iter=8)
    y_gpu, _ = load_model(path, device="cuda", precision="fp32").upsample(x, 16000, n_iter=8)
    ref = resample(x[0], 16000, 48000)
    assert abs(score(ref, y_cpu[0], 16000).lsd - score(ref, y_gpu[0], 16000).lsd) < 0.02


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Two tiny checkpoints like the default pair: ``narrow`` (cutoffs 2-12 kHz) and ``wide`` (2-22.05 kHz)."""
    d = tmp_path_factory.mktemp("pair")
    return (make_checkpoint_file(d / "narrow.pt", seed=1),
            make_checkpoint_file(d / "wide.pt", seed=2, task=TaskConfig(2000.0, 22050.0)))


def test_a_model_hands_cutoffs_above_its_range_to_its_wide_model(pair, tmp_path, write_wav):
    narrow, wide = pair
    both = pipeline.Upsampler(load_checkpoint(narrow), device="cpu", precision="fp32", wide_model=wide)
    alone, wide_alone = (load_model(p, device="cpu", precision="fp32") for p in pair)
    low, high = lowres(0.5, 16000), lowres(0.5, 32000)  # cutoffs 7.2 and 14.4 kHz
    assert both.choose_cutoff(low, 16000).model == "narrow" and both._wide is None  # not loaded until needed
    np.testing.assert_array_equal(both.upsample(low, 16000, n_iter=2)[0], alone.upsample(low, 16000, n_iter=2)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UpsampleWarning)  # in the wide model's range: no warning
        out, _ = both.upsample(high, 32000, n_iter=2)
    np.testing.assert_array_equal(out, wide_alone.upsample(high, 32000, n_iter=2)[0])
    with pytest.warns(UpsampleWarning, match="outside the range narrow was trained for"):
        alone.upsample(high, 32000, n_iter=2)
    report = both.upsample_file(write_wav("high.wav", high[0], 32000), tmp_path / "out.wav", n_iter=2)
    assert report.wide and report.model == "wide" and "above the cutoff: wide" in report.summary()
    report = both.upsample_file(write_wav("low.wav", low[0], 16000), tmp_path / "out16.wav", n_iter=2)
    assert not report.wide and report.model == "narrow" and "wide" not in report.summary()


def test_a_wide_model_with_another_stft_is_refused(pair, tmp_path):
    other = make_checkpoint_file(tmp_path / "other.pt", cfg=None)
    ckpt = torch.load(other, weights_only=True)
    ckpt["stft"]["hop_length"] = 256
    torch.save(ckpt, other)
    both = pipeline.Upsampler(load_checkpoint(pair[0]), device="cpu", wide_model=other)
    with pytest.raises(SpecsrError, match="STFT differs"):
        both.model_for(16000.0)


def test_only_the_unnamed_default_is_a_pair():
    if pretrained.WIDE_MODEL not in {m.name for m in pretrained.list_bundled_models()}:
        pytest.skip("the wide model is not installed")
    assert load_model(None, device="cpu").wide_model == pretrained.WIDE_MODEL
    assert load_model("bundled", device="cpu").wide_model == pretrained.WIDE_MODEL
    assert load_model(pretrained.DEFAULT_MODEL, device="cpu").wide_model is None
