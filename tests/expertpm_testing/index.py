"""Fixtures for the signed Git index: a real index with root, timestamp and publisher keys, a
maintainer home and a second client home ("two machines"), a bare Git remote, and attacker
helpers that write commits straight into the index repository."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pygit2
import pytest

from expertpm._home import Home
from expertpm._keys import Keyring, SigningKey

from .packages import make_expert_source


@dataclass
class IndexWorld:
    """One index (`dir`, a bare Git repo + artifacts + host key), its maintainer's home (also the
    publisher's) and a client home. Root keys `root-a`, `root-b` (threshold 2); `publisher` is
    delegated `sql` and `acme-*`."""

    tmp: Path
    dir: Path
    fingerprint: str
    maintainer: Home
    client: Home
    root_keys: list[SigningKey]
    publisher: SigningKey

    def key(self, name: str) -> SigningKey:
        """A keyring key of the maintainer's home, created on first use."""
        ring = Keyring(self.maintainer)
        if not (self.maintainer.keys_dir / f"{name}.key").exists():
            ring.generate(name)
        return ring.load(name)

    def pack(self, name: str = "sql", version: str = "1.0.0", *, seed: int = 0, key: SigningKey | None = None,
             **manifest) -> Path:
        from expertpm._package import pack

        src = make_expert_source(self.tmp / "src" / f"{name}-{version}-{seed}", seed=seed, name=name,
                                 version=version, **manifest)
        out = self.tmp / "dist" / f"{seed}"
        out.mkdir(parents=True, exist_ok=True)
        return pack(src, out, key or self.publisher)

    def publish(self, name: str = "sql", version: str = "1.0.0", *, seed: int = 0, key: SigningKey | None = None,
                **manifest):
        from expertpm._index import publish

        key = key or self.publisher
        return publish(self.dir, self.pack(name, version, seed=seed, key=key, **manifest), key)

    def add_client(self, url: str | None = None, name: str = "main", **kw):
        from expertpm._index import add_index

        return add_index(self.client, name, url or f"file://{self.dir}", fingerprint=self.fingerprint, **kw)

    def update(self, name: str = "main", **kw):
        from expertpm._index import update_index

        return update_index(self.client, name, **kw)

    def open(self, name: str = "main"):
        from expertpm._index import open_index

        return open_index(self.client, name)

    def installed(self) -> list:
        from expertpm._store import Store

        return Store(self.client).list()

    # -- attacker helpers ---------------------------------------------------------------------

    @property
    def host(self):
        from expertpm._index import IndexHost

        return IndexHost(self.dir)

    def read(self, path: str) -> bytes:
        return self.host.read(path)

    def resign_commit(self, changes: dict[str, bytes], message: str = "tampered", **kw) -> str:
        """Commit `changes` with bins and snapshot re-signed by the host's timestamp key: what a
        compromised (or careless) index host can do without any root or publisher key."""
        host = self.host
        with host.lock():
            return host.commit_changes(changes, message, **kw).commit

    def raw_commit(self, changes: dict[str, bytes | None], *, base: str | None = None,
                   message: str = "tampered") -> str:
        """Commit `changes` on top of `base` (default: main) without touching bins or snapshot."""
        from expertpm._index import _gitdb as git
        from expertpm._index._gitpack import ObjectBatch

        repo = pygit2.Repository(str(self.dir))
        parent = repo[pygit2.Oid(hex=base)] if base else repo.head.peel(pygit2.Commit)
        batch = ObjectBatch(repo)
        tree = git.write_tree(batch, parent.tree, changes)
        return str(git.commit(batch, "refs/heads/main", tree, [parent.id], message))

    def head(self) -> str:
        return str(pygit2.Repository(str(self.dir)).head.target)

    def force_main(self, commit: str) -> None:
        """Point the index's main branch at `commit` (a forced push)."""
        repo = pygit2.Repository(str(self.dir))
        repo.create_reference_direct("refs/heads/main", pygit2.Oid(hex=commit), True)

    def file_at(self, commit: str, path: str) -> bytes:
        repo = pygit2.Repository(str(self.dir))
        return repo[pygit2.Oid(hex=commit)].tree[path].data


def make_index_world(tmp: Path, *, threshold: int = 2) -> IndexWorld:
    from expertpm._index import delegate, init_index, publisher_key_from

    maintainer, client = Home(tmp / "maintainer"), Home(tmp / "client")
    ring = Keyring(maintainer)
    for name in ("root-a", "root-b", "publisher"):
        ring.generate(name)
    roots = [ring.load("root-a"), ring.load("root-b")]
    index_dir = tmp / "index"
    fingerprint = init_index(index_dir, roots, threshold=threshold, name="test-index")
    delegate(index_dir, publisher_key_from(maintainer, "publisher"), ["sql", "acme-*"], roots)
    return IndexWorld(tmp, index_dir, fingerprint, maintainer, client, roots, ring.load("publisher"))


@pytest.fixture
def index_world(tmp_path: Path) -> IndexWorld:
    """A fresh index with two root keys (threshold 2) and one delegated publisher."""
    return make_index_world(tmp_path)


@pytest.fixture
def bare_remote(tmp_path: Path) -> Path:
    """An empty bare Git repository to push an index to (a stand-in for a Git host)."""
    path = tmp_path / "remote.git"
    pygit2.init_repository(str(path), bare=True, initial_head="main")
    return path


def push_index(index_dir: Path, remote: Path, *, force: bool = False) -> None:
    """Push the index's main branch to `remote` with pygit2."""
    repo = pygit2.Repository(str(index_dir))
    spec = ("+" if force else "") + "refs/heads/main:refs/heads/main"
    repo.remotes.create_anonymous(f"file://{remote}").push([spec])


__all__ = ["IndexWorld", "make_index_world", "index_world", "bare_remote", "push_index"]
