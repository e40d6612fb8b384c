"""The store on disk, and the file-system moves that keep it consistent across crashes.

    <store>/
      lock                      the store lock (filelock): held to commit, remove, gc and fsck
      packages/<sha256>/        one unpacked package per archive digest; files read-only
      refs/<name>/<version>     the digest of the package installed as name@version
      tmp/<id>/ + tmp/<id>.lock a staging directory and the flock its live owner holds

Writers never modify anything in place under packages/ or refs/: they build in tmp/ (same file
system), make it durable (`flush`, unless `EXPERTPM_FSYNC=0`), and rename. A staging directory belongs to a live process exactly while that
process holds the flock on its `.lock` sibling; the kernel drops the flock when the process dies,
so whoever holds the store lock may delete any staging directory whose flock it can take.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import os
import re
import secrets
import shutil
import stat
import sys
from pathlib import Path
from typing import Iterable

from .._errors import StoreError

DIGEST = re.compile(r"^[0-9a-f]{64}$")
LOCK_SUFFIX = ".lock"
FSYNC_ENV = "EXPERTPM_FSYNC"
_YES, _NO = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
SYNCFS_FROM = 8  # paths to flush; below that, fsync each
_SYNC_FILE_RANGE_WRITE = 2


class Layout:
    """Paths inside one store directory."""

    __slots__ = ("root", "packages", "refs", "tmp", "lock_file")

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.packages = self.root / "packages"
        self.refs = self.root / "refs"
        self.tmp = self.root / "tmp"
        self.lock_file = self.root / "lock"

    def ensure(self) -> None:
        for d in (self.packages, self.refs, self.tmp):
            d.mkdir(parents=True, exist_ok=True)

    def package_dir(self, digest: str) -> Path:
        return self.packages / digest

    def ref_file(self, name: str, version: str) -> Path:
        return self.refs / name / version

    def rel(self, path: Path) -> str:
        return str(Path(path).relative_to(self.root))


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def durable() -> bool:
    """Whether installs make what they write durable before renaming it into place
    (`EXPERTPM_FSYNC`, default 1; 0 keeps the atomic renames but skips the fsyncs)."""
    value = os.environ.get(FSYNC_ENV, "1").strip().lower()
    if value in _YES:
        return True
    if value in _NO:
        return False
    raise StoreError(f"{FSYNC_ENV}={value!r} is not a yes/no value", where=FSYNC_ENV,
                     hint=f"set {FSYNC_ENV}=1 (flush before commit, the default) or {FSYNC_ENV}=0 (never flush)")


def seal_tree(root: Path, *, start_writeback: bool = False) -> list[Path]:
    """Make every file under `root` read-only; return its files and directories, deepest first
    (what `flush` must make durable before `root` is renamed into the store). `start_writeback`:
    also ask the kernel to start writing each file out now, without waiting (Linux
    sync_file_range), so that the flush at commit finds little left to do (git's
    `core.fsyncMethod=batch` does the same)."""
    files, dirs = [], []
    for dirpath, _dirnames, filenames in os.walk(root):
        dirs.append(Path(dirpath))
        for name in filenames:
            path = Path(dirpath, name)
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                os.fchmod(fd, 0o444)
                if start_writeback:
                    _start_writeback(fd)
            finally:
                os.close(fd)
            files.append(path)
    return files + dirs[::-1]


def _start_writeback(fd: int) -> None:
    libc = _libc()
    if libc is not None and hasattr(libc, "sync_file_range"):
        libc.sync_file_range(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)  # best effort: `flush` still waits for it all


def flush(paths: Iterable[Path]) -> None:
    """Make files and directories (the names in them) durable, all on one file system.

    Many at once (a sync's worth of packages): one syncfs(2) of their file system where the C
    library has it, which writes them all back together and flushes the disk's cache once, instead
    of one journal commit and cache flush per fsync. A few: fsync each (files before the
    directories that name them; pass them in that order)."""
    paths = list(paths)
    if len(paths) >= SYNCFS_FROM and _syncfs(paths[0]):
        return
    for path in paths:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _syncfs(path: Path) -> bool:
    """syncfs(2) the file system holding `path`; False where it is not available."""
    libc = _libc()
    if libc is None or not hasattr(libc, "syncfs"):
        return False
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        if libc.syncfs(fd) != 0:
            import ctypes

            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)
    return True


@functools.cache
def _libc():
    """The C library with its Linux-only calls typed, or None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    if hasattr(libc, "sync_file_range"):
        libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    return libc


def remove_tree(path: Path) -> int:
    """Delete a file or directory tree, even with read-only parts; return the bytes freed."""
    freed = 0

    def on_error(func, failed, exc_info):  # a read-only directory: make it writable and retry once
        exc = exc_info[1]
        parent = os.path.dirname(failed)
        if isinstance(exc, PermissionError):
            os.chmod(parent, stat.S_IRWXU)
            if os.path.isdir(failed) and not os.path.islink(failed):
                os.chmod(failed, stat.S_IRWXU)
            func(failed)
        elif not isinstance(exc, FileNotFoundError):
            raise exc

    if path.is_symlink() or path.is_file():
        freed = path.lstat().st_size
        path.unlink()
        return freed
    if not path.exists():
        return 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                freed += os.lstat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:
                pass
    shutil.rmtree(path, onerror=on_error)  # onexc needs 3.12
    return freed


def write_scratch(writes: list[tuple[Path, bytes, Path]]) -> list[Path]:
    """First half of replacing files atomically: write each `(path, data, scratch)`'s scratch file
    (on the file system of `path`) and create missing parent directories. Returns the directories
    whose entries `rename_scratch` will change, for the caller to flush."""
    changed: list[Path] = []
    for path, data, scratch in writes:
        if not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            changed.append(path.parent.parent)
        changed.append(path.parent)
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    return list(dict.fromkeys(changed))


def rename_scratch(writes: list[tuple[Path, bytes, Path]]) -> None:
    """Second half: rename each scratch file over its path (flush the scratch files first)."""
    for path, _, scratch in writes:
        os.replace(scratch, path)


class Staging:
    """A private staging directory `tmp/<id>/`, alive while this object holds `tmp/<id>.lock`.

    Create it while holding the store lock, so that no cleaner can see the lock file before it
    is locked or the directory before its lock file exists.
    """

    __slots__ = ("path", "_lock_path", "_fd")

    def __init__(self, tmp_dir: Path) -> None:
        ident = secrets.token_hex(8)
        self.path = tmp_dir / ident
        self._lock_path = tmp_dir / f"{ident}{LOCK_SUFFIX}"
        self._fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.path.mkdir()

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            os.rmdir(self.path)  # what a commit leaves: nothing
        except OSError:
            remove_tree(self.path)
        self._lock_path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = -1

    def __enter__(self) -> "Staging":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def clean_stale(tmp_dir: Path) -> list[str]:
    """Delete what dead processes left in tmp/; keep live stagings. Call with the store lock held.

    Returns the names of the entries removed.
    """
    if not tmp_dir.is_dir():
        return []
    entries = set(os.listdir(tmp_dir))
    live: set[str] = set()
    removed: list[str] = []
    for name in sorted(entries):
        if not name.endswith(LOCK_SUFFIX):
            continue
        ident = name[: -len(LOCK_SUFFIX)]
        if _owner_alive(tmp_dir / name):
            live.update((name, ident))
    for name in sorted(entries - live):
        remove_tree(tmp_dir / name)
        removed.append(name)
    return removed


def _owner_alive(lock_path: Path) -> bool:
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_NOFOLLOW)
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symlink is not ours
            return False
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the flock if we took it
    return False
