"""The index a registry serves, read one state at a time: a Git repository or a directory mirror.

`IndexCheckout.current()` returns the `IndexState` to serve now; a request takes one state at its
start and reads everything from it, so a response never mixes two states. Two kinds:

* `GitState` — one commit of `refs/heads/main` of the maintainer's index directory (a bare
  repository plus `artifacts/` and `host/`) or of any clone of it. Looking at the ref is cheap
  and done on every request (or every `check_interval` seconds).
* `DirState` — a directory written by `expertpm index export` (the bundled `index/` is one). A
  state is one `snapshot.json`: each file read is checked against the snapshot's bins, so a
  mirror being rewritten under us is noticed (`StaleState`: the request is retried on the new
  snapshot) instead of served. `snapshot.json` is stat-ed on every request.

A client reading one snapshot may pin it (`pinned(sha256)`): a Git index keeps answering from that
snapshot's commit for the next `PIN_DEPTH` commits, so a publish in the middle of a client's
reads does not make it start over.

Blob bytes and their sha256 are cached by content id across states. Only files of the index tree
and of `artifacts/` are ever served — never `host/`, never anything else on disk.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pygit2

from expertpm._errors import ExpertpmError, IndexError_
from expertpm._index._layout import (
    ARTIFACTS_DIR, BRANCH, CONFIG_FILE, DEFAULT_LIMITS, SNAPSHOT_FILE, bin_of, bin_path, classify, root_path,
)
from expertpm._index._metadata import (
    FileRef, IndexConfig, Root, Snapshot, decode_bin, load_config, load_root, read_snapshot,
)


PIN_DEPTH = 64  # how many commits back a client may pin its snapshot (`X-Expertpm-Snapshot`)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class Blob:
    data: bytes
    sha256: str

    @property
    def etag(self) -> str:
        return f'"{self.sha256}"'


class StaleState(Exception):
    """A directory mirror changed while a state was being read from it: take a new state."""


class BlobCache:
    """Content id -> Blob, least recently used out first once `max_bytes` are held."""

    def __init__(self, max_bytes: int = 64 << 20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[object, Blob] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key, load) -> Blob:
        with self._lock:
            blob = self._items.get(key)
            if blob is not None:
                self._items.move_to_end(key)
                return blob
        data = load()
        blob = Blob(data, hashlib.sha256(data).hexdigest())
        with self._lock:
            if key not in self._items:
                self._items[key] = blob
                self._bytes += len(data)
                while self._bytes > self.max_bytes and len(self._items) > 1:
                    _, old = self._items.popitem(last=False)
                    self._bytes -= len(old.data)
        return blob


class IndexState:
    """What every kind of state offers (see the subclasses)."""

    checkout: "IndexCheckout"
    commit: str  # identifies the state: a commit id, or `snapshot-<sha256>` for a mirror

    def file(self, path: str) -> Blob | None:
        raise NotImplementedError

    def files_under(self, folder: str) -> list[tuple[str, object]]:
        """(path, content key) of the files directly under `folder`."""
        raise NotImplementedError

    def package_files(self) -> list[tuple[str, str, object]]:
        """(name, path, content key) of every package file."""
        raise NotImplementedError

    def read(self, path: str, key) -> bytes:
        blob = self.file(path)
        if blob is None:
            raise IndexError_(f"the index has no {path}", where=str(self.checkout.path))
        return blob.data

    def need(self, path: str) -> bytes:
        return self.read(path, None)

    @cached_property
    def snapshot(self) -> Snapshot:
        return read_snapshot(self.need(SNAPSHOT_FILE), where=SNAPSHOT_FILE)

    @cached_property
    def snapshot_sha256(self) -> str | None:
        blob = self.file(SNAPSHOT_FILE)
        return None if blob is None else blob.sha256

    @cached_property
    def config(self) -> IndexConfig:
        return load_config(self.need(CONFIG_FILE), where=CONFIG_FILE)

    @cached_property
    def root(self) -> Root:
        version = self.config.root_version
        return load_root(self.need(root_path(version)), where=root_path(version))


def _index_path(path: str) -> bool:
    try:
        classify(path)
    except ExpertpmError:
        return False
    return True


class GitState(IndexState):
    """One commit of a Git index."""

    def __init__(self, checkout: "IndexCheckout", commit: pygit2.Commit) -> None:
        self.checkout = checkout
        self.repo = checkout.repo
        self.commit = str(commit.id)
        self._dirs: dict[str, pygit2.Tree] = {"": commit.tree}
        self._lock = threading.Lock()

    def _dir(self, folder: str) -> pygit2.Tree | None:
        tree = self._dirs.get(folder)
        if tree is not None:
            return tree
        parent, _, name = folder.rpartition("/")
        above = self._dir(parent)
        if above is None:
            return None
        try:
            entry = above[name]
        except KeyError:
            return None
        if entry.type_str != "tree":
            return None
        tree = self.repo[entry.id]
        with self._lock:
            self._dirs[folder] = tree
        return tree

    def _blob_id(self, path: str) -> pygit2.Oid | None:
        folder, _, name = path.rpartition("/")
        tree = self._dir(folder)
        if tree is None or not name:
            return None
        try:
            entry = tree[name]
        except KeyError:
            return None
        return entry.id if entry.filemode == pygit2.GIT_FILEMODE_BLOB else None

    def _blob(self, oid: pygit2.Oid) -> Blob:
        try:
            return self.checkout.blobs.get(oid, lambda: self.repo[oid].data)
        except KeyError:  # the objects were repacked under us: read them from a fresh handle
            self.repo = self.checkout.reopen()
            return self.checkout.blobs.get(oid, lambda: self.repo[oid].data)

    def file(self, path: str) -> Blob | None:
        if not _index_path(path):
            return None
        oid = self._blob_id(path)
        return None if oid is None else self._blob(oid)

    def read(self, path: str, key) -> bytes:
        return self._blob(key).data if key is not None else super().read(path, key)

    def files_under(self, folder: str) -> list[tuple[str, object]]:
        tree = self._dir(folder)
        if tree is None:
            return []
        return [(f"{folder}/{e.name}", e.id) for e in tree if e.filemode == pygit2.GIT_FILEMODE_BLOB]

    def package_files(self) -> list[tuple[str, str, object]]:
        found = []
        stack = [(e.name, e) for e in self._dirs[""] if e.type_str == "tree" and e.name not in ("keys", "snapshot")]
        while stack:
            prefix, entry = stack.pop()
            for child in self.repo[entry.id]:
                path = f"{prefix}/{child.name}"
                if child.type_str == "tree":
                    stack.append((path, child))
                elif child.filemode == pygit2.GIT_FILEMODE_BLOB:
                    found.append((child.name, path, child.id))
        return sorted(found)


class DirState(IndexState):
    """One `snapshot.json` of a directory mirror; every file read is checked against it."""

    def __init__(self, checkout: "IndexCheckout", snapshot_bytes: bytes) -> None:
        self.checkout = checkout
        self._snapshot_blob = Blob(snapshot_bytes, hashlib.sha256(snapshot_bytes).hexdigest())
        self.commit = f"snapshot-{self._snapshot_blob.sha256}"
        self._bins: dict[str, dict[str, FileRef]] = {}
        self._lock = threading.Lock()

    @cached_property
    def snapshot(self) -> Snapshot:
        return read_snapshot(self._snapshot_blob.data, where=SNAPSHOT_FILE)

    def _read_checked(self, path: str, ref: FileRef) -> Blob:
        def load() -> bytes:
            try:
                with open(self.checkout.path / path, "rb") as f:
                    data = f.read(ref.size + 1)
            except OSError:
                raise StaleState(path) from None
            if FileRef.of(data) != ref:
                raise StaleState(path)
            return data

        return self.checkout.blobs.get(("sha256", ref.sha256), load)

    def _listing(self, bin_id: str) -> dict[str, FileRef]:
        listing = self._bins.get(bin_id)
        if listing is None:
            ref = self.snapshot.bins.get(bin_id)
            if ref is None:
                return {}
            listing = decode_bin(self._read_checked(bin_path(bin_id), ref).data, bin_id, where=bin_path(bin_id))
            with self._lock:
                self._bins[bin_id] = listing
        return listing

    def file(self, path: str) -> Blob | None:
        if path == SNAPSHOT_FILE:
            return self._snapshot_blob
        if not _index_path(path):
            return None
        kind = classify(path)
        if kind.kind == "bin":
            ref = self.snapshot.bins.get(kind.arg)
        else:
            ref = self._listing(bin_of(path)).get(path)
        return None if ref is None else self._read_checked(path, ref)

    def _all_files(self) -> list[tuple[str, FileRef]]:
        return [(p, ref) for b in sorted(self.snapshot.bins) for p, ref in self._listing(b).items()]

    def files_under(self, folder: str) -> list[tuple[str, object]]:
        return sorted((p, ("sha256", ref.sha256)) for p, ref in self._all_files() if p.rpartition("/")[0] == folder)

    def package_files(self) -> list[tuple[str, str, object]]:
        found = []
        for path, ref in self._all_files():
            kind = classify(path)
            if kind.kind == "package":
                found.append((kind.arg, path, ("sha256", ref.sha256)))
        return sorted(found)


class IndexCheckout:
    """An index on disk (Git repository or directory mirror); `current()` is the state to serve."""

    def __init__(self, path: Path | str, *, check_interval: float = 0.0, blob_cache_bytes: int = 64 << 20) -> None:
        self.path = Path(path).expanduser().absolute()
        self.check_interval = check_interval
        self.blobs = BlobCache(blob_cache_bytes)
        self._state: IndexState | None = None
        self._checked = 0.0
        self._mark: object = None
        self._lock = threading.Lock()
        self._pinned: dict[str, IndexState] = {}
        self.repo: pygit2.Repository | None = None
        try:
            self.repo = self._open()
        except (pygit2.GitError, KeyError):
            if not (self.path / SNAPSHOT_FILE).is_file():
                raise IndexError_("not an index repository or mirror", where=str(self.path),
                                  hint="serve a directory made by `expertpm index init` (or a clone of it) or "
                                       "by `expertpm index export`") from None
        root = self.path
        if self.repo is not None:
            root = Path(self.repo.workdir) if self.repo.workdir else Path(self.repo.path)
            if self._head() is None:
                raise IndexError_(f"the repository has no {BRANCH}", where=str(self.path),
                                  hint="is this an expertpm index? create one with `expertpm index init`")
        self.artifacts_dir = root / ARTIFACTS_DIR
        self.kind = "git" if self.repo is not None else "directory"

    def _head(self) -> pygit2.Oid | None:
        for ref in (BRANCH, "refs/remotes/origin/main"):
            try:
                return self.repo.references[ref].target
            except KeyError:
                continue
            except pygit2.GitError:
                return None
        return None

    def current(self, *, fresh: bool = False) -> IndexState:
        now = time.monotonic()
        state = self._state
        if state is not None and not fresh and now - self._checked < self.check_interval:
            return state
        self._checked = now
        mark = self._head() if self.repo is not None else self._snapshot_mark()
        if state is not None and not fresh and mark == self._mark:
            return state
        with self._lock:
            if self._state is None or fresh or mark != self._mark:
                self._state = self._load(mark)
                self._mark = mark
            return self._state

    def pinned(self, snapshot_sha256: str) -> IndexState | None:
        """The state whose `snapshot.json` has this sha256: the current one, or for a Git index one
        of the last `PIN_DEPTH` commits (so a client that started reading a snapshot can finish
        reading it after a publish). None if unknown."""
        state = self.current()
        if state.snapshot_sha256 == snapshot_sha256:
            return state
        if self.repo is None or not _HEX64.match(snapshot_sha256):
            return None
        found = self._pinned.get(snapshot_sha256)
        if found is not None:
            return found
        commit = self.repo[pygit2.Oid(hex=state.commit)]
        for _ in range(PIN_DEPTH):
            if not commit.parents:
                return None
            commit = commit.parents[0]
            candidate = GitState(self, commit)
            if candidate.snapshot_sha256 == snapshot_sha256:
                with self._lock:
                    if len(self._pinned) >= PIN_DEPTH:
                        self._pinned.clear()
                    self._pinned[snapshot_sha256] = candidate
                return candidate
        return None

    def _snapshot_mark(self):
        try:
            st = os.stat(self.path / SNAPSHOT_FILE)
        except OSError as exc:
            raise IndexError_(f"the mirror has no {SNAPSHOT_FILE}", where=str(self.path)) from exc
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _load(self, mark) -> IndexState:
        if self.repo is None:
            with open(self.path / SNAPSHOT_FILE, "rb") as f:
                return DirState(self, f.read(DEFAULT_LIMITS.max_snapshot_bytes))
        if mark is None:
            raise IndexError_(f"the repository has no {BRANCH}", where=str(self.path))
        try:
            commit = self.repo[mark]
        except KeyError:  # a publish may have repacked the objects since this process opened them
            commit = self.reopen()[mark]
        return GitState(self, commit)

    def _open(self) -> pygit2.Repository:
        # exactly this directory: a mirror inside some other repository's work tree stays a mirror
        return pygit2.Repository(str(self.path), pygit2.enums.RepositoryOpenFlag.NO_SEARCH)

    def reopen(self) -> pygit2.Repository:
        self.repo = self._open()
        return self.repo
