"""`expertpm init`, `add` and `remove`: edit experts.toml and keep experts.lock in step.

`add` and `remove` edit the project file (a minimal text edit), re-lock, and put the old text
back if locking fails: a refused `add` changes nothing.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from .._errors import NetworkError, ResolutionError, UserError
from .._home import Home
from .._names import normalize_name, validate_name
from .._project import (
    PROJECT_FILE, BaseSpec, ExpertSpec, add_expert, atomic_write, find_project, load_project, new_project_text,
    remove_expert,
)
from .._versions import VersionRange
from .lock import LockResult, do_lock
from .sources import open_index_sources, project_index_names, update_indexes

_PROJECT_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class InitResult:
    path: Path
    name: str

    def to_dict(self) -> dict:
        return {"path": str(self.path), "name": self.name}


def do_init(start: Path | str = ".", *, name: str | None = None, base: str | None = None,
            indexes: tuple[str, ...] = ()) -> InitResult:
    """Create experts.toml in `start` (refusing to overwrite one)."""
    directory = Path(start).absolute()
    path = directory / PROJECT_FILE
    if path.exists():
        raise UserError(f"{PROJECT_FILE} already exists", where=str(path),
                        hint="edit it, or use `expertpm add NAME` to add experts")
    if not directory.is_dir():
        raise UserError("the directory does not exist", where=str(directory), hint="create it first")
    name = name or (_PROJECT_NAME.sub("-", directory.name).strip("-._") or "project")
    base_spec = None
    if base:
        base_name, _, rng = base.partition("@")
        base_spec = BaseSpec(normalize_name(base_name), rng or "*")
    text = new_project_text(name, base_spec, indexes=tuple(indexes))
    from .._project import parse_project

    parse_project(text, path)  # a bad --name or --base is refused before anything is written
    atomic_write(path, text.encode("utf-8"))
    return InitResult(path, name)


def parse_requirement(text: str) -> tuple[str, str | None]:
    """`NAME` or `NAME@RANGE` -> (name, range or None)."""
    name, at, rng = text.partition("@")
    name = normalize_name(name.strip())
    validate_name(name, where=text)
    if at:
        if not rng.strip():
            raise UserError(f"{text!r} has an empty version range", hint=f"use {name}@^1.2, or just {name}")
        VersionRange.parse(rng, where=text)
        return name, rng.strip()
    return name, None


@dataclass(frozen=True, slots=True)
class AddResult:
    specs: tuple[ExpertSpec, ...]
    locked: LockResult | None

    def to_dict(self) -> dict:
        return {"added": {s.name: s.to_dict() for s in self.specs},
                "lock": self.locked.to_dict() if self.locked else None}


def do_add(start: Path | str, home: Home, requirements: list[str] | str, *, index: str | None = None,
           git: str | None = None, tag: str | None = None, subdir: str | None = None,
           offline: bool = False) -> AddResult:
    """Add (or change) experts in experts.toml, then lock; nothing changes if that fails.

    Without a range, the version the resolver picks is written back as `^VERSION` (cargo-style).
    """
    path = find_project(start)
    project = load_project(path)
    wanted = [parse_requirement(r) for r in ([requirements] if isinstance(requirements, str) else requirements)]
    if git and len(wanted) != 1:
        raise UserError("--git adds exactly one expert",
                        hint="run `expertpm add NAME --git URL --tag TAG` once per expert")
    if not git:
        if not offline:
            update_indexes(home, project_index_names(home, project))
        for name, _ in wanted:
            _require_known(home, project, name, index, offline=offline)
    original = path.read_bytes()
    try:
        specs = []
        for name, rng in wanted:
            spec = ExpertSpec(name, git=git, tag=tag, subdir=subdir) if git else ExpertSpec(name, rng or "*", index)
            add_expert(path, spec)
            specs.append(spec)
        locked = do_lock(path.parent, home, offline=offline, update=False)
        unpinned = [s for s, (_, rng) in zip(specs, wanted) if rng is None and not s.is_git]
        if unpinned:
            for spec in unpinned:
                pinned = ExpertSpec(spec.name, f"^{locked.lock.get(spec.name).version}", spec.index)
                add_expert(path, pinned)
                specs[specs.index(spec)] = pinned
            first = locked
            locked = do_lock(path.parent, home, offline=True, update=False)
            locked = LockResult(locked.path, locked.lock, first.written or locked.written, first.changes)
    except BaseException:
        atomic_write(path, original)
        raise
    return AddResult(tuple(specs), locked)


def _require_known(home: Home, project, name: str, index: str | None, *, offline: bool) -> None:
    sources = open_index_sources(home, offline=offline)
    if index is not None:
        chosen = [s for s in sources if s.name == index]
        if not chosen:
            raise UserError(f"--index {index}: no such index is configured",
                            hint=f"configured: {', '.join(s.name for s in sources)}")
        sources = chosen
    elif project.indexes:
        sources = [s for s in sources if s.name in project.indexes]
    if any(s.versions(name) for s in sources):
        return
    uncached = [s for s in sources if getattr(s, "held_names", None) is not None]
    if offline and uncached:
        raise NetworkError(f"--offline: {name} is not in what this machine has cached of index "
                           f"{uncached[0].name!r}", hint="run the command once with the network")
    known = sorted({n for s in sources for n in s.names()})
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    where = f"index {sources[0].name!r}" if len(sources) == 1 else "the configured indexes"
    raise ResolutionError(f"no expert named {name!r} in {where}",
                          hint=(f"did you mean {' or '.join(repr(c) for c in close)}?" if close else
                                "check the name with `expertpm search`, or run `expertpm index update`"))


@dataclass(frozen=True, slots=True)
class RemoveResult:
    name: str
    locked: LockResult | None

    def to_dict(self) -> dict:
        return {"name": self.name, "lock": self.locked.to_dict() if self.locked else None}


def do_remove(start: Path | str, home: Home, name: str) -> RemoveResult:
    """Remove one expert from experts.toml and re-lock from the indexes as last verified."""
    path = find_project(start)
    original = path.read_bytes()
    project = remove_expert(path, normalize_name(name))
    try:
        locked = do_lock(path.parent, home, offline=True, update=False) if project.experts or project.base else None
        if locked is None:
            locked = _empty_lock(home, path)
    except BaseException:
        atomic_write(path, original)
        raise
    return RemoveResult(name, locked)


def _empty_lock(home: Home, path: Path) -> LockResult:
    from .._lockfile import LOCK_FILE, LockedIndex, build_lock, read_lock, write_lock
    from .lock import lock_changes
    from .sources import index_fingerprints

    project = load_project(path)
    before = read_lock(path.parent)
    recorded = {i.name: i for i in before.indexes} if before is not None else {}
    indexes = [recorded.get(n) or LockedIndex(n, fp, 0) for n, fp in index_fingerprints(home, project).items()]
    lock = build_lock(project, [], indexes)
    written = write_lock(path.parent / LOCK_FILE, lock)
    return LockResult(path.parent / LOCK_FILE, lock, written, lock_changes(before, lock))


__all__ = ["AddResult", "InitResult", "RemoveResult", "do_add", "do_init", "do_remove", "parse_requirement"]
