"""The shapes the JSON API returns and the HTML pages render, built from one catalog.

Both the API and the web UI call these functions, so a page and its JSON twin always agree.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expertpm._canonical import sha256_bytes
from expertpm._errors import ExpertpmError
from expertpm._index._entries import IndexEntry

from ._catalog import Catalog, Package, artifact_location, local_artifact
from ._checkout import IndexState
from ._search import Hit


@dataclass(frozen=True, slots=True)
class PublisherRef:
    key_id: str
    label: str


@dataclass(frozen=True, slots=True)
class PackageSummary:
    name: str
    kind: str
    description: str
    latest: str
    base: str | None
    eval: dict[str, Any] | None
    publisher: PublisherRef
    all_yanked: bool
    version_count: int
    score: float | None = None


@dataclass(frozen=True, slots=True)
class VersionInfo:
    version: str
    yanked: bool
    published: str
    sha256: str
    size: int
    publisher: PublisherRef
    download: str
    entry: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DependentInfo:
    name: str
    version: str
    range: str
    how: str


@dataclass(frozen=True, slots=True)
class Snippets:
    index_add: str
    install: str
    experts_toml: str


@dataclass(frozen=True, slots=True)
class PackageDetail:
    summary: PackageSummary
    versions: list[VersionInfo]
    selected: VersionInfo
    dependents: list[DependentInfo]
    snippets: Snippets
    manifest: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class PublisherInfo:
    key_id: str
    label: str
    public_key: str
    names: list[str]
    revoked: bool
    delegation_version: int
    packages: list[PackageSummary] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class IndexStatus:
    name: str
    fingerprint: str
    index_url: str
    snapshot_version: int
    created: str
    expires: str
    expired: bool
    root_version: int
    root_threshold: int
    root_keys: list[str]
    commit: str
    packages: int
    publishers: int
    problems: dict[str, str]
    index_add: str


@dataclass(frozen=True, slots=True)
class SearchResult:
    query: str
    total: int
    results: list[PackageSummary]


def _time(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def publisher_ref(catalog: Catalog, key_id: str) -> PublisherRef:
    return PublisherRef(key_id, catalog.publisher_label(key_id))


def base_label(entry: IndexEntry) -> str | None:
    return f"{entry.base['name']} {entry.base['version']}" if entry.base else None


def summary(catalog: Catalog, package: Package, score: float | None = None) -> PackageSummary:
    latest = package.latest
    return PackageSummary(package.name, package.kind, latest.description, latest.version, base_label(latest),
                          dict(latest.eval) if latest.eval else None, publisher_ref(catalog, latest.publisher),
                          package.all_yanked, len(package.versions), score)


def search_result(catalog: Catalog, query: str, hits: list[Hit]) -> SearchResult:
    return SearchResult(query, len(hits), [summary(catalog, h.package, h.score) for h in hits])


def version_info(state: IndexState, catalog: Catalog, entry: IndexEntry, index_url: str) -> VersionInfo:
    location = artifact_location(state, entry)
    download = location if "://" in location else index_url + location
    doc = dict(entry.raw)
    doc.pop("embedding", None)  # hundreds of floats nobody reads on a page
    return VersionInfo(entry.version, entry.yanked, entry.published, entry.sha256, entry.size,
                       publisher_ref(catalog, entry.publisher), download, doc)


def snippets(state: IndexState, entry: IndexEntry, index_url: str) -> Snippets:
    index_name = state.config.name
    add = f"expertpm index add {index_name} {index_url} --fingerprint {state.config.fingerprint}"
    install = f"expertpm install {entry.name}@{entry.version} --index {index_name}"
    if entry.kind == "base":
        toml = f'[base]\nname = "{entry.name}"\nversion = "^{entry.version}"'
    else:
        toml = f'[experts]\n{entry.name} = "^{entry.version}"'
    return Snippets(add, install, toml)


def package_detail(state: IndexState, catalog: Catalog, package: Package, index_url: str,
                   version: str | None = None, manifests: "ManifestCache | None" = None) -> PackageDetail | None:
    chosen = package.version(version) if version else package.latest
    if chosen is None:
        return None
    versions = [version_info(state, catalog, e, index_url) for e in reversed(package.versions)]
    selected = next(v for v in versions if v.version == chosen.version)
    dependents = [DependentInfo(d.name, d.version, d.range, d.how) for d in catalog.dependents.get(package.name, [])]
    manifest = manifests.get(state, chosen) if manifests is not None else None
    return PackageDetail(summary(catalog, package), versions, selected, dependents,
                         snippets(state, chosen, index_url), manifest)


def publisher_info(catalog: Catalog, key_id: str) -> PublisherInfo | None:
    d = catalog.publisher(key_id)
    if d is None:
        return None
    return PublisherInfo(d.key_id, d.label, d.public_key, list(d.names), d.revoked, d.version,
                         [summary(catalog, p) for p in catalog.published_by(key_id)])


def index_status(state: IndexState, catalog: Catalog, index_url: str, now) -> IndexStatus:
    snap, config, root = state.snapshot, state.config, state.root
    return IndexStatus(config.name, config.fingerprint, index_url, snap.version, _time(snap.created),
                       _time(snap.expires), snap.expires <= now, root.version, root.threshold, sorted(root.keys),
                       state.commit, len(catalog.packages), len(catalog.delegations), dict(catalog.problems),
                       f"expertpm index add {config.name} {index_url} --fingerprint {config.fingerprint}")


class ManifestCache:
    """The manifest inside a locally stored artifact, read once per file version."""

    def __init__(self, max_items: int = 1024) -> None:
        self._items: dict[tuple[Path, int, int], dict | None] = {}
        self._lock = threading.Lock()
        self.max_items = max_items

    def get(self, state: IndexState, entry: IndexEntry) -> dict | None:
        from expertpm._package import read_manifest

        path = local_artifact(state, entry)
        if path is None:
            return None
        st = path.stat()
        key = (path, st.st_size, st.st_mtime_ns)
        if key in self._items:
            return self._items[key]
        try:
            _, _, raw = read_manifest(path, check_signature=False)
            # only the manifest the signed line names: a replaced artifact shows nothing
            manifest = json.loads(raw) if sha256_bytes(raw) == entry.manifest_sha256 else None
        except (ExpertpmError, ValueError, OSError):
            manifest = None
        with self._lock:
            if len(self._items) >= self.max_items:
                self._items.clear()
            self._items[key] = manifest
        return manifest
