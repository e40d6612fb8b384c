"""Through the runtime (installed packages, the engine's own decoding), the bundled experts still
beat the base on a sample of their held-out sets, and the router sends held-out prompts to the
right expert."""

from __future__ import annotations

import json

import pytest

from .conftest import EXPERTS, EXPERTS_DIR, eval_items

SAMPLE = 12  # the first items of each committed eval set: quick, and the same every run
ROUTING_HELDOUT = EXPERTS_DIR / "routing-heldout.jsonl"


def sample_records(expert: str) -> tuple[list[dict], object]:
    """(records, recipe): the eval items formatted exactly as forge formats them."""
    from expertpm_forge.data.examples import pinned_records
    from expertpm_forge.data.formatting import ExampleChecker
    from expertpm_forge.recipe import load_recipe

    recipe = load_recipe(EXPERTS_DIR / expert)
    checker = ExampleChecker(recipe.task.kind, labels=recipe.task.labels, schema=recipe.task.schema)
    items = list(enumerate(eval_items(expert)[:SAMPLE], start=1))
    return pinned_records(items, checker=checker, render=recipe.generation.render, label=expert), recipe


@pytest.mark.slow
@pytest.mark.parametrize("expert", EXPERTS)
def test_the_runtime_reproduces_the_expert_beating_the_base(bundled_runtime, expert: str) -> None:
    from expertpm_forge.evaluate import score
    from expertpm_forge.evaluate.steps import eval_options

    records, recipe = sample_records(expert)
    golds = [r["completion"] for r in records]
    # the expert: the user's text goes through the expert's own manifest template
    with_expert = [bundled_runtime.generate(r["input"], experts=expert).text for r in records]
    # the base alone, shown exactly the same rendered prompt and stopped the same way
    params = {"max_tokens": recipe.generation.max_tokens, "temperature": 0.0, "stop": ["<|im_end|>"]}
    base_alone = [bundled_runtime.generate(r["prompt"], experts=None, **params).text for r in records]
    options = eval_options(recipe)
    expert_score = score(recipe.eval.metric, with_expert, golds, options).value
    base_score = score(recipe.eval.metric, base_alone, golds, options).value
    assert expert_score >= 0.75, list(zip(with_expert, golds))
    assert base_score <= 0.25, list(zip(base_alone, golds))


def test_routing_picks_the_right_expert_for_at_least_90_percent_of_held_out_prompts(bundled_runtime) -> None:
    items = [json.loads(line) for line in ROUTING_HELDOUT.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(items) >= 50 and {i["expert"] for i in items} == set(EXPERTS)
    misses = [(i["prompt"], i["expert"], bundled_runtime.route(i["prompt"]).experts) for i in items
              if bundled_runtime.route(i["prompt"]).experts[:1] != (i["expert"],)]
    assert 1 - len(misses) / len(items) >= 0.9, misses
