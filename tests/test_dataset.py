"""specsr.dataset: building, resuming and reading spectrogram-pair datasets (tiny synthetic audio)."""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from specsr.config import ConvertConfig
from specsr.dataset import pairs
from specsr.dataset.convert import build_dataset
from specsr.dataset.reader import LOG_POWER_PAD, MANIFEST_NAME, SpectrogramPairs, load_dataset_info, shard_kinds
from specsr.dataset.sources import SourceFile, assign_splits
from specsr.errors import SpecsrError

SR = 48000
SEGMENT_S = 0.5  # 24000 samples -> 47 frames of the default 48k-2048 STFT
FAST = dict(segment_seconds=SEGMENT_S, variants=2, workers=1, progress=False, spectrograms=True)


def write_noise(path: Path, *, sr: int = SR, seconds: float = 1.2, channels: int = 1, seed: int = 0,
                lowpass_hz: float | None = None, subtype: str = "PCM_16") -> Path:
    """Steady full-band (or brick-wall low-passed) noise at -20 dBFS."""
    rng = np.random.default_rng(seed)
    x = 0.1 * rng.standard_normal((channels, int(seconds * sr)))
    if lowpass_hz is not None:
        spec = np.fft.rfft(x, axis=-1)
        spec[:, np.fft.rfftfreq(x.shape[-1], 1 / sr) > lowpass_hz] = 0
        x = np.fft.irfft(spec, x.shape[-1], axis=-1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.T.astype(np.float32), sr, subtype=subtype)
    return path


@pytest.fixture
def plain_source(tmp_path: Path) -> Path:
    """Two groups (folders a, b) of full-band files in several formats, rates and channel counts."""
    src = tmp_path / "src"
    write_noise(src / "a" / "one.wav", seed=1)
    write_noise(src / "a" / "two.flac", seed=2, sr=44100, channels=2, subtype="PCM_24")
    write_noise(src / "b" / "three.wav", seed=3, subtype="FLOAT")
    write_noise(src / "b" / "four.wav", seed=4, subtype="PCM_U8")
    return src


def arrays_by_id(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    info = load_dataset_info(root)
    out = {}
    for it in info.items:
        x = np.load(root / "shards" / f"{it['shard']}.input.npy")[it["index"]]
        y = np.load(root / "shards" / f"{it['shard']}.target.npy")[it["index"]]
        out[it["id"]] = (x, y)
    return out


def content(root: Path) -> dict[str, tuple]:
    """Items (without their place in the shards) and arrays, keyed by item id."""
    info = load_dataset_info(root)
    arrays = arrays_by_id(root)
    drop = ("shard", "index")
    return {it["id"]: ({k: v for k, v in it.items() if k not in drop}, *arrays[it["id"]]) for it in info.items}


def assert_same_content(a: Path, b: Path) -> None:
    ca, cb = content(a), content(b)
    assert ca.keys() == cb.keys()
    for key in ca:
        assert ca[key][0] == cb[key][0]
        np.testing.assert_array_equal(ca[key][1], cb[key][1])
        np.testing.assert_array_equal(ca[key][2], cb[key][2])


def test_manifest_round_trip(plain_source: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    summary = build_dataset([plain_source], out, **FAST)
    info = load_dataset_info(out)
    assert info.stft.n_fft == 2048 and info.sr_out == SR
    assert info.segment_samples == 24000 and info.n_frames == 47
    assert info.settings["variants"] == 2 and len(info.manifest_sha256) == 64
    # 4 files x 2 segments (1.2 s: the 0.2 s rest is under half a segment) x 2 variants
    assert len(info.items) == 16 == sum(s["n_items"] for s in info.shards)
    assert summary.files_used == 4 and summary.pairs["train"] + summary.pairs["val"] == 16
    assert {it["split"] for it in info.items} == {"train", "val"}
    for shard in info.shards:
        x = np.load(out / "shards" / f"{shard['name']}.input.npy")
        y = np.load(out / "shards" / f"{shard['name']}.target.npy")
        assert x.dtype == y.dtype == np.float16
        assert x.shape == y.shape == (shard["n_items"], 1025, 47)
        if shard["split"] == "val":
            w = np.load(out / "shards" / f"{shard['name']}.wav_target.npy")
            assert w.dtype == np.float32 and w.shape == (shard["n_items"], 24000)
        else:
            assert not (out / "shards" / f"{shard['name']}.wav_target.npy").exists()
        indices = sorted(it["index"] for it in info.items if it["shard"] == shard["name"])
        assert indices == list(range(shard["n_items"]))
    # one split per group; the 44.1 kHz file is resampled and remembers its Nyquist
    for group in {it["group"] for it in info.items}:
        assert len({it["split"] for it in info.items if it["group"] == group}) == 1
    flac = [it for it in info.items if it["source"] == "a/two.flac"]
    assert flac and all(it["source_nyquist_hz"] <= 22050 and it["source_sr"] == 44100 for it in flac)
    assert {it["sr_in"] for it in info.items} <= {8000, 12000, 16000, 24000}
    # the degraded input is empty above its cutoff, the target is not
    it = info.items[0]
    x, y = arrays_by_id(out)[it["id"]]
    k = int(it["cutoff_hz"] * 2048 / SR) + 20
    assert x[k:].astype(np.float32).mean() < y[k:].astype(np.float32).mean() - 5
    assert not list(out.rglob("*.tmp")) and not (out / "tmp").exists()


@pytest.mark.slow  # starts two worker processes (~5 s)
def test_same_seed_same_dataset_whatever_the_workers(plain_source: Path, tmp_path: Path) -> None:
    build_dataset([plain_source], tmp_path / "one", **FAST)
    build_dataset([plain_source], tmp_path / "two", **{**FAST, "workers": 2})
    assert_same_content(tmp_path / "one", tmp_path / "two")
    shards = sorted(p.name for p in (tmp_path / "one" / "shards").iterdir())
    assert shards == sorted(p.name for p in (tmp_path / "two" / "shards").iterdir())
    for name in shards:  # results are consumed in task order: even the shard layout is the same
        np.testing.assert_array_equal(np.load(tmp_path / "one" / "shards" / name),
                                      np.load(tmp_path / "two" / "shards" / name))
    build_dataset([plain_source], tmp_path / "three", **{**FAST, "seed": 1})
    a, b = arrays_by_id(tmp_path / "one"), arrays_by_id(tmp_path / "three")
    assert any(not np.array_equal(a[k][0], b[k][0]) for k in a.keys() & b.keys())


def test_resume_after_interruption(plain_source: Path, tmp_path: Path) -> None:
    full = tmp_path / "full"
    build_dataset([plain_source], full, **FAST)
    part = tmp_path / "part"
    first = build_dataset([plain_source], part, max_files=1, **{**FAST, "shard_size": 3})
    assert first.files_used == 1 and first.files_left == 3
    # a killed run leaves temp files and a renamed shard that the manifest does not list (and runs of
    # earlier versions a work folder)
    (part / "shards" / ".train-00077.input.npy.a1b2c3.tmp").write_bytes(b"half")
    (part / "shards" / "train-00077.input.npy.tmp").write_bytes(b"half")
    (part / "shards" / "train-00078.input.npy").write_bytes(b"unlisted")
    (part / "tmp").mkdir()
    (part / "tmp" / "0000001-x.input.npy").write_bytes(b"partial")
    second = build_dataset([plain_source], part, **{**FAST, "shard_size": 3})
    assert second.files_resumed == 1 and second.files_processed == 3 and second.files_left == 0
    assert not (part / "shards" / "train-00077.input.npy.tmp").exists()
    assert not (part / "shards" / ".train-00077.input.npy.a1b2c3.tmp").exists()
    assert not (part / "shards" / "train-00078.input.npy").exists()
    assert not (part / "tmp").exists()
    ids = [it["id"] for it in load_dataset_info(part).items]
    assert len(ids) == len(set(ids)) == 16
    assert_same_content(full, part)
    third = build_dataset([plain_source], part, **{**FAST, "shard_size": 3})  # nothing left to do
    assert third.files_processed == 0 and third.files_resumed == 4
    assert len(load_dataset_info(part).items) == 16


def npy_layout(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """``(shape, dtype, data offset)`` from a .npy file's header."""
    with open(path, "rb") as fh:
        assert np.lib.format.read_magic(fh) == (1, 0)
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        return shape, dtype, fh.tell()


def test_each_array_is_written_once(plain_source: Path, tmp_path: Path, monkeypatch) -> None:
    opened: list[Path] = []  # every .npy memmap created, and every file renamed into place
    renamed: list[Path] = []
    open_memmap, replace = np.lib.format.open_memmap, os.replace

    def recording_open_memmap(filename, mode="r+", *args, **kwargs):
        if "w" in mode:
            opened.append(Path(filename))
        return open_memmap(filename, mode, *args, **kwargs)

    def recording_replace(src, dst):
        renamed.append(Path(dst))
        replace(src, dst)

    monkeypatch.setattr(np.lib.format, "open_memmap", recording_open_memmap)
    monkeypatch.setattr(os, "replace", recording_replace)
    out = tmp_path / "ds"
    config = ConvertConfig(segment_seconds=SEGMENT_S, variants=2, shard_size=3, spectrograms=True)
    build_dataset([plain_source], out, config, workers=1, progress=False)
    shard_files = sorted((out / "shards").iterdir())
    # one memmap per shard file, in the shards folder (no per-file work files, no copy of a partial shard)
    assert len(opened) == len(shard_files) and all(p.parent == out / "shards" for p in opened)
    assert sorted(p for p in renamed if p.parent == out / "shards") == shard_files
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME, "shards"]
    info = load_dataset_info(out)
    assert any(s["n_items"] < 3 for s in info.shards)  # partial shards, cut in place to their exact size
    for shard in info.shards:
        for p in (out / "shards").glob(f"{shard['name']}.*.npy"):
            shape, dtype, offset = npy_layout(p)
            assert shape[0] == shard["n_items"] and offset % 64 == 0
            assert p.stat().st_size == offset + shard["n_items"] * math.prod(shape[1:]) * dtype.itemsize
    build_dataset([plain_source], tmp_path / "same", workers=1, progress=False, segment_seconds=SEGMENT_S,
                  variants=2, shard_size=3, spectrograms=True)  # keyword overrides of the defaults: the same recipe
    assert load_dataset_info(tmp_path / "same").settings == info.settings
    assert_same_content(out, tmp_path / "same")


def test_interrupted_run_leaves_only_complete_shards(plain_source: Path, tmp_path: Path, monkeypatch) -> None:
    calls = []
    process_file = pairs._process_file

    def interrupted(task):
        calls.append(task)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return process_file(task)

    monkeypatch.setattr(pairs, "_process_file", interrupted)
    out = tmp_path / "ds"
    with pytest.raises(KeyboardInterrupt):
        build_dataset([plain_source], out, **{**FAST, "shard_size": 3})
    shards = load_dataset_info(out).shards  # the complete ones, and nothing else on disk
    assert shards and sorted(p.name for p in (out / "shards").iterdir()) == sorted(
        f"{s['name']}.{kind}.npy" for s in shards for kind in shard_kinds(s["split"]))
    monkeypatch.setattr(pairs, "_process_file", process_file)
    summary = build_dataset([plain_source], out, **{**FAST, "shard_size": 3})
    assert summary.files_resumed == 1 and summary.files_used == 4
    build_dataset([plain_source], tmp_path / "full", **FAST)
    assert_same_content(tmp_path / "full", out)


def test_results_in_flight_are_bounded(monkeypatch) -> None:
    """At most 2 x workers files, and (beyond the first) _IN_FLIGHT_BYTES of their arrays, wait in memory."""
    sizes = [4, 4, 4, 20, 1, 1, 1, 1, 1, 1, 30, 2]  # a task is its result's size here
    submitted: list[int] = []

    class InstantPool:
        def __init__(self, *args, **kwargs) -> None:
            pass

        def submit(self, fn, task):
            submitted.append(task)
            future: Future = Future()
            future.set_result(task)
            return future

        def shutdown(self, **kwargs) -> None:
            pass

    monkeypatch.setattr(pairs, "ProcessPoolExecutor", InstantPool)
    monkeypatch.setattr(pairs, "_result_bytes", lambda task: task)
    monkeypatch.setattr(pairs, "_IN_FLIGHT_BYTES", 10)
    results = []
    for res in pairs.run_tasks(iter(sizes), workers=2):
        held = submitted[len(results):]  # submitted and not yet handed out, beside this one
        assert len(held) <= 4 and (len(held) == 1 or sum(held) <= 10)
        results.append(res)
    assert results == sizes


def test_band_limited_source_rejected_unless_allowed(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_noise(src / "full" / "ok.wav", seed=1)
    write_noise(src / "narrow" / "lp.wav", seed=2, lowpass_hz=8000)
    summary = build_dataset([src], tmp_path / "strict", **FAST)
    assert summary.files_skipped == {"band-limited": 1} and summary.files_used == 1
    assert {it["source"] for it in load_dataset_info(tmp_path / "strict").items} == {"full/ok.wav"}
    summary = build_dataset([src], tmp_path / "lenient", allow_band_limited=True, **FAST)
    assert summary.files_used == 2 and not summary.files_skipped
    lp = [it for it in load_dataset_info(tmp_path / "lenient").items if it["source"] == "narrow/lp.wav"]
    assert lp and all(it["source_nyquist_hz"] < 9000 for it in lp)  # the loss mask follows the content


def test_bad_files_are_skipped_and_counted(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_noise(src / "good.wav")
    (src / "x.wav").write_bytes(b"\x00garbage\xff" * 50)
    (src / "zero.wav").write_bytes(b"")
    write_noise(src / "phone.wav", sr=16000)
    write_noise(src / "click.wav", seconds=0.1)
    warnings: list[str] = []
    summary = build_dataset([src], tmp_path / "ds", on_warning=warnings.append, **FAST)
    assert summary.files_used == 1
    assert summary.files_skipped == {"unreadable": 1, "empty": 1, "rate below sr_out": 1, "too short": 1}
    assert len(warnings) == 4  # every skipped file named, whatever the reason
    for name, why in (("x.wav", "unreadable"), ("zero.wav", "empty"), ("phone.wav", "rate below sr_out (16000 Hz"),
                      ("click.wav", "too short (0.10 s")):
        assert any(w.startswith(f"skipped {name}: {why}") for w in warnings), (name, warnings)
    sources = json.loads((tmp_path / "ds" / MANIFEST_NAME).read_text())["sources"]
    assert sources["x.wav"]["status"] == "skipped" and sources["x.wav"]["reason"] == "unreadable"


def test_skips_are_named_up_to_a_cap(tmp_path: Path, monkeypatch) -> None:
    import specsr.dataset.convert as convert

    monkeypatch.setattr(convert, "NAMED_SKIPS", 2)
    src = tmp_path / "src"
    write_noise(src / "good.wav")
    for i in range(4):
        write_noise(src / f"lp{i}.wav", seed=i, lowpass_hz=8000)
    warnings: list[str] = []
    summary = build_dataset([src], tmp_path / "ds", on_warning=warnings.append, **FAST)
    assert summary.files_skipped == {"band-limited": 4}
    assert [w.split(":")[0] for w in warnings[:2]] == ["skipped lp0.wav", "skipped lp1.wav"]
    assert "no content above 8004 Hz" in warnings[0]  # says why: where its content ends
    assert len(warnings) == 3 and "more files skipped as band-limited" in warnings[2]


def test_a_dataset_with_nothing_in_it_is_not_left_behind(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_noise(src / "lp.wav", lowpass_hz=8000)
    with pytest.raises(SpecsrError, match="every source file was skipped .band-limited: 1.; no dataset was left"):
        build_dataset([src], tmp_path / "ds", **FAST)
    assert not (tmp_path / "ds").exists()
    (tmp_path / "mine").mkdir()  # a folder the user made stays, empty
    with pytest.raises(SpecsrError):
        build_dataset([src], tmp_path / "mine", **FAST)
    assert (tmp_path / "mine").is_dir() and not any((tmp_path / "mine").iterdir())


def test_interrupted_before_any_shard_leaves_nothing(plain_source: Path, tmp_path: Path, monkeypatch) -> None:
    def interrupted(task):
        raise KeyboardInterrupt

    monkeypatch.setattr(pairs, "_process_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_dataset([plain_source], tmp_path / "ds", **FAST)
    assert not (tmp_path / "ds").exists()


def test_one_group_dominating_validation_is_warned_about(tmp_path: Path) -> None:
    for g, n in (("big", 3), ("small", 1), ("train", 2)):
        for i in range(n):
            write_noise(tmp_path / "src" / g / f"{i}.wav", seed=i)
    summary = build_dataset([tmp_path / "src"], tmp_path / "ds", val_groups=["big", "small"],
                            **{**FAST, "variants": 1})
    assert any(w.startswith("validation is 75 % one group (big: 6 of 8 pairs)") for w in summary.warnings)
    for g in ("a", "b", "c", "d", "e"):
        write_noise(tmp_path / "even" / g / "0.wav")
    summary = build_dataset([tmp_path / "even"], tmp_path / "ds2", val_groups=["a", "b", "c", "d"],
                            **{**FAST, "variants": 1})
    assert not any("validation is" in w for w in summary.warnings)  # 25 % each: balanced


def test_a_validation_split_far_larger_than_asked_is_warned_about(tmp_path: Path) -> None:
    write_noise(tmp_path / "src" / "huge" / "0.wav", seconds=3.0)  # one large folder drawn as val
    for g in ("a", "b", "c"):
        write_noise(tmp_path / "src" / g / "0.wav")
    summary = build_dataset([tmp_path / "src"], tmp_path / "ds", val_groups=["huge"], **{**FAST, "variants": 1})
    share = summary.pairs["val"] / (summary.pairs["val"] + summary.pairs["train"])
    assert share > 0.4
    assert any(w.startswith(f"validation holds {100 * share:.0f} % of the pairs (huge; 10 % asked)")
               for w in summary.warnings), summary.warnings


def test_val_goes_to_groups_that_can_be_used() -> None:
    files = [SourceFile(Path(f"{g}/{i}.wav"), f"{g}/{i}.wav", g) for g in ("drums", "piano", "voice") for i in range(2)]
    usable = lambda f: f.group != "drums"  # noqa: E731  (e.g. one-shot samples too short for a segment)
    for seed in range(20):
        splits, mode = assign_splits(files, 0.1, seed, usable)
        val = {f.group for f in files if splits[f.relpath] == "val"}
        assert mode == "group" and len(val) == 1 and "drums" not in val
    only_one = lambda f: f.group == "voice"  # noqa: E731
    splits, _ = assign_splits(files, 0.5, 0, only_one)
    assert all(splits[f.relpath] == "train" for f in files)  # train keeps the one usable group


def test_val_groups_chosen_by_name(tmp_path: Path) -> None:
    files = [SourceFile(Path(f"{g}/{i}.wav"), f"{g}/{i}.wav", g) for g in ("drums", "piano", "voice") for i in range(2)]
    splits, mode = assign_splits(files, 0.1, 0, val_groups=["voice"])
    assert mode == "group" and {f.group for f in files if splits[f.relpath] == "val"} == {"voice"}
    with pytest.raises(SpecsrError, match="no group named flute; groups: drums, piano, voice"):
        assign_splits(files, 0.1, 0, val_groups=["flute"])
    with pytest.raises(SpecsrError, match="leave at least one"):
        assign_splits(files, 0.1, 0, val_groups=["drums", "piano", "voice"])
    for g in ("a", "b"):
        write_noise(tmp_path / "src" / g / "0.wav")
    summary = build_dataset([tmp_path / "src"], tmp_path / "ds", val_groups=["b"], **{**FAST, "variants": 1})
    assert summary.groups == {"train": 1, "val": 1}
    manifest = json.loads((tmp_path / "ds" / MANIFEST_NAME).read_text())
    assert manifest["settings"]["val_groups"] == ["b"] and manifest["sources"]["b/0.wav"]["split"] == "val"
    with pytest.raises(SpecsrError, match="val_groups"):  # resuming with another choice is refused
        build_dataset([tmp_path / "src"], tmp_path / "ds", val_groups=["a"], **{**FAST, "variants": 1})


def test_single_group_splits_by_file(tmp_path: Path) -> None:
    for i in range(4):
        write_noise(tmp_path / "src" / "only" / f"{i}.wav", seed=i)
    summary = build_dataset([tmp_path / "src"], tmp_path / "ds", **{**FAST, "variants": 1})
    assert summary.split_mode == "file" and "one group" in " ".join(summary.warnings)
    assert summary.pairs == {"train": 6, "val": 2}  # one file of four (round(0.1 * 4) -> at least 1)


def test_silent_parts_are_trimmed_and_dropped(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    lead, seg = 24 * 1024, int(SEGMENT_S * SR)  # leading silence on a frame of the trim
    x = np.zeros(lead + 5 * seg + SR // 4, np.float32)  # then 5 segments and trailing silence
    x[lead:lead + seg] = 0.1 * rng.standard_normal(seg)
    x[lead + 2 * seg:lead + 3 * seg] = 1e-4 * rng.standard_normal(seg)  # 60 dB down: a "silent" segment
    x[lead + 4 * seg:lead + 5 * seg] = 0.1 * rng.standard_normal(seg)
    (tmp_path / "src").mkdir()
    sf.write(tmp_path / "src" / "gaps.wav", x, SR, subtype="FLOAT")
    summary = build_dataset([tmp_path / "src"], tmp_path / "ds", **FAST)
    # sound, zeros, -80 dBFS, zeros, sound: the three in between are dropped, the silences trimmed
    assert summary.segments_silent == 3 and summary.segments_used == 2
    assert sorted({it["segment"] for it in load_dataset_info(tmp_path / "ds").items}) == [0, 4]
    assert summary.seconds_used == pytest.approx(2 * SEGMENT_S)


def make_vctk(root: Path) -> None:
    """Both VCTK layouts with training and test speakers (and mic2 files in the 0.92 layout)."""
    new = root / "VCTK-Corpus-0.92" / "wav48_silence_trimmed"
    for spk in ("p225", "p226", "p360", "s5"):
        for utt in (1, 2):
            for mic in (1, 2):
                write_noise(new / spk / f"{spk}_{utt:03d}_mic{mic}.flac", seed=utt + 10 * mic)
    old = root / "VCTK-Corpus" / "wav48"
    for spk in ("p227", "p228", "p360"):
        write_noise(old / spk / f"{spk}_001.wav", seed=3)
    (root / "VCTK-Corpus" / "txt").mkdir(parents=True)
    (root / "VCTK-Corpus" / "txt" / "p227_001.txt").write_text("Please call Stella.")


@pytest.mark.parametrize("layout", ["VCTK-Corpus-0.92", "VCTK-Corpus", "both"])
def test_vctk_test_speakers_never_written(tmp_path: Path, layout: str) -> None:
    make_vctk(tmp_path)
    sources = [tmp_path / "VCTK-Corpus-0.92", tmp_path / "VCTK-Corpus"] if layout == "both" else [tmp_path / layout]
    summary = build_dataset(sources, tmp_path / "ds", **{**FAST, "variants": 1})
    items = load_dataset_info(tmp_path / "ds").items
    speakers = {it["group"] for it in items}
    assert speakers and speakers.isdisjoint({"p360", "s5"})
    assert not any("p360" in it["source"] or "s5_" in it["source"] or "mic2" in it["source"] for it in items)
    assert {it["split"] for it in items} == {"train", "val"}  # split by speaker
    for spk in speakers:
        assert len({it["split"] for it in items if it["group"] == spk}) == 1
    expected = {"VCTK-Corpus-0.92": {"p360": 2, "s5": 2}, "VCTK-Corpus": {"p360": 1}, "both": {"p360": 3, "s5": 2}}
    assert summary.test_files == expected[layout]
    if layout != "VCTK-Corpus":
        assert summary.other_mics == 8 and "microphones" in summary.format()
    # a test speaker's file in a plain folder is recognised by its name, too
    write_noise(tmp_path / "plain" / "x" / "p362_001.wav")
    write_noise(tmp_path / "plain" / "x" / "p225_001.wav")
    summary = build_dataset([tmp_path / "plain"], tmp_path / "plain_ds", **FAST)
    assert summary.test_files == {"p362": 1}
    assert {it["source"] for it in load_dataset_info(tmp_path / "plain_ds").items} == {"x/p225_001.wav"}


def test_all_mics_and_txt_list(tmp_path: Path) -> None:
    make_vctk(tmp_path)
    corpus = tmp_path / "VCTK-Corpus-0.92"
    summary = build_dataset([corpus], tmp_path / "all", all_mics=True, **{**FAST, "variants": 1})
    assert summary.files_used == 8 and summary.other_mics == 0
    listing = tmp_path / "list.txt"
    listing.write_text("# a comment\nVCTK-Corpus-0.92/wav48_silence_trimmed/p225/p225_001_mic1.flac\n\n"
                       "VCTK-Corpus-0.92/wav48_silence_trimmed/p226/p226_001_mic1.flac\nnot/there.wav\n")
    warnings: list[str] = []
    summary = build_dataset([listing], tmp_path / "listed", on_warning=warnings.append, **FAST)
    assert summary.files_used == 2 and summary.files_skipped == {"missing": 1} and len(warnings) == 1
    assert {it["group"] for it in load_dataset_info(tmp_path / "listed").items} == {"p225", "p226"}


def test_incompatible_or_foreign_output_folder(plain_source: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    build_dataset([plain_source], out, **FAST)
    with pytest.raises(SpecsrError, match="variants"):
        build_dataset([plain_source], out, **{**FAST, "variants": 3})
    with pytest.raises(SpecsrError, match="sr_in_choices"):
        build_dataset([plain_source], out, sr_in_choices=(16000,), **FAST)
    with pytest.raises(SpecsrError, match="stft"):
        build_dataset([plain_source], out, stft_preset="48k-1024", **FAST)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(SpecsrError, match="not a specsr dataset"):
        build_dataset([plain_source], foreign, **FAST)
    with pytest.raises(SpecsrError, match="no audio"):
        build_dataset([tmp_path / "foreign"], tmp_path / "empty_ds", **FAST)
    with pytest.raises(SpecsrError, match="44100 Hz"):
        build_dataset([plain_source], tmp_path / "x", stft_preset="44k-2048", **FAST)
    (tmp_path / "bad" / MANIFEST_NAME).parent.mkdir()
    (tmp_path / "bad" / MANIFEST_NAME).write_text('{"format": "specsr-dataset", "version": 99}')
    with pytest.raises(SpecsrError, match="version"):
        load_dataset_info(tmp_path / "bad")


def test_output_folder_not_writable(plain_source: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SpecsrError, match="cannot create|not a folder"):
        build_dataset([plain_source], blocker / "ds", **FAST)


def test_spectrogram_pairs(plain_source: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    build_dataset([plain_source], out, **FAST)
    train = SpectrogramPairs(out, "train", crop_frames=16, seed=3)
    assert len(train) > 0
    item = train[0]
    assert item["input"].shape == item["target"].shape == (1025, 16)
    assert item["input"].dtype == torch.float32
    assert item["cutoff_hz"].dtype == torch.float32 and item["sr_in"].dtype == torch.int64
    assert float(item["source_nyquist_hz"]) > float(item["cutoff_hz"])
    full = SpectrogramPairs(out, "train")[0]["target"]
    assert full.shape == (1025, 47)
    # the crop is a window of the full item, the same one for input and target
    starts = [s for s in range(47 - 16 + 1) if torch.equal(full[:, s:s + 16], item["target"])]
    assert starts
    again = SpectrogramPairs(out, "train", crop_frames=16, seed=3)[0]
    assert torch.equal(again["input"], item["input"])
    padded = SpectrogramPairs(out, "train", crop_frames=60)[0]
    assert padded["input"].shape == (1025, 60)
    assert torch.all(padded["target"][:, 47:] == LOG_POWER_PAD)
    assert torch.equal(padded["target"][:, :47], full)
    val = SpectrogramPairs(out, "val", crop_frames=16, with_waveforms=True)
    v = val[0]
    assert v["input"].shape == (1025, 47) and v["wav_input"].shape == v["wav_target"].shape == (24000,)
    batch = next(iter(torch.utils.data.DataLoader(train, batch_size=4)))
    assert batch["input"].shape == (4, 1025, 16) and batch["sr_in"].shape == (4,)
    with pytest.raises(SpecsrError, match="val"):
        SpectrogramPairs(out, "train", with_waveforms=True)
    with pytest.raises(SpecsrError, match="split"):
        SpectrogramPairs(out, "test")


def test_split_without_items_is_an_error(tmp_path: Path) -> None:
    write_noise(tmp_path / "src" / "only.wav")
    build_dataset([tmp_path / "src"], tmp_path / "ds", **FAST)
    with pytest.raises(SpecsrError, match="no val items"):
        SpectrogramPairs(tmp_path / "ds", "val")
    with pytest.raises(SpecsrError, match="not a specsr dataset"):
        load_dataset_info(tmp_path / "src")
