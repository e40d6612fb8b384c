"""forge.toml: parsing into dataclasses, defaults, and one exact error per kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from expertpm_forge.recipe import STEP_ORDER, RecipeError, load_recipe

MINIMAL = """
[expert]
name = "sql"
version = "0.1.0"

[data]
sources = ["docs/*.md"]

[teacher]
endpoint = "http://127.0.0.1:8765/v1/"
model = "expertpm-stand-in"

[task]
kind = "sql"
"""


@pytest.fixture
def expert_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "experts" / "sql"
    root.mkdir(parents=True)
    return root


def load(root: Path, text: str):
    (root / "forge.toml").write_text(text, encoding="utf-8")
    return load_recipe(root)


def error(root: Path, text: str) -> str:
    with pytest.raises(RecipeError) as info:
        load(root, text)
    return str(info.value)


def test_minimal_recipe_gets_defaults(expert_dir: Path) -> None:
    recipe = load(expert_dir, MINIMAL)
    assert recipe.expert.name == "sql" and recipe.expert.version == "0.1.0"
    assert recipe.where == "experts/sql/forge.toml"
    assert recipe.root == expert_dir.absolute()
    assert recipe.pipeline.steps == STEP_ORDER
    assert recipe.train.method == "sft" and recipe.train.adapter == "lora" and recipe.train.rank == 8
    assert recipe.eval.metric == "sql_execution"
    assert recipe.data.chunk_tokens == 256 and recipe.data.near_threshold == 0.8
    assert recipe.teacher.endpoint == "http://127.0.0.1:8765/v1"
    assert recipe.teacher.template == "builtin:sql" and recipe.teacher.template_path.is_file()
    assert recipe.teacher.cache_dir == expert_dir.absolute() / ".forge" / "cache" / "teacher"


def test_full_recipe(expert_dir: Path) -> None:
    (expert_dir / "schema.sql").write_text("CREATE TABLE t (id INTEGER);", encoding="utf-8")
    (expert_dir / "routing.txt").write_text("# utterances\nhow many orders?\n\nlist customers\n", encoding="utf-8")
    (expert_dir / "teach.txt").write_text("<task>{{task}}</task>\n<document>{{chunk}}</document>", encoding="utf-8")
    recipe = load(expert_dir, MINIMAL.replace('model = "expertpm-stand-in"',
                                              'model = "m"\ntemplate = "teach.txt"\nn_per_chunk = 3') + """
schema = "schema.sql"
labels = []

[base]
package = "tiny-base@^0.1"

[train]
method = "dpo"
adapter = "dora"
rank = 4
alpha = 8
target_modules = ["q_proj", "v_proj"]
lr = 0.001
epochs = 2
seed = 7

[train.options]
note = "anything"

[eval]
size = 20
probe = "schema.sql"

[routing]
keywords = ["sql", "query"]
examples = "routing.txt"
priority = 0.7

[generation]
template = "Question: {prompt}\\nSQL:"
max_tokens = 64
stop = ["\\n"]
""")
    assert recipe.base.package == "tiny-base" and recipe.base.version_range == "^0.1"
    assert recipe.train.method == "dpo" and recipe.train.rank == 4 and recipe.train.alpha == 8.0
    assert recipe.train.target_modules == ("q_proj", "v_proj") and recipe.train.seed == 7
    assert dict(recipe.train.options) == {"note": "anything"}
    assert recipe.eval.size == 20 and recipe.eval.probe == expert_dir.absolute() / "schema.sql"
    assert recipe.routing.examples == ("how many orders?", "list customers")
    assert recipe.generation.render("How many?") == "Question: How many?\nSQL:"
    assert recipe.generation.manifest() == {"max_tokens": 64, "stop": ["\n"], "template": "Question: {prompt}\nSQL:"}
    assert recipe.teacher.template_path == expert_dir.absolute() / "teach.txt"
    # paths are hashed relative to the recipe, so caches survive moving the checkout
    assert recipe.config_slice("task")["schema"] == "schema.sql"
    assert recipe.config_slice("train.seed") == 7
    # the training settings, named as the manifest's adapter section and forge's training config name them
    assert recipe.train.adapter_settings()["type"] == "dora" and recipe.train.adapter_settings()["rank"] == 4
    assert recipe.train.loop_settings()["learning_rate"] == 0.001 and recipe.train.loop_settings()["seed"] == 7


@pytest.mark.parametrize(("change", "message"), [
    (("[task]", "[train]\nrank = -3\n\n[task]"),
     "experts/sql/forge.toml: train.rank: expected a positive integer — got -3"),
    (("[task]", "[train]\nrnak = 8\n\n[task]"),
     "experts/sql/forge.toml: train.rnak: unknown key — did you mean 'rank'?"),
    (("[task]", "[train]\nadapter = \"lorra\"\n\n[task]"),
     "experts/sql/forge.toml: train.adapter: unknown value — got 'lorra'; use one of lora, dora, ia3, prompt, full "
     "(did you mean 'lora'?)"),
    (("[task]", "[trian]\nrank = 8\n\n[task]"),
     "experts/sql/forge.toml: trian: unknown section — did you mean [train]?"),
    (('kind = "sql"', 'kind = "sq"'),
     "experts/sql/forge.toml: task.kind: unknown value — got 'sq'; use one of chat, tool-call, classification, "
     "ner, sql, cypher, text (did you mean 'sql'?)"),
    (('name = "sql"', 'name = "SQL Expert"'),
     "experts/sql/forge.toml: expert.name: invalid expert name 'SQL Expert' — did you mean 'sql-expert'?"),
    (('version = "0.1.0"', 'version = "1.0"'),
     "experts/sql/forge.toml: expert.version: invalid version '1.0' — use semver MAJOR.MINOR.PATCH, e.g. 1.0.0"),
    (('sources = ["docs/*.md"]', 'sources = ["docs/*.md"]\nchunk_tokens = 64\nchunk_overlap = 64'),
     "experts/sql/forge.toml: data.chunk_overlap: must be smaller than data.chunk_tokens (64) — got 64"),
    (('sources = ["docs/*.md"]', 'sources = ["docs/*.md"]\nnear_threshold = 1.5'),
     "experts/sql/forge.toml: data.near_threshold: expected a number between 0.05 and 1 — got 1.5"),
    (('sources = ["docs/*.md"]', 'sources = "docs/*.md"\nboilerplate = "yes"'),
     "experts/sql/forge.toml: data.boilerplate: expected true or false — got 'yes'"),
    (('kind = "sql"', 'kind = "sql"\nschema = "missing.sql"'),
     "experts/sql/forge.toml: task.schema: file 'missing.sql' does not exist — paths are relative to the "
     "recipe's directory sql/"),
    (('endpoint = "http://127.0.0.1:8765/v1/"', 'endpoint = "127.0.0.1:8765"'),
     "experts/sql/forge.toml: teacher.endpoint: expected an http(s) URL — e.g. http://127.0.0.1:8765/v1"),
    (('model = "expertpm-stand-in"', 'model = "m"\ntemplate = "builtin:sqll"'),
     "experts/sql/forge.toml: teacher.template: no built-in template 'builtin:sqll' — built-ins: builtin:chat, "
     "builtin:classification, builtin:cypher, builtin:ner, builtin:sql, builtin:tool-call"),
    (('[task]', '[base]\npath = "../base"\npackage = "tiny-base@^0.1"\n\n[task]'),
     "experts/sql/forge.toml: base.package: conflicts with base.path — give exactly one of path, package, config"),
    (('[task]', '[base]\npackage = "tiny-base@banana"\n\n[task]'),
     "experts/sql/forge.toml: base.package: invalid version range 'banana': cannot read 'banana' — write it as name@range, e.g. "
     "tiny-base@^0.1"),
    (('[task]', '[generation]\ntemplate = "Q: {question}"\n\n[task]'),
     'experts/sql/forge.toml: generation.template: must contain {prompt} — e.g. template = "Question: '
     '{prompt}\\nSQL:"'),
    (('[task]', '[pipeline]\nsteps = ["chunk", "clean"]\n\n[task]'),
     "experts/sql/forge.toml: pipeline.steps: steps must appear once each, in pipeline order — order: clean, "
     "chunk, dedupe, synthesize, format, split, train, evaluate, build"),
    (('[task]', '[pipeline]\nsteps = ["clean", "trian"]\n\n[task]'),
     "experts/sql/forge.toml: pipeline.steps: unknown step 'trian' — did you mean 'train'?"),
    (('kind = "sql"', 'kind = "classification"\nlabels = ["positive"]'),
     "experts/sql/forge.toml: task.labels: classification needs at least two labels — e.g. labels = "
     '["positive", "negative"]'),
    (('[task]', '[train]\nmethod = "sft"\nadapter = "full"\n\n[task]'),
     "experts/sql/forge.toml: train.adapter: 'full' (all weights) is only for method = 'cpt' — use lora, dora, "
     "ia3 or prompt"),
])
def test_recipe_errors_name_file_and_field(expert_dir: Path, change: tuple[str, str], message: str) -> None:
    old, new = change
    assert old in MINIMAL
    assert error(expert_dir, MINIMAL.replace(old, new, 1)) == message


def test_missing_sections_and_files(expert_dir: Path, tmp_path: Path) -> None:
    assert error(expert_dir, MINIMAL.split("[teacher]")[0] + '[task]\nkind = "sql"\n') == (
        "experts/sql/forge.toml: teacher: missing section — task.kind = 'sql' needs a [teacher] "
        "(endpoint, model, template)")
    assert error(expert_dir, MINIMAL.replace("[expert]", "[x-expert]").replace('name = "sql"\n', "", 1)) == (
        "experts/sql/forge.toml: x-expert: unknown section — did you mean [expert]?")
    assert error(expert_dir, MINIMAL.replace('version = "0.1.0"\n', "")) == (
        "experts/sql/forge.toml: expert.version: missing — add `version = ...` under [expert]")
    assert error(expert_dir, MINIMAL + "[data\n") .startswith("experts/sql/forge.toml: invalid TOML: ")
    with pytest.raises(RecipeError) as info:
        load_recipe(tmp_path / "experts" / "nothing")
    assert str(info.value) == ("experts/nothing/forge.toml: no recipe here — an expert source directory holds a "
                               "forge.toml (see docs/forge.md)")


def test_text_recipe_needs_no_teacher(expert_dir: Path) -> None:
    recipe = load(expert_dir, """
[expert]
name = "base-cpt"
version = "0.1.0"
[data]
sources = ["corpus/*.txt"]
[task]
kind = "text"
[train]
method = "cpt"
adapter = "full"
""")
    assert recipe.teacher is None
    assert "synthesize" not in recipe.pipeline.steps and recipe.eval.metric == "perplexity"
