"""The HTTP index: the same files as the Git tree, strong ETags and 304s, cache headers, artifacts
with Range, refreshing when the index changes, and no way out of the served trees."""

from __future__ import annotations

import hashlib
import os

import httpx
import pygit2
import pytest

from expertpm._index import _gitdb as git


def tree_files(index_dir) -> dict[str, bytes]:
    repo = pygit2.Repository(str(index_dir))
    tree = repo.references["refs/heads/main"].peel(pygit2.Commit).tree
    return {path: repo[oid].data for path, oid in git.walk_files(tree)}


def test_every_index_file_is_served_byte_for_byte(registry, registry_world):
    files = tree_files(registry_world.dir)
    assert "snapshot.json" in files and "3/s/sql" in files
    with httpx.Client(base_url=registry.index_url) as client:
        for path, data in files.items():
            response = client.get(path)
            assert response.status_code == 200, path
            assert response.content == data, path
            assert response.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert registry.requests()[-1] == path


def test_conditional_requests_answer_304(registry):
    with httpx.Client(base_url=registry.index_url) as client:
        first = client.get("snapshot.json")
        etag = first.headers["etag"]
        assert first.headers["cache-control"] == "public, max-age=0, must-revalidate"
        again = client.get("snapshot.json", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        assert client.get("snapshot.json", headers={"If-None-Match": f'"x", W/{etag}'}).status_code == 304
        assert client.get("snapshot.json", headers={"If-None-Match": "*"}).status_code == 304
        assert client.get("snapshot.json", headers={"If-None-Match": '"0000"'}).status_code == 200
        root = client.get("keys/root/1.json")
        assert "immutable" in root.headers["cache-control"]
        assert client.get("3/s/sql").headers["content-type"].startswith("text/plain")
        assert client.get("config.json").headers["content-type"] == "application/json"
        head = client.head("config.json")
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) == len(client.get("config.json").content)


@pytest.mark.parametrize("path", [
    "host/host.json", "../host/host.json", "%2e%2e/host/host.json", "keys/../host/host.json", "HEAD", "config",
    "objects", "refs/heads/main", "artifacts/../host/host.json", "artifacts/%2e%2e/host/host.json",
    "artifacts/sql/../../host/host.json", "artifacts//etc/passwd", "artifacts/.hidden", "%00", "snapshot/../HEAD",
    "artifacts/sql/%2e%2e%2f%2e%2e%2fhost%2fhost.json", "..%2f..%2fetc%2fpasswd", "3/s/sql/..",
])
def test_nothing_outside_the_tree_and_artifacts_is_served(registry, path):
    response = httpx.get(registry.index_url + path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert b"timestamp" not in response.content


def test_a_link_out_of_the_artifact_store_is_not_followed(fresh_registry_world, serve_registry):
    artifacts = fresh_registry_world.dir / "artifacts"
    os.symlink(fresh_registry_world.dir / "host" / "host.json", artifacts / "leak.expert")
    os.symlink(fresh_registry_world.dir / "host", artifacts / "hostdir")
    server = serve_registry(fresh_registry_world.dir)
    assert httpx.get(server.index_url + "artifacts/leak.expert").status_code == 404
    assert httpx.get(server.index_url + "artifacts/hostdir/host.json").status_code == 404


def test_unknown_paths_are_404_as_json_or_html_as_asked(registry):
    as_json = httpx.get(registry.url + "/no/such/page")
    assert as_json.status_code == 404 and as_json.json()["status_code"] == 404
    as_html = httpx.get(registry.url + "/no/such/page", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert as_html.status_code == 404 and as_html.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in as_html.text
    missing = httpx.get(registry.url + "/packages/no-such-expert", headers={"Accept": "text/html"})
    assert missing.status_code == 404 and "no-such-expert" in missing.text
    assert httpx.get(registry.url + "/api/packages/no-such-expert").json()["detail"] == \
        "no package named 'no-such-expert'"
    assert httpx.post(registry.url + "/index/config.json").status_code == 405


def _artifact(registry_world) -> tuple[str, bytes]:
    path = registry_world.dir / "artifacts" / "sql" / "sql-1.1.0.expert"
    return "artifacts/sql/sql-1.1.0.expert", path.read_bytes()


def test_artifacts_support_ranges(registry, registry_world):
    path, data = _artifact(registry_world)
    size = len(data)
    with httpx.Client(base_url=registry.index_url) as client:
        full = client.get(path)
        assert full.status_code == 200 and full.content == data
        assert full.headers["accept-ranges"] == "bytes"
        assert full.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
        assert "immutable" in full.headers["cache-control"]
        part = client.get(path, headers={"Range": "bytes=10-109"})
        assert part.status_code == 206 and part.content == data[10:110]
        assert part.headers["content-range"] == f"bytes 10-109/{size}"
        tail = client.get(path, headers={"Range": "bytes=-50"})
        assert tail.status_code == 206 and tail.content == data[-50:]
        rest = client.get(path, headers={"Range": f"bytes={size - 5}-"})
        assert rest.content == data[-5:]
        clipped = client.get(path, headers={"Range": f"bytes=0-{size * 2}"})
        assert clipped.status_code == 206 and clipped.content == data
        bad = client.get(path, headers={"Range": f"bytes={size}-"})
        assert bad.status_code == 416 and bad.headers["content-range"] == f"bytes */{size}"
        assert client.get(path, headers={"Range": "bytes=5-2"}).status_code == 416
        several = client.get(path, headers={"Range": "bytes=0-1,5-6"})
        assert several.status_code == 200 and several.content == data
        assert client.get(path, headers={"Range": "lines=1-2"}).status_code == 200
        stale = client.get(path, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
        assert stale.status_code == 200 and stale.content == data
        fresh = client.get(path, headers={"Range": "bytes=0-9", "If-Range": full.headers["etag"]})
        assert fresh.status_code == 206 and fresh.content == data[:10]
        assert client.get(path, headers={"If-None-Match": full.headers["etag"]}).status_code == 304
        head = client.head(path)
        assert head.status_code == 200 and int(head.headers["content-length"]) == size


def test_a_new_commit_is_served_at_once_and_whole(fresh_registry_world, serve_registry):
    server = serve_registry(fresh_registry_world.dir)
    with httpx.Client(base_url=server.index_url) as client:
        before = client.get("snapshot.json")
        fresh_registry_world.publish_expert("sql", "1.3.0", seed=11)
        after = client.get("snapshot.json", headers={"If-None-Match": before.headers["etag"]})
        assert after.status_code == 200 and after.content != before.content
        assert b"1.3.0" in client.get("3/s/sql").content
    status = httpx.get(server.url + "/api/status").json()
    assert status["snapshot_version"] == int(after.json()["signed"]["version"])


def test_a_clone_with_a_working_tree_is_served_too(registry_world, tmp_path, serve_registry):
    clone = tmp_path / "clone"
    pygit2.clone_repository(f"file://{registry_world.dir}", str(clone), checkout_branch="main")
    server = serve_registry(clone)
    files = tree_files(registry_world.dir)
    assert httpx.get(server.index_url + "snapshot.json").content == files["snapshot.json"]
    assert httpx.get(server.url + "/api/packages/sql").json()["summary"]["latest"] == "1.1.0"
    assert httpx.get(server.index_url + ".git/config").status_code == 404


def test_a_directory_mirror_is_served_checked_against_its_snapshot(fresh_registry_world, tmp_path, serve_registry):
    """An `index export` (the bundled index is one) is served as well; a file that no longer
    matches the mirror's snapshot is never served (503 until the mirror is consistent again)."""
    from expertpm._index import IndexHost, export_index

    pygit2.init_repository(str(tmp_path))  # like index/ inside the project's own work tree
    mirror = tmp_path / "mirror"
    export_index(IndexHost(fresh_registry_world.dir), mirror)
    files = tree_files(fresh_registry_world.dir)
    server = serve_registry(mirror)
    with httpx.Client(base_url=server.index_url) as client:
        for path, data in files.items():
            if path == "3/s/sql":
                continue
            response = client.get(path)
            assert response.status_code == 200 and response.content == data, path
            assert response.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
        assert client.get("artifacts/sql/sql-1.1.0.expert").status_code == 200
        (mirror / "3" / "s" / "sql").write_bytes(files["3/s/sql"] + b"{}\n")  # rewritten without a new snapshot
        torn = client.get("3/s/sql")
        assert torn.status_code == 503 and torn.headers["retry-after"] == "1"
        sentiment = "se/nt/sentiment"  # served before: its verified bytes are kept, not the torn ones
        (mirror / sentiment).write_bytes(b"torn")
        assert client.get(sentiment).content == files[sentiment]
        fresh_registry_world.publish_expert("sql", "1.3.0", seed=61)
        export_index(IndexHost(fresh_registry_world.dir), mirror)
        assert b"1.3.0" in client.get("3/s/sql").content
    assert httpx.get(server.url + "/api/packages/sql").json()["summary"]["latest"] == "1.3.0"


def test_a_directory_that_is_no_index_is_refused(tmp_path):
    from expertpm import IndexError_
    from expertpm_registry import create_app

    with pytest.raises(IndexError_, match="not an index repository or mirror"):
        create_app(tmp_path)


def test_a_client_can_pin_the_snapshot_it_is_reading(fresh_registry_world, serve_registry):
    server = serve_registry(fresh_registry_world.dir)
    with httpx.Client(base_url=server.index_url) as client:
        old = client.get("snapshot.json")
        pin = hashlib.sha256(old.content).hexdigest()
        assert old.headers["x-expertpm-snapshot"] == pin and old.headers["vary"] == "X-Expertpm-Snapshot"
        old_sql = client.get("3/s/sql").content
        fresh_registry_world.publish_expert("sql", "1.3.0", seed=81)
        current = client.get("3/s/sql")
        assert current.content != old_sql and current.headers["x-expertpm-snapshot"] != pin
        pinned = client.get("3/s/sql", headers={"X-Expertpm-Snapshot": pin})
        assert pinned.content == old_sql and pinned.headers["x-expertpm-snapshot"] == pin
        for unknown in ("0" * 64, "not-a-digest", ""):
            answer = client.get("3/s/sql", headers={"X-Expertpm-Snapshot": unknown})
            assert answer.content == current.content  # an unknown pin gets the current state
