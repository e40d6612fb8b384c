"""Staging packages in parallel and committing them as one batch (what `sync` does): a bad
package or a conflict anywhere leaves nothing of the batch in the store."""

from __future__ import annotations

import concurrent.futures

import pytest

from expertpm._canonical import sha256_file
from expertpm._errors import IntegrityError, StoreError
from expertpm._package import pack
from expertpm_testing import make_expert_source, store_entries
from expertpm_testing.packages import package_members, tar_member, write_tar_zst


def _packs(tmp_path, key, count, name="sql"):
    out = []
    for i in range(count):
        src = make_expert_source(tmp_path / f"src-{i}", seed=i, name=name, version=f"1.{i}.0")
        out.append(pack(src, tmp_path, key))
    return out


def _tampered_weights(tmp_path, package):
    """The same signed manifest, with one weight byte flipped: only the per-file digest can tell."""
    members = [(info.name, data) for info, data in package_members(package)]
    bad = []
    for name, data in members:
        if name == "adapter_model.safetensors":
            data = data[:-1] + bytes([data[-1] ^ 1])
        bad.append(tar_member(name, data))
    return write_tar_zst(tmp_path / "tampered.expert", bad)


def _stage_all(batch, packages, **kw):
    """Stage every package on its own thread; (staged, errors) in the order given."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(packages)) as pool:
        futures = [pool.submit(batch.stage, p, **kw) for p in packages]
    staged, errors = [], []
    for future in futures:
        try:
            staged.append(future.result())
        except Exception as exc:  # noqa: BLE001 - collected for the assertions
            errors.append(exc)
    return staged, errors


def test_a_batch_staged_in_parallel_commits_at_once(store, home, tmp_path, signing_key):
    packages = _packs(tmp_path, signing_key, 4)
    with store.batch() as batch:
        staged, errors = _stage_all(batch, packages, trusted_key_ids={signing_key.key_id})
        assert errors == []
        entries = store_entries(home)
        assert entries["packages"] == [] and len(entries["tmp"]) == 2  # one staging directory and its lock
        installed = batch.commit(staged)
    digests = [sha256_file(p)[0] for p in packages]
    assert [p.digest for p in installed] == digests
    assert store_entries(home) == {"packages": sorted(digests), "refs": [f"sql/1.{i}.0" for i in range(4)],
                                   "tmp": []}
    assert store.fsck() == []


@pytest.mark.parametrize("fsync", ["0", "1"])
def test_one_package_with_a_tampered_file_leaves_nothing_of_the_batch(store, home, tmp_path, signing_key, monkeypatch,
                                                                      fsync):
    monkeypatch.setenv("EXPERTPM_FSYNC", fsync)
    good = _packs(tmp_path, signing_key, 3)
    bad = _tampered_weights(tmp_path, good[1])
    with store.batch() as batch:
        staged, errors = _stage_all(batch, [good[0], bad, good[2]])
        assert len(staged) == 2  # what `sync` does when any package of the batch failed: commit none
    assert [type(e) for e in errors] == [IntegrityError]
    assert errors[0].message == "file 'adapter_model.safetensors' does not match its sha256 in the manifest"
    assert errors[0].where == str(bad)
    assert store_entries(home) == {"packages": [], "refs": [], "tmp": []}


def test_a_wrong_archive_digest_is_refused_with_the_digest_it_has(store, home, tmp_path, signing_key):
    package = _packs(tmp_path, signing_key, 1)[0]
    actual, wrong = sha256_file(package)[0], "0" * 64
    with pytest.raises(IntegrityError) as info, store.batch() as batch:
        batch.stage(package, expected_sha256=wrong)
    assert info.value.message == f"package sha256 is {actual}, expected {wrong}"
    assert store_entries(home) == {"packages": [], "refs": [], "tmp": []}


def test_a_conflict_anywhere_refuses_the_whole_batch_before_anything_moves(store, home, tmp_path, signing_key):
    packages = _packs(tmp_path, signing_key, 2)
    src = make_expert_source(tmp_path / "impostor", seed=9, name="sql", version="1.1.0")
    dist = tmp_path / "impostor-dist"
    dist.mkdir()
    impostor = store.add(pack(src, dist, signing_key))  # sql@1.1.0 with other content
    with pytest.raises(StoreError) as info, store.batch() as batch:
        staged, errors = _stage_all(batch, packages)
        assert errors == []
        batch.commit(staged)
    ours = sha256_file(packages[1])[0]
    assert info.value.message == (f"sql@1.1.0 is already installed with different content (digest "
                                  f"{impostor.digest[:12]}, this package is {ours[:12]})")
    assert store_entries(home) == {"packages": [impostor.digest], "refs": ["sql/1.1.0"], "tmp": []}


def test_committing_again_is_a_no_op(store, home, tmp_path, signing_key):
    package = _packs(tmp_path, signing_key, 1)[0]
    first = store.add(package)
    with store.batch() as batch:
        assert batch.commit([batch.stage(package)]) == [first]
    assert store_entries(home) == {"packages": [first.digest], "refs": ["sql/1.0.0"], "tmp": []}


def test_threads_adding_at_once_share_the_store_lock(store, home, tmp_path, signing_key):
    packages = _packs(tmp_path, signing_key, 4)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        installed = list(pool.map(store.add, packages))  # each a batch of its own, all taking the lock
    assert [p.digest for p in installed] == [sha256_file(p)[0] for p in packages]
    assert store_entries(home)["refs"] == [f"sql/1.{i}.0" for i in range(4)] and store_entries(home)["tmp"] == []
    assert store.fsck() == []
