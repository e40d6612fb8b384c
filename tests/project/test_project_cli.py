"""The project commands through the real CLI: the wiring, --json output, exit codes and one-line
errors (the logic is tested on the actions directly)."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_the_commands_end_to_end(followed_world):
    world = followed_world
    assert "created" in world.ok("init")
    assert world.ok("add", "sql-explain").splitlines() == [
        'added sql-explain = "^1.0.0"', "  + sql 1.1.0", "  + sql-explain 1.0.0", "  + tiny-qwen3 1.0.0"]
    assert json.loads(world.ok("sync", "--dry-run", "--json"))["steps"][0] == {
        "action": "install", "name": "sql", "version": "1.1.0", "kind": "expert",
        "sha256": json.loads(world.ok("list", "--json"))[0]["sha256"]}
    out = world.ok("sync", "--progress", "always")  # rich bars on stderr, removed when done
    assert out.splitlines()[:3] == ["+ sql 1.1.0", "+ sql-explain 1.0.0", "+ tiny-qwen3 1.0.0"]
    assert out.splitlines()[3].startswith("installed 3, kept 0, removed 0 in ")
    assert world.ok("sync", "--locked") == "nothing to do: 3 package(s) installed as locked\n"
    assert [(r["name"], r["direct"], r["installed"]) for r in json.loads(world.ok("list", "--json"))] == [
        ("sql", False, True), ("sql-explain", True, True), ("tiny-qwen3", False, True)]
    tree = json.loads(world.ok("tree", "--json"))
    assert [(n["name"], [c["name"] for c in n["dependencies"]]) for n in tree] == [
        ("sql-explain", ["sql", "tiny-qwen3"])]
    assert json.loads(world.ok("why", "sql", "--json")) == [{
        "requirement": 'sql-explain = "^1.0.0"',
        "chain": [{"name": "sql-explain", "version": "1.0.0"}, {"name": "sql", "version": "1.1.0"}]}]
    assert json.loads(world.ok("outdated", "--json")) == []
    assert world.ok("lock", "--check") == "experts.lock is up to date\n"

    with open(world.project / "experts.toml", "a") as f:
        f.write('tool-call = "^1"\n')
    assert world.fails("lock", "--check") == (f"{world.project / 'experts.lock'}: tool-call is in experts.toml but "
                                              "not in experts.lock — run `expertpm lock` and commit the result")
    assert world.fails("sync", "--locked").endswith("run `expertpm lock` and commit the result")
    assert world.fails("add", "tool-cal") == "no expert named 'tool-cal' in index 'default' — did you mean 'tool-call'?"
    assert world.fails("why", "nope") == "nope is not in experts.lock — see what is locked with `expertpm list`"
    assert world.ok("sync").splitlines()[0] == "locked + tool-call 1.0.0"
    assert world.fails("init") == (f"{world.project / 'experts.toml'}: experts.toml already exists — edit it, or use "
                                   "`expertpm add NAME` to add experts")
    assert world.ok("remove", "tool-call").splitlines() == ["removed tool-call from experts.toml",
                                                            "  - tool-call 1.0.0"]
