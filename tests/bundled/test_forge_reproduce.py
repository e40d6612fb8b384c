"""`expertpm forge run experts/sentiment` reproduces the bundled sentiment expert from its sources:
documents → stand-in teacher → records → decontaminated split → LoRA SFT → evaluation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import EXPERTS_DIR

RECIPE_ENDPOINT = 'endpoint = "http://127.0.0.1:8765/v1"'


def copy_source(name: str, dest: Path, endpoint: str) -> Path:
    """The expert's source directory without forge's caches, its teacher moved to `endpoint`."""
    target = dest / "experts" / name
    shutil.copytree(EXPERTS_DIR / name, target, ignore=shutil.ignore_patterns(".forge", "dist"))
    (dest / "experts" / "base").mkdir()
    shutil.copy(EXPERTS_DIR / "base" / "probe.txt", dest / "experts" / "base")  # the recipe's forgetting probe
    recipe = target / "forge.toml"
    text = recipe.read_text(encoding="utf-8")
    assert RECIPE_ENDPOINT in text
    recipe.write_text(text.replace(RECIPE_ENDPOINT, f'endpoint = "{endpoint}"'), encoding="utf-8")
    return target


@pytest.mark.slow
def test_forge_run_reproduces_the_bundled_sentiment_expert(tmp_path: Path, bundled_home) -> None:
    from expertpm._store import Store
    from expertpm_forge.teacher.server import running_server

    published = Store(bundled_home).get("sentiment").manifest.doc["eval"]
    env = {**os.environ, "EXPERTPM_HOME": str(bundled_home.root)}  # where the recipe finds tiny-qwen3
    with running_server() as endpoint:
        source = copy_source("sentiment", tmp_path, endpoint)
        proc = subprocess.run([sys.executable, "-m", "expertpm", "forge", "run", str(source), "--json"],
                              capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    steps = {o["step"]: o for o in json.loads(proc.stdout)}
    assert list(steps) == ["clean", "chunk", "dedupe", "synthesize", "format", "split", "train", "evaluate", "build"]
    assert all(o["status"] == "ran" for o in steps.values())
    assert steps["split"]["summary"]["eval_pinned"] and steps["split"]["summary"]["eval"] == published["n"]
    evaluation = json.loads((source / ".forge" / "evaluate" / "eval.json").read_text(encoding="utf-8"))
    assert evaluation["n"] == published["n"]
    assert evaluation["expert_score"] >= 0.8 and evaluation["base_score"] <= 0.2, evaluation
    assert abs(evaluation["expert_score"] - published["expert_score"]) <= 0.1, (evaluation, published)
    manifest = json.loads((source / ".forge" / "build" / "package" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["name"] == "sentiment" and manifest["eval"]["expert_score"] == evaluation["expert_score"]
