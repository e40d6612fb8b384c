"""The content-addressed store of installed packages (see `layout` for the directory shape)."""

from __future__ import annotations

import difflib
import os
import secrets
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Sequence

import filelock

from .._canonical import parse_json
from .._errors import ExpertpmError, PackageError, StoreError
from .._home import Home
from .._keys import Signature
from .._manifest import MANIFEST_FILE, SIGNATURE_FILE, WEIGHT_SUFFIX, Manifest
from .._package import VerifiedPackage, extract_verified
from .._safetensors import validate_file
from .._versions import Version
from .layout import (DIGEST, Layout, Staging, clean_stale, durable, flush, fsync_dir, rename_scratch, seal_tree,
                     write_scratch)

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
        staged = self.stage(package_path, trusted_key_ids=trusted_key_ids, expected_sha256=expected_sha256)
        try:
            return self.commit([staged])[0]
        finally:
            staged.discard()

    def stage(self, package_path: Path | str | BinaryIO, *, trusted_key_ids=None,
              expected_sha256: str | None = None) -> "StagedPackage":
        """Verify and unpack a `.expert` archive into a private staging directory, in one streaming
        pass, without touching packages/ or refs/ (several may run in parallel). `commit` moves it
        into the store; `discard` (always call it, also after `commit`) deletes what is left."""
        where = str(getattr(package_path, "name", package_path))
        with self.locked():
            clean_stale(self.layout.tmp)
            staging = Staging(self.layout.tmp)
        try:
            unpacked = staging.path / "package"
            unpacked.mkdir()
            trusted = None if trusted_key_ids is None else set(trusted_key_ids)
            verified = extract_verified(package_path, unpacked, trusted_key_ids=trusted,
                                        expected_sha256=expected_sha256)
            for rel in verified.manifest.files:
                if rel.endswith(WEIGHT_SUFFIX):
                    _validate_weights(unpacked / rel, f"{where}:{rel}")
            written = seal_tree(unpacked)
        except BaseException:
            staging.close()
            raise
        return StagedPackage(verified, unpacked, tuple(written), staging)

    def commit(self, staged: Sequence["StagedPackage"]) -> list[InstalledPackage]:
        """Move staged packages into the store and point their refs at them, holding the store lock
        once for all of them. Refused as a whole, before anything moves, if a name@version already
        points to different content. Unless `EXPERTPM_FSYNC=0`, three flushes order it for power
        loss: the staged files before their directories are renamed into packages/, those renames
        and the new refs' contents before the refs are renamed into place, then the refs."""
        sync = durable()
        if sync:
            flush(path for one in staged for path in one.written)
        _crash_point("before-commit")
        with self.locked():
            refs = [self._check_ref(one.verified) for one in staged]
            moved = [self._move_in(one) for one in staged]
            writes = [(ref, f"{one.verified.digest}\n".encode(), one.staging.path / "ref")
                      for one, ref in zip(staged, refs) if ref is not None]
            try:
                changed = write_scratch(writes)
                if sync and (writes or any(moved)):
                    flush([scratch for _, _, scratch in writes] + [self.layout.packages])
                _crash_point("after-rename")
                rename_scratch(writes)
                if sync:
                    flush(changed)
            except BaseException:
                for ref, _, _ in writes:  # none of them existed before: all or nothing
                    ref.unlink(missing_ok=True)
                raise
        return [InstalledPackage(v.manifest.name, str(v.manifest.version), v.manifest.kind, v.digest,
                                 self.layout.package_dir(v.digest), v.manifest, v.signature.key_id)
                for v in (one.verified for one in staged)]

    def _check_ref(self, verified: VerifiedPackage) -> Path | None:
        """The ref to write for a package (None: it already points there); raises on a conflict."""
        name, version, digest = verified.manifest.name, str(verified.manifest.version), verified.digest
        ref = self.layout.ref_file(name, version)
        current = read_ref(ref)
        if current is not None and current != digest:
            raise StoreError(f"{name}@{version} is already installed with different content "
                             f"(digest {current[:12]}, this package is {digest[:12]})", where=str(ref),
                             hint=f"remove it first: expertpm store remove {name}@{version}")
        return None if current == digest else ref

    def _move_in(self, staged: "StagedPackage") -> bool:
        """Rename the staged directory to packages/<digest> unless an intact copy is there."""
        target = self.layout.package_dir(staged.verified.digest)
        if target.is_dir() and not _looks_complete(target, staged.verified.manifest):
            # Damaged by hand (a file deleted or truncated): swap in the fresh copy. The old one goes
            # to tmp/ with no lock file, where the next clean deletes it.
            os.rename(target, self.layout.tmp / f"gc-{secrets.token_hex(8)}")
        if target.is_dir():
            return False
        os.rename(staged.unpacked, target)
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


@dataclass(frozen=True, slots=True)
class StagedPackage:
    """A verified package unpacked in its own staging directory (`Store.stage`), not yet in the
    store. `written`: its files and directories, in the order `flush` wants them."""

    verified: VerifiedPackage
    unpacked: Path
    written: tuple[Path, ...]
    staging: Staging

    def discard(self) -> None:
        """Delete the staging directory (whatever `commit` did not move into the store)."""
        self.staging.close()


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


def _validate_weights(path: Path, where: str) -> None:
    """Strict safetensors check, reported against the package rather than the staging path."""
    try:
        validate_file(path)
    except PackageError as exc:
        raise PackageError(exc.message, where=where, hint=exc.hint) from exc


def _crash_point(name: str) -> None:
    """Let the crash-safety tests SIGKILL this process at a named step (never set outside tests)."""
    if os.environ.get("EXPERTPM_TEST_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
