"""Question → query rules for the stand-in teacher: SQL (SQLite) and Cypher.

Each rule takes the parsed domain and a seeded `random.Random` and returns one example
``{"question", "sql"|"cypher", "rejected"}`` or None when the domain cannot support it. Queries
are written in one canonical style (upper-case keywords, single spaces, `;` after SQL) so a
small model can learn them; `rejected` is a plausible wrong query (for DPO).
"""

from __future__ import annotations

import random
from typing import Any

from .domain import GraphSchema, SqlTable, humanize, plural, singular
from .lexicon import SQL_AGGREGATES

__all__ = ["SQL_RULES", "CYPHER_RULES", "SqlDomain"]


def lit(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:g}" if isinstance(value, float) else str(value)
    return "'" + str(value).replace("'", "''") + "'"


def say(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class SqlDomain:
    def __init__(self, tables: dict[str, SqlTable], values: dict[tuple[str, str], list]) -> None:
        self.tables, self.values = tables, values

    def plain(self, table: SqlTable) -> list:
        return [c for c in table.columns if not c.primary and c.references is None]

    def display(self, table: SqlTable):
        texts = [c for c in self.plain(table) if not c.numeric]
        return (texts or self.plain(table) or table.columns)[0]

    def texts_with_values(self, table: SqlTable) -> list:
        return [c for c in self.plain(table) if not c.numeric and self.values.get((table.name, c.name))]

    def numbers(self, table: SqlTable) -> list:
        return [c for c in self.plain(table) if c.numeric]

    def number_value(self, table: SqlTable, column, rng: random.Random):
        return threshold([v for v in self.values.get((table.name, column.name), []) if isinstance(v, (int, float))], rng)


def threshold(seen: list, rng: random.Random):
    """A number to compare a column with: a sample value half the time, otherwise any number in the
    samples' range (as a person would ask), so a model trained on the questions learns to copy the
    number from the question rather than to recall one of a few it has seen."""
    if not seen:
        return rng.randint(1, 100)
    if rng.random() < 0.5 or min(seen) == max(seen):
        return rng.choice(seen)
    low, high = min(seen), max(seen)
    if all(isinstance(v, int) for v in seen):
        step = 10 ** max(0, len(str(high - low)) - 3)  # ~100+ distinct values: 4100, 4110, … or 1983, 1984, …
        return low + step * rng.randint(0, (high - low) // step)
    return round(rng.uniform(low, high), 1)


def _names(table: SqlTable) -> tuple[str, str]:
    many = humanize(table.name)
    return plural(many), singular(many)


def sql_count(d: SqlDomain, t: SqlTable, rng: random.Random):
    many, _ = _names(t)
    q = rng.choice(["How many {T} are there?", "Count the {T}.", "What is the total number of {T}?"])
    return q.format(T=many), f"SELECT COUNT(*) FROM {t.name};", f"SELECT * FROM {t.name};"


def sql_list(d: SqlDomain, t: SqlTable, rng: random.Random):
    columns = d.plain(t)
    if len(columns) < 2:
        return None
    col, other = rng.sample(columns, 2)
    many, one = _names(t)
    q = rng.choice(["List the {c} of all {T}.", "Show the {c} of every {t}.", "What is the {c} of each {t}?"])
    return (q.format(c=humanize(col.name), T=many, t=one), f"SELECT {col.name} FROM {t.name};",
            f"SELECT {other.name} FROM {t.name};")


def sql_filter(d: SqlDomain, t: SqlTable, rng: random.Random):
    columns = d.texts_with_values(t)
    show = d.display(t)
    if not columns:
        return None
    col = rng.choice(columns)
    if col.name == show.name:
        show = next((c for c in d.plain(t) if c.name != col.name), show)
    value = rng.choice(d.values[(t.name, col.name)])
    many, _ = _names(t)
    q = rng.choice(["Show the {s} of {T} whose {c} is {v}.", "Which {T} have {c} {v}? Give their {s}.",
                    "List the {s} of {T} with {c} equal to {v}."])
    sql = f"SELECT {show.name} FROM {t.name} WHERE {col.name} = {lit(value)};"
    return (q.format(s=humanize(show.name), T=many, c=humanize(col.name), v=say(value)), sql,
            f"SELECT {show.name} FROM {t.name};")


def sql_count_filter(d: SqlDomain, t: SqlTable, rng: random.Random):
    columns = d.texts_with_values(t)
    if not columns:
        return None
    col = rng.choice(columns)
    value = rng.choice(d.values[(t.name, col.name)])
    many, _ = _names(t)
    q = rng.choice(["How many {T} have {c} {v}?", "Count the {T} whose {c} is {v}."])
    return (q.format(T=many, c=humanize(col.name), v=say(value)),
            f"SELECT COUNT(*) FROM {t.name} WHERE {col.name} = {lit(value)};", f"SELECT COUNT(*) FROM {t.name};")


def sql_compare(d: SqlDomain, t: SqlTable, rng: random.Random):
    columns = d.numbers(t)
    if not columns:
        return None
    col, show = rng.choice(columns), d.display(t)
    value = d.number_value(t, col, rng)
    op, flipped, word = rng.choice([(">", "<", "greater than"), (">", "<", "above"), ("<", ">", "less than"),
                                    ("<", ">", "below")])
    many, _ = _names(t)
    q = rng.choice(["Which {T} have {c} {w} {v}? Show their {s}.", "List the {s} of {T} with {c} {w} {v}."])
    return (q.format(T=many, c=humanize(col.name), w=word, v=say(value), s=humanize(show.name)),
            f"SELECT {show.name} FROM {t.name} WHERE {col.name} {op} {lit(value)};",
            f"SELECT {show.name} FROM {t.name} WHERE {col.name} {flipped} {lit(value)};")


def sql_aggregate(d: SqlDomain, t: SqlTable, rng: random.Random):
    columns = d.numbers(t)
    if not columns:
        return None
    col = rng.choice(columns)
    (fn, word), (wrong, _) = rng.sample(SQL_AGGREGATES, 2)
    many, _ = _names(t)
    q = rng.choice(["What is the {w} {c} of all {T}?", "Give the {w} {c} across {T}."])
    return (q.format(w=word, c=humanize(col.name), T=many), f"SELECT {fn}({col.name}) FROM {t.name};",
            f"SELECT {wrong}({col.name}) FROM {t.name};")


def sql_top(d: SqlDomain, t: SqlTable, rng: random.Random):
    columns = d.numbers(t)
    if not columns:
        return None
    col, show, k = rng.choice(columns), d.display(t), rng.randint(1, 5)
    order, flipped, word = rng.choice([("DESC", "ASC", "highest"), ("ASC", "DESC", "lowest")])
    many, one = _names(t)
    if k == 1:
        q = f"Which {one} has the {word} {humanize(col.name)}? Show its {humanize(show.name)}."
    else:
        q = rng.choice(["List the {k} {T} with the {w} {c}. Show their {s}.",
                        "Which {k} {T} have the {w} {c}? Give their {s}."]).format(
            k=k, T=many, w=word, c=humanize(col.name), s=humanize(show.name))
    base = f"SELECT {show.name} FROM {t.name} ORDER BY {col.name}"
    return q, f"{base} {order} LIMIT {k};", f"{base} {flipped} LIMIT {k};"


def sql_group(d: SqlDomain, t: SqlTable, rng: random.Random):
    columns = d.texts_with_values(t)
    if not columns:
        return None
    col = rng.choice(columns)
    many, _ = _names(t)
    q = rng.choice(["How many {T} are there for each {c}?", "Count the {T} per {c}."])
    return (q.format(T=many, c=humanize(col.name)), f"SELECT {col.name}, COUNT(*) FROM {t.name} GROUP BY {col.name};",
            f"SELECT {col.name}, COUNT(*) FROM {t.name};")


def _foreign(d: SqlDomain, t: SqlTable, rng: random.Random):
    links = [(c, d.tables[c.references[0]]) for c in t.columns
             if c.references and c.references[0] in d.tables and c.references[0] != t.name]
    return rng.choice(links) if links else (None, None)


def sql_join(d: SqlDomain, t: SqlTable, rng: random.Random):
    fk, parent = _foreign(d, t, rng)
    if fk is None:
        return None
    cs, ps = d.display(t), d.display(parent)
    _, child_one = _names(t)
    _, parent_one = _names(parent)
    q = rng.choice(["List each {ct}'s {cs} with the {ps} of its {pt}.",
                    "Show the {cs} of every {ct} together with its {pt}'s {ps}."])
    select = f"SELECT {t.name}.{cs.name}, {parent.name}.{ps.name} FROM {t.name}"
    return (q.format(ct=child_one, cs=humanize(cs.name), ps=humanize(ps.name), pt=parent_one),
            f"{select} JOIN {parent.name} ON {t.name}.{fk.name} = {parent.name}.{fk.references[1]};",
            f"{select}, {parent.name};")


def sql_join_filter(d: SqlDomain, t: SqlTable, rng: random.Random):
    fk, parent = _foreign(d, t, rng)
    if fk is None or not d.texts_with_values(parent):
        return None
    col, cs = rng.choice(d.texts_with_values(parent)), d.display(t)
    value = rng.choice(d.values[(parent.name, col.name)])
    child_many, _ = _names(t)
    _, parent_one = _names(parent)
    q = rng.choice(["List the {cs} of {CT} whose {pt} has {pc} {v}.",
                    "Which {CT} belong to the {pt} with {pc} {v}? Show their {cs}."])
    join = f"SELECT {t.name}.{cs.name} FROM {t.name} JOIN {parent.name} ON {t.name}.{fk.name} = {parent.name}.{fk.references[1]}"
    return (q.format(cs=humanize(cs.name), CT=child_many, pt=parent_one, pc=humanize(col.name), v=say(value)),
            f"{join} WHERE {parent.name}.{col.name} = {lit(value)};", f"{join};")


SQL_RULES = [sql_count, sql_list, sql_filter, sql_count_filter, sql_compare, sql_aggregate, sql_top, sql_group,
             sql_join, sql_join_filter]

# --- Cypher -------------------------------------------------------------------------------------


def _display_prop(g: GraphSchema, label: str) -> str | None:
    props = g.labels.get(label, {})
    for name in ("name", "title"):
        if name in props:
            return name
    texts = [p for p, kind in props.items() if kind in ("STRING", "TEXT")]
    return (texts or list(props) or [None])[0]


def _label_words(label: str) -> tuple[str, str]:
    one = humanize(label)
    return plural(one), one


def _keyed_value(g: GraphSchema, label: str, rng: random.Random):
    """A (property, value) of `label` with known sample values, preferring the display property."""
    keyed = [p for p in g.labels.get(label, {}) if g.values.get((label, p))]
    if not keyed:
        return None, None
    prop = _display_prop(g, label) if _display_prop(g, label) in keyed else rng.choice(keyed)
    return prop, rng.choice(g.values[(label, prop)])


def cy_count(g: GraphSchema, label: str, rng: random.Random):
    many, one = _label_words(label)
    q = rng.choice(["How many {l} nodes are there?", "Count all {L}.", "What is the number of {L} in the graph?"])
    return (q.format(l=one, L=many), f"MATCH (n:{label}) RETURN count(n)", f"MATCH (n) RETURN count(n)")


def cy_list(g: GraphSchema, label: str, rng: random.Random):
    props = list(g.labels.get(label, {}))
    if len(props) < 2:
        return None
    prop, other = rng.sample(props, 2)
    many, one = _label_words(label)
    q = rng.choice(["List the {p} of all {L}.", "Show the {p} of every {l}.", "Return each {l}'s {p}."])
    return (q.format(p=humanize(prop), L=many, l=one), f"MATCH (n:{label}) RETURN n.{prop}",
            f"MATCH (n:{label}) RETURN n.{other}")


def cy_filter(g: GraphSchema, label: str, rng: random.Random):
    prop, value = _keyed_value(g, label, rng)
    show = _display_prop(g, label)
    if prop is None:
        return None
    others = [p for p in g.labels[label] if p != prop]
    if show == prop and others:
        show = rng.choice(others)
    many, one = _label_words(label)
    q = rng.choice(["Find the {L} whose {p} is {v} and return their {s}.", "What is the {s} of the {l} with {p} {v}?"])
    return (q.format(L=many, l=one, p=humanize(prop), v=say(value), s=humanize(show)),
            f"MATCH (n:{label}) WHERE n.{prop} = {lit(value)} RETURN n.{show}", f"MATCH (n:{label}) RETURN n.{show}")


def cy_compare(g: GraphSchema, label: str, rng: random.Random):
    numbers = [p for p, kind in g.labels.get(label, {}).items() if kind in ("INTEGER", "INT", "FLOAT", "NUMBER")]
    show = _display_prop(g, label)
    if not numbers or show is None:
        return None
    prop = rng.choice(numbers)
    value = threshold([v for v in g.values.get((label, prop), []) if isinstance(v, (int, float))], rng)
    op, flipped, word = rng.choice([(">", "<", "greater than"), ("<", ">", "less than"), (">", "<", "above")])
    many, _ = _label_words(label)
    q = rng.choice(["Find {L} with {p} {w} {v}. Return their {s}.", "Which {L} have {p} {w} {v}? Give their {s}."])
    return (q.format(L=many, p=humanize(prop), w=word, v=say(value), s=humanize(show)),
            f"MATCH (n:{label}) WHERE n.{prop} {op} {lit(value)} RETURN n.{show}",
            f"MATCH (n:{label}) WHERE n.{prop} {flipped} {lit(value)} RETURN n.{show}")


def cy_top(g: GraphSchema, label: str, rng: random.Random):
    numbers = [p for p, kind in g.labels.get(label, {}).items() if kind in ("INTEGER", "INT", "FLOAT", "NUMBER")]
    show = _display_prop(g, label)
    if not numbers or show is None:
        return None
    prop, k = rng.choice(numbers), rng.randint(2, 5)
    order, flipped, word = rng.choice([("DESC", "ASC", "highest"), ("ASC", "DESC", "lowest")])
    many, _ = _label_words(label)
    base = f"MATCH (n:{label}) RETURN n.{show} ORDER BY n.{prop}"
    return (f"List the {k} {many} with the {word} {humanize(prop)}.", f"{base} {order} LIMIT {k}",
            f"{base} {flipped} LIMIT {k}")


def _relation(g: GraphSchema, label: str, rng: random.Random):
    rels = [r for r in g.relations if label in (r[0], r[2])]
    return rng.choice(rels) if rels else None


def cy_related(g: GraphSchema, label: str, rng: random.Random):
    rel = _relation(g, label, rng)
    if rel is None:
        return None
    src, kind, dst = rel
    forward = rng.random() < 0.5
    known, wanted = (src, dst) if forward else (dst, src)
    prop, value = _keyed_value(g, known, rng)
    show = _display_prop(g, wanted)
    if prop is None or show is None:
        return None
    var_known, var_wanted = ("a", "b") if forward else ("b", "a")
    pattern = f"MATCH (a:{src})-[:{kind}]->(b:{dst}) WHERE {var_known}.{prop} = {lit(value)}"
    known_one = _label_words(known)[1]
    wanted_many = _label_words(wanted)[0]
    verb = humanize(kind)
    if forward:
        q = rng.choice([f"List the {wanted_many} that the {known_one} {say(value)} {verb}.",
                        f"Which {wanted_many} are linked to the {known_one} {say(value)} by {kind}?"])
    else:
        q = rng.choice([f"Which {wanted_many} {verb} the {known_one} {say(value)}?",
                        f"Find the {wanted_many} that {verb} the {known_one} {say(value)}."])
    return (q, f"{pattern} RETURN {var_wanted}.{show}",
            f"MATCH (a:{dst})-[:{kind}]->(b:{src}) WHERE {var_known}.{prop} = {lit(value)} RETURN {var_wanted}.{show}")


def cy_related_count(g: GraphSchema, label: str, rng: random.Random):
    rel = _relation(g, label, rng)
    if rel is None:
        return None
    src, kind, dst = rel
    prop, value = _keyed_value(g, src, rng)
    if prop is None:
        return None
    pattern = f"MATCH (a:{src})-[:{kind}]->(b:{dst}) WHERE a.{prop} = {lit(value)}"
    q = f"Count the {_label_words(dst)[0]} that the {_label_words(src)[1]} {say(value)} {humanize(kind)}."
    return q, f"{pattern} RETURN count(b)", f"{pattern} RETURN count(a)"


CYPHER_RULES = [cy_count, cy_list, cy_filter, cy_compare, cy_top, cy_related, cy_related, cy_related_count]
