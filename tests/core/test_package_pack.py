"""Building packages: determinism, what a source may hold, manifest validation, binding to a base."""

import io
import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from expertpm import FormatError, PackageError
from expertpm._archive import write_archive
from expertpm._manifest import directory_digests
from expertpm._package import pack, read_manifest, verify_package
from expertpm_testing.packages import make_expert_source, package_members


def refused(src, out, key, error=PackageError, **kw):
    out.mkdir(exist_ok=True)
    with pytest.raises(error) as info:
        pack(src, out, key, **kw)
    assert list(out.iterdir()) == [], "nothing may be written when packing fails"
    return info.value


def test_packing_twice_gives_identical_bytes(tmp_path, expert_source, signing_key):
    a = pack(expert_source, tmp_path / "a.expert", signing_key)
    b = pack(expert_source, tmp_path / "b.expert", signing_key)
    assert a.read_bytes() == b.read_bytes()


def test_identical_bytes_across_mtimes_permissions_umask_and_location(tmp_path, expert_source, signing_key):
    first = pack(expert_source, tmp_path / "first.expert", signing_key).read_bytes()
    old = os.umask(0o077)
    try:
        copy = tmp_path / "elsewhere" / "other-name"
        shutil.copytree(expert_source, copy)
        for i, path in enumerate(sorted(copy.iterdir())):
            os.utime(path, (1_000_000 + i, 2_000_000_000 + i))
            path.chmod(0o600 if i % 2 else 0o755)
        second = pack(copy, tmp_path / "second.expert", signing_key).read_bytes()
    finally:
        os.umask(old)
    assert first == second


def test_manifest_lists_every_file_and_skips_hidden_ones(tmp_path, expert_source, signing_key):
    (expert_source / ".forge").mkdir()
    (expert_source / ".forge" / "state.json").write_text("{}")
    (expert_source / ".DS_Store").write_text("x")
    (expert_source / "old-0.9.0.expert").write_bytes(b"an older build")
    (expert_source / "signature.json").write_text("{}")
    (expert_source / "eval").mkdir()
    (expert_source / "eval" / "cases.jsonl").write_text('{"q": 1}\n')
    manifest = read_manifest(pack(expert_source, tmp_path, signing_key))[0]
    assert list(manifest.files) == ["README.md", "adapter_config.json", "adapter_model.safetensors",
                                    "eval/cases.jsonl"]


def test_a_files_section_in_the_source_is_recomputed(tmp_path, expert_source, signing_key):
    doc = json.loads((expert_source / "manifest.json").read_text())
    doc["files"] = {"forged.safetensors": {"sha256": "a" * 64, "size": 1}}
    (expert_source / "manifest.json").write_text(json.dumps(doc))
    assert "forged.safetensors" not in read_manifest(pack(expert_source, tmp_path, signing_key))[0].files


@pytest.mark.parametrize("name", ["adapter_model.bin", "pytorch_model.pt", "weights.pth", "opt.pkl", "last.ckpt"])
def test_pickle_suffixes_are_refused(tmp_path, expert_source, signing_key, name):
    (expert_source / name).write_bytes(b"whatever")
    error = refused(expert_source, tmp_path / "out", signing_key)
    assert error.message == f"{name}: pickle-based weights are refused"
    assert "safetensors" in error.hint


def test_pickle_and_torch_zip_bytes_are_refused_whatever_the_name(tmp_path, expert_source, signing_key):
    (expert_source / "adapter_model.safetensors").write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=4))
    error = refused(expert_source, tmp_path / "out", signing_key)
    assert error.message == "adapter_model.safetensors is a pickle file; pickle-based weights are refused"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps([1]))
    (expert_source / "adapter_model.safetensors").unlink()
    (expert_source / "model_state").write_bytes(buf.getvalue())
    error = refused(expert_source, tmp_path / "out", signing_key)
    assert error.message == "model_state is a torch.save archive (pickle inside); pickle-based weights are refused"


def test_malformed_safetensors_is_refused(tmp_path, expert_source, signing_key):
    (expert_source / "adapter_model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......")
    error = refused(expert_source, tmp_path / "out", signing_key)
    assert error.message.startswith("invalid safetensors header: not JSON")


def test_links_and_special_files_are_refused(tmp_path, expert_source, signing_key):
    (expert_source / "link.txt").symlink_to(expert_source / "README.md")
    assert refused(expert_source, tmp_path / "out", signing_key).message == "link.txt is a symbolic link"
    (expert_source / "link.txt").unlink()
    (expert_source / "linked-dir").symlink_to(tmp_path)
    assert refused(expert_source, tmp_path / "out", signing_key).message == "linked-dir is a symbolic link"
    (expert_source / "linked-dir").unlink()
    os.mkfifo(expert_source / "pipe")
    assert refused(expert_source, tmp_path / "out", signing_key).message == "pipe is not a regular file"


def test_invalid_semver_and_wrong_field_types(tmp_path, signing_key):
    src = make_expert_source(tmp_path / "semver", version="1.0")
    error = refused(src, tmp_path / "out", signing_key, FormatError)
    assert dict(error.problems)["version"].startswith("invalid version '1.0'")
    src = make_expert_source(tmp_path / "types", adapter={"type": "lora", "rank": "8", "alpha": 16,
                                                           "target_modules": "q_proj", "dtype": "float32"},
                             routing={"priority": "high"})
    problems = dict(refused(src, tmp_path / "out", signing_key, FormatError).problems)
    assert problems["adapter.rank"] == "'8' is not of type 'integer'"
    assert problems["adapter.target_modules"] == "'q_proj' is not of type 'array'"
    assert problems["routing.priority"] == "'high' is not of type 'number'"


def test_missing_manifest_or_source(tmp_path, signing_key):
    (tmp_path / "empty").mkdir()
    error = refused(tmp_path / "empty", tmp_path / "out", signing_key)
    assert error.message == "no manifest.json in the source directory" and "expertpm new" in error.hint
    assert refused(tmp_path / "nope", tmp_path / "out", signing_key).message == "source directory does not exist"


def test_output_is_a_directory_or_a_file_path(tmp_path, expert_source, signing_key):
    assert pack(expert_source, tmp_path, signing_key) == tmp_path / "sql-1.0.0.expert"
    assert pack(expert_source, tmp_path / "custom.expert", signing_key) == tmp_path / "custom.expert"
    with pytest.raises(PackageError, match="output directory does not exist"):
        pack(expert_source, tmp_path / "missing" / "x.expert", signing_key)


def test_output_directory_is_created_when_missing(tmp_path, expert_source, signing_key):
    assert pack(expert_source, tmp_path / "dist", signing_key) == tmp_path / "dist" / "sql-1.0.0.expert"
    (tmp_path / "plain-file").write_text("x")
    with pytest.raises(PackageError, match="output path exists and is not a directory"):
        pack(expert_source, tmp_path / "plain-file", signing_key)


def test_a_file_changed_while_packing_never_becomes_a_package(tmp_path):
    (tmp_path / "w").write_bytes(b"new bytes")
    with pytest.raises(PackageError) as info:
        write_archive(tmp_path / "p.expert", [("w", tmp_path / "w")], expected_sha256={"w": "0" * 64})
    assert info.value.message == "w changed while being packed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_a_file_that_grows_while_packing_never_becomes_a_package(tmp_path):
    # /proc files stat as 0 bytes but read as more: exactly a file that grew after it was measured
    with pytest.raises(PackageError) as info:
        write_archive(tmp_path / "p.expert", [("status", Path("/proc/self/status"))])
    assert info.value.message == "status changed size while being packed"
    assert list(tmp_path.iterdir()) == []


def make_base(directory, vocab=256, seed=1):
    directory.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    save_file({"model.embed_tokens.weight": rng.standard_normal((vocab, 8), dtype=np.float32)},
              str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps({"model_type": "qwen3", "vocab_size": vocab}))
    (directory / "tokenizer.json").write_text('{"model": {"type": "BPE"}}')
    return directory


def test_base_binding_fills_placeholders_and_checks_values(tmp_path, signing_key):
    base = make_base(tmp_path / "base", vocab=320)
    src = make_expert_source(tmp_path / "src", base={"name": "tiny", "version": "^1.0", "weights_sha256": "0" * 64,
                                                      "tokenizer_sha256": "0" * 64, "vocab_size": 320})
    manifest = verify_package(pack(src, tmp_path, signing_key, base_dir=base)).manifest
    weights, tokenizer = directory_digests(base)
    assert manifest.get("base") == {"name": "tiny", "version": "^1.0", "weights_sha256": weights,
                                    "tokenizer_sha256": tokenizer, "vocab_size": 320}
    other = make_base(tmp_path / "other-base", vocab=320, seed=2)
    src2 = make_expert_source(tmp_path / "src2", base=dict(manifest.get("base")))
    error = refused(src2, tmp_path / "out", signing_key, base_dir=other)
    assert error.message == (f"base.weights_sha256 is {weights} but the base in {other} has "
                             f"{directory_digests(other)[0]}")


def test_base_binding_to_an_unpacked_base_package(tmp_path, signing_key):
    base = make_base(tmp_path / "base")
    (base / "manifest.json").write_text(json.dumps({
        "format_version": 1, "name": "tiny", "version": "2.1.0", "kind": "base", "description": "", "license": "MIT",
        "authors": ["t"], "files": {"model.safetensors": {"sha256": "a" * 64, "size": 1}},
        "model": {"architecture": "qwen3", "weights_sha256": "a" * 64, "tokenizer_sha256": "a" * 64,
                  "vocab_size": 256, "context_length": 128}}))
    src = make_expert_source(tmp_path / "src", base={"name": "tiny", "version": "^1.0"})
    error = refused(src, tmp_path / "out", signing_key, base_dir=base)
    assert error.message == "base.version '^1.0' does not include the base's version 2.1.0"
    src = make_expert_source(tmp_path / "src2", base={})
    bound = verify_package(pack(src, tmp_path, signing_key, base_dir=base)).manifest.get("base")
    assert (bound["name"], bound["version"], bound["vocab_size"]) == ("tiny", "^2.1.0", 256)
    (tmp_path / "not-a-model").mkdir()
    (tmp_path / "not-a-model" / "notes.txt").write_text("hi")
    assert refused(src, tmp_path / "out", signing_key, base_dir=tmp_path / "not-a-model").message == \
        "no *.safetensors weights in the base directory"


def test_rebuilt_members_match_source_order(packed_expert):
    names = [info.name for info, _ in package_members(packed_expert)]
    assert names[2:] == sorted(names[2:])
