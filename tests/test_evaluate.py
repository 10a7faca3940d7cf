"""specsr evaluate: pairs, folders, --compare, baselines, and the CLI's one-line errors."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
import soundfile as sf
from conftest import SHARED, brickwall, noise
from typer.testing import CliRunner

from specsr.baselines import baseline_input, baseline_sinc, noise_fill
from specsr.evaluate import compare, evaluate_paths, format_markdown
from specsr.metrics import score

runner = CliRunner()


def _tone_and_noise(seconds: float = 1.0, sr: int = 48000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 440 * t) + noise(seconds, sr)[0]).astype(np.float32)[None]


def test_pair_and_folder_scores(tmp_path, write_wav):
    ref = _tone_and_noise()
    write_wav("ref/a.wav", ref, 48000, "FLOAT")
    write_wav("ref/sub/b.wav", ref, 48000, "FLOAT")
    write_wav("est/a.flac", 0.5 * ref, 48000, "PCM_24")
    write_wav("est/sub/b.wav", ref[:, :-960], 48000, "FLOAT")  # 20 ms shorter → warning, trimmed
    rep = evaluate_paths(tmp_path / "ref", tmp_path / "est", 16000)
    by_name = {r.name: r for r in rep.results}
    assert by_name["a"].scores.lsd == pytest.approx(abs(np.log10(0.25)), abs=1e-3)
    assert by_name["sub/b"].scores.lsd == pytest.approx(0, abs=1e-6)
    assert any("differ by 20.0 ms" in w for w in rep.warnings)
    assert rep.mean.lsd == pytest.approx(by_name["a"].scores.lsd / 2, abs=1e-6)


def test_any_rate_and_channels_scored_on_48k_mean(write_wav):
    ref = np.stack([_tone_and_noise(sr=24000)[0]] * 2)
    p_ref = write_wav("r.wav", ref, 24000, "FLOAT")
    p_est = write_wav("e.wav", ref, 24000, "FLOAT")
    rep = evaluate_paths(p_ref, p_est, 8000)
    assert rep.mean.lsd == pytest.approx(0, abs=1e-6)


def test_baselines_shapes_and_noise_fill_beats_input():
    x = noise(2.0, 48000, level=0.2)
    low = brickwall(x, 48000, 8000)
    for fn in (baseline_input, baseline_sinc, noise_fill):
        y = fn(low, 48000, 16000)
        assert y.shape == x.shape and np.isfinite(y).all()
    low16 = low[:, ::3]  # stored at 16 kHz
    assert baseline_sinc(low16, 16000, 16000).shape == (1, low16.shape[1] * 3)
    s_in = score(x[0], baseline_input(low, 48000, 16000)[0], 16000)
    s_nf = score(x[0], noise_fill(low, 48000, 16000)[0], 16000)
    assert s_nf.lsd < 0.5 * s_in.lsd
    assert s_nf.lsd_lf == pytest.approx(s_in.lsd_lf, abs=0.05)  # the low band is kept


def _fake_compare_dir(root, sr_in=16000, n_clips=2):
    for c in range(n_clips):
        d = root / "demo" / f"{sr_in // 1000}k-48k" / f"clip{c}"
        d.mkdir(parents=True)
        truth = noise(1.0, 48000, seed=c)
        low = brickwall(truth, 48000, sr_in / 2)
        sf.write(d / "truth.wav", truth.T, 48000, subtype="FLOAT")
        sf.write(d / "input.wav", low.T, 48000, subtype="FLOAT")
        sf.write(d / "good.wav", (truth * 1.1).T, 48000, subtype="FLOAT")
        sf.write(d / "bad.wav", low.T, 48000, subtype="FLOAT")


def test_compare_table(tmp_path):
    _fake_compare_dir(tmp_path)
    calls = []

    def system(wav, sr, sr_in):
        calls.append(sr_in)
        return wav * 0.9, sr

    res = compare(tmp_path, extra_systems={"mine": system})
    systems = [r.system for r in res.rows]
    assert systems == ["input", "sinc", "noise-fill", "bad", "good", "mine"]
    assert calls == [16000, 16000] and all(r.n_clips == 2 for r in res.rows)
    good = next(r for r in res.rows if r.system == "good")
    assert good.mean.lsd == pytest.approx(abs(np.log10(1.21)), abs=1e-4)
    table = format_markdown(res)
    assert "### demo · 16k-48k (sr_in 16000 Hz, 2 clips)" in table
    assert f"| good | published | **{good.mean.lsd:.3f}** |" in table


def test_compare_skips_clip_without_truth(tmp_path):
    _fake_compare_dir(tmp_path)
    (tmp_path / "demo" / "16k-48k" / "clip1" / "truth.wav").unlink()
    res = compare(tmp_path, baselines=False)
    assert any("no truth" in w for w in res.warnings)
    assert all(r.n_clips == 1 for r in res.rows)


def test_cli_pair_csv_and_compare(tmp_path, cli_app, write_wav):
    ref = write_wav("r.wav", _tone_and_noise(), 48000, "FLOAT")
    est = write_wav("e.wav", 0.5 * _tone_and_noise(), 48000, "FLOAT")
    out_csv = tmp_path / "m.csv"
    r = runner.invoke(cli_app, ["evaluate", str(ref), str(est), "--sr-in", "16000", "--csv", str(out_csv), "-q"])
    assert r.exit_code == 0, r.output
    assert "mean" in r.output and "0.602" in r.output
    rows = list(csv.reader(out_csv.open()))
    assert rows[0][:2] == ["file", "lsd"] and rows[-1][0] == "mean"
    _fake_compare_dir(tmp_path / "cmp")
    r = runner.invoke(cli_app, ["evaluate", "--compare", str(tmp_path / "cmp"), "-q",
                                "--markdown", str(tmp_path / "t.md")])
    assert r.exit_code == 0, r.output
    assert "noise-fill" in r.output and (tmp_path / "t.md").read_text().startswith("### demo")


def test_cli_outputs_are_not_overwritten_without_force(tmp_path, cli_app, write_wav):
    ref = write_wav("r.wav", _tone_and_noise(), 48000, "FLOAT")
    est = write_wav("e.wav", 0.5 * _tone_and_noise(), 48000, "FLOAT")
    out_csv = tmp_path / "m.csv"
    out_csv.write_text("keep me")
    args = ["evaluate", str(ref), str(est), "--sr-in", "16000", "--csv", str(out_csv), "-q"]
    r = runner.invoke(cli_app, args)
    assert r.exit_code != 0 and "exists already" in r.output and "Traceback" not in r.output
    assert out_csv.read_text() == "keep me"
    r = runner.invoke(cli_app, [*args, "-f"])
    assert r.exit_code == 0, r.output
    assert out_csv.read_text().startswith("file,lsd")
    _fake_compare_dir(tmp_path / "cmp")
    table = tmp_path / "t.md"
    table.write_text("keep me")
    r = runner.invoke(cli_app, ["evaluate", "--compare", str(tmp_path / "cmp"), "-q", "--markdown", str(table)])
    assert r.exit_code != 0 and "exists already" in r.output and table.read_text() == "keep me"
    r = runner.invoke(cli_app, ["evaluate", str(ref), str(est), "--sr-in", "16000", "--markdown", str(table), "-q"])
    assert r.exit_code != 0 and "--markdown goes with --compare" in r.output


@pytest.mark.parametrize("case", ["missing", "directory", "garbage", "empty", "nan", "short", "no_sr_in",
                                  "bad_csv_dir"])
def test_cli_bad_input_one_line_no_traceback(tmp_path, cli_app, write_wav, case):
    good = write_wav("good.wav", _tone_and_noise(), 48000, "FLOAT")
    est = {"missing": tmp_path / "nope.wav", "directory": tmp_path}.get(case)
    if case == "garbage":
        est = tmp_path / "garbage.wav"
        est.write_bytes(b"\x00\x01not audio at all" * 20)
    elif case == "empty":
        est = write_wav("empty.wav", np.zeros((1, 0), np.float32), 48000)
    elif case == "nan":
        est = write_wav("nan.wav", np.full((1, 4800), np.nan, np.float32), 48000, "FLOAT")
    elif case == "short":
        est = write_wav("short.wav", np.zeros((1, 100), np.float32), 48000)
    elif case in ("no_sr_in", "bad_csv_dir"):
        est = good
    args = ["evaluate", str(good), str(est), "-q"]
    if case != "no_sr_in":
        args += ["--sr-in", "16000"]
    if case == "bad_csv_dir":
        args += ["--csv", str(tmp_path / "no" / "such" / "dir" / "m.csv")]
    r = runner.invoke(cli_app, args)
    assert r.exit_code != 0
    err = r.stderr if hasattr(r, "stderr") else r.output
    assert "Traceback" not in r.output
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("specsr: error:"), err
    assert not (tmp_path / "no").exists()


@pytest.mark.skipif(not (SHARED / "eval").is_dir(), reason="shared eval clips not present")
def test_published_ranking_on_shared_clips(tmp_path):
    """AP-BWE is best on its own clips; NU-Wave 2 scores 0.8–1.0 at 16 kHz (the metric is right)."""
    root = tmp_path / "eval"
    shutil.copytree(SHARED / "eval" / "ap-bwe" / "16k-48k", root / "ap-bwe" / "16k-48k")
    shutil.copytree(SHARED / "eval" / "nuwave2" / "16k-48k", root / "nuwave2" / "16k-48k")
    res = compare(root, baselines=False)
    ap = {r.system: r.mean.lsd for r in res.rows if r.set == "ap-bwe"}
    assert min(ap, key=ap.get) == "ap-bwe"
    nw = {r.system: r.mean.lsd for r in res.rows if r.set == "nuwave2"}
    assert 0.8 <= nw["nuwave2"] <= 1.0


def test_published_file_named_like_a_computed_system_is_kept_apart(tmp_path):
    _fake_compare_dir(tmp_path)
    clip = tmp_path / "demo" / "16k-48k" / "clip0"
    shutil.copy(next(clip.glob("truth.*")), clip / "noise-fill.wav")  # a perfect "noise-fill" file
    res = compare(tmp_path)
    rows = {r.system: r for r in res.rows}
    assert rows["noise-fill-file"].n_clips == 1 and rows["noise-fill-file"].mean.lsd == pytest.approx(0, abs=1e-6)
    assert rows["noise-fill"].n_clips == 2 and rows["noise-fill"].mean.lsd > 0.1
    assert any("scored as noise-fill-file" in w for w in res.warnings)


def test_a_computed_system_that_fails_on_one_clip_is_skipped_there(tmp_path):
    from specsr.errors import SpecsrError

    _fake_compare_dir(tmp_path)

    def picky(wav, sr, sr_in):
        if picky.calls == 0:
            picky.calls += 1
            raise SpecsrError("nothing to add")
        return wav, sr

    picky.calls = 0
    res = compare(tmp_path, baselines=False, extra_systems={"picky": picky})
    assert {r.system: r.n_clips for r in res.rows}["picky"] == 1
    assert any("clip0/picky: nothing to add; skipped" in w for w in res.warnings)


def test_cli_compare_with_a_model(tmp_path, cli_app):
    from test_pipeline import make_checkpoint_file

    _fake_compare_dir(tmp_path / "cmp")
    ckpt = make_checkpoint_file(tmp_path / "tiny.pt")
    r = runner.invoke(cli_app, ["evaluate", "--compare", str(tmp_path / "cmp"), "--model", str(ckpt), "--n-iter", "2",
                                "--no-baselines", "-q", "--csv", str(tmp_path / "c.csv")])
    assert r.exit_code == 0, r.output
    assert "| specsr (" not in r.output and "| specsr | computed |" in r.output  # every clip has it
    rows = list(csv.DictReader((tmp_path / "c.csv").open()))
    assert sum(row["system"] == "specsr" for row in rows) == 2
    alone = runner.invoke(cli_app, ["evaluate", "--compare", str(tmp_path / "cmp"), "--wide-model", str(ckpt)])
    assert alone.exit_code != 0 and "--wide-model goes with --model" in alone.stderr


def test_a_44k_truth_is_scored_up_to_its_own_nyquist(tmp_path, write_wav):
    """evaluate reads the truth's rate from its file: content above 0.95 × a 44.1 kHz truth's Nyquist is not
    charged; a 48 kHz truth of the same audio charges it."""
    truth = noise(1.0, 44100, level=0.2)  # content up to its Nyquist
    write_wav("truth44.wav", truth, 44100, "FLOAT")
    from specsr.audio import resample

    truth48 = resample(truth, 44100, 48000)
    write_wav("truth48.wav", truth48, 48000, "FLOAT")
    t = np.arange(truth48.shape[-1]) / 48000
    write_wav("plain.wav", truth48, 48000, "FLOAT")
    write_wav("toned.wav", truth48 + 0.05 * np.sin(2 * np.pi * 23000 * t)[None], 48000, "FLOAT")
    plain = evaluate_paths(tmp_path / "truth44.wav", tmp_path / "plain.wav", 16000).mean
    toned = evaluate_paths(tmp_path / "truth44.wav", tmp_path / "toned.wav", 16000).mean
    assert toned.lsd == pytest.approx(plain.lsd, abs=1e-3)
    as48 = evaluate_paths(tmp_path / "truth48.wav", tmp_path / "toned.wav", 16000).mean
    assert as48.lsd > plain.lsd + 0.3
