"""What keeps every command's fixed cost low: documents that pass the quick schema check never
load jsonschema (and the check never disagrees with jsonschema), reading index settings never
loads pygit2, and the CLI's exit skips the final garbage collection only when it is the program."""

from __future__ import annotations

import copy
import json
import random
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from expertpm._schema import SCHEMA_DIR, quick_check, schema_problems

SCHEMAS = sorted(p.name.removesuffix(".schema.json") for p in SCHEMA_DIR.glob("*.schema.json"))

# Strings the generator picks from: each schema pattern is met by some, broken by others.
POOL = [
    "a", "bench-00", "tiny-qwen3", "Proj.name_1", "1.0.0", "1.2.3-rc.1+build.5", "^1", ">=1, <2", "*", "bench-*",
    "0" * 64, "ab" * 32, "f" * 128, "0123456789abcdef", "deadbeef", "00", "ff", "2026-11-21T12:00:00Z",
    "index+" + "a" * 16, "git+https://example.invalid/x.git@v1", "https://example.invalid/{name}/{sha256}",
    "adapter_model.safetensors", "dir/a.bin", "../x", "/abs", "q_proj", "model.layers.0", "name@^1", "ed25519",
    "lora", "dora", "ia3", "prompt", "qwen3", "expert", "base", "root", "delegation", "float32", "accuracy",
    "x y", "", "Ω", "name\n", "-bad", "a--b", "A" * 65, "1" * 63, "Apache-2.0", "v1", "abc1234",
]
WEIRD = [None, True, False, 0, 1, -1, 2.0, 1.5, float("nan"), "", "x", "A", "0" * 64, [], {}, ["a", "a"],
         [1, True], {"a": 1}, 10 ** 12]


def _any(rng: random.Random, choices=WEIRD + POOL):
    return copy.deepcopy(rng.choice(choices))  # a fresh copy: later mutations must not share it


def _resolve(schema, root):
    while isinstance(schema, dict) and "$ref" in schema:
        target = root
        for part in schema["$ref"][2:].split("/"):
            target = target[part]
        schema = target
    return schema


def _fits(text: str, schema: dict) -> bool:
    import re

    return (len(text) >= schema.get("minLength", 0) and len(text) <= schema.get("maxLength", 1 << 30)
            and ("pattern" not in schema or re.search(schema["pattern"], text) is not None))


def _generate(schema, root, rng: random.Random, depth: int = 0):
    """A document shaped by `schema`, often valid, sometimes not (conditional rules are left to chance)."""
    schema = _resolve(schema, root)
    if not isinstance(schema, dict) or depth > 8:
        return _any(rng, WEIRD)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return rng.choice(schema["enum"])
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return _generate(rng.choice(schema[key]), root, rng, depth + 1)
    if "if" in schema and "properties" not in schema and "then" in schema:
        return _generate(rng.choice([schema["then"], schema.get("else", True)]), root, rng, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = rng.choice(kind)
    if kind is None:
        kind = "object" if {"properties", "required", "additionalProperties"} & schema.keys() else "string"
    if kind == "object":
        props = schema.get("properties", {})
        doc = {}
        for key, sub in props.items():
            if key in schema.get("required", ()) or rng.random() < 0.7:
                doc[key] = _generate(sub, root, rng, depth + 1)
        for rule in [schema, *schema.get("allOf", ())]:
            _apply_condition(doc, rule, props, root, rng, depth)
        extra = schema.get("additionalProperties", True)
        if isinstance(extra, dict):
            names = _resolve(schema.get("propertyNames", {"type": "string"}), root)
            for _ in range(rng.randint(schema.get("minProperties", 0), 3)):
                candidates = [s for s in POOL if _fits(s, names)] or ["k"]
                doc[rng.choice(candidates)] = _generate(extra, root, rng, depth + 1)
        return doc
    if kind == "array":
        low = schema.get("minItems", 0)
        return [_generate(schema.get("items", {}), root, rng, depth + 1)
                for _ in range(rng.randint(low, min(schema.get("maxItems", low + 3), low + 3)))]
    if kind == "string":
        candidates = [s for s in POOL if _fits(s, schema)]
        return rng.choice(candidates) if candidates else "x" * max(1, schema.get("minLength", 1))
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -1) + 1)
        return rng.randint(low, schema.get("maximum", low + 100))
    if kind == "number":
        return rng.uniform(schema.get("minimum", 0), schema.get("maximum", 100))
    if kind == "boolean":
        return rng.random() < 0.5
    return None


def _apply_condition(doc: dict, rule: dict, props: dict, root, rng: random.Random, depth: int) -> None:
    """Follow an `if`/`then` of the shapes our schemas use (then: required, not required/anyOf)."""
    if "if" not in rule or not jsonschema.Draft202012Validator(rule["if"]).is_valid(doc):
        return
    then = rule.get("then", {})
    for key in then.get("required", ()):
        if key not in doc and key in props:
            doc[key] = _generate(props[key], root, rng, depth + 1)
    forbidden = then.get("not", {})
    for each in [forbidden, *forbidden.get("anyOf", ())]:
        for key in each.get("required", ()):
            doc.pop(key, None)


def _mutate(doc, rng: random.Random):
    """`doc` with one random change somewhere inside it."""
    containers = []

    def walk(node):
        if isinstance(node, (dict, list)):
            containers.append(node)
            for child in (node.values() if isinstance(node, dict) else node):
                walk(child)

    walk(doc)
    if not containers:
        return _any(rng, WEIRD)
    node = rng.choice(containers)
    action = rng.random()
    if isinstance(node, dict):
        if node and action < 0.3:
            del node[rng.choice(list(node))]
        elif action < 0.45:
            node[rng.choice(["bogus", *POOL[:12]])] = _any(rng)
        elif node:
            node[rng.choice(list(node))] = _any(rng)
    elif node and action < 0.3:
        node.append(copy.deepcopy(node[0]))
    elif node and action < 0.7:
        node[rng.randrange(len(node))] = _any(rng)
    else:
        node.append(_any(rng))
    return doc


@pytest.mark.parametrize("name", SCHEMAS)
def test_quick_check_never_disagrees_with_jsonschema(name: str) -> None:
    root = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(root)
    rng = random.Random(f"quick-check-{name}")
    answers = {(True, True): 0, (False, False): 0, (None, True): 0, (None, False): 0}
    for i in range(300):
        doc = _generate(root, root, rng)
        for _ in range(i % 3):
            doc = _mutate(doc, rng)
        valid = validator.is_valid(doc)
        quick = quick_check(doc, name)
        assert quick is None or quick == valid, (name, doc, quick, valid)
        answers[quick, valid] += 1
    # the check is useful: most valid documents skip jsonschema, and both answers occur
    assert answers[True, True] >= 30 and answers[False, False] >= 30, answers
    assert answers[True, True] >= 3 * answers[None, True], answers


def test_quick_check_edge_values() -> None:
    """Values where Python's and JSON Schema's notions differ: the check is sure only when right."""
    project = {"project": {"name": "p"}, "tool": {"expertpm": {}}}
    cases = [
        ({**project, "tool": {"expertpm": {"max_chain": 2.0}}}, True),  # 2.0 is an integer to jsonschema
        ({**project, "tool": {"expertpm": {"max_chain": 2.5}}}, False),
        ({**project, "tool": {"expertpm": {"max_chain": 10 ** 40}}}, False),
        ({**project, "tool": {"expertpm": {"max_chain": True}}}, False),  # a boolean is not
        ({**project, "tool": {"expertpm": {"max_chain": float("nan")}}}, False),
        ({**project, "tool": {"expertpm": {"indexes": ["a", "a"]}}}, False),
        ({**project, "tool": {"expertpm": {"indexes": ["a", "b"]}}}, True),
        ({**project, "base": "tiny@^1"}, True),
        ({**project, "base": {"name": "tiny"}}, True),
        ({**project, "base": {"name": "tiny", "x": 1}}, False),
    ]
    validator = jsonschema.Draft202012Validator(json.loads((SCHEMA_DIR / "project.schema.json").read_text()))
    for doc, expected in cases:
        assert quick_check(doc, "project") is expected, doc
        if expected is not None:
            assert validator.is_valid(doc) is expected, doc
    lock = {"version": True, "metadata": {"content-hash": "0" * 64}}  # const 1: True is not 1
    assert quick_check(lock, "lockfile") is False
    assert schema_problems(lock, "lockfile") == [("version", "1 was expected")]
    assert schema_problems({**lock, "version": 1.0}, "lockfile") == []  # 1.0 == 1 to jsonschema


def _python(code: str, cwd: Path | None = None) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, check=True)
    return result.stdout.strip().splitlines()[-1]


LOCK = f"""# @generated by expertpm — do not edit
version = 1

[metadata]
content-hash = "{'1' * 64}"

[[index]]
name = "default"
fingerprint = "{'2' * 64}"
snapshot_version = 6

[[package]]
name = "tiny"
version = "1.0.0"
kind = "base"
source = "index+{'2' * 64}"
sha256 = "{'3' * 64}"
size = 10
manifest_sha256 = "{'4' * 64}"
publisher = "{'5' * 64}"
signature = "{'6' * 128}"
dependencies = []
"""


def test_reading_valid_project_and_lock_loads_neither_jsonschema_nor_pygit2(tmp_path: Path) -> None:
    (tmp_path / "experts.toml").write_text('[project]\nname = "demo"\nbase = "tiny@^1"\n\n[experts]\nsql = "^1"\n')
    (tmp_path / "experts.lock").write_text(LOCK)
    loaded = _python(
        "import sys\n"
        "from expertpm._project import load_project\n"
        "from expertpm._lockfile import read_lock\n"
        "import expertpm._index, expertpm._actions.sources\n"
        "project = load_project('experts.toml'); lock = read_lock('.')\n"
        "assert project.name == 'demo' and [p.name for p in lock.packages] == ['tiny'], (project, lock)\n"
        "print(sorted(m for m in ('jsonschema', 'pygit2') if m in sys.modules))", cwd=tmp_path)
    assert loaded == "[]"


def test_a_malformed_lock_still_names_the_field(tmp_path: Path) -> None:
    from expertpm._errors import FormatError
    from expertpm._lockfile import read_lock

    (tmp_path / "experts.lock").write_text(LOCK.replace('kind = "base"', 'kind = "adapter"'))
    with pytest.raises(FormatError, match=r"package\[0\]\.kind: 'adapter' is not one of \['expert', 'base'\]"):
        read_lock(tmp_path)


def test_the_program_freezes_the_collector_on_exit_and_a_caller_keeps_it(tmp_path: Path) -> None:
    probe = ("import gc, sys\nfrom expertpm.cli import main\nsys.argv = ['expertpm', *{argv!r}]\n"
             "try:\n    status = main({call})\nexcept SystemExit as exc:\n    status = exc.code\n"
             "print(status, gc.get_freeze_count() > 0)")
    assert _python(probe.format(argv=["init"], call=""), cwd=tmp_path) == "0 True"
    assert (tmp_path / "experts.toml").read_text().startswith("[project]")  # written and closed before exit
    assert _python(probe.format(argv=["--no-such-flag"], call=""), cwd=tmp_path) == "2 True"
    assert _python(probe.format(argv=[], call="['init']"), cwd=tmp_path) == "1 False"  # exists already: an error


def test_the_cli_writes_its_files_and_messages_before_exiting(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "expertpm", "init"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0 and (tmp_path / "experts.toml").is_file()
    again = subprocess.run([sys.executable, "-m", "expertpm", "init"], cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode == 1 and again.stderr.startswith("error: ") and again.stderr.count("\n") == 1
