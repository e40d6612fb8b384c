"""The index format: paths, and every real file of a real index checked against its schema."""

import json

import pytest

from expertpm import IndexError_
from expertpm._canonical import parse_json
from expertpm._index import _gitdb as git
from expertpm._index._layout import bin_of, classify, package_path
from expertpm._schema import schema_problems


@pytest.mark.parametrize("name, path", [
    ("a", "1/a"), ("ab", "2/ab"), ("sql", "3/s/sql"), ("qwen3-0-6b", "qw/en/qwen3-0-6b"), ("a-b", "3/a/a-b"),
])
def test_package_paths_follow_cargo_layout(name, path):
    assert package_path(name) == path
    assert classify(path).kind == "package" and classify(path).arg == name


@pytest.mark.parametrize("path, message", [
    ("README.md", "unexpected file 'README.md'"),
    ("4/sql", "is not at its name-derived path '3/s/sql'"),
    ("keys/root/x.json", "unexpected file 'keys/root/x.json'"),
])
def test_unexpected_paths_are_refused(path, message):
    with pytest.raises(IndexError_, match=message):
        classify(path)


def test_bins_spread_paths_by_hash():
    bins = {bin_of(package_path(f"pkg-{i}")) for i in range(2000)}
    assert len(bins) == 256


def test_every_file_of_a_real_index_matches_its_schema(index_world):
    world = index_world
    world.publish("sql", "1.0.0", eval={"metric": "exact", "expert_score": 0.8, "base_score": 0.2, "n": 10})
    from expertpm._index import set_yanked

    set_yanked(world.dir, "sql", "1.0.0", world.publisher)
    host = world.host
    seen = set()
    for path, oid in git.walk_files(host.tree()):
        data = host.repo[oid].data
        kind = classify(path).kind
        seen.add(kind)
        if kind == "package":
            lines = data.decode().splitlines()
            assert len(lines) == 2
            for line in lines:
                assert schema_problems(json.loads(line), "index-entry") == []
            assert "yank" in json.loads(lines[1])
        elif kind in ("root", "publisher"):
            assert schema_problems(parse_json(data), "index-keys") == []
        elif kind == "snapshot":
            assert schema_problems(parse_json(data), "index-snapshot") == []
        elif kind == "bin":
            assert schema_problems(parse_json(data), "index-snapshot") != []  # a bin is not a snapshot
        elif kind == "config":
            assert schema_problems(parse_json(data), "index-config") == []
    assert seen == {"package", "root", "publisher", "snapshot", "bin", "config"}


def test_entry_line_mirrors_the_manifest(index_world):
    published = index_world.publish("sql", "1.2.0")
    raw = dict(published.entry.raw)
    assert set(raw) == {"name", "version", "kind", "sha256", "size", "manifest_sha256", "description", "license",
                        "base", "requires", "incompatible_with", "routing", "published", "publisher", "signature"}
    assert raw["routing"] == {"keywords": ["sql", "select"], "exclude_keywords": [], "examples": []}
    assert raw["publisher"] == index_world.publisher.key_id
    assert published.artifact.is_file() and published.artifact.stat().st_size == raw["size"]
