"""Real-world inputs (the seam, files that misstate their band, rates, levels, array layouts): what users
bring, on synthetic signals with known answers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from conftest import make_checkpoint_file, noise
from scipy import signal

from specsr.checkpoint import make_checkpoint, save_checkpoint
from specsr.config import ModelConfig, STFTConfig, TaskConfig
from specsr.metrics import METRIC_STFT, metric_log_power
from specsr.models import build_model
from specsr.pipeline import UpsampleWarning, load_model

BIN_HZ = METRIC_STFT.sample_rate / METRIC_STFT.n_fft


def upsample(ups, wav, sr, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UpsampleWarning)
        return ups.upsample(wav, sr, **kw)[0]


def band_db(wav: np.ndarray, lo_hz: float, hi_hz: float) -> float:
    """Mean power (dB) of the metric's spectrogram of mono ``wav`` at 48 kHz in ``[lo_hz, hi_hz)``."""
    logp = metric_log_power(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)))
    return float(10 * np.log10(np.mean(10 ** logp[int(lo_hz / BIN_HZ):int(hi_hz / BIN_HZ)].numpy())))


@pytest.fixture(scope="module")
def ups(tmp_path_factory):
    return load_model(make_checkpoint_file(tmp_path_factory.mktemp("m") / "tiny.pt", loud=True), device="cpu",
                      precision="fp32")


@pytest.fixture(scope="module")
def quiet(tmp_path_factory):
    """A model that predicts (almost) nothing: what the output holds above the seam is the input's."""
    cfg = ModelConfig(channels=(4, 8), freq_mix_layers=1)
    torch.manual_seed(0)
    model = build_model(cfg, STFTConfig())
    with torch.no_grad():
        model.out.weight.zero_()
        model.out.bias.fill_(-3.0)  # normalised -3: log10 power -16
    path = tmp_path_factory.mktemp("m") / "quiet.pt"
    save_checkpoint(make_checkpoint(model, cfg, STFTConfig(), TaskConfig(), name="quiet"), path)
    return load_model(path, device="cpu", precision="fp32")


@pytest.mark.parametrize("sr_in", [8000, 16000, 22050])
def test_native_low_rate_input_keeps_its_band_up_to_the_seam(ups, sr_in):
    """A native 16 kHz file used to lose its top 3 % (-30 dB) to the resampler's transition band."""
    x = noise(3.0, sr_in, seed=2)
    y = upsample(ups, x, sr_in, n_iter=2)
    ideal = signal.resample(x[0], y.shape[1])  # FFT interpolation: flat up to the Nyquist
    nyq = sr_in / 2
    for lo, hi in ((0.90, 0.95), (0.95, 0.985)):
        assert abs(band_db(y[0], lo * nyq, hi * nyq) - band_db(ideal, lo * nyq, hi * nyq)) < 0.5, (lo, hi)
    k = int(METRIC_STFT.n_bins * sr_in / METRIC_STFT.sample_rate)  # LSD-LF's band
    lp_y, lp_ideal = (metric_log_power(torch.from_numpy(v.astype(np.float32)))[:k - 2] for v in (y[0], ideal))
    assert float((lp_y - lp_ideal).abs().mean()) < 0.02


def test_the_inputs_roll_off_is_kept_where_the_model_adds_less(quiet):
    """An input stored at 48 kHz whose band rolls off gently: between the detected cutoff (where the fall
    starts) and the edge (where the content is gone) the input's real, attenuated content stays."""
    x = noise(3.0, 48000, seed=4)
    sos = signal.butter(6, 6000, fs=48000, output="sos")
    low = signal.sosfiltfilt(sos, x, axis=-1).astype(np.float32)
    choice = quiet.choose_cutoff(low, 48000)
    assert choice.source == "detected" and choice.keep_hz > choice.cutoff_hz + 500
    y = upsample(quiet, low, 48000, n_iter=4)
    lo, hi = choice.cutoff_hz + 200, choice.cutoff_hz + 500
    assert abs(band_db(y[0], lo, hi) - band_db(low[0], lo, hi)) < 1.0


def test_a_loud_prediction_is_held_to_the_fall_the_roll_off_measured(ups):
    """In the roll-off the prediction may raise the input by no more than the input's long-term level has
    fallen there below its level at the cutoff (plus 3 dB): a model that predicts far too much (15 dB over
    the input just above the cutoff without the ceiling) is held to that, and never goes below the input."""
    x = noise(3.0, 48000, seed=4)
    low = signal.sosfiltfilt(signal.butter(6, 6000, fs=48000, output="sos"), x, axis=-1).astype(np.float32)
    choice = ups.choose_cutoff(low, 48000)
    assert choice.fall_db and choice.fall_db[0][0] == pytest.approx(choice.cutoff_hz, abs=50)
    falls = [f for _, f in choice.fall_db]
    assert falls == sorted(falls) and falls[0] == 0.0 and falls[-1] >= 20  # 0 at the cutoff, never less further up
    y = upsample(ups, low, 48000, n_iter=4)
    for lo in np.arange(choice.cutoff_hz + 100, choice.keep_hz - 400, 400):
        hi = lo + 300
        raised = band_db(y[0], lo, hi) - band_db(low[0], lo, hi)
        allowed = float(np.interp(hi, *zip(*choice.fall_db, strict=True))) + 3.0
        assert -1.0 < raised < allowed + 1.0, (lo, raised, allowed)
    above = choice.keep_hz + 500
    assert band_db(y[0], above, above + 1000) - band_db(low[0], above, above + 1000) > 30  # the model is loud


def test_the_api_takes_soundfile_layout_integers_and_tensors(ups):
    x = noise(0.5, 16000, channels=2, seed=5)  # [C, T]
    y, sr = ups.upsample(x, 16000, n_iter=1)
    assert sr == 48000 and y.shape == (2, 24000)
    y_tc, _ = ups.upsample(np.ascontiguousarray(x.T), 16000, n_iter=1)  # as soundfile.read gives it
    assert y_tc.shape == (24000, 2) and np.array_equal(y_tc.T, y)
    four, _ = ups.upsample(noise(1000 / 16000, 16000, channels=4).T, 16000, n_iter=1)
    assert four.shape == (3000, 4)  # it used to come back as (1000, 12)
    pcm = np.round(x.T * 32767).astype(np.int16)
    y16, _ = ups.upsample(pcm, 16000, n_iter=1)
    # scaled to ±1 like the float input (int16 used to come back at 32767 times the level)
    assert np.abs(y16 - y_tc).max() < 1e-3 * np.abs(y_tc).max()
    mono, _ = ups.upsample(x[0], 16000, n_iter=1)
    assert mono.shape == (24000,)
    t, _ = ups.upsample(torch.from_numpy(x), 16000, n_iter=1)
    assert isinstance(t, torch.Tensor) and t.device == torch.device("cpu") and torch.equal(t, torch.from_numpy(y))


def test_api_errors_say_how_to_pass_audio_without_cli_flags(ups):
    from specsr.errors import SpecsrError

    with pytest.raises(SpecsrError, match=r"cannot tell channels from time .* \[C, T\] or \[T, C\]"):
        ups.upsample(np.zeros((40, 50), np.float32), 16000)
    with pytest.raises(SpecsrError, match="numbers"):
        ups.upsample(np.array([["a", "b"]]), 16000)
    if not torch.cuda.is_available():
        with pytest.raises(SpecsrError) as info:
            load_model(None, device="cuda")
        assert "--" not in str(info.value)


def test_the_package_lists_its_api():
    import specsr

    for name in specsr.__all__:
        assert getattr(specsr, name) is not None
    assert {"load_model", "Upsampler", "InferenceConfig", "SpecsrError", "NothingToAddError"} <= set(specsr.__all__)


def test_a_dc_offset_changes_neither_the_prediction_nor_the_plot_scale(ups, tmp_path):
    from specsr.plotting import colour_limits, spectrogram_db

    x = noise(1.0, 16000, seed=6)
    y, _ = ups.upsample(x, 16000, n_iter=4)
    y_dc, _ = ups.upsample(x + 0.3, 16000, n_iter=4)
    new_band = (10000, 23000)
    assert abs(band_db(y_dc[0], *new_band) - band_db(y[0], *new_band)) < 0.05  # was 1.6 dB down
    assert abs(float(y_dc.mean() - y.mean()) - 0.3) < 0.01  # the offset is kept: it is the input's
    panels = [spectrogram_db(v, 48000) for v in (y, y_dc)]
    assert colour_limits(panels[:1]) == colour_limits(panels[1:])


@pytest.mark.parametrize("kind", ["hold", "zeros", "linear"])
def test_files_that_lie_about_their_band_are_extended_from_their_true_edge(quiet, kind):
    """Upsampled without an anti-imaging filter: mirror images above the old Nyquist used to make the file
    'full band' (nothing to add). The true edge is found and the images are replaced."""
    sr_old, up = 8000, 6
    rng = np.random.default_rng(7)  # a band with structure, as recordings have: 300 partials below 3.8 kHz
    t = np.arange(3 * sr_old) / sr_old
    freqs, amps = rng.uniform(50, 3800, 300), rng.lognormal(0, 1, 300)
    x = (np.sin(2 * np.pi * freqs[:, None] * t + rng.uniform(0, 6.3, (300, 1))) * amps[:, None]).sum(0)
    x = 0.3 * x / np.abs(x).max()
    if kind == "hold":
        y = np.repeat(x, up)
    elif kind == "zeros":
        y = np.zeros(len(x) * up)
        y[::up] = x * up
    else:
        y = np.interp(np.arange(len(x) * up) / up, np.arange(len(x)), x)
    y = y.astype(np.float32)[None]
    choice = quiet.choose_cutoff(y, 48000)
    assert not choice.nothing_to_add and any("mirror images" in m for m in choice.messages)
    if kind == "linear":  # sinc² buries the first image: the edge is found at the second fold (8 kHz) only
        return
    assert abs(choice.keep_hz - sr_old / 2) < 1 and choice.cutoff_hz <= sr_old / 2 + 10
    assert any("mirror images" in m for m in choice.messages)
    out = upsample(quiet, y, 48000, n_iter=2)
    images = (1.2 * sr_old / 2, 1.9 * sr_old / 2)
    assert band_db(out[0], *images) < band_db(y[0], *images) - 40  # the images are gone
    assert abs(band_db(out[0], 500, 3500) - band_db(y[0], 500, 3500)) < 0.1  # the band is kept
    assert not quiet.choose_cutoff(signal.resample_poly(x, up, 1)[None].astype(np.float32), 48000).messages


def test_natural_full_band_audio_has_no_images():
    from specsr.cutoff import detect_cutoff

    for seed in range(5):
        assert not detect_cutoff(noise(2.0, 48000, seed=seed), 48000).images
