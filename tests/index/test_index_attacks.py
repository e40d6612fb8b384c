"""Every attack of issue 3, performed on a real Git index: each asserts the exact error, that the
client kept its last verified state, and that nothing was installed."""

import json
from datetime import timedelta

import pytest

from expertpm import IndexError_, IntegrityError, SignatureError
from expertpm._canonical import canonical_json
from expertpm._index import (
    Limits, export_index, install_from_index, refresh, revoke, set_yanked,
)
from expertpm._index._entries import entry_doc, sign_record
from expertpm._index._layout import ROOT_DIR, SNAPSHOT_FILE, format_time, package_path, utc_now
from expertpm._index._metadata import root_signed
from expertpm._index._signed import seal
from expertpm._keys import SigningKey

SQL = package_path("sql")


@pytest.fixture
def world(index_world):
    """A client following an index that has sql@1.0.0."""
    index_world.publish("sql", "1.0.0")
    index_world.add_client()
    index_world.before = index_world.open().snapshot_version
    return index_world


def assert_kept_last_state(world):
    index = world.open()
    assert index.snapshot_version == world.before
    assert [e.version for e in index.entries("sql")] == ["1.0.0"]
    assert world.installed() == []


def forged_line(world, version: str, *, key: SigningKey, publisher: str | None = None, name: str = "sql",
                seed: int = 5) -> bytes:
    """A well-formed entry line for a real package, signed by `key`, claiming `publisher`."""
    from expertpm._package import read_manifest, verify_package

    package = world.pack(name, version, seed=seed, key=key)
    verified = verify_package(package)
    _, _, manifest_bytes = read_manifest(package)
    from expertpm._canonical import sha256_bytes

    doc = entry_doc(verified.manifest, sha256=verified.digest, size=verified.size,
                    manifest_sha256=sha256_bytes(manifest_bytes), publisher=publisher or key.key_id,
                    published=format_time(utc_now()))
    return sign_record(doc, key)


def append(world, path: str, line: bytes) -> None:
    world.resign_commit({path: world.read(path) + line + b"\n"})


def test_unsigned_line(world):
    line = json.loads(forged_line(world, "1.1.0", key=world.publisher))
    del line["signature"]
    append(world, SQL, canonical_json(line))
    with pytest.raises(SignatureError, match=r"line for sql@1.1.0 is not signed"):
        world.update()
    assert_kept_last_state(world)


def test_wrongly_signed_line(world):
    mallory = world.key("mallory")
    append(world, SQL, forged_line(world, "1.1.0", key=mallory, publisher=world.publisher.key_id))
    with pytest.raises(SignatureError, match=r"bad signature on sql@1.1.0 by key"):
        world.update()
    assert_kept_last_state(world)


def test_wrongly_signed_line_seen_by_a_fresh_client_fails_at_install(world):
    mallory = world.key("mallory")
    append(world, SQL, forged_line(world, "1.1.0", key=mallory, publisher=world.publisher.key_id))
    world.add_client(name="fresh")
    with pytest.raises(SignatureError, match=r"bad signature on sql@1.1.0 by key"):
        install_from_index(world.client, "sql", index_name="fresh")
    assert world.installed() == []


def test_line_signed_by_an_undelegated_key(world):
    stranger = world.key("stranger")
    append(world, SQL, forged_line(world, "1.1.0", key=stranger))
    with pytest.raises(SignatureError, match=r"signed by key .*, which this index never delegated"):
        world.update()
    assert_kept_last_state(world)


def test_line_signed_by_a_revoked_key(world):
    revoke(world.dir, world.publisher.key_id, world.root_keys)
    append(world, SQL, forged_line(world, "1.1.0", key=world.publisher))  # the stolen key keeps signing
    with pytest.raises(SignatureError, match=r"line is signed by the revoked key .* \(publisher\)"):
        world.update()
    assert_kept_last_state(world)


def test_publisher_publishing_a_name_it_was_not_delegated(world):
    line = forged_line(world, "1.0.0", key=world.publisher, name="other")
    world.resign_commit({package_path("other"): line + b"\n"})
    with pytest.raises(SignatureError, match=r"key .* \(publisher\) is not delegated to publish 'other'"):
        world.update()
    assert_kept_last_state(world)


def test_version_line_changed_after_publication_and_re_signed(world):
    original = world.read(SQL)
    doc = json.loads(original)
    doc["description"] = "now with a backdoor"
    resigned = sign_record({k: v for k, v in doc.items() if k != "signature"}, world.publisher)
    world.resign_commit({SQL: resigned + b"\n"})
    with pytest.raises(IndexError_, match=r"3/s/sql was changed after publication: index files are append-only"):
        world.update()
    assert_kept_last_state(world)


def test_version_line_changed_after_publication_without_its_key(world):
    tampered = world.read(SQL).replace(b"text to SQL", b"text to SQl")
    world.resign_commit({SQL: tampered})
    world.add_client(name="fresh")  # a client with no history still sees the broken signature
    with pytest.raises(SignatureError, match=r"bad signature on sql@1.0.0"):
        install_from_index(world.client, "sql", index_name="fresh")
    with pytest.raises(IndexError_, match=r"changed after publication"):
        world.update()
    assert_kept_last_state(world)


def test_re_published_version_with_different_content(world):
    append(world, SQL, forged_line(world, "1.0.0", key=world.publisher, seed=9))
    with pytest.raises(IndexError_, match=r"sql@1.0.0 is published twice"):
        world.update()
    assert_kept_last_state(world)


def test_artifact_bytes_not_matching_the_signed_digest(world):
    artifact = world.dir / "artifacts" / "sql" / "sql-1.0.0.expert"
    data = bytearray(artifact.read_bytes())
    data[-10] ^= 0xFF
    artifact.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"the artifact's sha256 .* does not match the signed index line"):
        install_from_index(world.client, "sql@1.0.0")
    assert world.installed() == []
    assert not list((world.client.cache_dir / "artifacts").glob("*"))


def test_rollback_to_an_older_snapshot_over_git(world):
    old = world.head()
    world.publish("sql", "1.1.0", seed=1)
    world.update()
    world.force_main(old)
    with pytest.raises(IndexError_, match=rf"snapshot version {world.before} is older than version "
                                          rf"{world.before + 1}, already verified; refusing a rollback"):
        world.update()
    assert world.open().snapshot_version == world.before + 1


def test_rollback_to_an_older_snapshot_over_a_mirror(world, tmp_path):
    old_mirror, mirror = tmp_path / "old", tmp_path / "mirror"
    export_index(world.host, old_mirror)
    world.publish("sql", "1.1.0", seed=1)
    export_index(world.host, mirror)
    world.add_client(str(mirror), name="mirror")
    mirror.rename(tmp_path / "new")
    old_mirror.rename(mirror)
    with pytest.raises(IndexError_, match=r"refusing a rollback"):
        world.update("mirror")
    assert world.open("mirror").snapshot_version == world.before + 1


def test_expired_snapshot_is_a_frozen_index(world):
    expires = world.open().expires
    later = expires + timedelta(seconds=1)
    with pytest.raises(IndexError_, match=r"the index snapshot expired at .*; refusing a frozen index"):
        world.update(now=later)
    warnings = []
    result = world.update(now=later, allow_expired=True, warn=warnings.append)
    assert result.snapshot_version == world.before
    assert "using it anyway because --allow-expired was given" in warnings[0]


def test_expired_new_snapshot_is_refused_and_the_old_state_kept(world):
    refresh(world.dir, expires=utc_now() - timedelta(days=1))
    with pytest.raises(IndexError_, match=r"refusing a frozen index"):
        world.update()
    assert_kept_last_state(world)
    warnings = []
    assert world.update(allow_expired=True, warn=warnings.append).snapshot_version == world.before + 1
    assert len(warnings) == 1


def test_mix_and_match_of_two_snapshots_over_git(world):
    world.publish("sql", "1.1.0", seed=1)
    older_file, older_bins = world.read(SQL), world.host.snapshot().bins
    world.publish("sql", "1.2.0", seed=2)
    newer = world.head()
    world.raw_commit({SQL: older_file})  # the newest snapshot with the package file of an older one
    with pytest.raises(IndexError_, match=r"3/s/sql does not match the snapshot"):
        world.update()
    assert_kept_last_state(world)
    from expertpm._index._layout import bin_of, bin_path

    world.force_main(newer)  # and the newest snapshot with an older bin
    older_bin = world.file_at(str(world.host.repo[world.host.repo.head.target].parents[0].id), bin_path(bin_of(SQL)))
    assert older_bins[bin_of(SQL)] != world.host.snapshot().bins[bin_of(SQL)]
    world.raw_commit({bin_path(bin_of(SQL)): older_bin})
    with pytest.raises(IndexError_, match=rf"snapshot/{bin_of(SQL)}.json does not match the snapshot"):
        world.update()
    assert_kept_last_state(world)


def test_mix_and_match_of_two_snapshots_over_a_mirror(world, tmp_path):
    mirror = tmp_path / "mirror"
    export_index(world.host, mirror)
    world.add_client(str(mirror), name="mirror")
    world.publish("sql", "1.1.0", seed=1)
    middle = tmp_path / "middle"
    export_index(world.host, middle)
    set_yanked(world.dir, "sql", "1.1.0", world.publisher)
    export_index(world.host, mirror)
    (mirror / SNAPSHOT_FILE).write_bytes((middle / SNAPSHOT_FILE).read_bytes())  # new files, older snapshot
    with pytest.raises(IndexError_, match=r"does not match the snapshot"):
        world.update("mirror")
    assert world.open("mirror").snapshot_version == world.before


def test_root_rotation_not_signed_by_the_old_threshold(world):
    attacker = [world.key("evil-a")]
    evil_timestamp = world.key("evil-timestamp")
    signed = root_signed(version=2, index="test-index", keys={k.key_id: k.public_key for k in attacker}, threshold=1,
                         timestamp_keys={evil_timestamp.key_id: evil_timestamp.public_key},
                         fingerprint=world.fingerprint)
    # one of the two old root keys (threshold 2) plus the attacker's key:
    root2 = seal(signed, [world.root_keys[0], *attacker])
    world.resign_commit({f"{ROOT_DIR}/2.json": root2}, root_version=2, timestamp_key=evil_timestamp)
    with pytest.raises(SignatureError, match=r"root rotation not signed by the old threshold: root version 2 .* "
                                             r"is signed by 1 of the 2 required keys"):
        world.update()
    assert_kept_last_state(world)


def test_endless_index_file_over_git(world):
    world.publish("sql", "1.1.0", seed=1)
    world.raw_commit({SQL: world.read(SQL) + b" " * (4 << 20)})  # more bytes than the snapshot declares
    with pytest.raises(IntegrityError, match=r"3/s/sql: file is \d+ bytes, larger than the \d+ bytes allowed"):
        world.update()
    assert_kept_last_state(world)


def test_endless_fetch_is_cut_off(world):
    import random

    world.raw_commit({"big-blob/xx/big-blob-data": random.Random(0).randbytes(2 << 20)})
    with pytest.raises(IntegrityError, match=r"the index remote sent more than 100000 bytes"):
        world.update(limits=Limits(max_fetch_bytes=100_000))
    assert_kept_last_state(world)


def test_endless_files_from_a_mirror(world, tmp_path):
    mirror = tmp_path / "mirror"
    export_index(world.host, mirror)
    world.add_client(str(mirror), name="mirror")
    world.publish("sql", "1.1.0", seed=1)
    export_index(world.host, mirror)
    with open(mirror / SQL, "ab") as f:
        f.write(b"x" * (8 << 20))
    with pytest.raises(IntegrityError, match=r"3/s/sql is larger than the \d+ bytes declared for it"):
        world.update("mirror")
    (mirror / SNAPSHOT_FILE).write_bytes(b" " * (2 << 20))
    with pytest.raises(IntegrityError, match=r"snapshot.json is larger than the 1048576 bytes declared for it"):
        world.update("mirror")
    assert world.open("mirror").snapshot_version == world.before


def test_endless_artifact_is_bounded_by_the_signed_size(world):
    artifact = world.dir / "artifacts" / "sql" / "sql-1.0.0.expert"
    with open(artifact, "ab") as f:
        f.write(b"\x00" * (1 << 20))
    with pytest.raises(IntegrityError, match=r"the artifact is larger than the \d+ bytes its signed index line declares"):
        install_from_index(world.client, "sql")
    assert world.installed() == []


def test_forced_push_rewriting_history(world, bare_remote):
    from expertpm_testing.index import push_index

    world.publish("sql", "1.1.0", seed=1)
    push_index(world.dir, bare_remote)
    world.add_client(f"file://{bare_remote}", name="remote")
    at = world.open("remote").snapshot_version
    # the host rewrites history: drop sql@1.1.0 and publish different bytes under a higher snapshot
    first_state = world.host.repo.head.peel().parents[0].id
    world.force_main(str(first_state))
    world.resign_commit({})
    world.publish("sql", "1.1.0", seed=42)
    world.resign_commit({})
    push_index(world.dir, bare_remote, force=True)
    with pytest.raises(IndexError_, match=r"the index history was rewritten: the new state does not descend from "
                                          r"the last verified one"):
        world.update("remote")
    index = world.open("remote")
    assert index.snapshot_version == at
    assert world.installed() == []


def test_endless_artifact_over_http_is_cut_off_at_the_signed_size(index_world):
    import http.server
    import threading

    class Endless(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b"\0" * 65536)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        index_world.publish("sql", "1.0.0")
        index_world.add_client(artifact_base=f"http://127.0.0.1:{server.server_address[1]}/")
        with pytest.raises(IntegrityError, match=r"larger than the \d+ bytes its signed index line declares"):
            install_from_index(index_world.client, "sql")
        assert index_world.installed() == []
    finally:
        server.shutdown()
