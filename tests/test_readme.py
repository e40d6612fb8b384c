"""README.md's commands are the ones CI and users run, and the main job works (STYLE: docs are tested)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    return re.findall(r"```sh\n(.*?)\n```", (REPO / "README.md").read_text(), flags=re.S)


def test_readme_opens_with_setup_and_test_commands():
    setup, test = readme_commands()[:2]
    assert setup == "bash scripts/bootstrap.sh && bash scripts/demo.sh"
    assert test == ".venv/bin/python -m pytest"
    ci = (REPO / ".ci" / "run").read_text()
    assert "bash scripts/bootstrap.sh" in ci and test in ci


def test_bootstrap_installs_cpu_torch_before_the_package():
    script = (REPO / "scripts" / "bootstrap.sh").read_text()
    assert script.index("torch==2.13.0") < script.index("-e '.[dev]'")
    pyproject = (REPO / "pyproject.toml").read_text()
    assert "torch==" not in pyproject, "never pin an exact torch in the package metadata"


@pytest.mark.slow
def test_demo_script_runs_end_to_end(tmp_path):
    env = dict(os.environ, EXPERTPM=str(Path(sys.executable).parent / "expertpm"))
    proc = subprocess.run(["bash", str(REPO / "scripts" / "demo.sh")], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "demo: done" in proc.stdout
    # the bundled index: six packages installed offline, the router picks sql, which answers in SQL
    assert proc.stdout.count("from index 'default'") == 6
    assert "experts: sql" in proc.stderr + proc.stdout
    answer = proc.stdout.split("experts: sql", 1)[-1] if "experts: sql" in proc.stdout else proc.stdout
    assert "SELECT COUNT(*) FROM students WHERE city = 'Lima';" in answer
