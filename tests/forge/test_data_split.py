"""Train/eval split with decontamination, and refusal of a pinned eval set that overlaps training."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from expertpm_forge.data.records import DataError
from expertpm_forge.data.split import split_records
from expertpm_forge.pipeline import run_pipeline
from expertpm_forge.recipe import load_recipe

WORDS = [f"w{i}" for i in range(500)]


def records(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [{"id": f"ex-{i:06d}", "input": " ".join(rng.choices(WORDS, k=20)), "completion": str(i)}
            for i in range(n)]


def test_split_is_seeded_sized_and_ordered() -> None:
    data = records(50)
    train, evaluation, stats = split_records(data, seed=1, fraction=0.2)
    assert (len(train), len(evaluation), stats.eval_contaminated) == (40, 10, 0)
    assert sorted(r["id"] for r in train + evaluation) == [r["id"] for r in data]
    assert [r["id"] for r in train] == sorted(r["id"] for r in train)
    assert split_records(data, seed=1, fraction=0.2)[1] == evaluation
    assert split_records(data, seed=2, fraction=0.2)[1] != evaluation
    assert len(split_records(data, seed=1, size=7)[1]) == 7


def test_eval_items_that_near_duplicate_training_are_dropped() -> None:
    data = records(40)
    for i in range(20, 40):  # the second half repeats the first half with one word changed
        words = data[i - 20]["input"].split()
        words[-1] = "changed"
        data[i]["input"] = " ".join(words)
    train, evaluation, stats = split_records(data, seed=0, fraction=0.25)
    assert stats.eval_contaminated > 0 and len(evaluation) == 10 - stats.eval_contaminated
    train_inputs = {r["input"] for r in train}
    for r in evaluation:  # what is left has no twin in training
        twin = data[int(r["id"][3:]) + (20 if int(r["id"][3:]) < 20 else -20)]["input"]
        assert twin not in train_inputs


def test_split_refuses_data_it_cannot_measure() -> None:
    with pytest.raises(DataError) as info:
        split_records(records(1), seed=0, where="experts/x/forge.toml")
    assert str(info.value) == ("experts/x/forge.toml: only 1 training record(s): too few to split into train and "
                               "eval — add documents to data.sources or raise teacher.n_per_chunk")
    same = [{"id": str(i), "input": "one and the same question asked again and again"} for i in range(10)]
    with pytest.raises(DataError) as info:
        split_records(same, seed=0, fraction=0.2, where="experts/x/forge.toml")
    assert str(info.value) == ("experts/x/forge.toml: all 2 eval records near-duplicate training records — the data "
                               "is too repetitive to measure anything: add varied documents, or raise "
                               "eval.near_threshold")


def test_pinned_eval_file_overlapping_training_is_refused(make_expert, sql_recipe, stand_in_teacher, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    root = make_expert(sql_recipe(stand_in_teacher))
    run_pipeline(load_recipe(root))
    train = [json.loads(line) for line in (root / ".forge" / "split" / "train.jsonl").read_text().splitlines()]
    evaluation = [json.loads(line) for line in (root / ".forge" / "split" / "eval.jsonl").read_text().splitlines()]
    assert train and evaluation and not {r["input"] for r in train} & {r["input"] for r in evaluation}

    pinned = [{"question": "Which city has the most customers in the shop database?", "sql": "SELECT 1;"},
              {"question": train[3]["input"], "sql": train[3]["completion"]}]
    (root / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pinned), encoding="utf-8")
    recipe = sql_recipe(stand_in_teacher, eval={"file": "eval.jsonl"})
    root = make_expert(recipe)
    with pytest.raises(DataError) as info:
        run_pipeline(load_recipe(root))
    assert str(info.value) == (f"experts/sql/forge.toml: eval.file: 1 of 2 items in experts/sql/eval.jsonl overlap the training "
                               f"data (item 2 repeats training record {train[3]['id']}, Jaccard 1.00) — remove those "
                               "items from the eval file, or the documents they come from")
    (root / "eval.jsonl").write_text(json.dumps({"question": "q", "sql": "SELECT nope FROM customers;"}) + "\n",
                                     encoding="utf-8")
    with pytest.raises(DataError) as info:
        run_pipeline(load_recipe(root))
    assert str(info.value) == ("experts/sql/eval.jsonl: line 1: query does not compile against the schema: no such "
                               "column: nope — an eval item is a record (prompt, completion) or an example like the "
                               "teacher's")
    # without the overlapping item the pinned file is used, formatted like the training data
    (root / "eval.jsonl").write_text(json.dumps(pinned[0]) + "\n", encoding="utf-8")
    outcome = run_pipeline(load_recipe(root))[-1]
    assert outcome.summary["eval_pinned"] is True and outcome.summary["eval"] == 1
    (pinned_record,) = [json.loads(line) for line in (root / ".forge" / "split" / "eval.jsonl").read_text().splitlines()]
    assert pinned_record["prompt"] == f"Question: {pinned[0]['question']}\nSQL:"


def test_pinned_eval_can_drop_the_training_items_it_overlaps(make_expert, sql_recipe, stand_in_teacher) -> None:
    root = make_expert(sql_recipe(stand_in_teacher))
    run_pipeline(load_recipe(root), until="format")
    records = [json.loads(line) for line in (root / ".forge" / "format" / "records.jsonl").read_text().splitlines()]
    pinned = [{"question": records[i]["input"], "sql": records[i]["completion"]} for i in (2, 5)]
    (root / "eval.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pinned), encoding="utf-8")
    root = make_expert(sql_recipe(stand_in_teacher, eval={"file": "eval.jsonl", "on_overlap": "drop-train"}))
    outcome = run_pipeline(load_recipe(root))[-1]
    assert outcome.summary["train_contaminated"] >= 2
    assert outcome.summary["train"] == len(records) - outcome.summary["train_contaminated"]
    train = {json.loads(line)["input"] for line in (root / ".forge" / "split" / "train.jsonl").read_text().splitlines()}
    assert not train & {p["question"] for p in pinned}
