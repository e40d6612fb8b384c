"""Maintainer and publisher actions on a real index: init, delegate, publish rules, yank, revoke,
rotate-root, refresh."""

import pygit2
import pytest

from expertpm import IndexError_, NameError_, SignatureError
from expertpm._index import (
    IndexHost, PublisherKey, delegate, init_index, publisher_key_from, refresh, revoke, rotate_root, set_yanked,
)
from expertpm._index._entries import read_package_file
from expertpm._index._layout import package_path
from expertpm._keys import SigningKey


def test_init_creates_a_bare_repo_whose_commits_need_no_working_tree(index_world):
    repo = pygit2.Repository(str(index_world.dir))
    assert repo.is_bare
    messages = [c.message.strip() for c in repo.walk(repo.head.target)]
    assert messages == ["Delegate sql, acme-* to publisher", "Create index test-index"]
    assert (index_world.dir / "artifacts").is_dir()
    assert (index_world.dir / "host" / "keys").is_dir()
    assert index_world.host.snapshot().version == 2


def test_init_refuses_a_non_empty_directory_and_an_impossible_threshold(tmp_path):
    key = SigningKey.generate("root")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    with pytest.raises(IndexError_, match="directory is not empty"):
        init_index(tmp_path / "busy", [key])
    with pytest.raises(IndexError_, match="threshold 2 is impossible with 1 root key"):
        init_index(tmp_path / "new", [key], threshold=2)
    with pytest.raises(IndexError_, match="must stay under artifacts/"):
        init_index(tmp_path / "new2", [key], artifact_url="../{name}.expert")
    assert not (tmp_path / "new").exists() or not any((tmp_path / "new").iterdir())


def test_delegation_needs_a_threshold_of_root_keys(index_world):
    mallory = index_world.key("mallory")
    publisher = publisher_key_from(index_world.maintainer, "mallory")
    with pytest.raises(IndexError_, match="a delegation needs 2 root key"):
        delegate(index_world.dir, publisher, ["sql"], [index_world.root_keys[0]])
    with pytest.raises(IndexError_, match="a delegation needs 2 root key"):
        delegate(index_world.dir, publisher, ["sql"], [mallory, index_world.root_keys[0]])


def test_publish_appends_a_signed_line_and_copies_the_artifact(index_world):
    first = index_world.publish("sql", "1.0.0")
    second = index_world.publish("sql", "1.1.0", seed=1)
    host = index_world.host
    data = host.read(package_path("sql"))
    assert data.count(b"\n") == 2
    entries = read_package_file(data, "sql", host.delegations(), where="sql")
    assert [e.version for e in entries] == ["1.0.0", "1.1.0"]
    assert second.snapshot_version == first.snapshot_version + 1
    assert first.artifact == index_world.dir / "artifacts" / "sql" / "sql-1.0.0.expert"
    assert host.repo.head.peel(pygit2.Commit).message == "Publish sql@1.1.0\n"


def test_publish_refuses_an_undelegated_name_and_a_foreign_package_signature(index_world):
    with pytest.raises(IndexError_, match=r"is not delegated to publish 'other'"):
        index_world.publish("other", "1.0.0")
    stranger = SigningKey.generate("stranger")
    package = index_world.pack("sql", "1.0.0", key=stranger)
    from expertpm._index import publish

    with pytest.raises(IndexError_, match="the package is signed by key .* but you publish with key"):
        publish(index_world.dir, package, index_world.publisher)
    assert index_world.host.read(package_path("sql")) is None


def test_a_version_is_published_once_whatever_its_content(index_world):
    index_world.publish("sql", "1.0.0")
    with pytest.raises(IndexError_, match=r"sql@1.0.0 is already published"):
        index_world.publish("sql", "1.0.0", seed=7)
    with pytest.raises(IndexError_, match=r"sql@1.0.0 is already published"):
        index_world.publish("sql", "1.0.0+build.2", seed=8)


def test_versions_only_go_up_within_a_major_series(index_world):
    index_world.publish("sql", "1.2.0")
    index_world.publish("sql", "2.0.0", seed=1)
    with pytest.raises(IndexError_, match=r"sql@1.1.0 is lower than the published sql@1.2.0"):
        index_world.publish("sql", "1.1.0", seed=2)
    with pytest.raises(IndexError_, match=r"sql@2.0.0-rc.1 is lower than the published sql@2.0.0"):
        index_world.publish("sql", "2.0.0-rc.1", seed=3)
    index_world.publish("sql", "1.2.1", seed=4)  # a backport above the 1.x series is fine
    index_world.publish("sql", "0.9.0", seed=5)  # so is a first version in an older major series


def test_a_confusable_new_name_is_refused(index_world):
    index_world.publish("acme-sql", "1.0.0")
    with pytest.raises(NameError_, match="'acme-sq1' is confusable with the existing package 'acme-sql'"):
        index_world.publish("acme-sq1", "1.0.0", seed=1)
    with pytest.raises(NameError_, match="'acmesql' is confusable"):
        delegate(index_world.dir, publisher_key_from(index_world.maintainer, "publisher"), ["acmesql"],
                 index_world.root_keys)
        index_world.publish("acmesql", "1.0.0", seed=2)


def test_yank_and_unyank_are_signed_records(index_world):
    index_world.publish("sql", "1.0.0")
    set_yanked(index_world.dir, "sql", "1.0.0", index_world.publisher)
    with pytest.raises(IndexError_, match=r"sql@1.0.0 is already yanked"):
        set_yanked(index_world.dir, "sql", "1.0.0", index_world.publisher)
    result = set_yanked(index_world.dir, "sql", "1.0.0", index_world.publisher, yank=False)
    assert result.entry.yanked is False
    with pytest.raises(IndexError_, match=r"sql@2.0.0 is not published"):
        set_yanked(index_world.dir, "sql", "2.0.0", index_world.publisher)
    with pytest.raises(IndexError_, match="is not delegated to publish 'sql'"):
        set_yanked(index_world.dir, "sql", "1.0.0", index_world.key("mallory"))


def test_revoke_keeps_or_withdraws_what_the_key_already_published(index_world):
    index_world.publish("sql", "1.0.0")
    d = revoke(index_world.dir, index_world.publisher.key_id, index_world.root_keys)
    assert d.revoked and len(d.kept_lines) == 1
    host = index_world.host
    entries = read_package_file(host.read(package_path("sql")), "sql", host.delegations(), where="sql")
    assert [e.version for e in entries] == ["1.0.0"]
    with pytest.raises(IndexError_, match="is revoked to publish 'sql'"):
        index_world.publish("sql", "1.1.0", seed=1)
    with pytest.raises(IndexError_, match="was revoked and cannot be delegated again"):
        delegate(index_world.dir, publisher_key_from(index_world.maintainer, "publisher"), ["sql"],
                 index_world.root_keys)


def test_revoke_with_withdraw_hides_published_versions(index_world):
    index_world.publish("sql", "1.0.0")
    d = revoke(index_world.dir, index_world.publisher.key_id, index_world.root_keys, withdraw_published=True)
    assert len(d.withdrawn_lines) == 1
    host = index_world.host
    assert read_package_file(host.read(package_path("sql")), "sql", host.delegations(), where="sql") == []


def test_rotate_root_re_signs_delegations_and_keeps_publishing_working(index_world):
    new_a, new_b = index_world.key("new-a"), index_world.key("new-b")
    version = rotate_root(index_world.dir, [new_a, new_b], index_world.root_keys, threshold=2)
    assert version == 2
    host = index_world.host
    assert host.root().keys.keys() == {new_a.key_id, new_b.key_id}
    assert host.config().root_version == 2
    assert host.delegations()[index_world.publisher.key_id].version == 2
    index_world.publish("sql", "1.0.0")
    with pytest.raises(IndexError_, match="a delegation needs 2 root key"):
        delegate(index_world.dir, PublisherKey(new_a.key_id, new_a.public_key, "x"), ["x"], index_world.root_keys)


def test_rotate_root_needs_the_old_threshold(index_world):
    new = index_world.key("new-a")
    with pytest.raises(IndexError_, match="a root rotation needs 2 root key"):
        rotate_root(index_world.dir, [new], [index_world.root_keys[0], new])
    assert index_world.host.root().version == 1


def test_refresh_signs_a_new_snapshot_version_with_a_new_expiry(index_world):
    before = index_world.host.snapshot()
    result = refresh(index_world.dir, expires_days=90)
    after = index_world.host.snapshot()
    assert result.snapshot_version == after.version == before.version + 1
    assert (after.expires - before.expires).days >= 59
    with pytest.raises(IndexError_, match="positive number of days"):
        refresh(index_world.dir, expires_days=0)


def test_remote_urls_cannot_be_written(index_world):
    with pytest.raises(IndexError_, match="cannot write to the remote index https://example.invalid/index.git"):
        IndexHost("https://example.invalid/index.git")


def test_a_wrong_signature_on_a_delegation_is_refused(index_world):
    host = index_world.host
    path = f"keys/publishers/{index_world.publisher.key_id}.json"
    data = host.read(path)
    forged = data.replace(b'"sql"', b'"sqm"')
    index_world.resign_commit({path: forged})
    with pytest.raises(SignatureError, match="delegation of key .* is signed by 0 of the 2 required keys"):
        index_world.host.delegations()
