"""``specsr report``: a self-contained listening page whose numbers are compare's.

The page must be valid HTML, reference only files inside the report, show what was scored, and
survive messy folders (missing truth/input, unreadable files) and existing output folders.
A browser test loads it in headless Chromium when Chromium, ChromeDriver and Selenium are present.
"""

from __future__ import annotations

import csv
import os
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
import soundfile as sf
from conftest import SHARED, assert_one_line_error, brickwall, noise
from typer.testing import CliRunner

import specsr.cli.report  # noqa: F401  (registers the command, as cli.main does)
from specsr.cli.app import app
from specsr.errors import SpecsrError
from specsr.evaluate import compare
from specsr.report import MARKER, THUMB_HEIGHT_PX, THUMB_WIDTH_PX, build_pair_report, build_report

SR = 48000


def _write(path: Path, wav: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.atleast_2d(wav).T, sr, subtype=subtype)
    return path


def make_compare_dir(root: Path) -> Path:
    """Set ``demo``: 8k-48k with clips a, b (complete; b also has an MP3 system), c (no input), d (no
    truth), e (unreadable system); 16k-48k with clip a, whose system ``beta`` is a float WAV (browsers:
    transcode)."""
    for ratio, clip_names, sr_in in (("8k-48k", "abcde", 8000), ("16k-48k", "a", 16000)):
        for i, name in enumerate(clip_names):
            clip = root / "demo" / ratio / name
            truth = noise(0.4 + 0.05 * i, SR, seed=i, level=0.2)
            low = brickwall(truth, SR, sr_in / 2)
            if name != "d":
                _write(clip / "truth.flac", truth, subtype="PCM_24")
            if name != "c":
                _write(clip / "input.wav", low[:, :: SR // sr_in], sr_in)  # stored at its low rate
            _write(clip / "alpha.flac", 0.9 * truth + 0.1 * low)
            _write(clip / "beta.wav", low + 0.01 * noise(truth.shape[1] / SR, SR, seed=9)[:, : truth.shape[1]],
                   subtype="FLOAT" if ratio == "16k-48k" else "PCM_16")
            if name == "e":
                (clip / "gamma.wav").write_bytes(b"RIFF not really a wav")
            if name == "b":  # browsers play MP3 as it is
                sf.write(clip / "delta.mp3", (0.9 * truth).T, SR, format="MP3")
    return root


@pytest.fixture(scope="module")
def compare_dir(tmp_path_factory) -> Path:
    return make_compare_dir(tmp_path_factory.mktemp("cmp") / "demo-set")


@pytest.fixture(scope="module")
def report(compare_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "report"
    return build_report(compare_dir, out)


class _Page(HTMLParser):
    """Collects referenced files and the summary table's data-* cells."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.rows: dict[tuple[str, str, str], dict[str, float]] = {}
        self._row: tuple[str, str, str] | None = None
        self.tags: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        for key in ("src", "href"):
            if a.get(key) and not a[key].startswith("#"):
                self.refs.append(a[key])
        if tag == "tr" and "data-system" in a:
            self._row = (a["data-set"], a["data-ratio"], a["data-system"])
            self.rows[self._row] = {"n_clips": float(a["data-clips"])}
        if tag == "td" and "data-metric" in a and self._row is not None:
            self.rows[self._row][a["data-metric"]] = float(a["data-value"])


def parse(index: Path) -> _Page:
    page = _Page()
    page.feed(index.read_text(encoding="utf-8"))
    return page


def test_html_is_valid_and_every_reference_exists(report):
    html5lib = pytest.importorskip("html5lib", reason="html5lib (dev extra) validates the HTML")
    text = report.index.read_text(encoding="utf-8")
    html5lib.HTMLParser(strict=True).parse(text)  # raises on any HTML5 parse error
    assert text.startswith("<!DOCTYPE html>")
    page = parse(report.index)
    assert page.tags["audio"] == page.tags["img"] > 0
    for ref in page.refs:
        url = urlparse(ref)
        assert not url.scheme and not url.netloc, f"not a relative link: {ref}"
        assert not ref.startswith("/") and ".." not in ref.split("/")
        target = report.out_dir / unquote(url.path)
        assert target.is_file() and target.stat().st_size > 0, ref
    assert (report.out_dir / MARKER).is_file()
    assert not [p for p in report.out_dir.parent.iterdir() if p.name.startswith(".report.")]  # no temp left


def test_summary_equals_compare(report, compare_dir):
    expected = compare(compare_dir)
    page = parse(report.index)
    assert len(page.rows) == len(expected.rows)
    for row in expected.rows:
        shown = page.rows[(row.set, row.ratio, row.system)]
        assert shown["n_clips"] == row.n_clips
        for key, value in row.mean.as_dict().items():
            assert shown[key] == pytest.approx(value, rel=0, abs=0), (row.system, key)
    with open(report.out_dir / "summary.csv", newline="") as fh:
        csv_rows = {(r["set"], r["ratio"], r["system"]): r for r in csv.DictReader(fh)}
    for row in expected.rows:
        assert float(csv_rows[(row.set, row.ratio, row.system)]["lsd"]) == row.mean.lsd
    assert report.per_clip == expected.per_clip


def test_best_value_per_column_is_bold(report):
    text = report.index.read_text(encoding="utf-8")
    page = parse(report.index)
    rows = {k: v for k, v in page.rows.items() if k[1] == "8k-48k" and k[2] != "input"}
    best = min(v["lsd"] for v in rows.values())
    assert f'data-metric="lsd" data-value="{best!r}"><b>' in text
    assert text.count("<b>") >= 4  # one per metric column and table, at least


def test_messy_folder_is_reported_and_skipped(report):
    joined = "\n".join(report.warnings)
    assert "demo/8k-48k/d: no truth file, skipped" in joined
    assert "demo/8k-48k/c: no input file" in joined
    assert "demo/8k-48k/e" in joined and "gamma.wav" in joined
    assert report.n_clips == 5  # a, b, c, e at 8 kHz and a at 16 kHz
    text = report.index.read_text(encoding="utf-8")
    assert "no truth file, skipped" in text  # on the page too
    clip_c = report.out_dir / "clips" / "demo" / "8k-48k" / "c"
    assert sorted(p.stem for p in clip_c.glob("*.png")) == ["alpha", "beta", "truth"]  # no baselines without input


def test_audio_is_what_was_scored(report, compare_dir):
    src = compare_dir / "demo" / "8k-48k" / "a"
    dst = report.out_dir / "clips" / "demo" / "8k-48k" / "a"
    for name in ("truth.flac", "alpha.flac", "beta.wav", "input.wav"):  # browser-friendly: byte-identical copies
        assert (dst / name).read_bytes() == (src / name).read_bytes()
    mp3 = compare_dir / "demo" / "8k-48k" / "b" / "delta.mp3"
    assert (report.out_dir / "clips" / "demo" / "8k-48k" / "b" / "delta.mp3").read_bytes() == mp3.read_bytes()
    # a float WAV is transcoded to FLAC, and the page says so
    float_src = compare_dir / "demo" / "16k-48k" / "a" / "beta.wav"
    flac = report.out_dir / "clips" / "demo" / "16k-48k" / "a" / "beta.flac"
    a, _ = sf.read(float_src, dtype="float32")
    b, sr = sf.read(flac, dtype="float32")
    assert sr == SR and np.max(np.abs(a - b)) < 2 ** -22
    assert any("16k-48k/a/beta: transcoded from WAV FLOAT to FLAC 24-bit" in t for t in report.transcoded)
    assert "Transcoded for browsers" in report.index.read_text(encoding="utf-8")
    # computed baselines are written at 48 kHz as 24-bit FLAC
    info = sf.info(dst / "noise-fill.flac")
    assert (info.samplerate, info.subtype) == (SR, "PCM_24")


def test_clip_order_truth_last_and_one_colour_scale(report):
    text = report.index.read_text(encoding="utf-8")
    block = text[text.index('id="set-demo-8k-48k-a"'):]
    block = block[: block.index("</article>")]
    systems = [s.split('"')[0] for s in block.split('data-system="')[1:]]
    assert systems == ["input", "sinc", "noise-fill", "alpha", "beta", "truth"]
    assert block.count("dB re a full-scale sine") == 1  # one scale stated for the whole clip
    assert "sr_in / 2 = 4 kHz" in block


def test_max_clips_limits_the_page_not_the_summary(compare_dir, tmp_path):
    rep = build_report(compare_dir, tmp_path / "r", max_clips=1)
    assert rep.n_clips == 5 and rep.n_shown == 2
    page = parse(rep.index)
    assert page.rows[("demo", "8k-48k", "alpha")]["n_clips"] == 4
    assert "1 of 4 clips shown" in rep.index.read_text(encoding="utf-8")


def test_extra_system_is_scored_and_shown(compare_dir, tmp_path):
    def loud(wav, sr, sr_in):  # a "model" that returns its input, twice as loud, at 48 kHz
        from specsr.audio import resample

        return 2.0 * resample(wav, sr, SR), SR

    rep = build_report(compare_dir, tmp_path / "r", sets=["demo"], extra_systems={"loud": loud}, max_clips=1)
    page = parse(rep.index)
    assert page.rows[("demo", "8k-48k", "loud")]["n_clips"] == 3  # the clips with an input
    assert (rep.out_dir / "clips" / "demo" / "8k-48k" / "a" / "loud.flac").is_file()


def test_existing_output_folder(compare_dir, tmp_path):
    out = tmp_path / "r"
    build_report(compare_dir, out, max_clips=0)
    with pytest.raises(SpecsrError, match="exists already"):
        build_report(compare_dir, out, max_clips=0)
    (out / "old.txt").write_text("x")
    build_report(compare_dir, out, max_clips=0, force=True)  # a previous report: replaced
    assert not (out / "old.txt").exists() and (out / "index.html").is_file()
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("x")
    with pytest.raises(SpecsrError, match="not a specsr report"):
        build_report(compare_dir, precious, force=True)
    assert (precious / "thesis.tex").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious", "r"]  # no temp folders left


def test_failure_leaves_nothing_behind(tmp_path):
    empty = tmp_path / "empty"
    (empty / "s" / "8k-48k" / "x").mkdir(parents=True)
    with pytest.raises(SpecsrError, match="no clips found"):
        build_report(empty, tmp_path / "r")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_pair_report(tmp_path):
    truth = noise(0.5, SR, level=0.2)
    low = brickwall(truth, SR, 8000)[:, ::3]
    inp = _write(tmp_path / "in.wav", low, 16000)
    out = _write(tmp_path / "out.wav", 0.8 * truth)
    ref = _write(tmp_path / "truth.wav", truth)
    rep = build_pair_report(inp, tmp_path / "r", output_path=out, reference_path=ref)
    page = parse(rep.index)
    assert set(page.rows) == {("pair", "16k-48k", s) for s in ("input", "sinc", "noise-fill", "output")}
    assert page.rows[("pair", "16k-48k", "output")]["lsd"] == pytest.approx(np.log10(1 / 0.64), abs=2e-3)
    text = rep.index.read_text(encoding="utf-8")  # the user's own file is "given", never "published"
    assert '<td class="kind">given</td>' in text and '<td class="kind">published</td>' not in text
    assert rep.n_clips == 1 and "1 clip scored" in text
    # without a reference: players and spectrograms, no scores
    rep = build_pair_report(inp, tmp_path / "r2", output_path=out, baselines=False)
    page = parse(rep.index)
    assert page.rows == {} and page.tags["audio"] == 2  # the input and the output, no baselines
    assert "nothing was scored" in rep.index.read_text(encoding="utf-8")
    assert rep.n_clips == 0 and "0 clips scored, 1 shown" in rep.index.read_text(encoding="utf-8")
    with pytest.raises(SpecsrError, match="--output"):
        build_pair_report(inp, tmp_path / "r3")


def test_pair_report_full_band_input_needs_sr_in(tmp_path):
    inp = _write(tmp_path / "in.wav", noise(0.5, SR, level=0.2))
    with pytest.raises(SpecsrError, match="--sr-in"):
        build_pair_report(inp, tmp_path / "r", output_path=inp)
    rep = build_pair_report(inp, tmp_path / "r", output_path=inp, sr_in=16000)
    assert "16k-48k" in rep.index.read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------- CLI


def _run(*args):
    return CliRunner().invoke(app, ["report", *map(str, args)])


def test_cli_dir_mode_with_model(compare_dir, tmp_path):
    from test_pipeline import make_checkpoint_file

    ckpt = make_checkpoint_file(tmp_path / "tiny.pt")
    result = _run(compare_dir, "-o", tmp_path / "r", "--model", ckpt, "--max-clips", 1, "-q", "--n-iter", 2)
    assert result.exit_code == 0, result.output + result.stderr
    assert "wrote" in result.stdout and "5 clips scored, 2 shown" in result.stdout
    assert "no truth file" in result.stderr  # warnings on stderr
    text = (tmp_path / "r" / "index.html").read_text(encoding="utf-8")
    assert 'data-system="specsr"' in text and "tiny" in text and "(2 iterations)" in text  # the model and how run
    from specsr.checkpoint import load_checkpoint
    from specsr.models import count_parameters

    assert f"{count_parameters(load_checkpoint(ckpt).model):,} parameters" in text  # the checkpoint's count



def test_cli_errors(compare_dir, tmp_path):
    (tmp_path / "exists").mkdir()
    (tmp_path / "exists" / "x").write_text("x")
    assert_one_line_error(_run(compare_dir, "-o", tmp_path / "exists"), "exists already (use --force")
    assert_one_line_error(_run(compare_dir, "-o", tmp_path / "exists", "--force"), "not a specsr report")
    assert_one_line_error(_run(tmp_path / "nope", "-o", tmp_path / "r"), "not a folder")
    assert_one_line_error(_run(compare_dir, "--input", "x.wav", "-o", tmp_path / "r"), "not both")
    assert_one_line_error(_run("-o", tmp_path / "r"), "give DIR")
    assert_one_line_error(_run(compare_dir, "-o", compare_dir / "report"), "write the report outside")
    assert_one_line_error(_run(compare_dir, "-o", tmp_path / "r", "--model", "bundled", "--phase", "magic"),
                           "--phase must be one of")
    assert_one_line_error(_run(compare_dir, "-o", tmp_path / "r", "--model", "bundled", "--n-iter", -1),
                          "--n-iter must be >= 0")
    assert_one_line_error(_run("--input", tmp_path / "missing.wav", "--output", tmp_path / "o.wav", "-o",
                                tmp_path / "r"), "no such file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists"]


def test_cli_pair_mode(tmp_path):
    truth = noise(0.5, SR, level=0.2)
    inp = _write(tmp_path / "in.wav", brickwall(truth, SR, 4000)[:, ::6], 8000)
    out = _write(tmp_path / "out.wav", truth)
    result = _run("--input", inp, "--output", out, "--reference", out, "-o", tmp_path / "r")
    assert result.exit_code == 0, result.output + result.stderr
    assert "1 clip scored, 1 shown" in result.stdout
    # a model instead of an output file: specsr upsamples the input for the page
    from test_pipeline import make_checkpoint_file

    ckpt = make_checkpoint_file(tmp_path / "tiny.pt")
    result = _run("--input", inp, "--model", ckpt, "--reference", out, "-o", tmp_path / "r2", "--no-baselines")
    assert result.exit_code == 0, result.output + result.stderr
    page = parse(tmp_path / "r2" / "index.html")
    assert set(page.rows) == {("pair", "8k-48k", "input"), ("pair", "8k-48k", "specsr")}
    # with a partner for high cutoffs: the page says which; --wide-model alone is refused
    result = _run("--input", inp, "--model", ckpt, "--wide-model", ckpt, "-o", tmp_path / "r3", "--no-baselines")
    assert result.exit_code == 0, result.output + result.stderr
    assert f"cutoffs above its trained range: <code>{ckpt}</code>" in (tmp_path / "r3" / "index.html").read_text()
    assert_one_line_error(_run("--input", inp, "--wide-model", ckpt, "--output", out, "-o", tmp_path / "r4"),
                          "--wide-model goes with --model")


@pytest.mark.skipif(not (SHARED / "eval" / "ap-bwe").is_dir(), reason="needs ../shared/data/eval")
def test_report_of_published_demo_clips_equals_compare(tmp_path):
    rep = build_report(SHARED / "eval", tmp_path / "r", sets=["ap-bwe"], max_clips=1)
    expected = compare(SHARED / "eval", sets=["ap-bwe"])
    page = parse(rep.index)
    for row in expected.rows:
        assert page.rows[(row.set, row.ratio, row.system)]["lsd"] == row.mean.lsd
    assert rep.warnings == [] and rep.transcoded == []


# --------------------------------------------------------------------------------------- browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def _browser_skip_reason() -> str | None:
    if CHROMIUM is None or CHROMEDRIVER is None:
        return "headless Chromium not installed (Debian: apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed (pip install -e '.[dev]')"
    return None


@pytest.mark.skipif(_browser_skip_reason() is not None, reason=str(_browser_skip_reason()))
def test_page_renders_in_headless_chromium(report, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        driver.get(report.index.as_uri())
        probe = """return [
          Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth]),
          Array.from(document.querySelectorAll('audio')).map(
            a => [a.getAttribute('src'), a.readyState, a.error ? a.error.code : null, a.duration])]"""
        deadline = time.monotonic() + 60
        while True:
            images, players = driver.execute_script(probe)
            settled = all(done for _s, done, _w in images) and all(rs >= 1 or err for _s, rs, err, _d in players)
            if settled or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert images and players
        assert [s for s, _done, width in images if width != THUMB_WIDTH_PX] == []  # every spectrogram decoded
        assert [(s, err) for s, rs, err, _d in players if err or rs < 1] == []  # every player has its audio
        for src, _rs, _err, duration in players:
            expected_s = sf.info(report.out_dir / unquote(src)).duration
            assert duration == pytest.approx(expected_s, abs=0.05), src
        assert driver.title.startswith("specsr report")
    finally:
        driver.quit()


def test_thumbnails_are_small_palette_pngs_of_one_size(report):
    from PIL import Image

    pngs = sorted(report.out_dir.rglob("*.png"))
    assert pngs
    for png in pngs:
        with Image.open(png) as im:
            assert im.mode == "P" and im.size == (THUMB_WIDTH_PX, THUMB_HEIGHT_PX), png


def test_report_folder_permissions_are_normal(report):
    umask = os.umask(0)
    os.umask(umask)
    assert (report.out_dir.stat().st_mode & 0o777) == 0o777 & ~umask
    assert (report.index.stat().st_mode & 0o777) == 0o666 & ~umask


def test_odd_names_are_escaped_and_linked(tmp_path):
    clip = tmp_path / "cmp" / "set & <co>" / "16k-48k" / "it's #1 ?"
    truth = noise(0.3, SR, level=0.2)
    _write(clip / "truth.wav", truth)
    _write(clip / "input.wav", brickwall(truth, SR, 8000))
    _write(clip / "sys é+\"x\".wav", truth)
    rep = build_report(tmp_path / "cmp", tmp_path / "r")
    html5lib = pytest.importorskip("html5lib")
    html5lib.HTMLParser(strict=True).parse(rep.index.read_text(encoding="utf-8"))
    page = parse(rep.index)
    assert ("set & <co>", "16k-48k", 'sys é+"x"') in page.rows
    for ref in page.refs:
        assert (rep.out_dir / unquote(urlparse(ref).path)).is_file(), ref
