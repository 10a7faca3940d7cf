"""Corpus runs of ``specsr upsample``: deterministic shards across processes and machines, the results log
(one JSON line per file, appended atomically), and :class:`SharedPredictor`, which batches the network calls of
files upsampled at once. Lists of files: :func:`specsr.utils.read_path_list`.

A shard is ``K/N`` with ``0 ≤ K < N``: of the run's inputs sorted by path, those whose index ``i`` has
``i % N == K``. Without ``--shard`` it comes from the launcher's environment, so one command scales out
under any engine: torchrun (``RANK`` / ``WORLD_SIZE``), a SLURM array (``SLURM_ARRAY_TASK_ID`` less
``SLURM_ARRAY_TASK_MIN``, of ``SLURM_ARRAY_TASK_COUNT``), Kubernetes indexed jobs (``JOB_COMPLETION_INDEX``
with ``SPECSR_NUM_SHARDS``), or anything that sets ``SPECSR_SHARD=K/N``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from specsr.errors import SpecsrError

RESULTS_NAME = "specsr-results.jsonl"  # the results log's name in an output folder

T = TypeVar("T")


def parse_shard(text: str, what: str = "--shard") -> tuple[int, int]:
    """``"K/N"`` → ``(K, N)`` with ``0 ≤ K < N``; a one-line error otherwise."""
    parts = text.strip().split("/")
    try:
        k, n = (int(p) for p in parts) if len(parts) == 2 else (None, None)
    except ValueError:
        k = n = None
    if k is None or n is None:
        raise SpecsrError(f"{what} {text!r}: expected K/N, two whole numbers (e.g. 0/4 for the first of 4 shards)")
    if n < 1 or not 0 <= k < n:
        raise SpecsrError(f"{what} {text!r}: K must be in 0..N-1 (shards are numbered from 0), N at least 1")
    return k, n


def shard_from_env(env: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """The shard the launcher's environment names (see the module docstring), or None."""
    env = os.environ if env is None else env
    if "SPECSR_SHARD" in env:
        return parse_shard(env["SPECSR_SHARD"], "SPECSR_SHARD")
    if "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
        try:
            k = int(env["SLURM_ARRAY_TASK_ID"]) - int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
            n = int(env["SLURM_ARRAY_TASK_COUNT"])
        except ValueError:
            raise SpecsrError("SLURM_ARRAY_TASK_ID / _MIN / _COUNT are not whole numbers") from None
        return parse_shard(f"{k}/{n}", "the SLURM array task")
    if "JOB_COMPLETION_INDEX" in env and "SPECSR_NUM_SHARDS" in env:
        return parse_shard(f"{env['JOB_COMPLETION_INDEX']}/{env['SPECSR_NUM_SHARDS']}", "JOB_COMPLETION_INDEX")
    if "RANK" in env and "WORLD_SIZE" in env:
        return parse_shard(f"{env['RANK']}/{env['WORLD_SIZE']}", "RANK/WORLD_SIZE")
    return None


def take_shard(items: Sequence[T], shard: tuple[int, int] | None, key: Any = str) -> list[T]:
    """The items of shard ``(K, N)``: sorted by ``key``, every N-th from the K-th (all of them for None)."""
    ordered = sorted(items, key=key)
    if shard is None:
        return ordered
    k, n = shard
    return ordered[k::n]


class ResultsLog:
    """Appends one JSON object a line to ``path``; each line is one ``write`` of an ``O_APPEND`` file,
    so processes of several shards may share the log without tearing lines."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError as exc:
            raise SpecsrError(f"{self.path}: cannot write the results log ({exc.strerror or exc})") from None
        os.close(fd)

    def append(self, record: dict[str, Any]) -> None:
        line = (json.dumps({"time": round(time.time(), 3), **record}, ensure_ascii=False) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    @staticmethod
    def read(path: str | os.PathLike) -> list[dict[str, Any]]:
        """Every complete record of a log (a line cut short by a crash is left out)."""
        out = []
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out


class _ModelView:
    """What the chunk engine reads of ``upsampler`` besides its network call (a
    :class:`specsr.chunking.MagnitudePredictor`'s attributes)."""

    def __init__(self, upsampler: Any) -> None:
        self.upsampler = upsampler
        self.stft, self.device = upsampler.stft, upsampler.device

    @property
    def frame_multiple(self) -> int:
        return int(self.upsampler.frame_multiple)

    @property
    def receptive_field_frames(self) -> int:
        return int(self.upsampler.receptive_field_frames)


class SharedPredictor(_ModelView):
    """Batches the network calls of several files upsampled at once, one thread a file (for a GPU, where one
    short file leaves the device mostly idle): each call waits until every active file has a call pending or
    in a batch still running (or ``max_wait_s`` has passed), and the pending calls of one model go through it
    together (:meth:`specsr.pipeline.Upsampler.predict_magnitudes`: each computed as if alone). A
    :class:`specsr.chunking.MagnitudePredictor`.
    """

    def __init__(self, upsampler: Any, *, max_items: int = 8, max_wait_s: float = 0.05) -> None:
        import threading

        super().__init__(upsampler)
        self.max_items, self.max_wait_s = max_items, max_wait_s
        self._cv = threading.Condition()
        self._pending: list[_Call] = []
        self._active = 0
        self._in_flight = 0  # calls taken into a batch that has not returned: their files cannot add one now
        self.calls = 0  # network calls made, for the curious (and the tests)

    def active(self) -> _Active:
        """Context of one file being upsampled: while inside, calls wait for this file's too."""
        return _Active(self)

    def for_model(self, upsampler: Any) -> _ForModel:
        """This predictor's batching for the calls of another model (the default's wide partner,
        :meth:`specsr.pipeline.Upsampler.model_for`): its calls wait with every active file's, and go through
        ``upsampler`` batched with the other calls for it."""
        return _ForModel(self, upsampler)

    def predict_magnitude(self, known: Any, cutoff_bins: int) -> Any:
        return self._predict(self.upsampler, known, cutoff_bins)

    def _predict(self, upsampler: Any, known: Any, cutoff_bins: int) -> Any:
        call = _Call(upsampler, known, cutoff_bins)
        with self._cv:
            self._pending.append(call)
            self._cv.notify_all()
            deadline = time.monotonic() + self.max_wait_s
            while (call in self._pending
                   and len(self._pending) + self._in_flight < min(self.max_items, max(1, self._active))
                   and time.monotonic() < deadline):
                self._cv.wait(max(0.0, deadline - time.monotonic()))
            if call in self._pending:  # this thread runs the batch, its own call among them (one model's calls)
                batch = [call] + [c for c in self._pending if c is not call and c.upsampler is upsampler][
                    : self.max_items - 1]
                self._pending = [c for c in self._pending if c not in batch]
                self._in_flight += len(batch)
            else:
                batch = []
        if batch:
            try:
                results = upsampler.predict_magnitudes([(c.known, c.cutoff_bins) for c in batch])
                for c, r in zip(batch, results, strict=True):
                    c.result = r
            except BaseException as exc:  # every caller of the batch sees the failure
                for c in batch:
                    c.error = exc
            with self._cv:
                self.calls += 1
                self._in_flight -= len(batch)
                for c in batch:
                    c.done = True
                self._cv.notify_all()
        with self._cv:
            while not call.done:
                self._cv.wait()
        if call.error is not None:
            raise call.error
        return call.result


class _ForModel(_ModelView):
    """:meth:`SharedPredictor.for_model`: a :class:`specsr.chunking.MagnitudePredictor` for ``upsampler``."""

    def __init__(self, shared: SharedPredictor, upsampler: Any) -> None:
        super().__init__(upsampler)
        self.shared = shared

    def predict_magnitude(self, known: Any, cutoff_bins: int) -> Any:
        return self.shared._predict(self.upsampler, known, cutoff_bins)


class _Call:
    def __init__(self, upsampler: Any, known: Any, cutoff_bins: int) -> None:
        self.upsampler, self.known, self.cutoff_bins = upsampler, known, cutoff_bins
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = False


class _Active:
    def __init__(self, shared: SharedPredictor) -> None:
        self.shared = shared

    def __enter__(self) -> None:
        with self.shared._cv:
            self.shared._active += 1

    def __exit__(self, *exc: object) -> None:
        with self.shared._cv:
            self.shared._active -= 1
            self.shared._cv.notify_all()  # a waiting call need not wait for this file any more
