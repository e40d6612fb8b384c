"""`expertpm route` (manifests only; no model) and the import weight of the runtime commands."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from expertpm_testing.core import run_cli
from serving_fixtures import REPO_ROOT, tiny_home, tiny_packages  # noqa: F401


def test_route_explain_shows_scores_and_reasons(tiny_home):
    proc = run_cli("route", "please parse this JSON", "--explain", "--keywords-only", home=tiny_home)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "json-tool"
    assert lines[1].startswith("method: keywords; json-tool by keyword match; ") and lines[1].endswith(" ms")
    assert lines[2] == ("* json-tool                score  1.030  similarity      -  priority 0.60  "
                        "keyword 'parse', 'json'")
    assert lines[3] == ("  french                   score  0.000  similarity      -  priority 0.40  "
                        "no keyword matched (keyword fast path; similarity not computed)")


def test_route_json_and_generic_queries(tiny_home):
    proc = run_cli("route", "what time is it", "--json", "--keywords-only", home=tiny_home)
    doc = json.loads(proc.stdout)
    assert doc["experts"] == [] and doc["method"] == "none"
    assert doc["reason"] == "generic query → base: no keyword matched (keywords only)"
    assert {s["name"] for s in doc["scores"]} == {"french", "json-tool"}  # `foreign` is for another base
    proc = run_cli("route", "convert this YAML to JSON", "--keywords-only", home=tiny_home)
    assert proc.stdout == "base (no expert)\n"  # json-tool excludes yaml


def test_route_over_directories_outside_the_store(tiny_packages, tmp_path):
    proc = run_cli("route", "in French please", "--keywords-only", "--base", str(tiny_packages.base),
                   *(a for d in tiny_packages.experts.values() for a in ("--expert-dir", str(d))),
                   home=tmp_path / "empty-home")
    assert (proc.returncode, proc.stdout) == (0, "french\n")


@pytest.mark.slow  # loads the sentence encoder in a subprocess
def test_route_by_similarity_caches_example_embeddings(tiny_home):
    proc = run_cli("route", "Extract every field from this document into an array of objects", "--json",
                   home=tiny_home)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    assert doc["experts"] == ["json-tool"] and doc["method"] == "embedding"
    assert len(list((tiny_home / "cache" / "router" / "all-MiniLM-L6-v2").glob("*.npy"))) == 2


def test_help_and_route_import_no_torch(tiny_home):
    code = ("import sys\nfrom expertpm.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('LOADED', sorted(m for m in ('torch', 'transformers', 'sentence_transformers', 'litestar') "
            "if m in sys.modules), file=sys.stderr)")
    for args in (["--help"], ["serve", "--help"], ["route", "parse json", "--keywords-only", "--home", str(tiny_home)]):
        proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO_ROOT)
        assert proc.stderr.strip().splitlines()[-1] == "LOADED []", (args, proc.stderr)
