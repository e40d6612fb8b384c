"""Fixtures for the bundled default index (`index/`) and the example experts built into it.

`bundled_home` follows the committed index (pinned by `index/FINGERPRINT`) from a fresh home and
installs the base and the five experts from it, offline, once per test session.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INDEX_DIR = REPO / "index"
EXPERTS_DIR = REPO / "experts"
BASE = "tiny-qwen3"
EXPERTS = ("sql", "tool-call", "cypher", "sentiment", "ner")
PACKAGES = (BASE, *EXPERTS)


def fingerprint() -> str:
    return (INDEX_DIR / "FINGERPRINT").read_text(encoding="utf-8").strip()


@pytest.fixture(scope="session")
def bundled_home(tmp_path_factory):
    """A fresh home following the bundled index, with the base and every example expert installed."""
    from expertpm._home import Home
    from expertpm._index import add_index, install_from_index

    home = Home(tmp_path_factory.mktemp("bundled") / "home")
    add_index(home, "default", str(INDEX_DIR), fingerprint=fingerprint())
    for name in PACKAGES:
        install_from_index(home, name)
    return home


@pytest.fixture(scope="session")
def bundled_runtime(bundled_home):
    """The runtime over the installed bundled packages (one engine for the whole session)."""
    from expertpm_runtime.api import Runtime

    with Runtime.from_store(bundled_home, base=BASE) as runtime:
        yield runtime


def eval_items(expert: str) -> list[dict]:
    """The committed held-out eval set of an expert (teacher-shaped examples)."""
    path = EXPERTS_DIR / expert / "eval.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def pytest_collection_modifyitems(config, items):
    """Tests of the built index skip (saying how to build it) when `index/` holds no build."""
    if (INDEX_DIR / "FINGERPRINT").is_file():
        return
    skip = pytest.mark.skip(reason="the bundled index is not built (bash scripts/build-bundled.sh)")
    for item in items:
        if item.path.name in ("test_bundled_index.py", "test_bundled_runtime.py"):
            item.add_marker(skip)
