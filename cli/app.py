"""The typer app and the one-line error handling every command shares."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer

from specsr.errors import SpecsrError

app = typer.Typer(
    name="specsr",
    help="Audio super-resolution in the spectrogram domain: convert, train, upsample, plot, evaluate, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])


def debug_enabled() -> bool:
    return os.environ.get("SPECSR_DEBUG", "") not in ("", "0")


def fatal(message: str, code: int = 1) -> NoReturn:
    """Print ``specsr: error: message`` on stderr and exit with ``code`` (no traceback)."""
    typer.echo(f"specsr: error: {message}", err=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    typer.echo(f"specsr: warning: {message}", err=True)


def handle_errors(fn: F) -> F:
    """Turn expected failures into one line on stderr and a non-zero exit code.

    ``SPECSR_DEBUG=1`` lets the traceback through instead.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except KeyboardInterrupt:
            fatal("interrupted", 130)
        except (SpecsrError, OSError, MemoryError) as exc:
            if debug_enabled():
                raise
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if isinstance(exc, OSError) and not isinstance(exc, SpecsrError) and exc.filename:
                message = f"{exc.filename}: {exc.strerror or message}"
            fatal(message)
        except RuntimeError as exc:  # e.g. CUDA out of memory
            if debug_enabled():
                raise
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else "runtime error"
            if "out of memory" in text.lower():
                fatal(f"out of memory: {text} (try a smaller --batch-size or --chunk-seconds)")
            fatal(text)

    return wrapper  # type: ignore[return-value]


def stderr_is_tty() -> bool:
    return sys.stderr.isatty()


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
