"""`expertpm sync`: make the store hold what experts.lock says and switch the project to it.

Modes: default (re-lock first when the lock is stale), `locked` (a stale lock is an error),
`frozen` (install exactly the lock, never look at freshness). `offline` opens no connection.

A sync with nothing to do is answered from `.experts/installed.json` alone: it records the
sha256 of experts.toml and experts.lock, the configured index fingerprints and the digests it
installed, and the refs and package directories are checked to still be there.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from .._canonical import sha256_bytes
from .._errors import UserError
from .._home import Home
from .._installer.installed import InstalledSet, read_installed

MODES = ("default", "locked", "frozen")
PROJECT_FILE, LOCK_FILE = "experts.toml", "experts.lock"  # as in _project and _lockfile (kept light here)


@dataclass(frozen=True, slots=True)
class SyncResult:
    root: Path
    plan: object | None  # InstallPlan (None for a no-op answered from installed.json)
    state: InstalledSet | None
    relocked: object | None = None  # LockResult when the default mode had to re-lock
    dry_run: bool = False
    seconds: float = 0.0

    @property
    def noop(self) -> bool:
        return self.plan is None or not self.plan.changes_anything

    def to_dict(self) -> dict:
        doc = {"project": str(self.root), "noop": self.noop, "dry_run": self.dry_run,
               "seconds": round(self.seconds, 3), "steps": self.plan.to_dict()["steps"] if self.plan else []}
        if self.relocked is not None:
            doc["relocked"] = self.relocked.to_dict()
        if self.state is not None:
            doc["installed"] = self.state.to_dict()["packages"]
        return doc


def configured_fingerprints(home: Home) -> dict[str, str]:
    """Every configured index name -> fingerprint, read straight from `index.json` (no Git, no I/O
    beyond those small files: this is on the no-op path)."""
    found = {}
    try:
        names = sorted(p.name for p in home.indexes_dir.iterdir())
    except FileNotFoundError:
        return found
    for name in names:
        try:
            found[name] = json.loads((home.indexes_dir / name / "index.json").read_text())["fingerprint"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _project_root(start: Path | str) -> Path:
    here = Path(start).absolute()
    for directory in (here, *here.parents):
        if (directory / PROJECT_FILE).is_file():
            return directory
    from .._project import find_project

    return find_project(start).parent  # raises the usual "no experts.toml" error


def do_sync(start: Path | str, home: Home, *, mode: str = "default", offline: bool = False,
            dry_run: bool = False, progress=None, concurrency: int | None = None, warn=None) -> SyncResult:
    if mode not in MODES:
        raise ValueError(f"unknown sync mode {mode!r}")
    began = time.perf_counter()
    root = _project_root(start)
    project_bytes = _read_bytes(root / PROJECT_FILE)
    lock_bytes = _read_bytes(root / LOCK_FILE)
    configured = configured_fingerprints(home)
    previous = read_installed(root)
    if previous is not None and not dry_run and previous.is_current(
            home.store_dir, project_bytes, lock_bytes, indexes=configured, need_fresh=mode != "frozen"):
        return SyncResult(root, None, previous, seconds=time.perf_counter() - began)
    return _sync(home, root, mode=mode, offline=offline, dry_run=dry_run, progress=progress,
                 concurrency=concurrency, warn=warn, previous=previous, configured=configured, began=began)


def _sync(home: Home, root: Path, *, mode: str, offline: bool, dry_run: bool, progress, concurrency, warn,
          previous: InstalledSet | None, configured: dict, began: float) -> SyncResult:
    import filelock

    from .._installer import DEFAULT_CONCURRENCY, Inputs, apply_plan, plan_install, refs_used_elsewhere
    from .._lockfile import check_fresh, read_lock, staleness, write_lock
    from .._project import load_project
    from .lock import LockResult, lock_changes, resolve_lock
    from .sources import index_fingerprints

    project = load_project(root / PROJECT_FILE)
    (root / ".experts").mkdir(exist_ok=True)
    with filelock.FileLock(str(root / ".experts" / "sync.lock"), timeout=600):
        lock = read_lock(root)
        relocked = None
        if mode == "frozen":
            if lock is None:
                raise UserError(f"--frozen installs exactly {LOCK_FILE}, and there is none", where=str(root),
                                hint="run `expertpm lock` (and commit the result), or sync without --frozen")
            fresh = staleness(project, lock, index_fingerprints(home, project)) is None
        elif mode == "locked":
            check_fresh(project, lock, index_fingerprints(home, project))
            fresh = True
        else:
            if staleness(project, lock, index_fingerprints(home, project)) is not None:
                new = resolve_lock(home, project, lock, offline=offline, warn=warn)
                written = False if dry_run else write_lock(root / LOCK_FILE, new)
                relocked = LockResult(root / LOCK_FILE, new, written, lock_changes(lock, new))
                lock = new
            fresh = True
        plan = plan_install(lock, home.store_dir, previous, used_elsewhere=refs_used_elsewhere(home, root))
        if dry_run:
            return SyncResult(root, plan, previous, relocked, True, time.perf_counter() - began)
        lock_bytes = (root / LOCK_FILE).read_bytes()
        inputs = Inputs(sha256_bytes((root / PROJECT_FILE).read_bytes()), sha256_bytes(lock_bytes),
                        dict(configured), fresh)
        state = apply_plan(home, plan, project_root=root, inputs=inputs, offline=offline, progress=progress,
                           concurrency=concurrency or DEFAULT_CONCURRENCY)
    return SyncResult(root, plan, state, relocked, False, time.perf_counter() - began)
