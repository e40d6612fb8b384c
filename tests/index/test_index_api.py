"""The index package's public API is deliberate: pin the export list and the read API the
resolver uses."""

import dataclasses

import expertpm._index as index_api
from expertpm._index import IndexEntry, VerifiedIndex


def test_exported_members():
    assert sorted(index_api.__all__) == sorted([
        "DEFAULT_LIMITS", "ArtifactSource", "DefaultArtifactSource", "DirReader", "FileReader", "GitTransport",
        "HttpReader", "IndexEntry", "IndexHost", "IndexInstall", "IndexSettings", "IndexStatus", "IndexTransport",
        "Limits", "Published", "PublisherKey", "StaticTransport", "UpdateResult", "VerifiedIndex", "add_index",
        "configured_indexes", "delegate", "export_index", "fetch_artifact", "find_entry", "init_index",
        "install_entry", "install_from_index", "list_indexes", "load_signers", "open_index", "package_path",
        "parse_spec", "publish", "publisher_key_from", "refresh", "remove_index", "revoke", "rotate_root",
        "select_newest", "set_yanked", "transport_for", "update_index", "verify_index",
    ])
    for name in index_api.__all__:
        assert getattr(index_api, name) is not None


def test_read_api_shape():
    for attribute in ("name", "fingerprint", "snapshot_version", "entries", "package_names", "artifact_location"):
        assert hasattr(VerifiedIndex, attribute)
    fields = {f.name for f in dataclasses.fields(IndexEntry)}
    assert {"name", "version", "kind", "sha256", "size", "manifest_sha256", "description", "license", "base",
            "model", "requires", "incompatible_with", "routing", "eval", "embedding", "published", "publisher",
            "signature", "yanked", "raw"} == fields
    assert IndexEntry.__dataclass_params__.frozen
