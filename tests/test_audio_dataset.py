"""Audio datasets (the default of ``specsr convert``): shards bit-exact, disk size, resume, a full disk, older
formats, bad input; and the on-the-fly pairs made from them (per-step seeding, ranks, validation)."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import assert_one_line_error
from test_dataset import write_noise
from typer.testing import CliRunner

from specsr.config import DegradeConfig, STFTConfig, TaskConfig
from specsr.dataset import convert as convert_module
from specsr.dataset.convert import build_dataset
from specsr.dataset.onthefly import PairMaker, validation_pairs
from specsr.dataset.reader import MANIFEST_NAME, SpectrogramPairs, load_dataset_info
from specsr.dataset.segments import AudioSegments
from specsr.errors import SpecsrError
from specsr.train import ResumableSampler

SR = 48000
FAST = dict(segment_seconds=0.5, workers=1, progress=False)
runner = CliRunner()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """Two groups of full-band files: 16-bit 48 kHz mono (stored bit-exact), 24-bit 44.1 kHz stereo, float."""
    src = tmp_path / "src"
    write_noise(src / "a" / "one.wav", seed=1, seconds=1.7)
    write_noise(src / "a" / "two.flac", seed=2, sr=44100, channels=2, subtype="PCM_24")
    write_noise(src / "b" / "three.wav", seed=3, subtype="FLOAT")
    write_noise(src / "b" / "four.wav", seed=4, seconds=2.2)
    return src


def segments_of(root: Path) -> dict[str, np.ndarray]:
    out = {}
    for split in ("train", "val"):
        try:
            ds = AudioSegments(root, split)
        except SpecsrError:
            continue
        for i, it in enumerate(ds.items):
            out[it["id"]] = ds.samples(i)
    return out


def test_shards_hold_the_audio_bit_exact(source: Path, tmp_path: Path) -> None:
    summary = build_dataset([source], tmp_path / "ds", shard_size=2, **FAST)
    info = load_dataset_info(tmp_path / "ds")
    assert info.kind == "audio" and info.version == 2 and info.stft is None
    assert summary.files_used == 4 and summary.kind == "audio"
    # a 16-bit 48 kHz mono source comes back sample for sample (it has no silence to trim)
    original, _ = sf.read(source / "a" / "one.wav", dtype="int16")
    items = [it for it in info.items if it["source"] == "a/one.wav"]
    segs = segments_of(tmp_path / "ds")
    joined = np.concatenate([segs[it["id"]] for it in sorted(items, key=lambda it: it["segment"])])
    np.testing.assert_array_equal(joined, original[: len(joined)])
    assert len(original) - len(joined) < info.segment_samples / 2  # a last part under half a segment is dropped
    # every shard is a plain 16-bit WAV that any tool reads, holding its segments one after another
    for shard in info.shards:
        data, sr = sf.read(tmp_path / "ds" / "shards" / f"{shard['name']}.wav", dtype="int16")
        assert sr == SR and len(data) == shard["n_samples"]
        for it in (it for it in info.items if it["shard"] == shard["name"]):
            np.testing.assert_array_equal(data[it["offset"]:it["offset"] + it["n_samples"]], segs[it["id"]])
    # reading: whole segments zero-padded, with their lengths
    ds = AudioSegments(tmp_path / "ds", "train")
    item = ds[0]
    assert item["wav"].dtype == torch.int16 and item["wav"].shape == (info.segment_samples,)
    assert int(item["n_samples"]) == ds.items[0]["n_samples"]
    with pytest.raises(SpecsrError, match="holds no spectrogram pairs"):
        SpectrogramPairs(tmp_path / "ds", "train")


def test_disk_is_the_audio_as_16_bit_pcm(source: Path, tmp_path: Path) -> None:
    summary = build_dataset([source], tmp_path / "ds", **FAST)
    pcm_bytes = summary.seconds_used * SR * 2
    shard_bytes = sum(p.stat().st_size for p in (tmp_path / "ds" / "shards").iterdir())
    assert shard_bytes <= pcm_bytes + 44 * summary.n_shards
    assert summary.disk_bytes <= 1.25 * pcm_bytes  # with the manifest


def test_resume_after_interruption_equals_one_run(source: Path, tmp_path: Path, monkeypatch) -> None:
    build_dataset([source], tmp_path / "full", shard_size=2, **FAST)
    build_dataset([source], tmp_path / "part", shard_size=2, max_files=2, **FAST)
    (tmp_path / "part" / "shards" / "train-00009.wav.tmp").write_bytes(b"left over")  # a killed run's temp file
    build_dataset([source], tmp_path / "part", shard_size=2, **FAST)
    a, b = segments_of(tmp_path / "full"), segments_of(tmp_path / "part")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not list((tmp_path / "part" / "shards").glob("*.tmp"))


def test_out_of_disk_space_keeps_complete_shards_and_resumes(source: Path, tmp_path: Path, monkeypatch) -> None:
    build_dataset([source], tmp_path / "full", shard_size=2, **FAST)
    writes = {"n": 0}
    original = convert_module._AudioShardWriter.add

    def full_disk(self, arrays, metas):
        writes["n"] += 1
        if writes["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, arrays, metas)

    monkeypatch.setattr(convert_module._AudioShardWriter, "add", full_disk)
    out = tmp_path / "ds"
    with pytest.raises(SpecsrError, match="out of disk space while writing a shard.*rerun the same command"):
        build_dataset([source], out, shard_size=2, **FAST)
    info = load_dataset_info(out)  # the manifest lists only complete shards, all present and whole
    assert info.shards and not list((out / "shards").glob("*.tmp"))
    listed = {s["name"] + ".wav" for s in info.shards}
    assert {p.name for p in (out / "shards").iterdir()} == listed
    monkeypatch.setattr(convert_module._AudioShardWriter, "add", original)
    build_dataset([source], out, shard_size=2, **FAST)
    a, b = segments_of(tmp_path / "full"), segments_of(out)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_older_and_other_datasets(source: Path, tmp_path: Path) -> None:
    build_dataset([source], tmp_path / "spec", spectrograms=True, variants=1, **FAST)
    manifest = json.loads((tmp_path / "spec" / MANIFEST_NAME).read_text())
    manifest["version"] = 1  # as written before audio datasets existed: no kind
    del manifest["kind"]
    (tmp_path / "spec" / MANIFEST_NAME).write_text(json.dumps(manifest))
    info = load_dataset_info(tmp_path / "spec")  # training still reads it
    assert info.kind == "spectrograms" and info.version == 1
    assert len(SpectrogramPairs(tmp_path / "spec", "train")) > 0
    with pytest.raises(SpecsrError, match="older format.*rerun specsr convert into a new output folder"):
        build_dataset([source], tmp_path / "spec", spectrograms=True, variants=1, **FAST)
    manifest["version"] = 3
    (tmp_path / "spec" / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(SpecsrError, match="version 3 is not supported.*newer specsr"):
        load_dataset_info(tmp_path / "spec")
    build_dataset([source], tmp_path / "audio", **FAST)
    with pytest.raises(SpecsrError, match="holds audio segments; resume it without --spectrograms"):
        build_dataset([source], tmp_path / "audio", spectrograms=True, variants=1, **FAST)
    with pytest.raises(SpecsrError, match="other settings:.*segment_seconds"):
        build_dataset([source], tmp_path / "audio", **{**FAST, "segment_seconds": 0.25})
    shard = next((tmp_path / "audio" / "shards").iterdir())
    shard.write_bytes(shard.read_bytes()[:30])
    with pytest.raises(SpecsrError, match="not a complete specsr audio shard"):
        AudioSegments(tmp_path / "audio", shard.name.split("-")[0]).samples(0)


def test_bad_sources_are_skipped_and_named(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_noise(src / "good.wav", seconds=1.0)
    write_noise(src / "narrow.wav", lowpass_hz=4000)
    write_noise(src / "short.wav", seconds=0.1)
    (src / "empty.wav").write_bytes(b"")
    (src / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 8)
    warnings: list[str] = []
    summary = build_dataset([src], tmp_path / "ds", val_fraction=0, on_warning=warnings.append, **FAST)
    assert summary.files_used == 1
    assert summary.files_skipped == {"band-limited": 1, "too short": 1, "empty": 1, "unreadable": 1}
    for name in ("narrow.wav", "short.wav", "empty.wav", "corrupt.wav"):
        assert any(name in w for w in warnings), name


def test_cli_audio_by_default_and_pair_options_need_spectrograms(source: Path, tmp_path: Path) -> None:
    from specsr.cli.main import app

    result = runner.invoke(app, ["convert", str(source), "-o", str(tmp_path / "ds"), "--segment-seconds", "0.5",
                                 "--workers", "1", "-q"])
    assert result.exit_code == 0, result.output
    assert "segments: train" in result.output and "MB per minute of audio" in result.output
    result = runner.invoke(app, ["convert", str(source), "-o", str(tmp_path / "ds2"), "--variants", "2", "-q"])
    assert_one_line_error(result, "--variants: for fixed spectrogram pairs only (add --spectrograms)")
    assert not (tmp_path / "ds2").exists()


def test_content_limit_lowers_a_groups_content_only(source: Path, tmp_path: Path) -> None:
    """--content-limit: a group's sources are taken to end at HZ (never above what they hold), the others as
    detected; the audio is the same; the limits are part of the recipe (a resume must give them again)."""
    build_dataset([source], tmp_path / "plain", **FAST)
    build_dataset([source], tmp_path / "ds", content_limits=("b=16000", "a/=30000"), **FAST)
    plain, limited = (json.loads((tmp_path / d / MANIFEST_NAME).read_text()) for d in ("plain", "ds"))
    before = {it["id"]: it["source_nyquist_hz"] for it in plain["items"]}
    assert {it["group"] for it in limited["items"]} == {"a", "b"}
    for it in limited["items"]:  # a's limit lies above both its rates' Nyquists: nothing changes there
        assert it["source_nyquist_hz"] == (16000.0 if it["group"] == "b" else before[it["id"]])
    a, b = segments_of(tmp_path / "plain"), segments_of(tmp_path / "ds")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert limited["settings"]["content_limits"] == {"a": 30000.0, "b": 16000.0}
    assert "content_limits" not in plain["settings"]  # datasets built before the option still resume
    with pytest.raises(SpecsrError, match="other settings:.*content_limits"):
        build_dataset([source], tmp_path / "ds", **FAST)
    with pytest.raises(SpecsrError, match="--content-limit: no group named c or under it; groups: a, b"):
        build_dataset([source], tmp_path / "new", content_limits=("c=1000",), **FAST)
    for bad in ("b", "b=", "=2000", "b=-1", "b=abc"):
        with pytest.raises(SpecsrError, match="--content-limit: expected GROUP=HZ"):
            build_dataset([source], tmp_path / "new", content_limits=(bad,), **FAST)
    with pytest.raises(SpecsrError, match="--content-limit: b is given twice"):
        build_dataset([source], tmp_path / "new", content_limits=("b=1000", "b/=2000"), **FAST)
    assert not (tmp_path / "new").exists()
    from specsr.cli.main import app

    result = runner.invoke(app, ["convert", str(source), "-o", str(tmp_path / "cli"), "--content-limit", "zz=100",
                                 "-q"])
    assert_one_line_error(result, "--content-limit: no group named zz")
    assert not (tmp_path / "cli").exists()


# ----------------------------------------------------------------------------------------------------
# Pairs on the fly

STFT = STFTConfig(48000, 1024, 256)


def maker(seed: int = 0, rank: int = 0, **degrade) -> PairMaker:
    return PairMaker(STFT, TaskConfig(2000.0, 12000.0), DegradeConfig(**degrade), crop_frames=16,
                     gain_db_range=(-12.0, 6.0), seed=seed, rank=rank)


@pytest.fixture
def segments(source: Path, tmp_path: Path) -> AudioSegments:
    build_dataset([source], tmp_path / "ds", **FAST)
    return AudioSegments(tmp_path / "ds", "train")


def batch_of(segments: AudioSegments, indices: list[int]) -> dict[str, torch.Tensor]:
    return torch.utils.data.default_collate([segments[i] for i in indices])


def test_pairs_are_seeded_per_step_and_rank(segments: AudioSegments) -> None:
    batch = batch_of(segments, [0, 1, 2])
    a, again = maker().make(batch, step=5), maker().make(batch, step=5)
    for key in ("input", "target", "cutoff_hz", "sr_in"):
        assert torch.equal(a[key], again[key]), key  # bit for bit: what a resumed run draws
    assert a["input"].shape == (3, STFT.n_bins, 16) and a["target"].shape == a["input"].shape
    later, other_rank = maker().make(batch, step=6), maker(rank=1).make(batch, step=5)
    assert a["draws"] != later["draws"] and a["draws"] != other_rank["draws"]
    assert not torch.equal(a["target"], later["target"])  # other crops, gains, noise
    # the input is the target band-limited at the drawn cutoff: far below it above the cutoff
    for i, d in enumerate(a["draws"]):
        if d.filter == "shelf":
            continue
        k = int(1.1 * d.sr_in / 2 / (SR / STFT.n_fft))
        assert float((a["target"][i, k:] - a["input"][i, k:]).mean()) > 3.0  # > 30 dB on average


def test_draws_cover_the_space_within_the_task_range() -> None:
    m = maker(shelf_prob=0.3)
    draws = m.draws(400, torch.Generator().manual_seed(0))
    assert all(1999.0 <= d.cutoff_hz <= 12000.0 for d in draws)
    # no shelf: MP3-like shelves lie at 14-20 kHz, above this task's range
    assert {d.filter for d in draws} == {"resample_poly", "soxr", "cheby1", "butter", "sinc"}
    assert all(0.8 * d.sr_in / 2 - 1 <= d.cutoff_hz <= 0.97 * d.sr_in / 2 + 1 for d in draws
               if d.filter == "sinc" and d.cutoff_hz > 2000.0)
    rates = {d.sr_in for d in draws}
    assert {8000, 11025, 16000, 22050, 24000} <= rates and len(rates) > 30  # discrete and continuous
    assert any(d.noise_db is not None for d in draws) and any(d.noise_db is None for d in draws)
    assert {d.order for d in draws if d.filter == "butter"} == set(range(4, 13))
    wide = PairMaker(STFT, TaskConfig(2000.0, 22050.0), DegradeConfig(shelf_prob=0.5), crop_frames=16,
                     gain_db_range=(0.0, 0.0), seed=0).draws(200, torch.Generator().manual_seed(1))
    shelves = [d for d in wide if d.filter == "shelf"]
    assert {d.filter for d in wide} == {"resample_poly", "soxr", "cheby1", "butter", "sinc", "shelf"}
    assert shelves and all(14000 <= d.cutoff_hz <= 20000 and 20 <= d.shelf_db <= 60 for d in shelves)
    assert max(d.cutoff_hz for d in wide) > 20000  # up to 22.05 kHz


def test_ranks_draw_different_items_and_degradations(segments: AudioSegments) -> None:
    a = ResumableSampler(segments, num_replicas=2, rank=0, shuffle=True, seed=0, drop_last=True)
    b = ResumableSampler(segments, num_replicas=2, rank=1, shuffle=True, seed=0, drop_last=True)
    assert not set(a) & set(b)
    draws = [maker(rank=r).draws(8, torch.Generator().manual_seed(maker(rank=r).step_seed(0))) for r in (0, 1)]
    assert draws[0] != draws[1]


def test_validation_pairs_are_fixed_by_the_seed(segments: AudioSegments) -> None:
    a, b = validation_pairs(segments, maker(), 3), validation_pairs(segments, maker(), 3)
    assert len(a) == 3
    for x, y in zip(a, b, strict=True):
        for key in ("input", "target", "wav_input", "wav_target", "cutoff_hz"):
            assert torch.equal(x[key], y[key])
        assert x["wav_input"].shape == x["wav_target"].shape
        assert x["input"].shape[-1] == x["target"].shape[-1]
    assert [float(p["cutoff_hz"]) for p in a] != [float(p["cutoff_hz"]) for p in validation_pairs(
        segments, maker(seed=1), 3)]
