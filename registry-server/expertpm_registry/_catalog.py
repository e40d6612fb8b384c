"""What the web UI and the JSON API show: the verified packages of one index state.

A catalog is built from one `IndexState` (one commit): the publisher delegations checked against
the current root, every package file read with `read_package_file` (each line's signature,
delegation, revocation and yank chain verified, exactly as a client does), the newest usable
version of each package and who depends on it. Package files are cached by blob id (and the
delegations they were checked against), so a new commit re-reads only the files it changed.
A package file that fails verification is left out and its error kept for the status page.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from expertpm._canonical import sha256_bytes
from expertpm._errors import ExpertpmError
from expertpm._index._entries import IndexEntry, read_package_file
from expertpm._index._layout import PUBLISHERS_DIR, fill_template
from expertpm._index._metadata import Delegation, load_delegation

from ._checkout import IndexState

LOG = logging.getLogger("expertpm.registry")


@dataclass(frozen=True, slots=True)
class Package:
    name: str
    versions: tuple[IndexEntry, ...]  # oldest first, yanked ones included

    @property
    def latest(self) -> IndexEntry:
        """The newest version that is not yanked (the newest of all if every version is)."""
        usable = [e for e in self.versions if not e.yanked]
        return (usable or list(self.versions))[-1]

    @property
    def kind(self) -> str:
        return self.latest.kind

    @property
    def all_yanked(self) -> bool:
        return all(e.yanked for e in self.versions)

    def version(self, text: str) -> IndexEntry | None:
        return next((e for e in self.versions if e.version == text), None)


@dataclass(frozen=True, slots=True)
class Dependent:
    name: str
    version: str
    range: str
    how: str  # "requires" | "base" | "incompatible_with"


@dataclass
class Catalog:
    commit: str
    packages: dict[str, Package]
    delegations: dict[str, Delegation]
    dependents: dict[str, list[Dependent]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # package name -> why it is left out

    def publisher(self, key_id: str) -> Delegation | None:
        return self.delegations.get(key_id)

    def publisher_label(self, key_id: str) -> str:
        d = self.delegations.get(key_id)
        return d.label if d is not None else key_id[:16]

    def published_by(self, key_id: str) -> list[Package]:
        return [p for p in self.packages.values() if any(e.publisher == key_id for e in p.versions)]


class CatalogCache:
    """The catalog of the latest state asked for, and package files by blob id."""

    def __init__(self) -> None:
        self._files: dict[tuple[str, str], tuple[tuple[IndexEntry, ...] | None, str | None]] = {}
        self._catalog: Catalog | None = None
        self._lock = threading.Lock()

    def get(self, state: IndexState) -> Catalog:
        catalog = self._catalog
        if catalog is not None and catalog.commit == state.commit:
            return catalog
        with self._lock:
            if self._catalog is None or self._catalog.commit != state.commit:
                self._catalog = self._build(state)
            return self._catalog

    def _build(self, state: IndexState) -> Catalog:
        root, fingerprint = state.root, state.config.fingerprint
        delegations: dict[str, Delegation] = {}
        for path, key in state.files_under(PUBLISHERS_DIR):
            try:
                d = load_delegation(state.read(path, key), root, fingerprint, where=path)
            except ExpertpmError as exc:
                LOG.warning("skipping delegation %s: %s", path, exc)
                continue
            delegations[d.key_id] = d
        key = sha256_bytes(repr(sorted((k, d.version, d.revoked) for k, d in delegations.items())).encode())
        packages, problems, seen = {}, {}, {}
        for name, path, content in state.package_files():
            cache_key = (str(content), key)
            cached = self._files.get(cache_key)
            if cached is None:
                cached = _read(state, name, path, content, delegations)
            seen[cache_key] = cached
            entries, problem = cached
            if problem is not None:
                problems[name] = problem
            elif entries:
                packages[name] = Package(name, entries)
        self._files = seen
        catalog = Catalog(state.commit, dict(sorted(packages.items())), delegations, problems=problems)
        catalog.dependents = _dependents(catalog.packages)
        return catalog


def _read(state: IndexState, name: str, path: str, content, delegations: Mapping[str, Delegation]):
    try:
        data = state.read(path, content)
        entries = read_package_file(data, name, delegations, where=path)
    except ExpertpmError as exc:
        LOG.warning("leaving out package %s: %s", name, exc)
        return None, str(exc)
    return tuple(sorted(entries, key=lambda e: e.parsed_version)), None


def _dependents(packages: Mapping[str, Package]) -> dict[str, list[Dependent]]:
    """Who depends on each package, judged by every package's newest usable version."""
    found: dict[str, list[Dependent]] = {}
    for package in packages.values():
        latest = package.latest
        if latest.base:
            found.setdefault(latest.base["name"], []).append(
                Dependent(package.name, latest.version, latest.base["version"], "base"))
        for target, rng in latest.requires.items():
            found.setdefault(target, []).append(Dependent(package.name, latest.version, rng, "requires"))
        for target, rng in latest.incompatible_with.items():
            found.setdefault(target, []).append(Dependent(package.name, latest.version, rng, "incompatible_with"))
    return {k: sorted(v, key=lambda d: d.name) for k, v in found.items()}


def artifact_location(state: IndexState, entry: IndexEntry) -> str:
    """The artifact's path relative to the index URL (`artifacts/...`), or its absolute URL."""
    return fill_template(state.config.artifact_url, entry)


def local_artifact(state: IndexState, entry: IndexEntry) -> Path | None:
    """The artifact file on this server's disk, if the index keeps it here."""
    location = artifact_location(state, entry)
    if "://" in location or not location.startswith("artifacts/"):
        return None
    path = state.checkout.artifacts_dir / location.removeprefix("artifacts/")
    return path if path.is_file() else None
