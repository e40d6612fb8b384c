"""The project actions against a real signed index: init, add, remove, lock (--check, --upgrade),
list, tree, why, outdated; every refused input leaves experts.toml and experts.lock as they were."""

from __future__ import annotations

import shutil

import pytest

from expertpm._actions import (
    LockChange, do_add, do_init, do_list, do_lock, do_outdated, do_remove, do_sync, do_tree, do_why, render_tree,
)
from expertpm._errors import FormatError, NetworkError, ResolutionError, UserError
from expertpm._lockfile import LockOutOfDate, read_lock


@pytest.fixture
def world(followed_world):
    do_init(followed_world.project)
    return followed_world


def files(world) -> tuple:
    lock = world.project / "experts.lock"
    return (world.project / "experts.toml").read_bytes(), lock.read_bytes() if lock.exists() else None


def test_init_writes_a_project_file_once(world, tmp_path):
    assert (world.project / "experts.toml").read_text() == '[project]\nname = "project"\n\n[experts]\n'
    with pytest.raises(UserError) as info:
        do_init(world.project)
    assert str(info.value) == (f"{world.project / 'experts.toml'}: experts.toml already exists — edit it, or use "
                               "`expertpm add NAME` to add experts")
    other = tmp_path / "other"
    other.mkdir()
    do_init(other, name="my-app", base="tiny-qwen3@^1", indexes=("default",))
    assert (other / "experts.toml").read_text() == ('[project]\nname = "my-app"\n\n[base]\nname = "tiny-qwen3"\n'
                                                    'version = "^1"\n\n[experts]\n\n[tool.expertpm]\n'
                                                    'indexes = ["default"]\n')


def test_add_pins_a_caret_range_and_locks(world):
    result = do_add(world.project, world.home, ["sql-explain"])
    assert result.locked.changes == (LockChange("sql", None, "1.1.0"), LockChange("sql-explain", None, "1.0.0"),
                                     LockChange("tiny-qwen3", None, "1.0.0"))
    assert 'sql-explain = "^1.0.0"\n' in (world.project / "experts.toml").read_text()
    lock = read_lock(world.project)
    assert lock.get("sql-explain").dependencies == ("sql", "tiny-qwen3")
    assert do_lock(world.project, world.home, check=True).written is False
    assert do_lock(world.project, world.home).written is False  # same bytes: the file is left alone


def test_adding_an_unknown_expert_suggests_close_names_and_changes_nothing(world):
    do_add(world.project, world.home, ["sql"])
    before = files(world)
    with pytest.raises(ResolutionError) as info:
        do_add(world.project, world.home, ["sqll"])
    assert str(info.value) == "no expert named 'sqll' in index 'default' — did you mean 'sql'?"
    assert files(world) == before


def test_unsatisfiable_requirements_name_the_chain_and_change_nothing(world):
    do_add(world.project, world.home, ["sql-explain"])
    before = files(world)
    with pytest.raises(ResolutionError) as info:
        do_add(world.project, world.home, ["cypher"])
    assert info.value.message == (
        "Because sql-explain requires sql ^1.1 and cypher is incompatible with sql, sql-explain is incompatible "
        "with cypher.\nAnd because you require sql-explain ^1.0.0 and cypher, your requirements are unsatisfiable.")
    assert files(world) == before


def test_lock_check_and_a_stale_lock(world):
    do_add(world.project, world.home, ["sql"])
    with open(world.project / "experts.toml", "a") as f:
        f.write('tool-call = "^1"\n')
    with pytest.raises(LockOutOfDate) as info:
        do_lock(world.project, world.home, check=True)
    assert str(info.value) == (f"{world.project / 'experts.lock'}: tool-call is in experts.toml but not in "
                               "experts.lock — run `expertpm lock` and commit the result")
    with pytest.raises(LockOutOfDate):
        do_sync(world.project, world.home, mode="locked")
    assert not (world.home.store_dir / "refs").exists()


def test_the_lock_is_preferred_until_an_upgrade(world):
    do_add(world.project, world.home, ["sql@^1"])
    world.publish_expert("sql", "1.2.0")
    assert do_lock(world.project, world.home).changes == ()  # 1.1.0 stays: the lock is a preference
    assert do_lock(world.project, world.home, upgrade_packages={"sql"}).changes == (LockChange("sql", "1.1.0",
                                                                                               "1.2.0"),)
    with pytest.raises(UserError) as info:
        do_lock(world.project, world.home, upgrade_packages={"sq"})
    assert str(info.value) == ("--upgrade-package sq: sq is neither in experts.toml nor in experts.lock — "
                               "did you mean 'sql'?")


def test_remove_relocks_without_the_network(world):
    do_add(world.project, world.home, ["sql-explain", "tool-call"])
    shutil.rmtree(world.index.dir)  # the index is gone: removing still works from its last verified state
    result = do_remove(world.project, world.home, "sql-explain")
    assert result.locked.changes == (LockChange("sql", "1.1.0", None), LockChange("sql-explain", "1.0.0", None))
    assert sorted(p.name for p in read_lock(world.project).packages) == ["tiny-qwen3", "tool-call"]
    with pytest.raises(UserError) as info:
        do_remove(world.project, world.home, "tool")
    assert str(info.value) == (f"tool is not in [experts] of {world.project / 'experts.toml'} — "
                               "did you mean 'tool-call'?")


def test_an_unreachable_index_changes_nothing(world):
    do_add(world.project, world.home, ["sql"])
    before = files(world)
    world.index.dir.rename(world.tmp / "moved")
    with open(world.project / "experts.toml", "a") as f:
        f.write('tool-call = "^1"\n')
    with pytest.raises(NetworkError) as info:
        do_lock(world.project, world.home)
    assert str(info.value) == (f"{world.index.dir}: index 'default' is unreachable: index location does not exist "
                               "— nothing was changed; check the network, or pass --offline to use the last "
                               "verified state of the index")
    assert files(world)[1] == before[1]
    assert do_lock(world.project, world.home, offline=True).changes == (LockChange("tool-call", None, "1.0.0"),)


def test_malformed_project_and_lock_name_file_line_and_field(world):
    do_add(world.project, world.home, ["sql"])
    lock_text = (world.project / "experts.lock").read_text()
    (world.project / "experts.toml").write_text('[project]\nname = "p"\n\n[experts]\nsql = "^^1"\n')
    with pytest.raises(FormatError) as info:
        do_lock(world.project, world.home)
    assert str(info.value) == (f"{world.project / 'experts.toml'}:5: experts.sql: invalid version range '^^1': "
                               "cannot read '^1' — use forms like '^1.2', '~1.2.3', '>=1, <2', '*' or '1.2.3'")
    (world.project / "experts.toml").write_text('[project]\nname = "p"\n\n[experts]\nsql = "^1"\n')
    (world.project / "experts.lock").write_text(lock_text.replace('version = "1.1.0"', 'version = "one"'))
    with pytest.raises(FormatError) as info:
        do_sync(world.project, world.home, mode="frozen")
    line = lock_text.splitlines().index('version = "1.1.0"') + 1
    assert str(info.value) == (f"{world.project / 'experts.lock'}:{line}: package[0].version: 'one' has an invalid "
                               "format — the lock was edited by hand or damaged: run `expertpm lock` to rewrite it")


def test_list_tree_why(world):
    do_add(world.project, world.home, ["sql-explain", "tool-call"])
    rows = {r.name: r for r in do_list(world.project, world.home)}
    assert [(r.version, r.direct, r.installed, r.source) for r in rows.values()] == [
        ("1.1.0", False, False, "index default"), ("1.0.0", True, False, "index default"),
        ("1.0.0", False, False, "index default"), ("1.0.0", True, False, "index default")]
    do_sync(world.project, world.home)
    assert all(r.installed for r in do_list(world.project, world.home))
    assert render_tree(do_tree(world.project, world.home)) == [
        "sql-explain 1.0.0", "├── sql 1.1.0", "│   └── tiny-qwen3 1.0.0 (base)", "└── tiny-qwen3 1.0.0 (base)",
        "tool-call 1.0.0", "└── tiny-qwen3 1.0.0 (base)"]
    assert [p.describe() for p in do_why(world.project, world.home, "sql")] == [
        'experts.toml (sql-explain = "^1.0.0") → sql-explain 1.0.0 → sql 1.1.0']
    assert len(do_why(world.project, world.home, "tiny-qwen3")) == 3
    with pytest.raises(UserError) as info:
        do_why(world.project, world.home, "cyphr")
    assert str(info.value) == "cyphr is not in experts.lock — see what is locked with `expertpm list`"


def test_outdated_shows_wanted_and_latest(world):
    do_add(world.project, world.home, ["sql@~1.0", "tool-call"])
    world.publish_expert("sql", "1.2.0")
    world.publish_expert("tool-call", "2.0.0", base_range="^1")
    rows = {r.name: r.to_dict() for r in do_outdated(world.project, world.home)}
    assert rows == {
        "sql": {"name": "sql", "locked": "1.0.0", "wanted": "1.0.0", "latest": "1.2.0", "kind": "expert",
                "direct": True},
        "tool-call": {"name": "tool-call", "locked": "1.0.0", "wanted": "1.0.0", "latest": "2.0.0",
                      "kind": "expert", "direct": True}}
