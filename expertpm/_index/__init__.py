"""The signed Git index (see docs/index-format.md).

Maintainer side: `init_index`, `delegate`, `revoke`, `rotate_root`, `refresh`, `publish`,
`set_yanked`, `export_index`. Client side: `add_index`, `update_index`, `list_indexes`,
`remove_index`, `verify_index`; the read API `open_index(home, name) -> VerifiedIndex` and
`configured_indexes(home)`; installing: `install_entry(home, index, entry)` and
`install_from_index(home, spec)`; Git sources: `install_git_source(home, spec)`.
"""

from ._client import (
    IndexSettings, IndexStatus, UpdateResult, add_index, configured_indexes, list_indexes, remove_index,
    update_index, verify_index,
)
from ._entries import IndexEntry
from ._host import IndexHost, export_index, load_signers
from ._install import (
    IndexInstall, fetch_artifact, find_entry, install_entry, install_from_index, parse_spec, select_newest,
)
from ._layout import DEFAULT_LIMITS, Limits, package_path
from ._maintain import PublisherKey, delegate, init_index, publisher_key_from, refresh, revoke, rotate_root
from ._publish import Published, publish, set_yanked
from ._read import VerifiedIndex, open_index
from ._transport import (
    ArtifactSource, DefaultArtifactSource, DirReader, FileReader, GitTransport, HttpReader, IndexTransport,
    StaticTransport, transport_for,
)

__all__ = [
    "DEFAULT_LIMITS", "ArtifactSource", "DefaultArtifactSource", "DirReader", "FileReader", "GitTransport",
    "HttpReader", "IndexEntry", "IndexHost", "IndexInstall", "IndexSettings", "IndexStatus", "IndexTransport",
    "Limits", "Published", "PublisherKey", "StaticTransport", "UpdateResult", "VerifiedIndex", "add_index",
    "configured_indexes", "delegate", "export_index", "fetch_artifact", "find_entry", "init_index",
    "install_entry", "install_from_index", "list_indexes", "load_signers", "open_index", "package_path",
    "parse_spec", "publish", "publisher_key_from", "refresh", "remove_index", "revoke", "rotate_root",
    "select_newest", "set_yanked", "transport_for", "update_index", "verify_index",
]
