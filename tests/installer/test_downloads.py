"""Installing over HTTP from a real server on 127.0.0.1: downloads resume with a Range request after
an interruption, a failed download leaves the store unchanged and resumes on the next run, the
signed size bounds every read, and `--offline` installs from the cache without opening a socket."""

from __future__ import annotations

import pytest

from expertpm._actions import do_add, do_init, do_lock, do_sync
from expertpm._errors import IntegrityError, NetworkError
from expertpm._installer import read_installed
from expertpm._store import Store
from expertpm_testing.project import run_without_network, serve_index


@pytest.fixture
def http_world(project_world, serve_dir):
    """The catalogue served over HTTP (index files and artifacts); the client follows that URL."""
    world = project_world
    world.publish_expert("tool-call", "1.1.0", size=200_000)  # incompressible: a download worth cutting
    world.server = serve_index(world, serve_dir)
    world.follow(url=world.server.url)
    do_init(world.project)
    do_add(world.project, world.home, ["tool-call"])
    return world


ARTIFACT = "artifacts/tool-call/tool-call-1.1.0.expert"


def downloads(world) -> list:
    return [r for (p, r) in world.server.requests if p == ARTIFACT]


def test_an_interrupted_download_resumes_with_a_range_request(http_world):
    world = http_world
    world.server.cut[ARTIFACT] = 50_000
    do_sync(world.project, world.home)
    assert downloads(world) == [None, "bytes=50000-"]
    lock = do_lock(world.project, world.home, check=True).lock
    assert Store(world.home).get("tool-call", "1.1.0").digest == lock.get("tool-call").sha256
    assert (world.home.cache_dir / "artifacts" / f"{lock.get('tool-call').sha256}.expert").is_file()
    assert list((world.home.cache_dir / "downloads").glob("*.part")) == []


def test_a_failed_download_changes_nothing_and_the_next_run_resumes(http_world):
    world = http_world
    world.server.cut[ARTIFACT] = 60_000
    world.server.fail[ARTIFACT] = 503  # after the cut, the server stays down
    with pytest.raises(NetworkError) as info:
        do_sync(world.project, world.home)
    url = f"{world.server.url}/{ARTIFACT}"
    assert str(info.value) == (f"{url}: HTTP 503 downloading tool-call@1.1.0 — is index 'default' serving its "
                               "artifacts?")
    assert Store(world.home).list() == [] and read_installed(world.project) is None
    sha = do_lock(world.project, world.home, check=True).lock.get("tool-call").sha256
    part = world.home.cache_dir / "downloads" / f"{sha}.part"
    assert part.stat().st_size == 60_000

    del world.server.fail[ARTIFACT]
    world.server.requests.clear()
    do_sync(world.project, world.home)
    assert downloads(world) == ["bytes=60000-"]
    assert Store(world.home).get("tool-call", "1.1.0").digest == sha


def test_bytes_beyond_the_signed_size_are_refused(http_world):
    world = http_world
    served = world.server.root / ARTIFACT
    served.write_bytes(served.read_bytes() + b"\0" * 4096)  # endless data, as far as the client knows
    with pytest.raises(IntegrityError) as info:
        do_sync(world.project, world.home)
    size = do_lock(world.project, world.home, check=True).lock.get("tool-call").size
    assert str(info.value) == (f"{world.server.url}/{ARTIFACT}: the artifact of tool-call@1.1.0 is larger than the "
                               f"{size} bytes its signed index line declares — refusing endless data; nothing was "
                               "installed")
    assert Store(world.home).list() == []
    assert list((world.home.cache_dir / "downloads").glob("*.part")) == []


def test_offline_installs_from_the_cache_without_opening_a_socket(http_world):
    world = http_world
    do_sync(world.project, world.home)
    store = Store(world.home)
    for package in store.list():
        store.remove(package.name, package.version)
    store.gc()

    proc = run_without_network(world, "sync", "--offline")
    assert proc.returncode == 0, proc.stderr
    assert "NETWORK ATTEMPT" not in proc.stderr
    assert {p.id for p in store.list()} == {"tiny-qwen3@1.0.0", "tool-call@1.1.0"}
    assert run_without_network(world, "lock", "--offline").returncode == 0


def test_offline_with_nothing_cached_is_a_clear_error(http_world):
    world = http_world
    proc = run_without_network(world, "sync", "--offline")
    assert proc.returncode == 1, proc.stderr
    assert "NETWORK ATTEMPT" not in proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("error: --offline: ") and "is not in the download cache and has no local copy" in line
    assert line.endswith("— sync once with the network, or bring it over with `expertpm import` or a mirror "
                         "(`expertpm index add NAME DIR`)")
    proc = run_without_network(world, "add", "--offline", "cypher")
    assert proc.returncode == 1 and "NETWORK ATTEMPT" not in proc.stderr
    assert proc.stderr.strip().endswith("error: --offline: cypher is not in what this machine has cached of index "
                                        "'default' — run the command once with the network")
    assert Store(world.home).list() == []


def test_offline_never_fetches_a_package_file_this_machine_has_not_read(http_world, tmp_path):
    from expertpm._home import Home

    world = http_world
    other = Home(tmp_path / "machine-b")
    world.follow(url=world.server.url, home=other)  # a sparse client: holds the snapshot and keys, no package
    proc = run_without_network(world, "sync", "--frozen", "--offline", home=other)
    assert proc.returncode == 1 and "NETWORK ATTEMPT" not in proc.stderr, proc.stderr
    assert proc.stderr.strip() == (
        "error: --offline: tiny-qwen3@1.0.0 is not in what this machine has cached of index 'default' — sync once "
        "with the network, or bring the packages over with `expertpm import` or a mirror (`expertpm index add NAME "
        "DIR`)")
    assert Store(other).list() == []
