"""The typer app, its help formatting, and the error handling every command shares."""

from __future__ import annotations

import functools
import os
import re
import signal
import traceback
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer
from typer.core import TyperCommand

from specsr.errors import SpecsrError

BUG_REPORT = "this is a bug in specsr; please report it with the traceback above"


class Command(TyperCommand):
    """Plain click-style usage lines: ``INPUT [UPSAMPLED]``, not typer's ``{INPUT}``."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [re.sub(r"^\{(.*)\}((?:\.\.\.)?)$", r"\1\2", piece) for piece in super().collect_usage_pieces(ctx)]


app = typer.Typer(
    name="specsr",
    help="Audio super-resolution in the spectrogram domain: convert, train, upsample, plot, evaluate, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain: "[stft]" is a TOML table, not markup
)

F = TypeVar("F", bound=Callable[..., Any])


def command(name: str) -> Callable[[F], F]:
    """Register ``fn`` as ``specsr NAME`` with the shared help formatting and error handling."""

    def register(fn: F) -> F:
        app.command(name, cls=Command)(handle_errors(fn))
        return fn

    return register


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C so that every temp file is removed on the way out."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def stop_on_signals() -> None:
    """Handle ``kill``/``timeout`` (TERM) and a closed terminal (HUP) like Ctrl-C: clean up, one line, exit."""

    def raise_terminated(signum: int, _frame: object) -> None:
        raise Terminated(signum)

    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), raise_terminated)


def debug_enabled() -> bool:
    return os.environ.get("SPECSR_DEBUG", "") not in ("", "0")


def fatal(message: str, code: int = 1) -> NoReturn:
    """Print ``specsr: error: message`` on stderr and exit with ``code`` (no traceback)."""
    typer.echo(f"specsr: error: {message}", err=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    typer.echo(f"specsr: warning: {message}", err=True)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def handle_errors(fn: F) -> F:
    """One line on stderr and a non-zero exit code for the user's errors: bad input (:class:`SpecsrError`),
    files (``OSError``), memory. Anything else is a bug: its traceback stays, followed by a line saying so.

    ``SPECSR_DEBUG=1`` lets every traceback through instead.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except Terminated as exc:
            fatal(f"stopped by {exc} (nothing half-written is left)", 128 + exc.signum)
        except KeyboardInterrupt:
            fatal("interrupted", 130)
        except (SpecsrError, OSError, MemoryError) as exc:
            if debug_enabled():
                raise
            message = first_line(exc)
            if isinstance(exc, MemoryError):
                message = "out of memory (try a smaller --chunk-seconds or --batch-size)"
            elif isinstance(exc, OSError) and not isinstance(exc, SpecsrError) and exc.filename:
                message = f"{exc.filename}: {exc.strerror or message}"
            fatal(message)
        except Exception as exc:
            if debug_enabled():
                raise
            if isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower():  # torch's OOM on any device
                fatal(f"out of memory: {first_line(exc)} (try a smaller --batch-size or --chunk-seconds)")
            traceback.print_exc()
            fatal(BUG_REPORT, 2)

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        from specsr import __version__

        typer.echo(f"specsr {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Audio super-resolution in the spectrogram domain. SPECSR_DEBUG=1 shows tracebacks."""
