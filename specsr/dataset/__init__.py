"""Training datasets of low/high-resolution spectrogram pairs: the writer (``specsr convert``) and the reader.

Method. Every full-band source file is mixed to mono, resampled to ``sr_out``, trimmed of leading and
trailing silence and cut into segments of ``segment_seconds``. Each segment gives ``variants`` pairs: a
degradation drawn by :func:`specsr.degrade.random_degradation` (input rate and filter family) turns the
segment, optionally with a low coloured noise floor added first (real recordings have one; the target
keeps it too), into its low-resolution version. Both are stored as log10-power spectrograms of the
model's STFT. The random draws of a segment come from ``(seed, relative source path, segment index)``
only, so a dataset does not depend on worker scheduling, on file order or on being resumed.

Splits are by group (a VCTK speaker, otherwise a source folder), so that validation never hears a
training speaker; VCTK's standard test speakers are never written at all.

On disk, ``DATASET_DIR``::

    manifest.json                 what is in the dataset (see ``build_dataset``); a shard counts only
                                  once it is listed here
    shards/<name>.input.npy       float16 [N, F, n_frames]  log10-power of the degraded segments
    shards/<name>.target.npy      float16 [N, F, n_frames]  log10-power of the full-band segments
    shards/<name>.wav_input.npy   float32 [N, segment_samples]  (val shards only) degraded waveforms
    shards/<name>.wav_target.npy  float32 [N, segment_samples]  (val shards only) full-band waveforms

A shard is filled in a temp file beside it and renamed when complete; anything in ``shards/`` that the
manifest does not list is left over from a stopped run and removed when the run is resumed.

Modules: :mod:`~specsr.dataset.sources` (finding source files, VCTK rules, the train/val split),
:mod:`~specsr.dataset.pairs` (one file to pairs, in worker processes), :mod:`~specsr.dataset.convert`
(shards, manifest, resume: :func:`build_dataset`) and :mod:`~specsr.dataset.reader`
(:func:`load_dataset_info` and :class:`SpectrogramPairs`, a torch ``Dataset`` over memory-mapped shards).
"""

from specsr.dataset.convert import ConvertSummary, build_dataset
from specsr.dataset.reader import DatasetInfo, SpectrogramPairs, load_dataset_info

__all__ = ["ConvertSummary", "DatasetInfo", "SpectrogramPairs", "build_dataset", "load_dataset_info"]
