"""`expertpm store add` refuses bad packages with one exact line and leaves nothing in the store."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save

from expertpm._canonical import sha256_file
from expertpm_testing import (package_members, raw_safetensors, sign_and_archive, store_entries, tar_member,
                              write_tar_zst)

EMPTY = {"packages": [], "refs": [], "tmp": []}
HINT = "the file is not a valid safetensors file; re-export it with safetensors.save_file"


def _refused(cli, home, package, *extra) -> str:
    result = cli("store", "add", str(package), *extra)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert store_entries(home) == EMPTY
    return lines[0]


def f32(shape, begin, end):
    return {"dtype": "F32", "shape": list(shape), "data_offsets": [begin, end]}


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (b"\xff" * 8 + b"{}", "safetensors header length 18446744073709551615 exceeds the 100000000-byte cap"),
        (raw_safetensors(b"{not json}", b""),
         "invalid safetensors header: not JSON (Expecting property name enclosed in double quotes at byte 1)"),
        (raw_safetensors(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                         b'"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', b"\0\0"),
         "invalid safetensors header: duplicate name 'a'"),
        (raw_safetensors({"a": f32((3, 3), 0, 32)}, bytes(32)),
         "invalid safetensors header: tensor 'a' is F32 × [3, 3] = 36 bytes but its data_offsets span 32 bytes"),
        (raw_safetensors({"a": f32((2,), 0, 8), "b": f32((2,), 16, 24)}, bytes(24)),
         "invalid safetensors header: tensor 'b' at offset 16 leaves a gap of 8 bytes (expected offset 8)"),
        (raw_safetensors({"a": f32((4,), 0, 16), "b": f32((2,), 8, 16)}, bytes(16)),
         "invalid safetensors header: tensor 'b' at offset 8 overlaps the previous tensor (expected offset 16)"),
        (raw_safetensors({"a": f32((4,), 0, 16)}, bytes(8)),
         "invalid safetensors header: tensors cover 16 bytes of data but the file holds 8 after the header "
         "(offsets past the end, or trailing bytes)"),
    ],
    ids=["header-too-big", "not-json", "duplicate-names", "dtype-shape-bytes", "gap", "overlap", "past-end"],
)
def test_malformed_safetensors_in_a_signed_package(cli, home, tmp_path, signing_key, weights, message):
    package = sign_and_archive(tmp_path / "bad.expert", {"adapter_model.safetensors": weights}, signing_key)
    line = _refused(cli, home, package)
    assert line == f"error: {package}:adapter_model.safetensors: {message} — {HINT}"


def _rebuilt(tmp_path, packed_expert, change) -> str:
    members = [(info, change(info.name, data)) for info, data in package_members(packed_expert)]
    for info, data in members:
        info.size = len(data)
    return write_tar_zst(tmp_path / "changed.expert", members)


def test_tampered_weights(cli, home, tmp_path, packed_expert):
    def flip(name, data):
        if name != "adapter_model.safetensors":
            return data
        return data[:-1] + bytes([data[-1] ^ 1])

    package = _rebuilt(tmp_path, packed_expert, flip)
    assert _refused(cli, home, package) == (
        f"error: {package}: file 'adapter_model.safetensors' does not match its sha256 in the manifest — "
        "the package was modified after it was signed; get it again from its publisher")


def test_tampered_manifest(cli, home, tmp_path, packed_expert):
    def edit(name, data):
        if name != "manifest.json":
            return data
        doc = json.loads(data)
        doc["description"] = "now with more features"
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    package = _rebuilt(tmp_path, packed_expert, edit)
    line = _refused(cli, home, package)
    assert line.startswith(f"error: {package}:signature.json: bad signature by key ")


def test_extra_file_in_the_archive(cli, home, tmp_path, packed_expert):
    members = package_members(packed_expert) + [tar_member("zz-extra.bin", b"surprise")]
    package = write_tar_zst(tmp_path / "extra.expert", members)
    assert _refused(cli, home, package) == (
        f"error: {package}: file 'zz-extra.bin' is in the archive but not in the manifest — "
        "the package was modified after it was signed; get it again from its publisher")


def test_untrusted_signer_and_wrong_digest(cli, home, packed_expert, other_key):
    line = _refused(cli, home, packed_expert, "--trust", other_key.key_id)
    assert line.startswith(f"error: {packed_expert}: signed by key ")
    assert line.endswith(", which is not trusted — trust the publisher's key id explicitly, "
                         "or get the package from a trusted index")
    wrong = "0" * 64
    assert _refused(cli, home, packed_expert, "--sha256", wrong) == (
        f"error: {packed_expert}: package sha256 is {sha256_file(packed_expert)[0]}, expected {wrong} — "
        "the download is corrupt or was replaced; fetch it again")


def test_truncated_archive(cli, home, tmp_path, packed_expert):
    package = tmp_path / "cut.expert"
    package.write_bytes(packed_expert.read_bytes()[:-100])
    assert _refused(cli, home, package) == (
        f"error: {package}: archive is truncated or corrupt — download or copy the package again")


def test_missing_file_and_not_a_package(cli, home, tmp_path):
    assert _refused(cli, home, tmp_path / "nope.expert") == (
        f"error: {tmp_path / 'nope.expert'}: cannot open package: No such file or directory")
    junk = tmp_path / "junk.expert"
    junk.write_bytes(save({"x": np.zeros(3, np.float32)}))
    assert _refused(cli, home, junk) == (
        f"error: {junk}: archive is truncated or corrupt — this is not a zstd-compressed .expert file")
