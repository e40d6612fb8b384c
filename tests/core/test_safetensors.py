"""Strict safetensors header validation, on real files written by safetensors and on crafted ones."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from safetensors.numpy import save_file

from expertpm._errors import PackageError
from expertpm._safetensors import validate_file
from expertpm_testing import write_raw_safetensors


def test_accepts_files_written_by_safetensors(tmp_path):
    path = tmp_path / "ok.safetensors"
    save_file({"a.weight": np.ones((4, 3), np.float32), "b": np.zeros((2,), np.int8),
               "empty": np.zeros((0, 5), np.float16), "scalar": np.array(3.0, np.float64)},
              str(path), metadata={"format": "pt"})
    info = validate_file(path)
    assert {t.name for t in info.tensors} == {"a.weight", "b", "empty", "scalar"}
    assert info.metadata == {"format": "pt"}
    assert info.data_start + info.data_size == path.stat().st_size


def test_accepts_sub_byte_dtype_with_whole_bytes(tmp_path):
    path = write_raw_safetensors(tmp_path / "f4.safetensors",
                                 {"q": {"dtype": "F4", "shape": [2, 3], "data_offsets": [0, 3]}}, b"\0" * 3)
    assert validate_file(path).tensors[0].shape == (2, 3)


def _error(path) -> str:
    with pytest.raises(PackageError) as info:
        validate_file(path)
    return str(info.value)


def entry(dtype="F32", shape=(2,), begin=0, end=8):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": [begin, end]}


@pytest.mark.parametrize(
    ("header", "buffer", "message"),
    [
        ({"a": entry(), "b": entry(begin=12, end=20)}, b"\0" * 20, "tensor 'b' at offset 12 leaves a gap of 4 bytes"),
        ({"a": entry(), "b": entry(begin=4, end=12)}, b"\0" * 12, "tensor 'b' at offset 4 overlaps the previous tensor"),
        ({"a": entry(end=8)}, b"\0" * 4, "tensors cover 8 bytes of data but the file holds 4 after the header"),
        ({"a": entry(end=8)}, b"\0" * 9, "tensors cover 8 bytes of data but the file holds 9 after the header"),
        ({"a": entry(shape=(3,), end=8)}, b"\0" * 8, "tensor 'a' is F32 × [3] = 12 bytes but its data_offsets span 8 bytes"),
        ({"a": entry(dtype="F5")}, b"\0" * 8, "tensor 'a' has unknown dtype 'F5'"),
        ({"a": entry(shape=(2, -1))}, b"\0" * 8, "tensor 'a' shape must be a list of non-negative integers"),
        ({"a": entry(shape=(True,))}, b"\0" * 8, "shape must be a list of non-negative integers"),
        ({"a": entry(begin=8, end=0)}, b"\0" * 8, "tensor 'a' data_offsets end 0 is before begin 8"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "extra": 1}}, b"\0" * 8,
         "tensor 'a' must have exactly the fields dtype, shape and data_offsets"),
        ({"a": entry(), "__metadata__": {"k": 1}}, b"\0" * 8, "'__metadata__' must map strings to strings"),
        ({"a": entry(dtype="F4", shape=(3,), end=2)}, b"\0" * 2, "tensor 'a' is F4 × [3] = 1.5 bytes"),
        ({"": entry()}, b"\0" * 8, "a tensor has an empty name"),
        ([1, 2], b"", "it must be a JSON object starting with '{'"),
    ],
)
def test_refuses_malformed_headers(tmp_path, header, buffer, message):
    path = write_raw_safetensors(tmp_path / "bad.safetensors", header, buffer)
    assert message in _error(path)


def test_refuses_duplicate_tensor_names(tmp_path):
    raw = b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}'
    path = write_raw_safetensors(tmp_path / "dup.safetensors", raw, b"\0\0")
    assert "invalid safetensors header: duplicate name 'a'" in _error(path)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"a": ', "not JSON (Expecting value at byte 6)"),
        (b'{"a": NaN}', "non-standard JSON constant NaN"),
        (b'{"a":"\xff"}', "it is not UTF-8"),
        (b"{\"a\":" + b"[" * 100_000, "nested too deeply"),
    ],
)
def test_refuses_non_json_headers(tmp_path, raw, message):
    path = write_raw_safetensors(tmp_path / "bad.safetensors", raw, b"")
    assert message in _error(path)


def test_refuses_header_length_over_the_cap_without_reading_it(tmp_path):
    path = tmp_path / "huge.safetensors"
    path.write_bytes(struct.pack("<Q", 2**62) + b"{}")
    assert f"safetensors header length {2**62} exceeds the 100000000-byte cap" in _error(path)


def test_refuses_header_length_past_end_of_file(tmp_path):
    path = tmp_path / "short.safetensors"
    path.write_bytes(struct.pack("<Q", 1000) + b"{}")
    assert "safetensors header length 1000 runs past the end of the 10-byte file" in _error(path)


def test_refuses_file_too_short_for_a_header(tmp_path):
    path = tmp_path / "tiny.safetensors"
    path.write_bytes(b"\1\0")
    message = _error(path)
    assert message.startswith(f"{path}: safetensors file is 2 bytes, too short for a header")
    assert "re-export it with safetensors.save_file" in message


def test_header_cap_is_configurable(tmp_path):
    path = write_raw_safetensors(tmp_path / "m.safetensors", {"__metadata__": {"k": "v" * 200}}, b"")
    with pytest.raises(PackageError, match="exceeds the 64-byte cap"):
        validate_file(path, max_header_bytes=64)
    assert validate_file(path).metadata == {"k": "v" * 200}


def test_padding_spaces_after_the_json_are_allowed(tmp_path):
    raw = json.dumps({"a": entry(dtype="U8", shape=(1,), end=1)}).encode() + b"       "
    path = write_raw_safetensors(tmp_path / "pad.safetensors", raw, b"\0")
    assert validate_file(path).tensors[0].name == "a"
