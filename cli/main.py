"""Console entry point: ``specsr`` (each command lives in its own module of this package)."""

from __future__ import annotations

from specsr.cli import convert as _convert  # noqa: F401
from specsr.cli import evaluate as _evaluate  # noqa: F401  (registers commands)
from specsr.cli import plot as _plot  # noqa: F401
from specsr.cli import report as _report  # noqa: F401
from specsr.cli import train as _train  # noqa: F401
from specsr.cli import upsample as _upsample  # noqa: F401
from specsr.cli.app import app, stop_on_signals


def main() -> None:
    stop_on_signals()
    app()


if __name__ == "__main__":
    main()
