"""An expert taken from a Git tag (no signed package in it): `add --git` locks it next to index
packages, `sync` installs it, and another machine — which packs it with its own throw-away key —
installs the same files (same manifest digest) with `sync --frozen`."""

from __future__ import annotations

import json

import pygit2

from expertpm._actions import do_add, do_init, do_sync
from expertpm._home import Home
from expertpm._index._gitdb import commit, write_tree
from expertpm._index._gitpack import ObjectBatch
from expertpm._lockfile import read_lock
from expertpm._package import verify_package
from expertpm._store import Store
from expertpm_testing.packages import make_expert_source


def make_git_expert(world, tmp_path) -> str:
    """A bare repository whose tag v1.0.0 holds the source of `notes` 1.0.0 (bound to the base)."""
    bound = verify_package(world.pack_expert("notes", "1.0.0")).manifest.get("base")
    src = make_expert_source(tmp_path / "notes-src", name="notes", version="1.0.0", base=dict(bound),
                             description="takes notes", seed=7)
    path = tmp_path / "notes.git"
    repo = pygit2.init_repository(str(path), bare=True, initial_head="main")
    files = {f"expert/{p.relative_to(src).as_posix()}": p.read_bytes() for p in sorted(src.rglob("*")) if p.is_file()}
    batch = ObjectBatch(repo)
    oid = commit(batch, "refs/heads/main", write_tree(batch, None, files), [], "notes source")
    repo.create_reference_direct("refs/tags/v1.0.0", oid, True)
    return f"file://{path}"


def test_a_git_source_is_locked_and_installed_on_two_machines(followed_world, tmp_path):
    world = followed_world
    url = make_git_expert(world, tmp_path)
    do_init(world.project)
    do_add(world.project, world.home, ["sql"])
    result = do_add(world.project, world.home, ["notes"], git=url, tag="v1.0.0", subdir="expert")
    assert 'notes = { git = "' + url + '", tag = "v1.0.0", subdir = "expert" }' in \
        (world.project / "experts.toml").read_text()
    locked = read_lock(world.project).get("notes")
    assert (locked.source, locked.dependencies) == (f"git+{url}@v1.0.0#expert", ("tiny-qwen3",))
    assert result.locked.lock.get("sql").source.startswith("index+")
    steps = {s.name: s.action for s in do_sync(world.project, world.home).plan.steps}
    assert steps == {"notes": "reuse", "sql": "install", "tiny-qwen3": "install"}  # lock already fetched notes

    other = Home(tmp_path / "machine-b")
    world.follow(home=other)
    steps = {s.name: s.action for s in do_sync(world.project, other, mode="frozen").plan.steps}
    assert steps["notes"] == "install"
    mine, theirs = Store(world.home).get("notes", "1.0.0"), Store(other).get("notes", "1.0.0")
    assert mine.digest != theirs.digest  # each machine signs the unverified source with its own key
    assert (mine.path / "manifest.json").read_bytes() == (theirs.path / "manifest.json").read_bytes()
    assert json.loads((mine.path / "manifest.json").read_text())["files"].keys() >= {"adapter_model.safetensors"}
    assert do_sync(world.project, other, mode="frozen").plan is None
