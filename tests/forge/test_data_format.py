"""Task formatting: validation per kind, completions as text and back, DPO pairs, context fit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from expertpm_forge.data.examples import format_examples
from expertpm_forge.data.formatting import ExampleChecker, completion_text, parse_completion

TOOLS = [
    {"name": "get_weather", "description": "Get the weather for a city.",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                     "days": {"type": "integer", "minimum": 1, "maximum": 7}},
                    "required": ["city"], "additionalProperties": False}},
    {"type": "function", "function": {"name": "create_ticket", "parameters": {
        "type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}}},
]


@pytest.fixture
def schema_files(tmp_path: Path) -> dict[str, Path]:
    sql = tmp_path / "schema.sql"
    sql.write_text("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, city TEXT);", encoding="utf-8")
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps({"tools": TOOLS}), encoding="utf-8")
    return {"sql": sql, "tools": tools}


def problem(checker: ExampleChecker, example) -> str | None:
    try:
        checker.check(example)
    except ValueError as exc:
        return str(exc)
    return None


def test_sql_examples_must_compile_against_the_schema(schema_files) -> None:
    checker = ExampleChecker("sql", schema=schema_files["sql"])
    assert checker.check({"question": " How many? ", "sql": "SELECT COUNT(*) FROM customers;"}) == (
        "How many?", "SELECT COUNT(*) FROM customers;", None)
    assert problem(checker, {"question": "q", "sql": "SELECT nope FROM customers;"}) == (
        "query does not compile against the schema: no such column: nope")
    assert problem(checker, {"question": "q", "sql": "DROP TABL customers"}).startswith(
        "query does not compile against the schema: near \"TABL\"")
    assert problem(checker, {"question": "q"}) == "missing 'sql'"
    assert problem(checker, {"sql": "SELECT 1;"}) == "missing 'question'"
    assert problem(checker, ["not", "an", "object"]) == "an example must be a JSON object"


def test_tool_calls_are_checked_against_the_tool_schemas(schema_files) -> None:
    checker = ExampleChecker("tool-call", schema=schema_files["tools"])
    source, call, _ = checker.check({"request": "Weather in Oslo for 3 days?",
                                     "call": {"name": "get_weather", "arguments": {"days": 3, "city": "Oslo"}}})
    assert completion_text("tool-call", call) == '{"name": "get_weather", "arguments": {"city": "Oslo", "days": 3}}'
    assert parse_completion("tool-call", completion_text("tool-call", call)) == call
    # arguments given as a JSON string (OpenAI's wire form) are accepted
    assert checker.check({"request": "r", "call": {"name": "create_ticket", "arguments": '{"title": "x"}'}})[1] == {
        "name": "create_ticket", "arguments": {"title": "x"}}
    assert problem(checker, {"request": "r", "call": {"name": "delete_all", "arguments": {}}}) == (
        "unknown tool 'delete_all'")
    assert problem(checker, {"request": "r", "call": {"name": "get_weather", "arguments": {"days": 9, "city": "x"}}}) == (
        "arguments do not match get_weather's parameters: 9 is greater than the maximum of 7")
    assert problem(checker, {"request": "r", "call": '{"name": '}).startswith("invalid JSON in 'call'")
    with pytest.raises(ValueError):
        parse_completion("tool-call", '["get_weather"]')


def test_classification_and_ner(schema_files) -> None:
    classes = ExampleChecker("classification", labels=("Positive", "Negative"))
    assert classes.check({"text": "Great!", "label": "positive", "rejected": "NEGATIVE"}) == (
        "Great!", "Positive", "Negative")
    assert problem(classes, {"text": "Meh", "label": "neutral"}) == "unknown label 'neutral'"
    ner = ExampleChecker("ner", labels=("PERSON", "LOC"))
    text = "Ana flew to Oslo."
    _, entities, _ = ner.check({"text": text, "entities": [{"text": "Ana", "type": "PERSON"}, ["Oslo", "LOC"]]})
    assert completion_text("ner", entities) == '[["Ana", "PERSON"], ["Oslo", "LOC"]]'
    assert parse_completion("ner", completion_text("ner", entities)) == [("Ana", "PERSON"), ("Oslo", "LOC")]
    assert problem(ner, {"text": text, "entities": [["Bergen", "LOC"]]}) == "entity 'Bergen' does not occur in the text"
    assert problem(ner, {"text": text, "entities": [["Ana", "ORG"]]}) == "unknown entity type 'ORG'"
    cypher = ExampleChecker("cypher")
    assert problem(cypher, {"question": "q", "cypher": "MATCH (n:Person RETURN n"}) == (
        "not a Cypher query (must start with MATCH/CREATE/... with balanced brackets)")
    assert problem(cypher, {"question": "q", "cypher": "MATCH (n:Person {name: 'A(b'}) RETURN n"}) is None


def examples(*items) -> list[dict]:
    return [{"id": f"c/0/{i}", "chunk": "c#0", "example": item} for i, item in enumerate(items)]


def test_format_examples_drops_invalid_repeated_and_too_long(schema_files) -> None:
    checker = ExampleChecker("sql", schema=schema_files["sql"])
    records, stats = format_examples(
        examples({"question": "How many customers?", "sql": "SELECT COUNT(*) FROM customers;"},
                 {"question": "how  many customers?", "sql": "SELECT COUNT(id) FROM customers;"},
                 {"question": "Names?", "sql": "SELECT nam FROM customers;"},
                 {"question": "List every customer city " + "please " * 30, "sql": "SELECT city FROM customers;"},
                 {"question": "Cities?", "sql": "SELECT city FROM customers;"}),
        checker=checker, render=lambda p: f"Q: {p}\nSQL:", count_tokens=lambda t: len(t.split()), max_len=20)
    assert records == [
        {"id": "ex-000000", "prompt": "Q: How many customers?\nSQL:", "completion": "SELECT COUNT(*) FROM customers;",
         "task": "sql", "source": "c#0", "input": "How many customers?", "target": "SELECT COUNT(*) FROM customers;"},
        {"id": "ex-000001", "prompt": "Q: Cities?\nSQL:", "completion": "SELECT city FROM customers;",
         "task": "sql", "source": "c#0", "input": "Cities?", "target": "SELECT city FROM customers;"},
    ]
    assert stats.summary() == {"examples": 5, "records": 2, "invalid": 1, "duplicates": 1, "too_long": 1,
                               "missing_rejected": 0, "invalid_reasons": {
                                   "query does not compile against the schema: no such column: nam": 1}}


def test_dpo_records_need_a_rejected_output(schema_files) -> None:
    checker = ExampleChecker("tool-call", schema=schema_files["tools"])
    call = {"name": "get_weather", "arguments": {"city": "Oslo"}}
    records, stats = format_examples(
        examples({"request": "Oslo weather", "call": call, "rejected": {"name": "create_ticket", "arguments": {}}},
                 {"request": "Paris weather", "call": {**call, "arguments": {"city": "Paris"}}, "rejected": "{bad json"},
                 {"request": "Rome weather", "call": {**call, "arguments": {"city": "Rome"}}},
                 {"request": "Same", "call": call, "rejected": call}),
        checker=checker, render=str, count_tokens=len, max_len=10_000, dpo=True)
    assert [(r["input"], r["chosen"] == r["completion"], r["rejected"]) for r in records] == [
        ("Oslo weather", True, '{"name": "create_ticket", "arguments": {}}'),
        ("Paris weather", True, "{bad json"),
    ]
    assert stats.missing_rejected == 2


def test_training_data_that_does_not_fit_the_context_is_refused(make_expert, sql_recipe, stand_in_teacher,
                                                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from expertpm_forge.data.records import DataError
    from expertpm_forge.pipeline import run_pipeline
    from expertpm_forge.recipe import load_recipe

    monkeypatch.chdir(tmp_path)
    root = make_expert(sql_recipe(stand_in_teacher, train={"max_len": 8}))
    with pytest.raises(DataError) as info:
        run_pipeline(load_recipe(root))
    examples = [json.loads(line) for line in (root / ".forge" / "synthesize" / "examples.jsonl").read_text().splitlines()]
    unique = len({" ".join(e["example"]["question"].lower().split()) for e in examples})
    assert str(info.value) == (f"experts/sql/forge.toml: no usable training records among {len(examples)} examples "
                               f"({unique} longer than train.max_len = 8 tokens) — see the format step's "
                               "invalid_reasons, or raise train.max_len")
