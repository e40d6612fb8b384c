"""The stand-in teacher: templates, request protocol, rule generators per task kind, HTTP server, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from expertpm_forge._recipe_parse import TEMPLATES_DIR
from expertpm_forge.data.formatting import ExampleChecker
from expertpm_forge.teacher.generators import RequestError, generate, parse_request
from expertpm_forge.teacher.templates import TemplateError, load_template, parse_template

TOOLS = [{"name": "get_weather", "description": "Get the current weather for a city.",
          "parameters": {"type": "object", "properties": {
              "city": {"type": "string", "examples": ["Paris", "Oslo", "Lima"]},
              "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]},
          "utterances": ["What's the weather in {city}?", "Weather in {city} in {unit}, please."]},
         {"name": "create_ticket", "description": "Open a support ticket.",
          "parameters": {"type": "object", "properties": {
              "title": {"type": "string"}, "priority": {"type": "integer", "minimum": 1, "maximum": 5}},
              "required": ["title", "priority"]}}]
DOMAINS = {  # kind -> (labels, schema text, document chunk)
    "sql": ((), "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, city TEXT, age INTEGER);\n"
                "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), "
                "product TEXT, amount REAL);",
            "Customers place orders.\ncustomers.city: Lisbon, Paris, Oslo\ncustomers.name: Ana, Ben\n"
            "INSERT INTO orders (id, customer_id, product, amount) VALUES (1, 1, 'laptop', 999.5);"),
    "cypher": ((), "(:Person {name: STRING, born: INTEGER})\n(:Movie {title: STRING, released: INTEGER})\n"
                   "(:Person)-[:ACTED_IN]->(:Movie)\n(:Person)-[:DIRECTED]->(:Movie)",
               "People act in movies.\nCREATE (:Person {name: 'Tom Hanks', born: 1956})\n"
               "Movie.title: Big, Cast Away, Apollo 13"),
    "tool-call": ((), json.dumps(TOOLS), "Users ask about the weather and open tickets.\n"
                                         "create_ticket.title: Login fails, Printer jammed"),
    "classification": (("positive", "negative", "neutral"), "",
                       "I bought the phone last week. The battery is terrible. The screen is great."),
    "ner": (("PERSON", "ORG", "LOC", "DATE", "DRUG"), "DRUG: aspirin, ibuprofen",
            "Alice Martin met the Globex team in Paris. Dosage notes follow."),
    "chat": ((), "", "Error 503 means the service is unavailable. A ticket is a record of a customer problem. "
                     "The SLA refers to the response time promised to customers."),
}


def prompt(kind: str, n: int = 12, pairs: bool = False, round_: int = 0) -> list[dict]:
    labels, schema, doc = DOMAINS[kind]
    template = load_template(TEMPLATES_DIR / f"{kind}.txt")
    return template.render({"n": n, "task": kind, "labels": ", ".join(labels), "schema": schema, "chunk": doc,
                            "expert": kind, "description": "a test expert", "round": round_,
                            "pairs": "yes" if pairs else "no"})


@pytest.mark.parametrize("kind", sorted(DOMAINS))
def test_each_generator_answers_its_builtin_template_with_valid_examples(kind: str, tmp_path: Path) -> None:
    labels, schema, _ = DOMAINS[kind]
    schema_file = None
    if kind in ("sql", "tool-call"):
        schema_file = tmp_path / ("schema.sql" if kind == "sql" else "tools.json")
        schema_file.write_text(schema, encoding="utf-8")
    request = parse_request(prompt(kind, pairs=True))
    assert (request.task, request.count, request.pairs, request.labels) == (kind, 12, True, labels)
    examples = generate(request)
    checker = ExampleChecker(kind, labels=labels, schema=schema_file)
    checked = [checker.check(e) for e in examples]
    assert len(examples) >= (3 if kind == "chat" else 10)
    assert len({source for source, _, _ in checked}) == len(examples)  # distinct inputs
    assert all(rejected is not None and rejected != target for _, target, rejected in checked)
    assert generate(parse_request(prompt(kind, pairs=True))) == examples  # deterministic
    assert generate(parse_request(prompt(kind, pairs=True, round_=1))) != examples  # rounds vary
    assert all("rejected" not in e for e in generate(parse_request(prompt(kind))))


def test_generators_read_the_domain() -> None:
    sql = generate(parse_request(prompt("sql", n=40)))
    assert {"Lisbon", "Paris", "Oslo"} & {e["sql"].split("city = '")[1][:-2] for e in sql if "WHERE city = '" in e["sql"]}
    assert any(" JOIN customers ON orders.customer_id = customers.id" in e["sql"] for e in sql)
    cypher = generate(parse_request(prompt("cypher", n=40)))
    assert any("(a:Person)-[:ACTED_IN]->(b:Movie)" in e["cypher"] and "'Tom Hanks'" in e["cypher"] for e in cypher)
    calls = generate(parse_request(prompt("tool-call", n=60)))
    assert {e["call"]["name"] for e in calls} == {"get_weather", "create_ticket"}
    assert any(e["call"]["arguments"].get("title") in ("Login fails", "Printer jammed") for e in calls)
    ner = generate(parse_request(prompt("ner", n=30)))
    assert any(ent == {"text": "aspirin", "type": "DRUG"} or ent == {"text": "ibuprofen", "type": "DRUG"}
               for e in ner for ent in e["entities"])
    chat = generate(parse_request(prompt("chat")))
    assert {"question": "What does Error 503 mean?", "answer": "Error 503 means the service is unavailable."} in chat


def test_request_protocol_errors() -> None:
    with pytest.raises(RequestError, match="no <task> tag in the last user message"):
        parse_request([{"role": "user", "content": "Write some SQL examples please."}])
    with pytest.raises(RequestError, match="'messages' must be a non-empty list"):
        parse_request([])
    with pytest.raises(RequestError, match="no generator for task 'poetry'"):
        generate(parse_request([{"role": "user", "content": "<task>poetry</task>"}]))
    # a document without a schema the generator can read yields no examples rather than nonsense
    assert generate(parse_request([{"role": "user", "content": "<task>sql</task><document>hello</document>"}])) == []


def test_template_files(tmp_path: Path) -> None:
    template = parse_template("--- system\nYou help.\n--- user\n<task>{{ task }}</task> {\"json\": {{n}}}", "t.txt")
    assert template.render({"task": "sql", "n": 2}) == [
        {"role": "system", "content": "You help."}, {"role": "user", "content": '<task>sql</task> {"json": 2}'}]
    assert parse_template("just one user message {{chunk}}", "t").messages == (
        ("user", "just one user message {{chunk}}"),)
    cases = {
        "{{chunck}}": "t.txt: unknown placeholder {{chunck}} — known: chunk, n, task, labels, schema, expert, "
                      "description, round, pairs",
        "--- user\nhi\n--- assistant\nok": "t.txt: the last message must be a user message — end the file with a "
                                           "'--- user' section",
        "preamble\n--- user\nhi": "t.txt: text before the first '--- <role>' line — start the file with "
                                  "'--- system' or '--- user'",
    }
    for text, message in cases.items():
        with pytest.raises(TemplateError) as info:
            parse_template(text, "t.txt")
        assert str(info.value) == message


def test_http_server(stand_in_teacher: str) -> None:
    with httpx.Client(base_url=stand_in_teacher) as http:
        assert http.get("/models").json()["data"][0]["id"] == "expertpm-stand-in"
        reply = http.post("/chat/completions", json={"model": "x", "messages": prompt("sql", n=2)}).json()
        assert reply["object"] == "chat.completion" and reply["model"] == "x"
        assert len(json.loads(reply["choices"][0]["message"]["content"])) == 2
        bad = http.post("/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
        assert bad.status_code == 400 and "no <task> tag" in bad.json()["error"]["message"]
        assert http.post("/chat/completions", content=b"{oops").status_code == 400
        assert http.post("/completions", json={}).status_code == 404


def test_teacher_serve_command(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "expertpm", "forge", "teacher-serve", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("stand-in teacher listening on http://127.0.0.1:")
        endpoint = line.split()[4]
        deadline = time.monotonic() + 10
        while True:
            try:
                reply = httpx.post(f"{endpoint}/chat/completions", json={"messages": prompt("chat", n=1)})
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert reply.status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_comparison_thresholds_range_beyond_the_sample_values() -> None:
    """Half the thresholds are new numbers in the samples' range, so a student has to copy them."""
    import random

    from expertpm_forge.teacher.query_rules import threshold

    rng, seen = random.Random(0), [3100, 3600, 4100, 4800]
    values = [threshold(seen, rng) for _ in range(400)]
    assert all(3100 <= v <= 4800 and v % 10 == 0 for v in values)
    fresh = [v for v in values if v not in seen]
    assert 120 <= len(fresh) <= 280 and len(set(fresh)) >= 60
    assert {threshold([1.5, 4.5], rng) for _ in range(50)} - {1.5, 4.5}
    assert threshold([], rng) in range(1, 101) and threshold([7], rng) == 7
