"""Objects written as one pack per commit: readable by libgit2, valid for `git fsck`, and
consolidated once too many packs accumulate."""

import shutil
import struct
import subprocess
from pathlib import Path

import pygit2
import pytest

from expertpm._index._gitdb import commit, write_tree
from expertpm._index._gitpack import ObjectBatch, _pack_index, consolidate


def packs(repo):
    return sorted(p.name for p in (Path(repo.path) / "objects" / "pack").glob("*.pack"))


def test_a_batch_is_one_pack_that_libgit2_reads_back(tmp_path):
    repo = pygit2.init_repository(str(tmp_path / "r.git"), bare=True)
    batch = ObjectBatch(repo)
    tree = write_tree(batch, None, {"a/b/c": b"hello\n", "a/d": b"x" * 100_000, "top": b""})
    oid = commit(batch, "refs/heads/main", tree, [], "first")
    assert len(packs(repo)) == 1
    head = repo[oid]
    assert head.message == "first\n" and head.tree.id == tree
    assert head.tree["a/b/c"].data == b"hello\n" and len(head.tree["a/d"].data) == 100_000
    assert pygit2.hash(b"hello\n") == head.tree["a/b/c"].id

    batch = ObjectBatch(repo)
    second = commit(batch, "refs/heads/main", write_tree(batch, head.tree, {"a/b/c": None, "new": b"n"}), [oid], "2")
    names = [e.name for e in repo[second].tree]
    assert names == ["a", "new", "top"] and "b" not in repo[second].tree["a"]
    if shutil.which("git"):
        fsck = subprocess.run(["git", "--git-dir", repo.path, "fsck", "--strict"], capture_output=True, text=True)
        assert fsck.returncode == 0, fsck.stderr


def test_tree_order_matches_git_for_names_sharing_a_prefix(tmp_path):
    repo = pygit2.init_repository(str(tmp_path / "r.git"), bare=True)
    batch = ObjectBatch(repo)
    tree = write_tree(batch, None, {"a-b": b"1", "a/x": b"2", "a.c": b"3", "a0": b"4"})
    builder = repo.TreeBuilder()
    builder.insert("a-b", repo.create_blob(b"1"), pygit2.GIT_FILEMODE_BLOB)
    sub = repo.TreeBuilder()
    sub.insert("x", repo.create_blob(b"2"), pygit2.GIT_FILEMODE_BLOB)
    builder.insert("a", sub.write(), pygit2.GIT_FILEMODE_TREE)
    builder.insert("a.c", repo.create_blob(b"3"), pygit2.GIT_FILEMODE_BLOB)
    builder.insert("a0", repo.create_blob(b"4"), pygit2.GIT_FILEMODE_BLOB)
    assert tree == builder.write()


def test_consolidate_folds_small_packs_once_too_many_accumulate(tmp_path):
    repo = pygit2.init_repository(str(tmp_path / "r.git"), bare=True)
    batch = ObjectBatch(repo)
    big = commit(batch, "refs/heads/main", write_tree(batch, None, {"big": bytes(range(256)) * 4000}), [], "big")
    parents, oids = [big], []
    for i in range(6):
        batch = ObjectBatch(repo)
        oid = commit(batch, "refs/heads/main", write_tree(batch, None, {f"f{i}": f"{i}".encode()}), parents, str(i))
        parents, oids = [oid], oids + [oid]
    assert len(packs(repo)) == 7
    assert consolidate(repo, max_packs=8) is False
    assert consolidate(repo, max_packs=4) is True
    assert len(packs(repo)) == 2  # the big pack stays, the six small ones are folded into one
    repo = pygit2.Repository(repo.path)
    assert [repo[o].tree[f"f{i}"].data for i, o in enumerate(oids)] == [f"{i}".encode() for i in range(6)]
    assert len(repo[big].tree["big"].data) == 1_024_000


def test_offsets_past_2_gib_use_the_large_offset_table():
    rows = [(b"\x01" * 20, 7, 12), (b"\x02" * 20, 9, (1 << 31) + 5)]
    index = _pack_index(rows, b"\x00" * 20)
    fanout_end = 8 + 256 * 4
    small = index[fanout_end + 2 * 20 + 2 * 4:][:8]
    assert struct.unpack(">II", small) == (12, 1 << 31)
    assert struct.unpack(">Q", index[fanout_end + 2 * 20 + 4 * 4:][:8]) == ((1 << 31) + 5,)
    assert len(index) == fanout_end + 2 * 20 + 2 * 4 + 2 * 4 + 8 + 20 + 20


@pytest.fixture(autouse=True)
def _no_global_git_config(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
