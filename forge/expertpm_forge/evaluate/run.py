"""Evaluate base alone and base + expert on a held-out set, greedy decoding, one task metric.

    report = evaluate_expert(base_dir, adapter_dir, "eval.jsonl", metric="sql_execution",
                             options={"database": "shop.sqlite"}, probe="probe.txt")
    report.manifest()  # -> the manifest's `eval` section
    report.write(out_dir)  # eval.json + predictions.jsonl

Eval records are {prompt, completion} like SFT data; `completion` is the gold answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from expertpm._errors import UserError

from ..tokenizer import DEFAULT_PROMPT_TEMPLATE
from ..train.data import Records, render
from .generate import generate
from .metrics import Score, entity_f1, exact_match, label_accuracy, tool_call

METRICS = ("sql_execution", "tool_call", "label_accuracy", "entity_f1", "exact_match", "cypher_match")


class EvalConfigError(UserError):
    """An evaluation setting is invalid (unknown metric, missing option)."""


def score(metric: str, predictions: Sequence[str], golds: Sequence[str],
          options: Mapping[str, Any] | None = None) -> Score:
    """Score predictions against gold answers with one of `METRICS`."""
    options = dict(options or {})
    if metric == "sql_execution":
        if "database" not in options:
            raise EvalConfigError("sql_execution needs a database", where="eval.options.database",
                                  hint="name a .sqlite file or a .sql script (schema + rows)")
        from .sql import sql_execution

        return sql_execution(predictions, golds, Path(options["database"]))
    if metric == "tool_call":
        tools = options.get("tools")
        if isinstance(tools, (str, Path)):
            tools = json.loads(Path(tools).read_text(encoding="utf-8"))
        return tool_call(predictions, golds, tools)
    if metric == "label_accuracy":
        return label_accuracy(predictions, golds, options.get("labels", ()))
    if metric == "entity_f1":
        return entity_f1(predictions, golds)
    if metric == "exact_match":
        return exact_match(predictions, golds)
    if metric == "cypher_match":
        from .cypher import cypher_match

        return cypher_match(predictions, golds)
    raise EvalConfigError(f"unknown metric {metric!r}", where="eval.metric", hint=f"use one of {', '.join(METRICS)}")


@dataclass(frozen=True, slots=True)
class EvalReport:
    metric: str
    expert_score: float
    base_score: float
    n: int
    probe: dict
    parts: dict[str, dict[str, float]] = field(default_factory=dict)  # secondary rates per side
    items: list[dict] = field(default_factory=list)  # prompt, gold, expert/base answers and verdicts

    def manifest(self) -> dict:
        out = {"metric": self.metric, "expert_score": round(self.expert_score, 4),
               "base_score": round(self.base_score, 4), "n": self.n}
        if self.probe:
            out["probe"] = self.probe
        return out

    @property
    def beats_base(self) -> bool:
        return self.expert_score > self.base_score

    def write(self, out_dir: Path) -> Path:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "eval.json"
        doc = {**self.manifest(), "parts": self.parts}
        path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        with (out_dir / "predictions.jsonl").open("w", encoding="utf-8") as fh:
            for item in self.items:
                fh.write(json.dumps(item, ensure_ascii=False) + "\n")
        return path


def evaluate_model(model, tokenizer, records: Records, metric: str, *, options: Mapping[str, Any] | None = None,
                   template: str = DEFAULT_PROMPT_TEMPLATE, max_new_tokens: int | None = None,
                   batch_size: int = 16, stop: Sequence[str] = ()) -> tuple[Score, list[str]]:
    """Generate greedily for every record and score the answers; returns (score, answers)."""
    prompts = [render(template, _text(r, "prompt", w)) for r, w in zip(records.items, records.locations)]
    golds = [_text(r, "completion", w) for r, w in zip(records.items, records.locations)]
    if max_new_tokens is None:
        longest = max(len(tokenizer(g, add_special_tokens=False)["input_ids"]) for g in golds)
        max_new_tokens = int(longest * 1.5) + 8
    answers = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size, stop=stop)
    return score(metric, answers, golds, options), answers


def evaluate_expert(base_dir: Path, adapter_dir: Path, data, *, metric: str,
                    options: Mapping[str, Any] | None = None, template: str = DEFAULT_PROMPT_TEMPLATE,
                    probe: Path | Sequence[str] | None = None, max_new_tokens: int | None = None,
                    batch_size: int = 16, stop: Sequence[str] = ()) -> EvalReport:
    """Score the base alone (adapter disabled) and base + expert on the same held-out records."""
    from ..train.models import load_adapter, load_base
    from .probe import forgetting_probe, probe_texts

    if metric not in METRICS:
        raise EvalConfigError(f"unknown metric {metric!r}", where="eval.metric", hint=f"use one of {', '.join(METRICS)}")
    records = Records.coerce(data, source="eval")
    model, tokenizer = load_base(base_dir)
    peft_model = load_adapter(model, adapter_dir, trainable=False)
    kw = dict(options=options, template=template, max_new_tokens=max_new_tokens, batch_size=batch_size, stop=stop)
    expert, expert_answers = evaluate_model(peft_model, tokenizer, records, metric, **kw)
    with peft_model.disable_adapter():
        base, base_answers = evaluate_model(peft_model, tokenizer, records, metric, **kw)
    probe_result = forgetting_probe(peft_model, tokenizer, probe_texts(probe)) if probe is not None else {}
    items = [{"prompt": r["prompt"], "gold": r["completion"], "expert": ea, "base": ba,
              "expert_score": ev, "base_score": bv}
             for r, ea, ba, ev, bv in zip(records.items, expert_answers, base_answers, expert.items, base.items)]
    return EvalReport(metric, expert.value, base.value, len(records.items), probe_result,
                      {"expert": expert.parts, "base": base.parts}, items)


def _text(record: dict, key: str, where: str) -> str:
    value = record.get(key)
    if not isinstance(value, str):
        raise EvalConfigError(f"eval record needs a string {key!r}", where=where)
    return value
