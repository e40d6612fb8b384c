"""evaluate_expert: base (adapter disabled) vs base + expert, reported in the manifest's shape."""

from __future__ import annotations

import json

import jsonschema
import pytest

from expertpm._schema import SCHEMA_DIR
from expertpm_forge.evaluate import EvalConfigError, evaluate_expert, evaluate_model, perplexity
from expertpm_forge.evaluate.generate import generate
from expertpm_forge.evaluate.probe import probe_texts
from expertpm_forge.tokenizer import DEFAULT_PROMPT_TEMPLATE
from expertpm_forge.train import Records, load_base
from expertpm_testing.forge_train import PROBE_TEXT, TOPICS, topic_records


def test_report_has_the_manifest_eval_shape(micro_base, topic_expert, tmp_path):
    records = topic_records(12, seed=5)
    report = evaluate_expert(micro_base, topic_expert, records, metric="label_accuracy",
                             options={"labels": sorted(TOPICS)}, probe=PROBE_TEXT)
    section = report.manifest()
    schema = json.loads((SCHEMA_DIR / "manifest.schema.json").read_text())
    jsonschema.validate(section, schema["properties"]["eval"])
    assert set(section) == {"metric", "expert_score", "base_score", "n", "probe"} and section["n"] == 12
    assert set(section["probe"]) == {"metric", "base", "expert", "ratio", "tokens"}
    assert section["probe"]["ratio"] == pytest.approx(section["probe"]["expert"] / section["probe"]["base"], rel=1e-3)
    assert [item["expert_score"] for item in report.items].count(True) == round(report.expert_score * 12)

    report.write(tmp_path / "eval")
    written = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert written["expert_score"] == section["expert_score"] and "valid_label" in written["parts"]["base"]
    lines = (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 12 and set(json.loads(lines[0])) >= {"prompt", "gold", "expert", "base"}


def test_base_side_is_the_plain_base_model(micro_base, topic_expert):
    """Disabling the adapter must give exactly what the base model alone generates and scores."""
    records = topic_records(8, seed=6)
    report = evaluate_expert(micro_base, topic_expert, records, metric="label_accuracy", max_new_tokens=6)
    model, tok = load_base(micro_base)
    score, answers = evaluate_model(model, tok, Records.coerce(records), "label_accuracy", max_new_tokens=6)
    assert [item["base"] for item in report.items] == answers
    assert report.base_score == score.value
    ppl, n = perplexity(model, tok, probe_texts(PROBE_TEXT))
    assert n > 1000 and 1.0 < ppl < len(tok)


def test_batched_generation_equals_one_by_one(micro_base):
    model, tok = load_base(micro_base)
    prompts = [DEFAULT_PROMPT_TEMPLATE.replace("{prompt}", p) for p in
               ["Name a color.", "Where does Anna live?", "Repeat this sentence: The cat sat near the lamp."]]
    batched = generate(model, tok, prompts, max_new_tokens=12, batch_size=3)
    single = [generate(model, tok, [p], max_new_tokens=12)[0] for p in prompts]
    assert batched == single


def test_unknown_metric_is_refused_before_loading(micro_base, topic_expert):
    with pytest.raises(EvalConfigError, match="unknown metric 'bleu'"):
        evaluate_expert(micro_base, topic_expert, topic_records(2, 0), metric="bleu")


@pytest.mark.parametrize("kind", ["dora", "ia3", "prompt"])
def test_every_adapter_type_evaluates(kind, micro_base, tmp_path):
    from expertpm_forge.train import AdapterSpec, TrainConfig, train_sft

    config = TrainConfig(max_steps=2, batch_size=4, max_length=64, warmup_steps=1, checkpoint_every=0)
    trained = train_sft(micro_base, topic_records(8, seed=0), tmp_path / kind,
                        adapter=AdapterSpec(type=kind, num_virtual_tokens=4), config=config)
    report = evaluate_expert(micro_base, trained.output, topic_records(6, seed=7), metric="label_accuracy",
                             probe=PROBE_TEXT, max_new_tokens=4)
    assert report.n == 6 and 0.0 <= report.expert_score <= 1.0
    assert report.probe["expert"] > 1.0 and report.probe["base"] > 1.0
    assert report.probe["expert"] != report.probe["base"]  # the adapter is active on the expert side
