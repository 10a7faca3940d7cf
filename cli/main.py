"""Console entry point: ``specsr`` (each command lives in its own module of this package)."""

from __future__ import annotations

from cli import evaluate as _evaluate  # noqa: F401  (registers commands)
from cli.app import app


def main() -> None:
    app()


if __name__ == "__main__":
    main()
