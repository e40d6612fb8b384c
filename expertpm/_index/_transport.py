"""Transports: where a client gets index data and artifacts from.

An index transport has one method, `fetch(repo, previous, limits) -> commit id`: it brings the
source's current state into the client's local Git repository as a candidate commit. Nothing
it returns is trusted; the verifier decides. Two kinds exist:

  * `GitTransport` — a Git remote (`file://`, a local path, `ssh://`, `git://`, `https://…` with
    `git+` or ending in `.git`), fetched incrementally with pygit2;
  * `StaticTransport` — plain files at the same relative paths (a directory mirror today, plain
    HTTP later), read sparsely: only the snapshot, the bins whose digest changed and the files
    whose digest changed are read, each bounded by its declared size.

An artifact source has one method too, `open(location) -> binary stream`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Iterator, Protocol
from urllib.parse import unquote, urlparse

from .._errors import IndexError_, IntegrityError, NetworkError
from . import _gitdb as git
from ._gitpack import ObjectBatch
from ._layout import BRANCH, SNAPSHOT_FILE, Limits, bin_path
from ._metadata import FileRef, decode_bin, read_snapshot

if TYPE_CHECKING:  # pygit2 costs ~60 ms to import: loaded where a repository is opened
    import pygit2

CANDIDATE_REF = "refs/expertpm/candidate"


class IndexTransport(Protocol):
    def fetch(self, repo: pygit2.Repository, previous: pygit2.Oid | None, limits: Limits) -> pygit2.Oid:
        """Bring the current state into `repo` and return the (unverified) candidate commit."""


class FileReader(Protocol):
    def read(self, path: str, max_size: int) -> bytes | None:
        """The bytes at `path` (None if absent); raise IntegrityError past `max_size` bytes."""


class GitTransport:
    def __init__(self, url: str) -> None:
        self.url = url

    def fetch(self, repo: pygit2.Repository, previous: pygit2.Oid | None, limits: Limits) -> pygit2.Oid:
        git.delete_ref(repo, CANDIDATE_REF)
        git.fetch(repo, self.url, f"+{BRANCH}:{CANDIDATE_REF}", max_bytes=limits.max_fetch_bytes)
        oid = git.ref_target(repo, CANDIDATE_REF)
        if oid is None:
            raise IndexError_(f"the remote has no {BRANCH}", where=self.url, hint="is this an expertpm index?")
        return oid


class DirReader:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def read(self, path: str, max_size: int) -> bytes | None:
        target = self.root / path
        if ".." in Path(path).parts or Path(path).is_absolute():
            raise IndexError_(f"refusing to read {path!r} outside the mirror", where=str(self.root))
        try:
            with open(target, "rb") as f:
                data = f.read(max_size + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise NetworkError(f"cannot read {path}: {exc.strerror}", where=str(self.root)) from exc
        if len(data) > max_size:
            raise IntegrityError(f"{path} is larger than the {max_size} bytes declared for it",
                                 where=str(self.root), hint="refusing endless data")
        return data


class HttpReader:
    """Plain files over HTTP(S): the sparse protocol a registry server or CDN serves."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base = base_url.rstrip("/") + "/"
        self.timeout = timeout

    def read(self, path: str, max_size: int) -> bytes | None:
        import httpx

        url = self.base + path
        try:
            with httpx.stream("GET", url, timeout=self.timeout, follow_redirects=True) as response:
                if response.status_code == 404:
                    return None
                if response.status_code != 200:
                    raise NetworkError(f"HTTP {response.status_code} for {path}", where=url)
                return read_capped(response, path, max_size, url)
        except httpx.HTTPError as exc:
            raise NetworkError(f"cannot fetch {path}: {exc}", where=url) from exc


def read_capped(response, path: str, max_size: int, url: str) -> bytes:
    """A response body, refused as soon as it grows past the size declared for it."""
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_size:
            raise IntegrityError(f"{path} is larger than the {max_size} bytes declared for it",
                                 where=url, hint="refusing endless data")
        chunks.append(chunk)
    return b"".join(chunks)


class StaticTransport:
    def __init__(self, reader: FileReader, label: str) -> None:
        self.reader, self.label = reader, label

    def fetch(self, repo: pygit2.Repository, previous: pygit2.Oid | None, limits: Limits) -> pygit2.Oid:
        snap_bytes = self.reader.read(SNAPSHOT_FILE, limits.max_snapshot_bytes)
        if snap_bytes is None:
            raise IndexError_(f"no {SNAPSHOT_FILE} at the index location", where=self.label,
                              hint="is this an expertpm index (or a mirror made by `expertpm index export`)?")
        prev_tree = repo[previous].tree if previous is not None else None
        prev_snap_bytes = git.read_path(repo, prev_tree, SNAPSHOT_FILE, max_size=limits.max_snapshot_bytes) \
            if prev_tree is not None else None
        if prev_snap_bytes == snap_bytes:
            return previous  # type: ignore[return-value]
        snap = read_snapshot(snap_bytes, where=f"{self.label}/{SNAPSHOT_FILE}")
        prev_bins = read_snapshot(prev_snap_bytes, where=SNAPSHOT_FILE).bins if prev_snap_bytes else {}
        changes: dict[str, bytes | None] = {SNAPSHOT_FILE: snap_bytes}
        for bin_id, ref in snap.bins.items():
            if prev_bins.get(bin_id) == ref:
                continue
            where = f"{self.label}/{bin_path(bin_id)}"
            data = self._read(bin_path(bin_id), min(ref.size, limits.max_bin_bytes), where)
            if FileRef.of(data) != ref:
                raise IndexError_("snapshot bin does not match the snapshot", where=where,
                                  hint="the mirror serves files from two different snapshots")
            listing = decode_bin(data, bin_id, where=where)
            old = {}
            if bin_id in prev_bins:
                old = decode_bin(git.read_path(repo, prev_tree, bin_path(bin_id), max_size=limits.max_bin_bytes),
                                 bin_id, where=bin_path(bin_id))
            changes[bin_path(bin_id)] = data
            for path, file_ref in listing.items():
                if old.get(path) != file_ref:
                    changes[path] = self._read(path, file_ref.size, f"{self.label}/{path}")
            for path in old.keys() - listing.keys():
                changes[path] = None
        for bin_id in prev_bins.keys() - snap.bins.keys():
            changes[bin_path(bin_id)] = None
        batch = ObjectBatch(repo)
        tree = git.write_tree(batch, prev_tree, changes)
        return git.commit(batch, CANDIDATE_REF, tree, [previous] if previous is not None else [],
                          f"Fetched from {self.label}")

    def _read(self, path: str, max_size: int, where: str) -> bytes:
        data = self.reader.read(path, max_size)
        if data is None:
            raise IndexError_("file listed in the snapshot is missing", where=where)
        return data


def is_git_url(url: str) -> bool:
    if url.startswith("git+") or url.endswith(".git") or url.endswith(".git/"):
        return True
    scheme = urlparse(url).scheme
    if scheme in ("ssh", "git"):
        return True
    if scheme in ("http", "https"):
        return False
    path = local_path(url)
    return path is not None and ((path / "HEAD").is_file() and (path / "objects").is_dir() or (path / ".git").exists())


def local_path(url: str) -> Path | None:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if "://" not in url:
        return Path(url)
    return None


def transport_for(url: str) -> IndexTransport:
    """The transport for an index URL: Git if it is a Git remote, plain files otherwise."""
    if is_git_url(url):
        return GitTransport(url.removeprefix("git+"))
    scheme = urlparse(url).scheme
    if scheme in ("http", "https"):
        from ._http import SparseTransport  # plain HTTP is read sparsely, verified by its own `verify`

        return SparseTransport(url)
    path = local_path(url)
    if path is None:
        raise IndexError_(f"unsupported index URL {url!r}",
                          hint="use a directory, file://, ssh://, git+https://…, or https:// of a mirror")
    if not path.is_dir():
        raise NetworkError("index location does not exist", where=str(path))
    return StaticTransport(DirReader(path), str(path))


# -- artifacts -----------------------------------------------------------------------------

class ArtifactSource(Protocol):
    def open(self, location: str) -> contextlib.AbstractContextManager[BinaryIO]:
        """A binary stream of the artifact at `location` (the caller bounds how much it reads)."""


class DefaultArtifactSource:
    """Local paths and file:// URLs, and http(s) URLs through httpx."""

    @contextlib.contextmanager
    def open(self, location: str) -> Iterator[BinaryIO]:
        scheme = urlparse(location).scheme
        if scheme in ("http", "https"):
            yield from _http_stream(location)
            return
        path = local_path(location)
        if path is None:
            raise NetworkError(f"cannot download artifacts over {scheme}://", where=location)
        try:
            f = open(path, "rb")
        except OSError as exc:
            raise NetworkError(f"cannot read the artifact: {exc.strerror}", where=location,
                               hint="is the index's artifact store reachable from here?") from exc
        with f:
            yield f


class _HttpBody:
    def __init__(self, response) -> None:
        self._it = response.iter_bytes()
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            chunk = next(self._it, None)
            if chunk is None:
                break
            self._buf += chunk
        if n < 0:
            data, self._buf = self._buf, b""
        else:
            data, self._buf = self._buf[:n], self._buf[n:]
        return data


def _http_stream(url: str):
    import httpx

    try:
        with httpx.stream("GET", url, timeout=60.0, follow_redirects=True) as response:
            if response.status_code != 200:
                raise NetworkError(f"HTTP {response.status_code} downloading the artifact", where=url)
            yield _HttpBody(response)
    except httpx.HTTPError as exc:
        raise NetworkError(f"cannot download the artifact: {exc}", where=url) from exc
