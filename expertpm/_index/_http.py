"""Plain HTTP(S) indexes, read sparsely (cargo's sparse protocol is the model).

A client of an `http(s)://` index (a registry server's `/index/`, a CDN, any static mirror) never
downloads the whole index. Its verified Git commit holds a *subset* of the index tree:
`snapshot.json`, `config.json`, every `keys/root/N.json`, and only those package files (with the
publisher delegations their lines name, and the snapshot bins that list them) it has read.

* `SparseTransport.fetch` — a conditional GET of `snapshot.json` (`If-None-Match` with the sha256
  of the verified one: the registry's ETag is that digest, so an unchanged index costs one 304);
  then only the bins whose digest changed, and in them only the held files whose digest changed.
* `SparseTransport.verify` — the checks of `_verify.verify_candidate`, over the held subset: the
  history only moves forward, roots chain from the pinned fingerprint, the snapshot is signed by
  the timestamp key, newer than any seen and not expired, each held bin matches the snapshot and
  each held file its bin, config agrees with the root, delegations only move forward, package
  files only grow and their new lines are signed by a delegated, unrevoked key.
* `SparseIndex` (what `open_index` returns for such an index) — reading a package the client
  does not hold yet fetches its bin and file, checks them against the verified snapshot, fetches
  the delegations its lines name, and records them as a commit on top of the verified one (same
  snapshot). If the server has moved on, the index is updated first (fully verified) and the read
  retried: data from two snapshots is never combined.

Bins and files are asked for with `X-Expertpm-Snapshot: <sha256 of our snapshot.json>`: the
registry then answers from that snapshot even if the index was published to meanwhile (a static
server ignores the header). A file that does not match the snapshot fails verification. While
fetching, such a mismatch
makes the client look at `snapshot.json` again: if it changed (the index was published to while
we read) the fetch starts over (up to 8 times); if not, the server mixes snapshots and is refused.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Callable
from urllib.parse import quote, urlparse

import filelock

from .._canonical import sha256_bytes
from .._errors import IndexError_, IntegrityError, NetworkError
from . import _gitdb as git
from ._entries import split_records
from ._gitpack import ObjectBatch
from ._layout import (
    CONFIG_FILE, DEFAULT_LIMITS, SNAPSHOT_FILE, Limits, bin_of, bin_path, classify, package_path, publisher_path,
    root_path,
)
from ._metadata import FileRef, decode_bin, load_delegation, load_root, read_snapshot
from ._transport import CANDIDATE_REF, is_git_url, read_capped
from ._verify import TrustedState, Verified

if TYPE_CHECKING:  # pygit2 costs ~60 ms to import: loaded where a repository is opened
    import pygit2

NOT_MODIFIED = object()
SNAPSHOT_HEADER = "X-Expertpm-Snapshot"  # "answer from this snapshot.json" (sha256), for a registry
MAX_ATTEMPTS = 8  # each retry means the index was published to while we read it
_KEY_ID = re.compile(r"^[0-9a-f]{64}$")


def is_sparse_url(url: str) -> bool:
    """True for an index read over plain HTTP(S) (not a Git remote)."""
    return urlparse(url).scheme in ("http", "https") and not is_git_url(url)


def _user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"expertpm/{version('expertpm')}"
    except PackageNotFoundError:
        return "expertpm"


class HttpFiles:
    """Index files under a base URL through one reused `httpx.Client` (keep-alive), each read
    bounded by the size the caller expects; implements `FileReader`."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base = base_url.rstrip("/") + "/"
        self.timeout = timeout
        self._client = None
        self.requests = 0

    @property
    def client(self):
        if self._client is None:
            import httpx

            self._client = httpx.Client(timeout=self.timeout, follow_redirects=True,
                                        headers={"User-Agent": _user_agent()})
        return self._client

    def read(self, path: str, max_size: int) -> bytes | None:
        data = self.get(path, max_size)
        return None if data is NOT_MODIFIED else data  # type: ignore[return-value]

    def get(self, path: str, max_size: int, *, etag: str | None = None, snapshot: str | None = None):
        """The bytes at `path`, None if absent, or NOT_MODIFIED when they still have `etag`.
        `snapshot` (the sha256 of the snapshot.json being read) asks a registry to answer from that
        snapshot even if the index has moved on since; a static server ignores it."""
        import httpx

        url = self.base + quote(path)
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if snapshot:
            headers[SNAPSHOT_HEADER] = snapshot
        self.requests += 1
        try:
            with self.client.stream("GET", url, headers=headers) as response:
                if response.status_code == 304 and etag:
                    return NOT_MODIFIED
                if response.status_code in (404, 410):
                    return None
                if response.status_code != 200:
                    raise NetworkError(f"HTTP {response.status_code} for {path}", where=url,
                                       hint="the index server refused the request; try again later")
                return read_capped(response, path, max_size, url)
        except httpx.HTTPError as exc:
            raise NetworkError(f"cannot fetch {path}: {exc}", where=url,
                               hint="check the index URL and your network") from exc

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class _Moved(Exception):
    """The server's snapshot changed while we were reading: start again from the new one."""


class _Reader:
    """Reads files of one (unverified) snapshot against its bins, reusing what `held` has."""

    def __init__(self, files: HttpFiles, repo: pygit2.Repository, held: dict[str, pygit2.Oid],
                 snap_bytes: bytes, held_bins: dict, limits: Limits, label: str) -> None:
        self.files, self.repo, self.held, self.limits, self.label = files, repo, held, limits, label
        self.snap_bytes = snap_bytes
        self.snap_sha256 = sha256_bytes(snap_bytes)
        self.snap = read_snapshot(snap_bytes, where=f"{label}/{SNAPSHOT_FILE}")
        self.held_bins = held_bins  # bin id -> FileRef of the held bin's bytes (as verified before)
        self.changes: dict[str, bytes] = {}
        self._listings: dict[str, dict[str, FileRef]] = {}

    def _held_bytes(self, path: str, max_size: int) -> bytes:
        return git.read_blob(self.repo, self.held[path], max_size=max_size, where=path)

    def _mismatch(self, path: str, error: Exception | None = None) -> None:
        """Start over if the server's snapshot moved on since we read ours; else refuse the file."""
        now = self.files.get(SNAPSHOT_FILE, self.limits.max_snapshot_bytes)
        if now is not None and now is not NOT_MODIFIED and now != self.snap_bytes:
            raise _Moved()
        if error is not None:
            raise error
        raise IndexError_(f"{path} does not match the snapshot", where=f"{self.label}/{path}",
                          hint="the server serves files from two different snapshots")

    def _get(self, path: str, max_size: int) -> bytes | None:
        try:
            return self.files.get(path, max_size, snapshot=self.snap_sha256)
        except IntegrityError as exc:  # longer than declared: a newer file, or endless data
            self._mismatch(path, exc)
            raise

    def listing(self, bin_id: str) -> dict[str, FileRef]:
        if bin_id in self._listings:
            return self._listings[bin_id]
        ref, path = self.snap.bins.get(bin_id), bin_path(bin_id)
        if ref is None:
            listing: dict[str, FileRef] = {}
        elif path in self.held and self.held_bins.get(bin_id) == ref:
            listing = decode_bin(self._held_bytes(path, ref.size), bin_id, where=path)
        else:
            data = self._get(path, min(ref.size, self.limits.max_bin_bytes))
            if data is None or FileRef.of(data) != ref:
                self._mismatch(path)
            self.changes[path] = data
            listing = decode_bin(data, bin_id, where=f"{self.label}/{path}")
        self._listings[bin_id] = listing
        return listing

    def file(self, path: str, *, required: bool = False) -> bytes | None:
        """The file's current bytes if this snapshot lists it (fetched only when they changed)."""
        ref = self.listing(bin_of(path)).get(path)
        if ref is None:
            if required:
                raise IndexError_(f"the snapshot does not list {path}", where=self.label,
                                  hint="is this an expertpm index (or a mirror made by `expertpm index export`)?")
            return None
        if path in self.changes:
            return self.changes[path]
        if path in self.held:
            data = self._held_bytes(path, max(ref.size, self.limits.max_package_file_bytes))
            if FileRef.of(data) == ref:
                return data
        data = self._get(path, ref.size)
        if data is None or FileRef.of(data) != ref:
            self._mismatch(path)
        self.changes[path] = data
        return data

    def delegations_for(self, package_data: bytes, where: str) -> None:
        """Read the delegation of every publisher the lines of a package file name."""
        for record in split_records(package_data, where=where, limits=self.limits):
            key_id = record.doc.get("publisher")
            if isinstance(key_id, str) and _KEY_ID.match(key_id):
                self.file(publisher_path(key_id))


def _held_bins(repo: pygit2.Repository, tree: pygit2.Tree | None, held: dict) -> dict[str, FileRef]:
    if tree is None:
        return {}
    snap_oid = held.get(SNAPSHOT_FILE)
    if snap_oid is None:
        return {}
    return dict(read_snapshot(repo[snap_oid].data, where=SNAPSHOT_FILE).bins)


def _commit(repo: pygit2.Repository, base: pygit2.Tree | None, changes: dict, parent: pygit2.Oid | None,
            message: str) -> pygit2.Oid:
    batch = ObjectBatch(repo)
    tree = git.write_tree(batch, base, changes)
    return git.commit(batch, CANDIDATE_REF, tree, [parent] if parent is not None else [], message)


class SparseTransport:
    """The index transport for plain HTTP(S) (see the module docstring)."""

    def __init__(self, url: str, files: HttpFiles | None = None) -> None:
        self.url = url
        self.files = files or HttpFiles(url)

    def fetch(self, repo: pygit2.Repository, previous: pygit2.Oid | None, limits: Limits) -> pygit2.Oid:
        try:
            for attempt in range(MAX_ATTEMPTS):
                try:
                    return self._fetch_once(repo, previous, limits)
                except _Moved:
                    time.sleep(0.05 * attempt)  # let a burst of publishes settle
        finally:
            self.files.close()
        raise IndexError_("the index changed on every attempt to read it", where=self.url,
                          hint="it is being published to right now; try again in a moment")

    def _fetch_once(self, repo: pygit2.Repository, previous: pygit2.Oid | None, limits: Limits) -> pygit2.Oid:
        tree = repo[previous].tree if previous is not None else None
        held = dict(git.walk_files(tree)) if tree is not None else {}
        old = repo[held[SNAPSHOT_FILE]].data if SNAPSHOT_FILE in held else None
        snap_bytes = self.files.get(SNAPSHOT_FILE, limits.max_snapshot_bytes,
                                    etag=f'"{sha256_bytes(old)}"' if old is not None else None)
        if snap_bytes is NOT_MODIFIED or (old is not None and snap_bytes == old):
            return previous  # type: ignore[return-value]
        if snap_bytes is None:
            raise IndexError_(f"no {SNAPSHOT_FILE} at the index location", where=self.url,
                              hint="is this an expertpm index? a registry serves it under /index/")
        reader = _Reader(self.files, repo, held, snap_bytes, _held_bins(repo, tree, held), limits, self.url)
        reader.file(CONFIG_FILE, required=True)
        for version in range(1, reader.snap.root_version + 1):
            reader.file(root_path(version), required=True)
        kinds = {path: classify(path) for path in held}
        for path, kind in kinds.items():
            if kind.kind == "package":
                data = reader.file(path)
                if data is not None:
                    reader.delegations_for(data, path)
            elif kind.kind == "publisher":
                reader.file(path)
            elif kind.kind == "bin":
                reader.listing(kind.arg)
        return _commit(repo, tree, {SNAPSHOT_FILE: snap_bytes, **reader.changes}, previous,
                       f"Fetched from {self.url}")

    def verify(self, repo: pygit2.Repository, candidate: pygit2.Oid, previous: TrustedState | None,
               fingerprint: str, *, now, allow_expired: bool, warn: Callable[[str], None], limits: Limits,
               deep: bool = False, where: str = "index") -> Verified:
        from ._http_verify import verify_sparse

        return verify_sparse(repo, candidate, previous, fingerprint, now=now, allow_expired=allow_expired,
                             warn=warn, limits=limits, deep=deep, where=where)


# -- reading: fetch what is read, the first time it is read -----------------------------------

def open_sparse_index(settings, state: TrustedState, repo: pygit2.Repository, home):
    """The `VerifiedIndex` of an HTTP index: package files are fetched when first read."""
    from ._read import VerifiedIndex

    class SparseIndex(VerifiedIndex):
        __doc__ = _SparseReads.__doc__

        def __init__(self) -> None:
            super().__init__(settings, state, repo)
            self._reads = _SparseReads(self, home)

        def entries(self, package_name: str):
            if package_name not in self._entries:
                from .._names import validate_name

                validate_name(package_name)
                self._reads.hold([package_path(package_name)])
            return super().entries(package_name)

        def package_names(self) -> list[str]:
            return self._reads.all_names()

    return SparseIndex()


class _SparseReads:
    """Fetches files of the verified snapshot into the verified commit on first read."""

    def __init__(self, index, home) -> None:
        self.index, self.home = index, home
        self._files: HttpFiles | None = None

    @property
    def files(self) -> HttpFiles:
        if self._files is None:
            self._files = HttpFiles(self.index.settings.url)
        return self._files

    def hold(self, paths: list[str]) -> None:
        """Make the verified commit hold `paths` (those the snapshot lists) and the delegations
        their lines name; update the index first if the server has moved past our snapshot."""
        for attempt in range(MAX_ATTEMPTS):
            try:
                self._hold_once(paths)
                return
            except _Moved:
                from ._client import update_index

                time.sleep(0.05 * attempt)
                update_index(self.home, self.index.name)
                self._reload()
        raise IndexError_("the index changed on every attempt to read it", where=self.index.url,
                          hint="it is being published to right now; try again in a moment")

    def all_names(self) -> list[str]:
        self.hold([bin_path(f"{i:02x}") for i in range(256)])
        names = []
        for path, oid in self._held().items():
            kind = classify(path)
            if kind.kind == "bin":
                for listed in decode_bin(self.index.repo[oid].data, kind.arg, where=path):
                    if classify(listed).kind == "package":
                        names.append(classify(listed).arg)
        return sorted(names)

    def _held(self) -> dict[str, pygit2.Oid]:
        import pygit2

        return dict(git.walk_files(self.index.repo[pygit2.Oid(hex=self.index.state.commit)].tree))

    def _reload(self) -> None:
        """Switch to the state on disk (after our own commit, or another process's update)."""
        import pygit2

        from ._client import load_state
        from ._verify import _Tree

        index = self.index
        state = load_state(self.home, index.name)
        if state is None or state.commit == index.state.commit:
            return
        same_snapshot = state.snapshot_version == index.state.snapshot_version
        index.state = state
        index._tree = _Tree(index.repo, index.repo[pygit2.Oid(hex=state.commit)].tree, DEFAULT_LIMITS)
        index._delegations = None
        if not same_snapshot:
            index._entries.clear()
            index._config = None

    def _hold_once(self, paths: list[str]) -> None:
        import pygit2

        from ._client import INDEX_FILE, _commit_state, index_dir

        target = index_dir(self.home, self.index.name)
        if not (target / INDEX_FILE).is_file():
            raise IndexError_(f"index {self.index.name!r} was removed", where=str(target))
        with filelock.FileLock(str(target / ".lock"), timeout=600):
            self._reload()
            held = self._held()
            tree = self.index.repo[pygit2.Oid(hex=self.index.state.commit)].tree
            snap_bytes = self.index.repo[held[SNAPSHOT_FILE]].data
            reader = _Reader(self.files, self.index.repo, held, snap_bytes,
                             dict(read_snapshot(snap_bytes, where=SNAPSHOT_FILE).bins), DEFAULT_LIMITS,
                             self.index.url)
            for path in paths:
                if path in held:
                    continue
                if classify(path).kind == "bin":
                    reader.listing(classify(path).arg)
                    continue
                data = reader.file(path)
                if data is not None and classify(path).kind == "package":
                    reader.delegations_for(data, path)
            if not reader.changes:
                return
            root = load_root(self.index.repo[held[root_path(self.index.state.root_version)]].data,
                             where=root_path(self.index.state.root_version))
            for path, data in reader.changes.items():  # bins and files were checked against the snapshot
                if classify(path).kind == "publisher":
                    load_delegation(data, root, self.index.fingerprint, where=path)
            oid = _commit(self.index.repo, tree, reader.changes, pygit2.Oid(hex=self.index.state.commit),
                          f"Read {', '.join(sorted(reader.changes))[:200]}")
            git.delete_ref(self.index.repo, CANDIDATE_REF)
            new_state = TrustedState(str(oid), self.index.state.snapshot_version, self.index.state.root_version,
                                     self.index.state.expires, self.index.state.fingerprint)
            _commit_state(target, self.index.repo, Verified(new_state, ()))
            self._reload()
