"""The maintainer's side of an index: a bare Git repository plus `artifacts/` and `host/`.

`IndexHost.commit_changes` is the one way the index changes: it applies file changes to the tree
of `main`, rewrites the snapshot bins those files fall in, signs a new snapshot (version + 1,
fresh expiry) with the online timestamp key kept in `host/`, and commits — all in memory with
pygit2, under a lock so two publishers cannot interleave.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

import filelock

from .._errors import IndexError_, KeyringError
from .._home import Home
from .._keys import Keyring, SigningKey
from . import _gitdb as git
from ._gitpack import ObjectBatch, consolidate
from ._layout import (
    ARTIFACTS_DIR, BINS_DIR, BRANCH, CONFIG_FILE, DEFAULT_EXPIRES_DAYS, DEFAULT_LIMITS, HOST_DIR,
    PUBLISHERS_DIR, SNAPSHOT_FILE, bin_of, bin_path, expiry_after, publisher_path, root_path,
)
from ._metadata import (
    Delegation, FileRef, IndexConfig, Root, Snapshot, decode_bin, encode_bin, load_config, load_delegation,
    load_root, read_snapshot, seal_snapshot, snapshot_signed,
)

if TYPE_CHECKING:  # pygit2 costs ~60 ms to import: loaded where a repository is opened
    import pygit2

HOST_SETTINGS = "host.json"
LOCK_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class CommitResult:
    commit: str
    snapshot_version: int


def local_index_path(location: str | os.PathLike) -> Path:
    """The directory of an index given as DIR or file:// URL; other URLs cannot be written here."""
    text = str(location)
    if "://" in text:
        parsed = urlparse(text)
        if parsed.scheme != "file":
            raise IndexError_(f"cannot write to the remote index {text}", where=text,
                              hint="publish on the index host (a local DIR or file:// URL); remote clients "
                                   "receive the result with `expertpm index update`")
        return Path(unquote(parsed.path))
    return Path(text).expanduser().absolute()


class IndexHost:
    """An index directory a maintainer (or publisher with write access) can change."""

    def __init__(self, location: str | os.PathLike) -> None:
        self.path = local_index_path(location)
        self.host_dir = self.path / HOST_DIR
        if not (self.host_dir / HOST_SETTINGS).is_file():
            raise IndexError_("not an expertpm index directory (no host/host.json)", where=str(self.path),
                              hint="create one with: expertpm index init DIR --root-key NAME")
        self.repo = git.open_repo(self.path)
        self.settings = json.loads((self.host_dir / HOST_SETTINGS).read_text())
        self._memo: dict[tuple[str, str], object] = {}

    def _cached(self, what: str, compute):
        """`compute()` once per state of `main` (the index changes only through new commits)."""
        key = (str(git.ref_target(self.repo, BRANCH)), what)
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    @property
    def artifacts_dir(self) -> Path:
        return self.path / ARTIFACTS_DIR

    def lock(self) -> filelock.FileLock:
        return filelock.FileLock(str(self.host_dir / "lock"), timeout=LOCK_TIMEOUT_S)

    # -- reading the current state ------------------------------------------------------------

    def head(self) -> pygit2.Commit | None:
        oid = git.ref_target(self.repo, BRANCH)
        return None if oid is None else self.repo[oid]

    def tree(self) -> pygit2.Tree | None:
        head = self.head()
        return None if head is None else head.tree

    def read(self, path: str, max_size: int = DEFAULT_LIMITS.max_package_file_bytes) -> bytes | None:
        tree = self.tree()
        return None if tree is None else git.read_path(self.repo, tree, path, max_size=max_size)

    def config(self) -> IndexConfig:
        return self._cached("config", lambda: load_config(self._need(CONFIG_FILE), where=CONFIG_FILE))

    def root(self) -> Root:
        def load() -> Root:
            version = self.config().root_version
            return load_root(self._need(root_path(version)), where=root_path(version))

        return self._cached("root", load)

    def snapshot(self) -> Snapshot:
        return self._cached("snapshot", lambda: read_snapshot(self._need(SNAPSHOT_FILE), where=SNAPSHOT_FILE))

    def delegation(self, key_id: str) -> Delegation | None:
        """One publisher's delegation, checked against the current root (None if there is none)."""
        def load() -> Delegation | None:
            data = self.read(publisher_path(key_id), DEFAULT_LIMITS.max_metadata_bytes)
            if data is None:
                return None
            return load_delegation(data, self.root(), self.config().fingerprint, where=publisher_path(key_id))

        return self._cached(f"delegation:{key_id}", load)

    def delegations(self) -> dict[str, Delegation]:
        def load() -> dict[str, Delegation]:
            tree, root, fp = self.tree(), self.root(), self.config().fingerprint
            found = {}
            for path, oid in _files_under(tree, PUBLISHERS_DIR):
                data = git.read_blob(self.repo, oid, max_size=DEFAULT_LIMITS.max_metadata_bytes, where=path)
                delegation = load_delegation(data, root, fp, where=path)
                found[delegation.key_id] = delegation
            return found

        return dict(self._cached("delegations", load))

    def package_files(self):
        """(name, path, blob id) of every package file in the tree."""
        from ._layout import classify

        for path, oid in git.walk_files(self.tree()):
            kind = classify(path)
            if kind.kind == "package":
                yield kind.arg, path, oid

    def _need(self, path: str) -> bytes:
        data = self.read(path, DEFAULT_LIMITS.max_bin_bytes)
        if data is None:
            raise IndexError_(f"the index has no {path}", where=str(self.path))
        return data

    # -- keys ---------------------------------------------------------------------------------

    def timestamp_key(self) -> SigningKey:
        try:
            return self._cached(f"key:{self.settings['timestamp_key']}",
                                lambda: Keyring(Home(self.host_dir)).load(self.settings["timestamp_key"]))
        except KeyringError as exc:
            raise IndexError_(f"cannot load the index's online timestamp key: {exc.message}",
                              where=str(self.host_dir), hint="run this on the index host") from exc

    def new_timestamp_key(self, label: str) -> SigningKey:
        ring = Keyring(Home(self.host_dir))
        ring.generate(label)
        self.settings["timestamp_key"] = label
        return ring.load(label)

    def save_settings(self) -> None:
        tmp = self.host_dir / (HOST_SETTINGS + ".tmp")
        tmp.write_text(json.dumps(self.settings, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.host_dir / HOST_SETTINGS)

    # -- the one way the index changes --------------------------------------------------------

    def commit_changes(self, changes: dict[str, bytes], message: str, *, root_version: int | None = None,
                       expires: datetime | None = None, timestamp_key: SigningKey | None = None) -> CommitResult:
        """Commit `changes` on `main` with a new signed snapshot. Call with the lock held."""
        head = self.head()
        tree = head.tree if head is not None else None
        old = self.snapshot() if tree is not None else None
        if root_version is None:
            root_version = self.config().root_version
        fingerprint = self.settings["fingerprint"]
        bins = dict(old.bins) if old else {}
        touched: dict[str, dict[str, FileRef]] = {}
        for path, data in changes.items():
            bin_id = bin_of(path)
            if bin_id not in touched:
                raw = git.read_path(self.repo, tree, bin_path(bin_id), max_size=DEFAULT_LIMITS.max_bin_bytes) \
                    if tree is not None else None
                touched[bin_id] = decode_bin(raw, bin_id, where=bin_path(bin_id)) if raw else {}
            touched[bin_id][path] = FileRef.of(data)
        all_changes: dict[str, bytes | None] = dict(changes)
        for bin_id, listing in touched.items():
            encoded = encode_bin(listing)
            all_changes[bin_path(bin_id)] = encoded
            bins[bin_id] = FileRef.of(encoded)
        if expires is None:
            expires = expiry_after(self.settings.get("expires_days", DEFAULT_EXPIRES_DAYS))
        signed = snapshot_signed(fingerprint=fingerprint, version=(old.version + 1) if old else 1,
                                 root_version=root_version, expires=expires, bins=bins)
        all_changes[SNAPSHOT_FILE] = seal_snapshot(signed, timestamp_key or self.timestamp_key())
        batch = ObjectBatch(self.repo)
        new_tree = git.write_tree(batch, tree, all_changes)
        oid = git.commit(batch, BRANCH, new_tree, [head.id] if head is not None else [], message)
        consolidate(self.repo)
        return CommitResult(str(oid), signed["version"])


def _files_under(tree: pygit2.Tree | None, folder: str):
    if tree is None:
        return
    try:
        sub = tree[folder]
    except KeyError:
        return
    yield from git.walk_files(sub, folder + "/")


def load_signers(home: Home, wanted_ids, names=(), passphrase: str | None = None) -> list[SigningKey]:
    """Private keys for `wanted_ids`: the named keyring keys, else every keyring key with such an id."""
    ring = Keyring(home)
    if names:
        return [ring.load(n, passphrase) for n in names]
    keys = []
    for public in ring.list():
        if public.key_id in wanted_ids:
            if public.encrypted and passphrase is None:
                continue
            keys.append(ring.load(public.name, passphrase))
    return keys


def export_index(host: IndexHost, out: Path, *, with_artifacts: bool = True) -> int:
    """Write the current tree (and artifacts) as plain files: a directory mirror. Returns file count."""
    import shutil

    out.mkdir(parents=True, exist_ok=True)
    tree = host.tree()
    count = 0
    snapshot_bytes = None
    for path, oid in git.walk_files(tree):
        data = host.repo[oid].data
        if path == SNAPSHOT_FILE:
            snapshot_bytes = data  # written last, so a reader never sees new bins under an old snapshot
            continue
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        count += 1
    if with_artifacts and host.artifacts_dir.is_dir():
        shutil.copytree(host.artifacts_dir, out / ARTIFACTS_DIR, dirs_exist_ok=True)
    if snapshot_bytes is not None:
        tmp = out / (SNAPSHOT_FILE + ".tmp")
        tmp.write_bytes(snapshot_bytes)
        os.replace(tmp, out / SNAPSHOT_FILE)
        count += 1
    return count


__all__ = ["IndexHost", "CommitResult", "load_signers", "export_index", "local_index_path", "BINS_DIR"]
