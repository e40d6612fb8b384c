"""The store API on real signed packages: add, dedupe, get/list/path, remove, gc, fsck."""

from __future__ import annotations

import json
import os
import stat

import pytest

from expertpm._canonical import sha256_file
from expertpm._errors import StoreError
from expertpm._package import pack
from expertpm._store import InstalledPackage
from expertpm_testing import make_expert_source, store_entries


def _pack(tmp_path, key, name="sql", version="1.0.0", seed=0):
    src = make_expert_source(tmp_path / f"src-{name}-{version}-{seed}", seed=seed, name=name, version=version)
    dist = tmp_path / f"dist-{seed}"
    dist.mkdir(exist_ok=True)
    return pack(src, dist, key)


def test_add_installs_a_verified_read_only_copy(store, home, packed_expert, signing_key):
    pkg = store.add(packed_expert)
    digest = sha256_file(packed_expert)[0]
    assert isinstance(pkg, InstalledPackage)
    assert (pkg.name, pkg.version, pkg.kind, pkg.digest) == ("sql", "1.0.0", "expert", digest)
    assert pkg.signer_key_id == signing_key.key_id
    assert pkg.path == home / "store" / "packages" / digest
    assert sorted(os.listdir(pkg.path)) == ["README.md", "adapter_config.json", "adapter_model.safetensors",
                                            "manifest.json", "signature.json"]
    for f in pkg.path.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o444
    assert (home / "store" / "refs" / "sql" / "1.0.0").read_text() == f"{digest}\n"
    assert store_entries(home) == {"packages": [digest], "refs": ["sql/1.0.0"], "tmp": []}
    assert store.get("sql") == pkg == store.get("sql", "1.0.0")
    assert store.path("sql", "1.0.0") == pkg.path
    assert store.list() == [pkg]
    assert pkg.manifest.get("adapter")["type"] == "lora"
    assert store.fsck() == []


def test_readding_identical_content_is_a_no_op_and_restores_a_lost_ref(store, home, packed_expert):
    first = store.add(packed_expert)
    again = store.add(packed_expert)
    assert again == first
    (home / "store" / "refs" / "sql" / "1.0.0").unlink()
    assert store.add(packed_expert) == first
    assert store_entries(home) == {"packages": [first.digest], "refs": ["sql/1.0.0"], "tmp": []}


def test_versions_sorted_and_newest_stable_preferred(store, tmp_path, signing_key):
    for seed, version in enumerate(["1.0.0", "1.10.0", "1.2.0", "2.0.0-rc.1"]):
        store.add(_pack(tmp_path, signing_key, version=version, seed=seed))
    store.add(_pack(tmp_path, signing_key, name="chat", seed=9))
    assert [p.id for p in store.list()] == ["chat@1.0.0", "sql@1.0.0", "sql@1.2.0", "sql@1.10.0", "sql@2.0.0-rc.1"]
    assert store.get("sql").version == "1.10.0"
    assert store.get("sql", "2.0.0-rc.1").version == "2.0.0-rc.1"


def test_get_missing_suggests_close_names_and_lists_versions(store, packed_expert):
    store.add(packed_expert)
    with pytest.raises(StoreError, match=r"no package named 'sqll' is installed — did you mean sql\?"):
        store.get("sqll")
    with pytest.raises(StoreError, match=r"sql@9\.9\.9 is not installed — installed versions: 1\.0\.0"):
        store.path("sql", "9.9.9")
    with pytest.raises(StoreError, match="no package named '../refs' is installed"):
        store.get("../refs")


def test_same_name_and_version_with_other_content_is_refused(store, home, tmp_path, signing_key):
    first = store.add(_pack(tmp_path, signing_key, seed=0))
    other = _pack(tmp_path, signing_key, seed=1)
    with pytest.raises(StoreError, match=r"sql@1\.0\.0 is already installed with different content .*"
                                         r"remove it first: expertpm store remove sql@1\.0\.0"):
        store.add(other)
    assert store_entries(home) == {"packages": [first.digest], "refs": ["sql/1.0.0"], "tmp": []}
    store.remove("sql", "1.0.0")
    assert store.add(other).digest != first.digest


def test_remove_then_gc_frees_only_unreferenced_packages(store, home, tmp_path, signing_key):
    keep = store.add(_pack(tmp_path, signing_key, name="chat"))
    drop = store.add(_pack(tmp_path, signing_key, name="sql", seed=1))
    store.remove("sql", "1.0.0")
    with pytest.raises(StoreError, match="no package named 'sql' is installed"):
        store.get("sql")
    with pytest.raises(StoreError):
        store.remove("sql", "1.0.0")
    assert drop.path.is_dir()  # still there until gc
    size = sum(f.stat().st_size for f in drop.path.iterdir())
    report = store.gc()
    assert report.removed_packages == (drop.digest,)
    assert report.freed_bytes == size
    assert store_entries(home) == {"packages": [keep.digest], "refs": ["chat/1.0.0"], "tmp": []}
    assert store.gc().removed_packages == ()
    assert store.fsck() == []


def test_fsck_reports_each_kind_of_damage(store, home, packed_expert):
    pkg = store.add(packed_expert)
    root = home / "store"
    rel = f"packages/{pkg.digest}"
    weights = pkg.path / "adapter_model.safetensors"
    weights.chmod(0o644)
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    (pkg.path / "extra.txt").write_text("x")
    os.chmod(pkg.path / "extra.txt", 0o444)
    (pkg.path / "README.md").unlink()
    (root / "packages" / "not-a-digest").mkdir()
    (root / "refs" / "ghost").mkdir()
    (root / "refs" / "ghost" / "1.0.0").write_text("e" * 64 + "\n")
    (root / "refs" / "ghost" / "2.0.0").write_text("nonsense\n")
    problems = store.fsck()
    assert problems == [
        f"{rel}/extra.txt: file not listed in the manifest",
        f"{rel}/README.md: file listed in the manifest is missing",
        f"{rel}/adapter_model.safetensors: writable (mode 0644); installed files must be read-only",
        problems[3],
        "packages/not-a-digest: stray entry (not a package directory) — run: expertpm store gc",
        f"refs/ghost/1.0.0: refers to missing package {'e' * 64} — reinstall ghost@1.0.0",
        "refs/ghost/2.0.0: ref does not hold a sha256 digest",
    ]
    assert problems[3].startswith(f"{rel}/adapter_model.safetensors: sha256 mismatch (manifest ")
    assert [p.id for p in store.list()] == ["sql@1.0.0"]  # broken refs are skipped, not fatal
    with pytest.raises(StoreError, match="ref does not hold a sha256 digest"):
        store.get("ghost", "2.0.0")


def test_fsck_reports_a_bad_signature_and_a_ref_to_another_package(store, home, packed_expert):
    pkg = store.add(packed_expert)
    ref_dir = home / "store" / "refs" / "sql"
    (ref_dir / "3.0.0").write_text(pkg.digest + "\n")
    sig = pkg.path / "signature.json"
    doc = json.loads(sig.read_text())
    doc["signature"] = "0" * 128
    sig.chmod(0o644)
    sig.write_text(json.dumps(doc))
    sig.chmod(0o444)
    problems = store.fsck()
    assert problems[0].startswith(f"packages/{pkg.digest}/signature.json: bad signature by key")
    assert problems[1] == "refs/sql/3.0.0: refers to a package of sql@1.0.0"
    assert len(problems) == 2


def test_readding_repairs_a_package_damaged_by_hand(store, home, packed_expert):
    pkg = store.add(packed_expert)
    (pkg.path / "README.md").unlink()
    assert store.fsck() == [f"packages/{pkg.digest}/README.md: file listed in the manifest is missing"]
    assert store.add(packed_expert) == pkg
    assert store.fsck() == []
    assert store_entries(home) == {"packages": [pkg.digest], "refs": ["sql/1.0.0"], "tmp": []}


def test_add_from_a_stream(store, packed_expert):
    with open(packed_expert, "rb") as stream:
        pkg = store.add(stream, expected_sha256=sha256_file(packed_expert)[0])
    assert store.get("sql").digest == pkg.digest


def test_exported_names():
    import expertpm._safetensors
    import expertpm._store

    assert expertpm._store.__all__ == ["Store", "StoreBatch", "StagedPackage", "InstalledPackage", "GcReport"]
    assert expertpm._safetensors.__all__ == ["MAX_HEADER_BYTES", "DTYPE_BITS", "TensorInfo", "SafetensorsInfo",
                                             "validate_file", "validate_header"]
