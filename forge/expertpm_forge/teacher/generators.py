"""The stand-in teacher's rule generators: one function per task kind, seeded and deterministic.

The stand-in reads a `GenerationRequest` from tags in the last user message (see
`parse_request`) and answers with a JSON list of examples shaped as `EXAMPLE_FIELDS` says for
the task (the same shape a real teacher is asked for). The same prompt always gives the same
examples: the random generator is seeded from the sha256 of the prompt.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from typing import Any, Callable

from .domain import (frequent_nouns, humanize, parse_graph, parse_sql_schema, parse_sql_values, sentences,
                     singular, value_lines)
from .lexicon import (COLORS, DAYS, DEFAULT_ASPECTS, GAZETTEER, GENERIC_NER_PATTERNS, MONTHS, NER_PATTERNS,
                      SENTIMENT_PATTERNS, SENTIMENT_WORDS, TOPIC_PATTERNS)
from .query_rules import CYPHER_RULES, SQL_RULES, SqlDomain

__all__ = ["GenerationRequest", "RequestError", "parse_request", "generate", "GENERATORS", "TAGS"]

TAGS = ("task", "count", "labels", "schema", "document", "pairs")
MAX_COUNT = 200


class RequestError(ValueError):
    """The prompt does not carry what the stand-in teacher needs (answered with HTTP 400)."""


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    task: str
    count: int
    document: str
    schema: str = ""
    labels: tuple[str, ...] = ()
    pairs: bool = False
    seed: int = 0


def _tag(text: str, name: str) -> str | None:
    start = text.find(f"<{name}>")
    end = text.rfind(f"</{name}>")
    return text[start + len(name) + 2:end].strip() if start != -1 and end > start else None


def parse_request(messages: Any) -> GenerationRequest:
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list")
    users = [m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    if not users or not isinstance(users[-1], str):
        raise RequestError("no user message with text content")
    text = users[-1]
    task = _tag(text, "task")
    if not task:
        raise RequestError("no <task> tag in the last user message: the stand-in teacher reads "
                           "<task>, <count>, <document> (and <labels>, <schema>, <pairs>) tags")
    try:
        count = int(_tag(text, "count") or 5)
    except ValueError as exc:
        raise RequestError("<count> must be an integer") from exc
    labels = tuple(s.strip() for s in (_tag(text, "labels") or "").split(",") if s.strip())
    seed = int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:16], 16)
    return GenerationRequest(task.lower(), max(0, min(count, MAX_COUNT)), _tag(text, "document") or "",
                             _tag(text, "schema") or "", labels,
                             (_tag(text, "pairs") or "no").lower() in ("yes", "true", "1"), seed)


def _pick(rng: random.Random, focus: list, every: list):
    """Mostly what the document is about, sometimes anything in the domain."""
    return rng.choice(focus if focus and rng.random() < 0.75 else every)


def _collect(count: int, make: Callable[[], dict | None], key: str) -> list[dict]:
    """Up to `count` examples with distinct `key` fields, from a bounded number of attempts."""
    out, seen = [], set()
    for _ in range(count * 10):
        if len(out) >= count:
            break
        example = make()
        if example is not None and example[key] not in seen:
            seen.add(example[key])
            out.append(example)
    return out


def generate_sql(req: GenerationRequest, rng: random.Random) -> list[dict]:
    text = f"{req.schema}\n{req.document}"
    tables = parse_sql_schema(text)
    if not tables:
        return []
    domain = SqlDomain(tables, parse_sql_values(text, tables))
    mentioned = [t for t in tables.values()
                 if re.search(rf"\b({re.escape(t.name)}|{re.escape(singular(t.name))})\b", req.document, re.I)]
    every = list(tables.values())

    def make() -> dict | None:
        made = rng.choice(SQL_RULES)(domain, _pick(rng, mentioned, every), rng)
        return None if made is None else {"question": made[0], "sql": made[1], "rejected": made[2]}

    return _collect(req.count, make, "question")


def generate_cypher(req: GenerationRequest, rng: random.Random) -> list[dict]:
    graph = parse_graph(f"{req.schema}\n{req.document}")
    if not graph.labels:
        return []
    mentioned = [label for label in graph.labels if re.search(rf"\b{re.escape(label)}\b", req.document, re.I)
                 or humanize(label) in req.document.lower()]
    every = sorted(graph.labels)

    def make() -> dict | None:
        made = rng.choice(CYPHER_RULES)(graph, _pick(rng, mentioned, every), rng)
        return None if made is None else {"question": made[0], "cypher": made[1], "rejected": made[2]}

    return _collect(req.count, make, "question")


def _tool_value(name: str, spec: dict, hints: dict[str, list[str]], phrases: list[str], rng: random.Random):
    kind = spec.get("type", "string")
    for key in ("enum", "examples"):
        if isinstance(spec.get(key), list) and spec[key]:
            return rng.choice(spec[key])
    if hints.get(name):
        value = rng.choice(hints[name])
        return int(value) if kind == "integer" and value.lstrip("-").isdigit() else value
    if kind == "integer":
        return rng.randint(int(spec.get("minimum", 1)), int(spec.get("maximum", 20)))
    if kind == "number":
        return round(rng.uniform(float(spec.get("minimum", 1)), float(spec.get("maximum", 100))), 1)
    if kind == "boolean":
        return rng.random() < 0.5
    if spec.get("format") == "date":
        return f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if phrases:  # a short phrase of the document rather than an invented token
        return rng.choice(phrases)
    return f"{humanize(name)} {rng.randint(1, 99)}"


def generate_tool_call(req: GenerationRequest, rng: random.Random) -> list[dict]:
    from ..data.formatting import load_tools

    tools: dict[str, dict] = {}
    for source in (req.schema, req.document):
        for block in re.findall(r"```(?:json)?\s*(.*?)```", source, re.S) or [source]:
            try:
                tools.update(load_tools(block))
            except ValueError:
                continue
    if not tools:
        return []
    hints = value_lines(req.document)
    phrases = [f"the {noun}" for noun in frequent_nouns(req.document)]
    names = sorted(tools)
    mentioned = [n for n in names if n in req.document or humanize(n) in req.document.lower()]

    def make() -> dict | None:
        tool = tools[_pick(rng, mentioned, names)]
        props = tool["parameters"].get("properties", {})
        required = set(tool["parameters"].get("required", []))
        tool_hints = {k.split(".", 1)[1]: v for k, v in hints.items() if k.startswith(tool["name"] + ".")}
        utterances = [u for u in tool.get("utterances", []) if required <= set(re.findall(r"\{(\w+)\}", u))]
        if utterances:
            template = rng.choice(utterances)
            used = [p for p in re.findall(r"\{(\w+)\}", template) if p in props]
        else:
            used = [p for p in props if p in required or rng.random() < 0.4]
        args = {p: _tool_value(p, props[p], tool_hints, phrases, rng) for p in used}
        if utterances:
            request = template.format(**{p: _spoken(v) for p, v in args.items()})
        else:
            what = tool.get("description", humanize(tool["name"])).rstrip(".")
            spoken = ", ".join(f"{humanize(p)} {_spoken(v)}" for p, v in args.items())
            request = rng.choice(["{w}: {a}.", "Please {lw} with {a}.", "I need to {lw}: {a}."] if spoken
                                 else ["{w}.", "Please {lw}."]).format(w=what, lw=what[:1].lower() + what[1:], a=spoken)
        call = {"name": tool["name"], "arguments": args}
        return {"request": request, "call": call, "rejected": _wrong_call(call, tools, required, rng)}

    return _collect(req.count, make, "request")


def _spoken(value: Any) -> str:
    return ("yes" if value else "no") if isinstance(value, bool) else str(value)


def _wrong_call(call: dict, tools: dict, required: set, rng: random.Random) -> dict:
    others = [n for n in tools if n != call["name"]]
    if others and rng.random() < 0.5:
        return {"name": rng.choice(others), "arguments": call["arguments"]}
    args = dict(call["arguments"])
    if args:
        args.pop(rng.choice(sorted(args)))
    else:
        args["unexpected"] = True
    return {"name": call["name"], "arguments": args}


def generate_classification(req: GenerationRequest, rng: random.Random) -> list[dict]:
    if len(req.labels) < 2:
        return []
    aspects = frequent_nouns(req.document) or DEFAULT_ASPECTS
    cues = {k.lower(): v for k, v in value_lines(req.schema + "\n" + req.document).items()}
    from_doc = []
    for sentence in sentences(req.document):
        words = set(re.findall(r"[a-z]+", sentence.lower()))
        hits = [label for label in req.labels if words & set(SENTIMENT_WORDS.get(label.lower(), []))]
        if len(hits) == 1:
            from_doc.append({"text": sentence, "label": hits[0]})
    rng.shuffle(from_doc)
    order = list(req.labels)

    def make() -> dict | None:
        if from_doc and rng.random() < 0.25:
            return from_doc.pop()
        label = order[len(out_labels) % len(order)]
        out_labels.append(label)
        key = label.lower()
        if key in SENTIMENT_PATTERNS:
            word = rng.choice(SENTIMENT_WORDS[key])
            text = rng.choice(SENTIMENT_PATTERNS[key]).format(
                aspect=rng.choice(aspects), word=word, Word=word.capitalize(), day=rng.choice(DAYS),
                n=rng.randint(2, 9), color=rng.choice(COLORS))
        else:
            cue = rng.choice(cues.get(key) or [humanize(label)])
            text = rng.choice(TOPIC_PATTERNS).format(cue=cue)
        return {"text": text, "label": label}

    out_labels: list[str] = []
    examples = _collect(req.count, make, "text")
    for ex in examples:
        ex["rejected"] = rng.choice([label for label in req.labels if label != ex["label"]])
    return examples


def generate_ner(req: GenerationRequest, rng: random.Random) -> list[dict]:
    types = [t for t in req.labels]
    listed = {k.upper(): v for k, v in value_lines(req.schema + "\n" + req.document).items()}
    names = {t: listed.get(t.upper()) or GAZETTEER.get(t.upper(), []) for t in types}
    if "DATE" in (t.upper() for t in types):
        date_type = next(t for t in types if t.upper() == "DATE")
        names[date_type] = names[date_type] or [f"{m} {d}" for m in MONTHS for d in (3, 12, 21)]
    names = {t: v for t, v in names.items() if v}
    if not names:
        return []
    by_upper = {t.upper(): t for t in names}
    patterns = [p for p in NER_PATTERNS if set(re.findall(r"\{(\w+)\}", p)) <= set(by_upper)]
    custom = [t for t in names if t.upper() not in GAZETTEER and t.upper() != "DATE"]
    from_doc = []
    for sentence in sentences(req.document):
        found = sorted(((sentence.find(v), v, t) for t, vs in names.items() for v in vs if v in sentence))
        if found:
            from_doc.append({"text": sentence, "entities": [{"text": v, "type": t} for _, v, t in found]})
    rng.shuffle(from_doc)

    def make() -> dict | None:
        if from_doc and rng.random() < 0.3:
            return from_doc.pop()
        if custom and (not patterns or rng.random() < 0.5):
            x, y = rng.choice(custom), rng.choice(custom)
            pattern = rng.choice(GENERIC_NER_PATTERNS).replace("{X}", "{" + x.upper() + "}").replace(
                "{Y}", "{" + y.upper() + "}")
        elif patterns:
            pattern = rng.choice(patterns)
        else:
            return None
        text, entities = "", []
        for piece in re.split(r"(\{\w+\})", pattern):
            slot = piece[1:-1] if piece.startswith("{") else None
            if slot in by_upper:
                value = rng.choice(names[by_upper[slot]])
                entities.append({"text": value, "type": by_upper[slot]})
                piece = value
            text += piece
        return {"text": text, "entities": entities}

    examples = _collect(req.count, make, "text")
    for ex in examples:
        wrong = [dict(e) for e in ex["entities"]]
        if wrong and rng.random() < 0.6:
            wrong.pop(rng.randrange(len(wrong)))
        elif wrong:
            wrong[0]["type"] = rng.choice([t for t in names if t != wrong[0]["type"]] or [wrong[0]["type"]])
        else:
            word = rng.choice(ex["text"].split()).strip(".,")
            wrong = [{"text": word, "type": rng.choice(list(names))}]
        ex["rejected"] = wrong
    return examples


_DEFINITION = re.compile(r"^(?:The |An |A )?(.{2,60}?) (is|are|means|refers to|stands for) (.+)$")


def generate_chat(req: GenerationRequest, rng: random.Random) -> list[dict]:
    facts = []
    for sentence in sentences(req.document):
        match = _DEFINITION.match(sentence)
        if match:
            subject, verb = match.group(1), match.group(2)
            question = {"is": f"What is {subject}?", "are": f"What are {subject}?",
                        "means": f"What does {subject} mean?", "refers to": f"What does {subject} refer to?",
                        "stands for": f"What does {subject} stand for?"}[verb]
            facts.append((question, sentence))
    for key, items in value_lines(req.document).items():
        facts.append((f"What is {humanize(key)}?", f"{humanize(key).capitalize()}: {', '.join(items)}."))
    if not facts:
        return []
    answers = [a for _, a in facts]

    def make() -> dict | None:
        question, answer = rng.choice(facts)
        wrong = rng.choice([a for a in answers if a != answer] or ["I do not know."])
        return {"question": question, "answer": answer, "rejected": wrong}

    return _collect(req.count, make, "question")


GENERATORS: dict[str, Callable[[GenerationRequest, random.Random], list[dict]]] = {
    "sql": generate_sql, "cypher": generate_cypher, "tool-call": generate_tool_call,
    "classification": generate_classification, "ner": generate_ner, "chat": generate_chat,
}


def generate(req: GenerationRequest) -> list[dict]:
    """The examples for one request (without `rejected` unless the request asks for pairs)."""
    generator = GENERATORS.get(req.task)
    if generator is None:
        raise RequestError(f"the stand-in teacher has no generator for task {req.task!r} "
                           f"(it knows {', '.join(sorted(GENERATORS))})")
    examples = generator(req, random.Random(req.seed))
    if not req.pairs:
        for example in examples:
            example.pop("rejected", None)
    return json.loads(json.dumps(examples))  # plain JSON values only
