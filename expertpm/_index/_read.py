"""The read API over an index's last verified state (what the resolver and `info` use).

    index = open_index(home, "default")
    index.entries("sql-expert")      # verified IndexEntry list, oldest version first, with .yanked
    index.package_names()
    index.artifact_location(entry)   # a local path or URL

Every line is verified (signature, delegation, revocation, schema) when its package is first
read; the result is cached for the life of the object.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from .._errors import IndexError_
from .._home import Home
from .._names import validate_name
from . import _gitdb as git
from ._client import (
    REPO_DIR, IndexSettings, artifact_base_of, expires_of, index_dir, load_settings, load_state,
)
from ._entries import IndexEntry, read_package_file
from ._http import is_sparse_url, open_sparse_index
from ._layout import (
    CONFIG_FILE, DEFAULT_LIMITS, fill_template, package_path, root_path, utc_now,
)
from ._metadata import Delegation, IndexConfig, load_config, load_root
from ._verify import TrustedState, _Tree, load_delegations

if TYPE_CHECKING:  # pygit2 costs ~60 ms to import: loaded where a repository is opened
    import pygit2


class VerifiedIndex:
    """One index as last verified by `index update`."""

    def __init__(self, settings: IndexSettings, state: TrustedState, repo: pygit2.Repository) -> None:
        import pygit2

        self.settings, self.state, self.repo = settings, state, repo
        self._tree = _Tree(repo, repo[pygit2.Oid(hex=state.commit)].tree, DEFAULT_LIMITS)
        self._delegations: dict[str, Delegation] | None = None
        self._config: IndexConfig | None = None
        self._entries: dict[str, list[IndexEntry]] = {}

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def fingerprint(self) -> str:
        return self.settings.fingerprint

    @property
    def url(self) -> str:
        return self.settings.url

    @property
    def snapshot_version(self) -> int:
        return self.state.snapshot_version

    @property
    def expires(self) -> datetime:
        return expires_of(self.state)

    @property
    def expired(self) -> bool:
        return self.expires <= utc_now()

    @property
    def config(self) -> IndexConfig:
        if self._config is None:
            self._config = load_config(self._tree.need(CONFIG_FILE, DEFAULT_LIMITS.max_metadata_bytes),
                                       where=CONFIG_FILE)
        return self._config

    def delegations(self) -> dict[str, Delegation]:
        if self._delegations is None:
            root_file = root_path(self.state.root_version)
            root = load_root(self._tree.need(root_file, DEFAULT_LIMITS.max_metadata_bytes), where=root_file)
            self._delegations = load_delegations(self._tree, root, self.fingerprint)
        return self._delegations

    def entries(self, package_name: str) -> list[IndexEntry]:
        """Verified entries of a package, oldest version first; [] if the index does not have it."""
        cached = self._entries.get(package_name)
        if cached is not None:
            return list(cached)
        validate_name(package_name)
        path = package_path(package_name)
        data = self._tree.read(path, DEFAULT_LIMITS.max_package_file_bytes)
        entries = [] if data is None else read_package_file(
            data, package_name, self.delegations(), where=f"{self.name}:{path}")
        entries.sort(key=lambda e: e.parsed_version)
        self._entries[package_name] = entries
        return list(entries)

    def package_names(self) -> list[str]:
        return sorted(git.package_names(self.repo, self._tree.tree))

    def artifact_location(self, entry: IndexEntry) -> str:
        """The URL or local path of an entry's `.expert` artifact."""
        relative = fill_template(self.config.artifact_url, entry)
        if "://" in relative:
            return relative
        base = artifact_base_of(self.settings)
        if "://" in base:
            return urljoin(base.rstrip("/") + "/", relative)
        return str(Path(base) / relative)


def open_index(home: Home, name: str) -> VerifiedIndex:
    """The last verified state of the index added as `name`."""
    settings = load_settings(home, name)
    state = load_state(home, name)
    if state is None:
        raise IndexError_(f"index {name!r} has no verified state yet", hint=f"run: expertpm index update {name}")
    repo = git.open_repo(index_dir(home, name) / REPO_DIR)
    if is_sparse_url(settings.url):  # plain HTTP: package files are fetched when first read
        return open_sparse_index(settings, state, repo, home)
    return VerifiedIndex(settings, state, repo)
