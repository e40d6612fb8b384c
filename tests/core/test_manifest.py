"""Manifest validation reports the exact field path of every problem."""

import pytest

from expertpm import FormatError, NameError_
from expertpm._manifest import Manifest, weights_digest
from expertpm._names import normalize_name, skeleton, validate_name
from expertpm._versions import Version, VersionRange

GOOD = {
    "format_version": 1, "name": "sql", "version": "1.0.0", "kind": "expert", "description": "text to SQL",
    "license": "Apache-2.0", "authors": ["forge"],
    "files": {"adapter_model.safetensors": {"sha256": "a" * 64, "size": 10}},
    "base": {"name": "tiny", "version": "^1.0", "weights_sha256": "b" * 64, "tokenizer_sha256": "c" * 64,
             "vocab_size": 4096},
    "adapter": {"type": "lora", "rank": 8, "alpha": 16, "target_modules": ["q_proj"], "dtype": "float32"},
}


def problems(doc):
    with pytest.raises(FormatError) as info:
        Manifest.from_dict(doc)
    return dict(info.value.problems)


def test_good_manifest_loads():
    m = Manifest.from_dict(GOOD)
    assert m.id == "sql@1.0.0" and m.weights_sha256 == "b" * 64


def test_wrong_types_report_field_paths():
    bad = dict(GOOD, adapter=dict(GOOD["adapter"], rank="8"), files={"w.safetensors": {"sha256": "x", "size": -1}})
    found = problems(bad)
    assert found["adapter.rank"] == "'8' is not of type 'integer'"
    assert found['files."w.safetensors".sha256'] == "'x' has an invalid format"
    assert 'files."w.safetensors".size' in found


def test_invalid_semver_and_range():
    found = problems(dict(GOOD, version="1.0", requires={"json": ">=>1"}))
    assert found["version"].startswith("invalid version '1.0'")
    assert found["requires.json"].startswith("invalid version range '>=>1'")


def test_pickle_weights_and_case_duplicates_refused():
    files = {"model.bin": {"sha256": "a" * 64, "size": 1}, "A.safetensors": {"sha256": "a" * 64, "size": 1},
             "a.safetensors": {"sha256": "a" * 64, "size": 1}}
    found = problems(dict(GOOD, files=files))
    assert found['files."model.bin"'] == "pickle-based weights are refused; use safetensors"
    assert "differs only in case" in found['files."a.safetensors"']


def test_expert_needs_base_and_base_kind_forbids_adapter():
    found = problems({k: v for k, v in GOOD.items() if k != "base"})
    assert found["base"] == "is required"
    found = problems(dict(GOOD, kind="base"))
    assert "model" in found


def test_unknown_field_is_named():
    assert "unknown field(s): 'colour'" in problems(dict(GOOD, colour="red"))["(document)"]


@pytest.mark.parametrize("name,message", [
    ("SQL", "did you mean 'sql'"), ("a--b", "invalid expert name"), ("-a", "invalid expert name"),
    ("x" * 65, "65 characters long"), ("sql-\u0435xpert", "non-ASCII character U+0435"),
])
def test_bad_names(name, message):
    with pytest.raises(NameError_) as info:
        validate_name(name)
    assert message in str(info.value)


def test_normalise_and_confusable_skeleton():
    assert normalize_name("SQL_Expert") == "sql-expert"
    assert skeleton("sql-expert") == skeleton("sq1expert") == skeleton("sqi-expert")
    assert skeleton("sql") != skeleton("cypher")


@pytest.mark.parametrize("rng,yes,no", [
    ("^1.2", ["1.2.0", "1.9.9"], ["2.0.0", "1.1.9", "2.0.0-rc.1"]),
    ("~1.2.3", ["1.2.3", "1.2.9"], ["1.3.0"]),
    (">=1, <2", ["1.0.0", "1.5.0"], ["2.0.0", "0.9.9"]),
    ("*", ["0.0.1", "9.9.9"], ["1.0.0-alpha"]),
    ("1.2.3", ["1.2.3"], ["1.2.4"]),
    ("^0.2.3", ["0.2.5"], ["0.3.0"]),
    (">=1.0.0-rc.1, <2", ["1.0.0-rc.2", "1.0.0"], ["1.1.0-rc.1"]),
])
def test_version_ranges(rng, yes, no):
    r = VersionRange.parse(rng)
    assert all(r.contains(Version.parse(v)) for v in yes)
    assert not any(r.contains(Version.parse(v)) for v in no)


def test_weights_digest_only_counts_safetensors():
    a = weights_digest({"model.safetensors": "1" * 64, "config.json": "2" * 64})
    b = weights_digest({"model.safetensors": "1" * 64, "config.json": "3" * 64})
    assert a == b != weights_digest({"model.safetensors": "4" * 64})
