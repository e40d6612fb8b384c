"""The sparse HTTP client against a real registry: it fetches only what it reads, verifies exactly
as over Git, caches with conditional requests, and refuses every attack a server can make."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from datetime import timedelta

import pytest

from expertpm import IndexError_, IntegrityError, SignatureError
from expertpm._home import Home
from expertpm._index import (
    add_index, install_from_index, open_index, refresh, update_index, verify_index,
)
from expertpm._index._client import load_state
from expertpm._index._layout import package_path, utc_now

SQL, SENTIMENT = package_path("sql"), package_path("sentiment")


def held_paths(home: Home, name: str = "reg") -> set[str]:
    import pygit2

    from expertpm._index import _gitdb as git

    index = open_index(home, name)
    return {p for p, _ in git.walk_files(index.repo[pygit2.Oid(hex=index.state.commit)].tree)}


@pytest.fixture
def served(fresh_registry_world, serve_registry, tmp_path):
    """(world, server, client home) with the client following the registry as `reg`."""
    server = serve_registry(fresh_registry_world.dir)
    home = Home(tmp_path / "elsewhere")
    add_index(home, "reg", server.index_url, fingerprint=fresh_registry_world.fingerprint)
    return fresh_registry_world, server, home


def test_adding_fetches_only_the_signed_metadata(fresh_registry_world, serve_registry, tmp_path):
    server = serve_registry(fresh_registry_world.dir)
    home = Home(tmp_path / "client")
    result = add_index(home, "reg", server.index_url, fingerprint=fresh_registry_world.fingerprint)
    fetched = server.requests()
    assert fetched[0] == "snapshot.json"
    assert {p for p in fetched if not p.startswith("snapshot/")} == {"snapshot.json", "config.json",
                                                                     "keys/root/1.json"}
    assert result.snapshot_version == load_state(home, "reg").snapshot_version
    assert not any(p.startswith("keys/publishers/") or "sql" in p for p in held_paths(home))


def test_reading_a_package_fetches_it_once_with_what_verifies_it(served):
    world, server, home = served
    server.requests(clear=True)
    entries = open_index(home, "reg").entries("sql")
    assert [(e.version, e.yanked) for e in entries] == [("1.0.0", False), ("1.1.0", False), ("1.2.0", True)]
    fetched = server.requests(clear=True)
    assert SQL in fetched and f"keys/publishers/{world.world.publisher.key_id}.json" in fetched
    assert SENTIMENT not in fetched and all(p.startswith(("snapshot/", "keys/", SQL)) for p in fetched)
    assert open_index(home, "reg").entries("sql") == entries
    assert open_index(home, "reg").entries("no-such-package") == []
    assert SQL not in server.requests()  # held now: not fetched again
    verify_index(home, "reg")  # every held line re-verified


def test_an_unchanged_index_costs_one_conditional_request(served):
    world, server, home = served
    open_index(home, "reg").entries("sql")
    server.requests(clear=True)
    result = update_index(home, "reg")
    assert not result.changed
    assert server.requests() == ["snapshot.json"]  # answered 304 (If-None-Match: its sha256)


def test_an_update_refreshes_only_the_files_held(served):
    world, server, home = served
    open_index(home, "reg").entries("sql")
    world.publish_expert("sql", "1.3.0", seed=21)
    world.publish_expert("sentiment", "0.4.0", seed=22)
    server.requests(clear=True)
    result = update_index(home, "reg")
    assert result.changed and result.changed_packages == ("sql",)
    fetched = server.requests()
    assert SQL in fetched and SENTIMENT not in fetched
    index = open_index(home, "reg")
    assert index.entries("sql")[-1].version == "1.3.0"
    assert [e.version for e in index.entries("sentiment")] == ["0.3.0", "0.4.0"]
    assert index.package_names() == ["sentiment", "sql", "sql-explain", "tiny"]


def test_install_and_resolve_over_http(served, tmp_path):
    from expertpm._project import load_project
    from expertpm._provider import IndexSource, resolve_project

    world, server, home = served
    installed = install_from_index(home, "sql-explain")
    assert installed.installed.id == "sql-explain@1.0.0"
    assert installed.entry.sha256 == open_index(home, "reg").entries("sql-explain")[0].sha256
    project = tmp_path / "app" / "experts.toml"
    project.parent.mkdir()
    project.write_text('[project]\nname = "app"\n\n[base]\nname = "tiny"\nversion = "^1"\n\n'
                       '[experts]\nsql-explain = "^1"\n')
    resolution = resolve_project(load_project(project), [IndexSource("reg", open_index(home, "reg"))])
    assert {c.name: str(c.version) for c in resolution.packages} == {
        "sql": "1.1.0", "sql-explain": "1.0.0", "tiny": "1.0.0"}
    assert verify_index(home, "reg").state.snapshot_version == load_state(home, "reg").snapshot_version


@pytest.mark.slow
def test_the_cli_follows_installs_locks_and_syncs_over_http(fresh_registry_world, serve_registry, cli, tmp_path):
    server = serve_registry(fresh_registry_world.dir)
    added = cli("index", "add", "reg", server.index_url, "--fingerprint", fresh_registry_world.fingerprint)
    assert added.returncode == 0, added.stderr
    done = cli("install", "sql@^1.0", "--index", "reg")
    assert done.returncode == 0, done.stderr
    assert "installed sql@1.1.0" in done.stdout
    assert cli("index", "update", "reg").returncode == 0
    app = tmp_path / "app"
    app.mkdir()
    (app / "experts.toml").write_text('[project]\nname = "app"\n\n[base]\nname = "tiny"\nversion = "^1"\n\n'
                                      '[experts]\nsql-explain = "^1"\n')
    locked = cli("lock", cwd=app)
    assert locked.returncode == 0, locked.stderr
    lock = (app / "experts.lock").read_text()
    assert 'name = "sql-explain"' in lock and 'name = "tiny"' in lock and fresh_registry_world.fingerprint in lock
    synced = cli("sync", cwd=app)
    assert synced.returncode == 0, synced.stderr
    listed = cli("list", cwd=app).stdout.splitlines()
    assert len(listed) == 3 and all("index reg" in line and line.endswith("installed") for line in listed)
    wrong = cli("index", "add", "other", server.index_url, "--fingerprint", "ab" * 32)
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr


# -- attacks: a compromised or broken server can withhold data, never forge it ---------------

def assert_kept(home: Home, before) -> None:
    assert load_state(home, "reg") == before


def test_a_tampered_file_is_refused(served):
    world, server, home = served
    before = load_state(home, "reg")
    line = world.world.read(SQL).replace(b"Turns questions", b"Turns answers")
    world.world.raw_commit({SQL: line})  # no new bins or snapshot: the file no longer matches
    with pytest.raises(IndexError_, match="does not match the snapshot"):
        open_index(home, "reg").entries("sql")
    assert_kept(home, before)


def test_a_forged_line_under_a_resigned_snapshot_is_refused(served):
    world, server, home = served
    data = world.world.read(SQL).replace(b"Turns questions", b"Turns answers")
    world.world.resign_commit({SQL: data})  # the host's timestamp key can re-sign bins, not lines
    update_index(home, "reg")  # the new snapshot verifies: the client holds no package file yet
    with pytest.raises(SignatureError, match="bad signature"):
        open_index(home, "reg").entries("sql")
    assert installed_nothing(home)


def installed_nothing(home: Home) -> bool:
    from expertpm._store import Store

    return Store(home).list() == []


def test_a_rewritten_held_file_is_refused_on_update(served):
    world, server, home = served
    open_index(home, "reg").entries("sql")
    before = load_state(home, "reg")
    lines = world.world.read(SQL).splitlines(keepends=True)
    world.world.resign_commit({SQL: b"".join(lines[1:])})  # drop the first published line
    with pytest.raises(IndexError_, match="append-only"):
        update_index(home, "reg")
    assert_kept(home, before)


def test_rollback_is_refused(served):
    world, server, home = served
    old = world.world.head()
    world.publish_expert("sql", "1.3.0", seed=31)
    update_index(home, "reg")
    before = load_state(home, "reg")
    world.world.force_main(old)
    with pytest.raises(IndexError_, match="older than version"):
        update_index(home, "reg")
    assert_kept(home, before)


def test_a_frozen_index_is_refused(fresh_registry_world, serve_registry, tmp_path):
    refresh(fresh_registry_world.dir, expires=utc_now() - timedelta(days=1))
    server = serve_registry(fresh_registry_world.dir)
    home = Home(tmp_path / "client")
    with pytest.raises(IndexError_, match="refusing a frozen index"):
        add_index(home, "reg", server.index_url, fingerprint=fresh_registry_world.fingerprint)
    assert not (home.indexes_dir / "reg").exists()


def test_the_wrong_index_is_refused(served, tmp_path):
    world, server, home = served
    other = Home(tmp_path / "other")
    with pytest.raises(Exception, match="fingerprint|root"):
        add_index(other, "reg", server.index_url, fingerprint="ab" * 32)
    assert not (other.indexes_dir / "reg").exists()


def test_reads_stay_on_the_verified_snapshot_while_the_registry_moves_on(served):
    world, server, home = served
    index = open_index(home, "reg")  # verified at this snapshot; sql not read yet
    before = load_state(home, "reg")
    world.publish_expert("sql", "1.3.0", seed=41)  # the server's sql file and bin change
    assert index.entries("sql")[-1].version == "1.2.0"  # read as of the verified snapshot (pinned)
    assert load_state(home, "reg").snapshot_version == before.snapshot_version
    update_index(home, "reg")
    assert open_index(home, "reg").entries("sql")[-1].version == "1.3.0"
    verify_index(home, "reg")


def serve_directory(directory):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(directory)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/"


def test_a_static_mirror_that_moved_on_is_followed_not_mixed(fresh_registry_world, tmp_path):
    """A plain web server cannot answer from an older snapshot: the client updates (verified),
    then reads."""
    from expertpm._index import IndexHost, export_index

    mirror = tmp_path / "www"
    export_index(IndexHost(fresh_registry_world.dir), mirror)
    httpd, url = serve_directory(mirror)
    try:
        home = Home(tmp_path / "client")
        add_index(home, "web", url, fingerprint=fresh_registry_world.fingerprint)
        first = load_state(home, "web").snapshot_version
        index = open_index(home, "web")
        fresh_registry_world.publish_expert("sql", "1.3.0", seed=41)
        export_index(IndexHost(fresh_registry_world.dir), mirror)
        assert index.entries("sql")[-1].version == "1.3.0"
        assert load_state(home, "web").snapshot_version == first + 1
        verify_index(home, "web")
    finally:
        httpd.shutdown()


def test_a_mirror_mixing_two_snapshots_is_refused(fresh_registry_world, tmp_path):
    """A static mirror whose bin comes from a newer snapshot than its snapshot.json."""
    from expertpm._index import IndexHost, export_index
    from expertpm._index._layout import bin_of, bin_path

    mirror, newer = tmp_path / "mirror", tmp_path / "newer"
    export_index(IndexHost(fresh_registry_world.dir), mirror)
    fresh_registry_world.publish_expert("sql", "1.3.0", seed=51)
    export_index(IndexHost(fresh_registry_world.dir), newer)
    shutil.copy(newer / bin_path(bin_of(SQL)), mirror / bin_path(bin_of(SQL)))
    shutil.copy(newer / SQL, mirror / SQL)
    httpd, url = serve_directory(mirror)
    try:
        home = Home(tmp_path / "client")
        add_index(home, "mirror", url, fingerprint=fresh_registry_world.fingerprint)
        before = load_state(home, "mirror")
        with pytest.raises(IndexError_, match="two different snapshots"):
            open_index(home, "mirror").entries("sql")
        assert load_state(home, "mirror") == before
        (mirror / "snapshot.json").write_bytes(b"x" * (2 << 20))  # endless data
        with pytest.raises(IntegrityError, match="larger than"):
            update_index(home, "mirror")
        assert load_state(home, "mirror") == before
    finally:
        httpd.shutdown()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _race(served, *, honour_pin: bool):
    """Fetch an update while a publish lands right after our snapshot.json was read."""
    import pygit2

    from expertpm._index import DEFAULT_LIMITS
    from expertpm._index._client import REPO_DIR, index_dir
    from expertpm._index._http import HttpFiles, SparseTransport

    world, server, home = served
    open_index(home, "reg").entries("sql")
    previous = load_state(home, "reg")
    world.publish_expert("sql", "1.3.0", seed=71)

    class PublishAfterSnapshot(HttpFiles):
        published = False

        def get(self, path, max_size, *, etag=None, snapshot=None):
            data = super().get(path, max_size, etag=etag, snapshot=snapshot if honour_pin else None)
            if path == "snapshot.json" and not self.published:
                self.published = True
                world.publish_expert("sql", "1.4.0", seed=72)
            return data

    repo = pygit2.Repository(str(index_dir(home, "reg") / REPO_DIR))
    transport = SparseTransport(server.index_url, PublishAfterSnapshot(server.index_url))
    server.requests(clear=True)
    candidate = transport.fetch(repo, pygit2.Oid(hex=previous.commit), DEFAULT_LIMITS)
    verified = transport.verify(repo, candidate, previous, world.fingerprint, now=utc_now(), allow_expired=False,
                                warn=print, limits=DEFAULT_LIMITS)
    assert verified.changed_packages == ("sql",)
    return previous, verified, server.requests()


def test_a_fetch_racing_a_publish_finishes_on_its_pinned_snapshot(served):
    """The registry answers from the snapshot the client is reading (X-Expertpm-Snapshot)."""
    previous, verified, fetched = _race(served, honour_pin=True)
    assert fetched.count("snapshot.json") == 1
    assert verified.state.snapshot_version == previous.snapshot_version + 1


def test_a_fetch_racing_a_publish_on_a_plain_server_starts_over(served):
    """Without pinning, the mismatch is noticed, snapshot.json read again and the fetch redone."""
    previous, verified, fetched = _race(served, honour_pin=False)
    assert fetched.count("snapshot.json") == 3  # the first, the check, the new start
    assert verified.state.snapshot_version == previous.snapshot_version + 2
