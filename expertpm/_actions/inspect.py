"""The read commands: `list`, `tree`, `outdated` and `why`, all answered from experts.toml,
experts.lock and the project's installed set (`outdated` also reads the indexes)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from .._errors import UserError
from .._home import Home
from .._lockfile import LOCK_FILE, Lock, LockedPackage, read_lock
from .._project import Project, find_project, load_project


def locked_project(start: Path | str) -> tuple[Project, Lock]:
    project = load_project(find_project(start))
    lock = read_lock(project.root)
    if lock is None:
        raise UserError(f"there is no {LOCK_FILE} next to {project.path.name}", where=str(project.root),
                        hint="run `expertpm lock` first")
    return project, lock


def _roots(project: Project, lock: Lock) -> list[str]:
    names = ([project.base.name] if project.base else []) + [e.name for e in project.experts]
    return [n for n in names if lock.get(n) is not None]


def _source_label(package: LockedPackage, lock: Lock) -> str:
    if package.source.startswith("index+"):
        fingerprint = package.source.removeprefix("index+")
        return next((f"index {i.name}" for i in lock.indexes if i.fingerprint == fingerprint), package.source)
    return package.source


# -- list ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ListRow:
    name: str
    version: str
    kind: str
    source: str
    direct: bool
    installed: bool
    sha256: str

    def to_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "kind": self.kind, "source": self.source,
                "direct": self.direct, "installed": self.installed, "sha256": self.sha256}


def do_list(start: Path | str, home: Home) -> list[ListRow]:
    """Every locked package: version, kind, where it comes from, direct or not, installed or not."""
    from .._installer import installed_digest, read_installed

    project, lock = locked_project(start)
    state = read_installed(project.root)
    synced = {(p.name, p.version, p.digest) for p in state.packages} if state is not None else set()
    direct = set(_roots(project, lock))
    rows = []
    for p in lock.packages:
        installed = (p.name, p.version, p.sha256) in synced and \
            installed_digest(home.store_dir, p.name, p.version) == p.sha256
        rows.append(ListRow(p.name, p.version, p.kind, _source_label(p, lock), p.name in direct, installed, p.sha256))
    return rows


# -- tree ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TreeNode:
    name: str
    version: str
    kind: str
    children: tuple["TreeNode", ...]
    repeated: bool = False  # shown in full elsewhere in the tree

    def to_dict(self) -> dict:
        doc = {"name": self.name, "version": self.version, "kind": self.kind,
               "dependencies": [c.to_dict() for c in self.children]}
        if self.repeated:
            doc["repeated"] = True
        return doc


def do_tree(start: Path | str, home: Home | None = None) -> list[TreeNode]:
    """The dependency tree of the lock, from the project's requirements down (bases last)."""
    project, lock = locked_project(start)
    shown: set[str] = set()

    def node(name: str, path: tuple[str, ...]) -> TreeNode:
        pkg = lock.get(name)
        if pkg is None:  # a damaged lock; the schema check makes this rare
            return TreeNode(name, "?", "?", ())
        if name in shown or name in path:
            return TreeNode(name, pkg.version, pkg.kind, (), repeated=bool(pkg.dependencies))
        shown.add(name)
        deps = sorted(pkg.dependencies, key=lambda d: (lock.get(d) is not None and lock.get(d).kind == "base", d))
        return TreeNode(name, pkg.version, pkg.kind, tuple(node(d, path + (name,)) for d in deps))

    roots = [e.name for e in project.experts if lock.get(e.name) is not None]
    if project.base is not None and lock.get(project.base.name) is not None:
        roots.append(project.base.name)
    return [node(name, ()) for name in roots]


def render_tree(nodes: list[TreeNode]) -> list[str]:
    lines: list[str] = []

    def walk(n: TreeNode, prefix: str, last: bool, top: bool) -> None:
        label = f"{n.name} {n.version}" + (" (base)" if n.kind == "base" else "") + (" (*)" if n.repeated else "")
        lines.append(label if top else f"{prefix}{'└── ' if last else '├── '}{label}")
        child_prefix = "" if top else prefix + ("    " if last else "│   ")
        for i, child in enumerate(n.children):
            walk(child, child_prefix, i == len(n.children) - 1, False)

    for n in nodes:
        walk(n, "", True, True)
    return lines


# -- why ----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class WhyPath:
    """One chain from experts.toml to the package: `chain[0]` is required by the project itself."""

    requirement: str  # how experts.toml asks for chain[0] (`sql = "^1"`, `[base] tiny-qwen3 ^1`)
    chain: tuple[tuple[str, str], ...]  # (name, version) from the project's requirement down

    def to_dict(self) -> dict:
        return {"requirement": self.requirement, "chain": [{"name": n, "version": v} for n, v in self.chain]}

    def describe(self) -> str:
        steps = " → ".join(f"{n} {v}" for n, v in self.chain)
        return f"experts.toml ({self.requirement}) → {steps}"


def do_why(start: Path | str, home: Home | None, name: str) -> list[WhyPath]:
    """Every chain of requirements that brings `name` into the lock."""
    project, lock = locked_project(start)
    if lock.get(name) is None:
        close = difflib.get_close_matches(name, [p.name for p in lock.packages], n=3, cutoff=0.6)
        raise UserError(f"{name} is not in {LOCK_FILE}",
                        hint=f"did you mean {' or '.join(repr(c) for c in close)}?" if close else
                        "see what is locked with `expertpm list`")
    requirements = {e.name: (f'{e.name} = "{e.version}"' if not e.is_git else f"{e.name} from {e.git}")
                    for e in project.experts}
    if project.base is not None:
        requirements.setdefault(project.base.name, f"base {project.base.name} {project.base.version}")
    found: list[WhyPath] = []

    def walk(current: str, chain: tuple[tuple[str, str], ...]) -> None:
        pkg = lock.get(current)
        chain = chain + ((current, pkg.version),)
        if current == name:
            found.append(WhyPath(requirements[chain[0][0]], chain))
            return
        for dep in pkg.dependencies:
            if lock.get(dep) is not None and dep not in (n for n, _ in chain):
                walk(dep, chain)

    for root in _roots(project, lock):
        walk(root, ())
    return sorted(found, key=lambda p: (len(p.chain), [n for n, _ in p.chain]))


# -- outdated -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class OutdatedRow:
    name: str
    locked: str
    wanted: str  # the newest version experts.toml allows (for direct requirements) or the locked one
    latest: str  # the newest non-yanked version in the index
    kind: str
    direct: bool

    def to_dict(self) -> dict:
        return {"name": self.name, "locked": self.locked, "wanted": self.wanted, "latest": self.latest,
                "kind": self.kind, "direct": self.direct}


def do_outdated(start: Path | str, home: Home, *, offline: bool = False) -> list[OutdatedRow]:
    """Locked packages with a newer version in their index (indexes updated first unless offline)."""
    from .._versions import Version, VersionRange
    from .sources import open_index_sources, project_index_names, update_indexes

    project, lock = locked_project(start)
    if not offline:
        update_indexes(home, project_index_names(home, project))
    by_fp = {s.fingerprint: s for s in open_index_sources(home, offline=offline)}
    ranges = {e.name: e.version for e in project.experts if not e.is_git}
    if project.base is not None:
        ranges[project.base.name] = project.base.version
    rows = []
    for pkg in lock.packages:
        source = by_fp.get(pkg.source.removeprefix("index+")) if pkg.source.startswith("index+") else None
        if source is None:
            continue
        versions = []
        for entry in source.versions(pkg.name):
            yanked = entry.get("yanked", False) if isinstance(entry, dict) else entry.yanked
            if not yanked:
                versions.append(Version.parse(entry["version"] if isinstance(entry, dict) else entry.version))
        if not versions:
            continue
        versions.sort()
        latest = versions[-1]
        current = Version.parse(pkg.version)
        wanted = current
        if pkg.name in ranges:
            allowed = [v for v in versions if VersionRange.parse(ranges[pkg.name]).contains(v)]
            wanted = max(allowed + [current])
        if latest > current:
            rows.append(OutdatedRow(pkg.name, pkg.version, str(wanted), str(latest), pkg.kind, pkg.name in ranges))
    return rows
