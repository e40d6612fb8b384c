"""Plan: compare what a lock wants with what the store holds and what the project had.

Each locked package becomes one step:

    install   not in the store: fetch, verify, add (an update when the project had another version)
    reuse     already in the store with the locked digest (another project or `install` put it there)
    keep      already in the project's installed set, unchanged

and each package the project had but the lock no longer lists becomes `remove`: its ref is
dropped when this project's sync added it and no other project uses it (`unref`), otherwise the
project only stops listing it. Planning changes nothing; `apply` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .._errors import StoreError
from .._lockfile import Lock, LockedPackage
from .installed import InstalledSet


@dataclass(frozen=True, slots=True)
class Step:
    action: str  # install | reuse | keep | remove
    name: str
    version: str
    kind: str
    digest: str
    size: int = 0
    previous: str | None = None  # the version the project had before (install/reuse: an update)
    package: LockedPackage | None = None
    unref: bool = False  # remove: also drop the store's ref
    added: bool = False  # keep: this project's sync created the ref

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict:
        doc = {"action": self.action, "name": self.name, "version": self.version, "kind": self.kind,
               "sha256": self.digest}
        if self.previous is not None:
            doc["previous"] = self.previous
        if self.action == "remove":
            doc["unref"] = self.unref
        return doc


@dataclass(frozen=True, slots=True)
class InstallPlan:
    steps: tuple[Step, ...]

    def of(self, *actions: str) -> list[Step]:
        return [s for s in self.steps if s.action in actions]

    @property
    def fetches(self) -> list[Step]:
        return self.of("install")

    @property
    def download_bytes(self) -> int:
        return sum(s.size for s in self.fetches)

    @property
    def changes_anything(self) -> bool:
        return any(s.action != "keep" for s in self.steps)

    def to_dict(self) -> dict:
        return {"steps": [s.to_dict() for s in self.steps]}


def installed_digest(store_root: Path, name: str, version: str) -> str | None:
    """The digest the store's ref name@version points to, when its package directory is there."""
    ref = Path(store_root) / "refs" / name / version
    try:
        digest = ref.read_text("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not (Path(store_root) / "packages" / digest / "manifest.json").is_file():
        return None
    return digest


def _same_unverified_git_package(store_root: Path, digest: str, pkg: LockedPackage) -> bool:
    """A git source without a signed package is packed with a throw-away key wherever it is
    installed, so only its manifest (which lists every file's sha256) identifies it."""
    if not pkg.source.startswith("git+"):
        return False
    from .._canonical import sha256_file

    try:
        return sha256_file(Path(store_root) / "packages" / digest / "manifest.json")[0] == pkg.manifest_sha256
    except OSError:
        return False


def plan_install(lock: Lock, store_root: Path, previous: InstalledSet | None, *,
                 used_elsewhere: set[str] = frozenset()) -> InstallPlan:
    """The steps that make the project's installed set exactly the lock's packages."""
    had = {p.name: p for p in previous.packages} if previous is not None and previous.store == str(store_root) else {}
    steps: list[Step] = []
    conflicts: list[str] = []
    for pkg in lock.packages:
        before = had.get(pkg.name)
        digest = installed_digest(store_root, pkg.name, pkg.version)
        previous_version = before.version if before is not None and before.version != pkg.version else None
        if digest is None:
            steps.append(Step("install", pkg.name, pkg.version, pkg.kind, pkg.sha256, pkg.size or 0,
                              previous_version, pkg))
        elif digest != pkg.sha256 and not _same_unverified_git_package(store_root, digest, pkg):
            conflicts.append(f"{pkg.name}@{pkg.version} (installed {digest[:12]}, locked {pkg.sha256[:12]})")
        elif before is not None and before.version == pkg.version and before.digest == digest:
            steps.append(Step("keep", pkg.name, pkg.version, pkg.kind, digest, pkg.size or 0, None, pkg,
                              added=before.added))
        else:
            steps.append(Step("reuse", pkg.name, pkg.version, pkg.kind, digest, pkg.size or 0, previous_version,
                              pkg))
    if conflicts:
        first = conflicts[0].split(" ", 1)[0]
        raise StoreError(f"the store holds different content than experts.lock for {', '.join(conflicts)}",
                         where=str(store_root),
                         hint=f"if the lock is right, remove the installed copy (expertpm store remove {first}) "
                              "and sync again")
    wanted = {(p.name, p.version) for p in lock.packages}
    for entry in had.values():
        if (entry.name, entry.version) in wanted:
            continue
        unref = entry.added and entry.id not in used_elsewhere
        steps.append(Step("remove", entry.name, entry.version, entry.kind, entry.digest, unref=unref))
    return InstallPlan(tuple(steps))
