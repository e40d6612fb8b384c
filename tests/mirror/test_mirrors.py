"""Offline mirrors and export/import: a downstream project locks on one machine, and another
machine (another EXPERTPM_HOME) with only a mirror directory and no network gets byte-identical
experts with `sync --frozen`. Mirrors verify from scratch; a tampered one is refused; updates are
atomic."""

from __future__ import annotations

import json
import shutil

import pytest

from expertpm._errors import IndexError_, IntegrityError, UserError
from expertpm._home import Home
from expertpm._mirror import create_mirror, export_lock, import_archive, update_mirror, verify_mirror
from expertpm._store import Store
from expertpm_testing.project import run_without_network, serve_index


def package_files(home: Home) -> dict:
    """{name@version: {file: bytes}} of everything installed in a home's store."""
    return {p.id: {f.relative_to(p.path).as_posix(): f.read_bytes() for f in sorted(p.path.rglob("*")) if f.is_file()}
            for p in Store(home).list()}


@pytest.fixture
def locked(followed_world):
    """Machine A: a project that added two experts and committed its lock."""
    world = followed_world
    world.ok("init")
    world.ok("add", "sql-explain", "tool-call")
    world.ok("sync", "--locked")
    return world


def second_machine(world, tmp_path):
    """Machine B: a fresh home and a checkout of the project's committed files."""
    home = Home(tmp_path / "machine-b")
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("experts.toml", "experts.lock"):
        shutil.copy(world.project / name, checkout / name)
    return home, checkout


def test_a_mirror_gives_another_machine_byte_identical_experts_without_network(locked, tmp_path):
    world = locked
    mirror = tmp_path / "usb" / "mirror"
    out = world.ok("mirror", "create", str(mirror), "--lock", "experts.lock")
    assert f"--fingerprint {world.index.fingerprint}" in out
    home, checkout = second_machine(world, tmp_path)

    proc = run_without_network(world, "index", "add", "default", str(mirror), "--fingerprint",
                               world.index.fingerprint, home=home, cwd=checkout)
    assert proc.returncode == 0, proc.stderr
    proc = run_without_network(world, "sync", "--frozen", home=home, cwd=checkout)
    assert proc.returncode == 0, proc.stderr
    assert "NETWORK ATTEMPT" not in proc.stderr
    assert package_files(home) == package_files(world.home)
    assert len(package_files(home)) == 4
    proc = run_without_network(world, "sync", "--locked", "--offline", home=home, cwd=checkout)
    assert proc.returncode == 0 and "nothing to do" in proc.stdout, proc.stderr


def test_export_and_import_carry_a_lock_in_one_file(locked, tmp_path):
    world = locked
    tar = tmp_path / "experts.tar"
    world.ok("export", str(tar), "--lock", "experts.lock")
    home, checkout = second_machine(world, tmp_path)
    proc = run_without_network(world, "import", str(tar), home=home, cwd=checkout)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"error: {tar}: the archive holds a mirror of index 'default' with fingerprint "
        f"{world.index.fingerprint[:16]}…, which this machine does not follow — check the fingerprint with the "
        f"index's maintainer, then pass --fingerprint {world.index.fingerprint}")
    proc = run_without_network(world, "import", str(tar), "--fingerprint", world.index.fingerprint, home=home,
                               cwd=checkout)
    assert proc.returncode == 0, proc.stderr
    assert "imported index 'default'" in proc.stdout and "4 artifact(s) cached" in proc.stdout
    proc = run_without_network(world, "sync", "--frozen", "--offline", home=home, cwd=checkout)
    assert proc.returncode == 0, proc.stderr
    assert package_files(home) == package_files(world.home)
    assert tar.read_bytes() == (world.ok("export", str(tmp_path / "again.tar")) and
                                (tmp_path / "again.tar").read_bytes())  # deterministic


def test_verify_finds_a_tampered_artifact_and_refuses_a_tampered_index(locked, tmp_path):
    world = locked
    mirror = tmp_path / "mirror"
    create_mirror(world.home, mirror, lock=world.project / "experts.lock")
    report = verify_mirror(mirror, fingerprint=world.index.fingerprint)
    assert report.ok and report.packages == 5 and len(report.manifest.artifacts) == 4

    artifact = mirror / "artifacts" / "sql" / "sql-1.1.0.expert"
    data = bytearray(artifact.read_bytes())
    data[100] ^= 1
    artifact.write_bytes(bytes(data))
    (mirror / "artifacts" / "extra.expert").write_bytes(b"x")
    report = verify_mirror(mirror, fingerprint=world.index.fingerprint)
    sha = next(a.sha256 for a in report.manifest.artifacts.values() if a.id == "sql@1.1.0")
    assert report.problems[0].startswith("artifacts/sql/sql-1.1.0.expert: sha256 ")
    assert report.problems[0].endswith(f"does not match the signed line of sql@1.1.0 ({sha[:16]}…)")
    assert report.problems[1] == "artifacts/extra.expert: not listed in mirror.json"
    proc = world.cli("mirror", "verify", str(mirror), "--fingerprint", world.index.fingerprint)
    assert proc.returncode == 1 and "the mirror does not verify (2 problem(s))" in proc.stderr

    package = mirror / "3" / "s" / "sql"
    package.write_bytes(package.read_bytes().replace(b'"1.0.0"', b'"1.0.1"', 1))
    with pytest.raises(IndexError_) as info:
        verify_mirror(mirror, fingerprint=world.index.fingerprint)
    assert info.value.message == "3/s/sql does not match the snapshot"
    with pytest.raises(IndexError_) as info:
        verify_mirror(mirror, fingerprint="ab" * 32)
    assert str(info.value) == (f"keys/root/1.json: index fingerprint is {world.index.fingerprint}, expected "
                               f"{'ab' * 32} — this is not the index you trusted (or the fingerprint was mistyped)")


def test_update_adds_what_is_new_and_keeps_the_old_mirror_on_failure(followed_world, tmp_path):
    world = followed_world
    mirror = tmp_path / "mirrors" / "mirror"
    first = create_mirror(world.home, mirror, names=("sql",))
    assert first.added == ("sql@1.0.0", "sql@1.1.0", "tiny-qwen3@1.0.0")
    with pytest.raises(UserError) as info:
        create_mirror(world.home, mirror, names=("sql",))
    assert str(info.value) == (f"{mirror}: the mirror directory exists and is not empty — it is a mirror already: "
                               "`expertpm mirror update DIR` adds what is new")

    world.publish_expert("sql", "1.2.0")
    world.publish_expert("tool-call", "1.1.0")
    second = update_mirror(world.home, mirror)
    assert (second.added, second.reused) == (("sql@1.2.0",), 3)
    assert verify_mirror(mirror, fingerprint=world.index.fingerprint).ok

    world.publish_expert("sql", "1.3.0")
    artifact = world.index.dir / "artifacts" / "sql" / "sql-1.3.0.expert"
    artifact.write_bytes(artifact.read_bytes()[:-10])
    before = json.loads((mirror / "mirror.json").read_text())
    with pytest.raises(IntegrityError):
        update_mirror(world.home, mirror)
    assert json.loads((mirror / "mirror.json").read_text()) == before
    assert verify_mirror(mirror, fingerprint=world.index.fingerprint).ok
    assert [p.name for p in mirror.parent.iterdir()] == ["mirror"]  # no staging left behind


def test_a_mirror_of_an_http_index_holds_its_complete_tree(project_world, serve_dir, tmp_path):
    world = project_world
    served = serve_index(world, serve_dir)
    world.follow(url=served.url)
    world.ok("init")
    world.ok("add", "tool-call")
    mirror = tmp_path / "mirror"
    result = create_mirror(world.home, mirror, lock=world.project / "experts.lock")
    assert result.report.packages == 5  # every package file, though the sparse client read only two
    home, checkout = second_machine(world, tmp_path)
    proc = run_without_network(world, "index", "add", "default", str(mirror), "--fingerprint",
                               world.index.fingerprint, home=home, cwd=checkout)
    assert proc.returncode == 0, proc.stderr
    proc = run_without_network(world, "sync", "--frozen", home=home, cwd=checkout)
    assert proc.returncode == 0, proc.stderr
    assert sorted(package_files(home)) == ["tiny-qwen3@1.0.0", "tool-call@1.0.0"]


def test_importing_a_tampered_archive_changes_nothing(locked, tmp_path):
    world = locked
    tar = tmp_path / "experts.tar"
    export_lock(world.home, world.project / "experts.lock", tar)
    data = tar.read_bytes()
    marker = data.find(b"adapter_model.safetensors")
    tampered = tmp_path / "tampered.tar"
    tampered.write_bytes(data[:marker - 600] + bytes([data[marker - 600] ^ 1]) + data[marker - 599:])
    home = Home(tmp_path / "machine-b")
    with pytest.raises(Exception):
        import_archive(home, tampered, fingerprints=(world.index.fingerprint,))
    assert not (home.root / "indexes").exists() or not any((home.root / "indexes").iterdir())
    assert not (home.cache_dir / "artifacts").exists() or not any((home.cache_dir / "artifacts").iterdir())
