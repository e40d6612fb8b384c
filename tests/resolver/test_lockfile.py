"""experts.lock: stable bytes, schema, exact error messages, atomic writes and freshness."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import jsonschema
import pytest
from expertpm_testing.core import REPO
from expertpm_testing.resolver import (
    OTHER_FINGERPRINT,
    base_entries,
    entry,
    memory_index,
    write_project,
)

from expertpm._errors import FormatError
from expertpm._lockfile import (
    HEADER,
    Lock,
    LockOutOfDate,
    check_fresh,
    is_fresh,
    read_lock,
    staleness,
    write_lock,
)
from expertpm._project import ExpertSpec, add_expert, load_project
from expertpm._provider import resolve_project

ENTRIES = base_entries() + [
    entry("sql", "1.0.0"), entry("sql", "1.2.0", requires={"helper": "^1"}),
    entry("helper", "1.0.0"), entry("chat", "2.0.0"),
]
PROJECT = '[project]\nname = "demo"\nbase = "tiny-qwen3@^1"\n\n[experts]\nsql = "^1"\nchat = "*"\n'


def lock_project(directory: Path, text: str = PROJECT, **kw) -> tuple:
    project = load_project(write_project(directory, text))
    lock = resolve_project(project, [memory_index(ENTRIES)], **kw).to_lock(project)
    return project, lock


def test_lock_contents_order_and_schema(project_dir: Path):
    project, lock = lock_project(project_dir)
    assert write_lock(project_dir, lock) is True
    text = (project_dir / "experts.lock").read_text()
    assert text.startswith(HEADER + "version = 1\n\n[metadata]\ncontent-hash = ")
    doc = tomllib.loads(text)
    assert [p["name"] for p in doc["package"]] == ["chat", "helper", "sql", "tiny-qwen3"]
    sql = doc["package"][2]
    assert list(sql) == ["name", "version", "kind", "source", "sha256", "size", "manifest_sha256", "publisher",
                         "signature", "dependencies"]
    assert sql["version"] == "1.2.0" and sql["dependencies"] == ["helper", "tiny-qwen3"]
    assert sql["source"] == f"index+{doc['index'][0]['fingerprint']}"
    assert doc["index"] == [{"name": "default", "fingerprint": lock.indexes[0].fingerprint, "snapshot_version": 7}]
    schema = json.loads((REPO / "schemas" / "lockfile.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(doc)
    assert read_lock(project_dir) == lock


def test_same_resolution_gives_identical_bytes(project_dir: Path):
    _, lock = lock_project(project_dir)
    write_lock(project_dir, lock)
    before = (project_dir / "experts.lock").read_bytes()
    _, again = lock_project(project_dir, locked=lock.versions)
    assert write_lock(project_dir, again) is False  # nothing to write
    assert again.to_toml().encode() == before


def test_a_changed_resolution_is_a_small_diff(project_dir: Path):
    _, lock = lock_project(project_dir)
    write_lock(project_dir, lock)
    old = (project_dir / "experts.lock").read_text().splitlines()
    _, newer = lock_project(project_dir, PROJECT.replace('sql = "^1"', 'sql = "~1.0"'))
    new = newer.to_toml().splitlines()
    changed = [line for line in set(old) ^ set(new)]
    # the content hash, sql's version/digests/dependencies, and helper's table go; nothing else moves
    assert all(not line.startswith(("[[index]]", "fingerprint", "snapshot_version")) for line in changed)
    assert len(changed) <= 20


def test_freshness_tracks_the_inputs_not_the_layout(project_dir: Path):
    project, lock = lock_project(project_dir)
    assert is_fresh(project, lock)
    reordered = load_project(write_project(project_dir, '# comment\n[experts]\nchat = "*"\nsql = "^1"\n\n'
                                           '[project]\nname = "demo"\nbase = "tiny-qwen3@^1"\n'))
    assert is_fresh(reordered, lock)
    assert staleness(project, None) == "there is no experts.lock"
    added = add_expert(project.path, ExpertSpec("helper", "^1"))
    assert staleness(added, lock) == "experts.toml changed since experts.lock was written"
    added = add_expert(project.path, ExpertSpec("math", "^1"))
    assert staleness(added, lock) == "math is in experts.toml but not in experts.lock"
    assert staleness(project, lock, {"default": OTHER_FINGERPRINT}) == (
        "the indexes changed since experts.lock was written (default)")
    with pytest.raises(LockOutOfDate) as info:
        check_fresh(added, lock)
    assert info.value.hint == "run `expertpm lock` and commit the result"
    assert str(info.value.where).endswith("experts.lock")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('version = "1.2.0"', 'version = "one"'),
         "experts.lock:{line}: package[2].version: 'one' has an invalid format"),
        (lambda t: t.replace("size = ", "sizes = ", 1),
         "experts.lock:{line}: package[0]: unknown field(s): 'sizes'"),
        (lambda t: t.replace("version = 1\n", "version = 2\n", 1),
         "experts.lock: lock format version 2 is not supported (this expertpm writes 1) — upgrade expertpm or run "
         "`expertpm lock`"),
        (lambda t: t.replace('[metadata]', '[metadata', 1), "experts.lock:{line}: invalid TOML: "),
        (lambda t: t.replace('name = "helper"', 'name = "chat"'), "experts.lock:{line}: package[1].name: 'chat' is locked twice"),
    ],
)
def test_malformed_locks_name_file_line_and_field(project_dir: Path, edit, message: str):
    _, lock = lock_project(project_dir)
    text = edit(lock.to_toml())
    path = project_dir / "experts.lock"
    path.write_text(text)
    with pytest.raises(FormatError) as info:
        read_lock(path)
    marker = {"package[2].version": 'version = "one"', "package[0]": "sizes = ", "invalid TOML": "[metadata",
              "package[1].name": 'name = "chat"\nversion = "1.0.0"'}
    line = next((text[:text.index(v)].count("\n") + 1 for k, v in marker.items() if k in message), None)
    expected = message.replace("experts.lock", str(path), 1).format(line=line)
    assert str(info.value).startswith(expected)
    if "format version" not in message and "TOML" not in message:
        assert info.value.hint == "the lock was edited by hand or damaged: run `expertpm lock` to rewrite it"


def test_a_failed_write_leaves_the_old_lock_intact(project_dir: Path):
    _, lock = lock_project(project_dir)
    write_lock(project_dir, lock)
    before = (project_dir / "experts.lock").read_bytes()
    _, bigger = lock_project(project_dir, PROJECT + 'helper = "*"\n')
    script = textwrap.dedent(f"""
        import resource, signal, sys
        sys.path.insert(0, {str(REPO / 'tests')!r})
        from expertpm._lockfile import Lock, write_lock
        lock = Lock.from_toml(sys.stdin.read())
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))  # the disk is "full" after 512 bytes
        try:
            write_lock({str(project_dir)!r}, lock)
        except OSError as exc:
            print("failed:", exc.errno)
    """)
    proc = subprocess.run([sys.executable, "-c", script], input=bigger.to_toml(), capture_output=True, text=True,
                          cwd=REPO)
    assert proc.stdout.startswith("failed:"), proc.stderr
    assert (project_dir / "experts.lock").read_bytes() == before
    assert sorted(os.listdir(project_dir)) == ["experts.lock", "experts.toml"]  # no temporary file left


def test_resolution_and_explanations_do_not_depend_on_hash_seeds(project_dir: Path):
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO / 'tests')!r})
        from pathlib import Path
        from expertpm_testing.resolver import base_entries, entry, memory_index, WEIGHTS_V2
        from expertpm._project import parse_project
        from expertpm._provider import resolve_project
        from expertpm._errors import ResolutionError
        entries = base_entries() + [entry(f"e{{i}}", v, requires={{f"e{{i + 1}}": "^1"}} if i < 12 else {{}})
                                    for i in range(13) for v in ("1.0.0", "1.1.0")]
        entries += [entry("x", "2.0.0", base_range="^2", weights=WEIGHTS_V2), entry("x", "1.0.0")]
        ok = parse_project('[project]\\nname="d"\\n[experts]\\ne0="*"\\nx="*"\\n[tool.expertpm]\\nmax_chain=20\\n', Path("experts.toml"))
        print(resolve_project(ok, [memory_index(entries)]).to_lock(ok).to_toml())
        bad = parse_project('[project]\\nname="d"\\nbase="tiny-qwen3@^1"\\n[experts]\\ne0="*"\\nx=">=2"\\n', Path("experts.toml"))
        try:
            resolve_project(bad, [memory_index(entries)])
        except ResolutionError as exc:
            print(exc)
    """)
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO)
        assert proc.returncode == 0, proc.stderr
        outputs.add(proc.stdout)
    assert len(outputs) == 1
    assert "x>=2.0.0 cannot be used" in outputs.pop()


def test_lock_round_trips_through_text():
    lock = Lock.from_toml(HEADER + 'version = 1\n\n[metadata]\ncontent-hash = "' + "a" * 64 + '"\n')
    assert (lock.packages, lock.indexes) == ((), ())
    assert Lock.from_toml(lock.to_toml()) == lock
