"""The chunk engine: exact, streaming STFT-domain processing of one signal of any length.

A stream of blocks ``[C, n]`` at the model's rate goes in; the output blocks come out in order, equal
to what the whole signal processed at once gives, in memory bounded by the chunk length. Each core
of frames gets: the input's frames (:func:`specsr.spectral.frames`), the predicted magnitude (from
a :class:`MagnitudePredictor`, i.e. the network), the silence gate, the merge with the known band
(crossfade, phase lock) and phase reconstruction (:func:`specsr.phase.reconstruct_frames`), then
overlap-add. :class:`ChunkEngine` explains why the result is exact.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from specsr.config import InferenceConfig, STFTConfig
from specsr.errors import SpecsrError
from specsr.phase import light_cone_frames, reconstruct_frames
from specsr.spectral import cutoff_bin, frames, n_frames, overlap_add

CROSSFADE_BINS = 6  # bins above the cutoff where the input fades into the prediction (≈ 140 Hz at 48k/2048)
PHASE_LOCK_RATIO = 0.1  # near its Nyquist the input keeps its phase where |input| ≥ this × |prediction|
MODEL_FRAME_BUDGET = 2048  # channels × frames per network call: bounds its activations (~1.2 GB peak RSS in all)
SILENT_FRAME_POWER = 1e-12  # summed low-band power under which a frame is digital silence
ROLLOFF_MARGIN_DB = 3.0  # in the roll-off, the prediction may exceed the input by the measured fall plus this


class MagnitudePredictor(Protocol):
    """What the engine needs of a model (:class:`specsr.pipeline.Upsampler` is one)."""

    stft: STFTConfig
    device: torch.device

    @property
    def frame_multiple(self) -> int:
        """Model calls start on multiples of this many frames (the pooling stride)."""
        ...

    @property
    def receptive_field_frames(self) -> int:
        """Half-width of the model's receptive field along time, in frames."""
        ...

    def predict_magnitude(self, known: torch.Tensor, cutoff_bins: int) -> torch.Tensor:
        """Magnitude ``[C, F, M]`` from the input's complex frames ``[C, F, M]``; complex (the magnitude with
        the model's phase) from a model that predicts phase."""
        ...


@dataclass
class Timing:
    """Seconds spent in the network and in phase reconstruction (incl. overlap-add)."""

    model_seconds: float = 0.0
    phase_seconds: float = 0.0


class ChunkEngine:
    """Exact chunked processing of one signal at ``sr_out``: a stream of blocks in, a stream out.

    The frames ``0 … N−1`` of the centred STFT are cut into cores of ``chunk`` frames. For each
    core ``[s, e)`` the phase is reconstructed on ``[s − Kp, e + Kp)`` and the magnitudes it needs
    come from model calls with ``Km`` more frames on each side::

        frames  0                                                              N
                |.......[====== core s..e ======]..............................|
        phase          [-- Kp --|              |-- Kp --]
        model     [-Km-|-- Kp --|   (sub-blocks of G frames, each ±Km) |-- Kp --|-Km-]
        samples                 [s·hop ... e·hop)   ← written, then the next core starts at e

    Why it is exact rather than "close": one Griffin-Lim iteration mixes a frame only with the
    ``r = ceil(n_fft/hop) − 1`` frames it overlaps, so after ``n_iter`` iterations and the final
    overlap-add a frame depends on nothing farther than ``Kp = r·(n_iter + 1)`` frames
    (:func:`specsr.phase.light_cone_frames`, 99 frames ≈ 1.1 s for 32 iterations at 48k/2048/512).
    The U-Net's receptive field is finite too (``UNet.receptive_field_frames``, 137 frames
    for five levels); each model call starts on a multiple of its pooling stride so that the pooling
    grid is the whole file's. Inside the light cones the numbers are those of the whole file —
    the cores tile the output with no crossfade at all, and chunk size only trades memory
    against the overhead of the contexts. Model outputs already computed for the previous core's
    right context are reused. (A model with GroupNorm normalises over the whole block and is
    only approximately chunk-invariant.)
    """

    def __init__(self, predictor: MagnitudePredictor, n_channels: int, n_samples: int, cutoff_hz: float,
                 keep_hz: float, settings: InferenceConfig, *, keep_magnitudes: bool = False,
                 fall_db: Sequence[tuple[float, float]] = ()) -> None:
        cfg = predictor.stft
        self.predictor, self.cfg, self.device = predictor, cfg, predictor.device
        phase, n_iter, chunk_seconds = settings.phase, settings.n_iter, settings.chunk_seconds
        self.n_channels = n_channels
        self.n_samples = n_samples
        # Very short signals are zero-padded so that the reflect padding of the centred STFT works.
        self.n_work = max(n_samples, cfg.n_fft // 2 + 1)
        self.n_frames = n_frames(n_samples, cfg)
        self.phase, self.n_iter = phase, n_iter
        self.k_cut = cutoff_bin(cutoff_hz, cfg)
        # [k_cut, k_keep): the input's roll-off, real content attenuated: kept wherever louder than the prediction
        self.k_keep = max(self.k_cut, cutoff_bin(min(keep_hz, cfg.sample_rate / 2), cfg))
        bins = torch.arange(cfg.n_bins, dtype=torch.float32)
        self.rolloff_gain = self._rolloff_gain(fall_db)
        ramp = (self.k_cut + CROSSFADE_BINS - bins) / (CROSSFADE_BINS + 1)
        self.mask = ramp.clamp(0.0, 1.0).where(bins >= self.k_cut, torch.ones(()))[None, :, None].to(self.device)
        self.k_phase = light_cone_frames(cfg, 0 if phase == "lowres" else n_iter)
        stride = predictor.frame_multiple
        self.stride = stride
        self.k_model = -(-predictor.receptive_field_frames // stride) * stride
        self.chunk = max(1, int(round(chunk_seconds * cfg.sample_rate / cfg.hop_length)))
        budget = max(stride, MODEL_FRAME_BUDGET // max(1, n_channels) - 2 * self.k_model)
        self.model_block = max(2 * self.k_model, budget) // stride * stride or stride
        self.timing = Timing()
        # input samples (working signal), [C, n], starting at sample self._buf_start
        self._buf = np.zeros((n_channels, 0), np.float32)
        self._buf_start = 0
        self._source_done = False
        self._received = 0
        # model magnitudes cached from the previous core, frames [self._mag_start, +width)
        self._mag: torch.Tensor | None = None
        self._mag_start = 0
        # with keep_magnitudes: the predicted magnitude of every core, [C, F, e − s] each, in order
        self.kept: list[torch.Tensor] | None = [] if keep_magnitudes else None

    # --------------------------------------------------------------------------- input side
    def _pull(self, source: Iterator[np.ndarray], upto: int) -> None:
        """Read blocks until the working signal is buffered up to sample ``upto`` (exclusive)."""
        while self._buf_start + self._buf.shape[1] < upto and not self._source_done:
            try:
                block = next(source)
            except StopIteration:
                self._source_done = True
                missing = self.n_samples - self._received
                if missing > 0:
                    raise SpecsrError(f"the input stream ended {missing} samples early") from None
                pad = self.n_work - self.n_samples
                if pad:
                    self._buf = np.concatenate([self._buf, np.zeros((self.n_channels, pad), np.float32)], axis=1)
                break
            block = np.asarray(block, dtype=np.float32)
            take = min(block.shape[1], self.n_samples - self._received)
            self._received += take
            self._buf = np.concatenate([self._buf, block[:, :take]], axis=1)

    def _frames(self, source: Iterator[np.ndarray], fa: int, fb: int) -> torch.Tensor:
        """The input's STFT frames ``[C, F, fb − fa]`` (reflect padding at the signal's ends)."""
        half = self.cfg.n_fft // 2
        idx = np.arange(fa * self.cfg.hop_length, (fb - 1) * self.cfg.hop_length + self.cfg.n_fft) - half
        idx = np.where(idx < 0, -idx, idx)
        idx = np.where(idx >= self.n_work, 2 * (self.n_work - 1) - idx, idx)
        self._pull(source, int(idx.max()) + 1)
        if idx.min() < self._buf_start:
            raise RuntimeError("chunking bug: needed samples were dropped")  # never for valid schedules
        seg = torch.from_numpy(self._buf[:, idx - self._buf_start]).to(self.device)
        return frames(seg, self.cfg)

    def _model_start(self, frame: int) -> int:
        return max(0, frame - self.k_model) // self.stride * self.stride

    # ------------------------------------------------------------------------------- stages
    def _magnitudes(self, known: torch.Tensor, k_start: int, a: int, b: int) -> torch.Tensor:
        """Predicted magnitude for frames ``[a, b)``; ``known`` holds frames from ``k_start``."""
        parts = []
        u = a
        if self._mag is not None and self._mag_start <= a < self._mag_start + self._mag.shape[-1]:
            cached = self._mag[..., a - self._mag_start:b - self._mag_start]
            parts.append(cached)
            u = a + cached.shape[-1]
        t0 = time.perf_counter()
        for g in range(u, b, self.model_block):
            h = min(b, g + self.model_block)
            ia, ib = self._model_start(g), min(self.n_frames, h + self.k_model)
            mag = self.predictor.predict_magnitude(known[..., ia - k_start:ib - k_start], self.k_cut)
            parts.append(mag[..., g - ia:h - ia])
        self._sync()
        self.timing.model_seconds += time.perf_counter() - t0
        mag = torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
        self._mag, self._mag_start = mag, a
        return mag

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def run(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Consume input blocks ``[C, n]`` at ``sr_out`` (``n_samples`` in all); yield output blocks ``[C, m]``."""
        for out, _ in self._run(blocks, split=False):
            yield out

    def run_split(self, blocks: Iterable[np.ndarray]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """:meth:`run`, each output block given with the input's band in it: ``(output, input's band)`` (the
        input's band: the inverse STFT of the kept bins, crossfade included; the new band is the rest)."""
        yield from self._run(blocks, split=True)

    def _run(self, blocks: Iterable[np.ndarray], split: bool) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        source = iter(blocks)
        cfg, hop = self.cfg, self.cfg.hop_length
        half = cfg.n_fft // 2
        for s in range(0, self.n_frames, self.chunk):
            e = min(self.n_frames, s + self.chunk)
            a, b = max(0, s - self.k_phase), min(self.n_frames, e + self.k_phase)
            cache_end = self._mag_start + self._mag.shape[-1] if self._mag is not None else a
            first_new = cache_end if self._mag is not None and self._mag_start <= a < cache_end else a
            if first_new < b:  # the model runs on [first_new, b) with its context
                k_start, k_end = min(a, self._model_start(first_new)), min(self.n_frames, b + self.k_model)
            else:
                k_start, k_end = a, b
            known = self._frames(source, k_start, k_end)
            mag = self._magnitudes(known, k_start, a, b)
            predicted_phase = mag if mag.is_complex() else None
            if predicted_phase is not None:
                mag = mag.abs()
            if self.kept is not None:
                self.kept.append(mag[..., s - a:e - a])
            known_ab = known[..., a - k_start:b - k_start]
            t0 = time.perf_counter()
            mag = self._keep_rolloff(self._gate_silence(mag, known_ab), known_ab)
            lock = self._phase_lock(known_ab, mag)
            spec = reconstruct_frames(mag, known_ab, self.mask, cfg, method=self.phase, n_iter=self.n_iter,
                                      phase_lock=lock, predicted_phase=predicted_phase)
            sig = overlap_add(spec, cfg)  # padded time axis from padded sample a·hop
            sig_low = overlap_add(self.mask * known_ab, cfg) if split else sig
            lo, hi = s * hop, (self.n_samples if e == self.n_frames else min(self.n_samples, e * hop))
            core = slice(lo + half - a * hop, hi + half - a * hop) if hi > lo else slice(0, 0)
            out = sig[:, core].float().cpu().numpy()
            out_low = sig_low[:, core].float().cpu().numpy()
            self._sync()
            self.timing.phase_seconds += time.perf_counter() - t0
            # forget what the next core cannot need
            nxt = max(0, e - self.k_phase)
            keep_frame = min(nxt, self._model_start(b))
            keep_sample = max(0, keep_frame * hop - half)
            if keep_sample > self._buf_start and keep_frame > 0:
                cut = min(keep_sample - self._buf_start, self._buf.shape[1])
                self._buf = self._buf[:, cut:]
                self._buf_start += cut
            if self._mag is not None and nxt > self._mag_start:
                self._mag = self._mag[..., nxt - self._mag_start:]
                self._mag_start = nxt
            if out.shape[1]:
                yield out, out_low
        # drain the source (it may hold padding beyond n_samples): nothing else to produce
        self._pull(source, self.n_work)

    def _gate_silence(self, mag: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """No prediction over digital silence: frames whose known band is empty get no new band."""
        low_power = known[:, :self.k_cut].abs().square().sum(dim=1, keepdim=True)  # [C, 1, M]
        return torch.where(low_power > SILENT_FRAME_POWER, mag, torch.zeros_like(mag))

    def _rolloff_gain(self, fall_db: Sequence[tuple[float, float]]) -> torch.Tensor | None:
        """``[1, k_keep - k_cut, 1]``: the most the prediction may raise each roll-off bin over the input, from
        how far the input's long-term level has fallen there below its level at the cutoff (plus
        :data:`ROLLOFF_MARGIN_DB`); None (no ceiling) without a measured fall."""
        if self.k_keep <= self.k_cut or not fall_db:
            return None
        hz = np.arange(self.k_cut, self.k_keep) * self.cfg.sample_rate / self.cfg.n_fft
        at, db = np.asarray(fall_db, dtype=np.float64).T
        gain = 10.0 ** ((np.interp(hz, at, db) + ROLLOFF_MARGIN_DB) / 20)
        return torch.tensor(gain, dtype=torch.float32, device=self.device)[None, :, None]

    def _keep_rolloff(self, mag: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """In the input's roll-off ``[k_cut, k_keep)`` the input holds real content, attenuated: the magnitude
        is the prediction, raised to the input where the input is louder (the model adds to what the input
        holds, never removes it) and, where the fall was measured, held to the input raised by no more than
        it has fallen below its level at the cutoff (the model never makes a bin louder than undoing the
        whole fall would)."""
        if self.k_keep <= self.k_cut:
            return mag
        band = slice(self.k_cut, self.k_keep)
        floor = known[:, band].abs().to(mag.dtype)
        mag = mag.clone()
        mag[:, band] = torch.maximum(mag[:, band], floor)
        if self.rolloff_gain is not None:
            mag[:, band] = torch.minimum(mag[:, band], floor * self.rolloff_gain.to(mag.dtype))
        return mag

    def _phase_lock(self, known: torch.Tensor, mag: torch.Tensor) -> torch.Tensor | None:
        """Bins of the roll-off band where the input's phase is worth keeping (the input is not negligible)."""
        if self.k_keep <= self.k_cut:
            return None
        bins = torch.arange(self.cfg.n_bins, device=known.device)[None, :, None]
        in_band = (bins >= self.k_cut) & (bins < self.k_keep)
        return in_band & (known.abs() >= PHASE_LOCK_RATIO * mag)
