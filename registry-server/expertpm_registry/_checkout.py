"""The index a registry serves: a Git repository read one commit at a time.

`IndexCheckout.current()` looks at `refs/heads/main` (a cheap ref read, at most every
`check_interval` seconds) and returns the `IndexState` of that commit. A state is immutable:
every request takes one state at its start and reads everything from that commit's tree, so a
response never mixes two commits. Blob bytes and their sha256 are cached by blob id across
states (a blob id names its content), and each state caches the subtrees it has walked.

The checkout is the maintainer's index directory (a bare repository plus `artifacts/` and
`host/`) or any clone of it; only files of the Git tree and of `artifacts/` are ever served —
never `host/`, never anything else on disk.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pygit2

from expertpm._errors import ExpertpmError, IndexError_
from expertpm._index._layout import (
    ARTIFACTS_DIR, BRANCH, CONFIG_FILE, SNAPSHOT_FILE, classify, root_path,
)
from expertpm._index._metadata import IndexConfig, Root, Snapshot, load_config, load_root, read_snapshot

MAX_FILE_BYTES = 16 << 20  # the client's own limit for the largest index file (a bin or package file)


@dataclass(frozen=True, slots=True)
class Blob:
    data: bytes
    sha256: str

    @property
    def etag(self) -> str:
        return f'"{self.sha256}"'


class BlobCache:
    """Blob id -> Blob, least recently used out first once `max_bytes` are held."""

    def __init__(self, max_bytes: int = 64 << 20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[pygit2.Oid, Blob] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, repo: pygit2.Repository, oid: pygit2.Oid) -> Blob:
        with self._lock:
            blob = self._items.get(oid)
            if blob is not None:
                self._items.move_to_end(oid)
                return blob
        data = repo[oid].data
        blob = Blob(data, hashlib.sha256(data).hexdigest())
        with self._lock:
            if oid not in self._items:
                self._items[oid] = blob
                self._bytes += len(data)
                while self._bytes > self.max_bytes and len(self._items) > 1:
                    _, old = self._items.popitem(last=False)
                    self._bytes -= len(old.data)
        return blob


class IndexState:
    """One commit of the index: the only thing a response reads from."""

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

    def blob_id(self, path: str) -> pygit2.Oid | None:
        folder, _, name = path.rpartition("/")
        tree = self._dir(folder)
        if tree is None or not name:
            return None
        try:
            entry = tree[name]
        except KeyError:
            return None
        return entry.id if entry.filemode == pygit2.GIT_FILEMODE_BLOB else None

    def file(self, path: str) -> Blob | None:
        """An index file of this commit (None if absent or not an index path)."""
        try:
            classify(path)
        except ExpertpmError:
            return None
        oid = self.blob_id(path)
        if oid is None:
            return None
        try:
            return self.checkout.blobs.get(self.repo, oid)
        except KeyError:  # the objects were repacked under us: read them from a fresh handle
            self.repo = self.checkout.reopen()
            return self.checkout.blobs.get(self.repo, oid)

    def need(self, path: str) -> bytes:
        blob = self.file(path)
        if blob is None:
            raise IndexError_(f"the index has no {path}", where=str(self.checkout.path))
        return blob.data

    @cached_property
    def snapshot(self) -> Snapshot:
        return read_snapshot(self.need(SNAPSHOT_FILE), where=SNAPSHOT_FILE)

    @cached_property
    def config(self) -> IndexConfig:
        return load_config(self.need(CONFIG_FILE), where=CONFIG_FILE)

    @cached_property
    def root(self) -> Root:
        version = self.config.root_version
        return load_root(self.need(root_path(version)), where=root_path(version))

    def files_under(self, folder: str) -> list[tuple[str, pygit2.Oid]]:
        tree = self._dir(folder)
        if tree is None:
            return []
        return [(f"{folder}/{e.name}", e.id) for e in tree if e.filemode == pygit2.GIT_FILEMODE_BLOB]

    def package_files(self) -> list[tuple[str, str, pygit2.Oid]]:
        """(name, path, blob id) of every package file, walking only the package folders."""
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


class IndexCheckout:
    """An index repository on disk; `current()` is the state to serve now."""

    def __init__(self, path: Path | str, *, check_interval: float = 0.0, blob_cache_bytes: int = 64 << 20) -> None:
        self.path = Path(path).expanduser().absolute()
        try:
            self.repo = pygit2.Repository(str(self.path))
        except (pygit2.GitError, KeyError) as exc:
            raise IndexError_("not an index repository", where=str(self.path),
                              hint="serve a directory made by `expertpm index init` (or a clone of one)") from exc
        workdir = self.repo.workdir
        root = Path(workdir) if workdir else Path(self.repo.path)
        self.artifacts_dir = root / ARTIFACTS_DIR
        self.check_interval = check_interval
        self.blobs = BlobCache(blob_cache_bytes)
        self._state: IndexState | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        if self._head() is None:
            raise IndexError_(f"the repository has no {BRANCH}", where=str(self.path),
                              hint="is this an expertpm index? create one with `expertpm index init`")

    def _head(self) -> pygit2.Oid | None:
        for ref in (BRANCH, "refs/remotes/origin/main"):
            try:
                return self.repo.references[ref].target
            except KeyError:
                continue
            except pygit2.GitError:
                return None
        return None

    def current(self) -> IndexState:
        now = time.monotonic()
        state = self._state
        if state is not None and now - self._checked < self.check_interval:
            return state
        oid = self._head()
        self._checked = now
        if state is not None and (oid is None or str(oid) == state.commit):
            return state
        if oid is None:
            raise IndexError_(f"the repository has no {BRANCH}", where=str(self.path))
        with self._lock:
            if self._state is None or self._state.commit != str(oid):
                self._state = IndexState(self, self._commit(oid))
            return self._state

    def reopen(self) -> pygit2.Repository:
        self.repo = pygit2.Repository(str(self.path))
        return self.repo

    def _commit(self, oid: pygit2.Oid) -> pygit2.Commit:
        try:
            return self.repo[oid]
        except KeyError:  # a publish may have repacked the objects since this process opened them
            return self.reopen()[oid]
