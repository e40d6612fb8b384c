"""The client side: adding indexes by fingerprint, incremental updates over Git, a directory
mirror and plain HTTP, the read API the resolver uses."""

import functools
import http.server
import threading

import pygit2
import pytest

from expertpm import IndexError_, NetworkError
from expertpm._index import (
    add_index, configured_indexes, export_index, list_indexes, open_index, remove_index, set_yanked, update_index,
    verify_index,
)
from expertpm._index._client import VERIFIED_REF, load_state


def test_adding_an_index_needs_its_fingerprint(index_world):
    with pytest.raises(IndexError_, match="refusing to trust an index without its root fingerprint"):
        add_index(index_world.client, "main", str(index_world.dir))
    with pytest.raises(IndexError_, match=f"index fingerprint is {index_world.fingerprint}, expected 0000"):
        add_index(index_world.client, "main", str(index_world.dir), fingerprint="0" * 64)
    assert configured_indexes(index_world.client) == []
    assert not (index_world.client.indexes_dir / "main").exists()


def test_trust_on_first_use_is_explicit_and_loud(index_world):
    warnings = []
    add_index(index_world.client, "main", str(index_world.dir), trust_on_first_use=True, warn=warnings.append)
    assert len(warnings) == 1 and f"fingerprint {index_world.fingerprint}" in warnings[0]
    assert list_indexes(index_world.client)[0].fingerprint == index_world.fingerprint


def test_update_is_incremental_and_reports_changed_packages(index_world):
    index_world.publish("sql", "1.0.0")
    first = index_world.add_client()
    assert first.previous_version is None and first.changed_packages == ("sql",)
    index_world.publish("acme-chat", "1.0.0", seed=1)
    index_world.publish("acme-chat", "1.1.0", seed=2)
    result = index_world.update()
    assert (result.previous_version, result.snapshot_version) == (first.snapshot_version, first.snapshot_version + 2)
    assert result.changed_packages == ("acme-chat",)
    again = index_world.update()
    assert not again.changed and again.changed_packages == ()
    index = index_world.open()
    assert index.package_names() == ["acme-chat", "sql"]
    assert index.snapshot_version == result.snapshot_version
    repo = pygit2.Repository(str(index_world.client.indexes_dir / "main" / "repo"))
    assert str(repo.references[VERIFIED_REF].target) == index_world.head()


def test_read_api_for_the_resolver(index_world):
    index_world.publish("sql", "1.0.0")
    index_world.publish("sql", "1.1.0", seed=1, requires={"acme-helper": "^1"})
    set_yanked(index_world.dir, "sql", "1.0.0", index_world.publisher)
    index_world.add_client()
    assert configured_indexes(index_world.client) == ["main"]
    index = open_index(index_world.client, "main")
    assert (index.name, index.fingerprint) == ("main", index_world.fingerprint)
    entries = index.entries("sql")
    assert [(e.version, e.yanked) for e in entries] == [("1.0.0", True), ("1.1.0", False)]
    assert entries[1].requires == {"acme-helper": "^1"}
    assert entries[1].raw["sha256"] == entries[1].sha256
    assert index.entries("nothing-here") == []
    location = index.artifact_location(entries[1])
    assert location == str(index_world.dir / "artifacts" / "sql" / "sql-1.1.0.expert")


def test_a_directory_mirror_is_the_same_signed_data(index_world, tmp_path):
    index_world.publish("sql", "1.0.0")
    mirror = tmp_path / "mirror"
    export_index(index_world.host, mirror)
    index_world.add_client(str(mirror), name="mirror")
    index_world.publish("sql", "1.1.0", seed=1)
    export_index(index_world.host, mirror)
    result = index_world.update("mirror")
    assert result.changed_packages == ("sql",)
    index = index_world.open("mirror")
    assert [e.version for e in index.entries("sql")] == ["1.0.0", "1.1.0"]
    assert index.artifact_location(index.entries("sql")[0]) == str(mirror / "artifacts" / "sql" / "sql-1.0.0.expert")
    assert index_world.update("mirror").changed is False


def test_plain_http_serves_the_same_signed_data(index_world, tmp_path):
    index_world.publish("sql", "1.0.0")
    mirror = tmp_path / "www"
    export_index(index_world.host, mirror)
    handler = functools.partial(_QuietHandler, directory=str(mirror))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        index_world.add_client(url, name="web")
        index_world.publish("sql", "1.1.0", seed=1)
        export_index(index_world.host, mirror)
        result = index_world.update("web")  # sparse: package files are fetched when first read
        assert result.snapshot_version == result.previous_version + 1
        index = index_world.open("web")
        entry = index.entries("sql")[-1]
        assert index.artifact_location(entry) == f"{url}artifacts/sql/sql-1.1.0.expert"
        from expertpm._index import install_entry

        assert install_entry(index_world.client, index, entry).version == "1.1.0"
    finally:
        server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_list_remove_and_unknown_names(index_world):
    index_world.add_client()
    [status] = list_indexes(index_world.client)
    assert status.snapshot_version == load_state(index_world.client, "main").snapshot_version
    with pytest.raises(IndexError_, match="an index named 'main' already exists"):
        index_world.add_client()
    remove_index(index_world.client, "main")
    with pytest.raises(IndexError_, match="no index named 'main'"):
        update_index(index_world.client, "main")


def test_an_unreachable_index_is_a_network_error(index_world, tmp_path):
    with pytest.raises(NetworkError, match="index location does not exist"):
        add_index(index_world.client, "gone", str(tmp_path / "nowhere"), fingerprint=index_world.fingerprint)
    with pytest.raises(NetworkError, match="cannot fetch the index"):
        add_index(index_world.client, "gone", f"file://{tmp_path}/nowhere.git", fingerprint=index_world.fingerprint)


def test_root_rotation_is_followed_by_clients(index_world):
    from expertpm._index import rotate_root

    index_world.publish("sql", "1.0.0")
    index_world.add_client()
    rotate_root(index_world.dir, [index_world.key("new-a")], index_world.root_keys)
    index_world.publish("sql", "1.1.0", seed=1)
    index_world.update()
    index = index_world.open()
    assert [e.version for e in index.entries("sql")] == ["1.0.0", "1.1.0"]
    assert index.state.root_version == 2
    assert verify_index(index_world.client, "main").state.root_version == 2
