"""The content-addressed store of installed packages (see `layout` for the directory shape)."""

from __future__ import annotations

import difflib
import os
import secrets
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import filelock

from .._canonical import parse_json
from .._errors import ExpertpmError, PackageError, StoreError
from .._home import Home
from .._keys import Signature
from .._manifest import MANIFEST_FILE, SIGNATURE_FILE, Manifest
from .._package import VerifiedPackage
from .._safetensors import validate_file
from .._versions import Version
from .batch import StoreBatch
from .layout import DIGEST, Layout, fsync_dir

LOCK_TIMEOUT_S = 600.0


@dataclass(frozen=True, slots=True)
class InstalledPackage:
    """A package installed as name@version; `path` is its unpacked, read-only directory."""

    name: str
    version: str
    kind: str
    digest: str
    path: Path
    manifest: Manifest
    signer_key_id: str

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"


class Store:
    """`Store(home)`: add, list, get, remove, gc and fsck packages under `home.store_dir`."""

    def __init__(self, home: Home, *, lock_timeout: float = LOCK_TIMEOUT_S) -> None:
        self.layout = Layout(home.store_dir)
        self._lock = filelock.FileLock(str(self.layout.lock_file), timeout=lock_timeout)

    @property
    def root(self) -> Path:
        return self.layout.root

    def locked(self):
        """Context manager holding the store lock (reentrant within one Store)."""
        self.layout.ensure()
        return _StoreLock(self._lock, self.layout)

    # -- adding -------------------------------------------------------------------------------

    def add(self, package_path: Path | str | BinaryIO, *, trusted_key_ids=None,
            expected_sha256: str | None = None) -> InstalledPackage:
        """Verify and install a `.expert` archive (a path or a binary stream); idempotent for
        identical content. `trusted_key_ids`: accept only signatures by these keys (None: any valid
        signature). `expected_sha256`: the archive digest it must have (from a lockfile or index)."""
        with self.batch() as batch:
            staged = batch.stage(package_path, trusted_key_ids=trusted_key_ids, expected_sha256=expected_sha256)
            return batch.commit([staged])[0]

    def batch(self) -> StoreBatch:
        """A batch install (`with store.batch() as b: b.commit([b.stage(p) for p in paths])`):
        staged in parallel, committed at once; see `batch`."""
        return StoreBatch(self)

    def check_ref(self, verified: VerifiedPackage) -> Path | None:
        """The ref to write for a package (None: it already points there); raises on a conflict."""
        name, version, digest = verified.manifest.name, str(verified.manifest.version), verified.digest
        ref = self.layout.ref_file(name, version)
        current = read_ref(ref)
        if current is not None and current != digest:
            raise StoreError(f"{name}@{version} is already installed with different content "
                             f"(digest {current[:12]}, this package is {digest[:12]})", where=str(ref),
                             hint=f"remove it first: expertpm store remove {name}@{version}")
        return None if current == digest else ref

    def move_in(self, unpacked: Path, verified: VerifiedPackage) -> bool:
        """Rename a staged directory to packages/<digest> unless an intact copy is there (call with
        the store lock held); True if it moved."""
        target = self.layout.package_dir(verified.digest)
        if target.is_dir() and not _looks_complete(target, verified.manifest):
            # Damaged by hand (a file deleted or truncated): swap in the fresh copy. The old one goes
            # to tmp/ with no lock file, where the next clean deletes it.
            os.rename(target, self.layout.tmp / f"gc-{secrets.token_hex(8)}")
        if target.is_dir():
            return False
        os.rename(unpacked, target)
        return True

    # -- reading ------------------------------------------------------------------------------

    def list(self) -> list[InstalledPackage]:
        """Every installed package, sorted by name then version (refs to missing packages are skipped)."""
        found = []
        for name in self._names():
            for version in self._versions(name):
                try:
                    found.append(self._load(name, version))
                except StoreError:
                    continue  # a dangling or broken ref; `store fsck` reports it
        return sorted(found, key=lambda p: (p.name, Version.parse(p.version)))

    def get(self, name: str, version: str | None = None) -> InstalledPackage:
        """name@version, or the newest installed version of `name` (stable releases first)."""
        names = self._names()
        if name not in names:
            close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
            hint = (f"did you mean {', '.join(close)}?" if close else
                    "see what is installed with: expertpm store list")
            raise StoreError(f"no package named {name!r} is installed", where=str(self.root), hint=hint)
        versions = self._versions(name)
        if version is None:
            if not versions:
                raise StoreError(f"no version of {name!r} is installed", where=str(self.root))
            parsed = sorted(Version.parse(v) for v in versions)
            stable = [v for v in parsed if v.prerelease is None]
            version = str((stable or parsed)[-1])
        elif version not in versions:
            raise StoreError(f"{name}@{version} is not installed", where=str(self.root),
                             hint=f"installed versions: {', '.join(versions) or 'none'}")
        return self._load(name, version)

    def path(self, name: str, version: str | None = None) -> Path:
        return self.get(name, version).path

    def _names(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.layout.refs) if (self.layout.refs / n).is_dir())
        except FileNotFoundError:
            return []

    def _versions(self, name: str) -> list[str]:
        try:
            entries = os.listdir(self.layout.refs / name)
        except FileNotFoundError:
            return []
        versions = []
        for entry in entries:
            try:
                versions.append((Version.parse(entry), entry))
            except ExpertpmError:
                continue
        return [raw for _, raw in sorted(versions)]

    def _load(self, name: str, version: str) -> InstalledPackage:
        ref = self.layout.ref_file(name, version)
        digest = read_ref(ref)
        if digest is None:
            raise StoreError(f"{name}@{version} is not installed", where=str(self.root))
        path = self.layout.package_dir(digest)
        try:
            manifest = Manifest.load(path / MANIFEST_FILE)
            signer = read_signature(path).key_id
        except ExpertpmError as exc:
            raise StoreError(f"{name}@{version} is damaged in the store: {exc}", where=str(path),
                             hint="run: expertpm store fsck") from exc
        if manifest.name != name or str(manifest.version) != version:
            raise StoreError(f"ref {name}@{version} points to a package of {manifest.id}", where=str(ref),
                             hint="run: expertpm store fsck")
        return InstalledPackage(name, version, manifest.kind, digest, path, manifest, signer)

    # -- removing and checking ----------------------------------------------------------------

    def remove(self, name: str, version: str) -> None:
        """Drop the ref name@version; `gc` frees the bytes once nothing refers to them."""
        with self.locked():
            if name not in self._names() or version not in self._versions(name):
                self.get(name, version)  # raises, with suggestions
            ref = self.layout.ref_file(name, version)
            ref.unlink()
            fsync_dir(ref.parent)
            try:
                ref.parent.rmdir()
                fsync_dir(self.layout.refs)
            except OSError:
                pass  # other versions remain

    def gc(self):
        from .maintenance import collect_garbage

        with self.locked():
            return collect_garbage(self.layout)

    def fsck(self) -> list[str]:
        from .maintenance import check_store

        with self.locked():
            return check_store(self.layout)


_THREAD_LOCKS: dict[str, threading.RLock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock(path: Path) -> threading.RLock:
    """One lock per store per process: threads of one process queue on it instead of polling the
    file lock (which sleeps 50 ms between tries), then one of them takes the file lock."""
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault(str(path), threading.RLock())


class _StoreLock:
    __slots__ = ("_lock", "_layout", "_thread_lock")

    def __init__(self, lock: filelock.FileLock, layout: Layout) -> None:
        self._lock, self._layout = lock, layout
        self._thread_lock = _thread_lock(layout.lock_file)

    def __enter__(self) -> None:
        if not self._thread_lock.acquire(timeout=self._lock.timeout):
            raise self._busy()
        try:
            self._lock.acquire()
        except filelock.Timeout as exc:
            self._thread_lock.release()
            raise self._busy() from exc
        except BaseException:
            self._thread_lock.release()
            raise

    def _busy(self) -> StoreError:
        return StoreError(f"the store is locked by another process for over {self._lock.timeout:g}s",
                          where=str(self._layout.lock_file), hint="wait for the other expertpm command to finish")

    def __exit__(self, *exc) -> None:
        try:
            self._lock.release()
        finally:
            self._thread_lock.release()


def read_ref(ref: Path) -> str | None:
    try:
        text = ref.read_text("ascii").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"cannot read ref: {exc}", where=str(ref), hint="run: expertpm store fsck") from exc
    if not DIGEST.match(text):
        raise StoreError("ref does not hold a sha256 digest", where=str(ref), hint="run: expertpm store fsck")
    return text


def read_signature(package_dir: Path) -> Signature:
    where = str(package_dir / SIGNATURE_FILE)
    try:
        data = (package_dir / SIGNATURE_FILE).read_bytes()
    except OSError as exc:
        raise StoreError(f"cannot read signature: {exc.strerror}", where=where) from exc
    return Signature.from_dict(parse_json(data, where=where), where=where)


def _looks_complete(package: Path, manifest: Manifest) -> bool:
    """Every listed file is there with its size (cheap; `fsck` checks the digests)."""
    try:
        if not all((package / name).is_file() for name in (MANIFEST_FILE, SIGNATURE_FILE)):
            return False
        return all((package / rel).lstat().st_size == entry.size for rel, entry in manifest.files.items())
    except OSError:
        return False


def validate_weights(path: Path, where: str) -> None:
    """Strict safetensors check, reported against the package rather than the staging path."""
    try:
        validate_file(path)
    except PackageError as exc:
        raise PackageError(exc.message, where=where, hint=exc.hint) from exc


def crash_point(name: str) -> None:
    """Let the crash-safety tests SIGKILL this process at a named step (never set outside tests)."""
    if os.environ.get("EXPERTPM_TEST_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
