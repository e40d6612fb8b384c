"""Fixtures for the package-manager core: isolated homes, keys, packages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh EXPERTPM_HOME for one test."""
    root = tmp_path / "home"
    monkeypatch.setenv("EXPERTPM_HOME", str(root))
    return root


def run_cli(*args: str, home: Path | None = None, input: str | None = None, check: bool = False,
            env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real `expertpm` CLI in a subprocess."""
    full_env = dict(os.environ)
    if home is not None:
        full_env["EXPERTPM_HOME"] = str(home)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "expertpm", *args],
        capture_output=True, text=True, input=input, env=full_env, cwd=cwd,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"expertpm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture
def cli(home: Path):
    """`cli("keys", "list")` runs the real CLI against the test's home."""

    def _run(*args: str, **kw) -> subprocess.CompletedProcess:
        return run_cli(*args, home=home, **kw)

    return _run


__all__ = ["home", "cli", "run_cli", "REPO"]
