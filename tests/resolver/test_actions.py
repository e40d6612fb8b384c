"""Project actions against a real signed index: init, add, remove, lock (--check, --upgrade), tree, why."""

from __future__ import annotations

import pytest

from expertpm._actions.project import (
    Change,
    dependency_tree,
    do_add,
    do_init,
    do_lock,
    do_outdated,
    do_remove,
    locked_project,
    parse_requirement,
    why,
)
from expertpm._errors import ResolutionError, UserError
from expertpm._lockfile import LockOutOfDate, read_lock
from expertpm._project import ExpertSpec, add_expert


@pytest.fixture
def world(lock_world):
    lock_world.publish("sql", "1.0.0")
    lock_world.publish("sql", "1.1.0", seed=1)
    lock_world.publish("sql-explain", "1.0.0", seed=2, requires={"sql": "^1.1"})
    lock_world.follow()
    do_init(lock_world.project, base="tiny-qwen3@^0.1")
    return lock_world


def test_add_writes_a_caret_range_and_a_lock(world):
    outcome = do_add(world.project, world.home, ["sql-explain"])
    assert outcome.changes == (Change("sql", None, "1.1.0"), Change("sql-explain", None, "1.0.0"),
                               Change("tiny-qwen3", None, "0.1.0"))
    text = (world.project / "experts.toml").read_text()
    assert 'sql-explain = "^1.0.0"\n' in text
    lock = read_lock(world.project)
    assert [(p.name, p.version) for p in lock.packages] == [("sql", "1.1.0"), ("sql-explain", "1.0.0"),
                                                           ("tiny-qwen3", "0.1.0")]
    assert lock.get("sql-explain").dependencies == ("sql", "tiny-qwen3")
    assert do_lock(world.project, world.home, check=True).written is False
    assert do_lock(world.project, world.home).written is False  # same bytes: the file is left alone


def test_a_failed_add_changes_nothing(world):
    do_add(world.project, world.home, ["sql@^1.0"])
    before = ((world.project / "experts.toml").read_bytes(), (world.project / "experts.lock").read_bytes())
    with pytest.raises(ResolutionError, match=r"there is no version of sql \^2"):
        do_add(world.project, world.home, ["sql@^2"])
    assert ((world.project / "experts.toml").read_bytes(), (world.project / "experts.lock").read_bytes()) == before


def test_lock_check_detects_an_edited_project(world):
    do_add(world.project, world.home, ["sql"])
    add_expert(world.project / "experts.toml", ExpertSpec("sql-explain", "^1"))
    with pytest.raises(LockOutOfDate, match="sql-explain is in experts.toml but not in experts.lock"):
        do_lock(world.project, world.home, check=True)


def test_lock_keeps_versions_until_upgraded(world):
    do_add(world.project, world.home, ["sql@~1.0"])
    add_expert(world.project / "experts.toml", ExpertSpec("sql", "^1"))
    assert do_lock(world.project, world.home).changes == ()  # still 1.0.0: the lock is preferred
    assert do_lock(world.project, world.home, upgrade={"sql"}).changes == (Change("sql", "1.0.0", "1.1.0"),)
    with pytest.raises(UserError, match="--upgrade-package nope: nope is neither in experts.toml nor in experts.lock"):
        do_lock(world.project, world.home, upgrade={"nope"})


def test_remove_drops_what_only_it_needed(world):
    do_add(world.project, world.home, ["sql-explain"])
    outcome = do_remove(world.project, world.home, ["sql-explain"])
    assert outcome.changes == (Change("sql", "1.1.0", None), Change("sql-explain", "1.0.0", None))
    assert [p.name for p in read_lock(world.project).packages] == ["tiny-qwen3"]


def test_tree_why_and_outdated(world):
    do_add(world.project, world.home, ["sql-explain", "sql"])
    project, lock = locked_project(world.project)
    assert dependency_tree(project, lock)[:3] == [(0, "sql-explain", "1.0.0"), (1, "sql", "1.1.0"),
                                                  (2, "tiny-qwen3", "0.1.0")]
    assert why(project, lock, "tiny-qwen3")[0] == ["tiny-qwen3"]
    assert ["sql-explain", "sql"] in why(project, lock, "sql")


def test_outdated_names_newer_versions(world):
    do_add(world.project, world.home, ["sql@~1.1.0"])
    world.publish("sql", "1.1.5", seed=3)
    world.publish("sql", "2.0.0", seed=4)
    rows = do_outdated(world.project, world.home)
    assert [(r.name, r.locked, r.compatible, r.latest) for r in rows] == [("sql", "1.1.0", "1.1.5", "2.0.0")]


def test_conflicting_additions_are_explained(world):
    with pytest.raises(ResolutionError) as info:
        do_add(world.project, world.home, ["sql-explain", "sql@~1.0"])
    assert info.value.message == (
        "Because you require sql-explain which requires sql ^1.1, sql ^1.1 is required.\n"
        "And because you require sql ~1.0, your requirements are unsatisfiable.")


def test_requirement_specs_are_normalised_and_checked():
    assert parse_requirement("SQL_Expert@>=1, <2") == ExpertSpec("sql-expert", ">=1, <2")
    with pytest.raises(UserError, match="invalid version range"):
        parse_requirement("sql@^^1")


def test_init_refuses_to_overwrite(world):
    with pytest.raises(UserError, match="already exists"):
        do_init(world.project)
