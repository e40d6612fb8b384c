"""`expertpm lock`: resolve experts.toml against the indexes and write experts.lock."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Collection

from .._errors import UserError
from .._home import Home
from .._lockfile import LOCK_FILE, Lock, check_fresh, read_lock, write_lock
from .._project import Project, find_project, load_project
from .sources import fetch_git_sources, index_fingerprints, open_index_sources, project_index_names, update_indexes


@dataclass(frozen=True, slots=True)
class LockChange:
    name: str
    old: str | None
    new: str | None

    def to_dict(self) -> dict:
        return {"name": self.name, "old": self.old, "new": self.new}

    def describe(self) -> str:
        if self.old is None:
            return f"+ {self.name} {self.new}"
        if self.new is None:
            return f"- {self.name} {self.old}"
        return f"~ {self.name} {self.old} -> {self.new}"


@dataclass(frozen=True, slots=True)
class LockResult:
    path: Path
    lock: Lock
    written: bool  # False when the file already held exactly these bytes (or for --check)
    changes: tuple[LockChange, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        return {"path": str(self.path), "written": self.written, "changes": [c.to_dict() for c in self.changes],
                "packages": {p.name: p.version for p in self.lock.packages}}


def lock_changes(old: Lock | None, new: Lock) -> tuple[LockChange, ...]:
    before = old.versions if old is not None else {}
    after = new.versions
    return tuple(LockChange(name, before.get(name), after.get(name))
                 for name in sorted(set(before) | set(after)) if before.get(name) != after.get(name))


def do_lock(start: Path | str, home: Home, *, check: bool = False, upgrade: bool = False,
            upgrade_packages: Collection[str] = (), offline: bool = False, update: bool = True,
            warn: Callable[[str], None] | None = None, reporter=None) -> LockResult:
    """Resolve the project at (or above) `start` and write its lock.

    `check`: only verify that experts.lock is fresh (no network; LockOutOfDate otherwise).
    `upgrade`: ignore every locked version; `upgrade_packages`: only those. `offline`: resolve
    from the last verified index states; otherwise the project's indexes are updated first.
    """
    project = load_project(find_project(start))
    path = project.root / LOCK_FILE
    existing = read_lock(project.root)
    if check:
        lock = check_fresh(project, existing, index_fingerprints(home, project))
        return LockResult(path, lock, False)
    _check_upgrade_names(project, existing, upgrade_packages)
    lock = resolve_lock(home, project, existing, upgrade=upgrade, upgrade_packages=upgrade_packages,
                        offline=offline, update=update, warn=warn, reporter=reporter)
    written = write_lock(path, lock)
    return LockResult(path, lock, written, lock_changes(existing, lock))


def resolve_lock(home: Home, project: Project, existing: Lock | None, *, upgrade: bool = False,
                 upgrade_packages: Collection[str] = (), offline: bool = False, update: bool = True,
                 warn: Callable[[str], None] | None = None, reporter=None) -> Lock:
    """The lock `project` resolves to now (nothing written)."""
    from .._provider import resolve_project

    if update and not offline:
        update_indexes(home, project_index_names(home, project), warn=warn)
    sources = open_index_sources(home, offline=offline)
    git_sources = {name: fetched.source for name, fetched in
                   fetch_git_sources(home, project, offline=offline, warn=warn or (lambda m: None)).items()}
    locked = existing.versions if existing is not None else None
    wanted: bool | Collection[str] = True if upgrade else set(upgrade_packages)
    resolution = resolve_project(project, sources, locked=locked, upgrade=wanted, git_sources=git_sources or None,
                                 reporter=reporter)
    return resolution.to_lock(project)


def _check_upgrade_names(project: Project, existing: Lock | None, names: Collection[str]) -> None:
    known = {e.name for e in project.experts} | ({project.base.name} if project.base else set())
    if existing is not None:
        known |= {p.name for p in existing.packages}
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
            raise UserError(f"--upgrade-package {name}: {name} is neither in experts.toml nor in {LOCK_FILE}",
                            hint=f"did you mean {close[0]!r}?" if close else "see `expertpm list`")
