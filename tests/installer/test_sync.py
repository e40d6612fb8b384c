"""`sync` from a directory index: plan then apply, the installed set, updates and removals that
respect other projects, and every refusal leaving the store and the project as they were."""

from __future__ import annotations

import json

import pytest

from expertpm._actions import do_add, do_init, do_lock, do_remove, do_sync
from expertpm._errors import IntegrityError, PackageError, ResolutionError, StoreError
from expertpm._installer import read_installed
from expertpm._store import Store
from expertpm_testing import store_entries


@pytest.fixture
def world(followed_world):
    do_init(followed_world.project)
    return followed_world


def refs(home) -> dict:
    return {p.id: p.digest for p in Store(home).list()}


def test_sync_installs_the_lock_and_switches_the_installed_set(world):
    do_add(world.project, world.home, ["sql-explain"])
    result = do_sync(world.project, world.home)
    assert [(s.action, s.id) for s in result.plan.steps] == [
        ("install", "sql@1.1.0"), ("install", "sql-explain@1.0.0"), ("install", "tiny-qwen3@1.0.0")]
    lock = {p.name: p for p in do_lock(world.project, world.home, check=True).lock.packages}
    assert refs(world.home) == {f"{n}@{p.version}": p.sha256 for n, p in lock.items()}
    assert Store(world.home).fsck() == []
    doc = json.loads((world.project / ".experts" / "installed.json").read_text())
    assert doc["store"] == str(world.home.store_dir) and doc["fresh"] is True
    assert [(p["name"], p["digest"], p["added"]) for p in doc["packages"]] == [
        (n, p.sha256, True) for n, p in sorted(lock.items())]
    assert all((world.home.store_dir / "packages" / p["digest"]).as_posix() == p["path"] for p in doc["packages"])
    assert (world.project / ".experts" / ".gitignore").read_text().endswith("*\n")


def test_a_second_sync_is_answered_from_the_installed_set(world):
    do_add(world.project, world.home, ["sql"])
    do_sync(world.project, world.home)
    assert do_sync(world.project, world.home).plan is None
    with open(world.project / "experts.toml", "a") as f:
        f.write("# a comment changes the bytes, not the lock\n")
    result = do_sync(world.project, world.home, mode="locked")
    assert result.plan is not None and not result.plan.changes_anything
    assert do_sync(world.project, world.home, mode="locked").plan is None
    (world.home.store_dir / "refs" / "sql" / "1.1.0").unlink()  # removed behind our back: not current any more
    assert [s.action for s in do_sync(world.project, world.home).plan.steps] == ["install", "keep"]


def test_update_and_remove_never_take_a_package_from_another_project(world, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    do_init(other)
    do_add(world.project, world.home, ["sql@~1.0"])
    do_sync(world.project, world.home)
    do_add(other, world.home, ["sql@~1.0"])
    assert [s.action for s in do_sync(other, world.home).plan.steps] == ["reuse", "reuse"]

    do_add(world.project, world.home, ["sql@^1.1"])
    steps = {s.id: s for s in do_sync(world.project, world.home).plan.steps}
    assert (steps["sql@1.1.0"].action, steps["sql@1.1.0"].previous) == ("install", "1.0.0")
    assert (steps["sql@1.0.0"].action, steps["sql@1.0.0"].unref) == ("remove", False)  # `other` still uses it
    assert {"sql@1.0.0", "sql@1.1.0"} <= set(refs(world.home))

    do_remove(world.project, world.home, "sql")
    steps = {s.id: s for s in do_sync(world.project, world.home).plan.steps}
    assert (steps["sql@1.1.0"].action, steps["sql@1.1.0"].unref) == ("remove", True)
    assert set(refs(world.home)) == {"sql@1.0.0", "tiny-qwen3@1.0.0"}
    assert read_installed(world.project).packages == ()


def test_a_package_installed_by_hand_is_reused_and_left_alone(world):
    from expertpm._index import install_from_index

    install_from_index(world.home, "tool-call")
    do_add(world.project, world.home, ["tool-call"])
    steps = do_sync(world.project, world.home).plan.steps
    assert [(s.action, s.name) for s in steps] == [("install", "tiny-qwen3"), ("reuse", "tool-call")]
    do_remove(world.project, world.home, "tool-call")
    do_sync(world.project, world.home)
    assert set(refs(world.home)) == {"tool-call@1.0.0"}  # the base this project added goes; tool-call stays


def test_a_lock_that_disagrees_with_the_signed_index_is_refused(world):
    do_add(world.project, world.home, ["sql"])
    lock = world.project / "experts.lock"
    real = json.loads(json.dumps(do_lock(world.project, world.home, check=True).lock.get("sql").sha256))
    lock.write_text(lock.read_text().replace(real, "0" * 64))
    with pytest.raises(IntegrityError) as info:
        do_sync(world.project, world.home, mode="frozen")
    assert str(info.value) == (f"experts.lock: experts.lock pins sql@1.1.0 to sha256 {'0' * 16}…, but index "
                               f"'default' signed {real[:16]}… — the lock was edited or made against another index; "
                               "run `expertpm lock` and review the diff")
    assert refs(world.home) == {} and read_installed(world.project) is None


def test_a_tampered_artifact_never_enters_the_store_and_nothing_changes(world):
    do_add(world.project, world.home, ["sql-explain"])
    artifact = world.index.dir / "artifacts" / "sql-explain" / "sql-explain-1.0.0.expert"
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))
    with pytest.raises(PackageError) as info:
        do_sync(world.project, world.home)
    # the flipped byte sits in an uncompressed block: the file's digest, checked while it streams, catches it
    assert (info.value.message, info.value.where) == (
        "file 'adapter_model.safetensors' does not match its sha256 in the manifest", str(artifact))
    # the two good packages, staged in parallel with it, never entered the store either
    assert store_entries(world.home.root) == {"packages": [], "refs": [], "tmp": []}
    assert read_installed(world.project) is None
    assert Store(world.home).fsck() == []


def test_sync_without_fsync_installs_the_same_store(world, monkeypatch):
    monkeypatch.setenv("EXPERTPM_FSYNC", "0")
    do_add(world.project, world.home, ["sql-explain"])
    do_sync(world.project, world.home)
    lock = do_lock(world.project, world.home, check=True).lock.packages
    assert refs(world.home) == {f"{p.name}@{p.version}": p.sha256 for p in lock}
    assert store_entries(world.home.root)["tmp"] == [] and Store(world.home).fsck() == []


def test_the_store_holding_other_content_for_a_locked_version_is_a_clear_error(world):
    do_add(world.project, world.home, ["sql"])
    impostor = world.pack_expert("sql", "1.1.0")  # same name and version, other bytes
    Store(world.home).add(impostor)
    installed = Store(world.home).get("sql", "1.1.0").digest
    locked = do_lock(world.project, world.home, check=True).lock.get("sql").sha256
    with pytest.raises(StoreError) as info:
        do_sync(world.project, world.home)
    assert str(info.value) == (f"{world.home.store_dir}: the store holds different content than experts.lock for "
                               f"sql@1.1.0 (installed {installed[:12]}, locked {locked[:12]}) — if the lock is right, "
                               "remove the installed copy (expertpm store remove sql@1.1.0) and sync again")


def test_frozen_needs_a_lock_and_an_index_with_its_fingerprint(world, tmp_path):
    with pytest.raises(Exception) as info:
        do_sync(world.project, world.home, mode="frozen")
    assert str(info.value) == (f"{world.project}: --frozen installs exactly experts.lock, and there is none — run "
                               "`expertpm lock` (and commit the result), or sync without --frozen")
    do_add(world.project, world.home, ["sql"])
    from expertpm._home import Home

    stranger = Home(tmp_path / "stranger")
    with pytest.raises(ResolutionError) as info:
        do_sync(world.project, stranger, mode="frozen")
    assert str(info.value) == (f"sql@1.1.0 is locked from the index with fingerprint {world.index.fingerprint[:16]}…, "
                               "which this machine does not follow — add it (or a mirror of it): expertpm index add "
                               f"NAME URL_OR_DIR --fingerprint {world.index.fingerprint}")
