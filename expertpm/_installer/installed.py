"""A project's installed set, and the home's list of projects that use the store.

    <project>/.experts/installed.json     what `sync` last installed for this project (the switch)
    <project>/.experts/.gitignore         "*": the directory is local state, never committed
    <home>/profiles/<id>.json             {"project": root, "packages": {"name@version": digest}}

`installed.json` is replaced atomically (temporary file, fsync, rename, fsync of the directory):
a reader (the runtime, `expertpm list`) sees the old set or the new one, never a mix. It also
records the exact bytes `sync` saw (sha256 of experts.toml and experts.lock, the index
fingerprints), so a later `sync` with nothing changed is answered from this file alone.

The profiles tell `sync` which refs another project still uses, so dropping an expert from one
project never removes it from under another. A project whose directory no longer holds its
`installed.json` no longer counts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .._canonical import sha256_bytes
from .._fs import atomic_write
from .._home import Home

STATE_DIR = ".experts"
STATE_FILE = "installed.json"
FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class InstalledEntry:
    """One package of a project's installed set; `added` when this project's sync created its ref."""

    name: str
    version: str
    kind: str
    digest: str
    added: bool = False

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "kind": self.kind, "digest": self.digest,
                "added": self.added}


@dataclass(frozen=True, slots=True)
class InstalledSet:
    store: str  # the store directory the digests live in
    project_sha256: str  # sha256 of experts.toml as synced
    lock_sha256: str  # sha256 of experts.lock as synced
    indexes: dict  # index name -> fingerprint, as configured when synced
    fresh: bool  # the lock was checked against experts.toml and the indexes
    packages: tuple[InstalledEntry, ...]

    def get(self, name: str) -> InstalledEntry | None:
        return next((p for p in self.packages if p.name == name), None)

    def path_of(self, entry: InstalledEntry) -> Path:
        return Path(self.store) / "packages" / entry.digest

    def to_dict(self) -> dict:
        return {"format_version": FORMAT_VERSION, "store": self.store, "project_sha256": self.project_sha256,
                "lock_sha256": self.lock_sha256, "indexes": dict(sorted(self.indexes.items())), "fresh": self.fresh,
                "packages": [dict(p.to_dict(), path=str(self.path_of(p))) for p in self.packages]}

    @classmethod
    def from_dict(cls, doc: dict) -> "InstalledSet":
        return cls(doc["store"], doc["project_sha256"], doc["lock_sha256"], dict(doc["indexes"]), bool(doc["fresh"]),
                   tuple(InstalledEntry(p["name"], p["version"], p["kind"], p["digest"], bool(p.get("added")))
                         for p in doc["packages"]))

    def is_current(self, store: Path, project_bytes: bytes | None, lock_bytes: bytes | None, *,
                   indexes: dict | None, need_fresh: bool) -> bool:
        """Whether this set is exactly what a sync of these inputs would produce (and still on disk)."""
        if str(store) != self.store or lock_bytes is None or sha256_bytes(lock_bytes) != self.lock_sha256:
            return False
        if need_fresh:
            if not self.fresh or project_bytes is None or sha256_bytes(project_bytes) != self.project_sha256:
                return False
            if indexes is not None and dict(indexes) != self.indexes:
                return False
        for entry in self.packages:
            ref = Path(self.store) / "refs" / entry.name / entry.version
            try:
                if ref.read_text("ascii").strip() != entry.digest:
                    return False
            except OSError:
                return False
            if not (Path(self.store) / "packages" / entry.digest / "manifest.json").is_file():
                return False
        return True


def state_path(project_root: Path) -> Path:
    return Path(project_root) / STATE_DIR / STATE_FILE


def read_installed(project_root: Path) -> InstalledSet | None:
    """The project's installed set, or None (never synced, or the file is unreadable: sync rewrites it)."""
    try:
        doc = json.loads(state_path(project_root).read_text(encoding="utf-8"))
        if doc.get("format_version") != FORMAT_VERSION:
            return None
        return InstalledSet.from_dict(doc)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_installed(project_root: Path, state: InstalledSet) -> None:
    directory = Path(project_root) / STATE_DIR
    directory.mkdir(exist_ok=True)
    ignore = directory / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# local install state of expertpm; never commit it\n*\n")
    data = (json.dumps(state.to_dict(), indent=2, sort_keys=True) + "\n").encode()
    atomic_write(state_path(project_root), data)


# -- the home's profiles ----------------------------------------------------------------------

def profiles_dir(home: Home) -> Path:
    return home.root / "profiles"


def profile_id(project_root: Path) -> str:
    return sha256_bytes(str(Path(project_root).absolute()).encode())[:24]


def write_profile(home: Home, project_root: Path, packages: tuple[InstalledEntry, ...]) -> None:
    directory = profiles_dir(home)
    directory.mkdir(parents=True, exist_ok=True)
    doc = {"project": str(Path(project_root).absolute()), "packages": {p.id: p.digest for p in packages}}
    atomic_write(directory / f"{profile_id(project_root)}.json", (json.dumps(doc, sort_keys=True) + "\n").encode())


def refs_used_elsewhere(home: Home, project_root: Path) -> set[str]:
    """`name@version` of every package another live project installed into this home's store."""
    mine = profile_id(project_root)
    used: set[str] = set()
    directory = profiles_dir(home)
    if not directory.is_dir():
        return used
    for path in directory.glob("*.json"):
        if path.stem == mine:
            continue
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            project = Path(doc["project"])
            packages = doc["packages"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        state = read_installed(project)
        if state is None or state.store != str(home.store_dir):
            continue  # that project is gone (or now installs elsewhere): it holds nothing here
        used.update(packages)
    return used
