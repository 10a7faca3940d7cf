"""Training pairs made on the fly from audio segments, on the training device: for every step a crop of
each segment and a fresh degradation (:func:`specsr.degrade.draw_degradations`, applied by
:func:`specsr.degrade.degrade_batch`), then both sides' log10-power spectrograms.

Everything a step draws comes from generators seeded by ``(seed, rank, step)`` alone, so a resumed run
draws exactly what an uninterrupted one does and every DDP rank draws its own examples. Validation pairs
are drawn once, from ``seed`` (:func:`validation_pairs`), so that validation scores stay comparable
through a run.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from specsr.config import DegradeConfig, STFTConfig, TaskConfig
from specsr.dataset.segments import PCM_SCALE, AudioSegments
from specsr.dataset.sources import stable_hash
from specsr.degrade import Degradation, degrade_batch, draw_degradations, family_names
from specsr.errors import SpecsrError
from specsr.spectral import frames, log_power, stft

# Samples kept either side of a crop while it is filtered (the frequency-domain filter is circular) and
# then dropped with the STFT frames they touch: at least this many, rounded up to whole hops.
FILTER_MARGIN_SAMPLES = 4096


class PairMaker:
    """Makes a batch of training pairs from a batch of :class:`~specsr.dataset.segments.AudioSegments`.

    ``make(batch, step)`` takes ``wav`` int16 ``[B, S]``, ``n_samples`` ``[B]`` and ``source_nyquist_hz``
    ``[B]`` and returns, on ``device``: ``input`` / ``target`` float32 ``[B, F, crop_frames]`` log10-power,
    ``cutoff_hz`` / ``source_nyquist_hz`` float32 ``[B]``, ``sr_in`` int64 ``[B]`` (what the spectrogram
    reader returns), and ``draws``, the step's :class:`~specsr.degrade.Degradation` list; with ``with_phase``
    also ``input_spec`` / ``target_spec``, both sides' complex STFT frames ``[B, F, crop_frames]`` (a model that
    predicts phase sees the input's and is trained on the target's).
    """

    def __init__(self, stft_cfg: STFTConfig, task: TaskConfig, degrade: DegradeConfig, *, crop_frames: int,
                 gain_db_range: tuple[float, ...], seed: int, rank: int = 0,
                 device: torch.device | str = "cpu", with_phase: bool = False) -> None:
        if crop_frames < 1:
            raise SpecsrError(f"crop frames must be >= 1, got {crop_frames}")
        family_names(degrade.families)  # an unknown family fails here, before any step
        self.stft, self.task, self.degrade = stft_cfg, task, degrade
        self.crop_frames, self.gain_db_range = crop_frames, gain_db_range
        self.seed, self.rank, self.with_phase = seed, rank, with_phase
        self.device = torch.device(device)
        hop = stft_cfg.hop_length
        self.margin = math.ceil(max(FILTER_MARGIN_SAMPLES, stft_cfg.n_fft) / hop) * hop
        self.inner_samples = (crop_frames - 1) * hop  # from the first kept frame's centre to the last's
        self.crop_samples = self.inner_samples + 2 * self.margin

    def step_seed(self, step: int) -> int:
        return stable_hash(f"{self.seed}:{self.rank}:{step}")

    def draws(self, n: int, generator: torch.Generator) -> list[Degradation]:
        return draw_degradations(self.degrade, n, generator, min_cutoff_hz=self.task.min_cutoff_hz,
                                 max_cutoff_hz=self.task.max_cutoff_hz, sample_rate=self.stft.sample_rate,
                                 gain_db_range=self.gain_db_range)

    def crops(self, wav: torch.Tensor, n_samples: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A random crop of each row (int16 ``[B, S]``, its first ``n_samples`` real) with the filter margins
        either side, zero outside the segment: int16 ``[B, crop_samples]``."""
        b, s = wav.shape
        out = torch.zeros(b, self.crop_samples, dtype=wav.dtype)
        for i in range(b):
            n = int(n_samples[i])
            free = max(n - self.inner_samples, 0)
            start = int(torch.randint(free + 1, (), generator=generator)) - self.margin
            lo, hi = max(start, 0), min(start + self.crop_samples, n, s)
            if hi > lo:
                out[i, lo - start:hi - start] = wav[i, lo:hi]
        return out

    def make(self, batch: dict[str, torch.Tensor], step: int) -> dict:
        seed = self.step_seed(step)
        cpu = torch.Generator().manual_seed(seed)
        draws = self.draws(batch["wav"].shape[0], cpu)
        crop = self.crops(batch["wav"], batch["n_samples"], cpu)
        noise = torch.Generator(self.device).manual_seed(seed ^ 0x5EED)
        x = crop.to(self.device, non_blocking=True).float() / PCM_SCALE
        low, target = degrade_batch(x, self.stft.sample_rate, draws, noise)
        # only the frames kept: centred (as the STFT with center=True places them) on margin + j * hop
        first = self.margin - (self.stft.n_fft // 2 if self.stft.center else 0)
        span = self.inner_samples + self.stft.n_fft
        cplx = frames(torch.cat([low, target])[:, first:first + span], self.stft)
        spec = log_power(cplx)
        b = len(draws)
        phase = {"input_spec": cplx[:b].contiguous(), "target_spec": cplx[b:].contiguous()} if self.with_phase else {}
        return {"input": spec[:b].contiguous(), "target": spec[b:].contiguous(), **phase,
                "cutoff_hz": torch.tensor([d.cutoff_hz for d in draws], dtype=torch.float32),
                "source_nyquist_hz": batch["source_nyquist_hz"].float(),
                "sr_in": torch.tensor([d.sr_in for d in draws], dtype=torch.int64), "draws": draws}


def validation_pairs(segments: AudioSegments, maker: PairMaker, n_items: int,
                     indices: list[int] | None = None) -> list[dict]:
    """``n_items`` fixed validation pairs (evenly spaced segments of ``segments``, or those of ``indices``,
    whole), each with a degradation drawn from ``maker.seed`` alone: dicts like
    :class:`~specsr.dataset.SpectrogramPairs`'s with waveforms (``input``/``target`` ``[F, T]``,
    ``wav_input``/``wav_target`` ``[n_samples]``, ``cutoff_hz``, ``source_nyquist_hz``, ``sr_in``) and the
    ``draw``, on the CPU."""
    n = min(len(segments), n_items)
    generator = torch.Generator().manual_seed(stable_hash(f"{maker.seed}:val"))
    noise = torch.Generator().manual_seed(stable_hash(f"{maker.seed}:val-noise"))
    out = []
    chosen = indices if indices is not None else np.linspace(0, len(segments) - 1, n).astype(int).tolist()
    for i in chosen:
        seg = torch.from_numpy(segments.samples(int(i)).astype(np.float32) / PCM_SCALE)
        (d,) = maker.draws(1, generator)
        padded = torch.nn.functional.pad(seg, (maker.margin, maker.margin))[None]
        low, target = degrade_batch(padded, maker.stft.sample_rate, [d], noise)
        wav_input, wav_target = low[0, maker.margin:-maker.margin], target[0, maker.margin:-maker.margin]
        spec = log_power(stft(torch.stack([wav_input, wav_target]), maker.stft))
        out.append({"input": spec[0], "target": spec[1], "wav_input": wav_input.contiguous(),
                    "wav_target": wav_target.contiguous(),
                    "cutoff_hz": torch.tensor(d.cutoff_hz, dtype=torch.float32),
                    "source_nyquist_hz": torch.tensor(float(segments.items[int(i)]["source_nyquist_hz"]),
                                                      dtype=torch.float32),
                    "sr_in": torch.tensor(d.sr_in, dtype=torch.int64), "draw": d})
    return out
