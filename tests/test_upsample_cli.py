"""``specsr upsample`` end to end through typer's CliRunner, with a tiny random-init model."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import assert_one_line_error, brickwall, make_checkpoint_file, noise
from typer.testing import CliRunner

import specsr.cli.plot  # noqa: F401  (registers the commands, as cli.main does)
import specsr.cli.upsample  # noqa: F401
from specsr import pipeline, pretrained
from specsr.batch import RESULTS_NAME, ResultsLog, shard_from_env, take_shard
from specsr.cli.app import BUG_REPORT, app


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return make_checkpoint_file(tmp_path_factory.mktemp("models") / "tiny.pt")


@pytest.fixture(scope="module")
def loud_model_path(tmp_path_factory) -> Path:
    return make_checkpoint_file(tmp_path_factory.mktemp("models") / "loud.pt", loud=True)


def lowres(seconds: float, sr: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    return brickwall(noise(seconds, sr, channels, seed), sr, 0.45 * sr)


def run(*args):
    return CliRunner().invoke(app, ["upsample", *map(str, args)])



def test_default_output_name_and_summary(model_path, write_wav, tmp_path):
    src = write_wav("voice.wav", lowres(0.5, 16000), 16000)
    result = run(src, "--model", model_path, "--n-iter", 2)
    assert result.exit_code == 0, result.output + result.stderr
    out = tmp_path / "voice_48k.wav"
    info = sf.info(str(out))
    assert info.samplerate == 48000 and info.frames == 24000 and info.subtype == "PCM_16"
    assert "RTF" in result.stdout and "cutoff 7.2" in result.stdout and "detected" in result.stdout
    # 22.05 kHz names: the rate with :g
    src = write_wav("cd.wav", lowres(0.2, 22050), 22050)
    assert run(src, "--model", model_path, "--n-iter", 1, "-q").exit_code == 0
    assert (tmp_path / "cd_48k.wav").exists()


def test_refuses_to_overwrite_and_force(model_path, write_wav, tmp_path):
    src = write_wav("a.wav", lowres(0.3, 8000), 8000)
    out = tmp_path / "result.wav"
    out.write_bytes(b"precious")
    result = run(src, "-o", out, "--model", model_path)
    assert_one_line_error(result, "exists already", "--force")
    assert out.read_bytes() == b"precious"
    result = run(src, "-o", out, "--model", model_path, "--force", "--n-iter", 1)
    assert result.exit_code == 0, result.stderr
    assert sf.info(str(out)).samplerate == 48000


def test_folder_batch_with_a_corrupt_file(model_path, write_wav, tmp_path):
    write_wav("in/a.wav", lowres(0.3, 16000), 16000)
    write_wav("in/sub/b.flac", lowres(0.3, 8000, seed=1), 8000)
    (tmp_path / "in" / "sub" / "broken.wav").write_bytes(b"RIFF\x00\x00garbage")
    result = run(tmp_path / "in", "-o", tmp_path / "out", "--model", model_path, "--n-iter", 1)
    assert result.exit_code == 1
    assert "Traceback" not in result.output + result.stderr
    assert (tmp_path / "out" / "a.wav").exists() and (tmp_path / "out" / "sub" / "b.flac").exists()
    assert not (tmp_path / "out" / "sub" / "broken.wav").exists()
    errors = [line for line in result.stderr.splitlines() if line.startswith("specsr: error:")]
    assert len(errors) == 1 and "broken.wav" in errors[0]
    assert "2 upsampled, 0 skipped, 1 failed" in result.stderr
    assert sf.info(str(tmp_path / "out" / "sub" / "b.flac")).samplerate == 48000


def test_missing_model_names_the_option(write_wav, tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path / "no-models")
    src = write_wav("a.wav", lowres(0.2, 16000), 16000)
    assert_one_line_error(run(src), "no bundled model", "checkpoint path")
    assert not (tmp_path / "a_48k.wav").exists()


def test_non_checkpoint_model(write_wav, tmp_path):
    src = write_wav("a.wav", lowres(0.2, 16000), 16000)
    junk = tmp_path / "weights.pt"
    junk.write_text("hello")
    assert_one_line_error(run(src, "--model", junk), "weights.pt", "checkpoint")
    audio_as_model = write_wav("m.wav", lowres(0.1, 16000), 16000)
    assert_one_line_error(run(src, "--model", audio_as_model), "checkpoint")


def test_a_bug_keeps_its_traceback_and_leaves_no_partial_file(model_path, write_wav, tmp_path, monkeypatch):
    src = write_wav("a.wav", lowres(1.0, 16000), 16000)

    def boom(self, known, cutoff_bins):
        raise ZeroDivisionError("simulated bug inside the model")

    monkeypatch.setattr(pipeline.Upsampler, "predict_magnitude", boom)
    result = run(src, "--model", model_path, "--chunk-seconds", 0.3)
    assert result.exit_code == 2
    assert "Traceback" in result.stderr and "ZeroDivisionError: simulated bug" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"specsr: error: {BUG_REPORT}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]


def test_out_of_memory_is_one_line(model_path, write_wav, tmp_path, monkeypatch):
    src = write_wav("a.wav", lowres(1.0, 16000), 16000)

    def oom(self, known, cutoff_bins):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(pipeline.Upsampler, "predict_magnitude", oom)
    assert_one_line_error(run(src, "--model", model_path), "out of memory", "--chunk-seconds")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]


def test_nothing_to_add_and_copy_full_band(model_path, write_wav, tmp_path):
    src = write_wav("full.wav", noise(0.3, 48000), 48000)
    result = run(src, "--model", model_path)
    assert result.exit_code == 0 and "specsr: skipped: " in result.stderr and "nothing to add" in result.stderr
    assert "0 upsampled, 1 skipped, 0 failed" in result.stdout
    assert "Traceback" not in result.output + result.stderr
    assert not (tmp_path / "full_48k.wav").exists()
    result = run(src, "--model", model_path, "--copy-full-band")
    assert result.exit_code == 0, result.stderr
    assert sf.info(str(tmp_path / "full_48k.wav")).frames == 14400


def test_clipping_is_reported(loud_model_path, write_wav, tmp_path):
    x = lowres(0.5, 16000)
    src = write_wav("loud.wav", (0.99 * x / np.abs(x).max()).astype(np.float32), 16000)
    result = run(src, "--model", loud_model_path, "--n-iter", 2)
    assert result.exit_code == 0, result.stderr
    assert "new band was turned down" in result.stderr and "--float" in result.stderr
    y, _ = sf.read(tmp_path / "loud_48k.wav")
    assert np.abs(y).max() <= 1.0


def test_options_are_checked(model_path, write_wav, tmp_path):
    src = write_wav("a.wav", lowres(0.2, 16000), 16000)
    assert_one_line_error(run(src, "--model", model_path, "--sr-out", 88200), "--sr-out", "88200", "48000")
    assert_one_line_error(run(src, "--model", model_path, "--cutoff-hz", "lots"), "--cutoff-hz")
    assert_one_line_error(run(src, "--model", model_path, "--phase", "magic"), "--phase")
    assert_one_line_error(run(tmp_path / "nope.wav", "--model", model_path), "nope.wav")
    assert_one_line_error(run("--model", model_path), "INPUT")
    result = run(src, "--model", model_path, "--cutoff-hz", "5k", "--sr-out", 48000, "--phase", "lowres", "-q")
    assert result.exit_code == 0 and result.stdout == ""


def test_list_models(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path)
    result = run("--list-models")
    assert result.exit_code == 0 and "no bundled models" in result.stdout
    path = make_checkpoint_file(tmp_path / "specsr-48k.pt")
    monkeypatch.setattr(pretrained, "REGISTRY", {"specsr-48k": pretrained.BundledModel(
        "specsr-48k", pretrained.file_sha256(path), "test model")})
    result = run("--list-models")
    assert result.exit_code == 0 and "specsr-48k\ttest model" in result.stdout


def test_plot_option_writes_png(model_path, write_wav, tmp_path):
    src = write_wav("a.wav", lowres(0.5, 16000), 16000)
    result = run(src, "-o", tmp_path / "up.wav", "--model", model_path, "--n-iter", 1, "--plot")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "up.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("sr", [88200, 96000, 192000])
def test_rates_above_48k_are_judged_like_48k(model_path, write_wav, tmp_path, sr):
    """A full-band 96 kHz file has nothing to add (it used to 'predict' 22.9-24 kHz); a 16 kHz band in it does."""
    full = write_wav(f"full{sr}.wav", noise(0.4, sr), sr)
    result = run(full, "--model", model_path, "-q")
    assert result.exit_code == 0 and "nothing to add" in result.stderr
    assert not (tmp_path / f"full{sr}_48k.wav").exists()
    narrow = write_wav(f"narrow{sr}.wav", brickwall(noise(0.4, sr), sr, 8000), sr)
    result = run(narrow, "--model", model_path, "--n-iter", 1)
    assert result.exit_code == 0, result.stderr
    assert "warning" not in result.stderr  # no out-of-range cutoff
    assert sf.info(str(tmp_path / f"narrow{sr}_48k.wav")).samplerate == 48000


def test_a_rerun_on_a_folder_does_not_take_its_own_outputs(model_path, write_wav, tmp_path):
    write_wav("in/a.wav", lowres(0.3, 16000), 16000)
    write_wav("in/sub/b.flac", lowres(0.3, 16000, seed=1), 16000)
    write_wav("in/c_48k.wav", lowres(0.3, 16000, seed=2), 16000)  # no c.* beside it: a source of its own
    first = run(tmp_path / "in", "--model", model_path, "--n-iter", 1)
    assert first.exit_code == 0 and "3 upsampled, 0 skipped, 0 failed" in first.stdout
    again = run(tmp_path / "in", "--model", model_path, "--n-iter", 1, "--force")
    assert again.exit_code == 0 and "3 upsampled, 0 skipped, 0 failed" in again.stdout
    assert not (tmp_path / "in" / "a_48k_48k.wav").exists()
    inside = run(tmp_path / "in", "-o", tmp_path / "in" / "up", "--model", model_path, "--n-iter", 1)
    again = run(tmp_path / "in", "-o", tmp_path / "in" / "up", "--model", model_path, "--n-iter", 1, "-f")
    assert inside.exit_code == again.exit_code == 0 and "3 upsampled, 0 skipped" in again.stdout
    assert not (tmp_path / "in" / "up" / "up").exists()


def test_output_paths_follow_one_rule(model_path, write_wav, tmp_path):
    a = write_wav("a.wav", lowres(0.3, 16000), 16000)
    b = write_wav("b.wav", lowres(0.3, 16000, seed=1), 16000)
    assert_one_line_error(run(a, b, "-o", tmp_path / "out.wav", "--model", model_path), "output folder")
    assert not (tmp_path / "out.wav").exists()
    # a missing folder is created for one file as for several
    assert run(a, "-o", tmp_path / "new" / "x.wav", "--model", model_path, "--n-iter", 1).exit_code == 0
    assert (tmp_path / "new" / "x.wav").is_file()
    assert run(a, b, "-o", tmp_path / "new2", "--model", model_path, "--n-iter", 1).exit_code == 0
    assert (tmp_path / "new2" / "b.wav").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_terminated_run_leaves_no_debris(model_path, write_wav, tmp_path, sig):
    """`kill -TERM` (or `timeout`) used to leave a hidden .float.w64 of tens of MB in the output folder."""
    src = write_wav("long.wav", lowres(30.0, 16000), 16000)
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "specsr", "upsample", str(src), "-o", str(out / "long.wav"),
                             "--model", str(model_path), "--chunk-seconds", "1", "-q"],
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not any(out.iterdir()) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)  # until the output's temp files exist
    assert proc.poll() is None, "finished before it could be stopped"
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig
    assert stderr.strip().splitlines()[-1].startswith(f"specsr: error: stopped by {sig.name}")
    assert "Traceback" not in stderr
    assert list(out.iterdir()) == []


# ------------------------------------------------------------------------------ corpus runs


def _corpus(write_wav, n: int = 5) -> list[Path]:
    return [write_wav(f"corpus/{'sub/' if i % 2 else ''}f{i}.wav", lowres(0.2, 16000, seed=i), 16000)
            for i in range(n)]


def test_two_shards_cover_every_file_exactly_once(model_path, write_wav, tmp_path):
    files = _corpus(write_wav)
    outs = []
    for k in range(2):
        result = run(tmp_path / "corpus", "-o", tmp_path / "out", "--shard", f"{k}/2", "--model", model_path,
                     "--n-iter", 1, "-q")
        assert result.exit_code == 0, result.output + result.stderr
        log = ResultsLog.read(tmp_path / "out" / RESULTS_NAME)
        outs.append({r["input"] for r in log} - set().union(*outs) if outs else {r["input"] for r in log})
    assert outs[0].isdisjoint(outs[1]) and outs[0] | outs[1] == {str(f) for f in files}
    assert len(outs[0]) == 3 and len(outs[1]) == 2  # sorted by path, every 2nd from the k-th
    written = sorted(p.relative_to(tmp_path / "out") for p in (tmp_path / "out").rglob("*.wav"))
    assert written == sorted(f.relative_to(tmp_path / "corpus") for f in files)


def test_shard_from_the_launchers_environment():
    assert shard_from_env({"RANK": "1", "WORLD_SIZE": "4"}) == (1, 4)
    assert shard_from_env({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "1",
                           "SLURM_ARRAY_TASK_COUNT": "3"}) == (2, 3)
    assert shard_from_env({"JOB_COMPLETION_INDEX": "0", "SPECSR_NUM_SHARDS": "2"}) == (0, 2)
    assert shard_from_env({"SPECSR_SHARD": "2/5", "RANK": "0", "WORLD_SIZE": "1"}) == (2, 5)  # ours first
    assert shard_from_env({}) is None
    assert take_shard(["c", "a", "b", "d"], (1, 2)) == ["b", "d"]


def test_env_shard_is_used_without_the_option(model_path, write_wav, tmp_path, monkeypatch):
    _corpus(write_wav, 4)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "2")
    result = run(tmp_path / "corpus", "-o", tmp_path / "out", "--model", model_path, "--n-iter", 1)
    assert result.exit_code == 0, result.output + result.stderr
    assert "shard 1/2: 2 of 4 files" in result.stderr
    assert len(list((tmp_path / "out").rglob("*.wav"))) == 2


@pytest.mark.parametrize("spec", ["3/2", "a/b", "1", "-1/2", "0/0"])
def test_bad_shard_specs_are_one_line(model_path, write_wav, tmp_path, spec):
    _corpus(write_wav, 1)
    assert_one_line_error(run(tmp_path / "corpus", "-o", tmp_path / "out", "--shard", spec, "--model", model_path),
                          "--shard", spec)
    assert not (tmp_path / "out").exists()


def test_skip_existing_does_only_what_is_missing(model_path, write_wav, tmp_path):
    files = _corpus(write_wav, 3)
    args = (tmp_path / "corpus", "-o", tmp_path / "out", "--model", model_path, "--n-iter", 1, "-q")
    assert run(*args).exit_code == 0
    victim = tmp_path / "out" / files[1].relative_to(tmp_path / "corpus")
    victim.unlink()  # as if the run had crashed before this file
    kept = tmp_path / "out" / files[0].name
    stamp = kept.stat().st_mtime_ns
    result = run(*args, "--skip-existing")
    assert result.exit_code == 0, result.output + result.stderr
    assert victim.exists() and kept.stat().st_mtime_ns == stamp
    assert "1 upsampled, 2 skipped, 0 failed" in result.stdout
    last = ResultsLog.read(tmp_path / "out" / RESULTS_NAME)[-3:]
    assert sorted(r["status"] for r in last) == ["exists", "exists", "upsampled"]
    assert_one_line_error(run(*args, "--skip-existing", "--force"), "--force", "--skip-existing")


def test_list_input_and_the_results_log(model_path, write_wav, tmp_path):
    files = _corpus(write_wav, 3)
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x00\x00garbage")
    lst = tmp_path / "files.txt"
    lst.write_text(f"# my corpus\ncorpus/f0.wav\n\n{files[1]}\nbroken.wav\nmissing.wav\n")
    result = run("--list", lst, "-o", tmp_path / "out", "--model", model_path, "--n-iter", 1, "-q")
    assert result.exit_code == 1  # a bad file fails alone, the rest is written
    assert (tmp_path / "out" / "corpus" / "f0.wav").exists()
    assert (tmp_path / "out" / str(files[1]).lstrip("/")).exists()
    assert "2 upsampled, 0 skipped, 2 failed" in result.stderr
    rows = {Path(r["input"]).name: r for r in ResultsLog.read(tmp_path / "out" / RESULTS_NAME)}
    assert rows["broken.wav"]["status"] == rows["missing.wav"]["status"] == "failed"
    assert "missing.wav" in rows["missing.wav"]["error"]
    ok = rows["f0.wav"]
    assert ok["status"] == "upsampled" and ok["sr_in"] == 16000 and ok["seconds"] == pytest.approx(0.2)
    assert ok["cutoff_hz"] > 6000 and ok["rtf"] > 0 and isinstance(ok["warnings"], list)
    assert_one_line_error(run("--list", tmp_path / "nope.txt", "--model", model_path), "nope.txt", "list")


@pytest.mark.parametrize("ext, subtype", [(".flac", "PCM_16"), (".ogg", "VORBIS"), (".opus", "OPUS"),
                                          (".mp3", "MPEG_LAYER_III"), (".aiff", "PCM_16")])
def test_output_formats_read_back_at_the_right_rate_and_length(model_path, write_wav, tmp_path, ext, subtype):
    if not sf.check_format(sf.info(str(write_wav("probe.wav", np.zeros(8), 8000))).format, "PCM_16"):
        pytest.skip("libsndfile cannot write WAV")
    from specsr.audio import LOSSY_FORMATS

    fmt = LOSSY_FORMATS.get(ext, ("", ""))[0]
    if fmt and not sf.check_format(fmt, subtype):
        pytest.skip(f"this machine's libsndfile {sf.__libsndfile_version__} cannot write {subtype}")
    src = write_wav("a.wav", lowres(0.5, 16000), 16000)
    out = tmp_path / f"a{ext}"
    level = ("--compression-level", 0.3) if ext != ".aiff" else ()
    result = run(src, "-o", out, "--model", model_path, "--n-iter", 1, "-q", *level)
    assert result.exit_code == 0, result.output + result.stderr
    info = sf.info(str(out))
    assert info.samplerate == 48000 and info.subtype == subtype
    assert abs(info.frames - 24000) <= (0 if fmt == "" else 2000)  # lossy codecs pad to their frames
    if fmt == "":
        assert info.frames == 24000


def test_format_option_names_every_output(model_path, write_wav, tmp_path):
    write_wav("in/a.wav", lowres(0.2, 16000), 16000)
    write_wav("in/b.flac", lowres(0.2, 8000), 8000)
    result = run(tmp_path / "in", "-o", tmp_path / "out", "--format", "flac", "--subtype", "pcm_24",
                 "--model", model_path, "--n-iter", 1, "-q")
    assert result.exit_code == 0, result.output + result.stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("*.flac")) == ["a.flac", "b.flac"]
    assert sf.info(str(tmp_path / "out" / "a.flac")).subtype == "PCM_24"


def test_sr_out_below_the_models_rate(model_path, write_wav, tmp_path):
    x = lowres(0.7, 16000)
    src = write_wav("a.wav", x, 16000)
    for sr_out, n in ((44100, round(x.shape[-1] * 44100 / 16000)), (22050, round(x.shape[-1] * 22050 / 16000))):
        out = tmp_path / f"a_{sr_out}.wav"
        result = run(src, "-o", out, "--sr-out", sr_out, "--model", model_path, "--n-iter", 1, "-q", "--float")
        assert result.exit_code == 0, result.output + result.stderr
        y, sr = sf.read(str(out), dtype="float32")
        assert sr == sr_out and len(y) == n  # round(T · sr_out / sr_in), exactly
    # the 48 kHz result's band is kept up to the new Nyquist: level in 18-21 kHz as at 48 kHz
    full = tmp_path / "a_48.wav"
    assert run(src, "-o", full, "--model", model_path, "--n-iter", 1, "-q", "--float").exit_code == 0
    y48, _ = sf.read(str(full), dtype="float32")
    y44, _ = sf.read(str(tmp_path / "a_44100.wav"), dtype="float32")

    def band_db(y, sr, lo, hi):
        spec = np.abs(np.fft.rfft(y)) ** 2 / len(y)
        f = np.fft.rfftfreq(len(y), 1 / sr)
        return 10 * np.log10(spec[(f >= lo) & (f < hi)].mean())

    for lo, hi in ((9000, 12000), (18000, 20500)):  # soxr VHQ: flat to ~0.95 of the new Nyquist
        assert abs(band_db(y44, 44100, lo, hi) - band_db(y48, 48000, lo, hi)) < 0.5, (lo, hi)
    assert run(src, "--sr-out", 44100, "--model", model_path, "-q").exit_code == 0
    assert (tmp_path / "a_44.1k.wav").exists()  # the default name says the rate
    cd = write_wav("cd.wav", noise(0.5, 44100, seed=3), 44100)  # full band at 44.1 kHz: nothing to add there
    result = run(cd, "--sr-out", 44100, "--model", model_path, "-q")
    assert result.exit_code == 0 and "skipped" in result.stderr and "22050 Hz" in result.stderr
    assert not (tmp_path / "cd_44.1k.wav").exists()


def test_formats_and_rates_are_refused_before_any_work(model_path, write_wav, tmp_path):
    src = write_wav("a.wav", lowres(0.2, 16000), 16000)
    assert_one_line_error(run(src, "-o", tmp_path / "a.xyz", "--model", model_path), "a.xyz", ".flac")
    assert_one_line_error(run(src, "-o", tmp_path / "o.opus", "--sr-out", 44100, "--model", model_path),
                          "o.opus", "Opus takes")
    assert_one_line_error(run(src, "-o", tmp_path / "o.wav", "--sr-out", 96000, "--model", model_path),
                          "--sr-out", "48000")
    assert_one_line_error(run(src, "--format", "m4a", "--model", model_path), "--format m4a")
    assert_one_line_error(run(src, "-o", tmp_path / "o.flac", "--subtype", "FLOAT", "--model", model_path),
                          "FLOAT", "FLAC")
    assert_one_line_error(run(src, "-o", tmp_path / "o.wav", "--compression-level", 2, "--model", model_path),
                          "--compression-level")
    assert_one_line_error(run(src, "-o", tmp_path / "o.wav", "--compression-level", 0.5, "--model", model_path),
                          "o.wav", "compression level applies to FLAC")
    assert not list(tmp_path.glob("o.*")) and not (tmp_path / "a.xyz").exists()


def test_workers_write_what_one_process_writes(model_path, write_wav, tmp_path):
    files = _corpus(write_wav, 3)
    (tmp_path / "corpus" / "broken.wav").write_bytes(b"RIFF\x00\x00garbage")
    one = run(tmp_path / "corpus", "-o", tmp_path / "one", "--model", model_path, "--n-iter", 2, "-q")
    two = run(tmp_path / "corpus", "-o", tmp_path / "two", "--model", model_path, "--n-iter", 2, "-q",
              "--workers", 2)
    assert one.exit_code == two.exit_code == 1  # the broken file fails alone, in a worker too
    assert "3 upsampled, 0 skipped, 1 failed" in two.stderr and "broken.wav" in two.stderr
    for f in files:
        rel = f.relative_to(tmp_path / "corpus")
        a, _ = sf.read(str(tmp_path / "one" / rel), dtype="int16")
        b, _ = sf.read(str(tmp_path / "two" / rel), dtype="int16")
        assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).max() <= 2  # thread counts differ
    assert len(ResultsLog.read(tmp_path / "two" / RESULTS_NAME)) == 4
    assert_one_line_error(run(files[0], "--workers", 0, "--model", model_path), "--workers")


def test_stdin_to_stdout_round_trip(model_path, write_wav, tmp_path):
    import io

    x = lowres(0.4, 16000)
    src = write_wav("a.wav", x, 16000)
    result = CliRunner().invoke(app, ["upsample", "-", "-o", "-", "--model", str(model_path), "--n-iter", "1"],
                                input=src.read_bytes())
    assert result.exit_code == 0, result.stderr
    y, sr = sf.read(io.BytesIO(result.stdout_bytes), dtype="float32")
    assert sr == 48000 and len(y) == round(x.shape[-1] * 3)  # the stream is audio, nothing else
    assert "stdin -> stdout" in result.stderr  # the summary goes to stderr
    # stdin to a file, and a file to stdout as FLAC
    out = tmp_path / "from_stdin.wav"
    r = CliRunner().invoke(app, ["upsample", "-", "-o", str(out), "--model", str(model_path), "--n-iter", "1", "-q"],
                           input=src.read_bytes())
    assert r.exit_code == 0 and sf.info(str(out)).frames == len(y)
    r = CliRunner().invoke(app, ["upsample", str(src), "-o", "-", "--format", "flac", "--model", str(model_path),
                                 "--n-iter", "1", "-q"])
    assert r.exit_code == 0 and r.stdout_bytes[:4] == b"fLaC"
    assert not list(tmp_path.glob(".specsr-*")) and not list(Path(".").glob(".specsr-pipe.*"))


def test_pipes_bad_use_is_one_line(model_path, write_wav, tmp_path):
    a = write_wav("a.wav", lowres(0.2, 16000), 16000)
    b = write_wav("b.wav", lowres(0.2, 16000), 16000)
    assert_one_line_error(run(a, b, "-o", "-", "--model", model_path), "-o -", "one input")
    assert_one_line_error(run(tmp_path, "-o", "-", "--model", model_path), "-o -")
    assert_one_line_error(run("-", a, "--model", model_path), "stdin", "only input")
    assert_one_line_error(run("-", "--model", model_path), "stdin", "-o FILE")
    empty = CliRunner().invoke(app, ["upsample", "-", "-o", str(tmp_path / "x.wav"), "--model", str(model_path)],
                               input=b"")
    assert_one_line_error(empty, "nothing on stdin")


def _fake_ffmpeg(folder: Path) -> None:
    """An ``ffmpeg`` on PATH that "decodes" by reading its input with soundfile (a WAV named .m4a) and writing
    the float W64 it is asked for: the integration, without ffmpeg installed."""
    script = folder / "ffmpeg"
    script.write_text(f"""#!{sys.executable}
import sys, soundfile as sf
args = sys.argv[1:]
src, dst = args[args.index("-i") + 1], args[-1]
try:
    data, sr = sf.read(src, dtype="float32", always_2d=True)
except Exception:
    print(src + ": Invalid data found when processing input", file=sys.stderr)
    sys.exit(1)
sf.write(dst, data, sr, format="W64", subtype="FLOAT")
""")
    script.chmod(0o755)


def test_m4a_through_ffmpeg(model_path, write_wav, tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _fake_ffmpeg(bindir)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "talk.m4a", lowres(0.3, 16000, channels=2).T, 16000, format="WAV")
    (tmp_path / "in" / "bad.aac").write_bytes(b"\x00" * 100)
    result = run(tmp_path / "in", "-o", tmp_path / "out", "--model", model_path, "--n-iter", 1, "-q")
    assert result.exit_code == 1  # the undecodable one fails alone
    info = sf.info(str(tmp_path / "out" / "talk.wav"))
    assert info.samplerate == 48000 and info.channels == 2 and info.frames == 14400
    assert "bad.aac: ffmpeg could not decode it (" in result.stderr
    assert not list((tmp_path / "in").rglob("*.w64")) and not list(Path("/tmp").glob(".specsr-decode.*/talk.w64"))


def test_m4a_without_ffmpeg_says_how_to_get_it(model_path, write_wav, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    src = tmp_path / "talk.m4a"
    sf.write(src, lowres(0.3, 16000)[0], 16000, format="WAV")
    assert_one_line_error(run(src, "--model", model_path), "talk.m4a", "ffmpeg, which is not installed",
                          "apt-get install ffmpeg")


@pytest.mark.skipif(__import__("shutil").which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_m4a_with_the_real_ffmpeg(model_path, write_wav, tmp_path):
    wav = write_wav("talk.wav", lowres(0.5, 16000), 16000)
    m4a = tmp_path / "talk.m4a"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(wav), "-c:a", "aac", str(m4a)], check=True)
    result = run(m4a, "-o", tmp_path / "out.wav", "--model", model_path, "--n-iter", 1, "-q")
    assert result.exit_code == 0, result.stderr
    assert sf.info(str(tmp_path / "out.wav")).samplerate == 48000


def test_under_torchrun_each_process_takes_its_own_gpu(monkeypatch):
    import torch

    from specsr.cli.upsample import _local_rank_device

    monkeypatch.setenv("LOCAL_RANK", "3")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert _local_rank_device("auto") == "cuda:1" and _local_rank_device("cuda") == "cuda:1"
    assert _local_rank_device("cpu") == "cpu" and _local_rank_device("cuda:0") == "cuda:0"  # a choice stays
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert _local_rank_device("auto") == "auto"
    monkeypatch.delenv("LOCAL_RANK")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert _local_rank_device("auto") == "auto"


def test_disk_full_removes_the_file_logs_it_and_a_rerun_resumes(model_path, write_wav, tmp_path, monkeypatch):
    import errno

    files = _corpus(write_wav, 3)
    real_write = sf.SoundFile.write
    calls = {"n": 0}

    def full_disk(self, data):
        if "f1" in self.name:
            raise OSError(errno.ENOSPC, "No space left on device")
        calls["n"] += 1
        return real_write(self, data)

    monkeypatch.setattr(sf.SoundFile, "write", full_disk)
    args = (tmp_path / "corpus", "-o", tmp_path / "out", "--model", model_path, "--n-iter", 1, "-q")
    result = run(*args)
    assert result.exit_code == 1 and "No space left on device" in result.stderr
    bad = tmp_path / "out" / files[1].relative_to(tmp_path / "corpus")
    assert not bad.exists() and not [p for p in (tmp_path / "out").rglob("*") if p.name.startswith(".")]
    rows = {Path(r["input"]).name: r for r in ResultsLog.read(tmp_path / "out" / RESULTS_NAME)}
    assert rows["f1.wav"]["status"] == "failed" and "No space left" in rows["f1.wav"]["error"]
    monkeypatch.setattr(sf.SoundFile, "write", real_write)
    again = run(*args, "--skip-existing")
    assert again.exit_code == 0 and bad.exists() and "1 upsampled, 2 skipped, 0 failed" in again.stdout


def test_shared_predictor_batches_the_calls_of_files_in_flight(model_path):
    import threading

    import torch

    from specsr.batch import SharedPredictor
    from specsr.pipeline import load_model

    ups = load_model(model_path, device="cpu", precision="fp32")
    shared = SharedPredictor(ups, max_wait_s=5.0)
    torch.manual_seed(0)
    calls = [(torch.randn(c, ups.stft.n_bins, m, dtype=torch.complex64), k)
             for c, m, k in ((1, 40, 300), (2, 17, 500), (1, 64, 200))]
    results: dict[int, torch.Tensor] = {}
    ready = threading.Barrier(len(calls))

    def one(i: int) -> None:
        with shared.active():
            ready.wait()
            results[i] = shared.predict_magnitude(*calls[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert shared.calls == 1  # three files, one network call
    for i, (known, k) in enumerate(calls):
        assert torch.allclose(results[i], ups.predict_magnitude(known, k), rtol=1e-4, atol=1e-6)


def test_shared_predictor_batches_each_model_apart(model_path, tmp_path):
    """Files of the default pair's two models upsampled at once: each model's calls are batched together, and
    a call never waits for a file whose own call is in the other model's batch."""
    import threading

    import torch
    from conftest import make_checkpoint_file

    from specsr.batch import SharedPredictor
    from specsr.pipeline import load_model

    ups = load_model(model_path, device="cpu", precision="fp32")
    other = load_model(make_checkpoint_file(tmp_path / "other.pt", seed=5), device="cpu", precision="fp32")
    shared = SharedPredictor(ups, max_wait_s=30.0)  # a wait for the other model's files would show as a hang
    torch.manual_seed(0)
    calls = [(torch.randn(1, ups.stft.n_bins, m, dtype=torch.complex64), k, model)
             for m, k, model in ((40, 300, ups), (17, 500, other), (64, 200, ups), (33, 250, other))]
    results: dict[int, torch.Tensor] = {}
    ready = threading.Barrier(len(calls))

    def one(i: int) -> None:
        known, k, model = calls[i]
        with shared.active():
            ready.wait()
            predictor = shared if model is ups else shared.for_model(model)
            results[i] = predictor.predict_magnitude(known, k)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not any(t.is_alive() for t in threads)
    assert shared.calls == 2  # four files, one network call per model
    for i, (known, k, model) in enumerate(calls):
        assert torch.allclose(results[i], model.predict_magnitude(known, k), rtol=1e-4, atol=1e-6)


def test_batch_files_write_what_one_at_a_time_writes(model_path, write_wav, tmp_path):
    files = _corpus(write_wav, 4)
    (tmp_path / "corpus" / "broken.wav").write_bytes(b"RIFF\x00\x00garbage")
    one = run(tmp_path / "corpus", "-o", tmp_path / "one", "--model", model_path, "--n-iter", 2, "-q",
              "--precision", "fp32")
    many = run(tmp_path / "corpus", "-o", tmp_path / "many", "--model", model_path, "--n-iter", 2, "-q",
               "--precision", "fp32", "--batch-files", 3)
    assert one.exit_code == many.exit_code == 1 and "4 upsampled, 0 skipped, 1 failed" in many.stderr
    for f in files:
        rel = f.relative_to(tmp_path / "corpus")
        a, _ = sf.read(str(tmp_path / "one" / rel), dtype="int16")
        b, _ = sf.read(str(tmp_path / "many" / rel), dtype="int16")
        assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).max() <= 1
    rows = [r["input"] for r in ResultsLog.read(tmp_path / "many" / RESULTS_NAME)]
    assert rows == sorted(rows)  # logged in the order of the jobs
    assert_one_line_error(run(files[0], "--batch-files", 0, "--model", model_path), "--batch-files")


def test_wide_model_takes_the_high_cutoffs(model_path, write_wav, tmp_path):
    """--wide-model: a 32 kHz input (cutoff 14.4 kHz, above the tiny model's 12) is upsampled by the wide model,
    exactly as that model alone does, without an out-of-range warning; a 16 kHz input by --model."""
    from specsr.config import TaskConfig

    wide = make_checkpoint_file(tmp_path / "wide.pt", seed=3, task=TaskConfig(2000.0, 22050.0))
    high = write_wav("high.wav", lowres(0.5, 32000), 32000)
    low = write_wav("low.wav", lowres(0.5, 16000), 16000)
    pair = run(high, "-o", tmp_path / "pair.wav", "--model", model_path, "--wide-model", wide, "--n-iter", 2)
    assert pair.exit_code == 0 and "above the cutoff: wide" in pair.stdout and "outside the range" not in pair.stderr
    alone = run(high, "-o", tmp_path / "alone.wav", "--model", wide, "--n-iter", 2)
    assert alone.exit_code == 0 and "above the cutoff" not in alone.stdout
    np.testing.assert_array_equal(sf.read(str(tmp_path / "pair.wav"))[0], sf.read(str(tmp_path / "alone.wav"))[0])
    narrow = run(high, "-o", tmp_path / "narrow.wav", "--model", model_path, "--n-iter", 2)
    assert narrow.exit_code == 0 and "outside the range tiny was trained for" in narrow.stderr
    in_range = run(low, "-o", tmp_path / "low48.wav", "--model", model_path, "--wide-model", wide, "--n-iter", 2)
    assert in_range.exit_code == 0 and "above the cutoff" not in in_range.stdout
    assert_one_line_error(run(low, "-o", tmp_path / "x.wav", "--model", model_path, "--wide-model",
                              tmp_path / "missing.pt"), "missing.pt")
