"""The provider reads a real signed, verified index through `IndexSource`."""

from __future__ import annotations

from pathlib import Path

import pytest
from expertpm_testing.resolver import OTHER_FINGERPRINT, entry, memory_index

from expertpm._errors import ResolutionError
from expertpm._project import parse_project
from expertpm._provider import IndexSource, resolve_project

TINY_WEIGHTS = "b" * 64  # the base digest of the index fixtures' experts


def test_resolves_and_locks_from_a_verified_index(index_world):
    index_world.publish("sql", "1.0.0")
    index_world.publish("sql", "1.1.0", seed=1)
    index_world.add_client()
    source = IndexSource("main", index_world.open())
    bases = memory_index([entry("tiny", "1.0.0", kind="base", weights=TINY_WEIGHTS)], name="bases",
                         fingerprint=OTHER_FINGERPRINT)
    project = parse_project('[project]\nname = "d"\n[experts]\nsql = "^1"\n', Path("experts.toml"))
    result = resolve_project(project, [source, bases])
    sql = result.get("sql")
    assert str(sql.version) == "1.1.0" and sql.source is source
    lock = result.to_lock(project)
    locked = lock.get("sql")
    published = [e for e in index_world.open().entries("sql") if e.version == "1.1.0"][0]
    assert (locked.sha256, locked.signature, locked.publisher) == (published.sha256, published.signature,
                                                                   published.publisher)
    assert locked.source == f"index+{index_world.fingerprint}" and locked.dependencies == ("tiny",)
    assert [(i.name, i.fingerprint) for i in lock.indexes] == [("main", index_world.fingerprint),
                                                               ("bases", OTHER_FINGERPRINT)]


def test_a_missing_base_is_explained(index_world):
    index_world.publish("sql", "1.0.0")
    index_world.add_client()
    project = parse_project('[project]\nname = "d"\n[experts]\nsql = "*"\n', Path("experts.toml"))
    with pytest.raises(ResolutionError) as info:
        resolve_project(project, [IndexSource("main", index_world.open())])
    assert info.value.message == (
        "Because sql requires base tiny ^1.0 with weights digest bbbbbbbb… and tiny is not in index 'main', "
        "sql cannot be used.\nAnd because you require sql, your requirements are unsatisfiable.")
