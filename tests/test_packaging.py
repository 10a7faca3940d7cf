"""Packaging: one installed package (cli/ is specsr.cli, no top-level cli), every subpackage shipped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_for_setuptools():
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "specsr").rglob("__init__.py")}
    assert set(setup["packages"]) == folders | {"specsr.cli"}
    assert setup["package-dir"]["specsr.cli"] == "cli"


def test_cli_is_installed_inside_specsr_only(tmp_path):
    code = ("import importlib.util, specsr.cli.main as m; print(m.__file__); "
            "print(importlib.util.find_spec('cli') is None)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    path, no_top_level = out.stdout.split()
    assert Path(path).parent.name == "cli" and no_top_level == "True"


def test_python_m_specsr_is_the_command_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "specsr", "--version"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("specsr ")
