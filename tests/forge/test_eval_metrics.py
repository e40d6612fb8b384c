"""Task metrics on hand-written predictions: each verdict is checked both ways."""

from __future__ import annotations

import json
import sqlite3

import pytest

from expertpm_forge.evaluate import EvalConfigError, EvalDatabaseError, score
from expertpm_forge.evaluate.cypher import normalize_cypher
from expertpm_forge.evaluate.metrics import entity_f1, exact_match, label_accuracy, parse_entities, tool_call
from expertpm_forge.evaluate.sql import run_query, sql_execution


@pytest.fixture
def shop_db(tmp_path):
    path = tmp_path / "shop.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, city TEXT, age INTEGER);
        INSERT INTO users VALUES (1, 'Anna', 'Paris', 31), (2, 'Ben', 'Lima', 25), (3, 'Carla', 'Paris', 40);
    """)
    conn.commit()
    conn.close()
    return path


def test_sql_execution_compares_result_sets(shop_db):
    gold = "SELECT name FROM users WHERE city = 'Paris'"
    preds = [
        "SELECT name FROM users WHERE city='Paris';",  # same query, other spelling
        "SELECT name FROM users WHERE age > 30",  # different query, same rows
        "SELECT name FROM users",  # wrong rows
        "SELEC name FROM users",  # invalid SQL
        "```sql\nSELECT u.name FROM users AS u WHERE u.city = 'Paris'\n```",  # fenced
    ]
    result = sql_execution(preds, [gold] * len(preds), shop_db)
    assert result.items == [True, True, False, False, True]
    assert result.value == pytest.approx(3 / 5)
    assert result.parts["valid_sql"] == pytest.approx(4 / 5)


def test_sql_order_matters_only_when_gold_orders(shop_db):
    ordered = "SELECT name FROM users ORDER BY age DESC"
    assert sql_execution(["SELECT name FROM users ORDER BY age"], [ordered], shop_db).items == [False]
    assert sql_execution(["SELECT name FROM users ORDER BY age"], ["SELECT name FROM users"], shop_db).items == [True]
    nested = "SELECT name FROM (SELECT name, age FROM users ORDER BY age)"
    assert sql_execution(["SELECT name FROM users"], [nested], shop_db).items == [True]


def test_sql_refuses_writes_and_multiple_statements(shop_db):
    conn = sqlite3.connect(f"file:{shop_db}?mode=ro", uri=True)
    assert run_query(conn, "DELETE FROM users") is None
    assert run_query(conn, "SELECT 1; SELECT 2") is None
    assert run_query(conn, "SELECT count(*) FROM users") == [(3,)]
    assert sqlite3.connect(shop_db).execute("SELECT count(*) FROM users").fetchone() == (3,)


def test_sql_database_from_script_and_errors(tmp_path, shop_db):
    script = tmp_path / "db.sql"
    script.write_text("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2);")
    assert sql_execution(["SELECT sum(x) FROM t"], ["SELECT 3"], script).value == 1.0
    with pytest.raises(EvalDatabaseError, match="not found"):
        sql_execution(["SELECT 1"], ["SELECT 1"], tmp_path / "missing.sqlite")
    with pytest.raises(EvalDatabaseError, match="gold query"):
        sql_execution(["SELECT 1"], ["SELECT nope FROM nowhere"], shop_db)
    with pytest.raises(EvalConfigError, match="needs a database"):
        score("sql_execution", ["SELECT 1"], ["SELECT 1"], {})


TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
    "required": ["city"], "additionalProperties": False}}}]


def test_tool_call_exact_validity_and_schema():
    gold = json.dumps({"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}})
    preds = [
        '{"arguments": {"unit": "celsius", "city": "Oslo"}, "name": "get_weather"}',  # key order differs
        '{"name": "get_weather", "arguments": "{\\"city\\": \\"Oslo\\", \\"unit\\": \\"celsius\\"}"}',
        '{"name": "get_weather", "arguments": {"city": "Rome"}}',  # valid, wrong argument
        '{"name": "get_weather", "arguments": {"city": 5}}',  # violates the schema
        '{"name": "get_weather", "arguments": {"city": "Oslo"',  # not JSON
    ]
    result = tool_call(preds, [gold] * 5, TOOLS)
    assert result.items == [True, True, False, False, False]
    assert result.parts == {"json_valid": 0.8, "schema_valid": 0.6, "tool_name": 0.8}
    assert tool_call(['{"name": "x", "arguments": {}}'], [gold]).parts["schema_valid"] == 1.0
    assert tool_call(['{"name": "x", "arguments": {}}'], [gold], TOOLS).parts["schema_valid"] == 0.0


def test_label_accuracy_normalises_and_checks_known_labels():
    result = label_accuracy([" Positive.", "negative", "positive!!", "maybe"], ["positive", "negative", "negative", "maybe"],
                            labels=["positive", "negative"])
    assert result.items == [True, True, False, False]
    assert result.parts["valid_label"] == 0.75


def test_entity_f1_formats_and_counts():
    assert parse_entities('[{"text": "Anna", "type": "per"}, ["Paris", "LOC"]]') == [("PER", "anna"), ("LOC", "paris")]
    assert parse_entities("PER: Anna\nLOC: Paris") == [("PER", "anna"), ("LOC", "paris")]
    assert parse_entities("Anna (PER); Paris (LOC)") == [("PER", "anna"), ("LOC", "paris")]
    assert parse_entities('{"PER": ["Anna"], "LOC": "Paris"}') == [("PER", "anna"), ("LOC", "paris")]
    assert parse_entities("none") == []
    assert parse_entities("just some words") is None
    gold = ["PER: Anna\nLOC: Paris", "ORG: Acme"]
    assert entity_f1(["LOC: paris\nPER: Anna", "ORG: Acme"], gold).value == 1.0
    half = entity_f1(["PER: Anna\nLOC: Lima", "ORG: Acme"], gold)  # 2 of 3 right, 1 spurious
    assert half.value == pytest.approx(2 / 3) and half.parts["precision"] == pytest.approx(2 / 3)
    assert entity_f1(["gibberish", "nothing here"], gold).value == 0.0


def test_exact_match_and_cypher_normalisation():
    assert exact_match(["The answer is Paris."], ["answer is paris"]).items == [True]
    assert exact_match(["Lima"], ["Paris"]).items == [False]
    a = "MATCH (p:Person {name: 'Anna'})-[:KNOWS]->(f:Person) RETURN f.name ORDER BY f.name ASC;"
    b = 'match (x:Person {name: "Anna"}) -[:KNOWS]-> (y:Person) return y.name order by y.name'
    assert normalize_cypher(a) == normalize_cypher(b)
    assert normalize_cypher(a) != normalize_cypher(a.replace("KNOWS", "LIKES"))
    assert normalize_cypher("MATCH (p:Person) RETURN p.name") != normalize_cypher("MATCH (p:Person) RETURN p.age")
    assert score("cypher_match", [b], [a]).value == 1.0


def test_unknown_metric_is_refused():
    with pytest.raises(EvalConfigError, match="unknown metric 'bleu'"):
        score("bleu", ["a"], ["a"])
