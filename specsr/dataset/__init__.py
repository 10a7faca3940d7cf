"""Training datasets: the writer (``specsr convert``) and the readers.

Method. Every full-band source file is mixed to mono, resampled to ``sr_out``, trimmed of leading and
trailing silence and cut into segments of ``segment_seconds``; segments far below the file's loudest are
dropped. Splits are by group (a VCTK speaker, otherwise a source folder), so that validation never hears
a training speaker; VCTK's standard test speakers are never written at all.

Two kinds of dataset:

- ``audio`` (the default): the kept segments themselves, as 16-bit PCM, no bigger than the source as
  16-bit audio at ``sr_out``. Training makes the pairs on the fly (:mod:`specsr.dataset.onthefly`): a
  fresh degradation for every example, through :mod:`specsr.degrade`, on the training device.
- ``spectrograms`` (``--spectrograms``): ``variants`` fixed pairs per segment, each a degradation drawn by
  :func:`specsr.degrade.random_degradation` (optionally over a noise floor), stored as log10-power
  spectrograms of the model's STFT (about 100 MB per minute of audio at 4 variants). The draws of a
  segment come from ``(seed, relative source path, segment index)`` only, so a dataset does not depend on
  worker scheduling, on file order or on being resumed.

On disk, ``DATASET_DIR``::

    manifest.json                 what is in the dataset (kind, settings, sources, shards, items); a shard
                                  counts only once it is listed here
    shards/<split>-NNNNN.wav      audio: 16-bit mono PCM WAV at sr_out, segments one after another
                                  (an item's ``offset`` and ``n_samples``)
    shards/<name>.input.npy       spectrograms: float16 [N, F, n_frames] log10-power of the degraded segments
    shards/<name>.target.npy      float16 [N, F, n_frames]  log10-power of the full-band segments
    shards/<name>.wav_input.npy   float32 [N, segment_samples]  (val shards only) degraded waveforms
    shards/<name>.wav_target.npy  float32 [N, segment_samples]  (val shards only) full-band waveforms

A shard is filled in a temp file beside it and renamed when complete; anything in ``shards/`` that the
manifest does not list is left over from a stopped run and removed when the run is resumed.

Modules: :mod:`~specsr.dataset.sources` (finding source files, VCTK rules, the train/val split),
:mod:`~specsr.dataset.pairs` (one file to segments or pairs, in worker processes),
:mod:`~specsr.dataset.convert` (shards, manifest, resume: :func:`build_dataset`),
:mod:`~specsr.dataset.reader` (:func:`load_dataset_info`, :class:`SpectrogramPairs`),
:mod:`~specsr.dataset.segments` (audio shards, :class:`AudioSegments`) and
:mod:`~specsr.dataset.onthefly` (:class:`PairMaker`: segments to pairs on the training device).
"""

from specsr.dataset.convert import ConvertSummary, build_dataset
from specsr.dataset.reader import DatasetInfo, SpectrogramPairs, load_dataset_info

__all__ = ["ConvertSummary", "DatasetInfo", "SpectrogramPairs", "build_dataset", "load_dataset_info"]
