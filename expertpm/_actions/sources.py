"""Where a project's candidates come from: its indexes (updated first unless offline) and its git
sources (fetched and installed, then offered to the resolver as one-package sources).

Offline, nothing here opens a connection: indexes are read in their last verified state, and an
HTTP index read sparsely offers only the package files it already holds (any other name is
"not cached", never fetched).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .._errors import IndexError_, NetworkError, ResolutionError
from .._home import Home
from .._project import Project


def configured(home: Home) -> list[str]:
    from .._index import configured_indexes

    return configured_indexes(home)


def project_index_names(home: Home, project: Project) -> list[str]:
    """The indexes `project` resolves from, in order (as `_provider.project_sources` orders them)."""
    names = configured(home)
    ordered = [n for n in project.indexes if n in names] if project.indexes else list(names)
    for spec in project.experts:
        if spec.index and spec.index in names and spec.index not in ordered:
            ordered.append(spec.index)
    return ordered


def index_fingerprints(home: Home, project: Project) -> dict[str, str]:
    """index name -> root fingerprint for the project's indexes (reads only `index.json` files)."""
    from .._index._client import load_settings

    return {name: load_settings(home, name).fingerprint for name in project_index_names(home, project)}


def update_indexes(home: Home, names: list[str], *, warn: Callable[[str], None] | None = None) -> None:
    """Fetch and verify each index; an unreachable one is a NetworkError that changed nothing."""
    from .._index import update_index

    for name in names:
        try:
            if warn is None:
                update_index(home, name)
            else:
                update_index(home, name, warn=warn)
        except NetworkError as exc:
            raise NetworkError(f"index {name!r} is unreachable: {exc.message}", where=exc.where,
                               hint="nothing was changed; check the network, or pass --offline to use the "
                                    "last verified state of the index") from exc


def open_index_sources(home: Home, *, offline: bool) -> list:
    """Every configured index as a resolver source (its last verified state)."""
    from .._index import open_index
    from .._provider import IndexSource

    names = configured(home)
    if not names:
        raise ResolutionError("no index is configured",
                              hint="follow one: expertpm index add NAME URL_OR_DIR --fingerprint FP")
    sources = []
    for name in names:
        try:
            index = open_index(home, name)
        except IndexError_ as exc:
            if offline:
                raise IndexError_(f"--offline: nothing is cached for index {name!r} ({exc.message})",
                                  hint=f"run `expertpm index update {name}` once with the network") from exc
            raise
        sources.append(OfflineIndexSource(name, index) if offline and _is_sparse(index) else IndexSource(name, index))
    return sources


def _is_sparse(index) -> bool:
    from .._index._http import is_sparse_url

    return is_sparse_url(index.url)


class OfflineIndexSource:
    """A sparse (HTTP) index read offline: only the package files its verified commit holds."""

    def __init__(self, name: str, index) -> None:
        from .._provider import IndexSource

        self._inner = IndexSource(name, index)
        self.name, self.index = name, index
        self.fingerprint, self.snapshot_version = index.fingerprint, index.snapshot_version
        self.lock_source = self._inner.lock_source
        self._held: set[str] | None = None

    def held_names(self) -> set[str]:
        if self._held is None:
            from .._installer.fetch import held_package_names

            self._held = held_package_names(self.index) or set()
        return self._held

    def versions(self, name: str) -> list:
        return self._inner.versions(name) if name in self.held_names() else []

    def names(self) -> list[str]:
        return sorted(self.held_names())


# -- git sources ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class GitFetched:
    name: str
    source: object  # a MemorySource with the one fetched package
    verified: bool


def git_spec_string(spec) -> str:
    ref = spec.tag or spec.rev
    if not ref:
        raise ResolutionError(f"the git source of {spec.name} names no tag or rev", where="experts.toml",
                              hint=f'add tag = "v1.0.0" to experts.{spec.name}')
    return f"git+{spec.git}@{ref}" + (f"#{spec.subdir}" if spec.subdir else "")


def fetch_git_sources(home: Home, project: Project, *, offline: bool,
                      warn: Callable[[str], None] = lambda message: None) -> dict:
    """Fetch every git-sourced expert of the project, install it, and offer it as a Source."""
    from .._canonical import sha256_file
    from .._index._source import install_git_source
    from .._provider import MemorySource

    found: dict = {}
    for spec in project.experts:
        if not spec.is_git:
            continue
        text = git_spec_string(spec)
        if offline:
            raise NetworkError(f"--offline: {spec.name} comes from {text}, which cannot be fetched offline",
                               hint="lock once with the network; `sync --offline` then installs from the lock")
        result = install_git_source(home, text, warn=warn)
        installed = result.installed
        if installed.name != spec.name:
            raise ResolutionError(f"{text} holds the package {installed.name!r}, not {spec.name!r}",
                                  where=str(project.path), hint=f"rename the entry to {installed.name}")
        manifest = installed.manifest
        doc = {"name": installed.name, "version": installed.version, "kind": installed.kind,
               "sha256": installed.digest, "manifest_sha256": sha256_file(Path(installed.path) / "manifest.json")[0],
               "requires": dict(manifest.get("requires") or {}),
               "incompatible_with": dict(manifest.get("incompatible_with") or {}),
               "description": manifest.get("description", "")}
        if installed.kind == "expert":
            doc["base"] = dict(manifest.get("base"))
        else:
            doc["model"] = dict(manifest.get("model"))
        if result.verified:
            doc["publisher"] = result.signer
        found[spec.name] = GitFetched(spec.name, MemorySource(f"git:{spec.name}", "", (doc,), 0, text),
                                      result.verified)
    return found
