"""The layer rules of shared/DESIGN.md hold (import-linter, in a subprocess of its own)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter")

ROOT = Path(__file__).resolve().parents[2]


def _lint(config: Path, python_path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if python_path is not None:
        env["PYTHONPATH"] = python_path
    code = (
        "import sys; from importlinter.cli import lint_imports; "
        f"sys.exit(lint_imports(config_filename={str(config)!r}, no_cache=True))"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )


def test_design_layers_hold() -> None:
    done = _lint(ROOT / "pyproject.toml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 kept, 0 broken" in done.stdout


def test_the_contracts_catch_an_upward_import(tmp_path: Path) -> None:
    """The same contracts over a planted package in which optim/ imports the trainer."""
    package = tmp_path / "optlab"
    for folder in ("optim", "train", "reference", "testing"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    names = (
        "cli",
        "claims",
        "report",
        "rl",
        "bench",
        "problems",
        "durable",
        "errors",
        "inputs",
        "demo",
        "keras",
    )
    for name in names:
        (package / f"{name}.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "optim" / "__init__.py").write_text("import optlab.train\n")
    config = (ROOT / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(config[config.index("[tool.importlinter]") :])
    done = _lint(tmp_path / "pyproject.toml", python_path=str(tmp_path))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "optim/ imports nothing of optlab outside itself BROKEN" in done.stdout
