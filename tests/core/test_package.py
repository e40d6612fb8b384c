"""Reading, verifying and extracting real signed packages, and refusing every tampered one."""

import json
import os
import shutil
import subprocess
import tarfile

import pytest
import zstandard

from expertpm import IntegrityError, PackageError, SignatureError, UnsafeArchiveError
from expertpm._canonical import canonical_json, parse_canonical, sha256_file
from expertpm._package import extract_verified, pack, read_manifest, verify_package
from expertpm_testing.packages import package_members, tar_member, write_tar_zst

FILES = ["README.md", "adapter_config.json", "adapter_model.safetensors"]


def contents(package):
    return [(info.name, data) for info, data in package_members(package)]


def rebuild(tmp_path, members, name="edited.expert"):
    return write_tar_zst(tmp_path / name, [tar_member(n, d) for n, d in members])


def replace(members, name, data):
    return [(n, data if n == name else d) for n, d in members]


def test_pack_verify_extract_round_trip(tmp_path, packed_expert, expert_source, signing_key):
    assert packed_expert.name == "sql-1.0.0.expert"
    names = [n for n, _ in contents(packed_expert)]
    assert names == ["manifest.json", "signature.json", *FILES]
    verified = verify_package(packed_expert, trusted_key_ids={signing_key.key_id})
    assert verified.manifest.id == "sql@1.0.0" and verified.signature.key_id == signing_key.key_id
    assert (verified.digest, verified.size) == sha256_file(packed_expert)
    for path, entry in verified.manifest.files.items():
        assert (entry.sha256, entry.size) == sha256_file(expert_source / path)
    dest = tmp_path / "out"
    dest.mkdir()
    again = extract_verified(packed_expert, dest, expected_sha256=verified.digest, fsync=True)
    assert again == verified
    assert sorted(p.name for p in dest.iterdir()) == sorted(["manifest.json", "signature.json", *FILES])
    for name in FILES:
        assert (dest / name).read_bytes() == (expert_source / name).read_bytes()
    manifest_bytes = (dest / "manifest.json").read_bytes()
    assert canonical_json(parse_canonical(manifest_bytes)) == manifest_bytes
    manifest, signature, raw = read_manifest(packed_expert)
    assert (manifest.id, signature, raw) == ("sql@1.0.0", verified.signature, manifest_bytes)


def test_head_is_a_stored_frame_that_standard_tools_read(tmp_path, packed_expert):
    data = packed_expert.read_bytes()
    head = zstandard.get_frame_parameters(data[:18])
    assert head.content_size == sum(len(tar_member(n, d)[0].tobuf()) + len(d) + (-len(d) % 512)
                                    for n, d in contents(packed_expert)[:2])
    assert not head.has_checksum
    if shutil.which("tar"):
        listing = subprocess.run(["tar", "--zstd", "-tvf", str(packed_expert)], capture_output=True, text=True)
        if listing.returncode == 0:
            assert [line.split()[-1] for line in listing.stdout.splitlines()] == ["manifest.json", "signature.json",
                                                                                  *FILES]
            assert all(line.startswith("-rw-r--r-- 0/0") for line in listing.stdout.splitlines())


def test_extract_from_a_stream(tmp_path, packed_expert):
    dest = tmp_path / "out"
    dest.mkdir()
    with open(packed_expert, "rb") as f:
        verified = extract_verified(f, dest)
    assert verified.digest == sha256_file(packed_expert)[0]


def test_read_manifest_reads_only_the_head(tmp_path, expert_source, signing_key):
    (expert_source / "z-data.dat").write_bytes(os.urandom(1 << 20))
    data = pack(expert_source, tmp_path, signing_key).read_bytes()
    cut = tmp_path / "cut.expert"
    cut.write_bytes(data[: len(data) * 3 // 4])
    assert read_manifest(cut)[0].id == "sql@1.0.0"
    with pytest.raises(IntegrityError, match="archive is truncated or corrupt"):
        verify_package(cut)


def check_refused(tmp_path, package, error, message, **kw):
    with pytest.raises(error) as info:
        verify_package(package, **kw)
    assert info.value.message == message
    dest = tmp_path / "dest"
    dest.mkdir(exist_ok=True)
    for p in dest.iterdir():
        p.unlink()
    with pytest.raises(error) as info:
        extract_verified(package, dest, **kw)
    assert info.value.message == message
    return dest


def test_tampered_weight_bytes(tmp_path, packed_expert):
    members = contents(packed_expert)
    weights = bytearray(dict(members)["adapter_model.safetensors"])
    weights[-1] ^= 1
    bad = rebuild(tmp_path, replace(members, "adapter_model.safetensors", bytes(weights)))
    check_refused(tmp_path, bad, IntegrityError,
                  "file 'adapter_model.safetensors' does not match its sha256 in the manifest")


def test_weights_of_another_size_are_cut_off_at_the_declared_size(tmp_path, packed_expert):
    members = contents(packed_expert)
    bigger = dict(members)["adapter_model.safetensors"] + b"\0" * 4096
    bad = rebuild(tmp_path, replace(members, "adapter_model.safetensors", bigger))
    declared = len(dict(members)["adapter_model.safetensors"])
    dest = check_refused(tmp_path, bad, IntegrityError,
                         f"file 'adapter_model.safetensors' is {len(bigger)} bytes but the manifest says {declared}")
    assert not (dest / "adapter_model.safetensors").exists()


def test_tampered_manifest(tmp_path, packed_expert, signing_key):
    members = contents(packed_expert)
    doc = json.loads(dict(members)["manifest.json"])
    doc["description"] = "totally harmless"
    bad = rebuild(tmp_path, replace(members, "manifest.json", canonical_json(doc)))
    dest = check_refused(tmp_path, bad, SignatureError, f"bad signature by key {signing_key.key_id[:16]}")
    assert list(dest.iterdir()) == []


def test_missing_and_extra_files(tmp_path, packed_expert):
    members = contents(packed_expert)
    missing = rebuild(tmp_path, [m for m in members if m[0] != "README.md"], "missing.expert")
    check_refused(tmp_path, missing, IntegrityError,
                  "file(s) listed in the manifest are missing from the archive: README.md")
    extra = rebuild(tmp_path, members + [("extra.txt", b"surprise")], "extra.expert")
    dest = check_refused(tmp_path, extra, IntegrityError, "file 'extra.txt' is in the archive but not in the manifest")
    assert not (dest / "extra.txt").exists()


def test_signature_by_an_untrusted_or_different_key(tmp_path, packed_expert, signing_key, other_key):
    message = f"signed by key {signing_key.key_id[:16]}, which is not trusted"
    check_refused(tmp_path, packed_expert, SignatureError, message, trusted_key_ids={other_key.key_id})
    members = contents(packed_expert)
    resigned = canonical_json(other_key.sign(dict(members)["manifest.json"]).to_dict())
    bad = rebuild(tmp_path, replace(members, "signature.json", resigned))
    check_refused(tmp_path, bad, SignatureError, f"signed by key {other_key.key_id[:16]}, which is not trusted",
                  trusted_key_ids={signing_key.key_id})
    assert verify_package(bad).signature.key_id == other_key.key_id  # valid, just not by a trusted key
    forged = dict(other_key.sign(b"something else").to_dict(), key_id=signing_key.key_id)
    bad = rebuild(tmp_path, replace(members, "signature.json", canonical_json(forged)), "forged.expert")
    check_refused(tmp_path, bad, SignatureError, "signature key id does not match its public key")


def test_members_out_of_order_or_absent(tmp_path, packed_expert):
    members = contents(packed_expert)
    swapped = rebuild(tmp_path, [members[1], members[0], *members[2:]], "swapped.expert")
    check_refused(tmp_path, swapped, PackageError,
                  "not a .expert package: member 1 must be manifest.json, found 'signature.json'")
    lonely = rebuild(tmp_path, members[:1], "lonely.expert")
    check_refused(tmp_path, lonely, PackageError, "not a .expert package: member 2 must be signature.json, found nothing")


def test_expected_digest_and_destination_rules(tmp_path, packed_expert):
    digest = sha256_file(packed_expert)[0]
    with pytest.raises(IntegrityError) as info:
        verify_package(packed_expert, expected_sha256="0" * 64)
    assert info.value.message == f"package sha256 is {digest}, expected {'0' * 64}"
    dest = tmp_path / "busy"
    dest.mkdir()
    (dest / "x").write_text("x")
    with pytest.raises(PackageError, match="extraction directory is not empty"):
        extract_verified(packed_expert, dest)
    with pytest.raises(PackageError, match="extraction directory does not exist"):
        extract_verified(packed_expert, tmp_path / "nowhere")


@pytest.mark.parametrize("name,message", [
    ("/tmp/evil-expertpm", "member '/tmp/evil-expertpm' has an absolute path"),
    ("../evil", "member '../evil' has a '..' component"),
    ("README.md", "member 'README.md' appears more than once"),
    ("readme.MD", "member 'readme.MD' differs only in case from 'README.md'"),
])
def test_unsafe_members_after_a_valid_head_write_nothing(tmp_path, packed_expert, name, message):
    members = contents(packed_expert)
    bad = rebuild(tmp_path, members + [(name, b"pwned")])
    dest = check_refused(tmp_path, bad, UnsafeArchiveError, message)
    assert not (tmp_path / "evil").exists() and not (dest.parent.parent / "evil").exists()
    assert all(p.read_bytes() != b"pwned" for p in dest.iterdir())


def test_symlink_member_after_a_valid_head(tmp_path, packed_expert):
    members = [tar_member(n, d) for n, d in contents(packed_expert)]
    bad = write_tar_zst(tmp_path / "link.expert", members[:2] + [
        tar_member("adapter_model.safetensors", type=tarfile.SYMTYPE, linkname="/etc/passwd")] + members[2:])
    dest = check_refused(tmp_path, bad, UnsafeArchiveError, "member 'adapter_model.safetensors' is a symbolic link")
    assert sorted(p.name for p in dest.iterdir()) == ["manifest.json", "signature.json"]
