"""Fetch: find a locked package's artifact, bring its bytes to the store, verify them there.

Where the bytes come from, in order:

 1. the download cache `<home>/cache/artifacts/<sha256>.expert` (earlier downloads, imports);
 2. the index's artifact location — a local path (a directory index or mirror: streamed straight
    into the store, never copied twice) or an HTTP(S) URL (downloaded with resume, then cached);
 3. for a directory index, `DIR/artifacts/<name>/<name>-<version>.expert` (a mirror of an index
    whose artifact URL is absolute).

Every copy is read up to the size the index line signed, and the store only accepts it when the
archive's sha256 is the locked one and its signature is by the line's publisher
(`Store.add(expected_sha256=..., trusted_key_ids={publisher})`). Offline, only local copies count.

HTTP downloads go to `<home>/cache/downloads/<sha256>.part` (outside the store's tmp/, which is
cleaned of anything whose owner died, so that a later run can resume): an interrupted download
continues with a `Range` request; the part is bounded by the signed size, hashed as it grows and
renamed into the cache only once its sha256 matches.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

from .._errors import IntegrityError, NetworkError, PackageError, ResolutionError
from .._home import Home
from .._lockfile import LockedPackage
from .progress import NullProgress, Task

CHUNK = 1 << 20
RETRIES = 4
HTTP_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Artifact:
    """Where one locked package's `.expert` can be read, and what its bytes must be."""

    name: str
    version: str
    sha256: str
    size: int
    publisher: str | None
    locations: tuple[str, ...]
    index: str  # the index it was found in (for messages)

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"


def is_http(location: str) -> bool:
    return urlparse(location).scheme in ("http", "https")


def local_path(location: str) -> Path:
    parsed = urlparse(location)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(location)


def held_package_names(index) -> set[str] | None:
    """For an HTTP index read sparsely, the names whose package files its verified commit holds
    (reading any other name would fetch it); None for an index that holds its whole tree."""
    from .._index._http import is_sparse_url

    if not is_sparse_url(index.url):
        return None
    import pygit2

    from .._index._gitdb import package_names

    return set(package_names(index.repo, index.repo[pygit2.Oid(hex=index.state.commit)].tree))


class IndexCatalog:
    """The indexes a home follows, opened on first use and found by root fingerprint. Offline, a
    package an HTTP index has never read is refused rather than fetched."""

    def __init__(self, home: Home, *, offline: bool = False) -> None:
        self.home = home
        self.offline = offline
        self._by_fp: dict[str, object] | None = None
        self._opened: dict[str, object] = {}
        self._lock = threading.Lock()

    def fingerprints(self) -> dict[str, str]:
        """fingerprint -> index name (the first configured index with it)."""
        if self._by_fp is None:
            from .._index._client import configured_indexes, load_settings

            found: dict[str, str] = {}
            for name in configured_indexes(self.home):
                found.setdefault(load_settings(self.home, name).fingerprint, name)
            self._by_fp = found
        return self._by_fp

    def index_for(self, fingerprint: str):
        from .._index import open_index

        with self._lock:
            name = self.fingerprints().get(fingerprint)
            if name is None:
                return None
            if name not in self._opened:
                self._opened[name] = open_index(self.home, name)
            return self._opened[name]

    def artifact(self, locked: LockedPackage) -> Artifact:
        """The checked artifact of a package locked from an index (`index+<fingerprint>`)."""
        fingerprint = locked.source.removeprefix("index+")
        index = self.index_for(fingerprint)
        if index is None:
            raise ResolutionError(
                f"{locked.name}@{locked.version} is locked from the index with fingerprint {fingerprint[:16]}…, "
                "which this machine does not follow",
                hint=f"add it (or a mirror of it): expertpm index add NAME URL_OR_DIR --fingerprint {fingerprint}")
        if self.offline:
            held = held_package_names(index)
            if held is not None and locked.name not in held:
                raise NetworkError(f"--offline: {locked.name}@{locked.version} is not in what this machine has "
                                   f"cached of index {index.name!r}",
                                   hint="sync once with the network, or bring the packages over with "
                                        "`expertpm import` or a mirror (`expertpm index add NAME DIR`)")
        entry = next((e for e in index.entries(locked.name) if e.version == locked.version), None)
        if entry is None:
            raise ResolutionError(f"{locked.name}@{locked.version} is in experts.lock but not in index "
                                  f"{index.name!r}", hint=f"update the index (expertpm index update {index.name}) "
                                  "or re-lock with `expertpm lock`")
        for what, signed, pinned in (("sha256", entry.sha256, locked.sha256), ("size", entry.size, locked.size),
                                     ("publisher", entry.publisher, locked.publisher or entry.publisher)):
            if signed != pinned:
                raise IntegrityError(
                    f"experts.lock pins {locked.name}@{locked.version} to {what} {_short(pinned)}, but index "
                    f"{index.name!r} signed {_short(signed)}", where="experts.lock",
                    hint="the lock was edited or made against another index; run `expertpm lock` and review the diff")
        return artifact_for(self.home, index, entry)


def artifact_for(home: Home, index, entry) -> Artifact:
    """The artifact of a verified index entry, with every place its bytes may be read from."""
    return Artifact(entry.name, entry.version, entry.sha256, entry.size, entry.publisher,
                    _locations(home, index, entry), index.name)


def _locations(home: Home, index, entry) -> tuple[str, ...]:
    from .._errors import IndexError_

    found = [str(home.cache_dir / "artifacts" / f"{entry.sha256}.expert")]
    try:
        found.append(index.artifact_location(entry))
    except IndexError_:
        pass  # a Git remote serves no artifacts; another location may still have it
    url = index.url
    if not is_http(url) and ("://" not in url or url.startswith("file://")):
        fallback = str(local_path(url) / "artifacts" / entry.name / f"{entry.name}-{entry.version}.expert")
        if fallback not in found:
            found.append(fallback)
    return tuple(found)


def _short(value) -> str:
    return f"{value[:16]}…" if isinstance(value, str) and len(value) > 16 else str(value)


class BoundedReader:
    """A binary stream of at most `size` bytes; more than that is an IntegrityError (endless data)."""

    def __init__(self, stream: BinaryIO, size: int, task: Task, name: str) -> None:
        self._stream, self._left, self._task, self.name = stream, size, task, name
        self._size = size

    def read(self, n: int = -1) -> bytes:
        if self._left == 0:
            if self._stream.read(1):
                raise IntegrityError(f"the artifact is larger than the {self._size} bytes its signed index line "
                                     "declares", where=self.name, hint="refusing endless data")
            return b""
        want = self._left if n is None or n < 0 else min(n, self._left)
        data = self._stream.read(want)
        self._left -= len(data)
        self._task.advance(len(data))
        return data


class HttpStatusError(NetworkError):
    """The server answered, but not with the artifact (404, 500...): retrying will not help."""


class Fetcher:
    """Brings artifacts into the store: local copies streamed, HTTP downloads with resume.

    One `httpx.Client` is shared by every download (created on first use, never when offline).
    """

    def __init__(self, home: Home, *, offline: bool = False, progress=None) -> None:
        self.home = home
        self.offline = offline
        self.progress = progress or NullProgress()
        self._client = None
        self._client_lock = threading.Lock()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- installing --------------------------------------------------------------------------
    def install(self, artifact: Artifact, store):
        """Add the artifact to `store`, verified; returns the store's InstalledPackage."""
        with store.batch() as batch:
            return batch.commit([self.stage(artifact, batch)])[0]

    def stage(self, artifact: Artifact, batch):
        """Verify and unpack the artifact into a `StoreBatch` (`batch.stage`); the caller commits
        the batch."""
        task = self.progress.task(artifact.id, artifact.size)
        try:
            return self._stage(artifact, batch, task)
        finally:
            task.done()

    def _stage(self, artifact: Artifact, batch, task: Task):
        cache = str(self.home.cache_dir / "artifacts" / f"{artifact.sha256}.expert")
        tried: list[str] = []
        for location in artifact.locations:
            if is_http(location):
                if self.offline:
                    tried.append(f"{location} (offline)")
                    continue
                path = self.download(location, artifact, task)
                return self._stage_file(path, artifact, batch, task)
            path = local_path(location)
            if not path.is_file():
                if location != cache:
                    tried.append(f"{location} (missing)")
                continue
            try:
                return self._stage_file(path, artifact, batch, task)
            except (IntegrityError, PackageError):
                if location != cache:
                    raise
                path.unlink(missing_ok=True)  # a damaged cache entry: drop it and use the source
                task.reset()
        where = "; ".join(tried) or "no location"
        if self.offline:
            raise NetworkError(f"--offline: {artifact.id} is not in the download cache and has no local copy "
                               f"(tried {where})",
                               hint="sync once with the network, or bring it over with `expertpm import` or a "
                                    "mirror (`expertpm index add NAME DIR`)")
        raise NetworkError(f"no copy of {artifact.id} could be read (tried {where})",
                           hint=f"is index {artifact.index!r} reachable from here?")

    def local_copy(self, artifact: Artifact) -> Path:
        """A local file holding the artifact's bytes (the cache, a local location, or a download
        into the cache). The caller still checks size and sha256 when it reads it."""
        task = self.progress.task(artifact.id, artifact.size)
        try:
            tried = []
            for location in artifact.locations:
                if is_http(location):
                    if self.offline:
                        tried.append(f"{location} (offline)")
                        continue
                    return self.download(location, artifact, task)
                path = local_path(location)
                if path.is_file():
                    return path
                tried.append(f"{location} (missing)")
            raise NetworkError(f"no copy of {artifact.id} could be read (tried {'; '.join(tried) or 'no location'})",
                               hint=f"is index {artifact.index!r} reachable from here?")
        finally:
            task.done()

    def _stage_file(self, path: Path, artifact: Artifact, batch, task: Task):
        trusted = {artifact.publisher} if artifact.publisher else None
        try:
            f = open(path, "rb")
        except OSError as exc:
            raise NetworkError(f"cannot read the artifact of {artifact.id}: {exc.strerror}", where=str(path)) from exc
        with f:
            stream = BoundedReader(f, artifact.size, task, str(path))
            return batch.stage(stream, trusted_key_ids=trusted, expected_sha256=artifact.sha256)

    # -- HTTP ------------------------------------------------------------------------------
    def client(self):
        import httpx

        with self._client_lock:
            if self._client is None:
                if self.offline:
                    raise NetworkError("refusing to open a connection in --offline mode")
                self._client = httpx.Client(timeout=httpx.Timeout(HTTP_TIMEOUT_S), follow_redirects=True,
                                            limits=httpx.Limits(max_connections=8, max_keepalive_connections=8))
            return self._client

    def download(self, url: str, artifact: Artifact, task: Task) -> Path:
        """Download to the cache (resuming a `.part` left by an earlier run); returns the cached file."""
        import filelock

        cache = self.home.cache_dir / "artifacts" / f"{artifact.sha256}.expert"
        part = self.home.cache_dir / "downloads" / f"{artifact.sha256}.part"
        part.parent.mkdir(parents=True, exist_ok=True)
        cache.parent.mkdir(parents=True, exist_ok=True)
        with filelock.FileLock(str(part) + ".lock", timeout=3600):
            if cache.is_file():
                return cache  # another process finished it meanwhile
            digest = self._resume_digest(part, artifact.size, task)
            last_error: Exception | None = None
            for _attempt in range(RETRIES):
                have = part.stat().st_size if part.exists() else 0
                if have >= artifact.size:
                    break
                try:
                    digest = self._get(url, part, have, digest, artifact, task)
                    last_error = None
                except HttpStatusError:
                    raise
                except NetworkError as exc:
                    last_error = exc  # the part keeps what arrived; the next attempt resumes from there
            if last_error is not None and (not part.exists() or part.stat().st_size < artifact.size):
                raise NetworkError(f"downloading {artifact.id} failed: {last_error.message}", where=url,
                                   hint="run the command again to resume the download") from last_error
            if digest.hexdigest() != artifact.sha256:
                part.unlink(missing_ok=True)
                raise IntegrityError(f"the downloaded artifact of {artifact.id} has sha256 {digest.hexdigest()[:16]}…, "
                                     f"but its signed index line says {artifact.sha256[:16]}…", where=url,
                                     hint="the server sent other bytes; nothing was installed")
            os.replace(part, cache)
        return cache

    @staticmethod
    def _resume_digest(part: Path, size: int, task: Task):
        digest = hashlib.sha256()
        if not part.exists():
            return digest
        if part.stat().st_size > size:
            part.unlink()
            return digest
        with open(part, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
                task.advance(len(chunk))
        return digest

    def _get(self, url: str, part: Path, have: int, digest, artifact: Artifact, task: Task):
        import httpx

        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with self.client().stream("GET", url, headers=headers) as response:
                if have and response.status_code == 206:
                    mode = "ab"
                elif response.status_code == 200:
                    if have:  # the server ignored the Range: start over
                        task.reset()
                        digest = hashlib.sha256()
                    mode, have = "wb", 0
                else:
                    raise HttpStatusError(f"HTTP {response.status_code} downloading {artifact.id}", where=url,
                                          hint=f"is index {artifact.index!r} serving its artifacts?")
                with open(part, mode) as out:
                    for chunk in response.iter_bytes():  # as it arrives: an interruption keeps it all
                        have += len(chunk)
                        if have > artifact.size:
                            out.close()
                            part.unlink(missing_ok=True)
                            raise IntegrityError(f"the artifact of {artifact.id} is larger than the {artifact.size} "
                                                 "bytes its signed index line declares", where=url,
                                                 hint="refusing endless data; nothing was installed")
                        digest.update(chunk)
                        out.write(chunk)
                        task.advance(len(chunk))
        except httpx.HTTPError as exc:
            raise NetworkError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
                               where=url) from exc
        except OSError as exc:
            raise PackageError(f"cannot write the download of {artifact.id}: {exc.strerror or exc}",
                               where=str(part), hint="free some disk space and run the command again") from exc
        return digest
