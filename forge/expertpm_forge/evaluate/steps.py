"""The pipeline's `evaluate` step: base alone vs base + expert on the held-out split.

Outputs (under experts/<name>/.forge/evaluate/):
  eval.json          the manifest's `eval` section plus secondary rates (`parts`)
  predictions.jsonl  every prompt with the gold answer and both models' answers

`eval.options` values that name files (a SQLite database or .sql script, a tools JSON) are
relative to the recipe. Classification labels default to `task.labels`. Generation uses the
recipe's `generation.stop` and `max_tokens`. A CPT recipe (a base model) is scored by perplexity
on the held-out texts, against the model it started from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..pipeline import StepContext, StepInputs, register_step
from ..recipe import Recipe

__all__ = ["eval_options", "option_files"]


def eval_options(recipe: Recipe) -> dict[str, Any]:
    """`eval.options` with file names resolved against the recipe directory."""
    options: dict[str, Any] = {}
    for key, value in recipe.eval.options.items():
        if isinstance(value, str) and (recipe.root / value).is_file():
            value = str(recipe.root / value)
        options[key] = value
    if recipe.task.labels and "labels" not in options:
        options["labels"] = list(recipe.task.labels)
    return options


def option_files(recipe: Recipe) -> list[Path]:
    files = [recipe.root / v for v in recipe.eval.options.values()
             if isinstance(v, str) and (recipe.root / v).is_file()]
    return files + ([recipe.eval.probe] if recipe.eval.probe else [])


def _perplexity(ctx: StepContext) -> dict:
    from ..train.data import Records, texts_of
    from ..train.models import load_base
    from .probe import perplexity

    records = Records.from_jsonl(ctx.input("split") / "eval.jsonl")
    texts = texts_of(records)
    model, tokenizer = load_base(ctx.input("train") / "model")
    ppl, tokens = perplexity(model, tokenizer, texts)
    doc = {"metric": "perplexity", "perplexity": round(ppl, 4), "tokens": tokens, "n": len(texts)}
    if ctx.recipe.eval.probe is not None:
        from .probe import probe_texts

        doc["probe"] = {"metric": "perplexity", "perplexity": round(perplexity(
            model, tokenizer, probe_texts(ctx.recipe.eval.probe))[0], 4)}
    (ctx.out / "eval.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return doc


def evaluate(ctx: StepContext) -> dict:
    """Score base and base + expert on the held-out set with the task metric."""
    from ..train.steps import _require_base
    from .run import evaluate_expert

    recipe = ctx.recipe
    if recipe.train.method == "cpt":
        return _perplexity(ctx)
    gen = recipe.generation
    report = evaluate_expert(
        _require_base(recipe), ctx.input("train") / "adapter", ctx.input("split") / "eval.jsonl",
        metric=recipe.eval.metric, options=eval_options(recipe), template="{prompt}",  # records are rendered
        probe=recipe.eval.probe, max_new_tokens=gen.max_tokens, stop=[s for s in gen.stop if s.strip()])
    report.write(ctx.out)
    summary = report.manifest()
    summary.pop("probe", None)
    return {**summary, "beats_base": report.beats_base}


register_step("evaluate", evaluate, inputs=StepInputs(
    steps=("split", "train"), config=("eval", "generation.stop", "generation.max_tokens", "task", "base"),
    files=lambda r: option_files(r) + _base_files(r),
    code=("expertpm_forge.evaluate.run", "expertpm_forge.evaluate.metrics", "expertpm_forge.evaluate.generate",
          "expertpm_forge.evaluate.sql", "expertpm_forge.evaluate.cypher", "expertpm_forge.evaluate.probe"),
    seeded=False))


def _base_files(recipe: Recipe) -> list[Path]:
    from ..train.steps import base_files

    return [] if recipe.base.config is not None else base_files(recipe)
