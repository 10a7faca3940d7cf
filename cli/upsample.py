"""``specsr upsample``: files or folders in, upsampled files out (a thin layer over :mod:`specsr.pipeline`)."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, cast

import soundfile as sf
import typer
from tqdm import tqdm

from specsr.audio import PCM_FORMATS, WRITE_FORMATS, check_writable, output_subtype
from specsr.cli import options as opt
from specsr.cli.app import command, first_line, warn
from specsr.errors import SpecsrError

if TYPE_CHECKING:  # the pipeline (torch) loads only when the command runs
    from specsr.batch import ResultsLog
    from specsr.chunking import MagnitudePredictor
    from specsr.config import InferenceConfig
    from specsr.pipeline import Upsampler, UpsampleReport

LONG_INPUT_SECONDS = 60.0  # inputs longer than this get their own progress bar over seconds


@dataclass(frozen=True)
class Job:
    """One input file and where its output goes."""

    src: Path
    dst: Path
    make_folder: bool  # the output goes into a folder that specsr may create


def default_output_name(src: Path, sr_out: int, ext: str = ".wav") -> Path:
    """``<stem>_<sr_out/1000:g>k.wav`` (or ``ext``) beside the input."""
    return src.with_name(f"{src.stem}_{sr_out / 1000:g}k{ext}")


def plan_jobs(inputs: list[Path], output: Path | None, sr_out: int,
              listed: list[tuple[Path, PurePosixPath]] | None = None, ext: str | None = None) -> list[Job]:
    """Expand folders (recursive) and decide every output path.

    ``listed``: files read from ``--list`` (:func:`specsr.utils.read_path_list`), mirrored under
    ``output`` by their listed relative path; they are checked when their turn comes, so a missing one
    fails alone. ``ext`` (``--format``): every output's extension; otherwise a folder run keeps the input's
    where it is a lossless format and writes ``.wav`` for the rest.

    One input file: ``output`` is the output file (or a folder to put it in). Otherwise ``output``
    is a folder in which relative paths are mirrored: ``DIR/a/b.flac`` → ``OUTPUT/a/b.flac`` for
    the folder ``DIR``, ``x.wav`` → ``OUTPUT/x.wav`` for a file given directly. Without ``output``
    every result lands beside its input as ``<stem>_48k.wav``.
    """
    from specsr.audio import AUDIO_EXTENSIONS, FFMPEG_EXTENSIONS, find_audio_files

    pairs: list[tuple[Path, Path]] = []  # (file, path relative to what the user named)
    for item in inputs:
        if not item.exists():
            raise SpecsrError(f"{item}: no such file or folder")
        if item.is_dir():
            found = _without_own_outputs(find_audio_files(item, AUDIO_EXTENSIONS + FFMPEG_EXTENSIONS), output, sr_out)
            if not found:
                warn(f"{item}: no audio files in this folder")
            pairs += [(f, f.relative_to(item)) for f in found]
        else:
            pairs.append((item, Path(item.name)))
    pairs += [(full, Path(rel)) for full, rel in listed or []]
    if not pairs:
        raise SpecsrError("no input files")
    single = len(pairs) == 1 and bool(inputs) and not inputs[0].is_dir()
    if output is not None and not single and output.suffix.lower() in AUDIO_EXTENSIONS and not output.is_dir():
        raise SpecsrError(f"-o {output}: several inputs need an output folder, not a file name")
    jobs = []
    for src, rel in pairs:
        if output is None:
            jobs.append(Job(src, default_output_name(src, sr_out, ext or ".wav"), False))
        elif single and not (output.is_dir() or str(output).endswith(("/", "\\"))):
            jobs.append(Job(src, output.with_suffix(ext) if ext else output, True))  # a missing folder is created
        else:
            dst = output / rel
            if ext is not None:
                dst = dst.with_suffix(ext)
            elif dst.suffix.lower() not in PCM_FORMATS:
                dst = dst.with_suffix(".wav")
            jobs.append(Job(src, dst, True))
    seen: dict[Path, Path] = {}
    for job in jobs:
        key = job.dst.resolve()
        if key in seen:
            raise SpecsrError(f"{seen[key]} and {job.src} would both be written to {job.dst}")
        if key == job.src.resolve():
            raise SpecsrError(f"{job.src}: the output would overwrite the input; choose another -o")
        seen[key] = job.src
    return jobs


def _without_own_outputs(found: list[Path], output: Path | None, sr_out: int) -> list[Path]:
    """A folder's audio files less what specsr wrote there: ``<stem>_48k.wav`` beside a ``<stem>.*`` source
    (the default output name), and anything inside the output folder."""
    stems = {(f.parent, f.stem) for f in found}
    suffix = default_output_name(Path("x.wav"), sr_out).name[1:]  # "_48k.wav"
    out_root = output.resolve() if output is not None else None
    kept = []
    for f in found:
        if f.name.endswith(suffix) and (f.parent, f.name[:-len(suffix)]) in stems:
            continue
        if out_root is not None and out_root in f.resolve().parents:
            continue
        kept.append(f)
    return kept


def parse_cutoff(text: str) -> float | None:
    """``auto`` → None; ``8000`` or ``8k`` → Hz."""
    value = text.strip().lower()
    if value == "auto":
        return None
    try:
        hz = float(value[:-1]) * 1000 if value.endswith("k") else float(value)
    except ValueError:
        raise SpecsrError(f"--cutoff-hz must be 'auto' or a frequency in Hz (e.g. 8000 or 8k), got {text!r}") from None
    if not hz > 0:
        raise SpecsrError(f"--cutoff-hz must be positive, got {text!r}")
    return hz


@command("upsample")
def upsample_cmd(
    inputs: list[Path] | None = typer.Argument(None, metavar="INPUT", show_default=False,
                                               help="Audio files or folders (searched recursively); - reads stdin."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Output file (one input) or folder (several; "
                                       "relative paths mirrored); - writes stdout. Default: <stem>_48k.wav beside "
                                       "each input."),
    model: opt.Model = None,
    wide_model: opt.WideModel = None,
    sr_out: int | None = typer.Option(None, "--sr-out", help="Output rate in Hz, up to the model's (default: the "
                                      "model's, 48000); e.g. 44100."),
    out_format: str | None = typer.Option(None, "--format", help="Output format for every file: wav, flac, aiff, "
                                          "w64, ogg, opus, mp3 (default: by -o's extension; .wav)."),
    subtype: str | None = typer.Option(None, "--subtype", help="Sample format: PCM_16, PCM_24, FLOAT, … "
                                       "(default: the input's depth)."),
    compression_level: float | None = typer.Option(None, "--compression-level", help="0-1 for FLAC, OGG, Opus, "
                                                   "MP3: 0 = best quality / largest file."),
    cutoff_hz: str = typer.Option("auto", "--cutoff-hz", help="Where the prediction takes over: auto (detected) "
                                  "or Hz."),
    phase: opt.Phase = None,
    n_iter: opt.NIter = None,
    quality: opt.Quality = None,
    device: opt.Device = "auto",
    precision: opt.Precision = None,
    chunk_seconds: opt.ChunkSeconds = None,
    float_output: bool = typer.Option(False, "--float", help="Write 32-bit float (never scaled for clipping)."),
    copy_full_band: bool = typer.Option(False, "--copy-full-band", help="Resample full-band inputs instead of "
                                        "skipping them."),
    plot: bool = typer.Option(False, "--plot", help="Also write <output stem>.png (spectrograms)."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite existing outputs."),
    list_file: Path | None = typer.Option(None, "--list", help="A file of input paths, one a line (relative to "
                                          "the list's folder; # comments)."),
    skip_existing: bool = typer.Option(False, "--skip-existing", help="Leave outputs that exist alone (a rerun "
                                       "after a crash does only what is missing)."),
    shard: str | None = typer.Option(None, "--shard", help="K/N: do shard K (0..N-1) of N of the sorted inputs. "
                                     "Default: from RANK/WORLD_SIZE, a SLURM array or SPECSR_SHARD."),
    workers: int = typer.Option(1, "--workers", help="Processes on this machine, the CPU threads split between "
                                "them (each loads the model)."),
    batch_files: int | None = typer.Option(None, "--batch-files", help="Files upsampled at once, their network "
                                           "calls batched (default: 8 on CUDA, 1 elsewhere)."),
    results: Path | None = typer.Option(None, "--results", help="Results log (JSON lines). Default: "
                                        "OUTPUT/specsr-results.jsonl when -o is a folder."),
    quiet: opt.Quiet = False,
    list_models: bool = typer.Option(False, "--list-models", help="List the bundled models and exit."),
) -> None:
    """Upsample audio to the model's rate (48 kHz): the input's band is kept, the band above predicted."""
    from specsr.pretrained import DEFAULT_MODEL, WIDE_MODEL, list_bundled_models

    if list_models:
        bundled = list_bundled_models()
        if not bundled:
            typer.echo("no bundled models installed (use --model PATH with a checkpoint from specsr train/export)")
        roles = {DEFAULT_MODEL: "[default] ", WIDE_MODEL: "[the default's wide partner] "}
        for m in bundled:
            typer.echo(f"{m.name}\t{roles.get(m.name, '')}{m.description}")
        return
    request = Request(list_file=list_file, model=model, wide_model=wide_model, device=device, sr_out=sr_out,
                      out_format=out_format, subtype=subtype, compression_level=compression_level,
                      cutoff_hz=cutoff_hz, phase=phase, n_iter=n_iter, quality=quality, precision=precision,
                      chunk_seconds=chunk_seconds, float_output=float_output, copy_full_band=copy_full_band,
                      plot=plot, force=force, skip_existing=skip_existing, shard=shard, workers=workers,
                      batch_files=batch_files, results=results, quiet=quiet)
    pipe_in = any(str(p) == "-" for p in inputs or [])
    pipe_out = output is not None and str(output) == "-"
    if pipe_in or pipe_out:
        _through_pipes(request, inputs or [], output, pipe_in=pipe_in, pipe_out=pipe_out)
    else:
        upsample_all(request, inputs or [], output)


@dataclass(frozen=True)
class Request:
    """The options of one ``specsr upsample`` run, as given (checked by :func:`prepare`)."""

    list_file: Path | None
    model: str | None
    wide_model: str | None
    device: str
    sr_out: int | None
    out_format: str | None
    subtype: str | None
    compression_level: float | None
    cutoff_hz: str
    phase: str | None
    n_iter: int | None
    quality: str | None
    precision: str | None
    chunk_seconds: float | None
    float_output: bool
    copy_full_band: bool
    plot: bool
    force: bool
    skip_existing: bool
    shard: str | None
    workers: int
    batch_files: int | None
    results: Path | None
    quiet: bool


@dataclass
class Prepared:
    """A checked run: the model, this process's jobs, how each file is written, the results log."""

    upsampler: Upsampler
    device: str
    settings: InferenceConfig
    jobs: list[Job]
    opts: RunOptions
    log: ResultsLog | None


def prepare(r: Request, inputs: list[Path], output: Path | None, *, to_stdout: bool) -> Prepared:
    """Check every option, load the model, plan and shard the jobs: everything that can fail before any work."""
    from specsr.batch import RESULTS_NAME, ResultsLog, parse_shard, shard_from_env, take_shard
    from specsr.pipeline import load_model
    from specsr.utils import read_path_list

    if not inputs and r.list_file is None:
        raise SpecsrError("give at least one INPUT file or folder, or --list FILE (or --list-models)")
    if r.workers < 1:
        raise SpecsrError(f"--workers must be at least 1, got {r.workers}")
    if r.batch_files is not None and r.batch_files < 1:
        raise SpecsrError(f"--batch-files must be at least 1, got {r.batch_files}")
    if r.force and r.skip_existing:
        raise SpecsrError("--force overwrites outputs and --skip-existing leaves them alone: give one")
    shard_kn = parse_shard(r.shard) if r.shard is not None else shard_from_env()
    listed = read_path_list(r.list_file) if r.list_file is not None else None
    cutoff = parse_cutoff(r.cutoff_hz)
    settings = opt.inference_settings(phase=r.phase, n_iter=r.n_iter, chunk_seconds=r.chunk_seconds,
                                      precision=r.precision, quality=r.quality)
    ext = _format_extension(r.out_format)
    sample_format = r.subtype.upper() if r.subtype is not None else None
    if sample_format is not None and sample_format not in sf.available_subtypes():
        raise SpecsrError(f"--subtype {sample_format}: unknown; e.g. PCM_16, PCM_24, PCM_32, FLOAT")
    if r.compression_level is not None and not 0.0 <= r.compression_level <= 1.0:
        raise SpecsrError(f"--compression-level {r.compression_level:g}: must be in [0, 1]")
    device = _local_rank_device(r.device)
    upsampler = load_model(r.model, device=device, settings=settings, wide_model=r.wide_model)
    try:
        rate = upsampler.check_sr_out(r.sr_out)
    except SpecsrError as exc:
        raise SpecsrError(f"--sr-out: {exc}") from None
    all_jobs = plan_jobs(inputs, output, rate, listed, ext)
    first_of = {j.dst.suffix.lower(): j.dst for j in reversed(all_jobs)}  # each output format, checked once
    for suffix, dst in first_of.items():
        check_writable(dst, sample_format or output_subtype(None, suffix, float_output=r.float_output), rate,
                       r.compression_level)
    jobs = take_shard(all_jobs, shard_kn, key=lambda j: str(j.src)) if shard_kn else all_jobs
    if shard_kn and not r.quiet:
        typer.echo(f"shard {shard_kn[0]}/{shard_kn[1]}: {len(jobs)} of {len(all_jobs)} files", err=True)
    folder_mode = output is not None and not (len(all_jobs) == 1 and all_jobs[0].dst == output)
    log_path = r.results if r.results is not None else (output / RESULTS_NAME if folder_mode and output else None)
    # a pipe always carries audio: a full-band input passes through resampled (as --copy-full-band)
    opts = RunOptions(cutoff, r.float_output, r.copy_full_band or to_stdout, r.force, rate, sample_format,
                      r.compression_level)
    return Prepared(upsampler, device, settings, jobs, opts, ResultsLog(log_path) if log_path else None)


def upsample_all(r: Request, inputs: list[Path], output: Path | None, *, to_stdout: bool = False,
                 from_stdin: bool = False) -> None:
    """The run: every job of this process, its outcome printed and logged; exit 1 at the end if any failed."""
    from specsr.pipeline import UpsampleWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UpsampleWarning)  # each report carries its file's; printed below
        _upsample_all(r, prepare(r, inputs, output, to_stdout=to_stdout), to_stdout=to_stdout, from_stdin=from_stdin)


def _upsample_all(r: Request, p: Prepared, *, to_stdout: bool, from_stdin: bool) -> None:

    def record(job: Job, outcome: Outcome) -> None:
        if p.log is not None:
            p.log.append(outcome.log_row(job))

    todo = [j for j in p.jobs if not (r.skip_existing and j.dst.exists())]
    failed = written = 0
    skipped = len(p.jobs) - len(todo)
    for job in p.jobs:
        if r.skip_existing and job.dst.exists():
            record(job, Outcome("exists"))
    files_bar = tqdm(total=len(todo), unit="file", disable=r.quiet or len(todo) < 2, leave=False, dynamic_ncols=True)
    batch_files = r.batch_files if r.batch_files is not None else (8 if p.upsampler.device.type == "cuda" else 1)
    if r.workers > 1 and len(todo) > 1:
        outcomes = _in_workers(todo, p.opts, r.workers, model=r.model, wide_model=r.wide_model, device=p.device,
                               settings=p.settings)
    elif batch_files > 1 and len(todo) > 1:
        outcomes = _batched(p.upsampler, todo, p.opts, batch_files)
    else:
        outcomes = ((job, process(p.upsampler, job, p.opts, quiet=r.quiet)) for job in todo)
    for job, outcome in outcomes:
        files_bar.update(1)
        files_bar.set_postfix_str(job.src.name, refresh=False)
        record(job, outcome)
        if outcome.status == "skipped":
            skipped += 1
            _say(f"specsr: skipped: {outcome.error} (--copy-full-band resamples it anyway)", files_bar, err=True)
            continue
        if outcome.status == "failed":
            if len(p.jobs) == 1:
                raise SpecsrError(outcome.error)
            failed += 1
            _say(f"specsr: error: {outcome.error}", files_bar, err=True)
            continue
        written += 1
        _print_report(job, cast("UpsampleReport", outcome.report), files_bar, quiet=r.quiet, from_stdin=from_stdin,
                      to_stdout=to_stdout)
        if r.plot:
            from specsr.plotting import plot_files

            try:
                plot_files(job.src, job.dst, out_path=job.dst.with_suffix(".png"), force=r.force)
            except SpecsrError as exc:
                failed += 1
                _say(f"specsr: error: {first_line(exc)}", files_bar, err=True)
    files_bar.close()
    if (len(p.jobs) > 1 and not r.quiet) or skipped or failed:
        typer.echo(f"{written} upsampled, {skipped} skipped, {failed} failed", err=failed > 0 or to_stdout)
    if failed:  # skipping is not failing
        raise typer.Exit(1)


def _through_pipes(r: Request, inputs: list[Path], output: Path | None, *, pipe_in: bool, pipe_out: bool) -> None:
    """``-`` as INPUT (an audio stream on stdin, WAV or anything libsndfile reads) and/or as ``-o`` (the output,
    WAV unless --format, on stdout): staged in a temporary folder, so specsr sits in a pipe."""
    import shutil
    import tempfile

    if pipe_in and (len(inputs) > 1 or r.list_file is not None):
        raise SpecsrError("- (stdin) must be the only input")
    if pipe_in and output is None:
        raise SpecsrError("- (stdin) has no name to write beside: give -o FILE, or -o - for stdout")
    if pipe_out and (len(inputs) > 1 or r.list_file is not None or (inputs and not pipe_in and inputs[0].is_dir())):
        raise SpecsrError("-o - (stdout) takes one input file, not several or a folder")
    tmp = Path(tempfile.mkdtemp(prefix=".specsr-pipe."))
    try:
        if pipe_in:
            data = typer.get_binary_stream("stdin").read()
            if not data:
                raise SpecsrError("- : nothing on stdin; pipe an audio stream in (e.g. ffmpeg -i x.m4a -f wav - | "
                                  "specsr upsample - -o out.wav)")
            staged = tmp / "stdin.wav"
            staged.write_bytes(data)
            inputs = [staged]
        out = tmp / ("stdout" + (_format_extension(r.out_format) or ".wav")) if pipe_out else output
        upsample_all(r, inputs, out, to_stdout=pipe_out, from_stdin=pipe_in)
        if pipe_out and out is not None and out.exists():
            sink = typer.get_binary_stream("stdout")
            with open(out, "rb") as fh:
                shutil.copyfileobj(fh, sink)
            sink.flush()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass(frozen=True)
class RunOptions:
    """What every file of a run is upsampled with (picklable: it travels to worker processes)."""

    cutoff_hz: float | None
    float_output: bool
    copy_full_band: bool
    force: bool
    sr_out: int
    subtype: str | None
    compression_level: float | None


@dataclass(frozen=True)
class Outcome:
    """One file's result: ``status`` upsampled | skipped | failed | exists; ``error``: the one-line reason."""

    status: str
    report: UpsampleReport | None = None
    error: str = ""

    def log_row(self, job: Job) -> dict:
        """The results log's record of this outcome."""
        row: dict = {"input": str(job.src), "output": str(job.dst), "status": self.status}
        r = self.report
        if r is not None:
            row.update(sr_in=r.sr_in, cutoff_hz=round(r.cutoff_hz, 1), cutoff_source=r.cutoff_source,
                       seconds=round(r.duration_s, 3), rtf=round(r.rtf, 4), warnings=r.messages)
        if self.error:
            row["error"] = self.error
        return row


def _print_report(job: Job, report: UpsampleReport, bar: tqdm, *, quiet: bool, from_stdin: bool,
                  to_stdout: bool) -> None:
    """A written file's warnings (stderr) and summary line (stdout, or stderr when stdout carries the audio)."""
    for message in report.messages:
        _say(f"specsr: warning: {job.src.name}: {message}", bar, err=True)
    if report.limited_seconds:
        _say(f"specsr: warning: {job.dst}: the new band was turned down in {report.limited_seconds:.2f} s of "
             f"audio (at most {report.limit_db:.1f} dB) to stay below full scale; the input's band is "
             "untouched (--float keeps everything)", bar, err=True)
    if report.clipped_samples:
        _say(f"specsr: warning: {job.dst}: {report.clipped_samples} samples where the input itself passes full "
             "scale were clipped (--float keeps them)", bar, err=True)
    if not quiet:
        src = "stdin" if from_stdin else job.src
        _say(f"{src} -> {'stdout' if to_stdout else job.dst}: {report.summary()}", bar, err=to_stdout)


def process(upsampler: Upsampler, job: Job, opts: RunOptions, *, quiet: bool,
            predictor: MagnitudePredictor | None = None) -> Outcome:
    """Upsample one file; a user's error (or nothing to add) is an outcome, a bug propagates. The pipeline's
    warnings are in the report: callers ignore :class:`specsr.pipeline.UpsampleWarning` (see
    :func:`upsample_all`)."""
    from specsr.pipeline import NothingToAddError

    try:
        return Outcome("upsampled", _run_one(upsampler, job, opts, quiet=quiet, predictor=predictor))
    except NothingToAddError as exc:
        return Outcome("skipped", error=first_line(exc))
    except (SpecsrError, OSError) as exc:
        return Outcome("failed", error=first_line(exc))


def _batched(upsampler: Upsampler, jobs: list[Job], opts: RunOptions,
             n_files: int) -> Iterator[tuple[Job, Outcome]]:
    """``(job, outcome)`` with ``n_files`` files upsampled at once (a thread each), their network calls batched
    through one :class:`specsr.batch.SharedPredictor`; in the order of the jobs."""
    from concurrent.futures import ThreadPoolExecutor

    from specsr.batch import SharedPredictor

    shared = SharedPredictor(upsampler, max_items=n_files)

    def one(job: Job) -> Outcome:
        with shared.active():
            return process(upsampler, job, opts, quiet=True, predictor=shared)

    pool = ThreadPoolExecutor(max_workers=n_files)
    try:
        futures = [pool.submit(one, job) for job in jobs]
        for job, future in zip(jobs, futures, strict=True):
            yield job, future.result()
    finally:  # Ctrl-C, SIGTERM: the files in flight finish (outputs are atomic), the rest never start
        pool.shutdown(wait=True, cancel_futures=True)


_WORKER: dict[str, Upsampler] = {}  # the model of a worker process


def _init_worker(model: str | None, wide_model: str | None, device: str, settings: InferenceConfig,
                 threads: int) -> None:
    import torch

    from specsr.pipeline import UpsampleWarning, load_model

    warnings.simplefilter("ignore", UpsampleWarning)  # the report carries them
    torch.set_num_threads(threads)
    _WORKER["upsampler"] = load_model(model, device=device, settings=settings, wide_model=wide_model)


def _work(job: Job, opts: RunOptions) -> Outcome:
    return process(_WORKER["upsampler"], job, opts, quiet=True)


def _in_workers(jobs: list[Job], opts: RunOptions, workers: int, *, model: str | None, wide_model: str | None,
                device: str, settings: InferenceConfig) -> Iterator[tuple[Job, Outcome]]:
    """``(job, outcome)`` as ``workers`` processes finish them; the machine's threads split between them."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = multiprocessing.get_context("spawn")  # never fork a process whose torch has started its threads
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(model, wide_model, device, settings, threads)) as pool:
        futures = {pool.submit(_work, job, opts): job for job in jobs}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _local_rank_device(device: str) -> str:
    """Under torchrun (``LOCAL_RANK`` set), ``auto`` / ``cuda`` means this process's own GPU when there are
    several, so the processes of one machine do not all share the first."""
    import os

    local = os.environ.get("LOCAL_RANK")
    if local is None or device not in ("auto", "cuda") or not local.isdigit():
        return device
    import torch

    if not torch.cuda.is_available() or torch.cuda.device_count() < 2:
        return device
    return f"cuda:{int(local) % torch.cuda.device_count()}"


def _format_extension(name: str | None) -> str | None:
    """``--format flac`` → ``".flac"``; None stays None."""
    if name is None:
        return None
    ext = "." + name.lower().lstrip(".")
    if ext not in WRITE_FORMATS:
        raise SpecsrError(f"--format {name}: unknown; one of {', '.join(sorted(e[1:] for e in WRITE_FORMATS))}")
    return ext


def _run_one(upsampler: Upsampler, job: Job, opts: RunOptions, *, quiet: bool,
             predictor: MagnitudePredictor | None) -> UpsampleReport:
    from specsr.audio import decoded_by_ffmpeg, needs_ffmpeg

    if job.dst.exists() and not opts.force:
        raise SpecsrError(f"{job.dst}: exists already (use --force to overwrite)")
    if not needs_ffmpeg(job.src):
        return _run_file(upsampler, job, job.src, opts, quiet=quiet, predictor=predictor)
    with decoded_by_ffmpeg(job.src) as decoded:  # M4A, AAC, …: ffmpeg's PCM, then as any file
        report = _run_file(upsampler, job, decoded, opts, quiet=quiet, predictor=predictor)
    report.in_path = str(job.src)
    return report


def _run_file(upsampler: Upsampler, job: Job, src: Path, opts: RunOptions, *, quiet: bool,
              predictor: MagnitudePredictor | None) -> UpsampleReport:
    from specsr.audio import audio_info

    info = audio_info(src)
    if job.make_folder:
        job.dst.parent.mkdir(parents=True, exist_ok=True)
    bar = None
    if not quiet and info.seconds > LONG_INPUT_SECONDS:
        bar = tqdm(total=round(info.seconds, 1), unit="s", desc=job.src.name, leave=False, dynamic_ncols=True)

    def progress(seconds_out: float) -> None:
        if bar is not None:
            bar.n = round(min(seconds_out, info.seconds), 1)
            bar.refresh()

    try:
        return upsampler.upsample_file(src, job.dst, force=opts.force, cutoff_hz=opts.cutoff_hz,
                                       copy_full_band=opts.copy_full_band, float_output=opts.float_output,
                                       progress=progress, sr_out=opts.sr_out, subtype=opts.subtype,
                                       compression_level=opts.compression_level, predictor=predictor)
    finally:
        if bar is not None:
            bar.close()


def _say(text: str, bar: tqdm, err: bool = False) -> None:
    """Print a line without breaking a progress bar."""
    if bar.disable:
        typer.echo(text, err=err)
    else:
        bar.write(text, file=sys.stderr if err else sys.stdout)
