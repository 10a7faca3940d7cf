"""Audio datasets on disk and back: the shard files (16-bit mono PCM WAV at ``sr_out``, the segments one
after another, so any audio tool can open them) and :class:`AudioSegments`, the training reader of a
split (a torch ``Dataset`` over memory-mapped shards that returns whole segments as int16).

A shard's header is the canonical 44-byte one, written with placeholder sizes while the shard is
filled and rewritten when it is complete; the reader checks it and maps the samples after it.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from specsr.dataset.reader import AUDIO_SHARD_SUFFIX, SHARD_DIR, SPLITS, load_dataset_info
from specsr.errors import SpecsrError

WAV_HEADER_BYTES = 44
PCM_SCALE = 32768.0  # int16 value = round(sample * PCM_SCALE): what libsndfile reads back as sample exactly
_BITS = 16


def wav_header(sample_rate: int, n_samples: int) -> bytes:
    """The 44-byte header of a mono 16-bit PCM WAV of ``n_samples`` samples."""
    data_bytes = 2 * n_samples
    if data_bytes + WAV_HEADER_BYTES - 8 > 0xFFFFFFFF:
        raise SpecsrError(f"an audio shard of {n_samples} samples exceeds the WAV size limit (4 GiB); "
                          "use a smaller --shard-size")
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, 2 * sample_rate, 2, _BITS)
            + b"data" + struct.pack("<I", data_bytes))


def write_shard_header(fh: IO[bytes], sample_rate: int, n_samples: int) -> None:
    """(Re)write the header at the start of an open shard file, leaving the position at its end."""
    end = fh.seek(0, os.SEEK_END)
    fh.seek(0)
    fh.write(wav_header(sample_rate, n_samples))
    fh.seek(max(end, WAV_HEADER_BYTES))


def open_shard(path: Path, sample_rate: int) -> np.ndarray:
    """The samples of an audio shard, memory-mapped int16 ``[n]``; ``SpecsrError`` if it is not one of ours."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(WAV_HEADER_BYTES)
        size = path.stat().st_size
    except OSError as exc:
        raise SpecsrError(f"{path}: cannot read the shard ({exc.strerror or exc})") from None
    n = (size - WAV_HEADER_BYTES) // 2
    if len(head) < WAV_HEADER_BYTES or head != wav_header(sample_rate, n):
        raise SpecsrError(f"{path}: not a complete specsr audio shard (16-bit mono WAV at {sample_rate} Hz); "
                          "rerun specsr convert to rebuild the dataset")
    if n == 0:
        return np.zeros(0, dtype=np.int16)
    return np.memmap(path, dtype="<i2", mode="r", offset=WAV_HEADER_BYTES, shape=(n,))


class AudioSegments(torch.utils.data.Dataset):
    """The segments of one split of an audio dataset.

    ``dataset[i]`` is a dict: ``wav`` int16 ``[segment_samples]`` (the segment, zero-padded after its
    ``n_samples``), ``n_samples`` (int64) and ``source_nyquist_hz`` (float32, the source's content limit).
    Shards are mapped lazily in each DataLoader worker. The pairs are made from these on the training device
    (:class:`specsr.dataset.onthefly.PairMaker`).
    """

    def __init__(self, root: str | os.PathLike, split: str) -> None:
        if split not in SPLITS:
            raise SpecsrError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
        self.info = load_dataset_info(root)
        if self.info.kind != "audio":
            raise SpecsrError(f"{root}: holds spectrogram pairs, not audio segments")
        self.split = split
        self.items = [it for it in self.info.items if it["split"] == split]
        if not self.items:
            raise SpecsrError(f"{root}: the dataset has no {split} segments")
        self.segment_samples = self.info.segment_samples
        self._shards: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.items)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_shards"] = {}  # each worker maps the files itself
        return state

    def _shard(self, name: str) -> np.ndarray:
        if name not in self._shards:
            path = self.info.root / SHARD_DIR / (name + AUDIO_SHARD_SUFFIX)
            self._shards[name] = open_shard(path, self.info.sr_out)
        return self._shards[name]

    def samples(self, i: int) -> np.ndarray:
        """Segment ``i``'s samples as stored, int16 ``[n_samples]``."""
        it = self.items[i]
        data = self._shard(it["shard"])
        start, n = int(it["offset"]), int(it["n_samples"])
        if start + n > len(data):
            raise SpecsrError(f"{self.info.root}: shard {it['shard']} is shorter than its manifest says; rerun "
                              "specsr convert")
        return np.asarray(data[start:start + n])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        seg = self.samples(i)
        wav = torch.zeros(self.segment_samples, dtype=torch.int16)
        n = min(len(seg), self.segment_samples)
        wav[:n] = torch.from_numpy(seg[:n].astype(np.int16))
        return {"wav": wav, "n_samples": torch.tensor(n, dtype=torch.int64),
                "source_nyquist_hz": torch.tensor(float(self.items[i]["source_nyquist_hz"]), dtype=torch.float32)}
