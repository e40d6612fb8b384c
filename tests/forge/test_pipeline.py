"""The step pipeline: caching by input digest, early cut-off, registry, failures, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from expertpm_forge import pipeline
from expertpm_forge.pipeline import StepError, StepInputs, plan, register_step, run_pipeline
from expertpm_forge.recipe import load_recipe

TEXT_DOCS = {
    "corpus/a.txt": "Alpha beta gamma delta. " * 30 + "\n\nThe first document ends here with its own words.",
    "corpus/b.md": "# Second\n\nA different text about graphs, nodes and the edges between them. " * 6,
    "corpus/c.html": "<html><body><nav>menu</nav><p>Third document: relational tables, rows and "
                     "columns.</p></body></html>",
}
TEXT_RECIPE = {
    "expert": {"name": "base-cpt", "version": "0.1.0"},
    "data": {"sources": ["corpus/*"], "chunk_tokens": 40, "chunk_overlap": 5},
    "task": {"kind": "text"},
    "train": {"method": "cpt", "adapter": "full", "max_len": 64},
    "pipeline": {"steps": ["clean", "chunk", "dedupe", "format", "split"]},
}


@pytest.fixture
def registry():
    """The step registry, restored after the test (tests register `train` like a training module would)."""
    pipeline.load_step_modules()
    saved = dict(pipeline._REGISTRY)
    for name in ("train", "evaluate", "build"):
        pipeline._REGISTRY.pop(name, None)  # as in a checkout without training support
    yield pipeline._REGISTRY
    pipeline._REGISTRY.clear()
    pipeline._REGISTRY.update(saved)


@pytest.fixture
def text_expert(make_expert, registry) -> Path:
    return make_expert(TEXT_RECIPE, TEXT_DOCS, name="base-cpt", schema=None)


def statuses(outcomes) -> dict[str, str]:
    return {o.step: o.status for o in outcomes}


def test_second_run_is_cached_and_changes_rerun_only_what_they_touch(text_expert: Path, write_recipe) -> None:
    first = run_pipeline(load_recipe(text_expert))
    assert statuses(first) == dict.fromkeys(TEXT_RECIPE["pipeline"]["steps"], "ran")
    assert set(statuses(run_pipeline(load_recipe(text_expert))).values()) == {"cached"}

    # a whitespace-only edit changes the file but not the cleaned text: only clean re-runs
    doc = text_expert / "corpus" / "b.md"
    doc.write_text(doc.read_text() + "   \n\n\n", encoding="utf-8")
    assert statuses(run_pipeline(load_recipe(text_expert))) == {
        "clean": "ran", "chunk": "cached", "dedupe": "cached", "format": "cached", "split": "cached"}

    # a chunking setting re-runs chunk and what its new output feeds, never clean
    write_recipe(text_expert, {**TEXT_RECIPE, "data": {**TEXT_RECIPE["data"], "chunk_tokens": 30}})
    assert statuses(run_pipeline(load_recipe(text_expert))) == {
        "clean": "cached", "chunk": "ran", "dedupe": "ran", "format": "ran", "split": "ran"}


def test_outputs_changed_on_disk_are_rebuilt(text_expert: Path) -> None:
    run_pipeline(load_recipe(text_expert))
    chunks = text_expert / ".forge" / "chunk" / "chunks.jsonl"
    original = chunks.read_bytes()
    chunks.write_text("{}\n", encoding="utf-8")
    assert [s.state for s in plan(load_recipe(text_expert))][:2] == ["up to date", "stale"]
    assert statuses(run_pipeline(load_recipe(text_expert)))["chunk"] == "ran"
    assert chunks.read_bytes() == original
    manifest = json.loads((text_expert / ".forge" / "chunk" / "_step.json").read_text())
    assert manifest["outputs"].keys() == {"chunks.jsonl"} and manifest["inputs"]["steps"].keys() == {"clean"}


def test_only_until_and_force(text_expert: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(text_expert.parent.parent)
    recipe = load_recipe(text_expert)
    with pytest.raises(StepError) as info:
        run_pipeline(recipe, only="dedupe")
    assert str(info.value) == ("experts/base-cpt/forge.toml: step 'dedupe' needs the output of step 'chunk', which "
                               "has not run — run `expertpm forge chunk experts/base-cpt` first")
    assert statuses(run_pipeline(recipe, until="chunk")) == {"clean": "ran", "chunk": "ran"}
    assert statuses(run_pipeline(recipe, only="dedupe")) == {"dedupe": "ran"}
    assert statuses(run_pipeline(recipe, until="dedupe", force={"chunk"})) == {
        "clean": "cached", "chunk": "ran", "dedupe": "cached"}
    with pytest.raises(StepError) as info:
        run_pipeline(recipe, only="synthesize")
    assert str(info.value) == ("experts/base-cpt/forge.toml: step 'synthesize' is not part of this recipe's "
                               "pipeline — its steps are: clean, chunk, dedupe, format, split")


def test_unregistered_step_fails_after_the_data_steps(text_expert: Path, write_recipe,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(text_expert.parent.parent)
    write_recipe(text_expert, {**TEXT_RECIPE, "pipeline": {"steps": [*TEXT_RECIPE["pipeline"]["steps"], "train"]}})
    with pytest.raises(StepError) as info:
        run_pipeline(load_recipe(text_expert))
    message = str(info.value)
    assert message.startswith("experts/base-cpt/forge.toml: step 'train' is not available: no forge module "
                              "registers step 'train'")
    assert message.endswith("— steps clean, chunk, dedupe, format, split finished and are cached; install the "
                            "forge module that provides it, or remove 'train' from pipeline.steps")
    assert plan(load_recipe(text_expert))[-1].state == "unavailable"
    assert (text_expert / ".forge" / "split" / "train.jsonl").is_file()


def toy_train(ctx) -> dict:
    """Train a toy model (stands in for the training module's step)."""
    records = [json.loads(line) for line in (ctx.input("split") / "train.jsonl").read_text().splitlines()]
    runs = ctx.scratch / "runs.txt"
    runs.write_text(runs.read_text() + "x" if runs.exists() else "x")
    if ctx.recipe.train.options.get("explode"):
        raise StepError("the toy trainer refuses", where=ctx.recipe.where)
    (ctx.out / "model.txt").write_text(f"{len(records)} records, seed {ctx.seed}, lr {ctx.recipe.train.lr}\n")
    with ctx.progress(len(records), "toy epochs") as advance:
        advance(len(records))
    return {"records": len(records)}


def test_a_registered_step_runs_with_context_and_cache(text_expert: Path, write_recipe, registry) -> None:
    register_step("train", toy_train, inputs=StepInputs(steps=("split",), config=("train",)))
    steps = [*TEXT_RECIPE["pipeline"]["steps"], "train"]
    write_recipe(text_expert, {**TEXT_RECIPE, "pipeline": {"steps": steps}})
    outcome = run_pipeline(load_recipe(text_expert))[-1]
    assert (outcome.step, outcome.status, dict(outcome.summary)) == ("train", "ran", {"records": outcome.summary["records"]})
    model = text_expert / ".forge" / "train" / "model.txt"
    assert "lr 0.002" in model.read_text()
    assert statuses(run_pipeline(load_recipe(text_expert)))["train"] == "cached"

    # a training setting re-runs only the training step
    train = {**TEXT_RECIPE["train"], "lr": 0.01}
    write_recipe(text_expert, {**TEXT_RECIPE, "train": train, "pipeline": {"steps": steps}})
    assert statuses(run_pipeline(load_recipe(text_expert))) == {**dict.fromkeys(steps[:-1], "cached"), "train": "ran"}
    assert "lr 0.01" in model.read_text()

    # a failing step keeps its previous outputs and leaves no temporary directory; scratch survives
    write_recipe(text_expert, {**TEXT_RECIPE, "train": {**train, "options": {"explode": True}},
                               "pipeline": {"steps": steps}})
    with pytest.raises(StepError, match="the toy trainer refuses"):
        run_pipeline(load_recipe(text_expert))
    assert "lr 0.01" in model.read_text()
    assert not list((text_expert / ".forge").glob(".train.*"))
    assert (text_expert / ".forge" / "cache" / "train" / "runs.txt").read_text() == "xxx"
    assert plan(load_recipe(text_expert))[-1].state == "stale"


def test_a_missing_input_file_is_a_clear_error(text_expert: Path, write_recipe, registry,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(text_expert.parent.parent)
    register_step("train", toy_train, inputs=StepInputs(steps=("split",), files=lambda r: [r.root / "base" / "w.bin"]))
    write_recipe(text_expert, {**TEXT_RECIPE, "pipeline": {"steps": [*TEXT_RECIPE["pipeline"]["steps"], "train"]}})
    with pytest.raises(StepError) as info:
        run_pipeline(load_recipe(text_expert))
    assert str(info.value) == ("experts/base-cpt/forge.toml: step 'train' needs the file experts/base-cpt/base/w.bin, "
                               "which does not exist — create it, or build what makes it first")


def test_register_step_rejects_bad_names(registry) -> None:
    with pytest.raises(ValueError, match="unknown step name 'trainer'"):
        register_step("trainer", toy_train)
    with pytest.raises(ValueError, match="step 'chunk' cannot read step 'split': it does not come before it"):
        register_step("chunk", toy_train, inputs=StepInputs(steps=("split",)))


def test_outputs_are_deterministic_across_checkouts(make_expert, tmp_path: Path, registry) -> None:
    a = make_expert(TEXT_RECIPE, TEXT_DOCS, name="base-cpt", schema=None)
    b = tmp_path / "elsewhere" / "base-cpt"
    b.parent.mkdir()
    import shutil

    shutil.copytree(a, b)
    first, second = run_pipeline(load_recipe(a)), run_pipeline(load_recipe(b))
    assert [o.inputs_sha256 for o in first] == [o.inputs_sha256 for o in second]
    for step in TEXT_RECIPE["pipeline"]["steps"]:
        one = json.loads((a / ".forge" / step / "_step.json").read_text())
        two = json.loads((b / ".forge" / step / "_step.json").read_text())
        assert one["outputs_sha256"] == two["outputs_sha256"]


def test_plan_reports_each_step(text_expert: Path, write_recipe, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(text_expert.parent.parent)
    assert [(s.step, s.state) for s in plan(load_recipe(text_expert))] == [
        ("clean", "not run"), ("chunk", "waiting"), ("dedupe", "waiting"), ("format", "waiting"), ("split", "waiting")]
    run_pipeline(load_recipe(text_expert))
    assert {s.state for s in plan(load_recipe(text_expert))} == {"up to date"}
    write_recipe(text_expert, {**TEXT_RECIPE, "data": {**TEXT_RECIPE["data"], "sources": ["nothing/*.txt"]}})
    first = plan(load_recipe(text_expert))[0]
    assert (first.state, first.reason) == ("error", "experts/base-cpt/forge.toml: data.sources[0]: 'nothing/*.txt' "
                                                    "matches no files — patterns are relative to base-cpt/")


def test_cli_run_status_and_step_commands(text_expert: Path, cli) -> None:
    cwd = text_expert.parent.parent
    proc = cli("forge", "chunk", "experts/base-cpt", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "2 step(s): 2 ran, 0 cached\n"
    assert [line.split()[:2] for line in proc.stderr.splitlines()] == [["clean", "ran"], ["chunk", "ran"]]
    proc = cli("forge", "run", "experts/base-cpt", "--json", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    assert [(o["step"], o["status"]) for o in json.loads(proc.stdout)] == [
        ("clean", "cached"), ("chunk", "cached"), ("dedupe", "ran"), ("format", "ran"), ("split", "ran")]
    proc = cli("forge", "status", "experts/base-cpt", cwd=cwd)
    assert proc.stdout.split() == ["clean", "up", "to", "date", "chunk", "up", "to", "date", "dedupe", "up", "to",
                                   "date", "format", "up", "to", "date", "split", "up", "to", "date"]
    proc = cli("forge", "run", "experts/missing", cwd=cwd)
    assert proc.returncode == 1
    assert proc.stderr == ("error: experts/missing/forge.toml: no recipe here — an expert source directory holds "
                           "a forge.toml (see docs/forge.md)\n")


def test_reporters(text_expert: Path) -> None:
    import io

    from expertpm_forge._pipeline_report import LineReporter, RichReporter, console_reporter

    plain = io.StringIO()
    run_pipeline(load_recipe(text_expert), until="chunk", reporter=LineReporter(plain))
    lines = plain.getvalue().splitlines()
    assert [line.split()[:2] for line in lines] == [["clean", "ran"], ["chunk", "ran"]]
    assert "documents_out=3" in lines[0] and "tokenizer=whitespace" in lines[1]
    fancy = io.StringIO()
    run_pipeline(load_recipe(text_expert), until="dedupe", reporter=RichReporter(fancy))
    text = fancy.getvalue()
    assert "clean      cached" in text and "dedupe" in text and "kept=" in text
    assert type(console_reporter(io.StringIO())) is LineReporter  # not a terminal: no progress bars
